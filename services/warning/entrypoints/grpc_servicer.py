"""The WarningService gRPC servicer: checks and converts requests, calls the service layer,
converts back. No SQL and no business rule here."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import grpc

from services.api.antifraud.warning.v1 import warning_pb2 as pb
from services.api.antifraud.warning.v1 import warning_pb2_grpc
from services.common import principals, regions, validation
from services.common.db import Database, UnitOfWork
from services.common.errors import InvalidArgument, NotFound
from services.common.idempotency import run_once
from services.common.indicators import IndicatorKind
from services.common.principals import Role
from services.common.validation import Violations, collecting
from services.warning.adapters import (
    bank_orders_repo,
    fanouts_repo,
    recent_contacts_repo,
    recipients_repo,
    stats_repo,
    tables,
    tasks_repo,
    warnings_repo,
)
from services.warning.adapters.banks import BankClient
from services.warning.adapters.directory import PartnerDirectory
from services.warning.domain import model
from services.warning.domain.model import (
    BankOrderState,
    BankOrderType,
    DeliveryState,
    HoldDisposition,
    NotificationPurpose,
    Person,
    RiskLevel,
    TaskOutcome,
    TaskState,
    TaskType,
    WarningState,
)
from services.warning.entrypoints import convert
from services.warning.service_layer import (
    access,
    bank_orders,
    contacts,
    notifications,
    privacy,
    push,
    recipients,
    sms,
    tasks,
    warnings,
)
from services.warning.service_layer.push import PushHub
from services.warning.service_layer.screening import Screener
from services.warning.settings import WarningSettings

Context = grpc.aio.ServicerContext[Any, Any]

MAX_TASK_CAP = 1_000_000
BANK_ACCOUNT_KINDS = frozenset({IndicatorKind.BANK_ACCOUNT, IndicatorKind.PAYMENT_ACCOUNT})


def _now() -> datetime:
    return datetime.now(UTC)


@dataclass
class Wiring:
    """What the servicer needs besides the database."""

    settings: WarningSettings
    hub: PushHub
    directory: PartnerDirectory
    wake_relay: Callable[[], None]
    screener: Screener
    #: The banks, for officers' acts on holds (extend, release, status query).
    banks: BankClient


class WarningServicer(warning_pb2_grpc.WarningServiceServicer):
    def __init__(self, db: Database, wiring: Wiring) -> None:
        self.db = db
        self.settings = wiring.settings
        self.hub = wiring.hub
        self.directory = wiring.directory
        self.wake_relay = wiring.wake_relay
        self.screener = wiring.screener
        self.banks = wiring.banks

    def _uow(self) -> UnitOfWork:
        return UnitOfWork(self.db)

    async def _person(self, uow: UnitOfWork, ref: tuple[str, str]) -> Person:
        kind, value = ref
        if kind == "user":
            return await warnings.resolve_user(uow.conn, value)
        return await warnings.resolve_phone(uow.conn, value)

    # Warnings

    async def DispatchWarning(
        self, request: pb.DispatchWarningRequest, context: Context
    ) -> pb.DispatchWarningResponse:
        with collecting() as v:
            request_id = validation.request_id(v, request.request_id)
            ref = convert.recipient_ref(
                v, "recipient", request.recipient, request.HasField("recipient")
            )
            level = validation.enum_value(v, "level", request.level, RiskLevel)
            if level == RiskLevel.NONE:
                v.add("level", "must be LOW, MEDIUM or HIGH")
            reason = convert.reason(v, "reason", request.reason, request.HasField("reason"))
            text = validation.text(
                v, "text", request.text, max_len=convert.MAX_TEXT, multiline=True
            )
        assert ref is not None
        assert level is not None
        assert reason is not None

        async def work(uow: UnitOfWork) -> pb.DispatchWarningResponse:
            person = await self._person(uow, ref)
            done = await warnings.dispatch(
                uow, self.settings, person, level, reason, text or None, _now()
            )
            return pb.DispatchWarningResponse(
                warning=convert.warning_pb(done.warning), suppressed=done.suppressed
            )

        response = await run_once(
            self._uow,
            tables.idempotency,
            "DispatchWarning",
            request_id,
            request,
            pb.DispatchWarningResponse,
            work,
        )
        self.hub.notify([response.warning.user_id or None])
        self.wake_relay()
        return response

    async def GetWarning(
        self, request: pb.GetWarningRequest, context: Context
    ) -> pb.GetWarningResponse:
        with collecting() as v:
            warning_id = convert.name(v, "name", request.name, "warnings")
        async with self.db.read(snapshot=True) as conn:
            found = await warnings.get(conn, warning_id)
        access.require_self_or_staff(found.user_id)
        return pb.GetWarningResponse(warning=convert.warning_pb(found))

    async def ListWarnings(
        self, request: pb.ListWarningsRequest, context: Context
    ) -> pb.ListWarningsResponse:
        with collecting() as v:
            where = warnings_repo.WarningFilter(
                user_id=convert.user_id(v, "user_id", request.user_id, required=False),
                phone_number=(
                    convert.phone_field(v, "phone_number", request.phone_number)
                    if request.phone_number
                    else None
                ),
                indicator=convert.optional_indicator(
                    v, "indicator", request.indicator, request.HasField("indicator")
                ),
                case_id=convert.case_id(v, "case_id", request.case_id, required=False),
                fanout_id=(
                    convert.name(v, "fanout", request.fanout, "fanouts") if request.fanout else None
                ),
                state=validation.enum_value(
                    v, "state", request.state, WarningState, required=False
                ),
            )
            size = validation.page_size(v, request.page_size)
            after = convert.page_after_time(v, request.page_token)
        access.require_self_or_staff(where.user_id)
        async with self.db.read(snapshot=True) as conn:
            found = await warnings_repo.list_page(conn, where, size, after)
        response = pb.ListWarningsResponse(warnings=[convert.warning_pb(w) for w in found[:size]])
        if len(found) > size:
            last = found[size - 1]
            response.next_page_token = convert.token_after(last.create_time, last.id)
        return response

    async def AcknowledgeWarning(
        self, request: pb.AcknowledgeWarningRequest, context: Context
    ) -> pb.AcknowledgeWarningResponse:
        with collecting() as v:
            warning_id = convert.name(v, "name", request.name, "warnings")
            user = convert.user_id(v, "user_id", request.user_id)
        assert user is not None
        access.require_self_or_staff(user)
        async with self._uow() as uow:
            found = await warnings.acknowledge(uow, warning_id, user, _now())
            await uow.commit()
        return pb.AcknowledgeWarningResponse(warning=convert.warning_pb(found))

    async def StreamWarnings(
        self, request: pb.StreamWarningsRequest, context: Context
    ) -> AsyncIterator[pb.StreamWarningsResponse]:
        with collecting() as v:
            user = convert.user_id(v, "user_id", request.user_id)
        assert user is not None
        access.require_self_or_staff(user)
        async with self.db.read() as conn:
            await recipients.get(conn, user)
        async for item in push.follow(self.hub, user):
            if isinstance(item, model.Warning):
                yield pb.StreamWarningsResponse(warning=convert.warning_pb(item))
            else:
                yield pb.StreamWarningsResponse(notification=convert.notification_pb(item))

    # Notifications

    async def SendNotification(
        self, request: pb.SendNotificationRequest, context: Context
    ) -> pb.SendNotificationResponse:
        with collecting() as v:
            request_id = validation.request_id(v, request.request_id)
            ref = convert.recipient_ref(
                v, "recipient", request.recipient, request.HasField("recipient")
            )
            text = validation.text(
                v, "text", request.text, max_len=convert.MAX_TEXT, required=True, multiline=True
            )
            purpose = validation.enum_value(v, "purpose", request.purpose, NotificationPurpose)
        assert ref is not None
        assert purpose is not None

        async def work(uow: UnitOfWork) -> pb.SendNotificationResponse:
            person = await self._person(uow, ref)
            sent = await notifications.send(uow, person, text, purpose, _now())
            return pb.SendNotificationResponse(notification=convert.notification_pb(sent))

        response = await run_once(
            self._uow,
            tables.idempotency,
            "SendNotification",
            request_id,
            request,
            pb.SendNotificationResponse,
            work,
        )
        self.hub.notify([response.notification.user_id or None])
        self.wake_relay()
        return response

    async def GetNotification(
        self, request: pb.GetNotificationRequest, context: Context
    ) -> pb.GetNotificationResponse:
        with collecting() as v:
            notification_id = convert.name(v, "name", request.name, "notifications")
        async with self.db.read() as conn:
            found = await notifications.get(conn, notification_id)
        return pb.GetNotificationResponse(notification=convert.notification_pb(found))

    # Recipients

    async def UpsertRecipient(
        self, request: pb.UpsertRecipientRequest, context: Context
    ) -> pb.UpsertRecipientResponse:
        given = request.recipient
        with collecting() as v:
            if not request.HasField("recipient"):
                v.add("recipient", "is required")
            user = convert.user_id(v, "recipient.user_id", given.user_id)
            number = convert.phone_field(v, "recipient.phone_number", given.phone_number)
            guardians: list[str] = []
            if len(given.guardian_phone_numbers) > recipients.MAX_GUARDIANS:
                v.add(
                    "recipient.guardian_phone_numbers",
                    f"must hold at most {recipients.MAX_GUARDIANS} numbers",
                )
            for i, raw in enumerate(given.guardian_phone_numbers):
                field = f"recipient.guardian_phone_numbers[{i}]"
                guardian = convert.phone_field(v, field, raw)
                if guardian is not None and guardian == number:
                    v.add(field, "is the user's own number")
                elif guardian is not None and guardian not in guardians:
                    guardians.append(guardian)
            region = given.region.strip()
            if region and (why := regions.problem(region)) is not None:
                v.add("recipient.region", why)
        assert user is not None
        assert number is not None
        async with self._uow() as uow:
            stored = await recipients.upsert(
                uow,
                user,
                number,
                given.protected,
                tuple(guardians),
                _now(),
                take_over=request.take_over_phone_number,
                region=region,
            )
            await uow.commit()
        return pb.UpsertRecipientResponse(recipient=convert.recipient_pb(stored))

    async def GetRecipient(
        self, request: pb.GetRecipientRequest, context: Context
    ) -> pb.GetRecipientResponse:
        with collecting() as v:
            user = convert.user_id(v, "user_id", request.user_id)
        assert user is not None
        access.require_self_or_staff(user)
        async with self.db.read() as conn:
            found = await recipients.get(conn, user)
        return pb.GetRecipientResponse(recipient=convert.recipient_pb(found))

    async def StopGuarding(
        self, request: pb.StopGuardingRequest, context: Context
    ) -> pb.StopGuardingResponse:
        with collecting() as v:
            user = convert.user_id(v, "user_id", request.user_id)
        assert user is not None
        access.require_self_or_staff(user)
        async with self._uow() as uow:
            profile = await recipients.get(uow.conn, user)
            removed = await recipients_repo.remove_guardian(uow.conn, profile.phone_number)
            await uow.commit()
        return pb.StopGuardingResponse(removed_count=removed)

    # Personal data (PIPL): composed by the gateway for the citizen it authenticated

    async def ExportPersonalData(
        self, request: pb.ExportPersonalDataRequest, context: Context
    ) -> pb.ExportPersonalDataResponse:
        user = self._internal_user(request.user_id)
        async with self._uow() as uow:
            found = await privacy.export(uow, user, _now())
            await uow.commit()  # the audit event is durable before the numbers leave
        response = pb.ExportPersonalDataResponse(
            warnings=[convert.warning_pb(w, unmasked=True) for w in found.warnings],
            contact_count=found.contact_count,
        )
        if found.recipient is not None:
            response.recipient.CopyFrom(convert.recipient_pb(found.recipient))
        return response

    async def ErasePersonalData(
        self, request: pb.ErasePersonalDataRequest, context: Context
    ) -> pb.ErasePersonalDataResponse:
        user = self._internal_user(request.user_id)
        async with self._uow() as uow:
            done = await privacy.erase(uow, user, _now())
            await uow.commit()
        return pb.ErasePersonalDataResponse(deleted_count=done)

    @staticmethod
    def _internal_user(raw: str) -> str:
        with collecting() as v:
            user = convert.user_id(v, "user_id", raw)
        assert user is not None
        access.require_internal("export and erasure go through the gateway's CitizenService")
        return user

    # Contact events

    async def RecordContactEvents(
        self, request: pb.RecordContactEventsRequest, context: Context
    ) -> pb.RecordContactEventsResponse:
        response, _ = await self._record_contacts(request, 0)
        return response

    async def _record_contacts(
        self, request: pb.RecordContactEventsRequest, start_index: int
    ) -> tuple[pb.RecordContactEventsResponse, bool]:
        """One batch of contact events; with a batch id, a batch already recorded returns its
        first response (and False: nothing counted now)."""
        convert.check_batch_size(len(request.events))
        if request.batch_id:
            with collecting() as v:
                validation.request_id(v, request.batch_id, field="batch_id")
        errors: list[pb.ContactEventError] = []
        now = _now()
        valid, rejected = convert.contact_events(request.events, start_index, now, errors)
        fresh: list[contacts.Recorded] = []

        async def work(uow: UnitOfWork) -> pb.RecordContactEventsResponse:
            recorded = await contacts.record(uow, valid, self.settings, now)
            fresh.append(recorded)
            return pb.RecordContactEventsResponse(
                accepted_count=recorded.accepted,
                rejected_count=rejected,
                expired_count=recorded.expired,
                errors=errors,
                ignored_count=recorded.ignored,
                warned_count=recorded.warned,
            )

        if request.batch_id:
            carrier = principals.caller().subject
            response = await run_once(
                self._uow,
                tables.idempotency,
                f"ContactBatch:{carrier}"[:64],
                request.batch_id,
                request,
                pb.RecordContactEventsResponse,
                work,
            )
        else:
            async with self._uow() as uow:
                response = await work(uow)
                await uow.commit()
        if fresh and fresh[0].warned:
            self.hub.notify(fresh[0].warned_users)
            self.wake_relay()
        return response, bool(fresh)

    async def StreamContactEvents(
        self, request_iterator: AsyncIterator[pb.StreamContactEventsRequest], context: Context
    ) -> pb.StreamContactEventsResponse:
        response = pb.StreamContactEventsResponse()
        errors: list[pb.ContactEventError] = []
        seen = 0
        async for request in request_iterator:
            batch = pb.RecordContactEventsRequest(events=request.events, batch_id=request.batch_id)
            recorded, counted = await self._record_contacts(batch, seen)
            seen += len(request.events)
            if not counted:
                response.duplicate_batch_count += 1
                continue
            response.accepted_count += recorded.accepted_count
            response.expired_count += recorded.expired_count
            response.ignored_count += recorded.ignored_count
            response.rejected_count += recorded.rejected_count
            response.warned_count += recorded.warned_count
            errors.extend(recorded.errors[: convert.MAX_CONTACT_ERRORS - len(errors)])
        response.errors.extend(errors)
        return response

    async def ScreenContactEvents(
        self, request: pb.ScreenContactEventsRequest, context: Context
    ) -> pb.ScreenContactEventsResponse:
        if not 1 <= len(request.events) <= convert.MAX_SCREENING_EVENTS:
            raise InvalidArgument.field(
                "events", f"must hold 1 to {convert.MAX_SCREENING_EVENTS} events"
            )
        who = principals.caller()
        carrier = who.subject if who.role is Role.CARRIER else f"{who.role}:{who.subject}"
        now = _now()
        given = convert.screening_events(request.events, now)
        valid = [e for _, e in given if not isinstance(e, str)]
        screened = iter(await self.screener.screen(carrier[:64], valid, now))
        response = pb.ScreenContactEventsResponse()
        for index, event in given:
            if isinstance(event, str):
                response.decisions.add(
                    event_id=request.events[index].event_id[: convert.MAX_EVENT_ID],
                    action=pb.SCREENING_ACTION_ALLOW,
                    error=event,
                    record_state=pb.SCREENING_RECORD_STATE_NOT_NEEDED,
                )
            else:
                response.decisions.append(convert.screening_decision_pb(next(screened)))
        return response

    async def ListFanouts(
        self, request: pb.ListFanoutsRequest, context: Context
    ) -> pb.ListFanoutsResponse:
        with collecting() as v:
            indicator = convert.optional_indicator(
                v, "indicator", request.indicator, request.HasField("indicator")
            )
            size = validation.page_size(v, request.page_size)
            after = convert.page_after_time(v, request.page_token)
        async with self.db.read() as conn:
            found = await fanouts_repo.list_page(conn, indicator, size, after)
            progress = await fanouts_repo.delivery_counts(conn, [f.id for f in found[:size]])
        response = pb.ListFanoutsResponse(
            fanouts=[convert.fanout_pb(f, progress[f.id]) for f in found[:size]]
        )
        if len(found) > size:
            last = found[size - 1]
            response.next_page_token = convert.token_after(last.create_time, last.id)
        return response

    async def _fanout(self, fanout_id: str) -> pb.Fanout:
        async with self.db.read() as conn:
            found = await fanouts_repo.get(conn, fanout_id)
            if found is None:
                raise NotFound(f"fanouts/{fanout_id} not found")
            progress = await fanouts_repo.delivery_counts(conn, [fanout_id])
        return convert.fanout_pb(found, progress[fanout_id])

    async def GetFanout(
        self, request: pb.GetFanoutRequest, context: Context
    ) -> pb.GetFanoutResponse:
        with collecting() as v:
            fanout_id = convert.name(v, "name", request.name, "fanouts")
        return pb.GetFanoutResponse(fanout=await self._fanout(fanout_id))

    async def UpdateFanout(
        self, request: pb.UpdateFanoutRequest, context: Context
    ) -> pb.UpdateFanoutResponse:
        caps: dict[str, int | None] = {}
        with collecting() as v:
            fanout_id = convert.name(v, "fanout.name", request.fanout.name, "fanouts")
            if not request.update_mask.paths:
                v.add("update_mask", "is required: call_task_cap, home_visit_task_cap")
            for path in request.update_mask.paths:
                if path not in ("call_task_cap", "home_visit_task_cap"):
                    v.add("update_mask", f"{path[:64]!r} cannot be changed")
                    continue
                if not request.fanout.HasField(path):
                    caps[path] = None  # no cap
                    continue
                value = getattr(request.fanout, path)
                if not 0 <= value <= MAX_TASK_CAP:
                    v.add(f"fanout.{path}", f"must be from 0 to {MAX_TASK_CAP}")
                caps[path] = value
        async with self._uow() as uow:
            if not await fanouts_repo.set_caps(uow.conn, fanout_id, caps, _now()):
                raise NotFound(f"fanouts/{fanout_id} not found")
            await uow.commit()
        return pb.UpdateFanoutResponse(fanout=await self._fanout(fanout_id))

    # Tasks

    async def ListTasks(
        self, request: pb.ListTasksRequest, context: Context
    ) -> pb.ListTasksResponse:
        with collecting() as v:
            type_ = validation.enum_value(v, "type", request.type, TaskType, required=False)
            state = validation.enum_value(v, "state", request.state, TaskState, required=False)
            operator = convert.user_id(v, "operator_id", request.operator_id, required=False)
            size = validation.page_size(v, request.page_size)
            after = convert.page_after_task(v, request.page_token)
        async with self.db.read() as conn:
            found = await tasks_repo.list_page(
                conn, _now(), type_, state, operator, size, after, access.task_region()
            )
        response = pb.ListTasksResponse(tasks=[convert.task_pb(t) for t in found[:size]])
        if len(found) > size:
            response.next_page_token = convert.token_after_task(found[size - 1])
        return response

    async def GetTask(self, request: pb.GetTaskRequest, context: Context) -> pb.GetTaskResponse:
        with collecting() as v:
            task_id = convert.name(v, "name", request.name, "tasks")
        async with self.db.read() as conn:
            found = await tasks.get(conn, task_id, _now(), access.task_region())
        return pb.GetTaskResponse(task=convert.task_pb(found))

    async def ClaimTask(
        self, request: pb.ClaimTaskRequest, context: Context
    ) -> pb.ClaimTaskResponse:
        with collecting() as v:
            operator = convert.user_id(v, "operator_id", access.as_operator(request.operator_id))
            task_id = convert.name(v, "name", request.name, "tasks") if request.name else None
            type_ = validation.enum_value(
                v, "type", request.type, TaskType, required=task_id is None
            )
        assert operator is not None
        async with self._uow() as uow:
            claimed = await tasks.claim(
                uow,
                operator,
                task_id,
                type_,
                _now(),
                self.settings.task_lease,
                access.task_region(),
            )
            await uow.commit()
        return pb.ClaimTaskResponse(task=convert.task_pb(claimed))

    async def CompleteTask(
        self, request: pb.CompleteTaskRequest, context: Context
    ) -> pb.CompleteTaskResponse:
        with collecting() as v:
            task_id = convert.name(v, "name", request.name, "tasks")
            operator = convert.user_id(v, "operator_id", access.as_operator(request.operator_id))
            outcome = validation.enum_value(v, "outcome", request.outcome, TaskOutcome)
            notes = validation.text(
                v, "notes", request.notes, max_len=convert.MAX_NOTES, multiline=True
            )
        assert operator is not None
        assert outcome is not None
        async with self._uow() as uow:
            done = await tasks.complete(
                uow, task_id, operator, outcome, notes or None, _now(), access.task_region()
            )
            await uow.commit()
        return pb.CompleteTaskResponse(task=convert.task_pb(done))

    # Receipts

    async def RecordDeliveryReceipt(
        self, request: pb.RecordDeliveryReceiptRequest, context: Context
    ) -> pb.RecordDeliveryReceiptResponse:
        with collecting() as v:
            carrier = validation.text(
                v,
                "carrier",
                access.as_partner("carrier", request.carrier, Role.CARRIER),
                max_len=32,
                required=True,
            )
            message_id = validation.text(
                v, "carrier_message_id", request.carrier_message_id, max_len=128, required=True
            )
            state = validation.enum_value(v, "state", request.state, DeliveryState)
            if state is not None and state not in sms.RECEIPT_STATES:
                v.add("state", "must be DELIVERED or FAILED")
            reason = validation.text(v, "reason", request.reason, max_len=convert.MAX_REASON)
        assert state is not None
        async with self._uow() as uow:
            delivery = await sms.record_receipt(uow, carrier, message_id, state, reason, _now())
            await uow.commit()
        return pb.RecordDeliveryReceiptResponse(delivery=convert.delivery_pb(delivery))

    # Bank orders

    async def CreateBankOrder(
        self, request: pb.CreateBankOrderRequest, context: Context
    ) -> pb.CreateBankOrderResponse:
        with collecting() as v:
            request_id = validation.request_id(v, request.request_id)
            order_type = validation.enum_value(v, "order_type", request.order_type, BankOrderType)
            account = None
            if not request.HasField("account"):
                v.add("account", "is required")
            else:
                account = validation.indicator(
                    v, "account", request.account.kind, request.account.value
                )
            if account is not None and account.kind not in BANK_ACCOUNT_KINDS:
                v.add("account.kind", "must be BANK_ACCOUNT or PAYMENT_ACCOUNT")
            case = convert.case_id(v, "case_id", request.case_id, required=True)
            amount = convert.money(
                v,
                "amount",
                request.amount,
                request.HasField("amount"),
                required=order_type == BankOrderType.STOP_PAYMENT,
            )
            reason = validation.text(
                v, "reason", request.reason, max_len=convert.MAX_REASON, required=True
            )
            filed = validation.optional_time(
                v, "case_file_time", request.case_file_time, request.HasField("case_file_time")
            )
            references = validation.references(
                v, "transaction_references", request.transaction_references
            )
            instrument = validation.reference(v, "legal_instrument_id", request.legal_instrument_id)
            victim = convert.user_id(v, "victim_user_id", request.victim_user_id, required=False)
        assert order_type is not None
        assert account is not None
        assert case is not None

        async def work(uow: UnitOfWork) -> pb.CreateBankOrderResponse:
            order = await bank_orders.create(
                uow,
                self.directory,
                order_type,
                account,
                case,
                amount,
                reason,
                _now(),
                transaction_references=references,
                legal_instrument_id=instrument,
                victim_user_id=victim or "",
                case_file_time=filed,
            )
            return pb.CreateBankOrderResponse(bank_order=convert.bank_order_pb(order))

        response = await run_once(
            self._uow,
            tables.idempotency,
            "CreateBankOrder",
            request_id,
            request,
            pb.CreateBankOrderResponse,
            work,
        )
        self.wake_relay()
        return response

    async def GetBankOrder(
        self, request: pb.GetBankOrderRequest, context: Context
    ) -> pb.GetBankOrderResponse:
        with collecting() as v:
            order_id = convert.name(v, "name", request.name, "bankOrders")
        async with self.db.read() as conn:
            found = await bank_orders.get(conn, order_id)
        bank = access.bank_scope()
        if bank is not None and found.bank != bank:
            # Another bank's order does not exist as far as this bank can tell.
            raise NotFound(f"no bank order {request.name}")
        return pb.GetBankOrderResponse(bank_order=convert.bank_order_pb(found))

    async def ListBankOrders(
        self, request: pb.ListBankOrdersRequest, context: Context
    ) -> pb.ListBankOrdersResponse:
        with collecting() as v:
            case = convert.case_id(v, "case_id", request.case_id, required=False)
            state = validation.enum_value(v, "state", request.state, BankOrderState, required=False)
            size = validation.page_size(v, request.page_size)
            after = convert.page_after_time(v, request.page_token)
        async with self.db.read() as conn:
            found = await bank_orders_repo.list_page(
                conn, case, state, size, after, bank=access.bank_scope()
            )
        response = pb.ListBankOrdersResponse(
            bank_orders=[convert.bank_order_pb(o) for o in found[:size]]
        )
        if len(found) > size:
            last = found[size - 1]
            response.next_page_token = convert.token_after(last.create_time, last.id)
        return response

    async def ExtendBankOrder(
        self, request: pb.ExtendBankOrderRequest, context: Context
    ) -> pb.ExtendBankOrderResponse:
        with collecting() as v:
            validation.request_id(v, request.request_id)
            order_id = convert.name(v, "name", request.name, "bankOrders")
            instrument = validation.reference(
                v, "legal_instrument_id", request.legal_instrument_id, required=True
            )
        found = await bank_orders.extend(
            self.db, self.banks, order_id, request.request_id, instrument
        )
        return pb.ExtendBankOrderResponse(bank_order=convert.bank_order_pb(found))

    async def ReleaseBankOrder(
        self, request: pb.ReleaseBankOrderRequest, context: Context
    ) -> pb.ReleaseBankOrderResponse:
        with collecting() as v:
            validation.request_id(v, request.request_id)
            order_id = convert.name(v, "name", request.name, "bankOrders")
            disposition = validation.enum_value(
                v, "disposition", request.disposition, HoldDisposition
            )
            instrument = validation.reference(
                v, "legal_instrument_id", request.legal_instrument_id, required=True
            )
            reason = validation.text(
                v, "reason", request.reason, max_len=convert.MAX_REASON, required=True
            )
        assert disposition is not None
        found = await bank_orders.release(
            self.db, self.banks, order_id, request.request_id, disposition, instrument, reason
        )
        return pb.ReleaseBankOrderResponse(bank_order=convert.bank_order_pb(found))

    async def RefreshBankOrder(
        self, request: pb.RefreshBankOrderRequest, context: Context
    ) -> pb.RefreshBankOrderResponse:
        with collecting() as v:
            order_id = convert.name(v, "name", request.name, "bankOrders")
        found = await bank_orders.refresh(self.db, self.banks, order_id)
        return pb.RefreshBankOrderResponse(bank_order=convert.bank_order_pb(found))

    async def CheckRecentContacts(
        self, request: pb.CheckRecentContactsRequest, context: Context
    ) -> pb.CheckRecentContactsResponse:
        with collecting() as v:
            number = convert.phone_field(v, "phone_number", request.phone_number)
            days = (
                validation.integer(v, "days", request.days, minimum=1, maximum=30)
                if request.days
                else 7
            )
        assert number is not None
        async with self.db.read() as conn:
            found = await recent_contacts_repo.risky_contacts(
                conn, number, _now() - timedelta(days=days)
            )
        return pb.CheckRecentContactsResponse(
            risky_number_count=found.numbers,
            highest_level=int(found.highest or 0),  # type: ignore[arg-type]
            last_contact_time=convert.ts(found.last_time),
        )

    async def GetWarningStats(
        self, request: pb.GetWarningStatsRequest, context: Context
    ) -> pb.GetWarningStatsResponse:
        since = None
        if request.HasField("start_time"):
            v = Violations()
            since = validation.time_of(v, "start_time", request.start_time)
            if v.items:
                raise InvalidArgument(v.items)
        async with self.db.read() as conn:
            found = await stats_repo.counts(conn, since)
        return convert.stats_pb(found)
