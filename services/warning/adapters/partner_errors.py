"""How a partner call failed, as the delivery code needs to know it: retry, or give up."""

from __future__ import annotations

import grpc


class PartnerError(Exception):
    """A partner call failed; ``permanent`` says whether a retry can help."""

    def __init__(
        self,
        partner: str,
        message: str,
        *,
        permanent: bool,
        unreachable: bool = False,
        unknown: bool = False,
    ) -> None:
        super().__init__(f"{partner}: {message}")
        self.partner = partner
        self.permanent = permanent
        #: The partner could not be reached at all (the outbox probes it until it can).
        self.unreachable = unreachable
        #: The partner does not know what was asked about (NOT_FOUND): e.g. a message it lost
        #: in a restart.
        self.unknown = unknown


#: Codes after which the same call (same idempotency key) may succeed later.
_TRANSIENT = frozenset(
    {
        grpc.StatusCode.UNAVAILABLE,
        grpc.StatusCode.DEADLINE_EXCEEDED,
        grpc.StatusCode.RESOURCE_EXHAUSTED,
        grpc.StatusCode.INTERNAL,
        grpc.StatusCode.UNKNOWN,
        grpc.StatusCode.CANCELLED,
    }
)


def from_rpc_error(partner: str, error: grpc.aio.AioRpcError) -> PartnerError:
    code = error.code()
    # The partner's message names fields and reasons, never personal values (their contract).
    detail = (error.details() or "")[:200]
    return PartnerError(
        partner,
        f"{code.name}: {detail}",
        permanent=code not in _TRANSIENT,
        unreachable=code in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED),
        unknown=code == grpc.StatusCode.NOT_FOUND,
    )
