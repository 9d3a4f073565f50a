"""The warning service's storage and service layer on a real database (SQLite and PostgreSQL):
the once-per-window rule, contacts and their retention, fan-outs that resume, task leases,
the change-feed follower's lease and level tracking."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from services.common.db import Database, UnitOfWork
from services.common.errors import FailedPrecondition, NotFound, PermissionDenied
from services.common.indicators import IndicatorKind, normalize
from services.common.retention import Retention
from services.warning.adapters import (
    contacts_repo,
    fanouts_repo,
    feed_repo,
    tables,
    tasks_repo,
    warnings_repo,
)
from services.warning.adapters.risk_feed import Change, FeedReset, RiskFeed
from services.warning.domain.contacts import ContactEvent
from services.warning.domain.model import (
    Channel,
    ContactKind,
    DeliveryState,
    Fanout,
    FanoutState,
    Person,
    Reason,
    RiskLevel,
    TaskOutcome,
    TaskState,
    TaskType,
    WarningState,
)
from services.warning.service_layer import contacts, privacy, recipients, tasks, warnings
from services.warning.service_layer.fanout import FanoutWorker
from services.warning.service_layer.follower import RETRY_SECONDS, LeaseLost, RiskFollower
from services.warning.service_layer.push import PushHub
from services.warning.service_layer.warnings import new_id
from services.warning.settings import WarningSettings
from tests.integration.warning_database import warning_database  # noqa: F401 (db)

FRAUD = normalize(IndicatorKind.PHONE_NUMBER, "13912345678")
SETTINGS = WarningSettings(follow_risk=False, lease=timedelta(seconds=5), fanout_chunk=300)
#: The follower tests hand it changes themselves; this feed is never opened.
UNUSED_FEED = RiskFeed("127.0.0.1:1")


def now() -> datetime:
    return datetime.now(UTC)


async def listed(db: Database, level: RiskLevel = RiskLevel.MEDIUM) -> None:
    """FRAUD as the risk feed showed it: contacts with it may serve a warning."""
    async with UnitOfWork(db) as uow:
        await feed_repo.set_levels(uow.conn, {FRAUD.value: level}, now())
        await uow.commit()


def number(i: int) -> str:
    return f"+86138{i:08d}"


async def dispatch(
    db: Database,
    person: Person,
    level: RiskLevel,
    when: datetime,
    settings: WarningSettings = SETTINGS,
) -> warnings.Dispatched:
    async with UnitOfWork(db) as uow:
        done = await warnings.dispatch(
            uow, settings, person, level, Reason(FRAUD, None), None, when
        )
        await uow.commit()
    return done


async def count(db: Database, table: sa.Table) -> int:
    async with db.read() as conn:
        return int(await conn.scalar(sa.select(sa.func.count()).select_from(table)) or 0)


class TestOncePerWindow:
    async def test_a_repeat_within_the_window_returns_the_first_warning(self, db: Database) -> None:
        person = Person(number(1))
        first = await dispatch(db, person, RiskLevel.MEDIUM, now())
        again = await dispatch(db, person, RiskLevel.MEDIUM, now())
        lower = await dispatch(db, person, RiskLevel.LOW, now())
        assert not first.suppressed
        assert again.suppressed
        assert lower.suppressed
        assert again.warning.id == lower.warning.id == first.warning.id
        assert await count(db, tables.warnings) == 1

    async def test_a_higher_level_is_a_new_warning(self, db: Database) -> None:
        person = Person(number(2))
        low = await dispatch(db, person, RiskLevel.LOW, now())
        high = await dispatch(db, person, RiskLevel.HIGH, now())
        assert not high.suppressed
        assert high.warning.id != low.warning.id
        assert (await dispatch(db, person, RiskLevel.MEDIUM, now())).warning.id == high.warning.id

    async def test_after_the_window_the_person_is_warned_again(self, db: Database) -> None:
        person = Person(number(3))
        old = await dispatch(
            db, person, RiskLevel.LOW, now() - SETTINGS.dedup_window - timedelta(1)
        )
        new = await dispatch(db, person, RiskLevel.LOW, now())
        assert not new.suppressed
        assert new.warning.id != old.warning.id

    async def test_concurrent_dispatches_create_one_warning(self, db: Database) -> None:
        person = Person(number(4))
        results = await asyncio.gather(
            *(dispatch(db, person, RiskLevel.MEDIUM, now()) for _ in range(6))
        )
        assert sum(not r.suppressed for r in results) == 1
        assert len({r.warning.id for r in results}) == 1
        assert await count(db, tables.warnings) == 1

    async def test_deliveries_tasks_and_outbox_are_written_with_the_warning(
        self, db: Database
    ) -> None:
        async with UnitOfWork(db) as uow:
            elder = await recipients.upsert(
                uow, "elder-1", number(5), True, (number(6), number(7)), now()
            )
            await uow.commit()
        done = await dispatch(db, Person.of(elder), RiskLevel.HIGH, now())
        by_channel = Counter((d.channel, d.guardian) for d in done.warning.deliveries)
        assert by_channel == {
            (Channel.HOME_VISIT_TASK, False): 1,
            (Channel.CALL_TASK, False): 1,
            (Channel.FLASH_SMS, False): 1,
            (Channel.APP_PUSH, False): 1,
            (Channel.SMS, True): 2,
        }
        assert await count(db, tables.tasks) == 2
        assert await count(db, tables.outbox) == 3  # the flash SMS and the guardians' SMS
        assert done.warning.state == WarningState.PENDING


class TestContacts:
    async def test_events_add_up_and_old_ones_are_not_kept(self, db: Database) -> None:
        t = now()
        later = t - timedelta(hours=1)
        # Pairs are counted per UTC day: the earlier event on the same day as the later one,
        # whatever the time now (an hour before it, or its midnight in the day's first hour).
        midnight = later.replace(hour=0, minute=0, second=0, microsecond=0)
        earlier = max(later - timedelta(hours=1), midnight)
        a, b = number(10), FRAUD.value
        events = [
            ContactEvent(a, b, later, ContactKind.CALL),
            ContactEvent(b, a, earlier, ContactKind.SMS),
            ContactEvent(a, b, t - timedelta(days=40), ContactKind.CALL),
        ]
        await listed(db)
        async with UnitOfWork(db) as uow:
            recorded = await contacts.record(uow, events, SETTINGS, t)
            again = await contacts.record(uow, events[:1], SETTINGS, t)
            await uow.commit()
        assert (recorded.accepted, recorded.expired) == (2, 1)
        assert again.accepted == 1
        async with db.read() as conn:
            rows = (await conn.execute(sa.select(tables.contact_pairs))).all()
        assert [(r.calls, r.sms) for r in rows] == [(2, 1)]
        assert rows[0].last_time == later

    async def test_only_contacts_with_a_risky_number_are_kept_and_numbers_are_sealed(
        self, db: Database
    ) -> None:
        t = now()
        screened = ContactEvent(
            number(30), number(31), t, ContactKind.CALL, caller_level=RiskLevel.MEDIUM
        )
        low = ContactEvent(number(32), number(33), t, ContactKind.CALL, caller_level=RiskLevel.LOW)
        of_listed = ContactEvent(number(34), FRAUD.value, t, ContactKind.SMS)
        await listed(db)
        async with UnitOfWork(db) as uow:
            recorded = await contacts.record(uow, [screened, low, of_listed], SETTINGS, t)
            await uow.commit()
        assert (recorded.accepted, recorded.ignored) == (2, 1)
        async with db.read() as conn:
            pairs = {
                (r.number_a, r.number_b)
                for r in await conn.execute(sa.select(tables.contact_pairs))
            }
            raw = sa.type_coerce(tables.contact_pairs.c.number_a, sa.String)
            stored = set((await conn.execute(sa.select(raw))).scalars())
        assert pairs == {
            tuple(sorted((number(30), number(31)))),
            tuple(sorted((number(34), FRAUD.value))),
        }
        assert all(v.startswith("s1.") for v in stored)
        assert not any(number(30)[3:] in v or FRAUD.value[3:] in v for v in stored)

    async def test_pruning_removes_contacts_and_claims_past_their_windows(
        self, db: Database
    ) -> None:
        t = now()
        events = [
            ContactEvent(number(20), FRAUD.value, t - timedelta(days=29), ContactKind.CALL),
            ContactEvent(number(21), FRAUD.value, t - timedelta(days=10), ContactKind.CALL),
        ]
        await listed(db)
        async with UnitOfWork(db) as uow:
            await contacts.record(uow, events, SETTINGS, t)
            await uow.commit()
        await dispatch(
            db, Person(number(22)), RiskLevel.LOW, t - SETTINGS.dedup_window - timedelta(1)
        )
        await dispatch(db, Person(number(23)), RiskLevel.LOW, t)
        async with UnitOfWork(db) as uow:  # a number the feed showed at no risk, long ago
            await feed_repo.set_levels(uow.conn, {number(24): RiskLevel.NONE}, t - timedelta(40))
            await uow.commit()
        short = replace(SETTINGS, contact_retention=timedelta(days=20))
        jobs = [*contacts.retention_jobs(short), *privacy.retention_jobs(short)]
        deleted = await Retention(db, jobs, batch=1).run_once()
        assert deleted == {
            "contact_pairs": 1,
            "warning_dedup": 1,
            "fanout_targets": 0,
            "warning_rows": 0,
            "notifications": 0,
            "followed_numbers": 1,
            "screenings": 0,
        }
        assert await count(db, tables.followed_numbers) == 1  # FRAUD, still listed
        assert await count(db, tables.contact_pairs) == 1
        # The stale claim is gone; number(23)'s stays, and those of the two late contacts of
        # the listed number (warned when they were recorded).
        assert await count(db, tables.warning_dedup) == 3
        assert await count(db, tables.warnings) == 4  # warnings are kept for longer
        # ... until they too are past their retention, with their deliveries and tasks.
        later = replace(short, warning_retention=timedelta(0))
        await Retention(db, privacy.retention_jobs(later), batch=1).run_once(
            now() + timedelta(seconds=1)
        )
        assert await count(db, tables.warnings) == 0
        assert await count(db, tables.deliveries) == 0


async def seed_contacts(db: Database, total: int, t: datetime) -> dict[str, tuple[int, datetime]]:
    """Contacts of FRAUD with varied recency and frequency, recorded before FRAUD was listed;
    returns number -> (count, last)."""
    expected: dict[str, tuple[int, datetime]] = {}
    events = []
    for i in range(total):
        times = 1 + i % 6
        last = t - timedelta(hours=1 + (i % 5) * 30)
        for k in range(times):
            # Screened calls from FRAUD while it stood at MEDIUM: kept, nobody warned yet.
            events.append(
                ContactEvent(
                    FRAUD.value,
                    number(i),
                    last - timedelta(minutes=k),
                    ContactKind.CALL,
                    RiskLevel.MEDIUM,
                )
            )
        expected[number(i)] = (times, last)
    async with UnitOfWork(db) as uow:
        await contacts.record(uow, events, SETTINGS, t)
        await uow.commit()
    await listed(db)
    return expected


async def start_fanout(db: Database, call_task_cap: int | None = None) -> str:
    fanout = Fanout(
        id=new_id(),
        indicator=FRAUD,
        category=None,
        state=FanoutState.RUNNING,
        contact_count=0,
        processed_count=0,
        warned_count=0,
        suppressed_count=0,
        change_cursor="c-1",
        create_time=now(),
        done_time=None,
        call_task_cap=call_task_cap,
    )
    async with UnitOfWork(db) as uow:
        await fanouts_repo.create(uow.conn, fanout, now())
        await uow.commit()
    return fanout.id


def worker(db: Database, settings: WarningSettings = SETTINGS) -> FanoutWorker:
    return FanoutWorker(db, settings, PushHub(), lambda: None)


async def run_fanout(db: Database, fanout_id: str) -> Fanout:
    """Work the fan-outs to their end; the fan-out as it ended."""
    while await worker(db).step() == 0.0:
        pass
    async with db.read() as conn:
        done = await fanouts_repo.get(conn, fanout_id)
    assert done is not None
    return done


class TestFanout:
    async def test_every_contact_is_warned_once_at_its_level(self, db: Database) -> None:
        t = now()
        expected = await seed_contacts(db, 700, t)
        async with UnitOfWork(db) as uow:
            await recipients.upsert(uow, "elder", number(3), True, (number(900_001),), t)
            await uow.commit()
        fanout_id = await start_fanout(db)
        while await worker(db).step() == 0.0:
            pass
        async with db.read() as conn:
            done = await fanouts_repo.get(conn, fanout_id)
            rows = (await conn.execute(sa.select(tables.warnings))).all()
            guardian_sms = await conn.scalar(
                sa.select(sa.func.count())
                .select_from(tables.deliveries)
                .where(tables.deliveries.c.guardian.is_(True))
            )
            left = await conn.scalar(sa.select(sa.func.count()).select_from(tables.fanout_targets))
        assert done is not None
        assert done.state == FanoutState.DONE
        assert (done.contact_count, done.warned_count, done.suppressed_count) == (700, 700, 0)
        assert left == 0
        assert sorted(r.phone_number for r in rows) == sorted(expected)
        rule = SETTINGS.contact_rule
        for r in rows:
            times, last = expected[r.phone_number]
            assert (r.contact_count, r.last_contact_time) == (times, last)
            assert r.level == rule.level(last, times, r.create_time)
        assert {r.level for r in rows} == {RiskLevel.LOW, RiskLevel.MEDIUM, RiskLevel.HIGH}
        assert guardian_sms == 1
        elder_row = next(r for r in rows if r.phone_number == number(3))
        assert elder_row.user_id == "elder"

        # The same number again (e.g. it dropped and rose again): nobody is warned twice.
        again = await run_fanout(db, await start_fanout(db))
        assert (again.warned_count, again.suppressed_count) == (0, 700)
        assert await count(db, tables.warnings) == 700

    async def test_a_task_cap_holds_across_chunks_written_side_by_side(self, db: Database) -> None:
        """On PostgreSQL a chunk is written while the one before commits: a cap that binds
        in a later chunk still stops the tasks at it, and the counts add up."""
        await seed_contacts(db, 1000, now())
        first = await run_fanout(db, await start_fanout(db))
        assert first.call_tasks > SETTINGS.fanout_chunk  # so the cap below binds in a later chunk
        async with UnitOfWork(db) as uow:  # a new window: everyone may be warned again
            await uow.conn.execute(sa.delete(tables.warning_dedup))
            await uow.commit()
        cap = first.call_tasks - 5
        capped = await start_fanout(db, call_task_cap=cap)
        done = await run_fanout(db, capped)
        async with db.read() as conn:
            call_tasks = await conn.scalar(
                sa.select(sa.func.count())
                .select_from(tables.deliveries)
                .join(tables.warnings, tables.warnings.c.id == tables.deliveries.c.warning_id)
                .where(
                    tables.warnings.c.fanout_id == capped,
                    tables.deliveries.c.channel == Channel.CALL_TASK.name,
                )
            )
        assert done.state == FanoutState.DONE
        assert (done.processed_count, done.warned_count) == (1000, 1000)
        assert done.call_tasks == call_tasks == cap
        assert done.capped >= 5

    async def test_the_worker_says_it_is_queueing_from_its_first_chunk_to_its_last(
        self, db: Database
    ) -> None:
        """The outbox relay gives way while ``queueing``: it is set for every chunk of a
        fan-out, and cleared, with a last wake of the relay, once the fan-out is done."""
        await seed_contacts(db, 700, now())
        await start_fanout(db)
        seen: list[bool] = []
        queueing = FanoutWorker(db, SETTINGS, PushHub(), lambda: seen.append(queueing.queueing))
        assert not queueing.queueing
        assert await queueing.step() == 0.0
        assert seen == [True, True, True, False]  # three chunks of 300, then done
        assert not queueing.queueing
        assert await count(db, tables.warnings) == 700

    async def test_a_fanout_resumes_where_a_dead_worker_left_it(self, db: Database) -> None:
        await seed_contacts(db, 1000, now())
        fanout_id = await start_fanout(db)
        dead = worker(db)
        async with UnitOfWork(db) as uow:
            assert (
                await fanouts_repo.claim(uow.conn, dead.holder, now(), SETTINGS.lease) == fanout_id
            )
            await uow.commit()
        assert await dead.work_chunk(fanout_id)  # snapshot
        assert await dead.work_chunk(fanout_id)  # first chunk, then the worker "dies"
        assert await count(db, tables.warnings) == SETTINGS.fanout_chunk

        successor = worker(db)
        after_lease = now() + SETTINGS.lease + timedelta(seconds=1)
        async with UnitOfWork(db) as uow:
            # While the lease runs the job is not taken over; once it has run out, it is.
            assert (
                await fanouts_repo.claim(uow.conn, successor.holder, now(), SETTINGS.lease) is None
            )
            taken = await fanouts_repo.claim(
                uow.conn, successor.holder, after_lease, SETTINGS.lease
            )
            assert taken == fanout_id
            await uow.commit()
        while await successor.work_chunk(fanout_id):
            pass
        assert not await dead.work_chunk(fanout_id)  # the dead worker cannot commit any more
        async with db.read() as conn:
            done = await fanouts_repo.get(conn, fanout_id)
            phones = list((await conn.execute(sa.select(tables.warnings.c.phone_number))).scalars())
        assert done is not None
        assert done.state == FanoutState.DONE
        assert done.warned_count == 1000
        assert len(phones) == len(set(phones)) == 1000


class TestTasks:
    async def make_task(self, db: Database, i: int, level: RiskLevel) -> str:
        done = await dispatch(db, Person(number(100 + i)), level, now())
        return next(d.id for d in done.warning.deliveries if d.channel == Channel.CALL_TASK)

    async def test_claims_take_the_most_urgent_and_leases_return_tasks(self, db: Database) -> None:
        medium = await self.make_task(db, 1, RiskLevel.MEDIUM)
        high = await self.make_task(db, 2, RiskLevel.HIGH)
        lease = timedelta(seconds=30)
        async with UnitOfWork(db) as uow:
            first = await tasks.claim(uow, "op-1", None, TaskType.CALL, now(), lease)
            second = await tasks.claim(uow, "op-2", None, TaskType.CALL, now(), lease)
            with pytest.raises(NotFound):
                await tasks.claim(uow, "op-3", None, TaskType.CALL, now(), lease)
            with pytest.raises(FailedPrecondition):
                await tasks.claim(uow, "op-3", high, None, now(), lease)
            await uow.commit()
        assert (first.id, first.state, first.operator_id) == (high, TaskState.CLAIMED, "op-1")
        assert second.id == medium
        later = now() + lease + timedelta(seconds=1)
        async with UnitOfWork(db) as uow:
            back = await tasks.get(uow.conn, high, later)
            assert back.state == TaskState.OPEN  # the claim ran out
            with pytest.raises(FailedPrecondition):
                await tasks.complete(uow, high, "op-1", TaskOutcome.DISSUADED, None, later)
            taken = await tasks.claim(uow, "op-3", None, TaskType.CALL, later, lease)
            assert (taken.id, taken.claim_count) == (high, 2)
            await uow.commit()

    async def test_an_officer_of_a_region_works_only_its_tasks(self, db: Database) -> None:
        """Tasks take the person's region from the profile; an officer of Shenzhen (440300)
        sees, claims and completes Nanshan's (440305), never Beijing's nor those of no known
        region; an officer of no region sees them all."""
        lease = timedelta(seconds=30)
        made: dict[str, str] = {}
        for i, region in enumerate(("440305", "110105", "")):
            user = f"user-region-{i}"
            async with UnitOfWork(db) as uow:
                profile = await recipients.upsert(
                    uow, user, number(200 + i), False, (), now(), region=region
                )
                await uow.commit()
            assert profile.region == region
            done = await dispatch(db, Person.of(profile), RiskLevel.MEDIUM, now())
            made[region] = next(
                d.id for d in done.warning.deliveries if d.channel == Channel.CALL_TASK
            )
        async with db.read() as conn:
            mine = await tasks_repo.list_page(
                conn, now(), TaskType.CALL, None, None, 50, None, "440300"
            )
            province = await tasks_repo.list_page(
                conn, now(), TaskType.CALL, None, None, 50, None, "440000"
            )
            everyone = await tasks_repo.list_page(conn, now(), TaskType.CALL, None, None, 50, None)
        assert [t.id for t in mine] == [t.id for t in province] == [made["440305"]]
        assert mine[0].region == "440305"
        assert set(made.values()) <= {t.id for t in everyone}
        async with UnitOfWork(db) as uow:
            with pytest.raises(PermissionDenied):
                await tasks.get(uow.conn, made["110105"], now(), "440300")
            with pytest.raises(PermissionDenied):
                await tasks.claim(uow, "op-sz", made[""], None, now(), lease, "440300")
            taken = await tasks.claim(uow, "op-sz", None, TaskType.CALL, now(), lease, "440300")
            assert taken.id == made["440305"]
            with pytest.raises(NotFound):  # Beijing's and the unknown one are not Shenzhen's
                await tasks.claim(uow, "op-sz2", None, TaskType.CALL, now(), lease, "440300")
            await tasks.complete(
                uow, taken.id, "op-sz", TaskOutcome.DISSUADED, None, now(), "440300"
            )
            # A national officer (no region) takes one of no known region too.
            await tasks.claim(uow, "op-cn", made[""], None, now(), lease)
            await uow.commit()

    async def test_completion_moves_the_delivery_and_the_warning(self, db: Database) -> None:
        task_id = await self.make_task(db, 3, RiskLevel.MEDIUM)
        lease = timedelta(seconds=30)
        async with UnitOfWork(db) as uow:
            await tasks.claim(uow, "op-1", task_id, None, now(), lease)
            with pytest.raises(FailedPrecondition):
                await tasks.complete(uow, task_id, "op-2", TaskOutcome.DISSUADED, None, now())
            done = await tasks.complete(uow, task_id, "op-1", TaskOutcome.DISSUADED, "ok", now())
            repeat = await tasks.complete(uow, task_id, "op-1", TaskOutcome.DISSUADED, "ok", now())
            await uow.commit()
        assert (done.state, done.outcome, repeat.state) == (
            TaskState.COMPLETED,
            TaskOutcome.DISSUADED,
            TaskState.COMPLETED,
        )
        async with db.read() as conn:
            warning = await warnings_repo.get(conn, done.warning_id)
        assert warning is not None
        call = next(d for d in warning.deliveries if d.channel == Channel.CALL_TASK)
        assert call.state == DeliveryState.DELIVERED
        assert warning.state == WarningState.DELIVERED


class TestFollower:
    def change(self, cursor: str, value: str, level: RiskLevel, verified: bool = False) -> Change:
        return Change(cursor, normalize(IndicatorKind.PHONE_NUMBER, value), level, verified, None)

    async def follower(self, db: Database) -> RiskFollower:
        follower = RiskFollower(db, UNUSED_FEED, SETTINGS, lambda: None)
        async with UnitOfWork(db) as uow:
            assert await feed_repo.acquire(
                uow.conn, "risk-feed", follower.holder, now(), SETTINGS.lease
            )
            await uow.commit()
        return follower

    async def test_a_fanout_starts_on_the_rise_to_high_only(self, db: Database) -> None:
        follower = await self.follower(db)
        started = await follower.apply(
            [
                self.change("1", "13900000001", RiskLevel.MEDIUM),
                self.change("2", "13900000001", RiskLevel.HIGH),
                self.change("3", "13900000001", RiskLevel.HIGH),  # a sighting: still HIGH
                self.change("4", "13900000002", RiskLevel.HIGH, verified=True),
            ]
        )
        assert started == 1
        assert await follower.apply([self.change("5", "13900000001", RiskLevel.HIGH)]) == 0
        await follower.apply([self.change("6", "13900000001", RiskLevel.NONE)])  # retired
        assert await follower.apply([self.change("7", "13900000001", RiskLevel.HIGH)]) == 1
        async with db.read() as conn:
            assert await feed_repo.cursor(conn, "risk-feed") == "7"

    async def test_an_expired_cursor_resumes_from_the_oldest_change_kept(
        self, db: Database
    ) -> None:
        class CompactedFeed(RiskFeed):
            async def watch(self, cursor: str | None) -> AsyncIterator[list[Change]]:
                assert cursor == "7"
                raise FeedReset("cursor 7 is older than the oldest change kept", "41")
                yield []  # an async generator, like the real one

        follower = await self.follower(db)
        await follower.apply([self.change("7", "13900000007", RiskLevel.LOW)])
        follower.feed = CompactedFeed("127.0.0.1:1")
        assert await follower.step() == 0.0  # at once, from the new cursor
        async with db.read() as conn:
            assert await feed_repo.cursor(conn, "risk-feed") == "41"

    async def test_a_follower_whose_database_goes_away_stops_when_its_lease_runs_out(
        self, db: Database
    ) -> None:
        """The lease cannot be renewed while the database is away: the follower stops
        following once the lease it last renewed has run out (another replica may hold it
        by then) and starts over, instead of watching the feed for ever without it."""
        lease = timedelta(seconds=0.6)
        follower = RiskFollower(db, UNUSED_FEED, replace(SETTINGS, lease=lease), lambda: None)
        away = Database("warning", url="postgresql+asyncpg://antifraud@127.0.0.1:1/gone")
        watching = asyncio.Event()

        class QuietFeed(RiskFeed):
            async def watch(self, cursor: str | None) -> AsyncIterator[list[Change]]:
                follower.db = away  # every later statement of the follower fails
                watching.set()
                await asyncio.Event().wait()  # a quiet feed: no change ever comes
                yield []

        follower.feed = QuietFeed("127.0.0.1:1")
        try:
            # A guard against hanging only (without the fix the step never returns).
            pause = await asyncio.wait_for(follower.step(), 30)
        finally:
            await away.dispose()
        assert watching.is_set()
        assert pause == RETRY_SECONDS  # starts over: takes the lease again, or waits

    async def test_a_follower_without_the_lease_applies_nothing(self, db: Database) -> None:
        await self.follower(db)
        other = RiskFollower(db, UNUSED_FEED, SETTINGS, lambda: None)
        with pytest.raises(LeaseLost):
            await other.apply([self.change("9", "13900000003", RiskLevel.HIGH)])
        assert await count(db, tables.fanouts) == 0


async def test_contact_repository_snapshot_counts_both_directions(db: Database) -> None:
    t = now()
    events = [
        ContactEvent(FRAUD.value, number(50), t - timedelta(hours=3), ContactKind.CALL),
        ContactEvent(number(50), FRAUD.value, t - timedelta(days=3), ContactKind.SMS),
        ContactEvent(number(51), number(52), t, ContactKind.CALL),  # not a contact of FRAUD
    ]
    await listed(db)
    async with UnitOfWork(db) as uow:
        await contacts.record(uow, events, SETTINGS, t)
        found = await contacts_repo.snapshot_contacts(
            uow.conn, "f-1", FRAUD.value, t - timedelta(30)
        )
        targets = await fanouts_repo.targets(uow.conn, "f-1", None, 10)
        await uow.rollback()
    assert found == 1
    assert [(x.phone_number, x.contact_count, x.last_time) for x in targets] == [
        (number(50), 2, t - timedelta(hours=3))
    ]
