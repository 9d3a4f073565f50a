"""Calls to bank partners (antifraud.partner.v1.BankService): stop-payment and freeze orders."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC

import grpc

from services.api.antifraud.common.v1 import common_pb2
from services.api.antifraud.partner.v1 import bank_pb2
from services.common.errors import DomainError, FailedPrecondition, Unavailable
from services.partners.directory import PartnerClients
from services.warning.adapters.partner_errors import from_rpc_error
from services.warning.domain.model import (
    BankOrder,
    BankOrderState,
    BankOrderType,
    Hold,
    HoldDisposition,
    Money,
)

CALL_SECONDS = 10.0


@dataclass(frozen=True)
class BankAnswer:
    """The bank took the order (with its reference) or refused it for good."""

    acknowledged: bool
    reference: str
    detail: str = ""
    #: Refused because the bank does not hold the account (another bank may).
    not_held: bool = False
    #: On acknowledgement: what the bank holds and until when.
    hold: Hold | None = None


_HOLD_STATES = {
    bank_pb2.HOLD_STATE_HELD: BankOrderState.ACKNOWLEDGED,
    bank_pb2.HOLD_STATE_RELEASED: BankOrderState.RELEASED,
    bank_pb2.HOLD_STATE_RETURNED: BankOrderState.RETURNED,
    bank_pb2.HOLD_STATE_EXPIRED: BankOrderState.EXPIRED,
}


def _officer_error(bank: str, error: grpc.aio.AioRpcError) -> DomainError:
    """An officer's call on a hold, answered at once: the bank's refusal as it is (the hold
    ended, the bank never gave that reference), anything else as try again."""
    detail = (error.details() or "")[:200]
    if error.code() in (grpc.StatusCode.FAILED_PRECONDITION, grpc.StatusCode.NOT_FOUND):
        return FailedPrecondition(f"{bank}: {detail}")
    return Unavailable(
        f"{bank} did not answer ({error.code().name}); retry with the same request id"
    )


def _money(message: common_pb2.Money) -> Money:
    return Money(message.currency_code or "CNY", message.units, message.nanos)


def _hold(order: bank_pb2.PaymentOrder) -> Hold:
    return Hold(
        state=_HOLD_STATES.get(order.hold_state, BankOrderState.ACKNOWLEDGED),
        held_amount=_money(order.held_amount) if order.HasField("held_amount") else None,
        expire_time=(
            order.expire_time.ToDatetime(tzinfo=UTC) if order.HasField("expire_time") else None
        ),
        legal_instrument_id=order.legal_instrument_id,
    )


class BankClient:
    """Orders carry the order id as idempotency key, so the directory's channels retry
    UNAVAILABLE on them and the outbox retries everything else."""

    def __init__(self, partners: PartnerClients, authority: str) -> None:
        self._partners = partners
        self._authority = authority

    async def send(self, bank: str, order: BankOrder) -> BankAnswer:
        account = common_pb2.Indicator(
            kind=f"INDICATOR_KIND_{order.account.kind.name}", value=order.account.value
        )
        amount = None
        if order.amount is not None:
            amount = common_pb2.Money(
                currency_code=order.amount.currency_code,
                units=order.amount.units,
                nanos=order.amount.nanos,
            )
        stub = self._partners.bank(bank)
        try:
            reply: bank_pb2.StopPaymentResponse | bank_pb2.FreezeAccountResponse
            if order.order_type == BankOrderType.STOP_PAYMENT:
                reply = await stub.StopPayment(
                    bank_pb2.StopPaymentRequest(
                        idempotency_key=order.id,
                        account=account,
                        case_reference=order.case_id,
                        amount=amount,
                        reason=order.reason,
                        requesting_authority=self._authority,
                        transaction_references=list(order.transaction_references),
                        legal_instrument_id=order.legal_instrument_id,
                    ),
                    timeout=CALL_SECONDS,
                )
            else:
                reply = await stub.FreezeAccount(
                    bank_pb2.FreezeAccountRequest(
                        idempotency_key=order.id,
                        account=account,
                        case_reference=order.case_id,
                        amount=amount,
                        reason=order.reason,
                        requesting_authority=self._authority,
                        transaction_references=list(order.transaction_references),
                        legal_instrument_id=order.legal_instrument_id,
                    ),
                    timeout=CALL_SECONDS,
                )
        except grpc.aio.AioRpcError as exc:
            raise from_rpc_error(bank, exc) from None
        if reply.state == bank_pb2.PAYMENT_ORDER_STATE_ACKNOWLEDGED:
            hold = Hold(
                state=BankOrderState.ACKNOWLEDGED,
                held_amount=(
                    _money(reply.held_amount) if reply.HasField("held_amount") else order.amount
                ),
                expire_time=(
                    reply.expire_time.ToDatetime(tzinfo=UTC)
                    if reply.HasField("expire_time")
                    else None
                ),
                legal_instrument_id=order.legal_instrument_id,
            )
            return BankAnswer(True, reply.order_reference, hold=hold)
        reason = bank_pb2.PaymentOrderRejectReason.Name(reply.reject_reason)
        return BankAnswer(
            False,
            "",
            f"{reason}: {reply.reject_detail}"[:500],
            not_held=reply.reject_reason == bank_pb2.PAYMENT_ORDER_REJECT_REASON_ACCOUNT_NOT_FOUND,
        )

    async def get_order(self, bank: str, reference: str) -> Hold:
        """Where a hold stands at its bank now (the status query)."""
        request = bank_pb2.GetPaymentOrderRequest(order_reference=reference)
        try:
            reply = await self._partners.bank(bank).GetPaymentOrder(request, timeout=CALL_SECONDS)
        except grpc.aio.AioRpcError as exc:
            raise _officer_error(bank, exc) from None
        return _hold(reply.order)

    async def extend(self, bank: str, key: str, reference: str, instrument: str) -> Hold:
        request = bank_pb2.ExtendHoldRequest(
            idempotency_key=key, order_reference=reference, legal_instrument_id=instrument
        )
        try:
            reply = await self._partners.bank(bank).ExtendHold(request, timeout=CALL_SECONDS)
        except grpc.aio.AioRpcError as exc:
            raise _officer_error(bank, exc) from None
        return _hold(reply.order)

    async def release(
        self,
        bank: str,
        key: str,
        reference: str,
        disposition: HoldDisposition,
        instrument: str,
        reason: str,
    ) -> Hold:
        request = bank_pb2.ReleaseHoldRequest(
            idempotency_key=key,
            order_reference=reference,
            disposition=int(disposition),  # type: ignore[arg-type]
            legal_instrument_id=instrument,
            reason=reason,
        )
        try:
            reply = await self._partners.bank(bank).ReleaseHold(request, timeout=CALL_SECONDS)
        except grpc.aio.AioRpcError as exc:
            raise _officer_error(bank, exc) from None
        return _hold(reply.order)
