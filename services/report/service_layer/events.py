"""Events the report service sends through its outbox: topics, keys and payloads.

Payloads only point at rows (an indicator, a case payee); the handler reads the
row when it delivers, so what goes out is always the current state.
"""

from __future__ import annotations

import json
from contextvars import ContextVar
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncConnection

from services.common.outbox import enqueue
from services.report.adapters import tables
from services.report.domain.listing import (
    payee_listing_request_id,
    stop_payment_request_id,
    sync_request_id,
)

# Whether the current request wrote an event, so the relay is woken only when there is
# something to send (on SQLite every wake-up is a write transaction of its own).
_written: ContextVar[bool] = ContextVar("report_events_written", default=False)


def written() -> bool:
    return _written.get()


def forget() -> None:
    """Start a request with nothing written."""
    _written.set(False)


#: Bring the risk list in line with an indicator's standing (upsert or retire our assertion).
SYNC_INDICATOR = "risk.sync_indicator"
#: Put a case's payee account on the risk list at HIGH, pending review.
LIST_PAYEE = "risk.list_payee"
#: Send a stop-payment order for a case's payee account through the warning service.
STOP_PAYMENT = "warning.stop_payment"


@dataclass(frozen=True, slots=True)
class PayeeRef:
    case_id: str
    position: int

    def encode(self) -> bytes:
        return json.dumps({"case_id": self.case_id, "position": self.position}).encode()

    @classmethod
    def decode(cls, payload: bytes) -> PayeeRef:
        raw = json.loads(payload)
        return cls(str(raw["case_id"]), int(raw["position"]))


def decode_indicator_id(payload: bytes) -> int:
    return int(json.loads(payload)["indicator_id"])


async def sync_indicator(conn: AsyncConnection, indicator_id: int, version: int) -> None:
    """One event per version: its key is the request id that version is sent with."""
    _written.set(True)
    await enqueue(
        conn,
        tables.outbox,
        SYNC_INDICATOR,
        sync_request_id(indicator_id, version),
        json.dumps({"indicator_id": indicator_id}).encode(),
    )


async def case_payee(conn: AsyncConnection, case_id: str, position: int) -> None:
    ref = PayeeRef(case_id, position)
    _written.set(True)
    await enqueue(
        conn, tables.outbox, LIST_PAYEE, payee_listing_request_id(case_id, position), ref.encode()
    )
    await enqueue(
        conn, tables.outbox, STOP_PAYMENT, stop_payment_request_id(case_id, position), ref.encode()
    )
