"""Domain errors and their one mapping to gRPC status codes with rich details.

Service code raises these; the server interceptor turns them into statuses.
Nothing else in the code base chooses a status code for an error.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import grpc
from google.protobuf import any_pb2, duration_pb2
from google.rpc import code_pb2, error_details_pb2, status_pb2
from sqlalchemy import exc as sa_exc

DOMAIN = "antifraud.gov.example"
#: ErrorInfo reason (with OUT_OF_RANGE) of a feed cursor older than the feed keeps; the
#: metadata's ``oldestCursor`` is where what is kept begins.
CURSOR_EXPIRED = "CURSOR_EXPIRED"

#: A status travels in the trailers, which gRPC limits to 8 KiB by default: the details
#: base64-encoded, the message percent-encoded (up to 9 bytes a character) and again
#: inside the details. So a BadRequest carries at most MAX_VIOLATIONS violations within
#: DETAILS_BUDGET bytes, each clipped, and one more that counts the rest; the message is
#: clipped to MESSAGE_MAX characters.
MAX_VIOLATIONS = 20
DETAILS_BUDGET = 2048
FIELD_MAX = 100
DESCRIPTION_MAX = 160
MESSAGE_MAX = 256
#: How long a client should wait before retrying an unreachable dependency.
RETRY_AFTER_SECONDS = 1.0


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
        super().__init__(_clip("; ".join(f"{v.field}: {v.description}" for v in self.shown())))

    def shown(self) -> list[FieldViolation]:
        """The violations as sent: at most MAX_VIOLATIONS, clipped, and a count of the rest."""
        shown: list[FieldViolation] = []
        size = 0
        for v in self.violations[:MAX_VIOLATIONS]:
            item = FieldViolation(_clip(v.field, FIELD_MAX), _clip(v.description, DESCRIPTION_MAX))
            size += len(item.field.encode()) + len(item.description.encode())
            if shown and size > DETAILS_BUDGET:
                break
            shown.append(item)
        rest = len(self.violations) - len(shown)
        if rest > 0:
            shown.append(FieldViolation("request", f"and {rest} more invalid fields"))
        return shown

    @classmethod
    def field(cls, field: str, description: str) -> InvalidArgument:
        return cls(FieldViolation(field, description))

    def details(self) -> list[any_pb2.Any]:
        bad = error_details_pb2.BadRequest(
            field_violations=[
                error_details_pb2.BadRequest.FieldViolation(
                    field=v.field, description=v.description
                )
                for v in self.shown()
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
    """Try again later: a dependency cannot be reached now. Carries RetryInfo."""

    code = grpc.StatusCode.UNAVAILABLE
    reason = "UNAVAILABLE"

    def __init__(self, message: str, retry_after: float = RETRY_AFTER_SECONDS) -> None:
        super().__init__(message)
        self.retry_after = retry_after

    def details(self) -> list[any_pb2.Any]:
        return [*super().details(), retry_info(self.retry_after)]

    def retry_details(self, seconds: float) -> list[any_pb2.Any]:
        """ErrorInfo and RetryInfo: try again after ``seconds``."""
        return [*DomainError.details(self), retry_info(seconds)]


class ResourceExhausted(DomainError):
    code = grpc.StatusCode.RESOURCE_EXHAUSTED
    reason = "RATE_LIMITED"

    def __init__(self, message: str, retry_after: float) -> None:
        super().__init__(message)
        self.retry_after = retry_after

    def details(self) -> list[any_pb2.Any]:
        return [*super().details(), retry_info(self.retry_after)]


def _clip(text: str, limit: int = MESSAGE_MAX) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


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


#: PostgreSQL error classes that mean "not now" rather than "not this request":
#: 08 connection exception, 53 insufficient resources, 57 operator intervention
#: (57014: statement timeout, 57P01-03: shutdown, cannot connect now), 40 rollback
#: (serialization failure, deadlock): retrying is safe and may well succeed.
_RETRYABLE_SQLSTATE_CLASSES = ("08", "53", "57", "40")


def _sqlstate(error: BaseException) -> str:
    for name in ("sqlstate", "pgcode"):
        value = getattr(error, name, None)
        if isinstance(value, str) and value:
            return value
    return ""


def _causes(error: BaseException) -> list[BaseException]:
    found: list[BaseException] = []
    current: BaseException | None = error
    while current is not None and len(found) < 8:
        found.append(current)
        orig = getattr(current, "orig", None)
        current = orig if isinstance(orig, BaseException) else current.__cause__
    return found


def infrastructure_error(error: BaseException) -> Unavailable | None:
    """The one mapping of infrastructure failures: a database or peer that cannot be
    reached, refuses, times out or has no connection to spare is UNAVAILABLE with
    RetryInfo, so standard retry policies try again. None for anything else."""
    for cause in _causes(error):
        if isinstance(cause, sa_exc.IntegrityError | sa_exc.ProgrammingError):
            return None
        if isinstance(
            cause,
            sa_exc.OperationalError
            | sa_exc.InterfaceError
            | sa_exc.TimeoutError  # no pooled connection free in time
            | sa_exc.DisconnectionError
            | ConnectionError
            | OSError
            | asyncio.TimeoutError,
        ):
            return Unavailable("a dependency is unavailable; retry later")
        if isinstance(cause, sa_exc.DBAPIError) and cause.connection_invalidated:
            return Unavailable("a dependency is unavailable; retry later")
        if _sqlstate(cause)[:2] in _RETRYABLE_SQLSTATE_CLASSES:
            return Unavailable("a dependency is unavailable; retry later")
    return None


def to_status(error: DomainError) -> status_pb2.Status:
    return status_pb2.Status(
        code=error.code.value[0], message=_clip(error.message), details=error.details()
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
