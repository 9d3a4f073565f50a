"""One risk writer process of the write-scaling bench (``bench_risk_writes``).

python -m bench.risk_writer '{"url": ..., "schema": ..., "mode": ..., "first": 0, "count": 1000,
                              "tasks": 8}'

Connects, says ``ready``, waits for a line on stdin (so that both writers start together),
writes ``count`` phone numbers from ``first`` on, and prints {"seconds": ..., "count": ...}.
Modes: ``upsert`` (handlers.upsert, a transaction each, ``tasks`` at once), ``import``
(handlers.upsert_many, 500 per transaction, as ImportIndicators applies them), and their
baselines ``plain-upsert`` / ``plain-import``: a plain INSERT of the same indicator rows,
one per transaction / 500 per transaction, without the risk tables' rules or feed.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa

from services.common.db import Database
from services.common.indicators import Indicator, IndicatorKind, normalize
from services.risk.adapters import tables as t
from services.risk.domain.model import FraudCategory, RiskLevel, SourceType
from services.risk.service_layer import handlers
from services.risk.service_layer.unit_of_work import RiskUnitOfWork

BATCH = 500  # ImportIndicators' IMPORT_CHUNK


def phone(n: int) -> Indicator:
    return normalize(IndicatorKind.PHONE_NUMBER, f"+86135{n:08d}")


def _given(n: int) -> handlers.AssertionInput:
    return handlers.AssertionInput(
        source_type=SourceType.CARRIER,
        source_id="bench",
        level=RiskLevel(2 + n % 3),
        categories=frozenset({FraudCategory.OTHER}),
        reason="bench",
        expire_time=datetime.now(UTC) + timedelta(days=30),
    )


def _plain_row(i: Indicator, now: datetime) -> dict[str, object]:
    return {
        "kind": int(i.kind), "value": i.value, "level": 3, "categories": 1, "flags": 0,
        "reporters": 0, "first_seen": 0, "last_seen": 0, "expire": 0, "verified": False,
        "label": "", "update_time": now,
    }  # fmt: skip


async def _in_tasks(jobs: list[Callable[[], Awaitable[None]]], tasks: int) -> None:
    queue = list(reversed(jobs))

    async def worker() -> None:
        while queue:
            await queue.pop()()

    await asyncio.gather(*(worker() for _ in range(tasks)))


def _jobs(db: Database, mode: str, values: list[Indicator]) -> list[Callable[[], Awaitable[None]]]:
    def upsert(n: int, i: Indicator) -> Callable[[], Awaitable[None]]:
        async def job() -> None:
            async with RiskUnitOfWork(db) as uow:
                await handlers.upsert(uow, i, _given(n), "bench", datetime.now(UTC))
                await uow.commit()

        return job

    def upsert_many(batch: list[Indicator]) -> Callable[[], Awaitable[None]]:
        async def job() -> None:
            async with RiskUnitOfWork(db) as uow:
                items = [(i, _given(n)) for n, i in enumerate(batch)]
                await handlers.upsert_many(uow, items, "bench", datetime.now(UTC))
                await uow.commit()

        return job

    def plain(batch: list[Indicator]) -> Callable[[], Awaitable[None]]:
        async def job() -> None:
            async with db.engine.begin() as conn:
                now = datetime.now(UTC)
                rows = [_plain_row(i, now) for i in batch]
                await conn.execute(sa.insert(t.indicators), rows if len(rows) > 1 else rows[0])

        return job

    batches = [values[k : k + BATCH] for k in range(0, len(values), BATCH)]
    return {
        "upsert": lambda: [upsert(n, i) for n, i in enumerate(values)],
        "import": lambda: [upsert_many(b) for b in batches],
        "plain-upsert": lambda: [plain([i]) for i in values],
        "plain-import": lambda: [plain(b) for b in batches],
    }[mode]()


async def _connected(db: Database) -> None:
    async with db.engine.connect() as conn:
        await conn.execute(sa.text("SELECT 1"))
        await asyncio.sleep(0.5)  # held, so that each task opens its own


async def main(spec: dict[str, object]) -> None:
    # A loaded machine connects slowly: the bench measures writing, not its limits on waits.
    os.environ.setdefault("ANTIFRAUD_DB_CONNECT_TIMEOUT_SECONDS", "60")
    os.environ.setdefault("ANTIFRAUD_DB_STATEMENT_TIMEOUT_SECONDS", "60")
    db = Database("risk", url=str(spec["url"]), schema=str(spec["schema"]))
    first, count = int(spec["first"]), int(spec["count"])  # type: ignore[call-overload]
    tasks = int(spec["tasks"])  # type: ignore[call-overload]
    jobs = _jobs(db, str(spec["mode"]), [phone(n) for n in range(first, first + count)])
    await asyncio.gather(*(_connected(db) for _ in range(tasks)))  # the pool is warm
    print("ready", flush=True)
    await asyncio.to_thread(sys.stdin.readline)
    started = time.perf_counter()
    await _in_tasks(jobs, tasks)
    seconds = time.perf_counter() - started
    await db.dispose()
    print(json.dumps({"seconds": seconds, "count": count}), flush=True)


if __name__ == "__main__":
    asyncio.run(main(json.loads(sys.argv[1])))
