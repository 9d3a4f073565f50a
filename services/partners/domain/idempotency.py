"""First responses by idempotency key, in memory: a repeat gets the first answer, no effect.

Keyed by (method, key); a key reused with a different request is refused. Bounded: the
oldest keys are forgotten first, far beyond any retry window of a test or demo.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Generic, TypeVar

T = TypeVar("T")

DEFAULT_CAPACITY = 100_000


class KeyReused(Exception):
    """The idempotency key was used before with a different request."""


@dataclass(frozen=True, slots=True)
class Remembered(Generic[T]):
    fingerprint: str
    response: T
    summary: Mapping[str, str]


class IdempotencyMemo(Generic[T]):
    def __init__(self, capacity: int = DEFAULT_CAPACITY) -> None:
        self._capacity = capacity
        self._entries: OrderedDict[tuple[str, str], Remembered[T]] = OrderedDict()

    def recall(self, method: str, key: str, fingerprint: str) -> Remembered[T] | None:
        entry = self._entries.get((method, key))
        if entry is None:
            return None
        if entry.fingerprint != fingerprint:
            raise KeyReused(method)
        return entry

    def remember(
        self, method: str, key: str, fingerprint: str, response: T, summary: Mapping[str, str]
    ) -> None:
        self._entries[(method, key)] = Remembered(fingerprint, response, dict(summary))
        while len(self._entries) > self._capacity:
            self._entries.popitem(last=False)

    def clear(self) -> None:
        self._entries.clear()
