"""The risk list as partners copy it: entries, their canonical form, and the list's checksum.

An entry is what a local copy needs to decide (kind, value, level, categories, verified,
label). The checksum of a list is the sum modulo 2^256 of SHA-256 over every entry's
canonical form: a sum, so the service and every copy keep it incrementally (add an entry's
hash when it is put, subtract it when it goes) and never re-hash the list. Sums are kept per
kind, so a copy of any set of kinds has its checksum by adding a few numbers.

A snapshot travels as columns by kind (values, levels, category masks) and each side hashes
a column at a time (``columns_sum``): the per-entry work runs inside C loops (map, zip, dict
look-ups), the Python interpreter only once per column.

Expiry reaches copies through the feed (the sweeper records each lapse as a change): a copy
holds the verdict as last recorded, not the later stages the service's own index applies
from the second an assertion lapses.
"""

from __future__ import annotations

import hashlib
import operator
import struct
import sys
from array import array
from collections.abc import Collection, Iterator, Sequence
from dataclasses import dataclass, replace
from itertools import compress
from typing import NamedTuple

from services.common.indicators import NOTE_SPOOFED_SERVICE_CODE, Indicator, IndicatorKind
from services.risk.domain.index import ENTRY_BYTES, U32_MAX, Hit, RiskIndex
from services.risk.domain.model import FraudCategory, RiskLevel, Snapshot

MODULUS = 1 << 256
CHECKSUM_BYTES = 32
_CATEGORIES = struct.Struct("<H")
_VERIFIED = 0x80  # the flags byte of an index entry: the allow list stands behind it
#: A flags byte -> 1 where the allow list stands behind the entry, else 0 (bytes.translate).
_IS_VERIFIED = bytes(1 if b & _VERIFIED else 0 for b in range(256))
_NOT_VERIFIED = bytes(0 if b & _VERIFIED else 1 for b in range(256))
_DIGEST = type(hashlib.sha256()).digest


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


@dataclass(frozen=True, slots=True)
class ListColumns:
    """Entries of one kind that are not verified (no label), as columns: entry i is
    ``values[i]`` at ``levels[i]`` with ``categories[i]``."""

    kind: IndicatorKind
    values: list[str]
    levels: bytes
    categories: list[int]

    def __len__(self) -> int:
        return len(self.values)

    def part(self, start: int, stop: int) -> ListColumns:
        return ListColumns(
            self.kind,
            self.values[start:stop],
            self.levels[start:stop],
            self.categories[start:stop],
        )


def columns_of(
    kind: IndicatorKind, values: list[str], packed: Sequence[bytes], labels: RiskIndex
) -> tuple[ListColumns, list[ListEntry]]:
    """Entries as ``RiskIndex.columns`` gives them, split into columns (not verified) and
    the verified entries (few: the allow list), without a Python step per entry."""
    joined = b"".join(packed)
    if len(joined) != len(packed) * ENTRY_BYTES:
        raise ValueError("index entries are not all of one size")
    levels = joined[0::ENTRY_BYTES]
    flags = joined[1::ENTRY_BYTES]
    words = array("H", joined)  # the categories are the second 16-bit word of each entry
    if sys.byteorder == "big":
        words.byteswap()
    categories = words[1 :: ENTRY_BYTES // 2].tolist()
    verified = flags.translate(_IS_VERIFIED)
    if 1 not in verified:
        return ListColumns(kind, values, levels, categories), []
    keep = flags.translate(_NOT_VERIFIED)
    allowed = [
        entry_of_packed(kind, value, entry, labels.label(kind, value))
        for value, entry in compress(zip(values, packed, strict=True), verified)
    ]
    columns = ListColumns(
        kind,
        list(compress(values, keep)),
        bytes(compress(levels, keep)),
        list(compress(categories, keep)),
    )
    return columns, allowed


def columns_sum(kind: int, values: Sequence[str], verdicts: Sequence[tuple[int, int]]) -> int:
    """The sum of the digests of entries that are not verified: ``values[i]`` with
    ``verdicts[i]`` = (level, categories). The same as adding ``ListEntry.digest`` of each, in
    C loops: the canonical forms are the value between a prefix of the kind and a suffix of
    the verdict, and a list has few distinct verdicts."""
    suffixes = {v: f"\x1f{v[0]}\x1f{v[1]}\x1f0\x1f" for v in set(verdicts)}
    forms = map(
        operator.add, map(f"{int(kind)}\x1f".__add__, values), map(suffixes.__getitem__, verdicts)
    )
    return sum(map(int.from_bytes, map(_DIGEST, map(hashlib.sha256, map(str.encode, forms)))))


def checksum_bytes(total: int) -> bytes:
    return (total % MODULUS).to_bytes(CHECKSUM_BYTES, "big")


class ListDigest:
    """The checksum of a list, per kind, kept as entries come and go."""

    def __init__(self) -> None:
        self._sums: dict[int, int] = {}

    def add(self, entry: ListEntry) -> None:
        self._sums[entry.kind] = (self._sums.get(entry.kind, 0) + entry.digest()) % MODULUS

    def add_sum(self, kind: int, total: int) -> None:
        """Add entries of ``kind`` whose digests sum to ``total`` (``columns_sum``)."""
        self._sums[int(kind)] = (self._sums.get(int(kind), 0) + total) % MODULUS

    def add_columns(self, columns: ListColumns) -> None:
        self.add_sum(columns.kind, columns_sum(columns.kind, columns.values, verdicts(columns)))

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


def verdicts(columns: ListColumns) -> list[tuple[int, int]]:
    """(level, categories) of each entry of the columns."""
    return list(zip(columns.levels, columns.categories, strict=True))


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
