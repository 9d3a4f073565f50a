"""How a failed call to a peer is handled by the relay: retry later, or give up for good."""

from __future__ import annotations

import grpc

from services.common.outbox import PermanentFailure

#: A peer that answers with one of these will answer the same however often we ask: the
#: request is wrong (our bug). Everything else (UNAVAILABLE, DEADLINE_EXCEEDED,
#: RESOURCE_EXHAUSTED, ABORTED, INTERNAL, ...) may pass, so the relay retries it; so do
#: UNAUTHENTICATED and PERMISSION_DENIED, which a key or table put right lets through:
#: a stop-payment order is never dropped because of our own configuration.
PERMANENT_CODES = frozenset(
    {
        grpc.StatusCode.INVALID_ARGUMENT,
        grpc.StatusCode.FAILED_PRECONDITION,
        grpc.StatusCode.UNIMPLEMENTED,
        grpc.StatusCode.OUT_OF_RANGE,
    }
)


def raise_for(error: grpc.aio.AioRpcError, what: str) -> None:
    """Re-raise a peer's error as PermanentFailure or as itself (retried)."""
    code = error.code()
    if code in PERMANENT_CODES:
        raise PermanentFailure(f"{what}: {code.name}: {error.details()}") from error
    raise error
