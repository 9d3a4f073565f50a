"""Masked forms of personal values: what may be shown, stored in clear or logged.

The masked forms are computed once from the plain values when they are
written, so showing a user never needs a decryption.
"""

from __future__ import annotations

from services.common.indicators import Indicator, IndicatorKind, display
from services.common.names import mask_name
from services.common.resident_id import mask as mask_id_number

__all__ = ["mask_account", "mask_id_number", "mask_name", "mask_phone"]


def mask_phone(e164: str) -> str:
    """``+8613800138000`` → ``+86138****8000`` (the shared display form)."""
    return display(Indicator(IndicatorKind.PHONE_NUMBER, e164))


def mask_account(account: Indicator) -> str:
    """A card or account number in the shared display form: ``6222********1234``."""
    return display(account)
