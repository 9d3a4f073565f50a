"""The outbox payload of an SMS delivery: everything its send needs, so no read comes first.

Written with the delivery, in the same transaction; the text is derived then (it is a pure
function of the warning), so every retry sends the same words. The payload holds a phone
number, so it is sealed (AES-GCM) with the warning service's vault.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from json.encoder import encode_basestring_ascii

from services.common.vault import Vault
from services.warning.domain.model import Channel, Delivery
from services.warning.domain.texts import delivery_text

_PLACE = "outbox.payload:sms"

#: A text as a JSON string: a fan-out's thousands of jobs share a handful of texts (one per
#: level, the flash text), and encoding a long Chinese text was a fifth of a job's cost.
_json_text = lru_cache(maxsize=256)(lambda text: json.dumps(text, ensure_ascii=False))


@dataclass(frozen=True)
class SmsJob:
    delivery_id: str
    warning_id: str | None
    phone_number: str
    text: str
    flash: bool

    @classmethod
    def of(cls, delivery: Delivery, warning_text: str | None, person_phone: str | None) -> SmsJob:
        """The job of a warning's delivery (``warning_text`` given) or a notification's."""
        if warning_text is None or person_phone is None:
            text = delivery.text or ""
        else:
            text = delivery_text(delivery.channel, delivery.guardian, warning_text, person_phone)
        return cls(
            delivery.id,
            delivery.warning_id,
            delivery.phone_number or "",
            text,
            delivery.channel == Channel.FLASH_SMS,
        )

    def encode(self, vault: Vault) -> bytes:
        return vault.seal(self._json(), place=_PLACE)

    def _json(self) -> str:
        """``{"d": ..., "w": ..., "p": ..., "t": ..., "f": ...}``: the same object as
        ``json.dumps`` of the fields, put together from each field's own encoding (for a
        string, the encoder ``json.dumps`` itself calls, without its two calls around it)."""
        warning_id = "null" if self.warning_id is None else encode_basestring_ascii(self.warning_id)
        return (
            f'{{"d": {encode_basestring_ascii(self.delivery_id)}, "w": {warning_id}, '
            f'"p": {encode_basestring_ascii(self.phone_number)}, "t": {_json_text(self.text)}, '
            f'"f": {"true" if self.flash else "false"}}}'
        )

    @classmethod
    def decode(cls, vault: Vault, payload: bytes) -> SmsJob:
        # A job queued by an older version is clear JSON.
        text = payload.decode() if payload[:1] == b"{" else vault.open(payload, place=_PLACE)
        raw = json.loads(text)
        return cls(raw["d"], raw["w"], raw["p"], raw["t"], bool(raw["f"]))
