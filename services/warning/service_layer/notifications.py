"""Notifications for other services: an app push to a registered user, else an SMS."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncConnection

from services.common.db import UnitOfWork
from services.common.errors import NotFound
from services.warning.adapters import deliveries_repo
from services.warning.domain.model import (
    Channel,
    Delivery,
    DeliveryState,
    NotificationPurpose,
    Person,
)
from services.warning.service_layer.warnings import new_id


async def send(
    uow: UnitOfWork, person: Person, text: str, purpose: NotificationPurpose, now: datetime
) -> Delivery:
    push = person.user_id is not None
    delivery = Delivery(
        id=new_id(),
        channel=Channel.APP_PUSH if push else Channel.SMS,
        state=DeliveryState.QUEUED,
        warning_id=None,
        user_id=person.user_id,
        phone_number=None if push else person.phone_number,
        guardian=False,
        carrier=None,
        carrier_message_id=None,
        attempts=0,
        last_error=None,
        create_time=now,
        update_time=now,
        text=text,
        purpose=purpose,
    )
    await deliveries_repo.insert_notification(uow.conn, delivery)
    return delivery


async def get(conn: AsyncConnection, notification_id: str) -> Delivery:
    found = await deliveries_repo.get(conn, notification_id)
    if found is None or found.warning_id is not None:
        raise NotFound(f"notifications/{notification_id} not found")
    return found
