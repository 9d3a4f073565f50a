"""Reading and writing the risk tables; the only place with risk SQL.

A stored row that cannot be read back (a level or kind this code does not know,
written by hand or by a newer version) is logged with its id and left out of what
is read, never raised: one bad row must not stop the feed, a listing or a start.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from services.common import tracing
from services.common.indicators import IndicatorKind
from services.common.logs import get_logger
from services.risk.adapters import tables as t
from services.risk.domain.model import (
    Assertion,
    Change,
    ChangeType,
    FraudCategory,
    RiskLevel,
    Snapshot,
    SourceType,
    categories_mask,
    categories_of,
    stages_of,
    stages_text,
)

log = get_logger("risk.repository")
T = TypeVar("T")

#: Serialises writers of the change feed on PostgreSQL so change ids become
#: visible in order; a follower at cursor N can then never miss an id below N. Keyed by
#: the schema the connection writes to (its search_path): risk deployments sharing one
#: PostgreSQL server, each in its own schema, do not wait for each other's writers.
_FEED_LOCK = sa.text(
    "SELECT pg_advisory_xact_lock(hashtextextended(current_schema() || :scope, 0))"
).bindparams(scope="/risk.feed")


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _snapshot(row: Any) -> Snapshot:
    return Snapshot(
        RiskLevel(row.level),
        row.categories,
        row.flags,
        row.reporters,
        row.first_seen,
        row.last_seen,
        row.expire,
        bool(row.verified),
        row.label,
        stages_of(row.stages),
    )


def _snapshot_values(s: Snapshot) -> dict[str, Any]:
    return {
        "level": int(s.level),
        "categories": s.categories,
        "flags": s.flags,
        "reporters": s.reporters,
        "first_seen": s.first_seen,
        "last_seen": s.last_seen,
        "expire": s.expire,
        "verified": s.verified,
        "label": s.label,
        "stages": stages_text(s),
    }


_SNAPSHOT_COLUMNS = (
    "level", "categories", "flags", "reporters", "first_seen", "last_seen", "expire",
    "verified", "label", "stages",
)  # fmt: skip


def _assertion(row: Any) -> Assertion:
    return Assertion(
        source_type=SourceType(row.source_type),
        source_id=row.source_id,
        level=RiskLevel(row.level),
        categories=frozenset(categories_of(row.categories)),
        reason=row.reason,
        expire_time=_aware(row.expire_time),
        create_time=_aware(row.create_time),
        update_time=_aware(row.update_time),
        reporter_count=row.reporter_count,
        label=row.label,
        lapsed=bool(row.lapsed),
    )


def _change(row: Any) -> Change:
    return Change(
        id=row.id,
        kind=IndicatorKind(row.kind),
        value=row.value,
        change_type=ChangeType(row.change_type),
        source_type=SourceType(row.source_type),
        source_id=row.source_id,
        actor=row.actor,
        reason=row.reason,
        time=_aware(row.time),
        snapshot=_snapshot(row),
        trace_context=row.trace_context,
    )


def _readable(
    table: str, rows: Iterable[Any], read: Callable[[Any], T], key: str = "id"
) -> list[T | None]:
    """Each row read, or None (logged with its key) for a row that cannot be."""
    found: list[T | None] = []
    for row in rows:
        try:
            found.append(read(row))
        except (ValueError, TypeError) as exc:
            log.error("unreadable row left out", table=table, row=getattr(row, key), error=str(exc))
            found.append(None)
    return found


@dataclass(frozen=True)
class FeedRead:
    """Changes read from the feed; ``last_id`` is the last row read, readable or not, so a
    reader moves past a row it cannot read instead of reading it again for ever."""

    changes: list[Change]
    last_id: int
    skipped: list[int] = field(default_factory=list)


@dataclass(frozen=True)
class Due:
    """An assertion whose time is up."""

    indicator_id: int
    kind: IndicatorKind
    value: str
    source_type: SourceType
    source_id: str
    expire_time: datetime | None = None


class RiskRepository:
    def __init__(self, conn: AsyncConnection) -> None:
        self.conn = conn

    async def lock_feed(self) -> None:
        if self.conn.dialect.name == "postgresql":
            await self.conn.execute(_FEED_LOCK)

    async def find_id(self, kind: IndicatorKind, value: str) -> int | None:
        found: int | None = await self.conn.scalar(
            sa.select(t.indicators.c.id).where(
                t.indicators.c.kind == int(kind), t.indicators.c.value == value
            )
        )
        return found

    async def ensure(self, kind: IndicatorKind, value: str, now: datetime) -> int:
        found = await self.find_id(kind, value)
        if found is not None:
            return found
        result = await self.conn.execute(
            sa.insert(t.indicators).values(
                kind=int(kind),
                value=value,
                level=int(RiskLevel.NONE),
                categories=0,
                flags=0,
                reporters=0,
                first_seen=0,
                last_seen=0,
                expire=0,
                verified=False,
                label="",
                update_time=now,
            )
        )
        key = result.inserted_primary_key
        assert key is not None
        return int(key[0])

    async def assertions(self, indicator_id: int) -> list[Assertion]:
        rows = await self.conn.execute(
            sa.select(t.assertions).where(t.assertions.c.indicator_id == indicator_id)
        )
        return [
            a
            for a in _readable("assertions", rows, _assertion, key="indicator_id")
            if a is not None
        ]

    async def save_assertion(self, indicator_id: int, a: Assertion) -> None:
        a_t = t.assertions
        await self.conn.execute(
            sa.delete(a_t).where(
                a_t.c.indicator_id == indicator_id,
                a_t.c.source_type == int(a.source_type),
                a_t.c.source_id == a.source_id,
            )
        )
        await self.conn.execute(
            sa.insert(a_t).values(
                indicator_id=indicator_id,
                source_type=int(a.source_type),
                source_id=a.source_id,
                level=int(a.level),
                categories=categories_mask(a.categories),
                reason=a.reason,
                reporter_count=a.reporter_count,
                label=a.label,
                expire_time=a.expire_time,
                create_time=a.create_time,
                update_time=a.update_time,
                lapsed=a.lapsed,
            )
        )

    async def delete_assertions(
        self, indicator_id: int, source_type: SourceType | None, source_id: str
    ) -> int:
        a_t = t.assertions
        query = sa.delete(a_t).where(a_t.c.indicator_id == indicator_id)
        if source_type is not None:
            query = query.where(a_t.c.source_type == int(source_type))
        if source_id:
            query = query.where(a_t.c.source_id == source_id)
        result = await self.conn.execute(query)
        return int(result.rowcount or 0)

    async def mark_lapsed_many(self, due: Sequence[Due]) -> None:
        """Lapse many assertions in one statement (executemany)."""
        a_t = t.assertions
        await self.conn.execute(
            sa.update(a_t)
            .where(
                a_t.c.indicator_id == sa.bindparam("b_indicator_id"),
                a_t.c.source_type == sa.bindparam("b_source_type"),
                a_t.c.source_id == sa.bindparam("b_source_id"),
            )
            .values(lapsed=True),
            [
                {
                    "b_indicator_id": d.indicator_id,
                    "b_source_type": int(d.source_type),
                    "b_source_id": d.source_id,
                }
                for d in due
            ],
        )

    async def standing_assertions_of(
        self, indicator_ids: Sequence[int]
    ) -> dict[int, list[Assertion]]:
        """The assertions not yet lapsed of many indicators, in one query per 1,000 of them
        (when many lapse at once, most indicators have none left: few rows to read)."""
        found: dict[int, list[Assertion]] = {i: [] for i in indicator_ids}
        ids = list(indicator_ids)
        for start in range(0, len(ids), 1000):
            rows = await self.conn.execute(
                sa.select(t.assertions).where(
                    t.assertions.c.indicator_id.in_(ids[start : start + 1000]),
                    t.assertions.c.lapsed.is_(False),
                )
            )
            for row in rows:
                found[row.indicator_id].append(_assertion(row))
        return found

    async def save_snapshots(self, snapshots: dict[int, Snapshot], now: datetime) -> None:
        """Save many verdicts in one statement (executemany)."""
        if not snapshots:
            return
        i_t = t.indicators
        await self.conn.execute(
            sa.update(i_t)
            .where(i_t.c.id == sa.bindparam("b_id"))
            .values(
                {**{name: sa.bindparam(name) for name in _SNAPSHOT_COLUMNS}, "update_time": now}
            ),
            [{"b_id": i, **_snapshot_values(s)} for i, s in snapshots.items()],
        )

    async def append_changes(self, rows: Sequence[dict[str, Any]]) -> None:
        """Record many changes at once, in the order given (executemany): each row holds
        kind, value, change_type, source_type, source_id, actor, reason, time, snapshot."""
        if not rows:
            return
        traced = tracing.current_traceparent()
        await self.conn.execute(
            sa.insert(t.changes),
            [
                {
                    "kind": int(row["kind"]),
                    "value": row["value"],
                    "change_type": int(row["change_type"]),
                    "source_type": int(row["source_type"]),
                    "source_id": row["source_id"],
                    "actor": row["actor"][:128],
                    "reason": row["reason"][:1000],
                    "time": row["time"],
                    "trace_context": traced,
                    **_snapshot_values(row["snapshot"]),
                }
                for row in rows
            ],
        )

    async def add_sighting(
        self,
        indicator_id: int,
        source_type: SourceType,
        reporter_ref: str,
        category: FraudCategory,
        now: datetime,
    ) -> int:
        """Record a reporter's sighting once; returns the distinct reporters of that source type."""
        s_t = t.sightings
        seen = await self.conn.scalar(
            sa.select(sa.func.count()).where(
                s_t.c.indicator_id == indicator_id,
                s_t.c.source_type == int(source_type),
                s_t.c.reporter_ref == reporter_ref,
            )
        )
        if not seen:
            await self.conn.execute(
                sa.insert(s_t).values(
                    indicator_id=indicator_id,
                    source_type=int(source_type),
                    reporter_ref=reporter_ref,
                    category=int(category),
                    time=now,
                )
            )
        count = await self.conn.scalar(
            sa.select(sa.func.count()).where(
                s_t.c.indicator_id == indicator_id, s_t.c.source_type == int(source_type)
            )
        )
        return int(count or 0)

    async def save_snapshot(self, indicator_id: int, snapshot: Snapshot, now: datetime) -> None:
        await self.conn.execute(
            sa.update(t.indicators)
            .where(t.indicators.c.id == indicator_id)
            .values(**_snapshot_values(snapshot), update_time=now)
        )

    async def append_change(
        self,
        kind: IndicatorKind,
        value: str,
        change_type: ChangeType,
        source_type: SourceType,
        source_id: str,
        actor: str,
        reason: str,
        snapshot: Snapshot,
        now: datetime,
    ) -> int:
        result = await self.conn.execute(
            sa.insert(t.changes).values(
                kind=int(kind),
                value=value,
                change_type=int(change_type),
                source_type=int(source_type),
                source_id=source_id,
                actor=actor[:128],
                reason=reason[:1000],
                time=now,
                trace_context=tracing.current_traceparent(),
                **_snapshot_values(snapshot),
            )
        )
        key = result.inserted_primary_key
        assert key is not None
        return int(key[0])

    async def changes_after(
        self,
        after: int,
        limit: int,
        kinds: Sequence[IndicatorKind] = (),
        upto: int | None = None,
    ) -> FeedRead:
        query = sa.select(t.changes).where(t.changes.c.id > after).order_by(t.changes.c.id)
        if upto is not None:
            query = query.where(t.changes.c.id <= upto)
        if kinds:
            query = query.where(t.changes.c.kind.in_([int(k) for k in kinds]))
        rows = (await self.conn.execute(query.limit(limit))).all()
        read = _readable("changes", rows, _change)
        return FeedRead(
            changes=[c for c in read if c is not None],
            last_id=rows[-1].id if rows else after,
            skipped=[r.id for r, c in zip(rows, read, strict=True) if c is None],
        )

    async def feed_id(self) -> str:
        found: str | None = await self.conn.scalar(sa.select(t.feed.c.feed_id).limit(1))
        return found or ""

    async def last_change_id(self) -> int:
        last = await self.conn.scalar(sa.select(sa.func.max(t.changes.c.id)))
        return int(last or 0)

    async def change_time_after(self, cursor: int) -> datetime | None:
        """When the oldest change after ``cursor`` was made; None when there is none."""
        found = await self.conn.scalar(
            sa.select(t.changes.c.time)
            .where(t.changes.c.id > cursor)
            .order_by(t.changes.c.id)
            .limit(1)
        )
        return _aware(found) if found is not None else None

    async def first_change_id(self) -> int | None:
        """The oldest change kept (the feed is compacted from below), None when it is empty."""
        first = await self.conn.scalar(sa.select(sa.func.min(t.changes.c.id)))
        return None if first is None else int(first)

    async def compact_feed(self, before: datetime, limit: int) -> int:
        """Delete up to ``limit`` of the oldest changes recorded before ``before``, in id order,
        stopping at the first newer one; the newest change is always kept, so the feed's
        position survives a quiet spell longer than the window. Returns how many went."""
        c = t.changes.c
        newest = await self.last_change_id()
        rows = (
            await self.conn.execute(
                sa.select(c.id, c.time).where(c.id < newest).order_by(c.id).limit(limit)
            )
        ).all()
        upto = None
        for row in rows:
            if _aware(row.time) >= before:
                break
            upto = row.id
        if upto is None:
            return 0
        result = await self.conn.execute(sa.delete(t.changes).where(c.id <= upto))
        return int(result.rowcount or 0)

    async def history(self, kind: IndicatorKind, value: str, limit: int) -> list[Change]:
        rows = await self.conn.execute(
            sa.select(t.changes)
            .where(t.changes.c.kind == int(kind), t.changes.c.value == value)
            .order_by(t.changes.c.id.desc())
            .limit(limit)
        )
        return [c for c in _readable("changes", rows, _change) if c is not None]

    async def snapshot(self, kind: IndicatorKind, value: str) -> Snapshot | None:
        row = (
            await self.conn.execute(
                sa.select(t.indicators).where(
                    t.indicators.c.kind == int(kind), t.indicators.c.value == value
                )
            )
        ).first()
        return None if row is None else _readable("indicators", [row], _snapshot)[0]

    async def listed(
        self,
        kind: IndicatorKind | None,
        min_level: RiskLevel | None,
        source_type: SourceType | None,
        after: tuple[int, str] | None,
        limit: int,
    ) -> list[tuple[int, str, tuple[IndicatorKind, Snapshot] | None]]:
        """(kind number, value, what was read) in (kind, value) order; what was read is None
        for an unreadable row, which still counts for the page (its position is the token)."""
        i_t = t.indicators
        query = sa.select(i_t).where(sa.or_(i_t.c.level > int(RiskLevel.NONE), i_t.c.verified))
        if kind is not None:
            query = query.where(i_t.c.kind == int(kind))
        if min_level is not None:
            query = query.where(i_t.c.level >= int(min_level))
        if source_type is not None:
            query = query.where(
                sa.exists().where(
                    t.assertions.c.indicator_id == i_t.c.id,
                    t.assertions.c.source_type == int(source_type),
                    t.assertions.c.lapsed.is_(False),
                )
            )
        if after is not None:
            query = query.where(sa.tuple_(i_t.c.kind, i_t.c.value) > sa.tuple_(*after))
        rows = (await self.conn.execute(query.order_by(i_t.c.kind, i_t.c.value).limit(limit))).all()
        read = _readable("indicators", rows, lambda r: (IndicatorKind(r.kind), _snapshot(r)))
        return [(r.kind, r.value, found) for r, found in zip(rows, read, strict=True)]

    async def due(self, now: datetime, limit: int) -> list[Due]:
        a_t, i_t = t.assertions, t.indicators
        rows = await self.conn.execute(
            sa.select(
                a_t.c.indicator_id,
                i_t.c.kind,
                i_t.c.value,
                a_t.c.source_type,
                a_t.c.source_id,
                a_t.c.expire_time,
            )
            .join(i_t, i_t.c.id == a_t.c.indicator_id)
            .where(a_t.c.lapsed.is_(False), a_t.c.expire_time <= now)
            .limit(limit)
        )
        read = _readable(
            "assertions",
            rows,
            lambda r: Due(
                r.indicator_id,
                IndicatorKind(r.kind),
                r.value,
                SourceType(r.source_type),
                r.source_id,
                _aware(r.expire_time),
            ),
            key="indicator_id",
        )
        return [d for d in read if d is not None]


#: The columns of a listed row as ``RiskIndex.load`` takes them, in its order.
_LOAD_COLUMNS = (
    t.indicators.c.id, t.indicators.c.kind, t.indicators.c.value, t.indicators.c.level,
    t.indicators.c.flags, t.indicators.c.categories, t.indicators.c.reporters,
    t.indicators.c.first_seen, t.indicators.c.last_seen, t.indicators.c.expire,
    t.indicators.c.verified, t.indicators.c.label, t.indicators.c.stages,
)  # fmt: skip


async def stream_listed_rows(
    conn: AsyncConnection, chunk: int = 50_000
) -> AsyncIterator[Sequence[tuple[Any, ...]]]:
    """Every listed value as plain tuples (row id first), in chunks, for loading the index at
    start: no object per row, so a million rows load in seconds."""
    i_t = t.indicators
    last = 0
    while True:
        rows = (
            await conn.execute(
                sa.select(*_LOAD_COLUMNS)
                .where(i_t.c.id > last, sa.or_(i_t.c.level > int(RiskLevel.NONE), i_t.c.verified))
                .order_by(i_t.c.id)
                .limit(chunk)
            )
        ).all()
        if not rows:
            return
        last = rows[-1][0]
        yield [tuple(r) for r in rows]
