"""A carrier's state and rules: SMS submission and delivery, subscribers, linked accounts,
one-time codes (CAMARA OTP) and the subscriber identity match (CAMARA KYC Match).

Delivery is a function of time: an accepted SMS carries the time it is due and the
outcome drawn when it was accepted, so nothing runs in the background and a read at
any moment sees the state a real carrier would report then.
"""

from __future__ import annotations

import enum
import hmac
import math
import secrets
import uuid
from collections import OrderedDict
from dataclasses import dataclass
from datetime import datetime, timedelta

from services.common import resident_id
from services.partners.domain import synthetic
from services.partners.domain.routing import CARRIER_PREFIXES, carrier_of_e164

#: One GSM segment holds 70 UCS-2 characters; parts of a long SMS 67 each.
SINGLE_SEGMENT = 70
MULTIPART_SEGMENT = 67
MAX_TEXT = 1000
MAX_MESSAGES = 100_000
#: A one-time code: six digits, good for five minutes and three wrong tries.
CODE_DIGITS = 6
CODE_VALIDITY = timedelta(minutes=5)
CODE_ATTEMPTS = 3
CODE_PLACEHOLDER = "{{code}}"
MAX_CODES = 100_000


class SmsRejectReason(enum.IntEnum):
    """Numbers match antifraud.partner.v1.SmsRejectReason."""

    NOT_SUBSCRIBER = 1


class SmsDeliveryState(enum.IntEnum):
    """Numbers match antifraud.partner.v1.SmsDeliveryState."""

    QUEUED = 1
    DELIVERED = 2
    FAILED = 3
    EXPIRED = 4


class OneTimeCodeResult(enum.IntEnum):
    """Numbers match antifraud.partner.v1.OneTimeCodeResult."""

    VALID = 1
    INVALID = 2
    EXPIRED = 3
    ATTEMPTS_EXCEEDED = 4


class IdentityMatch(enum.IntEnum):
    """Numbers match antifraud.partner.v1.SubscriberMatch."""

    MATCH = 1
    NO_MATCH = 2
    NOT_SUBSCRIBER = 3


class InternetPlatform(enum.IntEnum):
    """Numbers match antifraud.partner.v1.InternetPlatform."""

    WECHAT = 1
    QQ = 2
    ALIPAY = 3
    TAOBAO = 4
    DOUYIN = 5
    WEIBO = 6
    JD = 7
    MEITUAN = 8
    PINDUODUO = 9
    OTHER = 10


class UnknownMessage(LookupError):
    """No SMS with that id was accepted by this carrier."""


class UnknownCode(LookupError):
    """No one-time code with that authentication id was sent by this carrier."""


def segment_count(text: str) -> int:
    if len(text) <= SINGLE_SEGMENT:
        return 1
    return math.ceil(len(text) / MULTIPART_SEGMENT)


@dataclass(frozen=True, slots=True)
class LinkedAccount:
    platform: InternetPlatform
    account_name: str
    register_time: datetime


@dataclass(frozen=True, slots=True)
class Line:
    """A number registered to a person at this carrier."""

    phone: str  # E.164
    owner_id: str  # canonical resident ID number
    activate_time: datetime
    switched_off: bool = False
    linked_accounts: tuple[LinkedAccount, ...] = ()


@dataclass(frozen=True, slots=True)
class SmsMessage:
    message_id: str
    phone: str
    segments: int
    submit_time: datetime
    due_time: datetime
    outcome: SmsDeliveryState  # what the message becomes at ``due_time``
    text: str = ""
    sender: str = ""

    def state_at(self, now: datetime) -> tuple[SmsDeliveryState, datetime]:
        """The state at ``now`` and when it was entered."""
        if now < self.due_time:
            return SmsDeliveryState.QUEUED, self.submit_time
        return self.outcome, self.due_time


@dataclass(slots=True)
class OneTimeCode:
    """A code sent to a number: the carrier keeps it, the caller never sees it."""

    phone: str
    code: str
    expire_time: datetime
    attempts_left: int = CODE_ATTEMPTS
    used: bool = False


@dataclass(frozen=True, slots=True)
class SmsSubmission:
    """The answer to SendSms: a message when accepted, a reason when rejected."""

    message: SmsMessage | None
    reject_reason: SmsRejectReason | None
    reject_detail: str
    segments: int
    submit_time: datetime


class Carrier:
    def __init__(self, name: str) -> None:
        self.name = name
        self.prefixes = CARRIER_PREFIXES.get(name, ())
        self._id_prefix = name.rpartition("-")[2].upper()
        self._lines: dict[str, Line] = {}
        self._by_owner: dict[str, list[str]] = {}
        # Unseeded numbers: the owner's last six as first presented, like a record
        # the carrier already has (see the registry's first-name rule).
        self._bound_last_six: dict[str, str] = {}
        self._messages: OrderedDict[str, SmsMessage] = OrderedDict()
        # Unseeded numbers: the ID number first presented for a match, as for linked accounts.
        self._bound_owner: dict[str, str] = {}
        self._codes: OrderedDict[str, OneTimeCode] = OrderedDict()

    def reset(self) -> None:
        self._lines.clear()
        self._by_owner.clear()
        self._bound_last_six.clear()
        self._messages.clear()
        self._bound_owner.clear()
        self._codes.clear()

    def serves(self, phone: str) -> bool:
        """Whether a number is this carrier's: seeded here, or issued from its prefixes."""
        return phone in self._lines or carrier_of_e164(phone) == self.name

    # -- seeding ---------------------------------------------------------------------------

    def seed_subscriber(self, id_number: str, lines: list[Line]) -> None:
        """Sets the person's numbers here, replacing earlier ones; a number moves owner."""
        for phone in self._by_owner.pop(id_number, []):
            self._lines.pop(phone, None)
        for line in lines:
            previous = self._lines.get(line.phone)
            if previous is not None and previous.owner_id != id_number:
                self._by_owner[previous.owner_id].remove(line.phone)
            self._lines[line.phone] = line
            self._bound_last_six.pop(line.phone, None)
            self._bound_owner.pop(line.phone, None)
        self._by_owner[id_number] = [line.phone for line in lines]

    # -- SMS -------------------------------------------------------------------------------

    def send_sms(
        self,
        phone: str,
        text: str,
        *,
        now: datetime,
        delivery_delay: float,
        delivery_fails: bool,
        sender: str = "",
    ) -> SmsSubmission:
        segments = segment_count(text)
        if not self.serves(phone):
            return SmsSubmission(
                None,
                SmsRejectReason.NOT_SUBSCRIBER,
                "the number is not a subscriber of this carrier",
                segments,
                now,
            )
        line = self._lines.get(phone)
        if delivery_fails:
            outcome = SmsDeliveryState.FAILED
        elif line is not None and line.switched_off:
            outcome = SmsDeliveryState.EXPIRED
        else:
            outcome = SmsDeliveryState.DELIVERED
        message = SmsMessage(
            message_id=f"{self._id_prefix}{uuid.uuid4().hex[:20]}",
            phone=phone,
            segments=segments,
            submit_time=now,
            due_time=now + timedelta(seconds=delivery_delay),
            outcome=outcome,
            text=text,
            sender=sender,
        )
        self._messages[message.message_id] = message
        while len(self._messages) > MAX_MESSAGES:
            self._messages.popitem(last=False)
        return SmsSubmission(message, None, "", segments, now)

    def message(self, message_id: str) -> SmsMessage:
        found = self._messages.get(message_id)
        if found is None:
            raise UnknownMessage(message_id)
        return found

    def handset_messages(self, phone: str, now: datetime) -> list[SmsMessage]:
        """The SMS delivered to a number by now, newest first: what its holder reads."""
        return [
            m
            for m in reversed(self._messages.values())
            if m.phone == phone and m.state_at(now)[0] is SmsDeliveryState.DELIVERED
        ]

    # -- one-time codes (CAMARA One Time Password SMS) -------------------------------------

    def send_code(
        self,
        phone: str,
        template: str,
        *,
        sender: str,
        now: datetime,
        delivery_delay: float,
        delivery_fails: bool,
    ) -> tuple[str, SmsSubmission]:
        """(authentication id, the SMS submission); the id is empty when rejected."""
        code = f"{secrets.randbelow(10**CODE_DIGITS):0{CODE_DIGITS}d}"
        sent = self.send_sms(
            phone,
            template.replace(CODE_PLACEHOLDER, code),
            now=now,
            delivery_delay=delivery_delay,
            delivery_fails=delivery_fails,
            sender=sender,
        )
        if sent.message is None:
            return "", sent
        authentication_id = str(uuid.uuid4())
        self._codes[authentication_id] = OneTimeCode(phone, code, now + CODE_VALIDITY)
        while len(self._codes) > MAX_CODES:
            self._codes.popitem(last=False)
        return authentication_id, sent

    def code(self, authentication_id: str) -> OneTimeCode:
        found = self._codes.get(authentication_id)
        if found is None:
            raise UnknownCode(authentication_id)
        return found

    def validate_code(
        self, authentication_id: str, code: str, now: datetime
    ) -> tuple[OneTimeCodeResult, int]:
        """The result and the wrong tries left. A code is good once."""
        sent = self._codes.get(authentication_id)
        if sent is None:
            raise UnknownCode(authentication_id)
        if sent.attempts_left <= 0:
            return OneTimeCodeResult.ATTEMPTS_EXCEEDED, 0
        if now >= sent.expire_time:
            return OneTimeCodeResult.EXPIRED, sent.attempts_left
        if not sent.used and hmac.compare_digest(sent.code, code):
            sent.used = True
            return OneTimeCodeResult.VALID, sent.attempts_left
        sent.attempts_left -= 1
        if sent.attempts_left <= 0:
            return OneTimeCodeResult.ATTEMPTS_EXCEEDED, 0
        return OneTimeCodeResult.INVALID, sent.attempts_left

    # -- subscriber identity (CAMARA KYC Match) --------------------------------------------

    def match_identity(self, phone: str, id_number: str) -> IdentityMatch:
        """Whether the number is registered here to this ID number; nothing else is said."""
        if not self.serves(phone):
            return IdentityMatch.NOT_SUBSCRIBER
        line = self._lines.get(phone)
        if line is not None:
            owner = line.owner_id
        else:
            # An unseeded number belongs to the first ID it is matched against, as a
            # record the carrier already had (the registry's first-name rule).
            bound_six = self._bound_last_six.get(phone)
            if phone not in self._bound_owner and bound_six not in (None, id_number[-6:]):
                return IdentityMatch.NO_MATCH
            owner = self._bound_owner.setdefault(phone, id_number)
        return IdentityMatch.MATCH if owner == id_number else IdentityMatch.NO_MATCH

    # -- look-ups --------------------------------------------------------------------------

    def phone_cards(self, id_number: str) -> list[tuple[str, datetime]]:
        """The numbers registered to an ID here, oldest activation first: (E.164, activated)."""
        seeded = self._by_owner.get(id_number)
        if seeded is not None:
            lines = [self._lines[phone] for phone in seeded]
            return sorted(((ln.phone, ln.activate_time) for ln in lines), key=lambda x: x[1])
        if not resident_id.checksum_valid(id_number):
            return []  # no such person
        return synthetic.default_lines(self.name, id_number, self.prefixes)

    def linked_accounts(self, phone: str, last_six: str) -> list[LinkedAccount]:
        """Accounts registered with a number, by platform and time; none unless ``last_six``
        are the last six characters of the owner's ID number."""
        if not self.serves(phone):
            return []
        line = self._lines.get(phone)
        if line is not None:
            accounts = list(line.linked_accounts) if line.owner_id[-6:] == last_six else []
        elif (
            self._bound_last_six.setdefault(phone, self._bound_owner.get(phone, last_six)[-6:])
            != last_six
        ):
            accounts = []
        else:
            accounts = [
                LinkedAccount(platform, name, registered)
                for platform, name, registered in synthetic.default_linked_accounts(
                    self.name, phone, [p for p in InternetPlatform if p != InternetPlatform.OTHER]
                )
            ]
        return sorted(accounts, key=lambda a: (a.platform, a.register_time))
