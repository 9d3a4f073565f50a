"""API keys in the gateway's database, with a short-lived cache on the request path.

A revoked key stops working on every replica within ``ttl_seconds``.

Stale if error: while the key store cannot be reached, a key found in it within the last
``stale_seconds`` (``ANTIFRAUD_GATEWAY_KEY_STALE_SECONDS``, default 600) is still
honoured, so callers who were working keep working through a database outage (their
calls that need no database succeed). The price is bounded: a key revoked on another
replica during an outage works here until the store answers again or its entry is
older than ``stale_seconds``. Keys never seen, or not seen lately, are UNAVAILABLE.
With a stale entry at hand, a fresh one is waited for at most ``STALE_WAIT_SECONDS``
(a black-holed store answers nothing until the database timeouts, longer than a
caller's deadline may be); after a failure the store is not asked again for
``ttl_seconds``, so an outage costs one caller a short wait every few seconds.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa

from gateway.adapters.tables import api_keys
from gateway.domain.principals import IssuedKey, hash_secret, key_principal, new_key
from services.common.db import Database
from services.common.errors import infrastructure_error
from services.common.logs import get_logger
from services.common.principals import Role


@dataclass(frozen=True)
class StoredKey:
    key_id: str
    secret_hash: str
    role: Role
    subject: str
    description: str
    revoked: bool
    #: The region an officer's key serves; '' for every region.
    region: str = ""


def _aware(value: datetime) -> datetime:
    """SQLite hands back naive datetimes; everything stored is UTC."""
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def _stored(row: Any) -> StoredKey:
    # A revoke time in the future is a consumed install key's grace for retries.
    revoked = row.revoke_time is not None and _aware(row.revoke_time) <= datetime.now(UTC)
    return StoredKey(
        row.key_id,
        row.secret_hash,
        Role(row.role),
        row.subject,
        row.description,
        revoked,
        row.region or "",
    )


#: How long a key id found in the store counts as a known caller's (for throttling only:
#: every call is still checked against the store's answer within ``ttl_seconds``).
KNOWN_SECONDS = 3600.0


log = get_logger("gateway.keys")
#: With a stale entry to fall back on, how long a caller waits for the key store.
STALE_WAIT_SECONDS = 1.0


class KeyStore:
    def __init__(
        self, db: Database, *, ttl_seconds: float = 2.0, stale_seconds: float = 600.0
    ) -> None:
        self.db = db
        self.ttl = ttl_seconds
        self.stale = stale_seconds
        #: Until when (monotonic) the store is taken as unreachable after a failure.
        self._failing_until = 0.0
        self._cache: dict[str, tuple[float, StoredKey | None]] = {}
        #: Key ids found in the store lately (when), so a known caller is never throttled
        #: with the random keys of someone else at the same address.
        self._known: dict[str, float] = {}

    def cached(self, key_id: str) -> tuple[bool, StoredKey | None]:
        """(True, the key or None for no such key) from a fresh cache entry, or (False, None)
        when only the database can tell."""
        cached = self._cache.get(key_id)
        if cached is not None and time.monotonic() - cached[0] < self.ttl:
            return True, cached[1]
        return False, None

    async def find(self, key_id: str) -> StoredKey | None:
        now = time.monotonic()
        cached = self._cache.get(key_id)
        if cached is not None and now - cached[0] < self.ttl:
            return cached[1]
        stale = cached[1] if cached is not None and now - cached[0] < self.stale else None
        if stale is not None and now < self._failing_until:
            return stale  # the store failed a moment ago: do not wait for it again yet
        try:
            async with (
                asyncio.timeout(STALE_WAIT_SECONDS if stale is not None else None),
                self.db.read() as conn,
            ):
                row = (
                    await conn.execute(sa.select(api_keys).where(api_keys.c.key_id == key_id))
                ).first()
        except Exception as exc:
            if infrastructure_error(exc) is None:
                raise
            if not self._failing_until:
                log.warning("key store unreachable; honouring keys seen lately", stale=self.stale)
            self._failing_until = time.monotonic() + self.ttl
            if stale is None:
                raise
            return stale
        if self._failing_until:
            log.info("key store reachable again")
            self._failing_until = 0.0
        found = None if row is None else _stored(row)
        if len(self._cache) > 100_000:
            self._cache.clear()
        self._cache[key_id] = (now, found)
        if found is not None:
            if len(self._known) > 100_000:
                self._known.clear()
            self._known[key_id] = now
        return found

    def known(self, key_id: str) -> bool:
        """True when ``key_id`` was found in the store within the last hour."""
        seen = self._known.get(key_id)
        return seen is not None and time.monotonic() - seen < KNOWN_SECONDS

    async def create(
        self, role: Role, subject: str, description: str = "", region: str = ""
    ) -> IssuedKey:
        """A new key speaking for ``role:subject`` (serving ``region``); raises
        InvalidPrincipal if that is no one."""
        key_principal(role, subject, region)
        issued = new_key()
        async with self.db.engine.begin() as conn:
            await conn.execute(
                sa.insert(api_keys).values(
                    key_id=issued.key_id,
                    secret_hash=hash_secret(issued.secret),
                    role=role.value,
                    subject=subject,
                    description=description[:200],
                    create_time=datetime.now(UTC),
                    region=region or None,
                )
            )
        return issued

    async def revoke(self, key_id: str, *, after: timedelta = timedelta()) -> bool:
        """Revoke now, or once ``after`` has passed (a consumed install key keeps working that
        long, for retries); an earlier revocation in force is kept."""
        now = datetime.now(UTC)
        async with self.db.engine.begin() as conn:
            result = await conn.execute(
                sa.update(api_keys)
                .where(
                    api_keys.c.key_id == key_id,
                    sa.or_(api_keys.c.revoke_time.is_(None), api_keys.c.revoke_time > now + after),
                )
                .values(revoke_time=now + after)
            )
        self._cache.pop(key_id, None)
        return bool(result.rowcount)

    async def list_for(self, role: Role, subject: str) -> list[StoredKey]:
        """One principal's keys, by id."""
        async with self.db.read() as conn:
            rows = await conn.execute(
                sa.select(api_keys)
                .where(api_keys.c.role == role.value, api_keys.c.subject == subject)
                .order_by(api_keys.c.key_id)
            )
            return [_stored(r) for r in rows]

    async def revoke_subject(self, role: Role, subject: str) -> int:
        """Revoke every key speaking for ``role:subject`` (an erased citizen's)."""
        async with self.db.engine.begin() as conn:
            ids = list(
                (
                    await conn.execute(
                        sa.select(api_keys.c.key_id).where(
                            api_keys.c.role == role.value,
                            api_keys.c.subject == subject,
                            api_keys.c.revoke_time.is_(None),
                        )
                    )
                ).scalars()
            )
            if ids:
                await conn.execute(
                    sa.update(api_keys)
                    .where(api_keys.c.key_id.in_(ids))
                    .values(revoke_time=datetime.now(UTC))
                )
        for key_id in ids:
            self._cache.pop(key_id, None)
        return len(ids)

    def forget(self, key_id: str) -> None:
        """Drop a cached entry (after a change made here)."""
        self._cache.pop(key_id, None)

    async def revoked_among(self, key_ids: list[str]) -> set[str]:
        """Which of ``key_ids`` are revoked or gone, read from the database (not the cache)."""
        found: set[str] = set()
        for start in range(0, len(key_ids), 500):
            chunk = key_ids[start : start + 500]
            async with self.db.read() as conn:
                rows = await conn.execute(
                    sa.select(api_keys.c.key_id).where(
                        api_keys.c.key_id.in_(chunk), api_keys.c.revoke_time.is_(None)
                    )
                )
                active = {r.key_id for r in rows}
            found.update(k for k in chunk if k not in active)
        return found

    async def list(self, after: str = "", limit: int = 10_000) -> list[StoredKey]:
        """Keys ordered by id, after ``after``."""
        async with self.db.read() as conn:
            rows = await conn.execute(
                sa.select(api_keys)
                .where(api_keys.c.key_id > after)
                .order_by(api_keys.c.key_id)
                .limit(limit)
            )
            return [_stored(r) for r in rows]
