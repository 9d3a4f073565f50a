"""Calls to bank partners (antifraud.partner.v1.BankService): stop-payment and freeze orders."""

from __future__ import annotations

from dataclasses import dataclass

import grpc

from services.api.antifraud.common.v1 import common_pb2
from services.api.antifraud.partner.v1 import bank_pb2
from services.partners.directory import PartnerClients
from services.warning.adapters.partner_errors import from_rpc_error
from services.warning.domain.model import BankOrder, BankOrderType

CALL_SECONDS = 10.0


@dataclass(frozen=True)
class BankAnswer:
    """The bank took the order (with its reference) or refused it for good."""

    acknowledged: bool
    reference: str
    detail: str = ""
    #: Refused because the bank does not hold the account (another bank may).
    not_held: bool = False


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
                    ),
                    timeout=CALL_SECONDS,
                )
        except grpc.aio.AioRpcError as exc:
            raise from_rpc_error(bank, exc) from None
        if reply.state == bank_pb2.PAYMENT_ORDER_STATE_ACKNOWLEDGED:
            return BankAnswer(True, reply.order_reference)
        reason = bank_pb2.PaymentOrderRejectReason.Name(reply.reject_reason)
        return BankAnswer(
            False,
            "",
            f"{reason}: {reply.reject_detail}"[:500],
            not_held=reply.reject_reason == bank_pb2.PAYMENT_ORDER_REJECT_REASON_ACCOUNT_NOT_FOUND,
        )
