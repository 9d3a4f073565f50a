"""SMS that fall back from the app push (``sms@N`` in a tier policy): written with the
warning, due N seconds later, and cancelled here once the push reached the person.

Cancelling is one statement on the outbox (the event's key is the delivery id) and, for the
events it cancelled, one on the deliveries (NOT_NEEDED). An event the relay holds (leased:
being sent now) is not cancelled: that SMS goes out, as it would have a moment later. On
PostgreSQL the relay's claim and this update lock the same row, so exactly one of them
takes it.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from services.common import metrics
from services.warning.adapters.sql import chunks
from services.warning.adapters.tables import deliveries, outbox
from services.warning.adapters.warnings_repo import FALLBACK_TOPICS
from services.warning.domain.model import CARRIER_CHANNELS, DeliveryState

_REASON = "not needed: the app push reached the person first"


async def cancel_for_pushes(
    conn: AsyncConnection, push_ids: Sequence[str], now: datetime
) -> set[str]:
    """Cancel the waiting fallbacks of the warnings these app pushes belong to; returns the
    deliveries cancelled."""
    if not push_ids:
        return set()
    d = deliveries.c
    cancelled: set[str] = set()
    for chunk in chunks(sorted(push_ids)):
        warning_ids = sa.select(d.warning_id).where(d.id.in_(chunk), d.warning_id.is_not(None))
        cancelled |= await _cancel(conn, warning_ids, now)
    return cancelled


async def cancel_for_warnings(
    conn: AsyncConnection, warning_ids: Sequence[str], now: datetime
) -> set[str]:
    """Cancel the waiting fallbacks of these warnings (acknowledged: the person has seen it)."""
    cancelled: set[str] = set()
    for chunk in chunks(sorted(warning_ids)):
        cancelled |= await _cancel(conn, chunk, now)
    return cancelled


async def _cancel(
    conn: AsyncConnection, warning_ids: Sequence[str] | sa.Select[tuple[str | None]], now: datetime
) -> set[str]:
    d, o = deliveries.c, outbox.c
    fallbacks = sa.select(d.id).where(
        d.warning_id.in_(warning_ids),
        d.channel.in_([c.name for c in CARRIER_CHANNELS]),
        d.state == DeliveryState.QUEUED.name,
    )
    keys = set(
        (
            await conn.execute(
                sa.update(outbox)
                .where(
                    o.topic.in_(FALLBACK_TOPICS),
                    o.key.in_(fallbacks.scalar_subquery()),
                    o.deliver_time.is_(None),
                    o.fail_time.is_(None),
                    sa.or_(o.lease_until.is_(None), o.lease_until < now),
                )
                .values(deliver_time=now, lease_until=None, last_error=_REASON)
                .returning(o.key)
            )
        ).scalars()
    )
    counted: Counter[str] = Counter()
    for chunk in chunks(sorted(keys)):
        counted.update(
            (
                await conn.execute(
                    sa.update(deliveries)
                    .where(d.id.in_(chunk), d.state == DeliveryState.QUEUED.name)
                    .values(
                        state=DeliveryState.NOT_NEEDED.name, last_error=_REASON, update_time=now
                    )
                    .returning(d.channel)
                )
            ).scalars()
        )
    for channel, n in counted.items():
        metrics.DELIVERIES.labels(channel.lower(), "not_needed").inc(n)
    return keys
