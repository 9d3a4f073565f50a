"""Confirmation of payee as a bank answers it: the shared name rule
(``services.common.names.compare``), or ACCOUNT_NOT_FOUND for an account the bank
does not hold."""

from __future__ import annotations

import enum

from services.common import names


class PayeeNameMatch(enum.IntEnum):
    """Numbers match antifraud.partner.v1.PayeeNameMatch."""

    MATCH = 1
    CLOSE_MATCH = 2
    NO_MATCH = 3
    ACCOUNT_NOT_FOUND = 4


def compare_payee_name(typed: str, holder: str) -> PayeeNameMatch:
    """MATCH, CLOSE_MATCH or NO_MATCH for a typed name against the holder's name."""
    return PayeeNameMatch(int(names.compare(typed, holder)))
