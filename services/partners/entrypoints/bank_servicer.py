"""BankService of a bank simulator: proto <-> domain, through the gate."""

from __future__ import annotations

from typing import Protocol

from services.api.antifraud.common.v1 import common_pb2
from services.api.antifraud.partner.v1 import bank_pb2 as pb
from services.api.antifraud.partner.v1 import bank_pb2_grpc
from services.common import resident_id
from services.common.indicators import Indicator, IndicatorKind, display
from services.common.validation import Violations, collecting, text
from services.partners.domain.bank import Amount, Bank, OrderKind, OrderOutcome, OrderRequest
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
        return OrderRequest(kind, account, case_reference, amount, reason, authority)

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


def _masked_card(number: str) -> str:
    return display(Indicator(IndicatorKind.BANK_ACCOUNT, number))
