"""Protobuf <-> domain for the identity API: request fields in, resources out."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone
from enum import Enum

from google.protobuf.internal.enum_type_wrapper import EnumTypeWrapper
from google.protobuf.timestamp_pb2 import Timestamp

from services.api.antifraud.common.v1 import common_pb2
from services.api.antifraud.identity.v1 import identity_pb2 as pb
from services.common import validation
from services.common.indicators import Indicator, IndicatorKind, InvalidIndicator, normalize
from services.common.validation import Violations
from services.identity.domain import id_number, names
from services.identity.domain.accounts import BoundAccount
from services.identity.domain.audit import AuditEvent
from services.identity.domain.id_number import ResidentId
from services.identity.domain.lookups import Answer, BankCard, LinkedAccount
from services.identity.domain.users import User
from services.identity.domain.verification import VerificationState
from services.identity.service_layer.verification import VerificationView

MAX_ID = 64
MAX_FACE_TOKEN = 8192
USERS = "users/"
VERIFICATION_REQUESTS = "verificationRequests/"
PHONE_CHALLENGES = "phoneChallenges/"

#: China has one time zone and no daylight saving: a birth date is a date in UTC+8.
CHINA = timezone(timedelta(hours=8))


def enum(prefix: str, member: Enum) -> str:
    """A proto enum value by name (``VERIFICATION_STATE_PENDING``): the domain enums carry the
    same names, and the stubs type enum fields by name or by their own wrapper, not by int."""
    return f"{prefix}_{member.name}"


def _partner_enum(wrapper: EnumTypeWrapper, number: int, fallback: str) -> str:
    """Our value for a partner's enum number (the same numbers); ``fallback`` for one we lack."""
    try:
        return str(wrapper.Name(number))
    except ValueError:
        return fallback


def timestamp(value: datetime) -> Timestamp:
    ts = Timestamp()
    ts.FromDatetime(value.astimezone(UTC))
    return ts


def china_today(now: datetime) -> date:
    return now.astimezone(CHINA).date()


# ----------------------------------------------------------------------------- fields in


def identifier(v: Violations, field: str, value: str) -> str:
    """An opaque id (user id, request id part of a name): short, printable, no slash."""
    value = validation.text(v, field, value, max_len=MAX_ID, required=True)
    if value and ("/" in value or " " in value):
        v.add(field, "is not a valid id")
    return value


def resource_id(v: Violations, field: str, name: str, collection: str) -> str:
    """The id in ``<collection>{id}``, or a violation."""
    if not name.startswith(collection):
        v.add(field, f"must be {collection}{{id}}")
        return ""
    return identifier(v, field, name[len(collection) :])


def one_time_code(v: Violations, field: str, value: str) -> str:
    """A code as typed: 4 to 8 ASCII digits (spaces around it ignored)."""
    code = value.strip()
    if not code:
        v.add(field, "is required")
    elif not (4 <= len(code) <= 8 and code.isascii() and code.isdigit()):
        v.add(field, "must be 4 to 8 digits")
    return code


def person_name(v: Violations, field: str, value: str) -> str:
    raw = validation.text(v, field, value, max_len=names.MAX_LENGTH * 2, required=True)
    if not raw:
        return ""
    try:
        return names.clean(raw)
    except names.InvalidName as exc:
        v.add(field, exc.reason)
        return ""


def resident_id(v: Violations, field: str, value: str, today: date) -> ResidentId | None:
    if not value.strip():
        v.add(field, "is required")
        return None
    if len(value) > 64:
        v.add(field, "must be 18 characters")
        return None
    try:
        return id_number.parse(value, today=today)
    except id_number.InvalidIdNumber as exc:
        v.add(field, exc.reason)
        return None


def cn_mobile(v: Violations, field: str, value: str) -> str:
    """A Chinese mobile number in E.164, through the shared normaliser."""
    if not value.strip():
        v.add(field, "is required")
        return ""
    try:
        phone = normalize(IndicatorKind.PHONE_NUMBER, value)
    except InvalidIndicator as exc:
        v.add(field, exc.reason)
        return ""
    if not (phone.value.startswith("+861") and len(phone.value) == 14):
        v.add(field, "must be a Chinese mobile number")
        return ""
    return phone.value


def account(
    v: Violations, field: str, present: bool, message: common_pb2.Indicator
) -> Indicator | None:
    if not present:
        v.add(field, "is required")
        return None
    return validation.indicator(v, field, message.kind, message.value)


# ---------------------------------------------------------------------------- resources out


def user(value: User) -> pb.User:
    return pb.User(
        name=f"{USERS}{value.id}",
        user_id=value.id,
        identity=common_pb2.MaskedIdentity(
            masked_name=value.masked_name,
            masked_id_number=value.masked_id_number,
            masked_phone_number=value.masked_phone,
        ),
        identity_verified=True,
        verify_time=timestamp(value.verify_time),
        create_time=timestamp(value.create_time),
    )


def verification_request(view: VerificationView) -> pb.VerificationRequest:
    request = view.request
    message = pb.VerificationRequest(
        name=f"{VERIFICATION_REQUESTS}{request.id}",
        requester_user_id=request.requester_id,
        requester_identity=common_pb2.MaskedIdentity(
            masked_name=view.requester.masked_name,
            masked_phone_number=view.requester.masked_phone,
        ),
        masked_target_phone_number=request.masked_target_phone,
        purpose=enum("VERIFICATION_PURPOSE", request.purpose),
        state=enum("VERIFICATION_STATE", view.state),
        create_time=timestamp(request.create_time),
        expire_time=timestamp(request.expire_time),
    )
    if view.target_masked_name is not None:
        message.target_identity.CopyFrom(
            common_pb2.MaskedIdentity(masked_name=view.target_masked_name)
        )
    if view.attempts_left is not None:
        message.face_attempts_remaining = view.attempts_left
    if request.respond_time is not None:
        message.respond_time.CopyFrom(timestamp(request.respond_time))
    if view.state is VerificationState.VERIFIED and request.name_matches is not None:
        message.name_check = pb.NAME_CHECK_MATCH if request.name_matches else pb.NAME_CHECK_NO_MATCH
    return message


def bound_account(value: BoundAccount) -> pb.BoundAccount:
    return pb.BoundAccount(
        name=f"{USERS}{value.user_id}/accounts/{value.id}",
        kind=enum("INDICATOR_KIND", value.kind),
        masked_value=value.masked_account,
        confirmation=enum("ACCOUNT_CONFIRMATION", value.confirmation),
        create_time=timestamp(value.create_time),
    )


def source(answer: Answer[object]) -> pb.SourceResult:
    return pb.SourceResult(
        source_id=answer.partner.id,
        display_name=answer.partner.display_name,
        status=enum("SOURCE_STATUS", answer.status),
    )


def linked_account(value: LinkedAccount) -> pb.LinkedAccount:
    message = pb.LinkedAccount(
        platform=_partner_enum(pb.InternetPlatform, value.platform, "INTERNET_PLATFORM_OTHER"),
        masked_account_name=value.masked_account_name,
        carrier_id=value.carrier_id,
    )
    if value.register_time is not None:
        message.register_time.CopyFrom(timestamp(value.register_time))
    return message


def bank_card(value: BankCard) -> pb.BankCard:
    return pb.BankCard(
        bank_id=value.bank_id,
        bank_name=value.bank_name,
        card_type=_partner_enum(pb.BankCardType, value.card_type, "BANK_CARD_TYPE_UNSPECIFIED"),
        masked_card_number=value.masked_card_number,
    )


def audit_event(value: AuditEvent) -> pb.AuditEvent:
    return pb.AuditEvent(
        name=f"auditEvents/{value.id}",
        event_time=timestamp(value.event_time),
        actor=value.actor,
        record=value.record,
        fields=list(value.fields),
        purpose=value.purpose,
        request_id=value.request_id,
    )
