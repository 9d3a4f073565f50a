"""The risk service on a real socket, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import grpc
import pytest
from google.protobuf.timestamp_pb2 import Timestamp

from services.api.antifraud.common.v1 import common_pb2 as c
from services.api.antifraud.risk.v1 import risk_pb2 as r
from services.api.antifraud.risk.v1 import risk_pb2_grpc as rg
from services.common.errors import field_violations
from services.common.indicators import IndicatorKind
from services.risk.bootstrap import RiskComponent, build
from tests import harness
from tests.factories import request_id
from tests.harness import serving

PHONE = c.INDICATOR_KIND_PHONE_NUMBER
URL = c.INDICATOR_KIND_URL


def ind(kind: int, value: str) -> c.Indicator:
    return c.Indicator(kind=kind, value=value)  # type: ignore[arg-type]


def assertion(
    source: int = r.SOURCE_TYPE_ANALYST,
    level: int = c.RISK_LEVEL_HIGH,
    source_id: str = "analyst-1",
    **kw: Any,
) -> r.Assertion:
    return r.Assertion(
        source_type=source,  # type: ignore[arg-type]
        source_id=source_id,
        level=level,  # type: ignore[arg-type]
        reason=kw.pop("reason", "confirmed on review"),
        **kw,
    )


async def eventually(check: Callable[[], Awaitable[bool]], timeout: float = 3.0) -> None:
    deadline = time.monotonic() + timeout
    while not await check():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.05)


def component(db_target: tuple[str, str | None]) -> RiskComponent:
    url, schema = db_target
    comp = build(url=url, schema=schema)
    comp.sweep_seconds = 0.2
    return comp


@pytest.fixture
async def risk(db_target: tuple[str, str | None]) -> AsyncIterator[rg.RiskServiceStub]:
    async with (
        serving(component(db_target)) as running,
        harness.channel(running.address) as channel,
    ):
        yield rg.RiskServiceStub(channel)


async def check(stub: rg.RiskServiceStub, kind: int, value: str) -> r.Verdict:
    response = await stub.CheckIndicator(r.CheckIndicatorRequest(indicator=ind(kind, value)))
    return response.verdict


async def test_unknown_value_is_level_none_not_an_error(risk: rg.RiskServiceStub) -> None:
    verdict = await check(risk, PHONE, "+86 139 0000 1111")
    assert verdict.level == c.RISK_LEVEL_NONE
    assert verdict.indicator.value == "+8613900001111"
    assert not verdict.reasons


async def test_official_numbers_are_verified(risk: rg.RiskServiceStub) -> None:
    verdict = await check(risk, PHONE, "96110")
    assert verdict.verified
    assert "96110" in verdict.verified_label
    assert verdict.level == c.RISK_LEVEL_NONE


async def test_unnormalisable_value_names_the_field(risk: rg.RiskServiceStub) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await check(risk, PHONE, "not a number")
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert field_violations(err.value) == [("indicator.value", "not a valid phone number")]
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await check(risk, 99, "x")
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert field_violations(err.value)[0][0] == "indicator.kind"


async def test_upsert_is_visible_explained_and_idempotent(risk: rg.RiskServiceStub) -> None:
    rid = request_id()
    request = r.UpsertIndicatorRequest(
        request_id=rid,
        indicator=ind(URL, "evil.example/pay/"),
        assertion=assertion(categories=[c.FRAUD_CATEGORY_FAKE_SHOPPING]),
    )
    first = await risk.UpsertIndicator(request)
    again = await risk.UpsertIndicator(request)
    assert again == first
    verdict = await check(risk, URL, "http://shop.evil.example/pay/now?id=1")
    assert verdict.level == c.RISK_LEVEL_HIGH
    assert verdict.matched_value == "evil.example/pay/"
    assert list(verdict.categories) == [c.FRAUD_CATEGORY_FAKE_SHOPPING]
    assert "reviewed by an anti-fraud analyst" in verdict.reasons
    assert verdict.sources.analyst_reviewed
    other = r.UpsertIndicatorRequest(
        request_id=rid, indicator=ind(URL, "other.example/"), assertion=assertion()
    )
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await risk.UpsertIndicator(other)
    assert err.value.code() == grpc.StatusCode.ABORTED
    got = await risk.GetIndicator(r.GetIndicatorRequest(indicator=ind(URL, "evil.example/pay/")))
    assert len(got.history) == 1  # the repeat changed nothing


async def test_allow_list_beats_a_flood_of_reports(risk: rg.RiskServiceStub) -> None:
    for n in range(20):
        await risk.AddIndicatorSighting(
            r.AddIndicatorSightingRequest(
                request_id=request_id(),
                indicator=ind(PHONE, "96110"),
                source_type=r.SOURCE_TYPE_CITIZEN_REPORTS,
                reporter_ref=f"citizen-{n}",
            )
        )
    await risk.UpsertIndicator(
        r.UpsertIndicatorRequest(
            request_id=request_id(),
            indicator=ind(PHONE, "96110"),
            assertion=assertion(
                r.SOURCE_TYPE_CITIZEN_REPORTS,
                c.RISK_LEVEL_MEDIUM,
                "report-service",
                reporter_count=20,
            ),
        )
    )
    verdict = await check(risk, PHONE, "96110")
    assert verdict.verified
    assert verdict.level == c.RISK_LEVEL_NONE


async def test_sightings_count_each_reporter_once(risk: rg.RiskServiceStub) -> None:
    for ref in ["a", "b", "a", "a", "c"]:
        response = await risk.AddIndicatorSighting(
            r.AddIndicatorSightingRequest(
                request_id=request_id(),
                indicator=ind(PHONE, "13700001234"),
                source_type=r.SOURCE_TYPE_CITIZEN_REPORTS,
                reporter_ref=ref,
            )
        )
    assert response.verdict.sources.distinct_reporters == 3
    assert response.verdict.level == c.RISK_LEVEL_LOW
    assert "reported by 3 distinct citizens" in response.verdict.reasons


async def test_retiring_a_source_leaves_the_others(risk: rg.RiskServiceStub) -> None:
    phone = ind(PHONE, "13800138000")
    await risk.UpsertIndicator(
        r.UpsertIndicatorRequest(
            request_id=request_id(),
            indicator=phone,
            assertion=assertion(
                r.SOURCE_TYPE_CITIZEN_REPORTS,
                c.RISK_LEVEL_MEDIUM,
                "report-service",
                reporter_count=3,
            ),
        )
    )
    await risk.UpsertIndicator(
        r.UpsertIndicatorRequest(request_id=request_id(), indicator=phone, assertion=assertion())
    )
    assert (await check(risk, PHONE, "13800138000")).level == c.RISK_LEVEL_HIGH
    await risk.RetireIndicator(
        r.RetireIndicatorRequest(
            request_id=request_id(),
            indicator=phone,
            source_type=r.SOURCE_TYPE_ANALYST,
            source_id="analyst-1",
            reason="false positive",
        )
    )
    verdict = await check(risk, PHONE, "13800138000")
    assert verdict.level == c.RISK_LEVEL_MEDIUM
    assert verdict.sources.distinct_reporters == 3
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await risk.RetireIndicator(
            r.RetireIndicatorRequest(
                request_id=request_id(), indicator=ind(PHONE, "13900000000"), reason="x"
            )
        )
    assert err.value.code() == grpc.StatusCode.NOT_FOUND


async def test_assertions_decay_and_the_feed_says_so(risk: rg.RiskServiceStub) -> None:
    expire = Timestamp()
    expire.FromDatetime(datetime.now(UTC) + timedelta(seconds=3))
    await risk.UpsertIndicator(
        r.UpsertIndicatorRequest(
            request_id=request_id(),
            indicator=ind(c.INDICATOR_KIND_QQ_NUMBER, "88886666"),
            assertion=assertion(expire_time=expire),
        )
    )
    assert (await check(risk, c.INDICATOR_KIND_QQ_NUMBER, "88886666")).level == c.RISK_LEVEL_HIGH

    async def lapsed() -> bool:
        got = await risk.GetIndicator(
            r.GetIndicatorRequest(indicator=ind(c.INDICATOR_KIND_QQ_NUMBER, "88886666"))
        )
        return got.history[0].change_type == r.CHANGE_TYPE_EXPIRED

    await eventually(lapsed, timeout=10)
    assert (await check(risk, c.INDICATOR_KIND_QQ_NUMBER, "88886666")).level == c.RISK_LEVEL_NONE
    # Re-confirmation brings it back and extends it.
    await risk.UpsertIndicator(
        r.UpsertIndicatorRequest(
            request_id=request_id(),
            indicator=ind(c.INDICATOR_KIND_QQ_NUMBER, "88886666"),
            assertion=assertion(),
        )
    )
    assert (await check(risk, c.INDICATOR_KIND_QQ_NUMBER, "88886666")).level == c.RISK_LEVEL_HIGH


async def test_batch_answers_in_order_and_rejects_bad_batches(risk: rg.RiskServiceStub) -> None:
    await risk.UpsertIndicator(
        r.UpsertIndicatorRequest(
            request_id=request_id(),
            indicator=ind(c.INDICATOR_KIND_DOMAIN, "scam.example"),
            assertion=assertion(),
        )
    )
    values = [ind(PHONE, "96110"), ind(URL, "https://a.scam.example/"), ind(PHONE, "13912345678")]
    response = await risk.BatchCheckIndicators(r.BatchCheckIndicatorsRequest(indicators=values))
    assert [v.level for v in response.verdicts] == [
        c.RISK_LEVEL_NONE,
        c.RISK_LEVEL_HIGH,
        c.RISK_LEVEL_NONE,
    ]
    assert response.verdicts[0].verified
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await risk.BatchCheckIndicators(
            r.BatchCheckIndicatorsRequest(indicators=[ind(PHONE, "1")] * 1001)
        )
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    # One bad value is answered with its own error; the others get their verdicts.
    response = await risk.BatchCheckIndicators(
        r.BatchCheckIndicatorsRequest(indicators=[ind(PHONE, "96110"), ind(URL, "")])
    )
    assert response.verdicts[0].verified
    assert response.verdicts[1].level == c.RISK_LEVEL_UNSPECIFIED
    assert list(response.verdicts[1].notes) == ["value is empty"]
    assert [(e.index, e.field, e.reason) for e in response.errors] == [
        (1, "indicators[1].value", "value is empty")
    ]


async def test_stream_screens_in_order_and_survives_bad_values(risk: rg.RiskServiceStub) -> None:
    await risk.UpsertIndicator(
        r.UpsertIndicatorRequest(
            request_id=request_id(), indicator=ind(PHONE, "17012345678"), assertion=assertion()
        )
    )

    async def requests() -> AsyncIterator[r.StreamCheckIndicatorsRequest]:
        for n in range(3):
            yield r.StreamCheckIndicatorsRequest(
                correlation_id=f"batch-{n}",
                indicators=[
                    ind(PHONE, "170 1234 5678"),
                    ind(PHONE, "garbage"),
                    ind(PHONE, "96110"),
                ],
            )

    responses = [resp async for resp in risk.StreamCheckIndicators(requests())]
    assert [resp.correlation_id for resp in responses] == ["batch-0", "batch-1", "batch-2"]
    for resp in responses:
        levels = [v.level for v in resp.verdicts]
        assert levels == [c.RISK_LEVEL_HIGH, c.RISK_LEVEL_UNSPECIFIED, c.RISK_LEVEL_NONE]
        assert resp.verdicts[1].notes == ["not a valid phone number"]


async def test_import_applies_good_items_and_reports_bad_ones(risk: rg.RiskServiceStub) -> None:
    async def items() -> AsyncIterator[r.ImportIndicatorsRequest]:
        for n in range(1200):
            yield r.ImportIndicatorsRequest(
                indicator=ind(c.INDICATOR_KIND_WECHAT_ID, f"wx_fraud_{n:05d}"),
                assertion=assertion(r.SOURCE_TYPE_CARRIER, c.RISK_LEVEL_MEDIUM, "carrier-cmcc"),
            )
        yield r.ImportIndicatorsRequest(
            indicator=ind(c.INDICATOR_KIND_WECHAT_ID, "1"), assertion=assertion()
        )
        yield r.ImportIndicatorsRequest(
            indicator=ind(c.INDICATOR_KIND_WECHAT_ID, "wx_ok_level"),
            assertion=assertion(level=c.RISK_LEVEL_NONE),
        )

    response = await risk.ImportIndicators(items())
    assert response.accepted_count == 1200
    assert response.rejected_count == 2
    assert [(e.index, e.field) for e in response.errors] == [
        (1200, "indicator.value"),
        (1201, "assertion.level"),
    ]
    verdict = await check(risk, c.INDICATOR_KIND_WECHAT_ID, "WX_FRAUD_00999")
    assert verdict.level == c.RISK_LEVEL_MEDIUM
    listed = await risk.ListIndicators(
        r.ListIndicatorsRequest(kind=c.INDICATOR_KIND_WECHAT_ID, page_size=500)
    )
    seen = [v.indicator.value for v in listed.verdicts]
    while listed.next_page_token:
        listed = await risk.ListIndicators(
            r.ListIndicatorsRequest(
                kind=c.INDICATOR_KIND_WECHAT_ID, page_size=500, page_token=listed.next_page_token
            )
        )
        seen.extend(v.indicator.value for v in listed.verdicts)
    assert len(seen) == len(set(seen)) == 1200
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await risk.ListIndicators(r.ListIndicatorsRequest(page_token="garbage!"))
    assert field_violations(err.value) == [("page_token", "is not a page token from this API")]


async def test_change_feed_resumes_from_a_cursor_across_a_restart(
    db_target: tuple[str, str | None],
) -> None:
    phones = [f"+86135000000{n:02d}" for n in range(6)]
    async with (
        serving(component(db_target)) as running,
        harness.channel(running.address) as ch,
    ):
        stub = rg.RiskServiceStub(ch)
        for p in phones[:3]:
            await stub.UpsertIndicator(
                r.UpsertIndicatorRequest(
                    request_id=request_id(), indicator=ind(PHONE, p), assertion=assertion()
                )
            )
        call = stub.WatchIndicatorChanges(r.WatchIndicatorChangesRequest(kinds=[PHONE]))
        seen: list[r.IndicatorChange] = []
        async for response in call:
            seen.extend(ch_ for ch_ in response.changes if not ch_.verdict.verified)
            if len(seen) >= 2:
                break
        call.cancel()
        cursor = seen[1].cursor
    # A new server process on the same database: the feed continues after the cursor.
    async with (
        serving(component(db_target)) as running,
        harness.channel(running.address) as ch,
    ):
        stub = rg.RiskServiceStub(ch)
        for p in phones[3:]:
            await stub.UpsertIndicator(
                r.UpsertIndicatorRequest(
                    request_id=request_id(), indicator=ind(PHONE, p), assertion=assertion()
                )
            )
        call = stub.WatchIndicatorChanges(
            r.WatchIndicatorChangesRequest(cursor=cursor, kinds=[PHONE])
        )
        after: list[str] = []
        async for response in call:
            after.extend(x.verdict.indicator.value for x in response.changes)
            if len(after) >= 4:
                break
        call.cancel()
    assert after == phones[2:]


async def test_a_change_through_one_replica_is_seen_by_another(
    db_target: tuple[str, str | None],
) -> None:
    async with (
        serving(component(db_target)) as a,
        serving(component(db_target)) as b,
        harness.channel(a.address) as ch_a,
        harness.channel(b.address) as ch_b,
    ):
        stub_a, stub_b = rg.RiskServiceStub(ch_a), rg.RiskServiceStub(ch_b)
        await stub_a.UpsertIndicator(
            r.UpsertIndicatorRequest(
                request_id=request_id(),
                indicator=ind(c.INDICATOR_KIND_APP, "com.fake.bank"),
                assertion=assertion(),
            )
        )

        async def seen_by_b() -> bool:
            v = await check(stub_b, c.INDICATOR_KIND_APP, "com.fake.bank#" + "0" * 64)
            return v.level == c.RISK_LEVEL_HIGH

        # B follows the change feed every ANTIFRAUD_RISK_POLL_SECONDS (0.2 s); the wait is
        # generous so a loaded machine does not fail it: speed is measured, not asserted.
        await eventually(seen_by_b, timeout=10.0)


@pytest.mark.slow
async def test_a_citizen_scale_data_set_loads_at_start_and_answers(
    db_target: tuple[str, str | None],
) -> None:
    from services.risk.adapters.bulk import load_new
    from services.risk.domain.model import Assertion, RiskLevel, SourceType
    from tests.factories import dataset

    now = datetime.now(UTC)
    data = list(dataset(100_000))
    comp = component(db_target)
    await comp.migrate()
    items = [
        (
            i,
            Assertion(
                SourceType.CARRIER,
                "feed",
                RiskLevel(2 + n % 3),
                frozenset(),
                "feed",
                now + timedelta(days=30),
                now,
                now,
            ),
        )
        for n, i in enumerate(data)
    ]
    async with comp.db.unbounded() as conn:
        assert await load_new(conn, items, "test", now) == 100_000
    await comp.db.dispose()
    async with (
        serving(component(db_target)) as running,
        harness.channel(running.address) as ch,
    ):
        stub = rg.RiskServiceStub(ch)
        kinds = {IndicatorKind(i.kind) for i in data}
        assert len(kinds) == 10
        sample = data[::997]
        response = await stub.BatchCheckIndicators(
            r.BatchCheckIndicatorsRequest(indicators=[ind(int(i.kind), i.value) for i in sample])
        )
        expected = [2 + (n * 997) % 3 for n in range(len(sample))]
        assert [int(v.level) for v in response.verdicts] == expected
        miss = await check(stub, PHONE, "+8613012345678")
        assert miss.level == c.RISK_LEVEL_NONE


async def test_stream_verdicts_are_check_indicator_verdicts(risk: rg.RiskServiceStub) -> None:
    """The stream's answers, assembled as bytes, read as the same verdicts CheckIndicator
    gives, before and after the entries behind them change."""
    values = [
        ind(PHONE, "170 2345 6789"),
        ind(PHONE, "13012345678"),
        ind(PHONE, "96110"),
        ind(c.INDICATOR_KIND_DOMAIN, "login.stream-scam.example"),
        ind(URL, "http://stream-scam.example/pay"),
        ind(c.INDICATOR_KIND_IP_ADDRESS, "203.0.113.9"),
    ]
    listed = [
        ind(PHONE, "17023456789"),
        ind(c.INDICATOR_KIND_DOMAIN, "stream-scam.example"),
        ind(c.INDICATOR_KIND_IP_ADDRESS, "203.0.113.0/24"),
    ]

    async def upsert(level: int, reason: str) -> None:
        for value in listed:
            await risk.UpsertIndicator(
                r.UpsertIndicatorRequest(
                    request_id=request_id(),
                    indicator=value,
                    assertion=assertion(level=level, reason=reason),
                )
            )

    async def compare() -> list[r.Verdict]:
        async def requests() -> AsyncIterator[r.StreamCheckIndicatorsRequest]:
            yield r.StreamCheckIndicatorsRequest(indicators=values, correlation_id="cmp")

        [response] = [resp async for resp in risk.StreamCheckIndicators(requests())]
        expected = [await check(risk, v.kind, v.value) for v in values]
        assert list(response.verdicts) == expected
        assert response.correlation_id == "cmp"
        return expected

    await upsert(c.RISK_LEVEL_HIGH, "confirmed on review")
    before = await compare()
    assert [v.level for v in before] == [4, 1, 1, 4, 4, 4]
    await upsert(c.RISK_LEVEL_LOW, "downgraded after appeal")
    after = await compare()
    assert [v.level for v in after] == [2, 1, 1, 2, 2, 2]
    assert after[0].reasons != before[0].reasons
