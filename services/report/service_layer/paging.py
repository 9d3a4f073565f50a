"""Keyset page tokens tied to the query they came from (AIP-158)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from datetime import datetime
from typing import Any, TypeVar

from services.common import pagination
from services.common.errors import InvalidArgument
from services.report.adapters.repository import Position

T = TypeVar("T")


def digest(query: dict[str, Any]) -> str:
    """A fingerprint of the filters: a token is refused with other filters than its own."""
    text = json.dumps(query, default=str, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def position(token: str, query_digest: str) -> Position | None:
    """Where the page after ``token`` starts; None for the first page."""
    found = pagination.decode(token)
    if found is None:
        return None
    try:
        if found["f"] != query_digest:
            raise ValueError("another query")
        return Position(datetime.fromisoformat(found["t"]), str(found["id"]))
    except (KeyError, TypeError, ValueError):
        raise InvalidArgument.field(
            "page_token", "is not a page token for this query (were the filters changed?)"
        ) from None


def token(last_time: datetime, last_id: str, query_digest: str) -> str:
    return pagination.encode({"t": last_time.isoformat(), "id": last_id, "f": query_digest})


def trim(
    found: list[T], size: int, query_digest: str, key: Callable[[T], tuple[datetime, str]]
) -> tuple[list[T], str]:
    """A page from ``size + 1`` rows read: the first ``size``, and the token of the next page
    when there was one more (empty on the last page)."""
    if len(found) <= size:
        return found, ""
    found = found[:size]
    return found, token(*key(found[-1]), query_digest)
