"""What partners answer, as the service sees it, and how a fan-out with missing parts is summed up.

A look-up that asks every carrier or bank answers with what it got: a partner
that is down or too slow makes the answer partial (and says so), never a failure.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Generic, TypeVar

T = TypeVar("T")


class SourceStatus(enum.IntEnum):
    """Numbers match the proto's SourceStatus."""

    OK = 1
    UNAVAILABLE = 2
    DEADLINE_EXCEEDED = 3


class PartnerFailure(Exception):
    """A partner did not answer; ``status`` says how."""

    def __init__(self, partner_id: str, status: SourceStatus, detail: str = "") -> None:
        super().__init__(f"{partner_id}: {status.name} {detail}".strip())
        self.partner_id = partner_id
        self.status = status
        self.detail = detail


@dataclass(frozen=True, slots=True)
class Partner:
    id: str
    display_name: str


@dataclass(frozen=True, slots=True)
class Answer(Generic[T]):
    """One partner's part of a fan-out: its value when it answered."""

    partner: Partner
    status: SourceStatus
    value: T | None = None


def complete(answers: Sequence[Answer[T]]) -> bool:
    return all(answer.status is SourceStatus.OK for answer in answers)


class RegistryMatch(enum.IntEnum):
    """The national registry's answer; numbers match antifraud.partner.v1.IdentityMatch."""

    MATCH = 1
    NAME_MISMATCH = 2
    NOT_FOUND = 3


@dataclass(frozen=True, slots=True)
class PhoneCard:
    masked_phone: str
    activate_time: datetime | None


@dataclass(frozen=True, slots=True)
class CarrierCards:
    card_count: int
    cards: tuple[PhoneCard, ...]


@dataclass(frozen=True, slots=True)
class LinkedAccount:
    platform: int  # antifraud.partner.v1.InternetPlatform, same numbers in our proto
    masked_account_name: str
    register_time: datetime | None
    carrier_id: str


@dataclass(frozen=True, slots=True)
class BankCard:
    bank_id: str
    bank_name: str
    card_type: int  # antifraud.partner.v1.CardType, same numbers in our proto
    masked_card_number: str


class PayeeAnswer(enum.IntEnum):
    """A bank's confirmation of payee; numbers match antifraud.partner.v1.PayeeNameMatch."""

    MATCH = 1
    CLOSE_MATCH = 2
    NO_MATCH = 3
    ACCOUNT_NOT_FOUND = 4


@dataclass(frozen=True, slots=True)
class PayeeCheck:
    answer: PayeeAnswer
    masked_holder_name: str


@dataclass(frozen=True, slots=True)
class Page(Generic[T]):
    items: tuple[T, ...]
    next_offset: int | None


def page_of(items: Sequence[T], offset: int, size: int) -> Page[T]:
    """One page of a list assembled afresh on every call (partners' answers are not stored)."""
    chunk = tuple(items[offset : offset + size])
    end = offset + len(chunk)
    return Page(chunk, end if end < len(items) else None)
