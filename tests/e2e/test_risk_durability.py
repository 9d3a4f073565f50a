"""The risk service keeps serving whatever is stored, forgets what is past its window,
and says so to a watcher that asks for what it forgot. SQLite and PostgreSQL.

- A value storage cannot hold is refused at the edge (expiry 2200, a URL longer than
  any column once normalised), and writes go on.
- Rows nobody could have written through the API (inserted by hand, by a newer
  version, or before the edge checked) never keep a server from starting, the feed
  from moving, or a listing from answering: each is logged, counted and left out.
- The change feed is compacted below its window; a cursor older than what is kept is
  answered OUT_OF_RANGE with ErrorInfo CURSOR_EXPIRED; idempotency keys past their
  window are forgotten, exactly those.
- Watchers in one process read the feed from the refresher's memory: hundreds of
  them cost the database nothing.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import grpc
import pytest
import sqlalchemy as sa
from google.protobuf.timestamp_pb2 import Timestamp

from services.api.antifraud.common.v1 import common_pb2 as c
from services.api.antifraud.risk.v1 import risk_pb2 as r
from services.api.antifraud.risk.v1 import risk_pb2_grpc as rg
from services.common.db import Database
from services.common.errors import CURSOR_EXPIRED, error_info, field_violations
from services.common.health_client import is_serving
from services.common.indicators import IndicatorKind
from services.common.retention import RetentionSettings
from services.risk.adapters import tables
from services.risk.bootstrap import RiskComponent
from services.risk.domain.index import U32_MAX
from services.risk.domain.model import Change, ChangeType, SourceType
from services.risk.service_layer.lookup import Lookup
from tests import harness
from tests.e2e.test_risk_service import assertion, ind
from tests.harness import serving

PHONE = c.INDICATOR_KIND_PHONE_NUMBER
URL = c.INDICATOR_KIND_URL
DOMAIN = c.INDICATOR_KIND_DOMAIN
WINDOW = timedelta(days=7)


def build(db_target: tuple[str, str | None]) -> RiskComponent:
    url, schema = db_target
    kept = RetentionSettings(risk_feed=WINDOW, idempotency=timedelta(hours=24))
    return RiskComponent(
        Database("risk", url=url, schema=schema), sweep_seconds=0.2, retention=kept
    )


@pytest.fixture
async def risk(
    db_target: tuple[str, str | None],
) -> AsyncIterator[tuple[RiskComponent, rg.RiskServiceStub]]:
    component = build(db_target)
    async with (
        serving(component) as running,
        harness.channel(running.address) as channel,
    ):
        yield component, rg.RiskServiceStub(channel)


def rid() -> str:
    return str(uuid.uuid4())


async def upsert(
    stub: rg.RiskServiceStub, kind: int, value: str, **kw: Any
) -> r.UpsertIndicatorResponse:
    reply: r.UpsertIndicatorResponse = await stub.UpsertIndicator(
        r.UpsertIndicatorRequest(
            request_id=rid(), indicator=ind(kind, value), assertion=assertion(**kw)
        )
    )
    return reply


async def refused(call: object) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await call  # type: ignore[misc]
    return caught.value


async def level_of(stub: rg.RiskServiceStub, kind: int, value: str) -> int:
    reply = await stub.CheckIndicator(r.CheckIndicatorRequest(indicator=ind(kind, value)))
    return int(reply.verdict.level)


# ---------------------------------------------------------------------------- at the edge


async def test_an_expiry_storage_cannot_hold_is_refused_and_writes_go_on(
    risk: tuple[RiskComponent, rg.RiskServiceStub],
) -> None:
    _, stub = risk
    far = Timestamp()
    far.FromDatetime(datetime(2200, 1, 1, tzinfo=UTC))
    error = await refused(upsert(stub, PHONE, "13800138001", expire_time=far))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert [f for f, _ in field_violations(error)] == ["assertion.expire_time"]
    # Every later write works, and is seen at once.
    for i in range(3):
        await upsert(stub, PHONE, f"1380013800{i + 2}")
        assert await level_of(stub, PHONE, f"1380013800{i + 2}") == c.RISK_LEVEL_HIGH
    soon = Timestamp()
    soon.FromDatetime(datetime(2099, 12, 31, tzinfo=UTC))
    await upsert(stub, PHONE, "13800138009", expire_time=soon)
    assert await level_of(stub, PHONE, "13800138009") == c.RISK_LEVEL_HIGH


async def test_a_url_too_long_once_normalised_is_refused_naming_the_field(
    risk: tuple[RiskComponent, rg.RiskServiceStub],
) -> None:
    _, stub = risk
    error = await refused(upsert(stub, URL, "evil.example/" + "中" * 240))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert [f for f, _ in field_violations(error)] == ["indicator.value"]
    await upsert(stub, URL, "evil.example/" + "中" * 200)  # fits: stored and listed
    assert await level_of(stub, URL, "evil.example/" + "中" * 200) == c.RISK_LEVEL_HIGH


# ---------------------------------------------------------------------------- poisoned rows


def _indicator_row(kind: int, value: str, **kw: object) -> dict[str, object]:
    row: dict[str, object] = {
        "kind": kind,
        "value": value,
        "level": 4,
        "categories": 0,
        "flags": 8,
        "reporters": 0,
        "first_seen": 1_700_000_000,
        "last_seen": 1_700_000_000,
        "expire": 4_000_000_000,
        "verified": False,
        "label": "",
        "update_time": datetime.now(UTC),
    }
    return row | kw


def _change_row(kind: int, value: str, **kw: object) -> dict[str, object]:
    row = _indicator_row(kind, value, **kw)
    row.pop("update_time")
    return row | {
        "change_type": kw.get("change_type", 1),
        "source_type": kw.get("source_type", 5),
        "source_id": "by-hand",
        "actor": "by-hand",
        "reason": "inserted directly",
        "time": datetime.now(UTC),
    }


async def test_a_restart_with_poisoned_rows_still_serves_the_rest(
    db_target: tuple[str, str | None],
) -> None:
    async with (
        serving(build(db_target)) as running,
        harness.channel(running.address) as ch,
    ):
        await upsert(rg.RiskServiceStub(ch), DOMAIN, "good.example")
    # Rows written by hand: unknown kinds and levels, an expiry past 32 bits (as stored before
    # the edge refused it), counts out of range, an assertion of an unknown source.
    url, schema = db_target
    db = Database("risk", url=url, schema=schema)
    async with db.engine.begin() as conn:
        await conn.execute(
            sa.insert(tables.indicators),
            [
                _indicator_row(99, "unknown-kind"),
                _indicator_row(DOMAIN, "unknown-level.example", level=42),
                _indicator_row(DOMAIN, "far-expiry.example", expire=7_258_118_400),
                _indicator_row(DOMAIN, "negative.example", reporters=-5, first_seen=-1),
            ],
        )
        bad_id = await conn.scalar(
            sa.select(tables.indicators.c.id).where(
                tables.indicators.c.value == "unknown-level.example"
            )
        )
        await conn.execute(
            sa.insert(tables.assertions).values(
                indicator_id=bad_id,
                source_type=99,
                source_id="by-hand",
                level=42,
                categories=0,
                reason="inserted directly",
                reporter_count=0,
                label="",
                expire_time=datetime.now(UTC) - timedelta(seconds=1),  # due: the sweeper meets it
                create_time=datetime.now(UTC),
                update_time=datetime.now(UTC),
                lapsed=False,
            )
        )
    await db.dispose()

    component = build(db_target)
    async with serving(component) as running, harness.channel(running.address) as ch:
        stub = rg.RiskServiceStub(ch)
        assert await is_serving(running.address)
        lookup = component.lookup
        assert lookup.unloadable == 2  # the unknown kind and the unknown level; each logged
        assert await level_of(stub, DOMAIN, "good.example") == c.RISK_LEVEL_HIGH
        # Held, not refused: a far expiry stands "for ever", a negative count is none.
        assert await level_of(stub, DOMAIN, "far-expiry.example") == c.RISK_LEVEL_HIGH
        assert await level_of(stub, DOMAIN, "negative.example") == c.RISK_LEVEL_HIGH
        held = lookup.index.get(IndicatorKind.DOMAIN, "far-expiry.example")
        assert held is not None
        assert held.expire == U32_MAX
        # Reads that meet the bad rows answer without them, never INTERNAL.
        listed = await stub.ListIndicators(r.ListIndicatorsRequest(page_size=500))
        values = {v.indicator.value for v in listed.verdicts}
        assert {"good.example", "far-expiry.example", "negative.example"} <= values
        assert "unknown-level.example" not in values
        await stub.GetIndicator(
            r.GetIndicatorRequest(indicator=ind(DOMAIN, "unknown-level.example"))
        )
        # The sweeper meets the bad assertion and goes on; writes go on and are seen at once.
        await asyncio.sleep(0.5)
        await upsert(stub, DOMAIN, "after.example")
        assert await level_of(stub, DOMAIN, "after.example") == c.RISK_LEVEL_HIGH

        # Bad changes appearing in the feed while serving do not stop the refresher: it moves
        # past them, holds what it can, and the watchers are served the rest.
        async with component.db.engine.begin() as conn:
            await conn.execute(
                sa.insert(tables.changes),
                [
                    _change_row(DOMAIN, "feed-level.example", level=42),
                    _change_row(DOMAIN, "feed-type.example", change_type=77),
                    _change_row(DOMAIN, "feed-far.example", expire=7_258_118_400),
                ],
            )
        await upsert(stub, DOMAIN, "later.example")
        assert await level_of(stub, DOMAIN, "later.example") == c.RISK_LEVEL_HIGH
        assert await level_of(stub, DOMAIN, "feed-far.example") == c.RISK_LEVEL_HIGH
        assert lookup.unloadable == 4
        watch = stub.WatchIndicatorChanges(r.WatchIndicatorChangesRequest(kinds=[DOMAIN]))
        seen = {x.verdict.indicator.value for x in (await watch.read()).changes}
        watch.cancel()
        assert {"good.example", "later.example", "feed-far.example"} <= seen
        assert not {"feed-level.example", "feed-type.example"} & seen
        assert await is_serving(running.address)

    # And once more from the start, with the bad changes in the feed behind the cursor.
    async with serving(build(db_target)) as running:
        assert await is_serving(running.address)


# ---------------------------------------------------------------------------- retention


async def _backdate(component: RiskComponent, upto: int, age: timedelta) -> None:
    async with component.db.engine.begin() as conn:
        await conn.execute(
            sa.update(tables.changes)
            .where(tables.changes.c.id <= upto)
            .values(time=datetime.now(UTC) - age)
        )


async def _watch_error(stub: rg.RiskServiceStub, cursor: str) -> grpc.aio.AioRpcError:
    call = stub.WatchIndicatorChanges(r.WatchIndicatorChangesRequest(cursor=cursor), timeout=5)
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await call.read()
    return caught.value


async def _first_cursor(stub: rg.RiskServiceStub, cursor: str) -> str:
    call = stub.WatchIndicatorChanges(r.WatchIndicatorChangesRequest(cursor=cursor), timeout=5)
    first = (await call.read()).changes[0].cursor
    call.cancel()
    return first


async def test_the_feed_is_compacted_below_its_window_and_an_older_cursor_is_told_to_reset(
    db_target: tuple[str, str | None],
) -> None:
    component = build(db_target)
    async with serving(component) as running, harness.channel(running.address) as ch:
        stub = rg.RiskServiceStub(ch)
        for i in range(6):
            await upsert(stub, PHONE, f"1390013900{i}")
        last = component.lookup.cursor
    # Every change but the last three is older than the window.
    await _backdate(component, last - 3, WINDOW + timedelta(hours=1))
    # Exactly those go: the window's edge is the first change kept.
    deleted = await component.retention.run_once()
    assert deleted["changes"] == last - 3
    async with component.db.read() as conn:
        ids = list(
            (
                await conn.execute(sa.select(tables.changes.c.id).order_by(tables.changes.c.id))
            ).scalars()
        )
    assert ids == [last - 2, last - 1, last]

    # A new process (its memory starts now): old cursors are answered from the database.
    again = build(db_target)
    async with serving(again) as running, harness.channel(running.address) as ch:
        stub = rg.RiskServiceStub(ch)
        error = await _watch_error(stub, str(last - 5))
        assert error.code() == grpc.StatusCode.OUT_OF_RANGE
        info = error_info(error)
        assert info is not None
        assert info.reason == CURSOR_EXPIRED
        assert info.domain == "antifraud.gov.example"
        assert info.metadata["oldestCursor"] == str(last - 3)
        assert "7 days" in (error.details() or "")
        # The cursor just before what is kept misses nothing: it goes on.
        # Cursors carry the feed's identity (`<feed id>-<change id>`); plain numbers are read.
        assert (await _first_cursor(stub, str(last - 3))).rsplit("-", 1)[-1] == str(last - 2)
        first = await _first_cursor(stub, "")  # empty: the oldest kept
        assert first.rsplit("-", 1)[-1] == str(last - 2)
        # The newest change is kept whatever its age, so a quiet feed keeps its position.
    await _backdate(again, last, WINDOW * 3)
    assert (await again.retention.run_once())["changes"] == 2
    async with again.db.read() as conn:
        ids = list((await conn.execute(sa.select(tables.changes.c.id))).scalars())
    assert ids == [last]


async def test_request_ids_are_forgotten_after_their_window_and_no_sooner(
    db_target: tuple[str, str | None],
) -> None:
    component = build(db_target)
    async with serving(component) as running, harness.channel(running.address) as ch:
        stub = rg.RiskServiceStub(ch)
        requests = [
            r.UpsertIndicatorRequest(
                request_id=rid(), indicator=ind(PHONE, f"1370013700{i}"), assertion=assertion()
            )
            for i in range(5)
        ]
        for request in requests:
            await stub.UpsertIndicator(request)
        keys = tables.idempotency_keys
        async with component.db.engine.begin() as conn:
            for i, request in enumerate(requests[:3]):
                age = timedelta(hours=24, minutes=1 + i)
                await conn.execute(
                    sa.update(keys)
                    .where(keys.c.request_id == request.request_id)
                    .values(create_time=datetime.now(UTC) - age)
                )
            await conn.execute(
                sa.update(keys)
                .where(keys.c.request_id == requests[3].request_id)
                .values(create_time=datetime.now(UTC) - timedelta(hours=23, minutes=59))
            )
        deleted = await component.retention.run_once()
        assert deleted["idempotency_keys"] == 3
        async with component.db.read() as conn:
            kept = set((await conn.execute(sa.select(keys.c.request_id))).scalars())
        assert kept == {requests[3].request_id, requests[4].request_id}
        # Within the window a repeat is still the first answer; after it, a new request.
        again = await stub.UpsertIndicator(requests[4])
        assert again.record.verdict.level == c.RISK_LEVEL_HIGH


# ---------------------------------------------------------------------------- many watchers


async def test_hundreds_of_watchers_read_the_feed_from_memory(
    db_target: tuple[str, str | None],
) -> None:
    component = build(db_target)
    async with serving(component) as running, harness.channel(running.address) as ch:
        stub = rg.RiskServiceStub(ch)
        await upsert(stub, PHONE, "13600136000")
        statements = 0

        def seen(*_: object) -> None:
            nonlocal statements
            statements += 1

        sa.event.listen(component.db.engine.sync_engine, "before_cursor_execute", seen)
        start = statements
        await asyncio.sleep(2.0)
        baseline = statements - start  # the refresher's and the sweeper's own polls
        watchers = [
            stub.WatchIndicatorChanges(r.WatchIndicatorChangesRequest(from_now=True, kinds=[PHONE]))
            for _ in range(300)
        ]
        reads = [asyncio.ensure_future(w.read()) for w in watchers]
        await asyncio.sleep(2.0)  # all open
        opened = statements
        await asyncio.sleep(2.0)
        idle = statements - opened
        await upsert(stub, PHONE, "13600136001")
        got = await asyncio.wait_for(asyncio.gather(*reads), 15)
        assert {g.changes[-1].verdict.indicator.value for g in got} == {"+8613600136001"}
        after = statements - opened - idle
        for w in watchers:
            w.cancel()
        # Idle watchers cost nothing; a change costs the write and the refresher's read,
        # not a read per watcher.
        assert idle <= baseline + 10, (baseline, idle)
        assert after < 60, after
        assert await is_serving(running.address)


def _change(i: int) -> Change:
    return Change(
        i,
        IndicatorKind.PHONE_NUMBER,
        str(i),
        ChangeType.UPSERTED,
        SourceType.ANALYST,
        "a",
        "a",
        "r",
        datetime.now(UTC),
    )


async def test_the_memory_of_recent_changes_is_bounded() -> None:
    lookup = Lookup(None, recent=8)  # type: ignore[arg-type]  # never reads: fed by hand
    for start in range(1, 100, 5):
        lookup._remember([_change(i) for i in range(start, start + 5)])
        lookup.cursor = start + 4
    assert len(lookup._recent) <= 8 + 8 // 4 + 5
    assert lookup.recent_after(1, (), 10) is None  # older than the memory: the database
    newest = lookup.recent_after(lookup.cursor - 3, (), 10)
    assert newest is not None
    assert [x.id for x in newest] == [lookup.cursor - 2, lookup.cursor - 1, lookup.cursor]
    assert lookup.recent_after(lookup.cursor, (), 10) == []
