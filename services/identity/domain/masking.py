"""Masked forms of personal values: what may be shown, stored in clear or logged.

The masked forms are computed once from the plain values when they are
written, so showing a user never needs a decryption.
"""

from __future__ import annotations

from services.common.indicators import Indicator, IndicatorKind, display


def mask_name(name: str) -> str:
    """All but the first character masked: ``张三`` → ``张*``, ``阿沛·阿旺晋美`` → ``阿******``."""
    chars = [ch for ch in name if not ch.isspace()]
    if not chars:
        return ""
    return chars[0] + "*" * max(len(chars) - 1, 1)


def mask_id_number(id_number: str) -> str:
    """The region code and the last two characters: ``110105**********2X``."""
    if len(id_number) < 8:
        return "*" * len(id_number)
    return id_number[:6] + "*" * (len(id_number) - 8) + id_number[-2:]


def mask_phone(e164: str) -> str:
    """``+8613800138000`` → ``+86138****8000`` (the shared display form)."""
    return display(Indicator(IndicatorKind.PHONE_NUMBER, e164))


def mask_account(account: Indicator) -> str:
    """A card or account number in the shared display form: ``6222********1234``."""
    return display(account)
