"""CarrierService of a carrier simulator: proto <-> domain, through the gate."""

from __future__ import annotations

from services.api.antifraud.partner.v1 import carrier_pb2 as pb
from services.api.antifraud.partner.v1 import carrier_pb2_grpc
from services.common import resident_id
from services.common.errors import NotFound
from services.common.indicators import Indicator, IndicatorKind, display
from services.common.validation import collecting, text
from services.partners.domain.carrier import (
    CODE_PLACEHOLDER,
    MAX_TEXT,
    SINGLE_SEGMENT,
    Carrier,
    SmsDeliveryState,
    UnknownCode,
    UnknownMessage,
)
from services.partners.domain.names import mask_account_name
from services.partners.entrypoints import fields
from services.partners.entrypoints.fields import Context
from services.partners.entrypoints.gate import Gate, Summary

MAX_MESSAGE_ID = 64
MAX_CODE_TEXT = SINGLE_SEGMENT - 8  # the template, before the code goes in


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
                phone,
                body,
                now=fields.now(),
                delivery_delay=delay,
                delivery_fails=fails,
                sender=sender,
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
            consent = fields.consent_reference(v, request.consent_reference)

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
                "consent_reference": consent,
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
            consent = fields.consent_reference(v, request.consent_reference)

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
                "consent_reference": consent,
            }
            return response, summary

        return await self.gate.read("ListLinkedAccounts", answer)

    async def SendOneTimeCode(
        self, request: pb.SendOneTimeCodeRequest, context: Context
    ) -> pb.SendOneTimeCodeResponse:
        with collecting() as v:
            key = fields.idempotency_key(v, request.idempotency_key)
            phone = fields.mobile_number(v, "phone_number", request.phone_number)
            template = text(v, "message", request.message, max_len=MAX_CODE_TEXT, required=True)
            if template and template.count(CODE_PLACEHOLDER) != 1:
                v.add("message", f"must hold {CODE_PLACEHOLDER} once")
            sender = fields.sms_sender(v, "sender_id", request.sender_id)
            consent = fields.consent_reference(v, request.consent_reference)

        def answer() -> tuple[pb.SendOneTimeCodeResponse, Summary]:
            delay, fails = self.gate.draw_delivery()
            now = fields.now()
            authentication_id, sent = self.carrier.send_code(
                phone, template, sender=sender, now=now, delivery_delay=delay, delivery_fails=fails
            )
            response = pb.SendOneTimeCodeResponse(authentication_id=authentication_id)
            if authentication_id:
                response.state = pb.SMS_SUBMIT_STATE_ACCEPTED
                code = self.carrier.code(authentication_id)
                response.expire_time.CopyFrom(fields.timestamp(code.expire_time))
            else:
                response.state = pb.SMS_SUBMIT_STATE_REJECTED
                response.reject_reason = int(sent.reject_reason or 0)  # type: ignore[assignment]
            summary = {
                "masked_phone_number": _masked_phone(phone),
                "state": pb.SmsSubmitState.Name(response.state),
                "authentication_id": authentication_id,
                "consent_reference": consent,
            }
            return response, summary

        return await self.gate.effect("SendOneTimeCode", key, request, answer)

    async def ValidateOneTimeCode(
        self, request: pb.ValidateOneTimeCodeRequest, context: Context
    ) -> pb.ValidateOneTimeCodeResponse:
        with collecting() as v:
            key = fields.idempotency_key(v, request.idempotency_key)
            authentication_id = text(
                v, "authentication_id", request.authentication_id,
                max_len=MAX_MESSAGE_ID, required=True,
            )  # fmt: skip
            code = request.code.strip()
            if not (4 <= len(code) <= 8 and code.isascii() and code.isdigit()):
                v.add("code", "must be 4 to 8 digits")

        def answer() -> tuple[pb.ValidateOneTimeCodeResponse, Summary]:
            try:
                result, left = self.carrier.validate_code(authentication_id, code, fields.now())
            except UnknownCode:
                raise NotFound(f"authentication_id: no such code at {self.carrier.name}") from None
            response = pb.ValidateOneTimeCodeResponse(
                result=int(result),  # type: ignore[arg-type]
                remaining_attempts=left,
            )
            summary = {
                "authentication_id": authentication_id,
                "result": pb.OneTimeCodeResult.Name(response.result),
            }
            return response, summary

        return await self.gate.effect("ValidateOneTimeCode", key, request, answer)

    async def MatchSubscriberIdentity(
        self, request: pb.MatchSubscriberIdentityRequest, context: Context
    ) -> pb.MatchSubscriberIdentityResponse:
        with collecting() as v:
            phone = fields.mobile_number(v, "phone_number", request.phone_number)
            id_number = fields.resident_id_number(
                v, "resident_id_number", request.resident_id_number
            )
            consent = fields.consent_reference(v, request.consent_reference)

        def answer() -> tuple[pb.MatchSubscriberIdentityResponse, Summary]:
            result = self.carrier.match_identity(phone, id_number)
            response = pb.MatchSubscriberIdentityResponse(
                id_number_match=int(result)  # type: ignore[arg-type]
            )
            summary = {
                "masked_phone_number": _masked_phone(phone),
                "masked_resident_id_number": resident_id.mask(id_number),
                "id_number_match": pb.SubscriberMatch.Name(response.id_number_match),
                "consent_reference": consent,
            }
            return response, summary

        return await self.gate.read("MatchSubscriberIdentity", answer)
