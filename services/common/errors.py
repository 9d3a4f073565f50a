"""Domain errors and their one mapping to gRPC status codes with rich details.

Service code raises these; the server interceptor turns them into statuses.
Nothing else in the code base chooses a status code for an error.
"""

from __future__ import annotations

from dataclasses import dataclass

import grpc
from google.protobuf import any_pb2, duration_pb2
from google.rpc import code_pb2, error_details_pb2, status_pb2

DOMAIN = "antifraud.gov.example"
#: ErrorInfo reason (with OUT_OF_RANGE) of a feed cursor older than the feed keeps; the
#: metadata's ``oldestCursor`` is where what is kept begins.
CURSOR_EXPIRED = "CURSOR_EXPIRED"


class DomainError(Exception):
    """Base of errors that are the caller's doing or an expected condition."""

    code: grpc.StatusCode = grpc.StatusCode.FAILED_PRECONDITION
    reason: str = "FAILED_PRECONDITION"
    #: For the log line only, never the caller: what an upstream failure really was.
    log_detail: str = ""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def details(self) -> list[any_pb2.Any]:
        info = error_details_pb2.ErrorInfo(reason=self.reason, domain=DOMAIN)
        packed = any_pb2.Any()
        packed.Pack(info)
        return [packed]


@dataclass(frozen=True)
class FieldViolation:
    field: str
    description: str


class InvalidArgument(DomainError):
    code = grpc.StatusCode.INVALID_ARGUMENT
    reason = "INVALID_ARGUMENT"

    def __init__(self, violations: list[FieldViolation] | FieldViolation) -> None:
        self.violations = violations if isinstance(violations, list) else [violations]
        summary = "; ".join(f"{v.field}: {v.description}" for v in self.violations)
        super().__init__(summary)

    @classmethod
    def field(cls, field: str, description: str) -> InvalidArgument:
        return cls(FieldViolation(field, description))

    def details(self) -> list[any_pb2.Any]:
        bad = error_details_pb2.BadRequest(
            field_violations=[
                error_details_pb2.BadRequest.FieldViolation(
                    field=v.field, description=v.description
                )
                for v in self.violations
            ]
        )
        packed = any_pb2.Any()
        packed.Pack(bad)
        return [packed]


class NotFound(DomainError):
    code = grpc.StatusCode.NOT_FOUND
    reason = "NOT_FOUND"


class AlreadyExists(DomainError):
    code = grpc.StatusCode.ALREADY_EXISTS
    reason = "ALREADY_EXISTS"


class Conflict(DomainError):
    """A request id reused with another body, or a concurrent change."""

    code = grpc.StatusCode.ABORTED
    reason = "CONFLICT"


class FailedPrecondition(DomainError):
    code = grpc.StatusCode.FAILED_PRECONDITION
    reason = "FAILED_PRECONDITION"


class OutOfRange(DomainError):
    """A position before what is kept or after what exists (an expired feed cursor).

    ``reason`` and ``metadata`` go into the ErrorInfo (AIP-193: an UPPER_SNAKE_CASE reason
    and lowerCamelCase keys), so a client can act on them without reading the message.
    """

    code = grpc.StatusCode.OUT_OF_RANGE
    reason = "OUT_OF_RANGE"

    def __init__(
        self, message: str, *, reason: str | None = None, metadata: dict[str, str] | None = None
    ) -> None:
        super().__init__(message)
        if reason is not None:
            self.reason = reason
        self.metadata = dict(metadata or {})

    def details(self) -> list[any_pb2.Any]:
        info = error_details_pb2.ErrorInfo(
            reason=self.reason, domain=DOMAIN, metadata=self.metadata
        )
        packed = any_pb2.Any()
        packed.Pack(info)
        return [packed]


def error_info(error: grpc.aio.AioRpcError | grpc.RpcError) -> error_details_pb2.ErrorInfo | None:
    """The ErrorInfo an error status carries, if any (for clients and tests)."""
    from grpc_status import rpc_status

    status = rpc_status.from_call(error)  # type: ignore[arg-type]
    for detail in status.details if status is not None else ():
        if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
            info = error_details_pb2.ErrorInfo()
            detail.Unpack(info)
            return info
    return None


class PermissionDenied(DomainError):
    code = grpc.StatusCode.PERMISSION_DENIED
    reason = "PERMISSION_DENIED"


class Unauthenticated(DomainError):
    code = grpc.StatusCode.UNAUTHENTICATED
    reason = "UNAUTHENTICATED"


class Unavailable(DomainError):
    code = grpc.StatusCode.UNAVAILABLE
    reason = "UNAVAILABLE"

    def retry_details(self, seconds: float) -> list[any_pb2.Any]:
        """ErrorInfo and RetryInfo: try again after ``seconds``."""
        return [*self.details(), retry_info(seconds)]


class ResourceExhausted(DomainError):
    code = grpc.StatusCode.RESOURCE_EXHAUSTED
    reason = "RATE_LIMITED"

    def __init__(self, message: str, retry_after: float) -> None:
        super().__init__(message)
        self.retry_after = retry_after

    def details(self) -> list[any_pb2.Any]:
        return [*super().details(), retry_info(self.retry_after)]


def retry_info(seconds: float) -> any_pb2.Any:
    """A packed ``google.rpc.RetryInfo``: try again after ``seconds``."""
    seconds = max(seconds, 0.0)
    retry = error_details_pb2.RetryInfo(
        retry_delay=duration_pb2.Duration(
            seconds=int(seconds), nanos=int((seconds - int(seconds)) * 1e9)
        )
    )
    packed = any_pb2.Any()
    packed.Pack(retry)
    return packed


def to_status(error: DomainError) -> status_pb2.Status:
    return status_pb2.Status(
        code=error.code.value[0], message=error.message, details=error.details()
    )


def internal_status(request_id: str) -> status_pb2.Status:
    return status_pb2.Status(
        code=code_pb2.INTERNAL, message=f"internal error; request id {request_id}"
    )


def field_violations(error: grpc.aio.AioRpcError | grpc.RpcError) -> list[tuple[str, str]]:
    """The BadRequest field violations carried by an error status (for clients and tests)."""
    from grpc_status import rpc_status

    status = rpc_status.from_call(error)  # type: ignore[arg-type]
    found: list[tuple[str, str]] = []
    if status is None:
        return found
    for detail in status.details:
        if detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
            bad = error_details_pb2.BadRequest()
            detail.Unpack(bad)
            found.extend((v.field, v.description) for v in bad.field_violations)
    return found


#: A peer's errors that are the caller's doing pass on as they came; any other is our
#: own trouble, told to the caller as retryable without our topology in it.
_PASSED_ON = frozenset(
    {
        grpc.StatusCode.INVALID_ARGUMENT,
        grpc.StatusCode.NOT_FOUND,
        grpc.StatusCode.ALREADY_EXISTS,
        grpc.StatusCode.PERMISSION_DENIED,
        grpc.StatusCode.FAILED_PRECONDITION,
        grpc.StatusCode.ABORTED,
        grpc.StatusCode.OUT_OF_RANGE,
        grpc.StatusCode.RESOURCE_EXHAUSTED,
    }
)
UPSTREAM_RETRY_SECONDS = 1.0


class Upstream(DomainError):
    """A peer's error status, passed on as it came (code, message, rich details), or, when
    it is not the caller's doing, as a generic retryable UNAVAILABLE / DEADLINE_EXCEEDED."""

    def __init__(self, code: grpc.StatusCode, message: str, details: list[any_pb2.Any]) -> None:
        super().__init__(message)
        self.code = code
        self.reason = code.name
        self._details = details

    @classmethod
    def of(cls, error: grpc.aio.AioRpcError) -> Upstream:
        from grpc_status import rpc_status

        code = error.code()
        if code in _PASSED_ON:
            status = rpc_status.from_call(error)  # type: ignore[arg-type]
            details = list(status.details) if status is not None else []
            return cls(code, error.details() or code.name, details)
        retry = Unavailable("retry").retry_details(UPSTREAM_RETRY_SECONDS)
        if code is grpc.StatusCode.DEADLINE_EXCEEDED:
            found = cls(code, "the request did not complete in time; retry", retry)
        elif code is grpc.StatusCode.CANCELLED:
            found = cls(code, "the request was cancelled", [])
        else:
            found = cls(
                grpc.StatusCode.UNAVAILABLE, "the service is unavailable; retry shortly", retry
            )
        found.log_detail = f"{code.name}: {error.details() or ''}"[:500]
        return found

    def details(self) -> list[any_pb2.Any]:
        return self._details
