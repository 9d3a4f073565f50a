"""The warning service as the report service uses it: stop-payment orders and their states."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

import grpc

from services.api.antifraud.common.v1 import common_pb2
from services.api.antifraud.warning.v1 import warning_pb2, warning_pb2_grpc
from services.common.clients import open_channel
from services.common.context import principal_var
from services.common.indicators import Indicator, IndicatorKind
from services.report.adapters.peers import raise_for
from services.report.domain.model import Money, StopPaymentStatus
from services.report.service_layer.delivery import StopPaymentAsk

SERVICE = warning_pb2.DESCRIPTOR.services_by_name["WarningService"].full_name

_STATUS = {
    warning_pb2.BANK_ORDER_STATE_QUEUED: StopPaymentStatus.QUEUED,
    warning_pb2.BANK_ORDER_STATE_SENT: StopPaymentStatus.SENT,
    warning_pb2.BANK_ORDER_STATE_ACKNOWLEDGED: StopPaymentStatus.ACKNOWLEDGED,
    warning_pb2.BANK_ORDER_STATE_REJECTED: StopPaymentStatus.REJECTED,
    warning_pb2.BANK_ORDER_STATE_FAILED: StopPaymentStatus.FAILED,
    warning_pb2.BANK_ORDER_STATE_RELEASED: StopPaymentStatus.RELEASED,
    warning_pb2.BANK_ORDER_STATE_RETURNED: StopPaymentStatus.RETURNED,
    warning_pb2.BANK_ORDER_STATE_EXPIRED: StopPaymentStatus.EXPIRED,
}


@dataclass(frozen=True, slots=True)
class OrderState:
    name: str
    account: Indicator
    status: StopPaymentStatus
    detail: str
    held_amount: Money | None = None
    hold_expire_time: datetime | None = None


def _order_state(order: warning_pb2.BankOrder) -> OrderState:
    held = order.held_amount if order.HasField("held_amount") else None
    return OrderState(
        name=order.name,
        account=Indicator(IndicatorKind(order.account.kind), order.account.value),
        status=_STATUS.get(order.state, StopPaymentStatus.QUEUED),
        detail=order.failure_reason,
        held_amount=None if held is None else Money(held.currency_code, held.units, held.nanos),
        hold_expire_time=(
            order.hold_expire_time.ToDatetime(tzinfo=UTC)
            if order.HasField("hold_expire_time")
            else None
        ),
    )


class WarningClient:
    def __init__(self, target: str, *, budget: float = 5.0) -> None:
        self.target = target
        self.budget = budget
        self._channel: grpc.aio.Channel | None = None
        self._stubs: warning_pb2_grpc.WarningServiceStub | None = None

    @property
    def _stub(self) -> warning_pb2_grpc.WarningServiceStub:
        # Opened on first use, inside the running event loop (a channel is bound to its loop).
        if self._channel is None:
            # CreateBankOrder is idempotent by request id and the reads are safe to repeat.
            self._channel = open_channel(
                self.target, retry_services=[SERVICE], budget=self.budget, server_name="warning"
            )
            self._stubs = warning_pb2_grpc.WarningServiceStub(self._channel)  # type: ignore[no-untyped-call]
        assert self._stubs is not None
        return self._stubs

    async def stop_payment(self, ask: StopPaymentAsk) -> OrderState:
        account, amount = ask.account, ask.amount
        request = warning_pb2.CreateBankOrderRequest(
            request_id=ask.request_id,
            order_type=warning_pb2.BANK_ORDER_TYPE_STOP_PAYMENT,
            account=common_pb2.Indicator(kind=int(account.kind), value=account.value),  # type: ignore[arg-type]
            case_id=ask.case_id,
            amount=common_pb2.Money(
                currency_code=amount.currency, units=amount.units, nanos=amount.nanos
            ),
            reason=ask.reason,
            transaction_references=list(ask.transaction_references),
            legal_instrument_id=ask.legal_instrument_id,
            victim_user_id=ask.victim_user_id,
        )
        if ask.filed is not None:
            request.case_file_time.FromDatetime(ask.filed)
        try:
            response = await self._stub.CreateBankOrder(request)
        except grpc.aio.AioRpcError as exc:
            raise_for(exc, "warning CreateBankOrder")
            raise  # unreachable: raise_for always raises
        return _order_state(response.bank_order)

    async def orders_of_case(self, case_id: str, *, timeout: float) -> list[OrderState]:
        """Every order of a case (the warning service pages them, oldest first).

        Asked as the report service itself, not as the citizen whose GetCase this
        serves: we have checked that they may see the case, and the warning service
        need not know who they are.
        """
        found: list[OrderState] = []
        token = ""
        as_service = principal_var.set("")
        try:
            while True:
                response = await self._stub.ListBankOrders(
                    warning_pb2.ListBankOrdersRequest(
                        case_id=case_id, page_size=500, page_token=token
                    ),
                    timeout=timeout,
                )
                found.extend(_order_state(order) for order in response.bank_orders)
                token = response.next_page_token
                if not token:
                    return found
        finally:
            principal_var.reset(as_service)

    async def close(self) -> None:
        if self._channel is not None:
            await self._channel.close(None)
            self._channel = self._stubs = None
