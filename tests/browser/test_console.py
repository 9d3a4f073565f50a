"""The console in a real headless Chromium against a running suite, through the gateway only.

An analyst confirms an indicator with three reports and sees its verdict change and the
warnings it caused; an officer of Beijing claims and completes the call task that
confirmation made, which an officer of Shenzhen never sees; an officer replies to a victim
from the case board by status; a reveal is audited with who and why; a citizen's key is
refused; a form without its CSRF token is refused; an idle session ends; one browser
session is served by two console replicas; /metrics counts routes and sign-ins; the plots
show the API's numbers; no page, log line or metric shows a number or ID the analyst may
not see. Screenshots of every page go to ``<basetemp>/console-screenshots``.
"""

from __future__ import annotations

import asyncio
import random
import re
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import grpc
import pytest
from google.protobuf.timestamp_pb2 import Timestamp

from services.api.antifraud.common.v1 import common_pb2 as c
from services.api.antifraud.gateway.v1 import gateway_pb2 as gw
from services.api.antifraud.report.v1 import report_pb2 as rp
from services.api.antifraud.risk.v1 import risk_pb2 as rk
from services.api.antifraud.warning.v1 import warning_pb2 as wn
from services.console.board import STATUS_COLUMNS
from services.console.i18n import SHANGHAI
from tests import harness
from tests.browser.browser import ARGS, chromium_or_skip
from tests.browser.console import console_process, wait_up
from tests.e2e.deployment import (
    SUITE_PARAMS,
    Citizen,
    Deployment,
    deployment,
    eventually,
    new_phone,
)
from tests.factories import card

pytest.importorskip("playwright")
from playwright.async_api import Browser, Page, async_playwright

pytestmark = pytest.mark.slow
Metadata = tuple[tuple[str, str], ...]


@dataclass
class Stage:
    suite: Deployment
    url: str
    idle_url: str
    #: A second replica of ``url``'s console (the same keys), behind the same "load balancer".
    replica_url: str
    #: Where ``url``'s console serves /metrics.
    metrics_url: str
    browser: Browser
    shots: Path
    log: Path
    analyst: Metadata
    officer: Metadata
    #: An officer whose key serves Shenzhen (440300): none of Beijing's tasks.
    shenzhen: Metadata
    citizen: Metadata
    carrier: Metadata
    reporters: list[Citizen]
    callee: Citizen
    fraudster: str
    case: str
    #: HTML of every page an analyst saw, to look for numbers they may not see.
    pages: list[str]


def _key(metadata: Metadata) -> str:
    return metadata[0][1].removeprefix("Bearer ")


def _stamp(when: datetime) -> Timestamp:
    stamp = Timestamp()
    stamp.FromDatetime(when)
    return stamp


async def _report(
    suite: Deployment,
    reporter: Citizen,
    number: str,
    *,
    kind: int = rp.REPORT_KIND_FRAUD_CALL,
    indicator_kind: int = c.INDICATOR_KIND_PHONE_NUMBER,
    category: int = c.FRAUD_CATEGORY_FAKE_CUSTOMER_SERVICE,
) -> None:
    await suite.report.SubmitReport(
        rp.SubmitReportRequest(
            request_id=str(uuid.uuid4()),
            report=rp.Report(
                kind=kind,  # type: ignore[arg-type]
                indicators=[c.Indicator(kind=indicator_kind, value=number)],  # type: ignore[arg-type]
                # The reporter's own ID number and phone typed into the text: stored masked.
                description=(
                    f"冒充客服，让我报身份证号{reporter.id_number}，回拨{reporter.phone[3:]}"
                ),
                category=category,  # type: ignore[arg-type]
            ),
        ),
        metadata=reporter.metadata,
    )


async def _file_case(suite: Deployment, victim: Citizen) -> str:
    """A victim's case with one payee card: a stop-payment order goes to its bank."""
    incident = datetime.now(UTC) - timedelta(minutes=30)
    filed = await suite.report.FileCase(
        rp.FileCaseRequest(
            request_id=str(uuid.uuid4()),
            case=rp.Case(
                description="对方冒充公安说我涉嫌洗钱，让我把钱转到安全账户",
                category=c.FRAUD_CATEGORY_IMPERSONATING_OFFICIALS,
                amount_lost=c.Money(currency_code="CNY", units=50_000),
                incident_time=_stamp(incident),
                payees=[
                    rp.Payee(
                        account=c.Indicator(
                            kind=c.INDICATOR_KIND_BANK_ACCOUNT, value=card(random.Random())
                        )
                    )
                ],
            ),
        ),
        metadata=victim.metadata,
    )
    return str(filed.case.name)


async def _officer_key(suite: Deployment, subject: str, region: str) -> Metadata:
    """An officer's key serving ``region``, issued by an administrator."""
    created = await suite.admin.CreateApiKey(
        gw.CreateApiKeyRequest(
            role=gw.ROLE_ANALYST, subject=subject, description="system test", region=region
        ),
        metadata=(("authorization", f"Bearer {suite.admin_key}"),),
    )
    assert created.key.region == region
    return (("authorization", f"Bearer {created.api_key}"),)


async def _level(suite: Deployment, who: Metadata, number: str) -> int:
    checked = await suite.risk.CheckIndicator(
        rk.CheckIndicatorRequest(
            indicator=c.Indicator(kind=c.INDICATOR_KIND_PHONE_NUMBER, value=number)
        ),
        metadata=who,
    )
    return int(checked.verdict.level)


@pytest.fixture(scope="module", params=SUITE_PARAMS)
async def stage(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Stage]:
    executable = chromium_or_skip()
    data_dir = tmp_path_factory.mktemp(f"console-{request.param}")
    shots = tmp_path_factory.getbasetemp() / "console-screenshots" / str(request.param)
    shots.mkdir(parents=True, exist_ok=True)
    # A generous start: the browser tests are often run beside other heavy suites.
    async with deployment(request.param, data_dir, replicas={}, start_timeout=300) as suite:
        assert suite.suite is not None, "the console tests start their own suite"
        env, gateway = suite.suite.env, suite.gateway
        log = data_dir / "console.log"
        metrics_addr = f"127.0.0.1:{harness.free_port()}"
        with (
            console_process(env, gateway, log, metrics_addr=metrics_addr) as url,
            console_process(env, gateway, log) as replica_url,
            console_process(env, gateway, log, idle_seconds="1") as idle_url,
        ):
            await asyncio.gather(wait_up(url), wait_up(replica_url), wait_up(idle_url))
            analyst = await suite.key(gw.ROLE_ANALYST, "analyst-7")
            # The citizens' ID numbers are of Beijing (110105): their tasks are Beijing's.
            officer = await _officer_key(suite, "officer-96110", "110000")
            shenzhen = await _officer_key(suite, "officer-shenzhen", "440300")
            citizen = await suite.key(gw.ROLE_CITIZEN)
            carrier = await suite.key(gw.ROLE_CARRIER, "carrier-cmcc")
            reporters = [await suite.register() for _ in range(3)]
            callee = await suite.register()
            fraudster = new_phone()
            for reporter in reporters:
                await _report(suite, reporter, fraudster)
            # Other values in the queue, as an analyst's morning finds it.
            await _report(
                suite, reporters[0], "http://loan-fast.example/apply",
                kind=rp.REPORT_KIND_URL, indicator_kind=c.INDICATOR_KIND_URL,
                category=c.FRAUD_CATEGORY_ONLINE_LOAN,
            )  # fmt: skip
            for reporter in reporters[1:]:
                await _report(
                    suite, reporter, "stock-tips.example",
                    kind=rp.REPORT_KIND_URL, indicator_kind=c.INDICATOR_KIND_DOMAIN,
                    category=c.FRAUD_CATEGORY_STOCK_TIPS,
                )  # fmt: skip

            async def corroborated() -> bool:
                return await _level(suite, analyst, fraudster) == c.RISK_LEVEL_MEDIUM

            await eventually(corroborated)
            case = await _file_case(suite, reporters[0])
            # The carrier saw the fraudster call the callee: a contact to warn on HIGH.
            contact = wn.ContactEvent(
                caller=fraudster,
                callee=callee.phone,
                time=_stamp(datetime.now(UTC) - timedelta(minutes=5)),
                kind=wn.CONTACT_KIND_CALL,
                caller_level=c.RISK_LEVEL_MEDIUM,
            )
            recorded = await suite.warning.RecordContactEvents(
                wn.RecordContactEventsRequest(events=[contact]), metadata=carrier
            )
            assert recorded.accepted_count == 1
            async with async_playwright() as pw:
                browser = await pw.chromium.launch(executable_path=executable, args=ARGS)
                try:
                    yield Stage(
                        suite, url, idle_url, replica_url, f"http://{metrics_addr}/metrics",
                        browser, shots, log, analyst, officer, shenzhen, citizen, carrier,
                        reporters, callee, fraudster, case, [],
                    )  # fmt: skip
                finally:
                    await browser.close()


async def _signed_in(stage: Stage, key: Metadata, url: str = "") -> Page:
    context = await stage.browser.new_context(locale="zh-CN", timezone_id="Asia/Shanghai")
    page = await context.new_page()
    await page.goto((url or stage.url) + "/signin")
    await page.fill("#api_key", _key(key))
    await page.click("#signin")
    return page


async def _shot(stage: Stage, page: Page, name: str) -> None:
    await page.screenshot(path=str(stage.shots / f"{name}.png"), full_page=True)


async def test_analyst_confirms_an_indicator_and_sees_its_verdict_and_warnings(
    stage: Stage,
) -> None:
    page = await _signed_in(stage, stage.analyst)
    await page.wait_for_url(re.compile(r"/review$"))
    row = page.locator("tr.queue-row", has=page.locator("td.value", has_text=stage.fraudster))
    assert await row.locator(".report-count").inner_text() == "3"
    assert await row.locator(".reporter-count").inner_text() == "3"
    assert await row.locator(".level").get_attribute("data-level") == str(c.RISK_LEVEL_MEDIUM)
    stage.pages.append(await page.content())
    await _shot(stage, page, "review")

    await row.locator("a.open").click()
    await page.wait_for_selector("#indicator")
    assert stage.fraudster not in page.url, "no value in a URL"
    assert await page.locator("tr.report").count() == 3
    stage.pages.append(await page.content())
    await _shot(stage, page, "detail-before")

    await page.fill("#reason", "三人举报，冒充客服诈骗，已核实")
    await page.click("#confirm")
    await page.wait_for_selector("#decided")
    assert "3" in await page.locator("#decided").inner_text()
    assert await page.locator("tr.report[data-status='3']").count() == 3  # CONFIRMED
    verdict = page.locator("#verdict .level")

    # The risk list hears of it through the report service's outbox, then the fan-out warns
    # the contacts: the analyst sees both by reloading.
    async def warned() -> bool:
        await page.reload()
        high = await verdict.get_attribute("data-level") == str(c.RISK_LEVEL_HIGH)
        return high and await page.locator("tr.warning").count() >= 1

    await eventually(warned, timeout=30)
    assert await page.locator("#history tr.change").count() >= 2
    stage.pages.append(await page.content())
    await _shot(stage, page, "detail-after")

    # The page shows what the API says the confirmation caused.
    listed = await stage.suite.warning.ListWarnings(
        wn.ListWarningsRequest(
            indicator=c.Indicator(kind=c.INDICATOR_KIND_PHONE_NUMBER, value=stage.fraudster)
        ),
        metadata=stage.analyst,
    )
    assert int(await page.locator("#warning-count").inner_text()) == len(listed.warnings)
    assert await _level(stage.suite, stage.analyst, stage.fraudster) == c.RISK_LEVEL_HIGH

    # The case's order reaches the bank, which holds the money: the board shows it held.
    await page.click("#nav-cases")
    await page.wait_for_url(re.compile(r"/cases$"))  # htmx swapped the page and its URL
    held = page.locator(f"#column-held article.case[data-case='{stage.case}']")

    async def acknowledged() -> bool:
        await page.reload()
        return await held.count() == 1

    await eventually(acknowledged, timeout=60)
    assert await held.locator(".held-total").inner_text() == "¥50000.00"
    stage.pages.append(await page.content())
    await _shot(stage, page, "cases")
    await page.context.close()


async def test_officer_claims_and_completes_a_call_task(stage: Stage) -> None:
    async def call_task() -> wn.Task | None:
        found = await stage.suite.warning.ListTasks(
            wn.ListTasksRequest(type=wn.TASK_TYPE_CALL, state=wn.TASK_STATE_OPEN),
            metadata=stage.officer,
        )
        return next((t for t in found.tasks if t.phone_number == stage.callee.phone), None)

    task = await eventually(call_task, timeout=30)
    assert task.region == "110105", "the callee's region, from the ID number they registered"
    # Shenzhen's officer: not in their queue, not theirs to read or claim.
    theirs = await stage.suite.warning.ListTasks(
        wn.ListTasksRequest(type=wn.TASK_TYPE_CALL), metadata=stage.shenzhen
    )
    assert task.name not in {t.name for t in theirs.tasks}
    assert all(t.region.startswith("4403") for t in theirs.tasks)
    refused = stage.suite.warning.ClaimTask(
        wn.ClaimTaskRequest(name=task.name), metadata=stage.shenzhen
    )
    with pytest.raises(grpc.aio.AioRpcError) as denied:
        await refused
    assert denied.value.code() == grpc.StatusCode.PERMISSION_DENIED
    elsewhere = await _signed_in(stage, stage.shenzhen)
    await elsewhere.click("#nav-tasks")
    await elsewhere.wait_for_selector("#queue-1")
    assert await elsewhere.locator(f"tr.task[data-task='{task.name}']").count() == 0
    await _shot(stage, elsewhere, "tasks-shenzhen")
    await elsewhere.context.close()

    page = await _signed_in(stage, stage.officer)
    await page.click("#nav-tasks")
    row = page.locator(f"tr.task[data-task='{task.name}']")
    await row.wait_for()
    assert stage.callee.phone not in await row.inner_text(), "masked until claimed"
    assert await row.locator(".region").inner_text() == "110105"
    await _shot(stage, page, "tasks")
    await row.locator("form.claim button").click()
    await page.wait_for_selector("#done")
    assert await row.get_attribute("data-state") == str(wn.TASK_STATE_CLAIMED)
    assert stage.callee.phone in await row.locator(".phone").inner_text(), "the holder calls it"
    assert await row.locator(".lease").inner_text() != ""
    await _shot(stage, page, "tasks-claimed")
    await row.locator("select[name=outcome]").select_option("dissuaded")
    await row.locator("input[name=notes]").fill("已电话劝阻，未转账")
    await row.locator("form.complete button").click()
    await row.wait_for(state="detached")  # done: off the open and claimed queues
    assert "已记录结果" in await page.locator("#done").inner_text()
    done = await stage.suite.warning.GetTask(
        wn.GetTaskRequest(name=task.name), metadata=stage.officer
    )
    assert done.task.state == wn.TASK_STATE_COMPLETED
    assert done.task.outcome == wn.TASK_OUTCOME_DISSUADED
    assert done.task.operator_id.endswith("officer-96110")
    await page.context.close()


async def test_the_text_as_typed_is_shown_only_on_request_with_a_purpose(stage: Stage) -> None:
    page = await _signed_in(stage, stage.analyst)
    await page.wait_for_url(re.compile(r"/review$"))
    await page.locator("tr.queue-row a.open").first.click()
    await page.wait_for_selector("#indicator")
    report = page.locator("tr.report").first
    name = await report.locator("input[name=report]").get_attribute("value") or ""
    await report.locator("input[name=purpose]").fill("核实举报人身份以便回访")
    await report.locator("form.reveal button").click()
    revealed = page.locator(".revealed")
    await revealed.wait_for()
    text = await revealed.inner_text()
    # Audited by the report service before it answered; here, shown once and kept nowhere.
    assert any(r.id_number in text for r in stage.reporters)
    await _shot(stage, page, "revealed")
    await page.context.close()
    # Where audits are read: the report service's log names the analyst, the report and why.
    audit = await stage.suite.report.ListAuditEvents(
        rp.ListAuditEventsRequest(record=name), metadata=stage.analyst
    )
    assert [(e.actor, e.purpose) for e in audit.audit_events] == [
        ("analyst:analyst-7", "核实举报人身份以便回访")
    ]
    assert set(audit.audit_events[0].fields) == {"description", "sms_text"}
    for event in audit.audit_events:
        assert not any(r.id_number in str(event) for r in stage.reporters), "never a value"


async def test_figures_plot_the_apis_numbers(stage: Stage) -> None:
    page = await _signed_in(stage, stage.analyst)
    await page.goto(stage.url + "/figures")
    await page.wait_for_selector("#reports-per-day")
    stage.pages.append(await page.content())
    await _shot(stage, page, "figures")

    # Reports today (Asia/Shanghai), as the API counts them, equal the column's total.
    today = datetime.now(SHANGHAI).replace(hour=0, minute=0, second=0, microsecond=0)
    listed = await stage.suite.report.ListReports(
        rp.ListReportsRequest(start_time=_stamp(today), page_size=500), metadata=stage.analyst
    )
    label = today.strftime("%m-%d")
    total = page.locator(f"#reports-per-day text.total[data-x='{label}']")
    assert int(await total.get_attribute("data-value") or 0) == len(listed.reports)

    # Deliveries by channel and outcome: every bar is the API's count.
    dashboard = await stage.suite.analyst.GetDashboard(
        gw.GetDashboardRequest(), metadata=stage.analyst
    )
    marks = page.locator("#warnings-by-channel rect.mark")
    shown = sorted([int(await m.get_attribute("data-value") or 0) for m in await marks.all()])
    assert shown == sorted(int(d.count) for d in dashboard.warnings.deliveries)
    assert shown, "the confirmation's warnings are delivered somewhere"

    # From the case to the bank's acknowledgement: one duration per acknowledged order.
    orders = await stage.suite.warning.ListBankOrders(
        wn.ListBankOrdersRequest(state=wn.BANK_ORDER_STATE_ACKNOWLEDGED), metadata=stage.analyst
    )
    timed = page.locator("#case-to-ack rect.mark")
    drawn_orders = [int(await m.get_attribute("data-value") or 0) for m in await timed.all()]
    assert sum(drawn_orders) == len(orders.bank_orders) >= 1

    # Dissuasion outcomes: the officer's dissuaded call is drawn.
    completed = await stage.suite.warning.ListTasks(
        wn.ListTasksRequest(state=wn.TASK_STATE_COMPLETED), metadata=stage.analyst
    )
    dissuaded = sum(1 for t in completed.tasks if t.outcome == wn.TASK_OUTCOME_DISSUADED)
    bars = page.locator("#dissuasion rect.mark")
    drawn = [int(await m.get_attribute("data-value") or 0) for m in await bars.all()]
    assert sum(drawn) == len(completed.tasks)
    assert f"{dissuaded} 人被成功劝阻" in await page.locator("#figure-dissuasion").inner_text()
    await page.context.close()


async def test_english_is_available(stage: Stage) -> None:
    page = await _signed_in(stage, stage.analyst)
    await page.goto(stage.url + "/lang/en")
    assert await page.locator("html").get_attribute("lang") == "en"
    assert await page.locator("#nav-figures").inner_text() == "Figures"
    await _shot(stage, page, "review-en")
    await page.context.close()


async def test_a_citizen_key_is_refused(stage: Stage) -> None:
    page = await _signed_in(stage, stage.citizen)
    await page.wait_for_selector("#message")
    assert "无权" in await page.locator("#message").inner_text()
    assert page.url.endswith("/signin")
    await page.goto(stage.url + "/review")
    assert "/signin" in page.url, "no session was made"
    await _shot(stage, page, "citizen-refused")
    await page.context.close()


async def test_a_form_without_its_csrf_token_is_refused(stage: Stage) -> None:
    page = await _signed_in(stage, stage.analyst)
    await page.wait_for_url(re.compile(r"/review$"))
    for token in ("", "not-the-token"):
        answer = await page.request.post(
            stage.url + "/tasks/claim", form={"task": "tasks/x", "csrf": token}
        )
        assert answer.status == 403
        assert "CSRF" in await answer.text()
    # Another site's form, even with a token, is refused by its origin.
    token = await page.locator("input[name=csrf]").first.get_attribute("value") or ""
    answer = await page.request.post(
        stage.url + "/signout", form={"csrf": token}, headers={"origin": "https://evil.example"}
    )
    assert answer.status == 403
    await page.context.close()


async def test_an_idle_session_ends(stage: Stage) -> None:
    page = await _signed_in(stage, stage.analyst, stage.idle_url)
    await page.wait_for_url(re.compile(r"/review$"))
    await asyncio.sleep(1.5)  # past the 1 s idle limit this console was started with
    await page.goto(stage.idle_url + "/figures")
    assert "/signin" in page.url
    assert "过期" in await page.locator("#message").inner_text()
    await _shot(stage, page, "expired")
    await page.context.close()


async def test_the_session_cookie_and_headers_are_strict(stage: Stage) -> None:
    page = await _signed_in(stage, stage.analyst)
    await page.wait_for_url(re.compile(r"/review$"))
    cookies = {c["name"]: c for c in await page.context.cookies()}
    session = cookies["console_session"]
    assert session["httpOnly"]
    assert session["secure"]
    assert session["sameSite"] == "Strict"
    answer = await page.request.get(stage.url + "/review")
    csp = answer.headers["content-security-policy"]
    assert "script-src 'self'" in csp
    assert "unsafe-inline" not in csp
    assert answer.headers["cache-control"] == "no-store"
    await page.click("#signout")
    await page.wait_for_url(re.compile(r"/signin"))
    await page.goto(stage.url + "/review")
    assert "/signin" in page.url
    await page.context.close()


async def test_an_officer_replies_to_the_victim_from_the_case_board(stage: Stage) -> None:
    page = await _signed_in(stage, stage.officer)
    await page.wait_for_url(re.compile(r"/review$"))
    await page.click("#nav-cases")
    await page.wait_for_url(re.compile(r"/cases$"))
    # The board is by case status: the API's status of the case names its column.
    filed = await stage.suite.report.GetCase(
        rp.GetCaseRequest(name=stage.case), metadata=stage.officer
    )
    column = STATUS_COLUMNS[filed.case.status]
    card = page.locator(f"#column-{column} article.case[data-case='{stage.case}']")
    await card.wait_for()
    for status, name in STATUS_COLUMNS.items():
        listed = await stage.suite.report.ListCases(
            rp.ListCasesRequest(statuses=[status], page_size=500),  # type: ignore[list-item]
            metadata=stage.officer,
        )
        shown = page.locator(f"#column-{name} article.case")
        assert await shown.count() == len(listed.cases), name
    await _shot(stage, page, "cases-by-status")
    await card.locator("a.open").click()
    await page.wait_for_selector("#case")
    stage.pages.append(await page.content())

    # A form without the session's token is refused, and nothing is sent to the victim.
    path = f"{stage.url}/cases/{stage.case.removeprefix('cases/')}/reply"
    refused = await page.request.post(path, form={"text": "伪造", "csrf": "not-the-token"})
    assert refused.status == 403

    reply = "您好，您的案件已受理，涉案账户已申请止付，请保持电话畅通。"
    await page.fill("#reply-text", reply)
    await page.click("#reply")
    await page.wait_for_selector("#replied")
    shown = page.locator(f"#history tr.event[data-type='{rp.CASE_EVENT_TYPE_REPLY}']")
    assert await shown.count() == 1
    assert await shown.locator(".text").inner_text() == reply
    assert await shown.locator(".actor").inner_text() == "analyst:officer-96110"
    await _shot(stage, page, "case-replied")
    # The victim reads it in their case, from this officer, and only this once.
    seen = await stage.suite.report.GetCase(
        rp.GetCaseRequest(name=stage.case), metadata=stage.reporters[0].metadata
    )
    replies = [e for e in seen.case.events if e.type == rp.CASE_EVENT_TYPE_REPLY]
    assert [(e.text, e.actor) for e in replies] == [(reply, "analyst:officer-96110")]
    await page.context.close()


async def test_two_replicas_serve_one_browser_session(stage: Stage) -> None:
    """Signed in through one replica, served by the other: the session is in the sealed
    cookie, not in either process."""
    page = await _signed_in(stage, stage.analyst)
    await page.wait_for_url(re.compile(r"/review$"))
    assert page.url.startswith(stage.url)
    await page.goto(stage.replica_url + "/review")
    assert page.url == stage.replica_url + "/review", "the other replica knows the session"
    # An indicator reference made by one replica opens on the other.
    link = page.locator("tr.queue-row a.open").first
    ref = await link.get_attribute("href") or ""
    await page.goto(stage.url + ref)
    await page.wait_for_selector("#indicator")
    await _shot(stage, page, "replica")
    # A form of one replica's page is accepted by the other (the same CSRF token)...
    await page.goto(stage.replica_url + "/figures")
    token = await page.locator("input[name=csrf]").first.get_attribute("value") or ""
    signed_out = await page.request.post(
        stage.url + "/signout", form={"csrf": token}, max_redirects=0
    )
    assert signed_out.status == 303
    # ...and signing out on one ends the browser's session on both.
    for base in (stage.url, stage.replica_url):
        await page.goto(base + "/review")
        assert "/signin" in page.url, base
    await page.context.close()


async def test_the_console_serves_metrics_without_personal_values(stage: Stage) -> None:
    page = await _signed_in(stage, stage.analyst)
    await page.wait_for_url(re.compile(r"/review$"))
    answer = await page.request.get(stage.metrics_url)
    assert answer.status == 200
    text = await answer.text()
    await page.context.close()

    def value(series: str) -> float:
        found = re.search(rf"^{re.escape(series)} ([0-9.e+]+)$", text, re.M)
        assert found, series
        return float(found[1])

    assert value('antifraud_console_signins_total{outcome="signed_in"}') >= 1
    assert value('antifraud_console_signins_total{outcome="role_refused"}') >= 1  # the citizen
    assert (
        value('antifraud_console_requests_total{method="GET",route="/review/{ref}",status="200"}')
        >= 1
    )
    assert 'route="/review"' in text
    assert "antifraud_console_request_duration_seconds_bucket" in text
    people = [*stage.reporters, stage.callee]
    for secret in [p.id_number for p in people] + [p.phone for p in people] + [stage.fraudster]:
        assert secret not in text
    assert _key(stage.analyst).split("_", 2)[2] not in text, "no key secret"


async def test_no_page_or_log_shows_a_number_the_analyst_may_not_see(stage: Stage) -> None:
    assert stage.pages, "the pages above were seen"
    people = [*stage.reporters, stage.callee]
    secrets = [p.id_number for p in people] + [p.phone for p in people]
    secrets += [p.phone.removeprefix("+86") for p in people]
    log = stage.log.read_text(errors="replace")
    for key in (stage.analyst, stage.officer, stage.shenzhen):
        assert _key(key).split("_", 2)[2] not in log, "no key secret in a log line"
    assert "request" in log, "the console logs its requests"
    for text in [*stage.pages, log]:
        for secret in secrets:
            assert secret not in text
