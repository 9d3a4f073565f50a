"""The identity service's storage on SQLite and PostgreSQL: schema, encryption at rest, the
audit log, rate limits shared by replicas, expiry by the sweeper."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from services.api.antifraud.identity.v1 import identity_pb2 as pb
from services.common.db import Database
from services.common.errors import PermissionDenied, ResourceExhausted
from services.common.indicators import IndicatorKind, normalize
from services.common.principals import Principal
from services.identity.adapters import tables
from services.identity.adapters.keys import KeyRing
from services.identity.bootstrap import wire
from services.identity.component import IdentityComponent
from services.identity.config import IdentitySettings
from services.identity.domain.accounts import Confirmation
from services.identity.domain.id_number import parse
from services.identity.domain.lookups import SourceStatus
from services.identity.domain.users import NewUser, User
from services.identity.domain.verification import Purpose, RateLimit, VerificationState
from services.identity.entrypoints import convert
from services.identity.service_layer import accounts, verification
from services.identity.service_layer.replay import Replay
from services.identity.service_layer.verification import CreateRequest, VerificationView
from tests.harness import free_port

NAME = "张三丰"
ID = "11010519491231002X"
PHONE = "+8613800138000"
CARD = "6222021234567890128"
T0 = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)


class Clock:
    """A clock the test moves: expiry is tested without waiting."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def _component(
    db_target: tuple[str, str | None],
    keyring: KeyRing,
    clock: Clock,
    settings: IdentitySettings | None = None,
) -> IdentityComponent:
    url, schema = db_target
    return wire(
        Database("identity", url, schema), keyring, settings or IdentitySettings(), clock=clock
    )


async def _add_user(component: IdentityComponent, name: str, id_number: str, phone: str) -> User:
    deps = component.deps
    async with deps.uow() as uow:
        new = NewUser(str(uuid.uuid4()), name, parse(id_number, today=T0.date()), phone, T0)
        user = await uow.repo.add_user(new, deps.clock())
        await uow.commit()
    return user


def _replay() -> Replay[VerificationView, pb.CreateVerificationRequestResponse]:
    return Replay(
        "CreateVerificationRequest",
        str(uuid.uuid4()),
        uuid.uuid4().hex,
        pb.CreateVerificationRequestResponse,
        lambda view: pb.CreateVerificationRequestResponse(
            verification_request=convert.verification_request(view)
        ),
    )


async def test_migrations_build_exactly_the_tables_the_code_uses(
    db_target: tuple[str, str | None],
) -> None:
    component = _component(db_target, KeyRing.generate(), Clock(T0))
    await component.migrate()
    await component.migrate()  # a second run (another replica) finds nothing to do
    db = component.deps.db

    def diff(conn: sa.Connection) -> list[object]:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        return list(compare_metadata(context, tables.metadata))

    async with db.engine.connect() as conn:
        differences = await conn.run_sync(diff)
    await db.dispose()
    assert differences == []


async def test_the_database_holds_no_personal_value_in_clear(
    db_target: tuple[str, str | None], tmp_path: Path
) -> None:
    component = _component(db_target, KeyRing.generate(), Clock(T0))
    await component.migrate()
    deps = component.deps
    user = await _add_user(component, NAME, ID, PHONE)
    target = await _add_user(component, "李四", "440524188001010014", "+8613900139000")
    card = normalize(IndicatorKind.BANK_ACCOUNT, CARD)
    async with deps.uow() as uow:
        await uow.repo.add_account(
            str(uuid.uuid4()), user.id, card, "6222***********0128", Confirmation.BANK_CONFIRMED, T0
        )
        await uow.commit()
    await verification.create_request(
        deps,
        Principal.parse(f"citizen:{user.id}"),
        CreateRequest(user.id, "+8613700137000", Purpose.PAYMENT),
        _replay(),
    )

    secrets = [ID, ID[:17], "13800138000", "13700137000", CARD, NAME, "李四", "440524188001010014"]
    dumped: list[str] = []
    async with deps.db.engine.connect() as conn:
        for table in tables.metadata.sorted_tables:
            for row in await conn.execute(sa.select(table)):
                for value in row:
                    if isinstance(value, bytes | bytearray | memoryview):
                        dumped.append(bytes(value).decode("latin-1"))
                        dumped.append(bytes(value).decode("utf-8", "replace"))
                    else:
                        dumped.append(str(value))
    await deps.db.dispose()
    everything = "\n".join(dumped)
    assert "110105**********2X" in everything  # the masked forms are there to show ...
    for secret in secrets:  # ... and nothing in clear
        assert secret not in everything, f"{secret[:3]}... stored in clear"

    url, _ = db_target
    if url.startswith("sqlite"):  # the raw file, write-ahead log included
        path = Path(url.split("///", 1)[1])
        raw = b"".join(p.read_bytes() for p in path.parent.glob(path.name + "*"))
        for secret in secrets:
            assert secret.encode() not in raw
    assert target.masked_id_number == "440524**********14"


async def test_every_read_in_clear_is_audited(db_target: tuple[str, str | None]) -> None:
    clock = Clock(T0)
    component = _component(db_target, KeyRing.generate(), clock)
    await component.migrate()
    deps = component.deps
    user = await _add_user(component, NAME, ID, PHONE)
    clock.now = T0 + timedelta(minutes=5)
    async with deps.uow() as uow:
        revealed = await uow.repo.reveal(
            user.id,
            ("id_number", "name"),
            actor="bank:icbc",
            purpose="CheckPayee",
            request_id="req-1",
            now=clock(),
        )
        await uow.commit()
    assert revealed is not None
    assert (revealed.id_number, revealed.name, revealed.phone_e164) == (ID, NAME, "")
    async with deps.uow() as uow:
        missing = await uow.repo.reveal(
            "nobody", ("name",), actor="x", purpose="y", request_id="z", now=clock()
        )
        events = await uow.repo.list_audit(
            record=f"users/{user.id}", actor=None, before_id=None, limit=10
        )
    await deps.db.dispose()
    assert missing is None
    assert len(events) == 1
    event = events[0]
    assert (event.actor, event.record, event.fields, event.purpose, event.request_id) == (
        "bank:icbc",
        f"users/{user.id}",
        ("id_number", "name"),
        "CheckPayee",
        "req-1",
    )
    assert event.event_time == clock.now


async def test_values_sealed_under_a_retired_key_still_open(
    db_target: tuple[str, str | None],
) -> None:
    old = KeyRing.generate("k1")
    component = _component(db_target, old, Clock(T0))
    await component.migrate()
    user = await _add_user(component, NAME, ID, PHONE)
    await component.deps.db.dispose()
    rotated = KeyRing((("k2", b"\x01" * 32), *old.data_keys), old.index_key)
    component = _component(db_target, rotated, Clock(T0))
    async with component.deps.uow() as uow:
        revealed = await uow.repo.reveal(
            user.id, ("phone",), actor="internal", purpose="t", request_id="r", now=T0
        )
        key_id = await uow.conn.scalar(sa.select(tables.users.c.key_id))
        # The index key did not change, so the user is still found by phone.
        found = await uow.repo.user_by_phone_index(uow.repo.phone_index(PHONE))
    await component.deps.db.dispose()
    assert revealed is not None
    assert revealed.phone_e164 == PHONE
    assert key_id == "k1"
    assert found is not None
    assert found.id == user.id


async def test_the_rate_limit_holds_across_two_replicas(db_target: tuple[str, str | None]) -> None:
    keyring = KeyRing.generate()
    settings = IdentitySettings(
        requester_limits=(RateLimit(5, timedelta(hours=1)),),
        per_target_limit=RateLimit(100, timedelta(days=1)),
    )
    first = _component(db_target, keyring, Clock(T0), settings)
    second = _component(db_target, keyring, Clock(T0), settings)
    await first.migrate()
    requester = await _add_user(first, NAME, ID, PHONE)
    principal = Principal.parse(f"citizen:{requester.id}")

    async def create(replica: IdentityComponent, n: int) -> str:
        try:
            await verification.create_request(
                replica.deps,
                principal,
                CreateRequest(requester.id, f"+861370013{n:04d}", Purpose.TRADE),
                _replay(),
            )
        except ResourceExhausted as exc:
            return f"limited for {round(exc.retry_after)} s"
        return "created"

    outcomes = await asyncio.gather(*(create(first if n % 2 else second, n) for n in range(12)))
    async with first.deps.uow() as uow:
        stored = await uow.conn.scalar(
            sa.select(sa.func.count()).select_from(tables.verification_requests)
        )
        queued = await uow.conn.scalar(sa.select(sa.func.count()).select_from(tables.outbox))
    await first.deps.db.dispose()
    await second.deps.db.dispose()
    assert sorted(outcomes) == ["created"] * 5 + ["limited for 3600 s"] * 7
    assert stored == 5
    assert queued == 5  # one invitation per request, written in the same transaction


async def test_the_sweeper_expires_overdue_requests(db_target: tuple[str, str | None]) -> None:
    clock = Clock(T0)
    component = _component(db_target, KeyRing.generate(), clock)
    await component.migrate()
    deps = component.deps
    requester = await _add_user(component, NAME, ID, PHONE)
    response = await verification.create_request(
        deps,
        Principal.parse(f"citizen:{requester.id}"),
        CreateRequest(requester.id, "+8613700137000", Purpose.PAYMENT),
        _replay(),
    )
    request_id = response.verification_request.name.removeprefix("verificationRequests/")
    clock.now = T0 + timedelta(minutes=9)
    assert await verification.expire_overdue(deps) == 0
    clock.now = T0 + timedelta(minutes=10)
    assert await verification.expire_overdue(deps) == 1
    async with deps.uow() as uow:
        stored = await uow.repo.get_request(request_id)
    await deps.db.dispose()
    assert stored is not None
    assert stored.state is VerificationState.EXPIRED


async def test_account_verification_answers_when_the_risk_service_is_down(
    db_target: tuple[str, str | None],
) -> None:
    dead = f"127.0.0.1:{free_port()}"  # nothing listens there
    settings = IdentitySettings(partner_timeout_seconds=0.5, targets={"risk": dead})
    component = _component(db_target, KeyRing.generate(), Clock(T0), settings)
    await component.migrate()
    deps = component.deps
    user = await _add_user(component, NAME, ID, PHONE)
    qq = normalize(IndicatorKind.QQ_NUMBER, "123456789")
    async with deps.uow() as uow:
        await uow.repo.add_account(
            str(uuid.uuid4()), user.id, qq, "123456789", Confirmation.PLATFORM_CONFIRMED, T0
        )
        await uow.commit()
    try:
        result = await accounts.verify_account(deps, Principal.parse("analyst:7"), qq)
    finally:
        await component.stop()
    assert result.holder_masked_name == "张**"
    assert result.confirmation is Confirmation.PLATFORM_CONFIRMED
    assert result.risk_verdict is None
    assert result.risk_status is SourceStatus.UNAVAILABLE


async def test_a_binding_no_partner_confirmed_vouches_for_no_one(
    db_target: tuple[str, str | None],
) -> None:
    component = _component(db_target, KeyRing.generate(), Clock(T0))
    await component.migrate()
    deps = component.deps
    user = await _add_user(component, NAME, ID, PHONE)
    wechat = normalize(IndicatorKind.WECHAT_ID, "wxid_legacy01")
    async with deps.uow() as uow:
        # A binding made before partners confirmed them: the holder's word only.
        await uow.repo.add_account(
            str(uuid.uuid4()), user.id, wechat, "w***1", Confirmation.SELF_DECLARED, T0
        )
        await uow.commit()
    try:
        result = await accounts.verify_account(deps, Principal.parse("analyst:7"), wechat)
        with pytest.raises(PermissionDenied):
            await accounts.verify_account(deps, Principal.parse("carrier:cmcc"), wechat)
    finally:
        await component.stop()
    assert result.holder_masked_name is None
    assert result.confirmation is None
