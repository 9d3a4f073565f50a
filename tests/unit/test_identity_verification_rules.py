"""Remote verification rules: states, expiry on read, face attempts, rate limits; enum numbers."""

from __future__ import annotations

import enum
from datetime import UTC, datetime, timedelta

import pytest

from services.api.antifraud.identity.v1 import identity_pb2 as pb
from services.common.errors import PermissionDenied
from services.common.principals import Principal, Role
from services.identity.domain.accounts import Confirmation, PayeeMatch, PayeeSource
from services.identity.domain.lookups import SourceStatus
from services.identity.domain.verification import (
    Decision,
    FaceResult,
    Purpose,
    RateLimit,
    RequestClosed,
    VerificationRequest,
    VerificationState,
    retry_after,
)
from services.identity.service_layer.access import require_role, require_self

T0 = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)
TTL = timedelta(minutes=10)


def _request(**changes: object) -> VerificationRequest:
    fields: dict[str, object] = {
        "id": "r1",
        "requester_id": "a",
        "target_phone_hmac": "h",
        "masked_target_phone": "+86139****0000",
        "purpose": Purpose.PAYMENT,
        "state": VerificationState.PENDING,
        "create_time": T0,
        "expire_time": T0 + TTL,
    }
    fields.update(changes)
    return VerificationRequest(**fields)  # type: ignore[arg-type]


def test_a_pending_request_reads_as_expired_after_its_expiry() -> None:
    request = _request()
    assert request.state_at(T0 + TTL - timedelta(seconds=1)) is VerificationState.PENDING
    assert request.state_at(T0 + TTL) is VerificationState.EXPIRED
    # An answered request keeps its answer past the expiry.
    declined = request.decline("b", T0 + timedelta(minutes=1))
    assert declined.state_at(T0 + TTL * 2) is VerificationState.DECLINED


def test_an_expired_request_cannot_be_answered() -> None:
    request = _request()
    with pytest.raises(RequestClosed) as closed:
        request.decline("b", T0 + TTL)
    assert closed.value.state is VerificationState.EXPIRED
    with pytest.raises(RequestClosed):
        request.check_can_accept(T0 + TTL)


def test_a_passed_face_check_verifies() -> None:
    done = _request().record_face_check("b", FaceResult.PASSED, "ref-1", T0, max_attempts=3)
    assert done.state is VerificationState.VERIFIED
    assert done.responder_id == "b"
    assert done.face_reference == "ref-1"
    assert done.respond_time == T0


def test_failed_face_checks_leave_attempts_then_fail_the_request() -> None:
    request = _request()
    for attempt in (1, 2):
        request = request.record_face_check(
            "b", FaceResult.FAILED, f"r{attempt}", T0, max_attempts=3
        )
        assert request.state is VerificationState.PENDING
        assert request.attempts_left(3) == 3 - attempt
        assert request.respond_time is None
    request = request.record_face_check("b", FaceResult.FAILED, "r3", T0, max_attempts=3)
    assert request.state is VerificationState.FAILED
    assert request.attempts_left(3) == 0
    with pytest.raises(RequestClosed):
        request.record_face_check("b", FaceResult.PASSED, "r4", T0, max_attempts=3)


def test_a_face_result_arriving_just_after_expiry_still_counts() -> None:
    request = _request()
    request.check_can_accept(T0 + TTL - timedelta(seconds=1))
    done = request.record_face_check("b", FaceResult.PASSED, "r", T0 + TTL, max_attempts=3)
    assert done.state is VerificationState.VERIFIED


def test_rate_limit_counts_the_window_and_says_when_to_retry() -> None:
    rule = RateLimit(3, timedelta(hours=1))
    times = [T0, T0 + timedelta(minutes=10), T0 + timedelta(minutes=20)]
    assert retry_after(times[:2], T0 + timedelta(minutes=30), rule) is None
    wait = retry_after(times, T0 + timedelta(minutes=30), rule)
    assert wait == pytest.approx(30 * 60)  # the oldest leaves the window at T0 + 1 h
    assert retry_after(times, T0 + timedelta(hours=1, seconds=1), rule) is None
    # Older requests outside the window do not count.
    assert retry_after([T0 - timedelta(hours=2)] * 10, T0, rule) is None


@pytest.mark.parametrize(
    ("domain_enum", "proto_enum", "prefix"),
    [
        (VerificationState, pb.VerificationState, "VERIFICATION_STATE"),
        (Purpose, pb.VerificationPurpose, "VERIFICATION_PURPOSE"),
        (Decision, pb.VerificationDecision, "VERIFICATION_DECISION"),
        (FaceResult, pb.FaceCheckResult, "FACE_CHECK_RESULT"),
        (Confirmation, pb.AccountConfirmation, "ACCOUNT_CONFIRMATION"),
        (PayeeMatch, pb.PayeeMatch, "PAYEE_MATCH"),
        (PayeeSource, pb.PayeeSource, "PAYEE_SOURCE"),
        (SourceStatus, pb.SourceStatus, "SOURCE_STATUS"),
    ],
)
def test_domain_enums_match_the_proto_by_name_and_number(
    domain_enum: type[enum.IntEnum], proto_enum: object, prefix: str
) -> None:
    for member in domain_enum:
        assert proto_enum.Value(f"{prefix}_{member.name}") == member.value  # type: ignore[attr-defined]
    assert len(proto_enum.keys()) == len(domain_enum) + 1  # type: ignore[attr-defined]


def test_handlers_refuse_callers_of_another_role_or_acting_for_someone_else() -> None:
    require_self(Principal.parse("citizen:u1"), "u1")
    require_self(Principal.parse(""), "u1")
    for other in ("citizen:u2", "citizen:", "admin:root", "analyst:a7"):
        with pytest.raises(PermissionDenied):
            require_self(Principal.parse(other), "u1")
    require_role(Principal.parse("admin:root"), Role.INTERNAL, Role.ADMIN)
    with pytest.raises(PermissionDenied, match="not allowed for analyst callers"):
        require_role(Principal.parse("analyst:a7"), Role.INTERNAL, Role.ADMIN)
