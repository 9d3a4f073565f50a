"""Risk list integrity on a real risk server, on SQLite and PostgreSQL: what is listed matches
as a browser or a phone would see it, nothing harmless is branded, and one bad value fails only
itself."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import grpc
import pytest
from google.protobuf.timestamp_pb2 import Timestamp

from services.api.antifraud.common.v1 import common_pb2 as c
from services.api.antifraud.risk.v1 import risk_pb2 as r
from services.api.antifraud.risk.v1 import risk_pb2_grpc as rg
from services.common.errors import field_violations
from services.common.indicators import IndicatorKind, normalize
from tests import harness
from tests.e2e.test_risk_service import assertion, check, component, ind
from tests.e2e.test_risk_service import risk as risk  # the fixture
from tests.factories import request_id
from tests.harness import serving

PHONE = c.INDICATOR_KIND_PHONE_NUMBER
SMS = c.INDICATOR_KIND_SMS_SENDER
URL = c.INDICATOR_KIND_URL
DOMAIN = c.INDICATOR_KIND_DOMAIN
IP = c.INDICATOR_KIND_IP_ADDRESS


async def upsert(stub: rg.RiskServiceStub, kind: int, value: str, **kw: Any) -> None:
    await stub.UpsertIndicator(
        r.UpsertIndicatorRequest(
            request_id=request_id(), indicator=ind(kind, value), assertion=assertion(**kw)
        )
    )


@pytest.mark.parametrize(
    ("kind", "listed", "checked_kind", "checked", "matched"),
    [
        # A backslash ends the host: the browser opens phish.example, not mps.gov.cn.
        (DOMAIN, "phish.example", URL, "http://phish.example\\@mps.gov.cn/login", "phish.example"),
        (URL, "phish.example/", URL, "https://phish.example\\@mps.gov.cn/", "phish.example/"),
        # IDNA 2008: faß is not fass.
        (DOMAIN, "xn--fa-hia.example", URL, "http://faß.example/pay", "xn--fa-hia.example"),
        (DOMAIN, "faß.example", DOMAIN, "www.FAß.example", "xn--fa-hia.example"),
        # IPv6 hosts match IPv6 listings and ranges.
        (IP, "2001:db8:1::/48", URL, "http://[2001:db8:1::9]/a", "2001:db8:1::/48"),
        (IP, "2001:db8:1::9", URL, "http://[2001:DB8:1:0::9]:8443/a", "2001:db8:1::9"),
        # SMS sender codes match as SMS senders, however they were listed.
        (PHONE, "1065 7550 1234", SMS, "106575501234", "106575501234"),
        (SMS, "106575501234", PHONE, "1065-7550-1234", "106575501234"),
    ],
)
async def test_listings_match_as_browsers_and_phones_see_them(
    risk: rg.RiskServiceStub, kind: int, listed: str, checked_kind: int, checked: str, matched: str
) -> None:
    await upsert(risk, kind, listed)
    verdict = await check(risk, checked_kind, checked)
    assert verdict.level == c.RISK_LEVEL_HIGH
    assert not verdict.verified
    assert matched in (verdict.matched_value or verdict.indicator.value)


@pytest.mark.parametrize(
    ("kind", "checked"),
    [(DOMAIN, "fass.example"), (URL, "http://fass.example/"), (URL, "http://[2001:db8:2::9]/")],
)
async def test_look_alike_values_are_not_branded(
    risk: rg.RiskServiceStub, kind: int, checked: str
) -> None:
    await upsert(risk, DOMAIN, "xn--fa-hia.example")
    await upsert(risk, IP, "2001:db8:1::/48")
    assert (await check(risk, kind, checked)).level == c.RISK_LEVEL_NONE


async def test_the_official_label_is_not_borrowed_through_a_backslash(
    risk: rg.RiskServiceStub,
) -> None:
    verdict = await check(risk, URL, "http://phish.example\\@mps.gov.cn/login")
    assert not verdict.verified
    assert verdict.verified_label == ""
    assert verdict.indicator.value == "phish.example/@mps.gov.cn/login"


@pytest.mark.parametrize(
    ("kind", "value", "limit"),
    [
        (DOMAIN, "com.cn", "public suffix"),
        (DOMAIN, "github.io", "public suffix"),
        (URL, "http://github.io/", "public suffix"),
        (IP, "10.0.0.0/7", "at most /8"),
        (IP, "2001::/12", "at most /16"),
        (URL, "http://e.example/a/b/c/d/", "at most 3 directories"),
    ],
)
async def test_listings_that_cannot_match_or_brand_everyone_are_refused(
    risk: rg.RiskServiceStub, kind: int, value: str, limit: str
) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await upsert(risk, kind, value)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    [(field, reason)] = field_violations(err.value)
    assert field == "indicator.value"
    assert limit in reason
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await risk.AddIndicatorSighting(
            r.AddIndicatorSightingRequest(
                request_id=request_id(),
                indicator=ind(kind, value),
                source_type=r.SOURCE_TYPE_CITIZEN_REPORTS,
                reporter_ref="citizen-1",
            )
        )
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT


@pytest.mark.parametrize(
    ("kind", "checked", "imitated"),
    [
        (DOMAIN, "mp5.gov.cn", "mps.gov.cn"),
        (URL, "http://www.rnps.gov.cn.mp5.gov.cn/login", "mps.gov.cn"),
        (DOMAIN, "аpple.example", "apple.example"),  # Cyrillic а
        (URL, "https://app1e.example/id", "apple.example"),
    ],
)
async def test_lookalikes_of_verified_domains_are_flagged(
    risk: rg.RiskServiceStub, kind: int, checked: str, imitated: str
) -> None:
    await upsert(
        risk,
        DOMAIN,
        "apple.example",
        source=r.SOURCE_TYPE_ALLOW_LIST,
        level=c.RISK_LEVEL_NONE,
        source_id="allow",
        label="Apple",
    )
    verdict = await check(risk, kind, checked)
    assert verdict.lookalike_of == imitated
    assert not verdict.verified
    flagged = [reason for reason in verdict.reasons if reason.startswith("look-alike:")]
    assert flagged
    assert imitated in flagged[0]
    real = await check(risk, DOMAIN, imitated)
    assert real.verified
    assert real.lookalike_of == ""


@pytest.mark.parametrize("dialled", ["025-96110", "0755-96110", "(010) 96110", "96110"])
async def test_local_forms_of_96110_are_the_verified_96110(
    risk: rg.RiskServiceStub, dialled: str
) -> None:
    verdict = await check(risk, PHONE, dialled)
    assert verdict.verified
    assert "96110" in verdict.verified_label
    assert verdict.indicator.value == "96110"


@pytest.mark.parametrize("dialled", ["0086 96110", "+86 96110", "+8696110", "+86 25 96110"])
async def test_internationally_prefixed_service_codes_are_flagged_as_spoofing(
    risk: rg.RiskServiceStub, dialled: str
) -> None:
    verdict = await check(risk, PHONE, dialled)
    assert not verdict.verified
    assert verdict.verified_label == ""
    assert verdict.level == c.RISK_LEVEL_MEDIUM
    assert any(reason.startswith("spoofing:") for reason in verdict.reasons)


@pytest.mark.parametrize("dialled", ["1380013800", "138001380001", "+86 140 1234 5678"])
async def test_impossible_mobiles_are_invalid(risk: rg.RiskServiceStub, dialled: str) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await check(risk, PHONE, dialled)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT


async def test_a_batch_answers_each_value(risk: rg.RiskServiceStub) -> None:
    await upsert(risk, PHONE, "13800138000")
    values = [
        ind(PHONE, "138 0013 8000"),
        ind(PHONE, "not a number"),
        ind(99, "x"),
        ind(PHONE, "025-96110"),
        ind(URL, "http://[::1/"),
    ]
    response = await risk.BatchCheckIndicators(r.BatchCheckIndicatorsRequest(indicators=values))
    assert [v.level for v in response.verdicts] == [
        c.RISK_LEVEL_HIGH,
        c.RISK_LEVEL_UNSPECIFIED,
        c.RISK_LEVEL_UNSPECIFIED,
        c.RISK_LEVEL_NONE,
        c.RISK_LEVEL_UNSPECIFIED,
    ]
    assert response.verdicts[3].verified
    assert response.verdicts[1].indicator.value == "not a number"
    assert [(e.index, e.field) for e in response.errors] == [
        (1, "indicators[1].value"),
        (2, "indicators[2].kind"),
        (4, "indicators[4].value"),
    ]
    assert list(response.verdicts[1].notes) == [response.errors[0].reason]


async def test_an_import_answers_each_item(risk: rg.RiskServiceStub) -> None:
    past = Timestamp()
    past.FromDatetime(datetime.now(UTC) - timedelta(days=1))

    def item(kind: int, value: str, **kw: Any) -> r.ImportIndicatorsRequest:
        return r.ImportIndicatorsRequest(indicator=ind(kind, value), assertion=assertion(**kw))

    async def items() -> AsyncIterator[r.ImportIndicatorsRequest]:
        yield item(DOMAIN, "ok-1.example")
        yield r.ImportIndicatorsRequest(indicator=ind(DOMAIN, "com.cn"), assertion=assertion())
        yield r.ImportIndicatorsRequest(
            indicator=ind(DOMAIN, "late.example"), assertion=assertion(expire_time=past)
        )
        yield r.ImportIndicatorsRequest(indicator=ind(IP, "1.0.0.0/4"), assertion=assertion())
        yield item(DOMAIN, "ok-2.example")

    response = await risk.ImportIndicators(items())
    assert (response.accepted_count, response.rejected_count) == (2, 3)
    assert [(e.index, e.field) for e in response.errors] == [
        (1, "indicator.value"),
        (2, "assertion.expire_time"),
        (3, "indicator.value"),
    ]
    assert "public suffix" in response.errors[0].reason
    for listed in ["ok-1.example", "ok-2.example"]:
        assert (await check(risk, DOMAIN, listed)).level == c.RISK_LEVEL_HIGH


async def _first_change(stub: rg.RiskServiceStub, **request: Any) -> r.IndicatorChange:
    call = stub.WatchIndicatorChanges(r.WatchIndicatorChangesRequest(**request))
    async for response in call:
        if response.changes:
            call.cancel()
            return response.changes[0]
    raise AssertionError("no change")


async def _watch_error(stub: rg.RiskServiceStub, cursor: str) -> grpc.aio.AioRpcError:
    call = stub.WatchIndicatorChanges(r.WatchIndicatorChangesRequest(cursor=cursor))
    with pytest.raises(grpc.aio.AioRpcError) as err:
        async for _ in call:
            pass
    return err.value


async def test_feed_cursors_carry_the_feeds_identity(
    db_target: tuple[str, str | None], tmp_path: Path
) -> None:
    async with (
        serving(component(db_target)) as running,
        harness.channel(running.address) as channel,
    ):
        stub = rg.RiskServiceStub(channel)
        await upsert(stub, PHONE, "13800138000")
        first = await _first_change(stub)
        feed_id, _, number = first.cursor.rpartition("-")
        assert len(feed_id) == 16
        assert number.isdigit()
        # The cursor resumes after its change; so does the plain number (cursors before ids).
        after = await _first_change(stub, cursor=first.cursor)
        assert after.cursor == f"{feed_id}-{int(number) + 1}"
        plain = await _first_change(stub, cursor=number)
        assert plain.cursor == after.cursor
        # Beyond the end of the feed: OUT_OF_RANGE, with the feed's identity or without.
        last = int(number) + 1000
        for beyond in [f"{feed_id}-{last}", str(last)]:
            assert (await _watch_error(stub, beyond)).code() == grpc.StatusCode.OUT_OF_RANGE
        # The end itself is a fine place to wait.
        history = await stub.GetIndicator(
            r.GetIndicatorRequest(indicator=ind(PHONE, "13800138000"))
        )
        assert history.history[0].cursor.startswith(feed_id + "-")
        # Another database's cursor: FAILED_PRECONDITION.
        other = await _watch_error(stub, f"0123456789abcdef-{number}")
        assert other.code() == grpc.StatusCode.FAILED_PRECONDITION
        assert (await _watch_error(stub, "not-a-cursor")).code() == (
            grpc.StatusCode.INVALID_ARGUMENT
        )
    # Another database has another identity.
    other_db = (harness.sqlite_url(tmp_path, "other"), None)
    async with (
        serving(component(other_db)) as running,
        harness.channel(running.address) as channel,
    ):
        theirs = await _first_change(rg.RiskServiceStub(channel))
        assert theirs.cursor.rpartition("-")[0] != feed_id


async def test_a_lapsed_assertion_never_decides_even_before_the_sweeper_runs(
    db_target: tuple[str, str | None],
) -> None:
    comp = component(db_target)
    comp.sweep_seconds = 3600  # the sweeper does not run in this test
    async with (
        serving(comp) as running,
        harness.channel(running.address) as channel,
    ):
        stub = rg.RiskServiceStub(channel)
        await upsert(
            stub, PHONE, "13800138000", source=r.SOURCE_TYPE_CARRIER, level=c.RISK_LEVEL_LOW
        )
        soon = Timestamp()
        lapse = datetime.now(UTC) + timedelta(seconds=2)
        soon.FromDatetime(lapse)
        await upsert(stub, PHONE, "13800138000", expire_time=soon)
        assert (await check(stub, PHONE, "13800138000")).level == c.RISK_LEVEL_HIGH
        # Rounded up to the second, the HIGH stands until its last second has passed.
        await asyncio.sleep((lapse - datetime.now(UTC)).total_seconds() + 1.1)
        verdict = await check(stub, PHONE, "13800138000")
        assert verdict.level == c.RISK_LEVEL_LOW
        assert verdict.sources.carrier_feed
        assert not verdict.sources.analyst_reviewed


@pytest.mark.parametrize("count", [12_000])
async def test_the_sweeper_records_many_simultaneous_lapses_at_once(
    db_target: tuple[str, str | None], count: int
) -> None:
    """Lapses are recorded a batch per transaction: every one once, in the feed, quickly
    (the million-in-60-s figure is measured by `make bench`)."""
    from services.risk.adapters.bulk import load_new
    from services.risk.adapters.repository import RiskRepository
    from services.risk.domain.model import Assertion, ChangeType, RiskLevel, SourceType

    now = datetime.now(UTC)
    items = [
        (
            normalize(IndicatorKind.QQ_NUMBER, str(10_000_000 + n)),
            Assertion(
                SourceType.CARRIER, "feed", RiskLevel.HIGH, frozenset(), "feed",
                now - timedelta(seconds=1), now - timedelta(days=1), now - timedelta(days=1),
            ),
        )
        for n in range(count)
    ]  # fmt: skip
    comp = component(db_target)
    await comp.migrate()
    async with comp.db.engine.begin() as conn:
        assert await load_new(conn, items, "test", now - timedelta(days=1)) == count
    async with comp.db.read() as conn:  # committed: a follower reads the feed up to here
        before = await RiskRepository(conn).last_change_id()
    await comp.lookup.load()
    started = time.perf_counter()
    assert await comp.sweep_once() == count
    seconds = time.perf_counter() - started
    assert await comp.sweep_once() == 0  # nothing twice
    async with comp.db.read() as conn:
        changes = (await RiskRepository(conn).changes_after(before, count + 10)).changes
    await comp.db.dispose()
    assert len(changes) == count
    assert {c_.change_type for c_ in changes} == {ChangeType.EXPIRED}
    assert len({c_.value for c_ in changes}) == count
    assert [c_.id for c_ in changes] == list(range(before + 1, before + count + 1))
    print(f"\n{count} lapses recorded in {seconds:.2f} s (speed is measured by make bench)")


async def test_each_lapse_is_one_change_in_order_with_the_verdict_that_remains(
    db_target: tuple[str, str | None],
) -> None:
    """Small batches of the sweeper (2 indicators per transaction): an indicator whose HIGH
    lapses over a standing LOW gets one change saying LOW; one whose two assertions lapse
    together gets two, both saying nothing stands; a renewed assertion does not lapse; every
    change once, ids in order, and each indicator's last change is its stored verdict."""
    from services.risk.adapters.repository import RiskRepository
    from services.risk.domain.model import ChangeType, FraudCategory, RiskLevel, SourceType
    from services.risk.service_layer import handlers
    from services.risk.service_layer.unit_of_work import RiskUnitOfWork

    comp = component(db_target)
    await comp.migrate()
    now = datetime.now(UTC)
    soon = now + timedelta(seconds=1)
    qq = [normalize(IndicatorKind.QQ_NUMBER, str(20_000_000 + n)) for n in range(5)]

    def given(source: str, level: RiskLevel, expire: datetime) -> handlers.AssertionInput:
        return handlers.AssertionInput(
            SourceType.CARRIER, source, level, frozenset({FraudCategory.OTHER}), source,
            expire_time=expire,
        )  # fmt: skip

    later = now + timedelta(days=1)
    async with RiskUnitOfWork(comp.db) as uow:
        await handlers.upsert_many(
            uow,
            [
                (qq[0], given("high", RiskLevel.HIGH, soon)),
                (qq[0], given("low", RiskLevel.LOW, later)),  # stands after the HIGH lapses
                (qq[1], given("a", RiskLevel.HIGH, soon)),
                (qq[1], given("b", RiskLevel.MEDIUM, soon)),  # both lapse
                (qq[2], given("renewed", RiskLevel.HIGH, soon)),
                (qq[3], given("c", RiskLevel.MEDIUM, soon)),
                (qq[4], given("d", RiskLevel.LOW, soon)),
            ],
            "test",
            now,
        )
        await uow.commit()
    async with RiskUnitOfWork(comp.db) as uow:  # renewed before it lapses: it stands
        await handlers.upsert(uow, qq[2], given("renewed", RiskLevel.HIGH, later), "test", now)
        await uow.commit()
    async with comp.db.read() as conn:
        before = await RiskRepository(conn).last_change_id()
    await asyncio.sleep((soon - datetime.now(UTC)).total_seconds() + 0.1)
    lapsed, rounds = 0, 0
    while True:
        async with RiskUnitOfWork(comp.db) as uow:
            found = await handlers.expire_due(uow, datetime.now(UTC), limit=2)
            await uow.commit()
        if not found:
            break
        lapsed, rounds = lapsed + found, rounds + 1
    assert (lapsed, rounds) == (5, 2)  # 4 indicators, 2 per round
    async with comp.db.read() as conn:
        repo = RiskRepository(conn)
        changes = (await repo.changes_after(before, 100)).changes
        stored = {i.value: await repo.snapshot(i.kind, i.value) for i in qq}
    await comp.db.dispose()
    assert [c_.id for c_ in changes] == list(range(before + 1, before + 6))
    assert all(c_.change_type is ChangeType.EXPIRED for c_ in changes)
    assert sorted((c_.value, c_.source_id) for c_ in changes) == sorted(
        [(qq[0].value, "high"), (qq[1].value, "a"), (qq[1].value, "b"),
         (qq[3].value, "c"), (qq[4].value, "d")]
    )  # fmt: skip
    by_value: dict[str, list[Any]] = {}
    for change in changes:
        by_value.setdefault(change.value, []).append(change.snapshot)
    assert by_value[qq[0].value][0].level is RiskLevel.LOW
    assert all(not s.listed for s in by_value[qq[1].value])
    for value, snaps in by_value.items():
        assert snaps[-1] == stored[value]
    renewed = stored[qq[2].value]
    assert renewed is not None
    assert renewed.level is RiskLevel.HIGH
