"""Partner calls: national registry, face provider, carriers, banks.

Each turns a partner's answer into the service's own types and any failure to
answer into ``PartnerFailure``, so the service layer never sees gRPC. The
partner directory (``services.partners.directory``) says which carriers and
banks exist, routes accounts to banks, and holds the channels.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime
from typing import TypeVar

import grpc
from google.protobuf.timestamp_pb2 import Timestamp

from services.api.antifraud.common.v1 import common_pb2
from services.api.antifraud.partner.v1 import (
    bank_pb2,
    bank_pb2_grpc,
    carrier_pb2,
    carrier_pb2_grpc,
    face_pb2,
    registry_pb2,
)
from services.common.indicators import Indicator
from services.common.logs import get_logger
from services.identity.domain.accounts import HolderAnswer
from services.identity.domain.challenges import CODE_SENDER, CodeCheck, SentCode, SubscriberMatch
from services.identity.domain.lookups import (
    BankCard,
    CarrierCards,
    LinkedAccount,
    Partner,
    PartnerFailure,
    PayeeAnswer,
    PayeeCheck,
    PhoneCard,
    RegistryMatch,
    SourceStatus,
)
from services.identity.domain.verification import FaceResult
from services.partners import directory
from services.partners.directory import PartnerClients

log = get_logger("identity.partners")

T = TypeVar("T")

#: Pages of a partner list read for one look-up; a person with more is not plausible.
MAX_PAGES = 20
PAGE_SIZE = 500


def _display_name(partner_id: str) -> str:
    return directory.DISPLAY_NAMES.get(partner_id, partner_id)


def _time(ts: Timestamp, present: bool) -> datetime | None:
    return ts.ToDatetime(tzinfo=UTC) if present else None


async def call_partner(partner_id: str, call: Callable[[], Awaitable[T]]) -> T:
    """Run one partner call; every way it can fail to answer becomes ``PartnerFailure``."""
    try:
        return await call()
    except grpc.aio.AioRpcError as exc:
        code = exc.code()
        status = (
            SourceStatus.DEADLINE_EXCEEDED
            if code is grpc.StatusCode.DEADLINE_EXCEEDED
            else SourceStatus.UNAVAILABLE
        )
        if code not in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED):
            # Anything else means the partner refused what we sent: worth a look.
            log.warning("partner refused a call", partner=partner_id, code=code.name)
        raise PartnerFailure(partner_id, status, code.name) from None


class GrpcIdentityRegistry:
    def __init__(self, clients: PartnerClients, timeout: float) -> None:
        self.clients = clients
        self.timeout = timeout

    async def verify_identity(self, name: str, id_number: str) -> RegistryMatch:
        stub = self.clients.registry()
        request = registry_pb2.VerifyIdentityRequest(name=name, resident_id_number=id_number)
        reply = await call_partner(
            directory.REGISTRY,
            lambda: stub.VerifyIdentity(request, timeout=self.timeout),
        )
        try:
            return RegistryMatch(reply.match)
        except ValueError:
            raise PartnerFailure(
                directory.REGISTRY, SourceStatus.UNAVAILABLE, "no answer"
            ) from None


class GrpcFaceVerifier:
    def __init__(self, clients: PartnerClients, timeout: float) -> None:
        self.clients = clients
        self.timeout = timeout

    async def verify_face(
        self, subject_ref: str, face_token: str, idempotency_key: str
    ) -> tuple[FaceResult, str]:
        stub = self.clients.face()
        request = face_pb2.VerifyFaceRequest(
            idempotency_key=idempotency_key, subject_reference=subject_ref, face_token=face_token
        )
        reply = await call_partner(
            directory.FACE, lambda: stub.VerifyFace(request, timeout=self.timeout)
        )
        passed = reply.result == face_pb2.FACE_VERIFICATION_RESULT_PASSED
        return (FaceResult.PASSED if passed else FaceResult.FAILED), reply.provider_reference


class GrpcCarriers:
    def __init__(self, clients: PartnerClients, timeout: float) -> None:
        self.clients = clients
        self.timeout = timeout
        self._carriers = [Partner(c, _display_name(c)) for c in directory.CARRIERS]
        self._by_id = {c.id: c for c in self._carriers}

    def carriers(self) -> Sequence[Partner]:
        return self._carriers

    def carrier_for(self, phone_e164: str) -> Partner | None:
        found = directory.carrier_of_e164(phone_e164)
        return None if found is None else self._by_id.get(found)

    def carrier_for_id(self, carrier_id: str) -> Partner | None:
        return self._by_id.get(carrier_id)

    async def send_code(
        self, carrier: Partner, phone_e164: str, message: str, *, key: str, consent: str
    ) -> SentCode | None:
        stub = self._stub(carrier)
        request = carrier_pb2.SendOneTimeCodeRequest(
            idempotency_key=key,
            phone_number=phone_e164,
            message=message,
            sender_id=CODE_SENDER,
            consent_reference=consent,
        )
        reply = await call_partner(
            carrier.id, lambda: stub.SendOneTimeCode(request, timeout=self.timeout)
        )
        if reply.state != carrier_pb2.SMS_SUBMIT_STATE_ACCEPTED or not reply.authentication_id:
            return None
        return SentCode(
            reply.authentication_id, _time(reply.expire_time, reply.HasField("expire_time"))
        )

    async def validate_code(
        self, carrier: Partner, authentication_id: str, code: str, *, key: str
    ) -> CodeCheck:
        stub = self._stub(carrier)
        request = carrier_pb2.ValidateOneTimeCodeRequest(
            idempotency_key=key, authentication_id=authentication_id, code=code
        )
        try:
            reply = await call_partner(
                carrier.id, lambda: stub.ValidateOneTimeCode(request, timeout=self.timeout)
            )
        except PartnerFailure as exc:
            if exc.detail in ("NOT_FOUND", "INVALID_ARGUMENT"):
                return CodeCheck.INVALID  # a code the carrier no longer has, or not a code at all
            raise
        try:
            return CodeCheck(reply.result)
        except ValueError:
            raise PartnerFailure(carrier.id, SourceStatus.UNAVAILABLE, "no answer") from None

    async def match_subscriber(
        self, carrier: Partner, phone_e164: str, id_number: str, *, consent: str
    ) -> SubscriberMatch:
        stub = self._stub(carrier)
        request = carrier_pb2.MatchSubscriberIdentityRequest(
            phone_number=phone_e164, resident_id_number=id_number, consent_reference=consent
        )
        reply = await call_partner(
            carrier.id, lambda: stub.MatchSubscriberIdentity(request, timeout=self.timeout)
        )
        try:
            return SubscriberMatch(reply.id_number_match)
        except ValueError:
            raise PartnerFailure(carrier.id, SourceStatus.UNAVAILABLE, "no answer") from None

    def _stub(self, carrier: Partner) -> carrier_pb2_grpc.CarrierServiceStub:
        return self.clients.carrier(carrier.id)

    async def count_phone_cards(
        self, carrier: Partner, id_number: str, *, consent: str = ""
    ) -> CarrierCards:
        stub = self._stub(carrier)
        request = carrier_pb2.CountPhoneCardsRequest(
            resident_id_number=id_number, consent_reference=consent
        )
        reply = await call_partner(
            carrier.id, lambda: stub.CountPhoneCards(request, timeout=self.timeout)
        )
        cards = tuple(
            PhoneCard(c.masked_phone_number, _time(c.activate_time, c.HasField("activate_time")))
            for c in reply.phone_cards
        )
        return CarrierCards(reply.card_count, cards)

    async def list_linked_accounts(
        self, carrier: Partner, phone_e164: str, id_last_six: str, *, consent: str = ""
    ) -> list[LinkedAccount]:
        stub = self._stub(carrier)
        found: list[LinkedAccount] = []
        token = ""
        for _ in range(MAX_PAGES):
            request = carrier_pb2.ListLinkedAccountsRequest(
                phone_number=phone_e164,
                resident_id_last_six=id_last_six,
                page_size=PAGE_SIZE,
                page_token=token,
                consent_reference=consent,
            )
            reply = await call_partner(
                carrier.id,
                lambda request=request: stub.ListLinkedAccounts(  # type: ignore[misc]
                    request, timeout=self.timeout
                ),
            )
            found.extend(
                LinkedAccount(
                    platform=a.platform,
                    masked_account_name=a.masked_account_name,
                    register_time=_time(a.register_time, a.HasField("register_time")),
                    carrier_id=carrier.id,
                )
                for a in reply.linked_accounts
            )
            token = reply.next_page_token
            if not token:
                break
        return found


class GrpcBanks:
    def __init__(self, clients: PartnerClients, timeout: float) -> None:
        self.clients = clients
        self.timeout = timeout
        self._banks = [Partner(b, _display_name(b)) for b in directory.BANKS]
        self._by_id = {b.id: b for b in self._banks}

    def banks(self) -> Sequence[Partner]:
        return self._banks

    def bank_for(self, account: Indicator) -> Partner | None:
        bank = directory.bank_for_account(account)
        return None if bank is None else self._by_id.get(bank)

    def _stub(self, bank: Partner) -> bank_pb2_grpc.BankServiceStub:
        return self.clients.bank(bank.id)

    async def list_cards(
        self, bank: Partner, id_number: str, name: str, *, consent: str = ""
    ) -> list[BankCard]:
        stub = self._stub(bank)
        found: list[BankCard] = []
        token = ""
        for _ in range(MAX_PAGES):
            request = bank_pb2.ListCardsRequest(
                resident_id_number=id_number,
                name=name,
                page_size=PAGE_SIZE,
                page_token=token,
                consent_reference=consent,
            )
            reply = await call_partner(
                bank.id,
                lambda request=request: stub.ListCards(  # type: ignore[misc]
                    request, timeout=self.timeout
                ),
            )
            found.extend(
                BankCard(
                    bank_id=bank.id,
                    bank_name=c.bank_name or bank.display_name,
                    card_type=c.card_type,
                    masked_card_number=c.masked_card_number,
                )
                for c in reply.cards
            )
            token = reply.next_page_token
            if not token:
                break
        return found

    def holder_confirmer(self, account: Indicator) -> Partner | None:
        found = directory.partner_for_account(account)
        return None if found is None else self._by_id.get(found)

    async def confirm_holder(
        self, partner: Partner, account: Indicator, id_number: str, name: str, *, consent: str
    ) -> HolderAnswer:
        stub = self._stub(partner)
        request = bank_pb2.ConfirmAccountHolderRequest(
            account=common_pb2.Indicator(
                kind=f"INDICATOR_KIND_{account.kind.name}", value=account.value
            ),
            resident_id_number=id_number,
            name=name,
            consent_reference=consent,
        )
        reply = await call_partner(
            partner.id, lambda: stub.ConfirmAccountHolder(request, timeout=self.timeout)
        )
        try:
            return HolderAnswer(reply.holder_match)
        except ValueError:
            raise PartnerFailure(partner.id, SourceStatus.UNAVAILABLE, "no answer") from None

    async def check_payee(self, bank: Partner, account: Indicator, name: str) -> PayeeCheck:
        stub = self._stub(bank)
        request = bank_pb2.CheckPayeeNameRequest(
            account=common_pb2.Indicator(
                kind=f"INDICATOR_KIND_{account.kind.name}", value=account.value
            ),
            payee_name=name,
        )
        reply = await call_partner(
            bank.id, lambda: stub.CheckPayeeName(request, timeout=self.timeout)
        )
        try:
            answer = PayeeAnswer(reply.match)
        except ValueError:
            raise PartnerFailure(bank.id, SourceStatus.UNAVAILABLE, "no answer") from None
        return PayeeCheck(answer, reply.masked_account_name)
