"""What the service layer needs from the outside world; ``adapters/`` implements each over gRPC.

Every method raises ``PartnerFailure`` when its peer does not answer, and
nothing else for a peer's trouble, so handlers decide in one way what a
missing answer means.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

from services.common.indicators import Indicator
from services.identity.domain.accounts import HolderAnswer
from services.identity.domain.challenges import CodeCheck, SentCode, SubscriberMatch
from services.identity.domain.lookups import (
    BankCard,
    CarrierCards,
    LinkedAccount,
    Partner,
    PayeeCheck,
    RegistryMatch,
)
from services.identity.domain.verification import FaceResult


class IdentityRegistry(Protocol):
    async def verify_identity(self, name: str, id_number: str) -> RegistryMatch: ...


class FaceVerifier(Protocol):
    async def verify_face(
        self, subject_ref: str, face_token: str, idempotency_key: str
    ) -> tuple[FaceResult, str]:
        """The result and the provider's reference of the check."""
        ...


class Carriers(Protocol):
    def carriers(self) -> Sequence[Partner]: ...

    async def count_phone_cards(
        self, carrier: Partner, id_number: str, *, consent: str = ""
    ) -> CarrierCards: ...

    async def list_linked_accounts(
        self, carrier: Partner, phone_e164: str, id_last_six: str, *, consent: str = ""
    ) -> list[LinkedAccount]: ...

    def carrier_for(self, phone_e164: str) -> Partner | None:
        """The carrier that serves a number, by the directory; None when no partner does."""
        ...

    def carrier_for_id(self, carrier_id: str) -> Partner | None: ...

    async def send_code(
        self, carrier: Partner, phone_e164: str, message: str, *, key: str, consent: str
    ) -> SentCode | None:
        """Has the carrier send a one-time code; None when it does not serve the number."""
        ...

    async def validate_code(
        self, carrier: Partner, authentication_id: str, code: str, *, key: str
    ) -> CodeCheck: ...

    async def match_subscriber(
        self, carrier: Partner, phone_e164: str, id_number: str, *, consent: str
    ) -> SubscriberMatch: ...


class Banks(Protocol):
    def banks(self) -> Sequence[Partner]: ...

    def bank_for(self, account: Indicator) -> Partner | None:
        """The bank that holds an account, when the directory can tell; None to ask every bank."""
        ...

    async def list_cards(
        self, bank: Partner, id_number: str, name: str, *, consent: str = ""
    ) -> list[BankCard]: ...

    async def check_payee(self, bank: Partner, account: Indicator, name: str) -> PayeeCheck: ...

    def holder_confirmer(self, account: Indicator) -> Partner | None:
        """The partner that can confirm who holds an account (its bank, payment institution
        or platform operator); None when no partner can."""
        ...

    async def confirm_holder(
        self, partner: Partner, account: Indicator, id_number: str, name: str, *, consent: str
    ) -> HolderAnswer: ...


class RiskChecker(Protocol):
    async def check(self, indicator: Indicator) -> Any:
        """The risk service's verdict, passed through to the caller as it is."""
        ...


class ContactChecker(Protocol):
    async def recent_risky_contact(self, phone_e164: str) -> bool:
        """Whether the number was recently in contact with a number listed at MEDIUM or
        HIGH (the warning service's contact records); PartnerFailure when it cannot say."""
        ...


class Notifier(Protocol):
    async def notify(
        self,
        request_id: str,
        *,
        user_id: str | None,
        phone_e164: str | None,
        text: str,
        result: bool,
    ) -> None:
        """Send ``text`` to a user (app push) or a number (SMS); ``result`` marks an outcome
        notice rather than a request. A repeat of ``request_id`` sends nothing new."""
        ...


class RecipientUnknown(Exception):
    """The notifier does not know the user as an app user; send to their number instead."""


class NotificationRefused(Exception):
    """The notifier refused the message for good; retrying cannot help."""
