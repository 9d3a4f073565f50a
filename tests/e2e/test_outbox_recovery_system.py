"""Recovery after an outage, with every service its own process: while the risk and
warning services are down, a filed case's payee listings and stop-payment orders wait in
the report service's outbox; once the peers are back, they are delivered without waiting
out any backoff (issue 17: within a second; the delay is printed, never asserted, and
measured in ``make bench``). On a real database, both backends."""

from __future__ import annotations

import asyncio
import time
import uuid

import pytest

from services.api.antifraud.common.v1 import common_pb2
from services.api.antifraud.report.v1 import report_pb2 as R
from services.api.antifraud.report.v1 import report_pb2_grpc
from services.api.antifraud.risk.v1 import risk_pb2, risk_pb2_grpc
from tests import harness
from tests.e2e.deployment import eventually
from tests.e2e.test_report_case import ICBC_CARD, case_body, suite
from tests.harness import ProcessSuite

pytestmark = pytest.mark.slow
__all__ = ["suite"]  # the fixture, shared with test_report_case
#: Long enough for every waiting event to have failed and backed off a few times.
OUTAGE_SECONDS = 3.0
VICTIM = [("x-principal", "citizen:victim")]
#: Not yet answered by a bank: handed over (QUEUED) and sent (SENT) come before the answer.
IN_FLIGHT = {
    R.STOP_PAYMENT_STATUS_PENDING,
    R.STOP_PAYMENT_STATUS_QUEUED,
    R.STOP_PAYMENT_STATUS_SENT,
}


async def test_a_case_filed_while_its_peers_are_down_reaches_them_once_they_are_back(
    suite: ProcessSuite,
) -> None:
    suite.kill("risk")
    suite.kill("warning")
    async with harness.channel(suite.addrs["report"]) as rc:
        report = report_pb2_grpc.ReportServiceStub(rc)
        filed = await report.FileCase(
            R.FileCaseRequest(request_id=str(uuid.uuid4()), case=case_body()), metadata=VICTIM
        )
        await asyncio.sleep(OUTAGE_SECONDS)
        case = (await report.GetCase(R.GetCaseRequest(name=filed.case.name), metadata=VICTIM)).case
        assert {p.stop_payment_status for p in case.payees} == {R.STOP_PAYMENT_STATUS_PENDING}

        suite.start("risk")
        suite.start("warning")
        await asyncio.gather(suite.wait("risk"), suite.wait("warning"))
        back = time.monotonic()

        async def orders_answered() -> float | None:
            got = await report.GetCase(R.GetCaseRequest(name=filed.case.name), metadata=VICTIM)
            statuses = [p.stop_payment_status for p in got.case.payees]
            if IN_FLIGHT.intersection(statuses):
                return None
            assert statuses[0] == R.STOP_PAYMENT_STATUS_ACKNOWLEDGED, got.case.payees
            return time.monotonic() - back

        async with harness.channel(suite.addrs["risk"]) as kc:
            risk = risk_pb2_grpc.RiskServiceStub(kc)

            async def payee_listed() -> float | None:
                reply = await risk.CheckIndicator(
                    risk_pb2.CheckIndicatorRequest(
                        indicator=common_pb2.Indicator(
                            kind=common_pb2.INDICATOR_KIND_BANK_ACCOUNT, value=ICBC_CARD
                        )
                    )
                )
                listed = reply.verdict.level == common_pb2.RISK_LEVEL_HIGH
                return time.monotonic() - back if listed else None

            listed_in, answered_in = await asyncio.gather(
                eventually(payee_listed, 60), eventually(orders_answered, 60)
            )
    print(
        f"peers back -> payee listed on risk in {listed_in:.2f}s, "
        f"stop-payment orders answered by the banks in {answered_in:.2f}s"
    )
