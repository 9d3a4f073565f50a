"""Opaque page tokens (AIP-158): a keyset position, encoded so clients do not parse it."""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

from services.common.errors import InvalidArgument

_VERSION = 1


def encode(position: dict[str, Any]) -> str:
    raw = json.dumps({**position, "_v": _VERSION}, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode(token: str, *, field: str = "page_token") -> dict[str, Any] | None:
    """The position in a token; None for an empty token (the first page)."""
    if not token:
        return None
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        position = json.loads(raw)
    except (binascii.Error, ValueError, UnicodeDecodeError):
        raise InvalidArgument.field(field, "is not a page token from this API") from None
    if not isinstance(position, dict) or position.pop("_v", None) != _VERSION:
        raise InvalidArgument.field(field, "is not a page token from this API")
    return position


def decode_before(token: str, *, field: str = "page_token") -> int | None:
    """The row id a newest-first page continues below; None for the first page."""
    position = decode(token, field=field)
    if position is None:
        return None
    before = position.get("before")
    if not isinstance(before, int) or isinstance(before, bool):
        raise InvalidArgument.field(field, "is not a page token from this API")
    return before
