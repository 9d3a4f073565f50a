"""The warning service's storage per million screened calls, before and after contacts were
kept only with a risky number (docs/data.md).

Before: every screened call became a contact pair-day, numbers in clear. After: only calls
whose caller was MEDIUM or higher at screening are kept, numbers sealed. Both are written
through the real code path into a SQLite file of their own and measured in pages (tables
and indexes), then scaled to a million calls.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from pathlib import Path

import sqlalchemy as sa

from bench.harness import Result, Run
from services.common.db import Database, UnitOfWork
from services.common.keys import KeyRing
from services.common.vault import Vault
from services.warning.adapters import tables
from services.warning.bootstrap import VERSIONS
from services.warning.domain.contacts import ContactEvent, aggregate
from services.warning.domain.model import ContactKind, RiskLevel
from services.warning.service_layer import contacts
from services.warning.settings import WarningSettings

#: The share of screened calls whose caller is MEDIUM or higher: an assumption, stated.
RISKY_SHARE = 0.01
BATCH = 1000
SUITE = "warning"

#: The table as it was before revision warning_0002: numbers in clear, every call kept.
_before = sa.MetaData()
_clear_pairs = sa.Table(
    "contact_pairs",
    _before,
    sa.Column("number_a", sa.String(20), primary_key=True),
    sa.Column("number_b", sa.String(20), primary_key=True),
    sa.Column("day", sa.Integer, primary_key=True),
    sa.Column("calls", sa.Integer, nullable=False),
    sa.Column("sms", sa.Integer, nullable=False),
    sa.Column("last_time", sa.DateTime(timezone=True), nullable=False),
    sa.Index("ix_contact_pairs_b", "number_b", "day"),
    sa.Index("ix_contact_pairs_last", "last_time"),
)


def _calls(count: int, seed: int) -> list[ContactEvent]:
    rng = random.Random(seed)
    now = datetime.now(UTC)
    numbers = [f"+86139{rng.randrange(10**8):08d}" for _ in range(count // 4)]
    risky = numbers[: max(1, int(len(numbers) * RISKY_SHARE))]
    found = []
    for i in range(count):
        is_risky = rng.random() < RISKY_SHARE
        caller = rng.choice(risky) if is_risky else rng.choice(numbers)
        callee = rng.choice(numbers)
        if callee == caller:
            continue
        found.append(
            ContactEvent(
                caller,
                callee,
                now - timedelta(minutes=i % 1440),
                ContactKind.CALL,
                RiskLevel.MEDIUM if is_risky else RiskLevel.NONE,
            )
        )
    return found


async def _size(db: Database) -> int:
    async with db.engine.connect() as conn:
        pages = (await conn.exec_driver_sql("PRAGMA page_count")).scalar_one()
        size = (await conn.exec_driver_sql("PRAGMA page_size")).scalar_one()
    return int(pages) * int(size)


async def _before_bytes(path: Path, calls: list[ContactEvent]) -> int:
    db = Database("bench-before", url=f"sqlite+aiosqlite:///{path}")
    try:
        async with db.engine.begin() as conn:
            await conn.run_sync(_before.create_all)
        empty = await _size(db)
        counts = aggregate(calls)
        rows = [
            {
                "number_a": k.number_a,
                "number_b": k.number_b,
                "day": k.day,
                "calls": n.calls,
                "sms": n.sms,
                "last_time": n.last_time,
            }
            for k, n in counts.items()
        ]
        for start in range(0, len(rows), BATCH):
            async with db.engine.begin() as conn:
                await conn.execute(sa.insert(_clear_pairs), rows[start : start + BATCH])
        return await _size(db) - empty
    finally:
        await db.dispose()


async def _after_bytes(path: Path, calls: list[ContactEvent]) -> tuple[int, int]:
    db = Database("warning", url=f"sqlite+aiosqlite:///{path}", vault=Vault(KeyRing.generate()))
    settings = WarningSettings(follow_risk=False)
    kept = 0
    try:
        await db.migrate(VERSIONS)
        empty = await _size(db)
        now = datetime.now(UTC)
        for start in range(0, len(calls), BATCH):
            async with UnitOfWork(db) as uow:
                done = await contacts.record(uow, calls[start : start + BATCH], settings, now)
                await uow.commit()
            kept += done.accepted
        async with db.read() as conn:
            rows = await conn.scalar(sa.select(sa.func.count()).select_from(tables.contact_pairs))
        assert rows is not None
        return await _size(db) - empty, kept
    finally:
        await db.dispose()


async def run(run: Run) -> None:
    count = 10_000 if run.quick else 200_000
    calls = _calls(count, seed=22)
    scale = 1_000_000 / len(calls)
    before = await _before_bytes(run.workdir / "contacts-before.db", calls) * scale
    after, kept = await _after_bytes(run.workdir / "contacts-after.db", calls)
    run.add(
        Result(
            SUITE,
            "contact storage per 1M screened calls",
            after * scale / 2**20,
            "MiB",
            baseline=before / 2**20,
            baseline_name="every call kept in clear (before)",
            notes=(
                f"{RISKY_SHARE:.0%} of callers MEDIUM or higher; {kept} of {len(calls)} "
                "calls kept; numbers sealed (AES-SIV)"
            ),
        )
    )
    run.add(
        Result(
            SUITE,
            "contact storage per 1M screened calls, before",
            before / 2**20,
            "MiB",
            notes="every screened call a contact pair-day, numbers in clear",
        )
    )
