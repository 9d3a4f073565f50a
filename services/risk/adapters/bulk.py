"""Loading many assertions at once (data sets, benchmarks, partner feed snapshots).

Set-based: a few statements per chunk instead of a few per value, the rows handed to
the driver as tuples (``services.common.bulk``), and one verdict computed per distinct
assertion. Only for values not yet listed; the per-value path (``handlers.upsert``)
merges with what is there.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from services.common import tracing
from services.common.bulk import insert_rows
from services.common.indicators import Indicator
from services.risk.adapters import tables as t
from services.risk.adapters.repository import RiskRepository, assertion_row
from services.risk.domain.model import (
    Assertion,
    ChangeType,
    Snapshot,
    compute_snapshot,
)

CHUNK = 5000


async def load_new(
    conn: AsyncConnection, items: Iterable[tuple[Indicator, Assertion]], actor: str, now: datetime
) -> int:
    """Insert assertions about values not yet listed; returns how many were inserted."""
    await RiskRepository(conn).lock_feed()
    count = 0
    chunk: list[tuple[Indicator, Assertion]] = []
    for item in items:
        chunk.append(item)
        if len(chunk) >= CHUNK:
            count += await _insert(conn, chunk, actor, now)
            chunk = []
    if chunk:
        count += await _insert(conn, chunk, actor, now)
    return count


async def _insert(
    conn: AsyncConnection, chunk: list[tuple[Indicator, Assertion]], actor: str, now: datetime
) -> int:
    rows = []
    # A verdict depends on the assertion and the time only: a data set repeats a few.
    verdicts: dict[Assertion, Snapshot] = {}
    for indicator, assertion in chunk:
        snap = verdicts.get(assertion)
        if snap is None:
            snap = verdicts[assertion] = compute_snapshot([assertion], now)
        rows.append(
            {
                "kind": int(indicator.kind),
                "value": indicator.value,
                "level": int(snap.level),
                "categories": snap.categories,
                "flags": snap.flags,
                "reporters": snap.reporters,
                "first_seen": snap.first_seen,
                "last_seen": snap.last_seen,
                "expire": snap.expire,
                "verified": snap.verified,
                "label": snap.label,
                "update_time": now,
            }
        )
    await insert_rows(conn, t.indicators, rows)
    ids = {
        (r.kind, r.value): r.id
        for r in await conn.execute(
            sa.select(t.indicators.c.id, t.indicators.c.kind, t.indicators.c.value).where(
                t.indicators.c.update_time == now,
                t.indicators.c.value.in_([i.value for i, _ in chunk]),
            )
        )
    }
    await insert_rows(
        conn,
        t.assertions,
        [assertion_row(ids[(int(i.kind), i.value)], a) | {"lapsed": False} for i, a in chunk],
    )
    traced = tracing.current_traceparent()
    await insert_rows(
        conn,
        t.changes,
        [
            {
                **{k: v for k, v in row.items() if k != "update_time"},
                "change_type": int(ChangeType.UPSERTED),
                "source_type": int(a.source_type),
                "source_id": a.source_id,
                "actor": actor,
                "reason": a.reason,
                "time": now,
                "trace_context": traced,
            }
            for row, (_, a) in zip(rows, chunk, strict=True)
        ],
    )
    return len(rows)
