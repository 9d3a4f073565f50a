"""Trust boundaries through the gateway, on the deployed topology: provenance comes from
the caller's key, partners see only their own, officers act only as themselves,
revocation ends open streams, streams are capped per key, failed authentications are
throttled before the key store, and upstream failures are told without our topology."""

from __future__ import annotations

import asyncio
import random
import time
import uuid
from typing import Any

import grpc
import pytest
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from services.api.antifraud.common.v1 import common_pb2 as c
from services.api.antifraud.gateway.v1 import gateway_pb2 as gw
from services.api.antifraud.report.v1 import report_pb2 as rp
from services.api.antifraud.risk.v1 import risk_pb2 as rk
from services.api.antifraud.warning.v1 import warning_pb2 as wn
from services.common.resident_id import with_check_character
from tests.e2e.deployment import Deployment, eventually, new_phone
from tests.factories import card

pytestmark = pytest.mark.slow
#: The gateway's default cap (ANTIFRAUD_GATEWAY_STREAMS_PER_KEY).
STREAMS_PER_KEY = 20
Metadata = tuple[tuple[str, str], ...]


async def rpc_error(call: object) -> grpc.aio.AioRpcError:
    try:
        await call  # type: ignore[misc]
    except grpc.aio.AioRpcError as err:
        return err
    raise AssertionError("the call succeeded")


def retry_delay(error: grpc.aio.AioRpcError) -> float | None:
    status = rpc_status.from_call(error)  # type: ignore[arg-type]
    for detail in status.details if status is not None else ():
        if detail.Is(error_details_pb2.RetryInfo.DESCRIPTOR):
            info = error_details_pb2.RetryInfo()
            detail.Unpack(info)
            return info.retry_delay.seconds + info.retry_delay.nanos / 1e9
    return None


def phone(number: str) -> c.Indicator:
    return c.Indicator(kind=c.INDICATOR_KIND_PHONE_NUMBER, value=number)


async def test_a_sighting_is_the_callers_own_and_says_so(suite: Deployment) -> None:
    bank = await suite.key(gw.ROLE_BANK, "bank-icbc")
    number = new_phone()
    for source in (rk.SOURCE_TYPE_POLICE, rk.SOURCE_TYPE_ANALYST, rk.SOURCE_TYPE_CASE):
        refused = await rpc_error(
            suite.risk.AddIndicatorSighting(
                rk.AddIndicatorSightingRequest(
                    request_id=str(uuid.uuid4()), indicator=phone(number), source_type=source
                ),
                metadata=bank,
            )
        )
        assert refused.code() is grpc.StatusCode.PERMISSION_DENIED, source
    # 25 invented reporters are not 25 citizens: a bank reports as itself.
    refused = await rpc_error(
        suite.risk.AddIndicatorSighting(
            rk.AddIndicatorSightingRequest(
                request_id=str(uuid.uuid4()), indicator=phone(number), reporter_ref="citizen-7"
            ),
            metadata=bank,
        )
    )
    assert refused.code() is grpc.StatusCode.PERMISSION_DENIED
    for _ in range(3):
        seen = await suite.risk.AddIndicatorSighting(
            rk.AddIndicatorSightingRequest(request_id=str(uuid.uuid4()), indicator=phone(number)),
            metadata=bank,
        )
    verdict = seen.verdict
    assert verdict.sources.bank_feed
    assert not verdict.sources.police_confirmed
    assert verdict.sources.distinct_reporters == 0
    assert "flagged by a bank" in verdict.reasons
    assert not any("citizen" in reason for reason in verdict.reasons)
    # An analyst's upsert is the analyst's own: another analyst's id is refused.
    analyst = await suite.key(gw.ROLE_ANALYST, "officer-1")
    refused = await rpc_error(
        suite.risk.UpsertIndicator(
            rk.UpsertIndicatorRequest(
                request_id=str(uuid.uuid4()),
                indicator=phone(number),
                assertion=rk.Assertion(
                    source_type=rk.SOURCE_TYPE_CASE, level=c.RISK_LEVEL_HIGH, reason="r"
                ),
            ),
            metadata=analyst,
        )
    )
    assert refused.code() is grpc.StatusCode.PERMISSION_DENIED
    listed = await suite.risk.UpsertIndicator(
        rk.UpsertIndicatorRequest(
            request_id=str(uuid.uuid4()),
            indicator=phone(number),
            assertion=rk.Assertion(
                source_type=rk.SOURCE_TYPE_POLICE,
                level=c.RISK_LEVEL_HIGH,
                reason="confirmed by a call-back",
                reporter_count=25,
            ),
        ),
        metadata=analyst,
    )
    police = [a for a in listed.record.assertions if a.source_type == rk.SOURCE_TYPE_POLICE]
    assert [(a.source_id, a.reporter_count) for a in police] == [("officer-1", 0)]


async def test_banks_see_only_their_own_orders(suite: Deployment) -> None:
    analyst = await suite.key(gw.ROLE_ANALYST, "officer-2")
    rng = random.Random()
    orders: dict[str, str] = {}
    for prefix in ("622202", "621700"):  # an ICBC and a CCB card
        while True:
            account = card(rng)
            if account.startswith(prefix):
                break
        created = await suite.warning.CreateBankOrder(
            wn.CreateBankOrderRequest(
                request_id=str(uuid.uuid4()),
                order_type=wn.BANK_ORDER_TYPE_STOP_PAYMENT,
                account=c.Indicator(kind=c.INDICATOR_KIND_BANK_ACCOUNT, value=account),
                case_id=f"trust-{uuid.uuid4().hex[:8]}",
                amount=c.Money(currency_code="CNY", units=1000),
                reason="trust test",
            ),
            metadata=analyst,
        )
        orders[created.bank_order.bank] = created.bank_order.name
    assert set(orders) == {"bank-icbc", "bank-ccb"}
    icbc = await suite.key(gw.ROLE_BANK, "bank-icbc")
    seen: list[wn.BankOrder] = []
    token = ""
    while True:
        page = await suite.warning.ListBankOrders(
            wn.ListBankOrdersRequest(page_size=500, page_token=token), metadata=icbc
        )
        seen.extend(page.bank_orders)
        token = page.next_page_token
        if not token:
            break
    assert orders["bank-icbc"] in {o.name for o in seen}
    assert {o.bank for o in seen} == {"bank-icbc"}
    own = await suite.warning.GetBankOrder(
        wn.GetBankOrderRequest(name=orders["bank-icbc"]), metadata=icbc
    )
    assert own.bank_order.bank == "bank-icbc"
    other = await rpc_error(
        suite.warning.GetBankOrder(wn.GetBankOrderRequest(name=orders["bank-ccb"]), metadata=icbc)
    )
    assert other.code() is grpc.StatusCode.NOT_FOUND


async def test_a_carrier_speaks_only_for_itself_on_receipts(suite: Deployment) -> None:
    cmcc = await suite.key(gw.ROLE_CARRIER, "carrier-cmcc")
    refused = await rpc_error(
        suite.warning.RecordDeliveryReceipt(
            wn.RecordDeliveryReceiptRequest(
                carrier="carrier-cucc",
                carrier_message_id="m-1",
                state=wn.DELIVERY_STATE_FAILED,
            ),
            metadata=cmcc,
        )
    )
    assert refused.code() is grpc.StatusCode.PERMISSION_DENIED
    # Without a carrier named, the key's own carrier is meant: no such message of its own.
    missing = await rpc_error(
        suite.warning.RecordDeliveryReceipt(
            wn.RecordDeliveryReceiptRequest(
                carrier_message_id="m-1", state=wn.DELIVERY_STATE_FAILED
            ),
            metadata=cmcc,
        )
    )
    assert missing.code() is grpc.StatusCode.NOT_FOUND
    assert "carrier-cmcc" in (missing.details() or "")


async def test_an_officer_works_tasks_only_as_themselves(suite: Deployment) -> None:
    first = await suite.key(gw.ROLE_ANALYST, "officer-a")
    second = await suite.key(gw.ROLE_ANALYST, "officer-b")
    await suite.warning.DispatchWarning(
        wn.DispatchWarningRequest(
            request_id=str(uuid.uuid4()),
            recipient=wn.RecipientRef(phone_number=new_phone()),
            level=c.RISK_LEVEL_HIGH,
            reason=wn.WarningReason(indicator=phone(new_phone())),
        ),
        metadata=first,
    )
    claimed = await suite.warning.ClaimTask(
        wn.ClaimTaskRequest(type=wn.TASK_TYPE_HOME_VISIT), metadata=first
    )
    assert claimed.task.operator_id == "officer-a"
    impersonating = await rpc_error(
        suite.warning.CompleteTask(
            wn.CompleteTaskRequest(
                name=claimed.task.name,
                operator_id="officer-a",
                outcome=wn.TASK_OUTCOME_DISSUADED,
            ),
            metadata=second,
        )
    )
    assert impersonating.code() is grpc.StatusCode.PERMISSION_DENIED
    not_theirs = await rpc_error(
        suite.warning.CompleteTask(
            wn.CompleteTaskRequest(name=claimed.task.name, outcome=wn.TASK_OUTCOME_DISSUADED),
            metadata=second,
        )
    )
    assert not_theirs.code() in (
        grpc.StatusCode.PERMISSION_DENIED,
        grpc.StatusCode.FAILED_PRECONDITION,
    )
    done = await suite.warning.CompleteTask(
        wn.CompleteTaskRequest(name=claimed.task.name, outcome=wn.TASK_OUTCOME_DISSUADED),
        metadata=first,
    )
    assert done.task.operator_id == "officer-a"


async def _officer(suite: Deployment, subject: str, region: str) -> Metadata:
    created = await suite.admin.CreateApiKey(
        gw.CreateApiKeyRequest(role=gw.ROLE_ANALYST, subject=subject, region=region),
        metadata=(("authorization", f"Bearer {suite.admin_key}"),),
    )
    return (("authorization", f"Bearer {created.api_key}"),)


async def test_an_officer_of_a_region_works_only_its_home_visits(suite: Deployment) -> None:
    """The region is the key's (set by the admin, carried in the token): a request cannot
    widen it, and the warning service enforces it on every task method."""
    shanghai = await _officer(suite, "officer-sh", "310000")
    shenzhen = await _officer(suite, "officer-sz", "440300")
    # A citizen of Shanghai's Huangpu district (the region of their ID number).
    huangpu = f"31010119900101{random.randrange(1000):03d}"
    citizen = await suite.register(id_number=with_check_character(huangpu))
    await suite.warning.DispatchWarning(
        wn.DispatchWarningRequest(
            request_id=str(uuid.uuid4()),
            recipient=wn.RecipientRef(user_id=citizen.user_id),
            level=c.RISK_LEVEL_HIGH,
            reason=wn.WarningReason(indicator=phone(new_phone())),
        ),
        metadata=shanghai,
    )

    async def visit() -> wn.Task | None:
        found = await suite.warning.ListTasks(
            wn.ListTasksRequest(type=wn.TASK_TYPE_HOME_VISIT, state=wn.TASK_STATE_OPEN),
            metadata=shanghai,
        )
        assert all(t.region.startswith("31") for t in found.tasks)
        return next((t for t in found.tasks if t.user_id == citizen.user_id), None)

    task = await eventually(visit)
    assert task.region == "310101"
    for call in (
        suite.warning.GetTask(wn.GetTaskRequest(name=task.name), metadata=shenzhen),
        suite.warning.ClaimTask(wn.ClaimTaskRequest(name=task.name), metadata=shenzhen),
    ):
        assert (await rpc_error(call)).code() is grpc.StatusCode.PERMISSION_DENIED
    # No citizen of Shenzhen in this suite: its queue has nothing, whatever others hold.
    nothing = await rpc_error(
        suite.warning.ClaimTask(
            wn.ClaimTaskRequest(type=wn.TASK_TYPE_HOME_VISIT), metadata=shenzhen
        )
    )
    assert nothing.code() is grpc.StatusCode.NOT_FOUND
    claimed = await suite.warning.ClaimTask(wn.ClaimTaskRequest(name=task.name), metadata=shanghai)
    assert claimed.task.operator_id == "officer-sh"


async def _revoke(suite: Deployment, metadata: Metadata) -> None:
    key_id = metadata[0][1].removeprefix("Bearer afk_").split("_", 1)[0]
    await suite.admin.RevokeApiKey(
        gw.RevokeApiKeyRequest(key_id=key_id),
        metadata=(("authorization", f"Bearer {suite.admin_key}"),),
    )


async def _ending(stream: grpc.aio.UnaryStreamCall[Any, Any]) -> grpc.aio.AioRpcError | None:
    """The error a stream ends with, None if it ends well (it is never cancelled here:
    cancelling a read would end the call itself)."""
    try:
        async for _ in stream:
            pass
    except grpc.aio.AioRpcError as err:
        return err
    return None


def _code(error: grpc.aio.AioRpcError | None) -> grpc.StatusCode:
    return grpc.StatusCode.OK if error is None else error.code()


async def test_revoking_a_key_ends_its_open_streams(suite: Deployment) -> None:
    carrier = await suite.key(gw.ROLE_CARRIER, "carrier-ctcc")
    streams = [
        suite.risk.WatchIndicatorChanges(
            rk.WatchIndicatorChangesRequest(from_now=True), metadata=carrier
        )
        for _ in range(3)
    ]
    ended = [asyncio.create_task(_ending(stream)) for stream in streams]
    await asyncio.sleep(1.0)  # admitted and waiting for changes
    early = [_code(task.result()) for task in ended if task.done()]
    assert not early, f"streams ended before the revocation: {early}"
    revoked_at = time.monotonic()
    await _revoke(suite, carrier)
    # The promise is 2 s; the bound here only keeps a broken build from hanging.
    errors = await asyncio.wait_for(asyncio.gather(*ended), timeout=15)
    print(f"\nrevocation -> open streams ended: {(time.monotonic() - revoked_at) * 1000:.0f} ms")
    assert {_code(e) for e in errors} == {grpc.StatusCode.UNAUTHENTICATED}
    again = await rpc_error(
        suite.risk.CheckIndicator(
            rk.CheckIndicatorRequest(indicator=phone("96110")), metadata=carrier
        )
    )
    assert again.code() is grpc.StatusCode.UNAUTHENTICATED


async def test_each_key_has_a_cap_on_open_streams(suite: Deployment) -> None:
    carrier = await suite.key(gw.ROLE_CARRIER, "carrier-cucc")
    streams = [
        suite.risk.WatchIndicatorChanges(
            rk.WatchIndicatorChangesRequest(from_now=True), metadata=carrier
        )
        for _ in range(STREAMS_PER_KEY + 5)
    ]
    ended = [asyncio.create_task(_ending(stream)) for stream in streams]
    try:
        pending: set[asyncio.Task[grpc.aio.AioRpcError | None]] = set(ended)
        deadline = time.monotonic() + 15
        while len(ended) - len(pending) < 5 and time.monotonic() < deadline:
            _, pending = await asyncio.wait(
                pending, timeout=deadline - time.monotonic(), return_when=asyncio.FIRST_COMPLETED
            )
        await asyncio.sleep(0.5)  # and no more than those
        errors = [task.result() for task in ended if task.done()]
        codes = [_code(e) for e in errors]
        assert codes == [grpc.StatusCode.RESOURCE_EXHAUSTED] * 5, codes
        assert all(e is not None and retry_delay(e) for e in errors)
        # Other keys are not affected.
        other = await suite.key(gw.ROLE_CARRIER, "carrier-cucc")
        answer = await suite.risk.CheckIndicator(
            rk.CheckIndicatorRequest(indicator=phone("96110")), metadata=other
        )
        assert answer.verdict.verified
    finally:
        for stream in streams:
            stream.cancel()
        await asyncio.gather(*ended, return_exceptions=True)


async def test_an_upstream_outage_is_told_without_our_topology(suite: Deployment) -> None:
    if suite.suite is None:
        pytest.skip("needs the local process suite to stop a service")
    victim = await suite.register()
    suite.suite.terminate("report")
    try:
        error = await rpc_error(
            suite.report.ListReports(rp.ListReportsRequest(), metadata=victim.metadata)
        )
        assert error.code() is grpc.StatusCode.UNAVAILABLE
        details = error.details() or ""
        assert "127.0.0.1" not in details
        assert "ipv4" not in details
        assert retry_delay(error)
    finally:
        suite.suite.start("report")
        await suite.suite.wait("report")

    async def back() -> bool:
        try:
            await suite.risk.CheckIndicator(
                rk.CheckIndicatorRequest(indicator=phone("96110")), metadata=victim.metadata
            )
        except grpc.aio.AioRpcError:
            return False
        return True

    assert await eventually(back)


# Last in the module: it spends this address's budget of failed authentications, and
# waits for it to come back for the tests that share the deployment.
async def test_random_keys_are_throttled_before_the_key_store(suite: Deployment) -> None:
    analyst = await suite.key(gw.ROLE_ANALYST, "officer-3")
    await suite.risk.CheckIndicator(
        rk.CheckIndicatorRequest(indicator=phone("96110")), metadata=analyst
    )
    codes: list[grpc.StatusCode] = []
    started = time.monotonic()
    for _ in range(200):
        forged = f"afk_{uuid.uuid4().hex[:16]}_{uuid.uuid4().hex}"
        error = await rpc_error(
            suite.risk.CheckIndicator(
                rk.CheckIndicatorRequest(indicator=phone("96110")),
                metadata=(("authorization", f"Bearer {forged}"),),
            )
        )
        codes.append(error.code())
        if error.code() is grpc.StatusCode.RESOURCE_EXHAUSTED:
            assert retry_delay(error)
    elapsed = time.monotonic() - started
    # Past the gateway's burst (20) only its refill (5 a second) reaches the key store; one
    # refilled token may let any single call through, so the last call alone proves nothing.
    reached = codes.count(grpc.StatusCode.UNAUTHENTICATED)
    assert 1 <= reached <= 20 + 5 * elapsed + 1, (reached, elapsed)
    assert codes[-10:].count(grpc.StatusCode.RESOURCE_EXHAUSTED) >= 5, codes[-10:]
    # A caller whose key is known keeps being served from the same address.
    answer = await suite.risk.CheckIndicator(
        rk.CheckIndicatorRequest(indicator=phone("96110")), metadata=analyst
    )
    assert answer.verdict.verified

    # The budget comes back by itself: a stranger is told who is not known again, not
    # throttled (and a key made now is served on its first call).
    async def refilled() -> bool:
        forged = f"afk_{uuid.uuid4().hex[:16]}_{uuid.uuid4().hex}"
        error = await rpc_error(
            suite.risk.CheckIndicator(
                rk.CheckIndicatorRequest(indicator=phone("96110")),
                metadata=(("authorization", f"Bearer {forged}"),),
            )
        )
        if error.code() is grpc.StatusCode.UNAUTHENTICATED:
            return True
        await asyncio.sleep(0.5)  # one try per half second: the refill outpaces it
        return False

    assert await eventually(refilled)
    fresh = await suite.key(gw.ROLE_ANALYST, "officer-4")
    await suite.risk.CheckIndicator(
        rk.CheckIndicatorRequest(indicator=phone("96110")), metadata=fresh
    )
