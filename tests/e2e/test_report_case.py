"""A filed case, end to end with every service running as its own process.

report -> (outbox) -> risk: the payee accounts listed at HIGH, pending review;
report -> (outbox) -> warning -> (outbox) -> bank simulator: a stop-payment order
per payee; the case shows each order's state as the bank answers.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from google.protobuf.timestamp_pb2 import Timestamp

from services.api.antifraud.common.v1 import common_pb2
from services.api.antifraud.report.v1 import report_pb2, report_pb2_grpc
from services.api.antifraud.risk.v1 import risk_pb2, risk_pb2_grpc
from services.api.antifraud.warning.v1 import warning_pb2, warning_pb2_grpc
from services.common.indicators import luhn_valid
from services.partners.domain.routing import SIMULATORS
from tests import harness
from tests.harness import ProcessSuite

R = report_pb2
BANK = common_pb2.INDICATOR_KIND_BANK_ACCOUNT
PAYMENT = common_pb2.INDICATOR_KIND_PAYMENT_ACCOUNT
SERVICES = ["partners", "risk", "warning", "report"]

pytestmark = pytest.mark.slow


def card(prefix: str, length: int = 19) -> str:
    """A Luhn-valid card number with the given BIN."""
    body = prefix + "0" * (length - len(prefix) - 1)
    return next(body + d for d in "0123456789" if luhn_valid(body + d))


ICBC_CARD = card("622202123456")  # an ICBC debit BIN: the bank simulator holds it
ALIPAY = "alipay:13912345678"  # Alipay accounts are held by the ICBC simulator
UNKNOWN_CARD = card("999999123456")  # no partner bank has this BIN


@pytest.fixture
async def suite(db_target: tuple[str, str | None], tmp_path: Path) -> AsyncIterator[ProcessSuite]:
    url, schema = db_target
    env = {"ANTIFRAUD_PARTNERS_LATENCY_MS": "5", "ANTIFRAUD_PARTNERS_JITTER_MS": "2"}
    schemas: list[str] = []
    if schema is not None:
        schemas = [harness.new_schema(name) for name in ("risk", "warning")]
        env |= {
            "ANTIFRAUD_DATABASE_URL": url,
            "ANTIFRAUD_REPORT_DB_SCHEMA": schema,
            "ANTIFRAUD_RISK_DB_SCHEMA": schemas[0],
            "ANTIFRAUD_WARNING_DB_SCHEMA": schemas[1],
        }
    processes = ProcessSuite(SERVICES, data_dir=tmp_path, extra_env=env)
    # Every simulator on a free port too, so this test never meets another run's.
    for simulator in SIMULATORS:
        processes.set_addr(simulator, f"127.0.0.1:{harness.free_port()}")
    try:
        await processes.start_all()
        yield processes
    finally:
        processes.stop_all()
        for name in schemas:
            await harness.drop_schema(name)


def case_body() -> report_pb2.Case:
    when = Timestamp()
    when.FromDatetime(datetime.now(UTC) - timedelta(minutes=30))
    return R.Case(
        description="'Customer service' said my parcel was lost and talked me into a refund.",
        category=common_pb2.FRAUD_CATEGORY_FAKE_CUSTOMER_SERVICE,
        amount_lost=common_pb2.Money(currency_code="CNY", units=48_000),
        incident_time=when,
        payees=[
            R.Payee(
                account=common_pb2.Indicator(kind=BANK, value=ICBC_CARD),
                amount=common_pb2.Money(currency_code="CNY", units=30_000),
            ),
            R.Payee(account=common_pb2.Indicator(kind=PAYMENT, value=ALIPAY)),
            R.Payee(account=common_pb2.Indicator(kind=BANK, value=UNKNOWN_CARD)),
        ],
        suspect_indicators=[
            common_pb2.Indicator(kind=common_pb2.INDICATOR_KIND_PHONE_NUMBER, value="13912340000")
        ],
    )


async def test_a_filed_case_stops_payment_at_the_banks_and_lists_the_payees(
    suite: ProcessSuite,
) -> None:
    victim = [("x-principal", "citizen:victim")]
    async with (
        harness.channel(suite.addrs["report"]) as rc,
        harness.channel(suite.addrs["risk"]) as kc,
        harness.channel(suite.addrs["warning"]) as wc,
    ):
        report = report_pb2_grpc.ReportServiceStub(rc)
        risk = risk_pb2_grpc.RiskServiceStub(kc)
        warning = warning_pb2_grpc.WarningServiceStub(wc)

        filed_at = time.monotonic()
        filed = await report.FileCase(
            R.FileCaseRequest(request_id=str(uuid.uuid4()), case=case_body()), metadata=victim
        )
        name = filed.case.name

        # Poll the case until every order has the bank's answer.
        deadline = time.monotonic() + 60
        while True:
            case = (await report.GetCase(R.GetCaseRequest(name=name), metadata=victim)).case
            statuses = [p.stop_payment_status for p in case.payees]
            if statuses == [
                R.STOP_PAYMENT_STATUS_ACKNOWLEDGED,
                R.STOP_PAYMENT_STATUS_ACKNOWLEDGED,
                R.STOP_PAYMENT_STATUS_REJECTED,
            ]:
                break
            assert time.monotonic() < deadline, f"orders never answered: {case.payees}"
            await asyncio.sleep(0.1)
        answered_in = time.monotonic() - filed_at
        print(f"case filed -> all bank orders answered in {answered_in:.2f}s")

        assert all(p.bank_order.startswith("bankOrders/") for p in case.payees)
        assert case.payees[2].status_detail  # why no bank took it

        # The warning service holds the orders, for this case, with the right amounts.
        orders = await warning.ListBankOrders(
            warning_pb2.ListBankOrdersRequest(case_id=name.removeprefix("cases/"))
        )
        by_account = {o.account.value: o for o in orders.bank_orders}
        assert set(by_account) == {ICBC_CARD, "alipay:+8613912345678", UNKNOWN_CARD}
        assert by_account[ICBC_CARD].order_type == warning_pb2.BANK_ORDER_TYPE_STOP_PAYMENT
        assert by_account[ICBC_CARD].amount.units == 30_000
        assert by_account["alipay:+8613912345678"].amount.units == 48_000  # the whole loss
        assert by_account[ICBC_CARD].state == warning_pb2.BANK_ORDER_STATE_ACKNOWLEDGED

        # Each payee account is on the risk list at HIGH, as this case's assertion.
        for payee in case.payees:
            found = await risk.GetIndicator(risk_pb2.GetIndicatorRequest(indicator=payee.account))
            assert found.record.verdict.level == common_pb2.RISK_LEVEL_HIGH
            assert found.record.verdict.sources.case_reported
            [assertion] = [
                a for a in found.record.assertions if a.source_type == risk_pb2.SOURCE_TYPE_CASE
            ]
            assert assertion.source_id == name
            assert "pending review" in assertion.reason
