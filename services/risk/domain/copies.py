"""The risk list as partners copy it: entries, their canonical form, and the list's checksum.

An entry is what a local copy needs to decide (kind, value, level, categories, verified,
label). The checksum of a list is the sum modulo 2^256 of SHA-256 over every entry's
canonical form: a sum, so the service and every copy keep it incrementally (add an entry's
hash when it is put, subtract it when it goes) and never re-hash the list. Sums are kept per
kind, so a copy of any set of kinds has its checksum by adding a few numbers.

Expiry reaches copies through the feed (the sweeper records each lapse as a change): a copy
holds the verdict as last recorded, not the later stages the service's own index applies
from the second an assertion lapses.
"""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Collection, Iterator
from dataclasses import dataclass, replace
from typing import NamedTuple

from services.common.indicators import NOTE_SPOOFED_SERVICE_CODE, Indicator, IndicatorKind
from services.risk.domain.index import U32_MAX, Hit, RiskIndex
from services.risk.domain.model import FraudCategory, RiskLevel, Snapshot
from services.risk.domain.private import Buckets

MODULUS = 1 << 256
CHECKSUM_BYTES = 32
_CATEGORIES = struct.Struct("<H")
_VERIFIED = 0x80  # the flags byte of an index entry: the allow list stands behind it


class ListEntry(NamedTuple):
    kind: int
    value: str
    level: int
    categories: int  # mask of FraudCategory bits
    verified: bool
    label: str

    def canonical(self) -> bytes:
        return (
            f"{self.kind}\x1f{self.value}\x1f{self.level}\x1f{self.categories}"
            f"\x1f{int(self.verified)}\x1f{self.label}"
        ).encode()

    def digest(self) -> int:
        return int.from_bytes(hashlib.sha256(self.canonical()).digest(), "big")

    def snapshot(self) -> Snapshot:
        """The entry as an index holds it: the verdict, standing until the feed says otherwise."""
        return Snapshot(
            RiskLevel(self.level), self.categories, 0, 0, 0, 0, U32_MAX, self.verified, self.label
        )


def entry_of_packed(kind: IndicatorKind, value: str, packed: bytes, label: str) -> ListEntry:
    """The entry for an index entry as ``RiskIndex`` packs it (level, flags, categories...)."""
    verified = bool(packed[1] & _VERIFIED)
    return ListEntry(
        int(kind),
        value,
        packed[0],
        _CATEGORIES.unpack_from(packed, 2)[0],
        verified,
        label if verified else "",
    )


def entry_in(index: RiskIndex, kind: IndicatorKind, value: str) -> ListEntry | None:
    packed = index.packed(kind, value)
    if packed is None:
        return None
    return entry_of_packed(kind, value, packed, index.label(kind, value))


def entries_in(index: RiskIndex, kinds: Collection[IndicatorKind]) -> Iterator[ListEntry]:
    """Every entry of these kinds, as the index holds them now (copy the result before
    yielding to anything that may change the index)."""
    for kind in sorted(kinds):
        for value, packed in index.items(kind):
            yield entry_of_packed(kind, value, packed, index.label(kind, value))


def checksum_bytes(total: int) -> bytes:
    return (total % MODULUS).to_bytes(CHECKSUM_BYTES, "big")


class ListDigest:
    """The checksum of a list, per kind, kept as entries come and go."""

    def __init__(self) -> None:
        self._sums: dict[int, int] = {}

    def add(self, entry: ListEntry) -> None:
        self._sums[entry.kind] = (self._sums.get(entry.kind, 0) + entry.digest()) % MODULUS

    def remove(self, entry: ListEntry) -> None:
        self._sums[entry.kind] = (self._sums.get(entry.kind, 0) - entry.digest()) % MODULUS

    def replace(self, old: ListEntry | None, new: ListEntry | None) -> None:
        if old == new:
            return
        if old is not None:
            self.remove(old)
        if new is not None:
            self.add(new)

    def checksum(self, kinds: Collection[IndicatorKind]) -> bytes:
        return checksum_bytes(sum(self._sums.get(int(kind), 0) for kind in kinds))


class SharedList:
    """What the service keeps beside its index for partners' copies and private look-ups:
    the checksum per kind and the private look-up buckets, both moved by every change."""

    def __init__(self) -> None:
        self.digest = ListDigest()
        self.buckets = Buckets()

    def add(self, entry: ListEntry) -> None:
        self.digest.add(entry)
        self.buckets.add(entry.kind, entry.value)

    def track(self, old: ListEntry | None, new: ListEntry | None) -> None:
        """An entry changed from ``old`` to ``new`` (None: not listed)."""
        self.digest.replace(old, new)
        if old is None and new is not None:
            self.buckets.add(new.kind, new.value)
        elif old is not None and new is None:
            self.buckets.remove(old.kind, old.value)


@dataclass(frozen=True, slots=True)
class LocalVerdict:
    """A verdict decided from a copy or a private look-up: what a plain check's verdict says
    of level, categories and the allow list."""

    level: RiskLevel
    categories: int  # mask of FraudCategory bits
    verified: bool = False
    label: str = ""
    matched_kind: IndicatorKind | None = None
    matched_value: str = ""


NOT_LISTED = LocalVerdict(RiskLevel.NONE, 0)


def decide(indicator: Indicator, hit: Hit | None) -> LocalVerdict:
    """The verdict for ``indicator`` from the hit the index chose, with the rules a plain
    check adds: an official service code shown with an international prefix is at least
    MEDIUM, impersonating officials (``entrypoints/convert.fill_verdict``)."""
    found = NOT_LISTED
    if hit is not None:
        s = hit.snapshot
        found = LocalVerdict(s.level, s.categories, s.verified, s.label, hit.kind, hit.value)
    if NOTE_SPOOFED_SERVICE_CODE in indicator.notes and found.level < RiskLevel.MEDIUM:
        impersonating = 1 << int(FraudCategory.IMPERSONATING_OFFICIALS)
        found = replace(found, level=RiskLevel.MEDIUM, categories=found.categories | impersonating)
    return found
