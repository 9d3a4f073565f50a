"""Personal data at rest on a real database (SQLite and PostgreSQL): databases an older
version filled in clear are sealed after the upgrade, a data key rotation moves old rows
forward in the background, and the retention jobs delete what docs/data.md says is kept no
longer."""

from __future__ import annotations

import json
import os
import stat
from datetime import UTC, datetime, timedelta
from pathlib import Path

import sqlalchemy as sa

from services.common.db import Database, UnitOfWork
from services.common.indicators import IndicatorKind, normalize
from services.common.keys import KeyRing
from services.common.principals import Principal, Role
from services.common.vault import Vault
from services.report.adapters import tables as rt
from services.report.adapters.repository import ReportRepository
from services.report.bootstrap import VERSIONS as REPORT_VERSIONS
from services.report.domain.corroboration import Rules
from services.report.domain.model import Evidence, NewReport, ReportKind, ReportStatus
from services.report.service_layer import privacy, reports
from services.report.service_layer.unit_of_work import ReportUnitOfWork
from services.warning.adapters import tables as wt
from services.warning.bootstrap import VERSIONS as WARNING_VERSIONS
from services.warning.service_layer import privacy as warning_privacy

ID_NUMBER = "11010519491231002X"
CARD = "6222021234567890125"
PHONE = "+8613912345678"
TYPED = f"我的身份证{ID_NUMBER}，卡号{CARD}，电话13912345678"
CITIZEN = Principal(Role.CITIZEN, "u-22")


def ring(*ids: str, index: bytes | None = None) -> KeyRing:
    index = index or os.urandom(32)
    return KeyRing(tuple((kid, os.urandom(32)) for kid in ids), index)


def now() -> datetime:
    return datetime.now(UTC)


async def raw_rows(db: Database, table: sa.Table) -> str:
    """The rows as stored: sealed columns read as their raw text."""
    columns = [sa.type_coerce(c, sa.String).label(c.name) for c in table.columns]
    async with db.read() as conn:
        rows = (await conn.execute(sa.select(*columns))).all()
    return repr(rows)


async def test_a_report_database_filled_in_clear_is_sealed_after_the_upgrade(
    db_target: tuple[str, str | None],
) -> None:
    url, schema = db_target
    db = Database("report", url=url, schema=schema, vault=Vault(ring("k1")))
    try:
        await db.migrate(REPORT_VERSIONS, "report_0002")
        stamp = now()
        async with UnitOfWork(db) as uow:  # as the version before report_0003 wrote it
            await uow.conn.execute(
                sa.text(
                    "INSERT INTO reports (id, reporter, anonymous, kind, status, category, "
                    "description, evidence, create_time, update_time) VALUES "
                    "('r-old', 'citizen:u-22', false, 1, 1, 0, :d, :e, :t, :t)"
                ),
                {"d": TYPED, "e": json.dumps({"sms_text": f"卡{CARD}异常"}), "t": stamp},
            )
            await uow.commit()
        await db.migrate(REPORT_VERSIONS)
        jobs = privacy.PrivacyJobs(db)
        assert await jobs.reseal() == 1
        assert await jobs.reseal() == 0
        async with db.read() as conn:
            row = (await conn.execute(sa.select(rt.reports))).one()
            original = await ReportRepository(conn).original("reports", "r-old")
        assert ID_NUMBER not in row.description
        assert CARD not in row.description
        assert CARD not in json.dumps(row.evidence, ensure_ascii=False)
        assert ID_NUMBER.encode() not in bytes(row.original_sealed)
        assert original is not None
        assert (original.description, original.sms_text) == (TYPED, f"卡{CARD}异常")
    finally:
        await db.dispose()


async def test_a_rotated_data_key_moves_old_rows_to_the_new_one(
    db_target: tuple[str, str | None],
) -> None:
    url, schema = db_target
    old = ring("k1")
    db = Database("report", url=url, schema=schema, vault=Vault(old))
    try:
        await db.migrate(REPORT_VERSIONS)
        new = NewReport(
            ReportKind.FRAUD_CALL,
            (normalize(IndicatorKind.PHONE_NUMBER, "13900000001"),),
            description=TYPED,
            evidence=Evidence(sms_text=CARD),
        )
        async with ReportUnitOfWork(db) as uow:
            shown = await reports.submit(uow, CITIZEN, new, Rules(), now())
            await uow.commit()
        assert ID_NUMBER not in shown.description
        # Rotation: the new key first, the old one kept until every row has moved.
        rotated = KeyRing((("k2", os.urandom(32)), *old.data_keys), old.index_key)
        db.attach_vault(Vault(rotated))
        assert await privacy.PrivacyJobs(db).reseal() == 1
        async with db.read() as conn:
            key_ids = set((await conn.execute(sa.select(rt.reports.c.key_id))).scalars())
        assert key_ids == {"k2"}
        # The old key can go now: the row opens with the new one alone.
        db.attach_vault(Vault(KeyRing(rotated.data_keys[:1], old.index_key)))
        async with db.read() as conn:
            found = await ReportRepository(conn).original("reports", shown.id)
        assert found is not None
        assert found.description == TYPED
    finally:
        await db.dispose()


async def test_reports_past_retention_are_deleted_and_evidence_is_kept(
    db_target: tuple[str, str | None],
) -> None:
    url, schema = db_target
    db = Database("report", url=url, schema=schema, vault=Vault(ring("k1")))
    try:
        await db.migrate(REPORT_VERSIONS)
        made = []
        for i in range(3):
            new = NewReport(
                ReportKind.FRAUD_CALL,
                (normalize(IndicatorKind.PHONE_NUMBER, f"1390000001{i}"),),
                description=TYPED,
            )
            async with ReportUnitOfWork(db) as uow:
                made.append(await reports.submit(uow, CITIZEN, new, Rules(), now()))
                await uow.commit()
        async with UnitOfWork(db) as uow:
            r = rt.reports
            await uow.conn.execute(
                sa.update(r).where(r.c.id == made[0].id).values(status=int(ReportStatus.REJECTED))
            )
            await uow.conn.execute(
                sa.update(r).where(r.c.id == made[1].id).values(status=int(ReportStatus.CONFIRMED))
            )
            await uow.commit()
        jobs = privacy.PrivacyJobs(db, retention=timedelta(days=365))
        assert await jobs.prune(now()) == 0  # nothing is old yet
        assert await jobs.prune(now() + timedelta(days=366)) == 2  # rejected, never corroborated
        async with db.read() as conn:
            left = set((await conn.execute(sa.select(rt.reports.c.id))).scalars())
            indicators = await conn.scalar(
                sa.select(sa.func.count()).select_from(rt.report_indicators)
            )
        assert left == {made[1].id}  # confirmed: evidence, kept
        assert indicators == 1
    finally:
        await db.dispose()


async def test_a_warning_database_with_clear_numbers_is_sealed_at_start(
    db_target: tuple[str, str | None],
) -> None:
    url, schema = db_target
    db = Database("warning", url=url, schema=schema, vault=Vault(ring("k1")))
    try:
        await db.migrate(WARNING_VERSIONS, "0001_warning")
        stamp = now()
        async with UnitOfWork(db) as uow:  # as the version before warning_0002 wrote it
            await uow.conn.execute(
                sa.text(
                    "INSERT INTO recipients (user_id, phone_number, protected, create_time, "
                    "update_time) VALUES ('u-22', :p, true, :t, :t)"
                ),
                {"p": PHONE, "t": stamp},
            )
            await uow.conn.execute(
                sa.text(
                    "INSERT INTO guardians (user_id, phone_number, position) "
                    "VALUES ('u-22', '+8613800138000', 0)"
                )
            )
            await uow.conn.execute(
                sa.text(
                    "INSERT INTO contact_pairs (number_a, number_b, day, calls, sms, last_time) "
                    "VALUES ('+8613800138000', :p, 1, 1, 0, :t)"
                ),
                {"p": PHONE, "t": stamp},
            )
            await uow.commit()
        await db.migrate(WARNING_VERSIONS)
        assert await warning_privacy.reseal_all(db) == 4
        assert await warning_privacy.reseal_all(db) == 0
        dumped = await raw_rows(db, wt.recipients) + await raw_rows(db, wt.contact_pairs)
        dumped += await raw_rows(db, wt.guardians)
        assert "13912345678" not in dumped
        assert "13800138000" not in dumped
        async with db.read() as conn:
            found = (await conn.execute(sa.select(wt.recipients))).one()
            guardian = (await conn.execute(sa.select(wt.guardians.c.phone_number))).scalar()
            pair = (await conn.execute(sa.select(wt.contact_pairs))).one()
        assert found.phone_number == PHONE
        assert guardian == "+8613800138000"
        assert {pair.number_a, pair.number_b} == {PHONE, "+8613800138000"}
    finally:
        await db.dispose()


async def test_a_sqlite_database_is_owner_only_and_narrowed_when_older(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir(mode=0o755)
    data.chmod(0o755)
    older = data / "report.db"
    older.write_bytes(b"")
    older.chmod(0o644)
    db = Database("report", url=f"sqlite+aiosqlite:///{older}", vault=Vault(ring("k1")))
    try:
        await db.migrate(REPORT_VERSIONS)
    finally:
        await db.dispose()
    fresh = Database(
        "warning", url=f"sqlite+aiosqlite:///{data / 'warning.db'}", vault=Vault(ring("k1"))
    )
    try:
        await fresh.migrate(WARNING_VERSIONS)
    finally:
        await fresh.dispose()
    assert stat.S_IMODE(data.stat().st_mode) == 0o700
    for path in data.iterdir():
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path.name
