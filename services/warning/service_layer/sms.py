"""SMS deliveries: sent from the outbox, then followed until the carrier says where they are.

Each SMS delivery has an outbox event written with it. The relay calls
``SmsSender`` (with retries and backoff); the delivery id is the carrier's
idempotency key, so a crash after the carrier took the SMS and before we
recorded it repeats the call, never the SMS. ``SmsPoller`` then asks the
carrier (GetSmsDelivery) until the SMS is delivered or failed; carriers that
push receipts reach ``record_receipt`` instead.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncConnection

from services.common import metrics
from services.common.db import Database, UnitOfWork
from services.common.errors import InvalidArgument, NotFound
from services.common.group_commit import BatchSettings, GroupCommit
from services.common.logs import get_logger
from services.common.outbox import OutboxEvent, PermanentFailure
from services.common.vault import Vault
from services.warning.adapters import deliveries_repo, warnings_repo
from services.warning.adapters.carriers import CarrierClient
from services.warning.adapters.deliveries_repo import SendOutcome
from services.warning.adapters.directory import PartnerDirectory
from services.warning.adapters.partner_errors import PartnerError
from services.warning.adapters.sms_jobs import SmsJob
from services.warning.domain.model import Channel, Delivery, DeliveryState
from services.warning.domain.texts import SMS_SENDER_ID

log = get_logger("warning.sms")

POLL_BATCH = 200
POLL_CONCURRENCY = 32
#: A claimed poll is not claimed again by another replica for this long.
POLL_HOLD = timedelta(seconds=30)
MAX_POLL_INTERVAL_SECONDS = 60.0


def _now() -> datetime:
    return datetime.now(UTC)


async def _record_outcomes(conn: AsyncConnection, outcomes: list[SendOutcome]) -> None:
    touched = await deliveries_repo.record_send_outcomes(conn, outcomes)
    await warnings_repo.refresh_states(conn, touched, _now())


class SmsSender:
    """The outbox handler of the SMS topics (``warnings_repo.SMS_TOPICS``). Outcomes are
    committed in groups (one transaction for all sends that finish together) before each
    handler returns."""

    def __init__(
        self,
        db: Database,
        carriers: CarrierClient,
        directory: PartnerDirectory,
        max_attempts: int,
        first_poll_seconds: float,
        batching: BatchSettings | None = None,
    ) -> None:
        self.db = db
        self.carriers = carriers
        self.directory = directory
        self.max_attempts = max_attempts
        self.first_poll = timedelta(seconds=first_poll_seconds)
        self.outcomes: GroupCommit[SendOutcome, None] = GroupCommit.of_writes(
            db, _record_outcomes, batching, name="warning-sms-outcomes"
        )

    @property
    def vault(self) -> Vault:
        assert self.db.vault is not None, "the warning service attaches its vault first"
        return self.db.vault

    async def stop(self) -> None:
        await self.outcomes.stop()

    async def __call__(self, event: OutboxEvent) -> None:
        # No read first: a delivery already sent (a retry after a crash or a lost lease) is
        # answered from the carrier's idempotency record, and only a QUEUED row takes it.
        job = SmsJob.decode(self.vault, event.payload)
        carrier = self.directory.carrier_for(job.phone_number)
        if carrier is None:
            await self._fail(job, "no partner carrier serves the number", event.attempts)
            raise PermanentFailure("no partner carrier serves the number")
        try:
            submitted = await self.carriers.send_sms(
                carrier, job.delivery_id, job.phone_number, job.text, job.flash, SMS_SENDER_ID
            )
        except PartnerError as exc:
            if exc.permanent or event.attempts >= self.max_attempts:
                await self._fail(job, str(exc), event.attempts, carrier)
                raise PermanentFailure(str(exc)) from None
            await self.outcomes.write(
                SendOutcome(
                    job.delivery_id,
                    job.warning_id,
                    DeliveryState.QUEUED,
                    event.attempts,
                    _now(),
                    error=str(exc),
                )
            )
            _count(job, "retry")
            raise
        if not submitted.accepted:
            detail = f"carrier refused: {submitted.detail}"
            await self._fail(job, detail, event.attempts, carrier)
            raise PermanentFailure(detail)
        now = _now()
        await self.outcomes.write(
            SendOutcome(
                job.delivery_id,
                job.warning_id,
                DeliveryState.SENT,
                event.attempts,
                now,
                carrier=carrier,
                message_id=submitted.message_id,
                first_poll=now + self.first_poll,
            )
        )
        _count(job, "sent")

    async def _fail(
        self, job: SmsJob, error: str, attempts: int, carrier: str | None = None
    ) -> None:
        await self.outcomes.write(
            SendOutcome(
                job.delivery_id,
                job.warning_id,
                DeliveryState.FAILED,
                attempts,
                _now(),
                carrier=carrier,
                error=error,
            )
        )
        _count(job, "failed")
        log.warning(
            "sms delivery failed", delivery_id=job.delivery_id, carrier=carrier, error=error
        )


def _count(job: SmsJob, outcome: str) -> None:
    channel = Channel.FLASH_SMS if job.flash else Channel.SMS
    metrics.DELIVERIES.labels(channel.name.lower(), outcome).inc()


@dataclass
class SmsPoller:
    """Asks carriers where SENT messages are, backing off as they age.

    While the outbox relay has more SMS waiting than one batch (``sending``: a fan-out's
    thousands), a full batch of polls is followed by a pause rather than the next batch:
    the process's one core goes first to warnings nobody has received yet, and the
    receipts of those already with the carrier follow (none is lost: a due poll stays due).
    """

    db: Database
    carriers: CarrierClient
    poll_seconds: float
    wake_relay: Callable[[], None]
    sending: Callable[[], bool] = lambda: False

    async def step(self) -> float:
        claimed = await self.poll_once()
        if claimed < POLL_BATCH:
            return self.poll_seconds / 2
        return self.poll_seconds if self.sending() else 0.0

    async def poll_once(self) -> int:
        now = _now()
        async with UnitOfWork(self.db) as uow:
            polls = await deliveries_repo.claim_polls(uow.conn, now, POLL_BATCH, POLL_HOLD)
            await uow.commit()
        if not polls:
            return 0
        slots = asyncio.Semaphore(POLL_CONCURRENCY)

        async def ask(poll: deliveries_repo.Poll) -> DeliveryState | PartnerError | None:
            async with slots:
                try:
                    return await self.carriers.delivery_state(poll.carrier, poll.message_id)
                except PartnerError as exc:
                    return exc

        answers = await asyncio.gather(*(ask(p) for p in polls))
        now = _now()
        changes: dict[str, tuple[DeliveryState, str | None]] = {}
        later: dict[str, datetime] = {}
        lost: list[str] = []
        for poll, answer in zip(polls, answers, strict=True):
            if isinstance(answer, PartnerError) and answer.unknown:
                # The carrier lost the message (a restart): send it again under the same
                # idempotency key, rather than fail a warning nobody received.
                lost.append(poll.delivery_id)
            elif isinstance(answer, PartnerError) and answer.permanent:
                changes[poll.delivery_id] = (DeliveryState.FAILED, str(answer))
            elif answer is None or isinstance(answer, PartnerError):
                later[poll.delivery_id] = now + self._interval(now - poll.sent_time)
            elif answer == DeliveryState.FAILED:
                changes[poll.delivery_id] = (answer, "the carrier could not deliver the SMS")
            else:
                changes[poll.delivery_id] = (answer, None)
        async with UnitOfWork(self.db) as uow:
            touched = await deliveries_repo.advance(uow.conn, changes, now)
            await deliveries_repo.reschedule_polls(uow.conn, later)
            await deliveries_repo.resubmit(uow.conn, lost, now)
            await warnings_repo.refresh_states(uow.conn, touched, now)
            await uow.commit()
        if lost:
            log.warning("carrier lost sms; re-submitted", count=len(lost))
            self.wake_relay()
        return len(polls)

    def _interval(self, age: timedelta) -> timedelta:
        """Ask often about a fresh SMS, rarely about one that has waited long."""
        seconds = min(MAX_POLL_INTERVAL_SECONDS, max(self.poll_seconds, age.total_seconds() / 4))
        return timedelta(seconds=seconds)


RECEIPT_STATES = frozenset({DeliveryState.DELIVERED, DeliveryState.FAILED})


async def record_receipt(
    uow: UnitOfWork, carrier: str, message_id: str, state: DeliveryState, reason: str, now: datetime
) -> Delivery:
    """A receipt a carrier pushed; a late or repeated one leaves the delivery as it is."""
    if state not in RECEIPT_STATES:
        raise InvalidArgument.field("state", "must be DELIVERED or FAILED")
    found = await deliveries_repo.by_message(uow.conn, carrier, message_id)
    if found is None:
        raise NotFound(f"no SMS with message id {message_id} was sent through {carrier}")
    error = (reason or "the carrier reported a failure") if state == DeliveryState.FAILED else None
    touched = await deliveries_repo.advance(uow.conn, {found.id: (state, error)}, now)
    await warnings_repo.refresh_states(uow.conn, touched, now)
    updated = await deliveries_repo.get(uow.conn, found.id)
    assert updated is not None
    return updated
