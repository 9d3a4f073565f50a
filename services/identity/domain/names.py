"""Personal names: what is accepted at registration. How names compare (payee
confirmation) is the shared rule of ``services.common.names``.

A name is kept as typed (after Unicode NFKC and whitespace clean-up) because it
must match the national registry.
"""

from __future__ import annotations

import unicodedata

from services.common.names import NameMatch, compare

__all__ = ["MAX_LENGTH", "InvalidName", "NameMatch", "clean", "compare"]

MAX_LENGTH = 64

# Separators inside names: the middle dot of minority names (阿沛·阿旺晋美) and its look-alikes.
_NAME_SEPARATORS = frozenset("·•‧・.-'’")


class InvalidName(ValueError):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def clean(raw: str) -> str:
    """The name as stored and sent to the registry, or ``InvalidName``."""
    name = " ".join(unicodedata.normalize("NFKC", raw).split())
    if not name:
        raise InvalidName("is required")
    if len(name) > MAX_LENGTH:
        raise InvalidName(f"must be at most {MAX_LENGTH} characters")
    for ch in name:
        if ch == " " or ch in _NAME_SEPARATORS:
            continue
        if not unicodedata.category(ch).startswith("L"):
            raise InvalidName("may contain only letters, spaces and name separators")
    if not any(unicodedata.category(ch).startswith("L") for ch in name):
        raise InvalidName("must contain a letter")
    return name
