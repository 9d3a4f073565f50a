"""The identity service end to end: real servers on real sockets, with the partner simulators,
the risk service and the warning service running beside it.

Registration against the national registry, the whole remote-verification flow (verified,
declined, expired, blocked, failed face checks, an unregistered target invited by SMS),
account binding and verification, confirmation of payee, and the carrier and bank
look-ups with partial answers when partners are down or slow. Personal values never
reach a log line.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any, TypeVar

import grpc
import pytest
import structlog
from grpc_status import rpc_status
from structlog.testing import capture_logs

from services import registry
from services.api.antifraud.common.v1 import common_pb2
from services.api.antifraud.identity.v1 import identity_pb2 as pb
from services.api.antifraud.identity.v1 import identity_pb2_grpc
from services.api.antifraud.partner.v1 import bank_pb2, carrier_pb2, face_pb2, registry_pb2
from services.api.antifraud.partner.v1 import simulator_pb2 as sim
from services.api.antifraud.risk.v1 import risk_pb2, risk_pb2_grpc
from services.api.antifraud.warning.v1 import warning_pb2, warning_pb2_grpc
from services.common.config import ServerSettings, env_key
from services.common.db import Database
from services.common.errors import field_violations
from services.common.indicators import luhn_valid
from services.identity.adapters.keys import KeyRing
from services.identity.adapters.repository import FACE_SUBJECT_INDEX
from services.identity.bootstrap import wire
from services.identity.component import IdentityComponent
from services.identity.config import IdentitySettings
from services.identity.domain.id_number import check_character
from services.partners.bootstrap import build_partners
from services.partners.directory import SIMULATORS, PartnerClients
from services.partners.domain.behavior import Behavior
from tests import harness
from tests.harness import serving

T = TypeVar("T")

PARTNER_TIMEOUT = 1.0
_serial = itertools.count(1)


# ------------------------------------------------------------------------------- the suite


class Clock:
    """The identity service's clock: real time plus an offset a test may push forward."""

    def __init__(self) -> None:
        self.offset = timedelta()

    def __call__(self) -> datetime:
        return datetime.now(UTC) + self.offset


@dataclass
class Suite:
    identity: identity_pb2_grpc.IdentityServiceStub
    warning: warning_pb2_grpc.WarningServiceStub
    risk: risk_pb2_grpc.RiskServiceStub
    partners: PartnerClients
    component: IdentityComponent
    clock: Clock


@pytest.fixture(scope="module")
async def suite(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Suite]:
    data = tmp_path_factory.mktemp("identity-suite")
    with pytest.MonkeyPatch.context() as env:
        env.setenv("ANTIFRAUD_DATA_DIR", str(data))
        env.setenv("ANTIFRAUD_WARNING_STREAM_POLL_SECONDS", "0.1")
        env.setenv("ANTIFRAUD_WARNING_SMS_POLL_SECONDS", "0.2")
        fleet = build_partners(
            settings_for=lambda name: ServerSettings(name, "127.0.0.1:0", grace_seconds=0.2),
            behavior=Behavior(),  # no latency, no failures until a test sets them
        )
        async with serving(fleet) as partners_server:
            targets = {name: fleet.address(name) for name in SIMULATORS}
            targets["partners"] = partners_server.address
            for name, address in targets.items():
                env.setenv(f"ANTIFRAUD_{env_key(name)}_TARGET", address)
            async with serving(registry.build("risk")) as risk_server:
                env.setenv("ANTIFRAUD_RISK_TARGET", risk_server.address)
                async with serving(registry.build("warning")) as warning_server:
                    clock = Clock()
                    settings = IdentitySettings(
                        partner_timeout_seconds=PARTNER_TIMEOUT,
                        sweep_interval_seconds=0.2,
                        targets={
                            **targets,
                            "risk": risk_server.address,
                            "warning": warning_server.address,
                        },
                    )
                    db = Database("identity", f"sqlite+aiosqlite:///{data / 'identity.db'}")
                    component = wire(db, KeyRing.generate(), settings, clock=clock)
                    async with (
                        serving(component) as identity_server,
                        harness.channel(identity_server.address) as identity_channel,
                        harness.channel(warning_server.address) as warning_channel,
                        harness.channel(risk_server.address) as risk_channel,
                        PartnerClients(targets) as clients,
                    ):
                        yield Suite(
                            identity=identity_pb2_grpc.IdentityServiceStub(identity_channel),
                            warning=warning_pb2_grpc.WarningServiceStub(warning_channel),
                            risk=risk_pb2_grpc.RiskServiceStub(risk_channel),
                            partners=clients,
                            component=component,
                            clock=clock,
                        )


@pytest.fixture(autouse=True)
async def fresh_partners(suite: Suite) -> None:
    """Every test starts with healthy, empty simulators."""
    await suite.partners.control().Reset(sim.ResetRequest())


# ----------------------------------------------------------------------------- test data


@dataclass(frozen=True)
class Person:
    name: str
    id_number: str
    phone: str  # E.164, a China Mobile number
    user_id: str = ""

    @property
    def metadata(self) -> tuple[tuple[str, str], ...]:
        return (("x-principal", f"citizen:{self.user_id}"),)


def new_person(name: str = "张三丰") -> Person:
    n = next(_serial) + uuid.uuid4().int % 10_000 * 1000
    first17 = f"110105{date(1960, 1, 1) + timedelta(days=n % 20_000):%Y%m%d}{n % 1000:03d}"
    return Person(name, first17 + check_character(first17), f"+86138{n % 100_000_000:08d}")


def card_number(prefix: str, length: int = 19) -> str:
    body = (prefix + f"{uuid.uuid4().int:030d}")[: length - 1]
    return next(body + d for d in "0123456789" if luhn_valid(body + d))


def as_(role: str) -> tuple[tuple[str, str], ...]:
    return (("x-principal", role),)


async def register(suite: Suite, person: Person | None = None) -> Person:
    person = person or new_person()
    response = await suite.identity.RegisterUser(
        pb.RegisterUserRequest(
            request_id=str(uuid.uuid4()),
            full_name=person.name,
            id_number=person.id_number,
            phone_number=person.phone,
        )
    )
    return Person(person.name, person.id_number, person.phone, response.user.user_id)


async def face_checked(suite: Suite, person: Person) -> Person:
    """A passed face check of the person just now: it opens their look-ups for a while."""
    made = await suite.identity.CreateFaceCheck(
        pb.CreateFaceCheckRequest(
            user_id=person.user_id,
            request_id=str(uuid.uuid4()),
            face_token=f"liveness-{uuid.uuid4()}",
        ),
        metadata=person.metadata,
    )
    assert made.face_check.result == pb.FACE_CHECK_RESULT_PASSED
    return person


async def rpc_error(call: Awaitable[object]) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await call
    return caught.value


async def eventually(check: Callable[[], Awaitable[T | None]], timeout: float = 10.0) -> T:
    """Poll ``check`` until it returns a value (not None); fail after ``timeout`` seconds."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        value = await check()
        if value is not None:
            return value
        if asyncio.get_running_loop().time() > deadline:
            pytest.fail(f"condition not met within {timeout} s")
        await asyncio.sleep(0.05)


async def ask(suite: Suite, requester: Person, target_phone: str) -> pb.VerificationRequest:
    response = await suite.identity.CreateVerificationRequest(
        pb.CreateVerificationRequestRequest(
            request_id=str(uuid.uuid4()),
            requester_user_id=requester.user_id,
            target_phone_number=target_phone,
            purpose=pb.VERIFICATION_PURPOSE_PAYMENT,
        ),
        metadata=requester.metadata,
    )
    created: pb.VerificationRequest = response.verification_request
    return created


async def answer(
    suite: Suite, person: Person, name: str, *, accept: bool, token: str = ""
) -> pb.RespondToVerificationRequestResponse:
    decision = pb.VERIFICATION_DECISION_ACCEPT if accept else pb.VERIFICATION_DECISION_DECLINE
    request = pb.RespondToVerificationRequestRequest(
        request_id=str(uuid.uuid4()),
        name=name,
        user_id=person.user_id,
        decision=decision,
        face_token=token or (f"liveness-{uuid.uuid4()}" if accept else ""),
    )
    response: pb.RespondToVerificationRequestResponse = (
        await suite.identity.RespondToVerificationRequest(request, metadata=person.metadata)
    )
    return response


async def get(suite: Suite, person: Person, name: str) -> pb.VerificationRequest:
    response = await suite.identity.GetVerificationRequest(
        pb.GetVerificationRequestRequest(name=name), metadata=person.metadata
    )
    found: pb.VerificationRequest = response.verification_request
    return found


async def received(suite: Suite, simulator: str, method: str) -> list[sim.ReceivedCall]:
    response = await suite.partners.control().ListReceived(
        sim.ListReceivedRequest(simulator=simulator, method=method, page_size=500)
    )
    return list(response.received_calls)


async def set_behavior(suite: Suite, simulator: str, **behavior: Any) -> None:
    await suite.partners.control().SetBehavior(
        sim.SetBehaviorRequest(simulator=simulator, behavior=sim.Behavior(**behavior))
    )


# -------------------------------------------------------------------------- registration


async def test_registration_confirms_with_the_registry_and_shows_only_masked_values(
    suite: Suite,
) -> None:
    person = new_person("欧阳娜娜")
    await suite.partners.control().SeedPersons(
        sim.SeedPersonsRequest(
            persons=[registry_pb2.Person(resident_id_number=person.id_number, name=person.name)]
        )
    )
    request = pb.RegisterUserRequest(
        request_id=str(uuid.uuid4()),
        full_name=person.name,
        id_number=person.id_number.lower(),  # a lower-case x is the same number
        phone_number=person.phone.removeprefix("+86"),
    )
    first = await suite.identity.RegisterUser(request)
    user = first.user
    assert user.name == f"users/{user.user_id}"
    assert user.identity.masked_name == "欧***"
    assert user.identity.masked_id_number == person.id_number[:6] + "*" * 10 + person.id_number[-2:]
    assert user.identity.masked_phone_number == person.phone[:6] + "****" + person.phone[-4:]
    assert user.identity_verified
    # A repeat of the request id returns the first response.
    assert await suite.identity.RegisterUser(request) == first
    # One user per ID number and per phone number.
    again = pb.RegisterUserRequest(
        request_id=str(uuid.uuid4()),
        full_name=person.name,
        id_number=person.id_number,
        phone_number=new_person().phone,
    )
    assert (
        await rpc_error(suite.identity.RegisterUser(again))
    ).code() is grpc.StatusCode.ALREADY_EXISTS
    # The user reads themselves; another citizen may not.
    me = Person(person.name, person.id_number, person.phone, user.user_id)
    mine = await suite.identity.GetUser(pb.GetUserRequest(name=user.name), metadata=me.metadata)
    assert mine.user == user
    other = await register(suite)
    denied = await rpc_error(
        suite.identity.GetUser(pb.GetUserRequest(name=user.name), metadata=other.metadata)
    )
    assert denied.code() is grpc.StatusCode.PERMISSION_DENIED
    # Internal services find a user by phone number; citizens may not.
    found = await suite.identity.FindUserByPhone(
        pb.FindUserByPhoneRequest(phone_number=person.phone)
    )
    assert found.user_id == user.user_id
    refused = await rpc_error(
        suite.identity.FindUserByPhone(
            pb.FindUserByPhoneRequest(phone_number=person.phone), metadata=other.metadata
        )
    )
    assert refused.code() is grpc.StatusCode.PERMISSION_DENIED


@pytest.mark.parametrize(
    ("changes", "fields"),
    [
        ({"id_number": "110105194912310021"}, {"id_number"}),  # wrong check character
        ({"id_number": "110105194902300025"}, {"id_number"}),  # 30 February
        ({"id_number": "11010519491231002"}, {"id_number"}),
        ({"phone_number": "010-62345678"}, {"phone_number"}),  # a landline
        ({"phone_number": "not a number"}, {"phone_number"}),
        ({"full_name": ""}, {"full_name"}),
        ({"full_name": "张三\x00"}, {"full_name"}),
        ({"request_id": "42"}, {"request_id"}),
    ],
)
async def test_bad_registrations_name_the_field(
    suite: Suite, changes: dict[str, str], fields: set[str]
) -> None:
    person = new_person()
    values = {
        "request_id": str(uuid.uuid4()),
        "full_name": person.name,
        "id_number": person.id_number,
        "phone_number": person.phone,
        **changes,
    }
    error = await rpc_error(suite.identity.RegisterUser(pb.RegisterUserRequest(**values)))
    assert error.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert {field for field, _ in field_violations(error)} == fields


async def test_a_name_the_registry_does_not_confirm_is_refused_without_saying_which(
    suite: Suite,
) -> None:
    person = new_person("王五")
    await suite.partners.control().SeedPersons(
        sim.SeedPersonsRequest(
            persons=[registry_pb2.Person(resident_id_number=person.id_number, name="赵六")]
        )
    )
    error = await rpc_error(
        suite.identity.RegisterUser(
            pb.RegisterUserRequest(
                request_id=str(uuid.uuid4()),
                full_name=person.name,
                id_number=person.id_number,
                phone_number=person.phone,
            )
        )
    )
    assert error.code() is grpc.StatusCode.INVALID_ARGUMENT
    violations = field_violations(error)
    assert {field for field, _ in violations} == {"full_name", "id_number"}
    assert "赵" not in str(violations)


async def test_registration_waits_for_the_registry_when_it_is_down(suite: Suite) -> None:
    await set_behavior(suite, "registry", failure_rate=1.0)
    error = await rpc_error(register(suite))
    assert error.code() is grpc.StatusCode.UNAVAILABLE


# ------------------------------------------------------------------- remote verification


async def test_verified_a_learns_only_bs_masked_name(suite: Suite) -> None:
    a, b, c = (
        await register(suite, new_person("李雷")),
        await register(suite, new_person("韩梅梅")),
        await register(suite),
    )
    # B is an app user at the warning service: the invitation is an app push.
    await suite.warning.UpsertRecipient(
        warning_pb2.UpsertRecipientRequest(
            recipient=warning_pb2.Recipient(user_id=b.user_id, phone_number=b.phone)
        )
    )
    created = await ask(suite, a, b.phone)
    assert created.state == pb.VERIFICATION_STATE_PENDING
    assert created.masked_target_phone_number == b.phone[:6] + "****" + b.phone[-4:]
    assert not created.HasField("target_identity")

    stream = suite.warning.StreamWarnings(warning_pb2.StreamWarningsRequest(user_id=b.user_id))
    pushed = await asyncio.wait_for(stream.read(), 10)
    stream.cancel()
    assert pushed.notification.purpose == warning_pb2.NOTIFICATION_PURPOSE_VERIFICATION_REQUEST
    assert "李*" in pushed.notification.text
    assert "李雷" not in pushed.notification.text

    incoming = await suite.identity.ListIncomingVerificationRequests(
        pb.ListIncomingVerificationRequestsRequest(
            user_id=b.user_id, state=pb.VERIFICATION_STATE_PENDING
        ),
        metadata=b.metadata,
    )
    [shown] = incoming.verification_requests
    assert shown.name == created.name
    assert shown.requester_user_id == a.user_id
    assert shown.requester_identity.masked_name == "李*"
    assert shown.face_attempts_remaining == 3

    # Nobody but the holder of B's number may answer, and strangers do not see it.
    for intruder in (a, c):
        denied = await rpc_error(answer(suite, intruder, created.name, accept=True))
        assert denied.code() is grpc.StatusCode.PERMISSION_DENIED
    hidden = await rpc_error(get(suite, c, created.name))
    assert hidden.code() is grpc.StatusCode.NOT_FOUND

    respond = pb.RespondToVerificationRequestRequest(
        request_id=str(uuid.uuid4()),
        name=created.name,
        user_id=b.user_id,
        decision=pb.VERIFICATION_DECISION_ACCEPT,
        face_token="liveness-token-1",
    )
    done = await suite.identity.RespondToVerificationRequest(respond, metadata=b.metadata)
    assert done.face_check_result == pb.FACE_CHECK_RESULT_PASSED
    assert done.verification_request.state == pb.VERIFICATION_STATE_VERIFIED
    # A retry of the same answer costs no second face check.
    assert await suite.identity.RespondToVerificationRequest(respond, metadata=b.metadata) == done
    face_calls = await received(suite, "face", "VerifyFace")
    assert len(face_calls) == 1

    seen = await get(suite, a, created.name)
    assert seen.state == pb.VERIFICATION_STATE_VERIFIED
    assert seen.target_identity == common_pb2.MaskedIdentity(masked_name="韩**")
    assert seen.face_attempts_remaining == 0  # not shown to the requester
    assert seen.HasField("respond_time")

    # A has no app profile at the warning service: the outcome reaches A by SMS.
    async def outcome_sms() -> sim.ReceivedCall | None:
        calls = await received(suite, "carrier-cmcc", "SendSms")
        masked = a.phone[:6] + "****" + a.phone[-4:]
        return next((c for c in calls if c.summary.get("masked_phone_number") == masked), None)

    await eventually(outcome_sms)
    # Reading A's number for that SMS is in the audit log.
    audit = await suite.identity.ListAuditEvents(
        pb.ListAuditEventsRequest(record=f"users/{a.user_id}"), metadata=as_("analyst:7")
    )
    assert [(e.actor, list(e.fields)) for e in audit.audit_events] == [("internal", ["phone"])]


async def test_declined(suite: Suite) -> None:
    a, b = await register(suite), await register(suite)
    created = await ask(suite, a, b.phone)
    done = await answer(suite, b, created.name, accept=False)
    assert done.verification_request.state == pb.VERIFICATION_STATE_DECLINED
    assert done.face_check_result == pb.FACE_CHECK_RESULT_UNSPECIFIED
    seen = await get(suite, a, created.name)
    assert seen.state == pb.VERIFICATION_STATE_DECLINED
    assert not seen.HasField("target_identity")
    again = await rpc_error(answer(suite, b, created.name, accept=True))
    assert again.code() is grpc.StatusCode.FAILED_PRECONDITION
    assert await received(suite, "face", "VerifyFace") == []


async def test_expired_after_ten_minutes_on_read_and_by_the_sweeper(suite: Suite) -> None:
    a, b = await register(suite), await register(suite)
    created = await ask(suite, a, b.phone)
    assert (
        created.expire_time.ToDatetime(tzinfo=UTC) - created.create_time.ToDatetime(tzinfo=UTC)
    ) == timedelta(minutes=10)
    suite.clock.offset += timedelta(minutes=10, seconds=1)
    assert (await get(suite, a, created.name)).state == pb.VERIFICATION_STATE_EXPIRED
    late = await rpc_error(answer(suite, b, created.name, accept=True))
    assert late.code() is grpc.StatusCode.FAILED_PRECONDITION
    assert "EXPIRED" in (late.details() or "")

    async def swept() -> bool | None:
        async with suite.component.deps.uow() as uow:
            stored = await uow.repo.get_request(created.name.removeprefix("verificationRequests/"))
        return True if stored is not None and stored.state.name == "EXPIRED" else None

    assert await eventually(swept)

    # The requester is told it expired (A has no app profile: by SMS, on A's handset) ...
    async def told() -> str | None:
        inbox = await suite.partners.control().ListHandsetMessages(
            sim.ListHandsetMessagesRequest(phone_number=a.phone)
        )
        return next((m.text for m in inbox.messages if "已过期" in m.text), None)

    assert b.phone[-4:] in await eventually(told)
    # ... and the invitation is withdrawn from the target's open ones.
    open_ones = await suite.identity.ListIncomingVerificationRequests(
        pb.ListIncomingVerificationRequestsRequest(user_id=b.user_id), metadata=b.metadata
    )
    assert created.name not in [r.name for r in open_ones.verification_requests]


async def test_blocked_requester_is_declined_and_refused(suite: Suite) -> None:
    a, b = await register(suite), await register(suite)
    pending = await ask(suite, a, b.phone)
    blocked = await suite.identity.BlockRequester(
        pb.BlockRequesterRequest(user_id=b.user_id, requester_user_id=a.user_id),
        metadata=b.metadata,
    )
    assert blocked.declined_count == 1
    assert blocked.requester_identity.masked_name == "张**"
    assert (await get(suite, a, pending.name)).state == pb.VERIFICATION_STATE_DECLINED
    refused = await rpc_error(ask(suite, a, b.phone))
    assert refused.code() is grpc.StatusCode.FAILED_PRECONDITION
    # Only B may block on B's behalf.
    other = await rpc_error(
        suite.identity.BlockRequester(
            pb.BlockRequesterRequest(user_id=b.user_id, requester_user_id=a.user_id),
            metadata=a.metadata,
        )
    )
    assert other.code() is grpc.StatusCode.PERMISSION_DENIED
    lifted = await suite.identity.UnblockRequester(
        pb.UnblockRequesterRequest(user_id=b.user_id, requester_user_id=a.user_id),
        metadata=b.metadata,
    )
    assert lifted.unblocked
    assert (await ask(suite, a, b.phone)).state == pb.VERIFICATION_STATE_PENDING


async def test_someone_else_holding_bs_account_fails_the_face_check(suite: Suite) -> None:
    a, b = await register(suite), await register(suite)
    subject = suite.component.deps.vault.index(FACE_SUBJECT_INDEX, b.id_number)
    await suite.partners.control().SeedFaceOutcomes(
        sim.SeedFaceOutcomesRequest(
            outcomes=[
                face_pb2.FaceOutcomeSeed(
                    subject_reference=subject, outcome=face_pb2.FACE_OUTCOME_FAIL
                )
            ]
        )
    )
    created = await ask(suite, a, b.phone)
    for remaining in (2, 1):
        tried = await answer(suite, b, created.name, accept=True)
        assert tried.face_check_result == pb.FACE_CHECK_RESULT_FAILED
        assert tried.verification_request.state == pb.VERIFICATION_STATE_PENDING
        assert tried.verification_request.face_attempts_remaining == remaining
    last = await answer(suite, b, created.name, accept=True)
    assert last.verification_request.state == pb.VERIFICATION_STATE_FAILED
    seen = await get(suite, a, created.name)
    assert seen.state == pb.VERIFICATION_STATE_FAILED
    assert not seen.HasField("target_identity")


async def test_a_replayed_face_token_does_not_verify(suite: Suite) -> None:
    a, b = await register(suite), await register(suite)
    first, second = await ask(suite, a, b.phone), await ask(suite, a, b.phone)
    await answer(suite, b, first.name, accept=True, token="captured-token")
    replay = await answer(suite, b, second.name, accept=True, token="captured-token")
    assert replay.face_check_result == pb.FACE_CHECK_RESULT_FAILED


async def test_an_unregistered_number_is_invited_by_sms_and_answers_after_registering(
    suite: Suite,
) -> None:
    a = await register(suite)
    newcomer = new_person("孙悟空")
    # A request to the number long before its holder registers stays out of their list:
    # numbers are recycled, and it was for whoever held it then.
    stale = await ask(suite, a, newcomer.phone)
    suite.clock.offset += timedelta(minutes=11)
    created = await ask(suite, a, newcomer.phone)
    masked = newcomer.phone[:6] + "****" + newcomer.phone[-4:]

    async def invited() -> pb.ListAuditEventsResponse | None:
        audit = await suite.identity.ListAuditEvents(
            pb.ListAuditEventsRequest(record=created.name), metadata=as_("admin:1")
        )
        return audit if audit.audit_events else None

    # The number was read (audited) to send the invitation, and the carrier got the SMS.
    audit = await eventually(invited)
    assert [list(e.fields) for e in audit.audit_events] == [["target_phone"]]

    async def invitation() -> sim.ReceivedCall | None:
        calls = await received(suite, "carrier-cmcc", "SendSms")
        return next((c for c in calls if c.summary.get("masked_phone_number") == masked), None)

    await eventually(invitation)

    newcomer = await register(suite, newcomer)
    incoming = await suite.identity.ListIncomingVerificationRequests(
        pb.ListIncomingVerificationRequestsRequest(user_id=newcomer.user_id),
        metadata=newcomer.metadata,
    )
    assert [r.name for r in incoming.verification_requests] == [created.name]
    assert stale.name != created.name
    done = await answer(suite, newcomer, created.name, accept=True)
    assert done.verification_request.state == pb.VERIFICATION_STATE_VERIFIED
    assert (await get(suite, a, created.name)).target_identity.masked_name == "孙**"


async def test_requests_are_rate_limited_per_target_and_per_requester(suite: Suite) -> None:
    a, b = await register(suite), await register(suite)
    for _ in range(3):
        await ask(suite, a, b.phone)
    limited = await rpc_error(ask(suite, a, b.phone))
    assert limited.code() is grpc.StatusCode.RESOURCE_EXHAUSTED
    status = rpc_status.from_call(limited)  # type: ignore[arg-type]
    assert status is not None
    assert any(d.type_url.endswith("google.rpc.RetryInfo") for d in status.details)
    await ask(suite, a, new_person().phone)
    await ask(suite, a, new_person().phone)
    per_hour = await rpc_error(ask(suite, a, new_person().phone))  # the sixth in an hour
    assert per_hour.code() is grpc.StatusCode.RESOURCE_EXHAUSTED


async def test_verification_inputs_are_checked(suite: Suite) -> None:
    a = await register(suite)
    own = await rpc_error(ask(suite, a, a.phone))
    assert own.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert [f for f, _ in field_violations(own)] == ["target_phone_number"]
    someone_else = await register(suite)
    as_other = await rpc_error(
        suite.identity.CreateVerificationRequest(
            pb.CreateVerificationRequestRequest(
                request_id=str(uuid.uuid4()),
                requester_user_id=a.user_id,
                target_phone_number=new_person().phone,
                purpose=pb.VERIFICATION_PURPOSE_TRADE,
            ),
            metadata=someone_else.metadata,
        )
    )
    assert as_other.code() is grpc.StatusCode.PERMISSION_DENIED
    bad = await rpc_error(
        suite.identity.RespondToVerificationRequest(
            pb.RespondToVerificationRequestRequest(
                request_id=str(uuid.uuid4()),
                name="verificationRequests/x",
                user_id=a.user_id,
                decision=pb.VERIFICATION_DECISION_ACCEPT,
            ),
            metadata=a.metadata,
        )
    )
    assert {f for f, _ in field_violations(bad)} == {"face_token"}
    forged = await rpc_error(
        suite.identity.GetUser(pb.GetUserRequest(name="users/x"), metadata=as_("hacker:1"))
    )
    assert forged.code() is grpc.StatusCode.UNAUTHENTICATED


# ------------------------------------------------------------------------------ accounts


async def test_bind_verify_and_confirm_payee(suite: Suite) -> None:
    a = await register(suite, new_person("张三丰"))
    icbc_card = card_number("622202")
    await suite.partners.control().SeedCards(
        sim.SeedCardsRequest(
            simulator="bank-icbc",
            account_holders=[
                bank_pb2.AccountHolder(
                    account=common_pb2.Indicator(
                        kind=common_pb2.INDICATOR_KIND_BANK_ACCOUNT, value=icbc_card
                    ),
                    holder_name="张三丰",
                )
            ],
        )
    )
    card = common_pb2.Indicator(kind=common_pb2.INDICATOR_KIND_BANK_ACCOUNT, value=icbc_card)
    bound = await suite.identity.BindAccount(
        pb.BindAccountRequest(request_id=str(uuid.uuid4()), user_id=a.user_id, account=card),
        metadata=a.metadata,
    )
    assert bound.bound_account.confirmation == pb.ACCOUNT_CONFIRMATION_BANK_CONFIRMED
    assert bound.bound_account.masked_value == icbc_card[:4] + "*" * 11 + icbc_card[-4:]

    # A card whose holder at the bank is someone else cannot be bound.
    foreign = card_number("621700")
    refused = await rpc_error(
        suite.identity.BindAccount(
            pb.BindAccountRequest(
                request_id=str(uuid.uuid4()),
                user_id=a.user_id,
                account=common_pb2.Indicator(
                    kind=common_pb2.INDICATOR_KIND_BANK_ACCOUNT, value=foreign
                ),
            ),
            metadata=a.metadata,
        )
    )
    assert refused.code() is grpc.StatusCode.FAILED_PRECONDITION

    qq = common_pb2.Indicator(
        kind=common_pb2.INDICATOR_KIND_QQ_NUMBER, value=f"{next(_serial) + 10**8}"
    )
    # An account its platform does not know as the caller's is not bound.
    unknown = await rpc_error(
        suite.identity.BindAccount(
            pb.BindAccountRequest(request_id=str(uuid.uuid4()), user_id=a.user_id, account=qq),
            metadata=a.metadata,
        )
    )
    assert unknown.code() is grpc.StatusCode.FAILED_PRECONDITION
    await suite.partners.control().SeedCards(
        sim.SeedCardsRequest(
            account_holders=[
                bank_pb2.AccountHolder(
                    account=qq, holder_name="张三丰", resident_id_number=a.id_number
                )
            ],
        )
    )
    confirmed = await suite.identity.BindAccount(
        pb.BindAccountRequest(request_id=str(uuid.uuid4()), user_id=a.user_id, account=qq),
        metadata=a.metadata,
    )
    assert confirmed.bound_account.confirmation == pb.ACCOUNT_CONFIRMATION_PLATFORM_CONFIRMED
    taken = await rpc_error(
        suite.identity.BindAccount(
            pb.BindAccountRequest(request_id=str(uuid.uuid4()), user_id=a.user_id, account=qq),
            metadata=a.metadata,
        )
    )
    assert taken.code() is grpc.StatusCode.ALREADY_EXISTS

    # A registered citizen may ask about an account: bound or not, and the risk verdict.
    other = await register(suite)
    checked = await suite.identity.VerifyAccount(
        pb.VerifyAccountRequest(account=qq), metadata=other.metadata
    )
    assert checked.bound_to_verified_person
    assert checked.holder_identity == common_pb2.MaskedIdentity(masked_name="张**")
    assert checked.confirmation == pb.ACCOUNT_CONFIRMATION_PLATFORM_CONFIRMED
    assert checked.risk_status == pb.SOURCE_STATUS_OK
    assert checked.risk_verdict.level == common_pb2.RISK_LEVEL_NONE

    scam = common_pb2.Indicator(
        kind=common_pb2.INDICATOR_KIND_WECHAT_ID, value=f"scam_{uuid.uuid4().hex[:10]}"
    )
    await suite.risk.UpsertIndicator(
        risk_pb2.UpsertIndicatorRequest(
            request_id=str(uuid.uuid4()),
            indicator=scam,
            assertion=risk_pb2.Assertion(
                source_type=risk_pb2.SOURCE_TYPE_POLICE,
                source_id="police-1",
                level=common_pb2.RISK_LEVEL_HIGH,
                reason="confirmed fraud",
            ),
        ),
        metadata=as_("admin:1"),
    )
    flagged = await suite.identity.VerifyAccount(pb.VerifyAccountRequest(account=scam))
    assert not flagged.bound_to_verified_person
    assert flagged.risk_verdict.level == common_pb2.RISK_LEVEL_HIGH

    # Confirmation of payee from the bound (bank-confirmed) account: no bank call needed.
    async def payee(account: common_pb2.Indicator, name: str) -> pb.CheckPayeeResponse:
        response: pb.CheckPayeeResponse = await suite.identity.CheckPayee(
            pb.CheckPayeeRequest(account=account, payee_name=name), metadata=as_("bank:ccb")
        )
        return response

    before = len(await received(suite, "bank-icbc", "CheckPayeeName"))
    assert (await payee(card, "张三丰")).match == pb.PAYEE_MATCH_MATCH
    close = await payee(card, "张三峰")
    assert (close.match, close.masked_holder_name, close.source) == (
        pb.PAYEE_MATCH_CLOSE_MATCH,
        "张**",
        pb.PAYEE_SOURCE_BOUND_ACCOUNT,
    )
    assert (await payee(card, "李四")).masked_holder_name == ""
    assert len(await received(suite, "bank-icbc", "CheckPayeeName")) == before
    # Each read of the holder's name is audited under the bank that asked.
    audit = await suite.identity.ListAuditEvents(
        pb.ListAuditEventsRequest(record=f"users/{a.user_id}", actor="bank:ccb"),
        metadata=as_("analyst:3"),
    )
    assert len(audit.audit_events) == 3

    # An account bound nowhere: the bank that holds it answers; no bank holds it: NO_MATCH.
    ccb_card = card_number("621700")
    await suite.partners.control().SeedCards(
        sim.SeedCardsRequest(
            simulator="bank-ccb",
            account_holders=[
                bank_pb2.AccountHolder(
                    account=common_pb2.Indicator(
                        kind=common_pb2.INDICATOR_KIND_BANK_ACCOUNT, value=ccb_card
                    ),
                    holder_name="王小明",
                )
            ],
        )
    )
    ccb = common_pb2.Indicator(kind=common_pb2.INDICATOR_KIND_BANK_ACCOUNT, value=ccb_card)
    from_bank = await payee(ccb, "王小明")
    assert (from_bank.match, from_bank.source, from_bank.bank_id) == (
        pb.PAYEE_MATCH_MATCH,
        pb.PAYEE_SOURCE_BANK,
        "bank-ccb",
    )
    nowhere = common_pb2.Indicator(
        kind=common_pb2.INDICATOR_KIND_BANK_ACCOUNT, value="1234567890123"
    )
    assert (await payee(nowhere, "王小明")).match == pb.PAYEE_MATCH_NO_MATCH
    await set_behavior(suite, "bank-ccb", failure_rate=1.0)
    assert (await payee(ccb, "王小明")).match == pb.PAYEE_MATCH_UNAVAILABLE


# ------------------------------------------------------------------------------- look-ups


async def test_phone_cards_per_carrier_with_a_partial_answer_when_carriers_fail(
    suite: Suite,
) -> None:
    a = await face_checked(suite, await register(suite))
    lines = {
        "carrier-cmcc": [a.phone, "+8613900000001"],
        "carrier-cucc": ["+8613012345670"],
        "carrier-ctcc": [],
        "carrier-mvno": [],
        "carrier-cbn": [],
    }
    for carrier, phones in lines.items():
        await suite.partners.control().SeedSubscribers(
            sim.SeedSubscribersRequest(
                simulator=carrier,
                subscribers=[
                    carrier_pb2.Subscriber(
                        resident_id_number=a.id_number,
                        lines=[carrier_pb2.SubscriberLine(phone_number=p) for p in phones],
                    )
                ],
            )
        )
    request = pb.CountPhoneCardsRequest(user_id=a.user_id)
    full = await suite.identity.CountPhoneCards(request, metadata=a.metadata)
    assert full.complete
    assert full.total_card_count == 3
    assert [(c.carrier_id, c.card_count) for c in full.carriers] == [
        ("carrier-cmcc", 2),
        ("carrier-cucc", 1),
        ("carrier-ctcc", 0),
        ("carrier-mvno", 0),
        ("carrier-cbn", 0),
    ]
    assert full.carriers[0].display_name == "中国移动"
    assert full.carriers[1].phone_cards[0].masked_phone_number == "+86130****5670"

    await set_behavior(suite, "carrier-cucc", failure_rate=1.0)
    await set_behavior(suite, "carrier-ctcc", latency_ms=int(PARTNER_TIMEOUT * 3000))
    partial = await suite.identity.CountPhoneCards(request, metadata=a.metadata)
    assert not partial.complete
    assert partial.total_card_count == 2
    assert [(c.carrier_id, c.status) for c in partial.carriers] == [
        ("carrier-cmcc", pb.SOURCE_STATUS_OK),
        ("carrier-cucc", pb.SOURCE_STATUS_UNAVAILABLE),
        ("carrier-ctcc", pb.SOURCE_STATUS_DEADLINE_EXCEEDED),
        ("carrier-mvno", pb.SOURCE_STATUS_OK),
        ("carrier-cbn", pb.SOURCE_STATUS_OK),
    ]

    # Only about one's own identity, and every look-up is audited.
    b = await register(suite)
    denied = await rpc_error(
        suite.identity.CountPhoneCards(
            pb.CountPhoneCardsRequest(user_id=b.user_id), metadata=a.metadata
        )
    )
    assert denied.code() is grpc.StatusCode.PERMISSION_DENIED
    own = await suite.identity.ListAuditEvents(pb.ListAuditEventsRequest(), metadata=a.metadata)
    assert [(e.actor, e.purpose.split(" ")[0], list(e.fields)) for e in own.audit_events] == [
        (f"citizen:{a.user_id}", "CountPhoneCards", ["id_number"])
    ] * 2
    peek = await rpc_error(
        suite.identity.ListAuditEvents(
            pb.ListAuditEventsRequest(record=f"users/{b.user_id}"), metadata=a.metadata
        )
    )
    assert peek.code() is grpc.StatusCode.PERMISSION_DENIED


async def test_a_face_check_opens_the_look_ups_for_a_few_minutes_only(suite: Suite) -> None:
    a = await register(suite)
    request = pb.CountPhoneCardsRequest(user_id=a.user_id)
    before = await rpc_error(suite.identity.CountPhoneCards(request, metadata=a.metadata))
    assert before.code() is grpc.StatusCode.FAILED_PRECONDITION
    await face_checked(suite, a)
    await suite.identity.CountPhoneCards(request, metadata=a.metadata)
    later = timedelta(minutes=5, seconds=1)  # the default window is 5 minutes
    suite.clock.offset += later
    try:
        stale = await rpc_error(suite.identity.CountPhoneCards(request, metadata=a.metadata))
    finally:
        suite.clock.offset -= later
    assert stale.code() is grpc.StatusCode.FAILED_PRECONDITION


async def test_linked_accounts_of_my_number(suite: Suite) -> None:
    a = await face_checked(suite, await register(suite))
    await suite.partners.control().SeedSubscribers(
        sim.SeedSubscribersRequest(
            simulator="carrier-cmcc",
            subscribers=[
                carrier_pb2.Subscriber(
                    resident_id_number=a.id_number,
                    lines=[
                        carrier_pb2.SubscriberLine(
                            phone_number=a.phone,
                            linked_accounts=[
                                carrier_pb2.SeededLinkedAccount(
                                    platform=carrier_pb2.INTERNET_PLATFORM_WECHAT,
                                    account_name="zhangsan88",
                                ),
                                carrier_pb2.SeededLinkedAccount(
                                    platform=carrier_pb2.INTERNET_PLATFORM_ALIPAY,
                                    account_name="zs_pay",
                                ),
                            ],
                        )
                    ],
                )
            ],
        )
    )
    await set_behavior(suite, "carrier-mvno", failure_rate=1.0)
    first = await suite.identity.ListLinkedAccounts(
        pb.ListLinkedAccountsRequest(user_id=a.user_id, page_size=1), metadata=a.metadata
    )
    assert [(x.platform, x.masked_account_name) for x in first.linked_accounts] == [
        (pb.INTERNET_PLATFORM_WECHAT, "z***8")
    ]
    assert not first.complete
    assert {s.source_id: s.status for s in first.sources}[
        "carrier-mvno"
    ] == pb.SOURCE_STATUS_UNAVAILABLE
    second = await suite.identity.ListLinkedAccounts(
        pb.ListLinkedAccountsRequest(
            user_id=a.user_id, page_size=1, page_token=first.next_page_token
        ),
        metadata=a.metadata,
    )
    assert [(x.platform, x.carrier_id) for x in second.linked_accounts] == [
        (pb.INTERNET_PLATFORM_ALIPAY, "carrier-cmcc")
    ]
    assert second.next_page_token == ""


async def test_bank_cards_from_every_bank_with_a_partial_answer(suite: Suite) -> None:
    a = await face_checked(suite, await register(suite, new_person("周杰")))
    seeded = {
        "bank-icbc": [
            (card_number("622202"), bank_pb2.CARD_TYPE_DEBIT),
            (card_number("427020", 16), bank_pb2.CARD_TYPE_CREDIT),
        ],
        "bank-ccb": [(card_number("621700"), bank_pb2.CARD_TYPE_DEBIT)],
        "bank-abc": [],
    }
    for bank, cards in seeded.items():
        await suite.partners.control().SeedCards(
            sim.SeedCardsRequest(
                simulator=bank,
                card_holders=[
                    bank_pb2.CardHolder(
                        resident_id_number=a.id_number,
                        name=a.name,
                        cards=[bank_pb2.SeededCard(card_number=n, card_type=t) for n, t in cards],
                    )
                ],
            )
        )
    full = await suite.identity.ListBankCards(
        pb.ListBankCardsRequest(user_id=a.user_id), metadata=a.metadata
    )
    assert full.complete
    shown = {(c.bank_id, c.card_type, c.masked_card_number) for c in full.cards}
    expected = {
        (
            bank,
            pb.BANK_CARD_TYPE_DEBIT if t == bank_pb2.CARD_TYPE_DEBIT else pb.BANK_CARD_TYPE_CREDIT,
            n[:4] + "*" * (len(n) - 8) + n[-4:],
        )
        for bank, cards in seeded.items()
        for n, t in cards
    }
    assert shown == expected
    assert {c.bank_name for c in full.cards} == {"中国工商银行", "中国建设银行"}

    await set_behavior(suite, "bank-icbc", failure_rate=1.0)
    partial = await suite.identity.ListBankCards(
        pb.ListBankCardsRequest(user_id=a.user_id), metadata=a.metadata
    )
    assert not partial.complete
    assert [c.bank_id for c in partial.cards] == ["bank-ccb"]
    assert [(s.source_id, s.status) for s in partial.sources] == [
        ("bank-icbc", pb.SOURCE_STATUS_UNAVAILABLE),
        ("bank-ccb", pb.SOURCE_STATUS_OK),
        ("bank-abc", pb.SOURCE_STATUS_OK),
    ]


async def test_paging_a_look_up_is_stable_while_a_bank_drops_out(suite: Suite) -> None:
    a = await face_checked(suite, await register(suite, new_person("周杰")))
    cards = {"bank-icbc": card_number("622202"), "bank-ccb": card_number("621700")}
    for bank, number in cards.items():
        await suite.partners.control().SeedCards(
            sim.SeedCardsRequest(
                simulator=bank,
                card_holders=[
                    bank_pb2.CardHolder(
                        resident_id_number=a.id_number,
                        name="周杰",
                        cards=[
                            bank_pb2.SeededCard(
                                card_number=number, card_type=bank_pb2.CARD_TYPE_DEBIT
                            )
                        ],
                    )
                ],
            )
        )
    await suite.partners.control().SeedCards(
        sim.SeedCardsRequest(
            simulator="bank-abc",
            card_holders=[bank_pb2.CardHolder(resident_id_number=a.id_number, name="周杰")],
        )
    )
    first = await suite.identity.ListBankCards(
        pb.ListBankCardsRequest(user_id=a.user_id, page_size=1), metadata=a.metadata
    )
    assert first.complete
    asked = len(await received(suite, "bank-icbc", "ListCards"))
    # The bank of the second page drops out: the page comes from the first answer.
    await set_behavior(suite, "bank-icbc", failure_rate=1.0)
    second = await suite.identity.ListBankCards(
        pb.ListBankCardsRequest(user_id=a.user_id, page_size=1, page_token=first.next_page_token),
        metadata=a.metadata,
    )
    assert [c.bank_id for c in [*first.cards, *second.cards]] == ["bank-ccb", "bank-icbc"]
    assert second.complete
    assert second.next_page_token == ""
    assert len(await received(suite, "bank-icbc", "ListCards")) == asked
    # A page token is the caller's own.
    b = await face_checked(suite, await register(suite))
    stolen = await rpc_error(
        suite.identity.ListBankCards(
            pb.ListBankCardsRequest(
                user_id=b.user_id, page_size=1, page_token=first.next_page_token
            ),
            metadata=b.metadata,
        )
    )
    assert stolen.code() is grpc.StatusCode.INVALID_ARGUMENT


async def test_audit_log_is_for_staff_and_the_person_themselves(suite: Suite) -> None:
    a = await face_checked(suite, await register(suite))
    await suite.identity.CountPhoneCards(
        pb.CountPhoneCardsRequest(user_id=a.user_id), metadata=a.metadata
    )
    for role in ("bank:icbc", "carrier:cmcc"):
        denied = await rpc_error(
            suite.identity.ListAuditEvents(pb.ListAuditEventsRequest(), metadata=as_(role))
        )
        assert denied.code() is grpc.StatusCode.PERMISSION_DENIED
    page = await suite.identity.ListAuditEvents(
        pb.ListAuditEventsRequest(actor=f"citizen:{a.user_id}", page_size=1),
        metadata=as_("admin:1"),
    )
    [event] = page.audit_events
    assert event.record == f"users/{a.user_id}"
    assert event.request_id
    assert page.next_page_token == ""


# ------------------------------------------------------------------------------------ logs


async def test_no_personal_value_reaches_a_log_line(suite: Suite) -> None:
    previous = structlog.get_config()["wrapper_class"]
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.DEBUG))
    try:
        with capture_logs() as logs:
            person = new_person("诸葛孔明")
            a = await face_checked(suite, await register(suite, person))
            b = await register(suite)
            created = await ask(suite, a, b.phone)
            await answer(suite, b, created.name, accept=True, token="secret-face-token")
            await suite.identity.CountPhoneCards(
                pb.CountPhoneCardsRequest(user_id=a.user_id), metadata=a.metadata
            )
            await suite.identity.ListBankCards(
                pb.ListBankCardsRequest(user_id=a.user_id), metadata=a.metadata
            )
            await rpc_error(
                suite.identity.RegisterUser(
                    pb.RegisterUserRequest(
                        request_id=str(uuid.uuid4()),
                        full_name=person.name,
                        id_number=person.id_number[:-1] + "0",
                        phone_number=person.phone,
                    )
                )
            )
    finally:
        structlog.configure(wrapper_class=previous)
    text = "\n".join(str(event) for event in logs)
    assert "rpc" in text  # the capture did see the service's lines
    for secret in (
        person.name,
        person.id_number,
        person.id_number[:-1],
        person.phone,
        person.phone[3:],
        b.phone[3:],
        "secret-face-token",
    ):
        assert secret not in text
