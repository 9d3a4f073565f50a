"""How values are shown: the people around a case masked, the fraud indicators under review
as they are listed (analysts read them through the gateway in clear anyway); neither ever goes
into a URL or a log line."""

from __future__ import annotations

from services.common.indicators import Indicator, IndicatorKind, display
from services.common.redaction import mask_identifiers


def masked_phone(e164: str) -> str:
    """A person's phone number as ``+86138****8000``."""
    return display(Indicator(IndicatorKind.PHONE_NUMBER, e164)) if e164 else ""


def masked_text(text: str) -> str:
    """Free text with ID numbers, cards and phone numbers masked (the services store it masked
    already; this holds if one slipped through)."""
    return mask_identifiers(text).text
