"""Personal names as they are compared and shown, by the identity service and the
bank simulators alike, so a confirmation of payee does not depend on who answered.

Two spellings of one name compare equal when they differ only in width (full-width
letters), case, spaces or the separators of minority and foreign names
(``阿卜杜·热合曼`` = ``阿卜杜热合曼``).

Confirmation of payee: a payer warned of a different name is about to pay a stranger,
often a fraudster's mule account. Typing slips are common (a homophone picked from the
input method, a character left out), so a name that is almost right is a CLOSE_MATCH,
and the masked holder name lets the payer decide:

* MATCH: the same comparison form.
* CLOSE_MATCH: the same length with exactly one character different, or the holder's
  name with exactly one character missing that is neither the first nor the last.
* NO_MATCH: anything else (also an empty name).
"""

from __future__ import annotations

import enum
import unicodedata

_SEPARATORS = frozenset(" \t\u3000·•・.\u2027\u30fb-'’")


class NameMatch(enum.IntEnum):
    """Numbers match antifraud.identity.v1.PayeeMatch and antifraud.partner.v1.PayeeNameMatch."""

    MATCH = 1
    CLOSE_MATCH = 2
    NO_MATCH = 3


def comparison_form(name: str) -> str:
    folded = unicodedata.normalize("NFKC", name).casefold()
    return "".join(ch for ch in folded if not ch.isspace() and ch not in _SEPARATORS)


def same_name(a: str, b: str) -> bool:
    return comparison_form(a) == comparison_form(b)


def _one_substitution(typed: str, holder: str) -> bool:
    if len(typed) != len(holder) or len(holder) < 2:
        return False
    return sum(1 for a, b in zip(typed, holder, strict=True) if a != b) == 1


def _middle_character_missing(typed: str, holder: str) -> bool:
    if len(holder) < 3 or len(typed) != len(holder) - 1:
        return False
    return any(typed == holder[:i] + holder[i + 1 :] for i in range(1, len(holder) - 1))


def compare(typed: str, holder: str) -> NameMatch:
    """Confirmation of payee for a typed name against the holder's name."""
    a, b = comparison_form(typed), comparison_form(holder)
    if not a or not b:
        return NameMatch.NO_MATCH
    if a == b:
        return NameMatch.MATCH
    if _one_substitution(a, b) or _middle_character_missing(a, b):
        return NameMatch.CLOSE_MATCH
    return NameMatch.NO_MATCH


def mask_name(name: str) -> str:
    """All but the first character masked: ``张三`` → ``张*``, ``阿沛·阿旺晋美`` → ``阿******``."""
    chars = [ch for ch in name if not ch.isspace()]
    if not chars:
        return ""
    return chars[0] + "*" * max(len(chars) - 1, 1)
