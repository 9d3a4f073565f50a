"""The one mapping of errors to statuses: summarised BadRequests, retryable infrastructure."""

from __future__ import annotations

import base64
import urllib.parse

import grpc
import pytest
from google.rpc import error_details_pb2
from sqlalchemy import exc as sa_exc

from services.common.errors import (
    MAX_VIOLATIONS,
    FieldViolation,
    InvalidArgument,
    NotFound,
    Unavailable,
    infrastructure_error,
    to_status,
)

#: gRPC's default limit on the size of received metadata.
METADATA_LIMIT = 8 * 1024


def trailer_bytes(error: InvalidArgument) -> int:
    """What the status costs in the trailers: details base64, message percent-encoded."""
    status = to_status(error)
    details = base64.b64encode(status.SerializeToString())
    message = urllib.parse.quote(status.message, safe=" ")
    return len(details) + len(message)


def bad_request(error: InvalidArgument) -> error_details_pb2.BadRequest:
    bad = error_details_pb2.BadRequest()
    to_status(error).details[0].Unpack(bad)
    return bad


def test_a_few_violations_are_sent_as_they_are() -> None:
    error = InvalidArgument([FieldViolation("a", "must be set"), FieldViolation("b", "too long")])
    bad = bad_request(error)
    assert [(v.field, v.description) for v in bad.field_violations] == [
        ("a", "must be set"),
        ("b", "too long"),
    ]
    assert error.message == "a: must be set; b: too long"


def test_hundreds_of_violations_are_summarised_with_a_count() -> None:
    error = InvalidArgument(
        [FieldViolation(f"items[{i}].kind", "unknown enum value") for i in range(700)]
    )
    bad = bad_request(error)
    assert len(bad.field_violations) == MAX_VIOLATIONS + 1
    assert bad.field_violations[0].field == "items[0].kind"
    last = bad.field_violations[-1]
    assert (last.field, last.description) == (
        "request",
        f"and {700 - MAX_VIOLATIONS} more invalid fields",
    )
    assert trailer_bytes(error) < METADATA_LIMIT


def test_long_and_non_ascii_violations_still_fit() -> None:
    huge = "网" * 5000
    error = InvalidArgument([FieldViolation(huge, huge) for _ in range(300)])
    bad = bad_request(error)
    assert bad.field_violations[-1].field == "request"
    assert all(len(v.description) <= 160 for v in bad.field_violations)
    assert trailer_bytes(error) < METADATA_LIMIT


def test_unavailable_carries_retry_info() -> None:
    status = to_status(Unavailable("down", retry_after=1.5))
    retry = error_details_pb2.RetryInfo()
    assert any(d.Unpack(retry) for d in status.details if d.Is(retry.DESCRIPTOR))
    assert (retry.retry_delay.seconds, retry.retry_delay.nanos) == (1, 500_000_000)


class _Sqlstate(Exception):
    def __init__(self, sqlstate: str) -> None:
        super().__init__(sqlstate)
        self.sqlstate = sqlstate


@pytest.mark.parametrize(
    "error",
    [
        sa_exc.OperationalError("SELECT 1", {}, Exception("connection refused")),
        sa_exc.InterfaceError("SELECT 1", {}, Exception("connection is closed")),
        sa_exc.TimeoutError("QueuePool limit of size 10 overflow 10 reached"),
        ConnectionRefusedError(111, "Connection refused"),
        TimeoutError(),
        sa_exc.DBAPIError("SELECT 1", {}, _Sqlstate("57014")),  # statement timeout
        sa_exc.DBAPIError("SELECT 1", {}, _Sqlstate("57P01")),  # admin shutdown
        sa_exc.DBAPIError("SELECT 1", {}, _Sqlstate("08006")),  # connection failure
    ],
    ids=lambda e: type(e).__name__ + ":" + str(getattr(getattr(e, "orig", None), "sqlstate", "")),
)
def test_unreachable_infrastructure_is_retryable(error: BaseException) -> None:
    mapped = infrastructure_error(error)
    assert mapped is not None
    assert mapped.code is grpc.StatusCode.UNAVAILABLE


def test_a_chained_cause_is_found() -> None:
    outer = RuntimeError("while saving")
    outer.__cause__ = ConnectionResetError("reset by peer")
    assert infrastructure_error(outer) is not None


@pytest.mark.parametrize(
    "error",
    [
        sa_exc.IntegrityError("INSERT", {}, _Sqlstate("23505")),
        sa_exc.ProgrammingError("SELECT", {}, _Sqlstate("42P01")),
        ValueError("a bug"),
        NotFound("x"),
    ],
    ids=lambda e: type(e).__name__,
)
def test_everything_else_is_not_infrastructure(error: BaseException) -> None:
    assert infrastructure_error(error) is None
