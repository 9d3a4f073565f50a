"""Confirmation of payee: how the name a payer typed compares with the account holder's.

A payer warned of a different name is about to pay a stranger, often a fraudster's mule
account. Typing slips are common, though (a homophone picked from the input method, a
character left out), so a name that is almost right is a CLOSE_MATCH rather than a
NO_MATCH, and the bank shows the masked holder name to let the payer decide.

The rule, on the comparison form of both names (see ``names.comparison_form``):

* MATCH: the same.
* CLOSE_MATCH: the same length with exactly one character different, or the holder's
  name with exactly one character missing that is neither the first nor the last.
* NO_MATCH: anything else (also an empty name).
"""

from __future__ import annotations

import enum

from services.partners.domain.names import comparison_form


class PayeeNameMatch(enum.IntEnum):
    """Numbers match antifraud.partner.v1.PayeeNameMatch."""

    MATCH = 1
    CLOSE_MATCH = 2
    NO_MATCH = 3
    ACCOUNT_NOT_FOUND = 4


def _one_substitution(typed: str, holder: str) -> bool:
    if len(typed) != len(holder) or len(holder) < 2:
        return False
    return sum(1 for a, b in zip(typed, holder, strict=True) if a != b) == 1


def _middle_character_missing(typed: str, holder: str) -> bool:
    if len(holder) < 3 or len(typed) != len(holder) - 1:
        return False
    return any(typed == holder[:i] + holder[i + 1 :] for i in range(1, len(holder) - 1))


def compare_payee_name(typed: str, holder: str) -> PayeeNameMatch:
    """MATCH, CLOSE_MATCH or NO_MATCH for a typed name against the holder's name."""
    a, b = comparison_form(typed), comparison_form(holder)
    if not a or not b:
        return PayeeNameMatch.NO_MATCH
    if a == b:
        return PayeeNameMatch.MATCH
    if _one_substitution(a, b) or _middle_character_missing(a, b):
        return PayeeNameMatch.CLOSE_MATCH
    return PayeeNameMatch.NO_MATCH
