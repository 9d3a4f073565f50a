"""BankService of a bank simulator: proto <-> domain, through the gate."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Protocol

from services.api.antifraud.common.v1 import common_pb2
from services.api.antifraud.partner.v1 import bank_pb2 as pb
from services.api.antifraud.partner.v1 import bank_pb2_grpc
from services.common import resident_id, validation
from services.common.errors import FailedPrecondition, NotFound
from services.common.indicators import Indicator, IndicatorKind, display
from services.common.validation import Violations, collecting, text
from services.partners.domain.bank import (
    Amount,
    Bank,
    Disposition,
    Hold,
    HoldEnded,
    OrderKind,
    OrderOutcome,
    OrderRequest,
)
from services.partners.domain.names import mask_name
from services.partners.domain.payee import PayeeNameMatch
from services.partners.domain.routing import DISPLAY_NAMES
from services.partners.entrypoints import fields
from services.partners.entrypoints.fields import Context
from services.partners.entrypoints.gate import Gate, Summary

MAX_CASE_REFERENCE = 64
MAX_REASON = 500


class _OrderMessage(Protocol):
    """What StopPaymentRequest and FreezeAccountRequest have in common."""

    idempotency_key: str
    account: common_pb2.Indicator
    case_reference: str
    amount: common_pb2.Money
    reason: str
    requesting_authority: str
    legal_instrument_id: str

    @property
    def transaction_references(self) -> Sequence[str]: ...

    def HasField(self, field_name: str) -> bool: ...


def _amount_text(amount: Amount | None) -> str:
    return "whole balance" if amount is None else f"{amount.value:.2f} {amount.currency}"


class BankServicer(bank_pb2_grpc.BankServiceServicer):
    def __init__(self, bank: Bank, gate: Gate) -> None:
        self.bank = bank
        self.gate = gate
        self.display_name = DISPLAY_NAMES.get(bank.name, bank.name)

    def _order(self, v: Violations, kind: OrderKind, request: _OrderMessage) -> OrderRequest:
        fields.idempotency_key(v, request.idempotency_key)
        account = fields.account(v, "account", request.HasField("account"), request.account)
        case_reference = text(
            v, "case_reference", request.case_reference, max_len=MAX_CASE_REFERENCE, required=True
        )
        amount = fields.amount(
            v, "amount", request.HasField("amount"), request.amount,
            required=kind is OrderKind.STOP_PAYMENT,
        )  # fmt: skip
        reason = text(v, "reason", request.reason, max_len=MAX_REASON, required=True)
        authority = text(
            v, "requesting_authority", request.requesting_authority,
            max_len=fields.MAX_REFERENCE, required=True,
        )  # fmt: skip
        references = validation.references(
            v, "transaction_references", request.transaction_references
        )
        instrument = validation.reference(v, "legal_instrument_id", request.legal_instrument_id)
        return OrderRequest(
            kind, account, case_reference, amount, reason, authority, references, instrument
        )

    def _summary(self, order: OrderRequest, outcome: OrderOutcome, state: str) -> Summary:
        return {
            "masked_account": display(order.account),
            "case_reference": order.case_reference,
            "amount": _amount_text(order.amount),
            "requesting_authority": order.requesting_authority,
            "state": state,
            "order_reference": outcome.reference,
        }

    def _fill(
        self, response: pb.StopPaymentResponse | pb.FreezeAccountResponse, outcome: OrderOutcome
    ) -> str:
        response.acknowledge_time.CopyFrom(fields.timestamp(outcome.answer_time))
        if outcome.reject_reason is None:
            response.order_reference = outcome.reference
            response.state = pb.PAYMENT_ORDER_STATE_ACKNOWLEDGED
            if outcome.expire_time is not None:
                response.expire_time.CopyFrom(fields.timestamp(outcome.expire_time))
            if outcome.held is not None:
                response.held_amount.CopyFrom(fields.money_pb(outcome.held))
        else:
            response.state = pb.PAYMENT_ORDER_STATE_REJECTED
            response.reject_reason = int(outcome.reject_reason)  # type: ignore[assignment]
            response.reject_detail = outcome.reject_detail
        return pb.PaymentOrderState.Name(response.state)

    async def StopPayment(
        self, request: pb.StopPaymentRequest, context: Context
    ) -> pb.StopPaymentResponse:
        with collecting() as v:
            order = self._order(v, OrderKind.STOP_PAYMENT, request)

        def answer() -> tuple[pb.StopPaymentResponse, Summary]:
            outcome = self.bank.place_order(order, now=fields.now())
            response = pb.StopPaymentResponse()
            state = self._fill(response, outcome)
            return response, self._summary(order, outcome, state)

        return await self.gate.effect("StopPayment", request.idempotency_key, request, answer)

    async def FreezeAccount(
        self, request: pb.FreezeAccountRequest, context: Context
    ) -> pb.FreezeAccountResponse:
        with collecting() as v:
            order = self._order(v, OrderKind.FREEZE, request)

        def answer() -> tuple[pb.FreezeAccountResponse, Summary]:
            outcome = self.bank.place_order(order, now=fields.now())
            response = pb.FreezeAccountResponse()
            state = self._fill(response, outcome)
            return response, self._summary(order, outcome, state)

        return await self.gate.effect("FreezeAccount", request.idempotency_key, request, answer)

    async def ListCards(
        self, request: pb.ListCardsRequest, context: Context
    ) -> pb.ListCardsResponse:
        with collecting() as v:
            id_number = fields.resident_id_number(
                v, "resident_id_number", request.resident_id_number
            )
            name = fields.person_name(v, "name", request.name)
            limit, offset = fields.page(v, request.page_size, request.page_token)
            consent = fields.consent_reference(v, request.consent_reference)

        def answer() -> tuple[pb.ListCardsResponse, Summary]:
            cards = self.bank.cards(id_number, name)
            response = pb.ListCardsResponse(
                cards=[
                    pb.BankCard(
                        bank_name=self.display_name,
                        card_type=int(card.card_type),  # type: ignore[arg-type]
                        masked_card_number=_masked_card(card.number),
                    )
                    for card in cards[offset : offset + limit]
                ],
                next_page_token=fields.next_page_token(offset, limit, len(cards)),
            )
            summary = {
                "masked_resident_id_number": resident_id.mask(id_number),
                "card_count": str(len(cards)),
                "consent_reference": consent,
            }
            return response, summary

        return await self.gate.read("ListCards", answer)

    async def CheckPayeeName(
        self, request: pb.CheckPayeeNameRequest, context: Context
    ) -> pb.CheckPayeeNameResponse:
        with collecting() as v:
            account = fields.account(v, "account", request.HasField("account"), request.account)
            typed = fields.person_name(v, "payee_name", request.payee_name)

        def answer() -> tuple[pb.CheckPayeeNameResponse, Summary]:
            match, holder = self.bank.check_payee(account, typed)
            response = pb.CheckPayeeNameResponse(match=int(match))  # type: ignore[arg-type]
            if match in (PayeeNameMatch.MATCH, PayeeNameMatch.CLOSE_MATCH):
                response.masked_account_name = mask_name(holder)
            summary = {"masked_account": display(account), "match": pb.PayeeNameMatch.Name(match)}
            return response, summary

        return await self.gate.read("CheckPayeeName", answer)

    async def ConfirmAccountHolder(
        self, request: pb.ConfirmAccountHolderRequest, context: Context
    ) -> pb.ConfirmAccountHolderResponse:
        with collecting() as v:
            account = fields.account(
                v, "account", request.HasField("account"), request.account,
                kinds=fields.HOLDER_KINDS,
            )  # fmt: skip
            id_number = fields.resident_id_number(
                v, "resident_id_number", request.resident_id_number
            )
            name = fields.person_name(v, "name", request.name)
            consent = fields.consent_reference(v, request.consent_reference)

        def answer() -> tuple[pb.ConfirmAccountHolderResponse, Summary]:
            match = self.bank.confirm_holder(account, id_number, name)
            response = pb.ConfirmAccountHolderResponse(
                holder_match=int(match)  # type: ignore[arg-type]
            )
            summary = {
                "masked_account": display(account),
                "masked_resident_id_number": resident_id.mask(id_number),
                "holder_match": pb.HolderMatch.Name(match),
                "consent_reference": consent,
            }
            return response, summary

        return await self.gate.read("ConfirmAccountHolder", answer)

    def _reference(self, v: Violations, value: str) -> str:
        return text(v, "order_reference", value, max_len=fields.MAX_REFERENCE, required=True)

    async def GetPaymentOrder(
        self, request: pb.GetPaymentOrderRequest, context: Context
    ) -> pb.GetPaymentOrderResponse:
        with collecting() as v:
            reference = self._reference(v, request.order_reference)

        def answer() -> tuple[pb.GetPaymentOrderResponse, Summary]:
            hold = self.bank.hold(reference, now=fields.now())
            if hold is None:
                raise NotFound("no order with this reference at this bank")
            return pb.GetPaymentOrderResponse(order=_order_pb(hold)), _hold_summary(hold)

        return await self.gate.read("GetPaymentOrder", answer)

    async def ExtendHold(
        self, request: pb.ExtendHoldRequest, context: Context
    ) -> pb.ExtendHoldResponse:
        with collecting() as v:
            fields.idempotency_key(v, request.idempotency_key)
            reference = self._reference(v, request.order_reference)
            instrument = validation.reference(
                v, "legal_instrument_id", request.legal_instrument_id, required=True
            )

        def answer() -> tuple[pb.ExtendHoldResponse, Summary]:
            hold = _on_hold(lambda: self.bank.extend_hold(reference, instrument, now=fields.now()))
            return pb.ExtendHoldResponse(order=_order_pb(hold)), _hold_summary(hold)

        return await self.gate.effect("ExtendHold", request.idempotency_key, request, answer)

    async def ReleaseHold(
        self, request: pb.ReleaseHoldRequest, context: Context
    ) -> pb.ReleaseHoldResponse:
        with collecting() as v:
            fields.idempotency_key(v, request.idempotency_key)
            reference = self._reference(v, request.order_reference)
            disposition = validation.enum_value(v, "disposition", request.disposition, Disposition)
            instrument = validation.reference(
                v, "legal_instrument_id", request.legal_instrument_id, required=True
            )
            text(v, "reason", request.reason, max_len=MAX_REASON, required=True)
        assert disposition is not None

        def answer() -> tuple[pb.ReleaseHoldResponse, Summary]:
            hold = _on_hold(
                lambda: self.bank.release_hold(reference, disposition, instrument, now=fields.now())
            )
            return pb.ReleaseHoldResponse(order=_order_pb(hold)), _hold_summary(hold)

        return await self.gate.effect("ReleaseHold", request.idempotency_key, request, answer)


def _on_hold(act: Callable[[], Hold]) -> Hold:
    """A bank act on a hold, its refusals as status codes."""
    try:
        return act()
    except KeyError:
        raise NotFound("no order with this reference at this bank") from None
    except HoldEnded as exc:
        raise FailedPrecondition(str(exc)) from None


def _order_pb(hold: Hold) -> pb.PaymentOrder:
    message = pb.PaymentOrder(
        order_reference=hold.reference,
        hold_state=int(hold.state),  # type: ignore[arg-type]
        expire_time=fields.timestamp(hold.expire_time),
        legal_instrument_id=hold.legal_instrument_id,
        update_time=fields.timestamp(hold.update_time),
    )
    if hold.held is not None:
        message.held_amount.CopyFrom(fields.money_pb(hold.held))
    return message


def _hold_summary(hold: Hold) -> Summary:
    return {
        "order_reference": hold.reference,
        "hold_state": pb.HoldState.Name(int(hold.state)),  # type: ignore[arg-type]
        "legal_instrument_id": hold.legal_instrument_id,
    }


def _masked_card(number: str) -> str:
    return display(Indicator(IndicatorKind.BANK_ACCOUNT, number))
