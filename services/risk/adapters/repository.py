"""Reading and writing the risk tables; the only place with risk SQL.

A stored row that cannot be read back (a level or kind this code does not know,
written by hand or by a newer version) is logged with its id and left out of what
is read, never raised: one bad row must not stop the feed, a listing or a start.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, NamedTuple, TypeVar

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
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

# The feed's promise on PostgreSQL (a follower at cursor N never misses an id below N) with
# writers that commit in parallel, so ids may become visible out of order:
#
# - A writer, as the last step before ``INSERT INTO changes`` (``lock_feed``), takes a shared
#   transaction-scoped advisory lock whose key encodes the id sequence's last value m (a
#   "marker"): every id it then inserts is above m (or m itself while the sequence was never
#   used). Markers are shared locks: writers never wait for each other's. The commit makes
#   the rows visible, then releases the marker.
# - A reader (``changes_after``, ``last_change_id``) first reads the sequence's last value L,
#   then the lowest marker held (``pg_locks``), and reads only ids below the horizon
#   h = min(lowest marker, L + 1), in a later statement (so with a later snapshot). An id
#   below h was given out before L was read, by a writer that held its marker by then: that
#   writer is either still holding it (then h <= its marker < the id) or has committed
#   before the markers were read, so the next statement sees the row.
#
# Keys: (15 bits of a hash of the schema, then the marker's top 16 bits; its low 31 bits):
# schemas on one database do not hold each other back (a hash collision would only delay),
# ids up to 2^47. SQLite has one writer at a time: ids are visible in order there.
_FEED_SCOPE = "/risk.feed"
_SEQ_LAST = "coalesce(pg_sequence_last_value(pg_get_serial_sequence('changes', 'id')::regclass), 0)"
_SCHEMA_BITS = "(hashtext(current_schema() || :scope) & 32767)"
_FEED_LOCK = sa.text(
    f"""
    SELECT pg_advisory_xact_lock_shared(
        (({_SCHEMA_BITS} << 16) | (m >> 31))::int, (m & 2147483647)::int)
    FROM (SELECT {_SEQ_LAST} AS m) AS last
    """  # noqa: S608 - constants only
).bindparams(scope=_FEED_SCOPE)
_SEQUENCE_LAST = sa.text(f"SELECT {_SEQ_LAST}")
_LOWEST_MARKER = sa.text(
    f"""
    SELECT min(((classid::bigint & 65535) << 31) | objid::bigint) FROM pg_locks
    WHERE locktype = 'advisory' AND objsubid = 2
      AND database = (SELECT oid FROM pg_database WHERE datname = current_database())
      AND (classid::bigint >> 16) = {_SCHEMA_BITS}
    """  # noqa: S608 - constants only
).bindparams(scope=_FEED_SCOPE)


#: A value's row before anything is asserted about it.
_NEW_INDICATOR: dict[str, Any] = {
    "level": int(RiskLevel.NONE), "categories": 0, "flags": 0, "reporters": 0, "first_seen": 0,
    "last_seen": 0, "expire": 0, "verified": False, "label": "",
}  # fmt: skip


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


def _plain(value: Any) -> Any:
    """An enum or flag as the number it is (asyncpg takes a flag in an array for a list)."""
    return value if type(value) in (bool, int, str) else int(value)


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

_ID_ARRAY = postgresql.ARRAY(sa.BigInteger)

#: The sweeper's batch on PostgreSQL (``RiskRepository.lapse_due``).
_LAPSE_DUE = sa.text(
    """
    WITH locked AS (
        SELECT id FROM indicators WHERE id = ANY(CAST(:ids AS bigint[]))
        FOR UPDATE SKIP LOCKED
    )
    UPDATE assertions a SET lapsed = true FROM locked
    WHERE a.indicator_id = locked.id AND NOT a.lapsed AND a.expire_time <= :now
      AND a.source_type = ANY(CAST(:sources AS smallint[]))
    RETURNING a.indicator_id, a.source_type, a.source_id, a.expire_time
    """
)

_CHANGE_COLUMNS = (
    "kind, value, change_type, source_type, source_id, actor, reason, time, trace_context, "
    + ", ".join(_SNAPSHOT_COLUMNS)
)
_FROM_INDICATOR = ", ".join(f"i.{name}" for name in _SNAPSHOT_COLUMNS)

#: One EXPIRED change per lapse with its indicator's stored verdict, in the arrays' order.
_APPEND_LAPSES_PG = sa.text(
    f"""
    INSERT INTO changes ({_CHANGE_COLUMNS})
    SELECT i.kind, i.value, :change_type, u.source_type, u.source_id, :actor, :reason, :time,
           :trace, {_FROM_INDICATOR}
    FROM unnest(CAST(:ids AS bigint[]), CAST(:source_types AS smallint[]),
                CAST(:source_ids AS text[])) WITH ORDINALITY AS u(id, source_type, source_id, n)
    JOIN indicators i ON i.id = u.id
    ORDER BY u.n
    """  # noqa: S608 - the column names are this module's constants
)
_APPEND_LAPSE_SQLITE = sa.text(
    f"""
    INSERT INTO changes ({_CHANGE_COLUMNS})
    SELECT i.kind, i.value, :change_type, :source_type, :source_id, :actor, :reason, :time,
           :trace, {_FROM_INDICATOR}
    FROM indicators i WHERE i.id = :id
    """  # noqa: S608 - the column names are this module's constants
)


_CHANGE_TYPES = {
    "kind": "smallint", "value": "varchar", "change_type": "smallint", "source_type": "smallint",
    "source_id": "varchar", "actor": "varchar", "reason": "varchar", "time": "timestamptz",
    "trace_context": "varchar", "level": "smallint", "categories": "integer",
    "flags": "integer", "reporters": "integer", "first_seen": "bigint", "last_seen": "bigint",
    "expire": "bigint", "verified": "boolean", "label": "varchar", "stages": "text",
}  # fmt: skip
_ASSERTION_COLUMNS = (
    "source_type", "source_id", "level", "categories", "reason", "reporter_count", "label",
    "expire_time", "create_time", "update_time", "lapsed",
)  # fmt: skip


def _save_and_append_sql(with_assertion: bool) -> sa.TextClause:
    """One statement on PostgreSQL: store the source's assertion, save the verdict, take the
    feed marker and append the change (the marker is read before the change's id is drawn:
    the INSERT takes its row from the marker's)."""
    assertion = (
        f"""asserted AS (
            INSERT INTO assertions (indicator_id, {", ".join(_ASSERTION_COLUMNS)})
            VALUES (:indicator_id, {", ".join(f":a_{c}" for c in _ASSERTION_COLUMNS)})
            ON CONFLICT (indicator_id, source_type, source_id) DO UPDATE SET
            {", ".join(f"{c} = EXCLUDED.{c}" for c in _ASSERTION_COLUMNS[2:])}
        ),"""  # noqa: S608 - constants only
        if with_assertion
        else ""
    )
    saved = ", ".join(f"{c} = :{c}" for c in _SNAPSHOT_COLUMNS)
    columns = ", ".join(_CHANGE_TYPES)
    values = ", ".join(f"CAST(:{c} AS {kind})" for c, kind in _CHANGE_TYPES.items())
    return sa.text(
        f"""
        WITH {assertion}
        saved AS (UPDATE indicators SET {saved}, update_time = :time WHERE id = :indicator_id),
        marker AS (
            SELECT pg_advisory_xact_lock_shared(
                (({_SCHEMA_BITS} << 16) | (m >> 31))::int, (m & 2147483647)::int)
            FROM (SELECT {_SEQ_LAST} AS m) AS last
        )
        INSERT INTO changes ({columns}) SELECT {values} FROM marker RETURNING id
        """  # noqa: S608 - constants only
    ).bindparams(scope=_FEED_SCOPE)


#: Many verdicts saved at once on PostgreSQL: one array per column.
_SAVE_SNAPSHOTS_PG = sa.text(
    f"""
    UPDATE indicators AS i SET {", ".join(f"{c} = u.{c}" for c in _SNAPSHOT_COLUMNS)},
        update_time = :now
    FROM unnest(CAST(:ids AS bigint[]),
                {", ".join(f"CAST(:{c} AS {_CHANGE_TYPES[c]}[])" for c in _SNAPSHOT_COLUMNS)})
         AS u(id, {", ".join(_SNAPSHOT_COLUMNS)})
    WHERE i.id = u.id
    """  # noqa: S608 - constants only
)

_SAVE_AND_APPEND = {True: _save_and_append_sql(True), False: _save_and_append_sql(False)}


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


#: The sources this code knows: the sweeper lapses only their assertions.
_SOURCES = [int(s) for s in SourceType]


class Lapse(NamedTuple):
    """An assertion the sweeper has just lapsed."""

    indicator_id: int
    source_type: int
    source_id: str
    expire_time: datetime


def assertion_row(indicator_id: int, a: Assertion) -> dict[str, object]:
    """One ``assertions`` row: the one mapping of an assertion to its columns."""
    return {
        "indicator_id": indicator_id,
        "source_type": int(a.source_type),
        "source_id": a.source_id,
        "level": int(a.level),
        "categories": categories_mask(a.categories),
        "reason": a.reason,
        "reporter_count": a.reporter_count,
        "label": a.label,
        "expire_time": a.expire_time,
        "create_time": a.create_time,
        "update_time": a.update_time,
        "lapsed": a.lapsed,
    }


class RiskRepository:
    def __init__(self, conn: AsyncConnection) -> None:
        self.conn = conn

    async def lock_feed(self) -> None:
        """Called right before appending to the feed (the caller commits after): readers then
        read no change of this transaction, nor any later one, before it commits."""
        if self.conn.dialect.name == "postgresql":
            await self.conn.execute(_FEED_LOCK)

    async def feed_horizon(self) -> int | None:
        """Every change below this id is committed or never will be (see the markers above);
        None on SQLite, where every visible change is."""
        if self.conn.dialect.name != "postgresql":
            return None
        last = int(await self.conn.scalar(_SEQUENCE_LAST) or 0)
        lowest = await self.conn.scalar(_LOWEST_MARKER)
        return last + 1 if lowest is None else min(int(lowest), last + 1)

    async def find_id(self, kind: IndicatorKind, value: str) -> int | None:
        found: int | None = await self.conn.scalar(
            sa.select(t.indicators.c.id).where(
                t.indicators.c.kind == int(kind), t.indicators.c.value == value
            )
        )
        return found

    def _insert(self, table: sa.Table) -> Any:
        """An INSERT that can say ON CONFLICT, in this connection's dialect."""
        if self.conn.dialect.name == "postgresql":
            return postgresql.insert(table)
        return sqlite.insert(table)

    async def lock_indicators(
        self, keys: Iterable[tuple[IndicatorKind, str]], now: datetime
    ) -> dict[tuple[int, str], int]:
        """The row ids of these values (kind number, value), made where missing, each row locked
        until the transaction ends: writers of one value take turns, writers of others go on.

        ``INSERT ... ON CONFLICT DO UPDATE`` in (kind, value) order: it inserts a new row or
        locks the existing one, row by row in that order, so two writers locking overlapping
        sets always lock in the same order and never deadlock.
        """
        wanted = sorted({(int(kind), value) for kind, value in keys})
        if not wanted:
            return {}
        i_t = t.indicators
        query = self._insert(i_t)
        query = query.on_conflict_do_update(
            index_elements=[i_t.c.kind, i_t.c.value], set_={"kind": query.excluded.kind}
        ).returning(i_t.c.id, i_t.c.kind, i_t.c.value)
        # executemany: SQLAlchemy sends multi-row VALUES pages in the order given, compiling
        # the statement once (a 500-row VALUES compiled per call costs more than the write).
        rows = await self.conn.execute(
            query,
            [{**_NEW_INDICATOR, "kind": kind, "value": value, "update_time": now}
             for kind, value in wanted],
        )  # fmt: skip
        return {(row.kind, row.value): row.id for row in rows}

    async def lock_indicator(self, kind: IndicatorKind, value: str, now: datetime) -> int:
        """The row id of the value, made if missing, locked until the transaction ends."""
        return (await self.lock_indicators([(kind, value)], now))[(int(kind), value)]

    async def find_id_locked(self, kind: IndicatorKind, value: str) -> int | None:
        """The row id of a listed value, locked until the transaction ends; None if not listed."""
        query = sa.select(t.indicators.c.id).where(
            t.indicators.c.kind == int(kind), t.indicators.c.value == value
        )
        if self.conn.dialect.name == "postgresql":
            query = query.with_for_update()
        found: int | None = await self.conn.scalar(query)
        return found

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
        await self.save_assertions([(indicator_id, a)])

    async def save_assertions(self, items: Sequence[tuple[int, Assertion]]) -> None:
        """Store each source's assertion on its indicator, replacing what that source asserted
        before (ON CONFLICT on the key), multi-row pages of one compiled statement."""
        if not items:
            return
        a_t = t.assertions
        query = self._insert(a_t)
        kept = {"indicator_id", "source_type", "source_id"}
        await self.conn.execute(
            query.on_conflict_do_update(
                index_elements=[a_t.c.indicator_id, a_t.c.source_type, a_t.c.source_id],
                set_={c.name: query.excluded[c.name] for c in a_t.c if c.name not in kept},
            ),
            [assertion_row(indicator_id, a) for indicator_id, a in items],
        )

    async def assertions_of(self, indicator_ids: Sequence[int]) -> dict[int, list[Assertion]]:
        """Every assertion (lapsed or not) of many indicators, one query per 1,000 of them."""
        found: dict[int, list[Assertion]] = {i: [] for i in indicator_ids}
        ids = list(indicator_ids)
        for start in range(0, len(ids), 1000):
            rows = (
                await self.conn.execute(
                    sa.select(t.assertions).where(
                        t.assertions.c.indicator_id.in_(ids[start : start + 1000])
                    )
                )
            ).all()
            read_rows = _readable("assertions", rows, _assertion, "indicator_id")
            for row, read in zip(rows, read_rows, strict=True):
                if read is not None:
                    found[row.indicator_id].append(read)
        return found

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

    def _is_postgres(self) -> bool:
        return self.conn.dialect.name == "postgresql"

    def _among(self, column: sa.ColumnElement[int], ids: Sequence[int]) -> sa.ColumnElement[bool]:
        """``column`` is one of ``ids``: one array parameter on PostgreSQL, however many."""
        if self._is_postgres():
            return column == sa.any_(sa.bindparam(None, list(ids), type_=_ID_ARRAY))
        return column.in_(list(ids))

    async def due_indicators(self, now: datetime, limit: int | None = None) -> list[int]:
        """The indicators with an assertion whose time is up, in id order: one scan of the due
        index per sweep (lapsing leaves dead entries in it until vacuumed, which a scan per
        batch would walk again and again)."""
        a_t = t.assertions
        query = (
            sa.select(a_t.c.indicator_id)
            .where(a_t.c.lapsed.is_(False), a_t.c.expire_time <= now)
            .distinct()
            .order_by(a_t.c.indicator_id)
        )
        if limit is not None:
            query = query.limit(limit)
        return list((await self.conn.scalars(query)).all())

    async def lapse_due(self, now: datetime, indicator_ids: Sequence[int]) -> list[Lapse]:
        """Lapse the assertions of these indicators whose time is up, and lock the indicators
        until the transaction ends.

        PostgreSQL: one statement; indicators a writer holds are skipped (SKIP LOCKED: the
        sweeper never waits for a writer, the next sweep takes them), and an assertion renewed
        since it was found due is left standing (the condition is checked again under the lock).
        SQLite: one writer at a time, so a read and an executemany. An assertion of a source
        this code does not know (written by hand or by a newer version) is left as it is: its
        change could not be read back.
        """
        if not indicator_ids:
            return []
        if self._is_postgres():
            rows = await self.conn.execute(
                _LAPSE_DUE, {"now": now, "ids": list(indicator_ids), "sources": _SOURCES}
            )
            return [Lapse(*row) for row in rows]
        a_t = t.assertions
        due: list[Any] = []
        for start in range(0, len(indicator_ids), 1000):
            due += (
                await self.conn.execute(
                    sa.select(
                        a_t.c.indicator_id, a_t.c.source_type, a_t.c.source_id, a_t.c.expire_time
                    ).where(
                        a_t.c.lapsed.is_(False),
                        a_t.c.expire_time <= now,
                        a_t.c.indicator_id.in_(indicator_ids[start : start + 1000]),
                        a_t.c.source_type.in_(_SOURCES),
                    )
                )
            ).all()
        if due:
            await self.conn.execute(
                sa.update(a_t)
                .where(
                    a_t.c.indicator_id == sa.bindparam("b_indicator_id"),
                    a_t.c.source_type == sa.bindparam("b_source_type"),
                    a_t.c.source_id == sa.bindparam("b_source_id"),
                )
                .values(lapsed=True),
                [{"b_indicator_id": r[0], "b_source_type": r[1], "b_source_id": r[2]} for r in due],
            )
        return [Lapse(r[0], r[1], r[2], _aware(r[3])) for r in due]

    async def standing_assertions_of(
        self, indicator_ids: Sequence[int]
    ) -> dict[int, list[Assertion]]:
        """The assertions not yet lapsed of many indicators, only those that have some (when
        many lapse at once, most indicators have none left: few rows to read). One query on
        PostgreSQL, one per 1,000 indicators on SQLite."""
        found: dict[int, list[Assertion]] = {}
        ids = list(indicator_ids)
        step = (len(ids) or 1) if self._is_postgres() else 1000
        for start in range(0, len(ids), step):
            rows = (
                await self.conn.execute(
                    sa.select(t.assertions).where(
                        self._among(t.assertions.c.indicator_id, ids[start : start + step]),
                        t.assertions.c.lapsed.is_(False),
                    )
                )
            ).all()
            read_rows = _readable("assertions", rows, _assertion, "indicator_id")
            for row, read in zip(rows, read_rows, strict=True):
                if read is not None:
                    found.setdefault(row.indicator_id, []).append(read)
        return found

    async def save_same_snapshot(
        self, indicator_ids: Sequence[int], snapshot: Snapshot, now: datetime
    ) -> None:
        """Give many indicators one verdict (nothing left standing), one statement per 5,000."""
        for start in range(0, len(indicator_ids), 5000):
            await self.conn.execute(
                sa.update(t.indicators)
                .where(self._among(t.indicators.c.id, indicator_ids[start : start + 5000]))
                .values(**_snapshot_values(snapshot), update_time=now)
            )

    async def append_lapses(
        self, lapses: Sequence[Lapse], actor: str, reason: str, now: datetime
    ) -> None:
        """One EXPIRED change per lapse, in the order given, each with its indicator's verdict
        as stored now (saved before this): the feed says exactly what the table holds.
        PostgreSQL: one INSERT ... SELECT over arrays; SQLite: an executemany of it."""
        if not lapses:
            return
        params = {
            "change_type": int(ChangeType.EXPIRED),
            "actor": actor[:128],
            "reason": reason[:1000],
            "time": now,
            "trace": tracing.current_traceparent(),
        }
        if self._is_postgres():
            await self.conn.execute(
                _APPEND_LAPSES_PG,
                {
                    **params,
                    "ids": [x.indicator_id for x in lapses],
                    "source_types": [x.source_type for x in lapses],
                    "source_ids": [x.source_id for x in lapses],
                },
            )
            return
        await self.conn.execute(
            _APPEND_LAPSE_SQLITE,
            [
                {
                    **params,
                    "id": x.indicator_id,
                    "source_type": x.source_type,
                    "source_id": x.source_id,
                }
                for x in lapses
            ],
        )

    async def save_snapshots(self, snapshots: dict[int, Snapshot], now: datetime) -> None:
        """Save many verdicts: one UPDATE over arrays on PostgreSQL, an executemany on SQLite."""
        if not snapshots:
            return
        if self._is_postgres():
            values = [_snapshot_values(s) for s in snapshots.values()]
            await self.conn.execute(
                _SAVE_SNAPSHOTS_PG,
                {"ids": list(snapshots), "now": now}
                | {name: [_plain(v[name]) for v in values] for name in _SNAPSHOT_COLUMNS},
            )
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

    async def save_and_append(
        self,
        indicator_id: int,
        assertion: Assertion | None,
        snapshot: Snapshot,
        kind: IndicatorKind,
        value: str,
        change_type: ChangeType,
        source_type: SourceType,
        source_id: str,
        actor: str,
        reason: str,
        now: datetime,
    ) -> int:
        """The last step of a single change: store the source's assertion (when given), save
        the indicator's verdict, take the feed marker (``lock_feed``) and append the change.
        One round trip on PostgreSQL; the caller commits next."""
        if not self._is_postgres():
            if assertion is not None:
                await self.save_assertion(indicator_id, assertion)
            await self.save_snapshot(indicator_id, snapshot, now)
            await self.lock_feed()
            return await self.append_change(
                kind, value, change_type, source_type, source_id, actor, reason, snapshot, now
            )
        params: dict[str, Any] = {
            "indicator_id": indicator_id,
            "kind": int(kind),
            "value": value,
            "change_type": int(change_type),
            "source_type": int(source_type),
            "source_id": source_id,
            "actor": actor[:128],
            "reason": reason[:1000],
            "time": now,
            "trace_context": tracing.current_traceparent(),
            **_snapshot_values(snapshot),
        }
        if assertion is not None:
            params.update(
                {
                    "a_source_type": int(assertion.source_type),
                    "a_source_id": assertion.source_id,
                    "a_level": int(assertion.level),
                    "a_categories": categories_mask(assertion.categories),
                    "a_reason": assertion.reason,
                    "a_reporter_count": assertion.reporter_count,
                    "a_label": assertion.label,
                    "a_expire_time": assertion.expire_time,
                    "a_create_time": assertion.create_time,
                    "a_update_time": assertion.update_time,
                    "a_lapsed": assertion.lapsed,
                }
            )
        found = await self.conn.scalar(_SAVE_AND_APPEND[assertion is not None], params)
        return int(found)

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
        horizon = await self.feed_horizon()
        if horizon is not None:
            query = query.where(t.changes.c.id < horizon)
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
        """The last change a follower may read (every one before it is readable too)."""
        query = sa.select(sa.func.max(t.changes.c.id))
        horizon = await self.feed_horizon()
        if horizon is not None:
            query = query.where(t.changes.c.id < horizon)
        last = await self.conn.scalar(query)
        return int(last or 0)

    async def newest_change_id(self) -> int:
        """The newest committed change, readable or not yet (``last_change_id`` is the last a
        follower may read)."""
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
