"""CarrierService of a carrier simulator: proto <-> domain, through the gate."""

from __future__ import annotations

from services.api.antifraud.partner.v1 import carrier_pb2 as pb
from services.api.antifraud.partner.v1 import carrier_pb2_grpc
from services.common import resident_id
from services.common.errors import NotFound
from services.common.indicators import Indicator, IndicatorKind, display
from services.common.validation import collecting, text
from services.partners.domain.carrier import (
    MAX_TEXT,
    SINGLE_SEGMENT,
    Carrier,
    SmsDeliveryState,
    UnknownMessage,
)
from services.partners.domain.names import mask_account_name
from services.partners.entrypoints import fields
from services.partners.entrypoints.fields import Context
from services.partners.entrypoints.gate import Gate, Summary

MAX_MESSAGE_ID = 64


def _masked_phone(phone: str) -> str:
    return display(Indicator(IndicatorKind.PHONE_NUMBER, phone))


class CarrierServicer(carrier_pb2_grpc.CarrierServiceServicer):
    def __init__(self, carrier: Carrier, gate: Gate) -> None:
        self.carrier = carrier
        self.gate = gate

    async def SendSms(self, request: pb.SendSmsRequest, context: Context) -> pb.SendSmsResponse:
        with collecting() as v:
            key = fields.idempotency_key(v, request.idempotency_key)
            phone = fields.mobile_number(v, "phone_number", request.phone_number)
            body = text(v, "text", request.text, max_len=MAX_TEXT, required=True, multiline=True)
            if request.flash and len(body) > SINGLE_SEGMENT:
                v.add("text", f"a flash SMS must fit one segment of {SINGLE_SEGMENT} characters")
            sender = fields.sms_sender(v, "sender_id", request.sender_id)

        def answer() -> tuple[pb.SendSmsResponse, Summary]:
            delay, fails = self.gate.draw_delivery()
            sent = self.carrier.send_sms(
                phone, body, now=fields.now(), delivery_delay=delay, delivery_fails=fails
            )
            response = pb.SendSmsResponse(
                segment_count=sent.segments, submit_time=fields.timestamp(sent.submit_time)
            )
            if sent.message is not None:
                response.message_id = sent.message.message_id
                response.state = pb.SMS_SUBMIT_STATE_ACCEPTED
            else:
                response.state = pb.SMS_SUBMIT_STATE_REJECTED
                response.reject_reason = int(sent.reject_reason or 0)  # type: ignore[assignment]
                response.reject_detail = sent.reject_detail
            summary = {
                "masked_phone_number": _masked_phone(phone),
                "sender_id": display(Indicator(IndicatorKind.SMS_SENDER, sender)),
                "flash": str(request.flash).lower(),
                "segment_count": str(sent.segments),
                "state": pb.SmsSubmitState.Name(response.state),
                "message_id": response.message_id,
            }
            return response, summary

        return await self.gate.effect("SendSms", key, request, answer)

    async def GetSmsDelivery(
        self, request: pb.GetSmsDeliveryRequest, context: Context
    ) -> pb.GetSmsDeliveryResponse:
        with collecting() as v:
            message_id = text(
                v, "message_id", request.message_id, max_len=MAX_MESSAGE_ID, required=True
            )

        def answer() -> tuple[pb.GetSmsDeliveryResponse, Summary]:
            try:
                message = self.carrier.message(message_id)
            except UnknownMessage:
                raise NotFound(f"message_id: no such message at {self.carrier.name}") from None
            state, since = message.state_at(fields.now())
            response = pb.GetSmsDeliveryResponse(
                message_id=message.message_id,
                state=int(state),  # type: ignore[arg-type]
                submit_time=fields.timestamp(message.submit_time),
                update_time=fields.timestamp(since),
            )
            if state is SmsDeliveryState.DELIVERED:
                response.delivered_time.CopyFrom(fields.timestamp(since))
            summary = {"message_id": message.message_id, "state": pb.SmsDeliveryState.Name(state)}
            return response, summary

        return await self.gate.read("GetSmsDelivery", answer)

    async def CountPhoneCards(
        self, request: pb.CountPhoneCardsRequest, context: Context
    ) -> pb.CountPhoneCardsResponse:
        with collecting() as v:
            id_number = fields.resident_id_number(
                v, "resident_id_number", request.resident_id_number
            )

        def answer() -> tuple[pb.CountPhoneCardsResponse, Summary]:
            lines = self.carrier.phone_cards(id_number)
            response = pb.CountPhoneCardsResponse(
                card_count=len(lines),
                phone_cards=[
                    pb.PhoneCard(
                        masked_phone_number=_masked_phone(phone),
                        activate_time=fields.timestamp(activated),
                    )
                    for phone, activated in lines
                ],
            )
            summary = {
                "masked_resident_id_number": resident_id.mask(id_number),
                "card_count": str(len(lines)),
            }
            return response, summary

        return await self.gate.read("CountPhoneCards", answer)

    async def ListLinkedAccounts(
        self, request: pb.ListLinkedAccountsRequest, context: Context
    ) -> pb.ListLinkedAccountsResponse:
        with collecting() as v:
            phone = fields.mobile_number(v, "phone_number", request.phone_number)
            last_six = fields.resident_id_last_six(
                v, "resident_id_last_six", request.resident_id_last_six
            )
            limit, offset = fields.page(v, request.page_size, request.page_token)

        def answer() -> tuple[pb.ListLinkedAccountsResponse, Summary]:
            accounts = self.carrier.linked_accounts(phone, last_six)
            response = pb.ListLinkedAccountsResponse(
                linked_accounts=[
                    pb.LinkedAccount(
                        platform=int(a.platform),  # type: ignore[arg-type]
                        masked_account_name=mask_account_name(a.account_name),
                        register_time=fields.timestamp(a.register_time),
                    )
                    for a in accounts[offset : offset + limit]
                ],
                next_page_token=fields.next_page_token(offset, limit, len(accounts)),
            )
            summary = {
                "masked_phone_number": _masked_phone(phone),
                "account_count": str(len(accounts)),
            }
            return response, summary

        return await self.gate.read("ListLinkedAccounts", answer)
