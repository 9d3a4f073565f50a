"""Calls to carrier partners (antifraud.partner.v1.CarrierService): send an SMS, ask where it is."""

from __future__ import annotations

from dataclasses import dataclass

import grpc

from services.api.antifraud.partner.v1 import carrier_pb2
from services.partners.directory import PartnerClients
from services.warning.adapters.partner_errors import from_rpc_error
from services.warning.domain.model import DeliveryState

CALL_SECONDS = 10.0

_STATE_OF = {
    carrier_pb2.SMS_DELIVERY_STATE_DELIVERED: DeliveryState.DELIVERED,
    carrier_pb2.SMS_DELIVERY_STATE_FAILED: DeliveryState.FAILED,
    carrier_pb2.SMS_DELIVERY_STATE_EXPIRED: DeliveryState.FAILED,
}


@dataclass(frozen=True)
class Submitted:
    """The carrier's answer to an SMS: accepted with a message id, or refused for good."""

    message_id: str
    accepted: bool
    detail: str = ""


class CarrierClient:
    """SendSms carries the delivery id as idempotency key, so the directory's channels retry
    UNAVAILABLE on it and the outbox retries everything else."""

    def __init__(self, partners: PartnerClients) -> None:
        self._partners = partners

    async def send_sms(
        self, carrier: str, key: str, phone_number: str, text: str, flash: bool, sender_id: str
    ) -> Submitted:
        request = carrier_pb2.SendSmsRequest(
            idempotency_key=key,
            phone_number=phone_number,
            text=text,
            flash=flash,
            sender_id=sender_id,
        )
        try:
            reply = await self._partners.carrier(carrier).SendSms(request, timeout=CALL_SECONDS)
        except grpc.aio.AioRpcError as exc:
            raise from_rpc_error(carrier, exc) from None
        if reply.state == carrier_pb2.SMS_SUBMIT_STATE_ACCEPTED:
            return Submitted(reply.message_id, accepted=True)
        reason = carrier_pb2.SmsRejectReason.Name(reply.reject_reason)
        return Submitted("", accepted=False, detail=f"{reason}: {reply.reject_detail}"[:300])

    async def delivery_state(self, carrier: str, message_id: str) -> DeliveryState | None:
        """DELIVERED or FAILED once the carrier knows; None while the SMS is still on its way."""
        try:
            reply = await self._partners.carrier(carrier).GetSmsDelivery(
                carrier_pb2.GetSmsDeliveryRequest(message_id=message_id), timeout=CALL_SECONDS
            )
        except grpc.aio.AioRpcError as exc:
            raise from_rpc_error(carrier, exc) from None
        return _STATE_OF.get(reply.state)
