"""Partners' local copies (snapshot and diffs, each with the list's checksum) and the
app's private look-ups, answered from the index, its checksums and its buckets, never the
database.

A version is a position in the change feed: the index at cursor N holds exactly the list
after change N, whichever replica answers. A diff since version V names every value the
changes after V touched, with its entry as the index holds it now (or its removal): applying
it to the list at V gives the list at the index's cursor, whose checksum it carries. A
version older than the changes this process remembers (``Lookup.recent_after``), of another
feed, or beyond its end is answered RESET.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Collection, Sequence
from dataclasses import dataclass

from services.common.indicators import IndicatorKind
from services.risk.domain.copies import ListColumns, ListEntry, columns_of, entries_in, entry_in
from services.risk.domain.private import (
    TAG_BYTES,
    BadPoint,
    TagCache,
    multiply,
    padded_size,
)
from services.risk.service_layer.lookup import Lookup

#: A diff of more changes than this is answered RESET (download again).
MAX_DIFF_CHANGES = 20_000
_RANDOM = secrets.SystemRandom()


@dataclass(frozen=True)
class ListSnapshot:
    version: int
    checksum: bytes
    #: Every entry; or, with ``columns``, only the verified ones.
    entries: list[ListEntry]
    #: The entries that are not verified, by kind (when asked for as columns).
    columns: list[ListColumns]

    def __len__(self) -> int:
        return len(self.entries) + sum(len(c) for c in self.columns)


@dataclass(frozen=True)
class ListDiff:
    version: int
    checksum: bytes
    additions: list[ListEntry]
    removals: list[tuple[IndicatorKind, str]]


async def snapshot(
    lookup: Lookup, kinds: Collection[IndicatorKind], *, as_columns: bool = False
) -> ListSnapshot:
    digest = await lookup.digest()
    # No await from here on: the entries, the version and the checksum are of one moment.
    index = lookup.index
    if not as_columns:
        entries = list(entries_in(index, kinds))
        return ListSnapshot(lookup.cursor, digest.checksum(kinds), entries, [])
    allowed: list[ListEntry] = []
    columns: list[ListColumns] = []
    for kind in sorted(kinds):
        found, verified = columns_of(kind, *index.columns(kind), index)
        allowed.extend(verified)
        if len(found):
            columns.append(found)
    return ListSnapshot(lookup.cursor, digest.checksum(kinds), allowed, columns)


async def diff(lookup: Lookup, version: int, kinds: Collection[IndicatorKind]) -> ListDiff | None:
    """The diff from ``version`` to the index's cursor; None when it must be RESET."""
    digest = await lookup.digest()
    if version > lookup.cursor:
        await lookup.refresh_once()  # another replica may have answered a newer version
        if version > lookup.cursor:
            return None
    # No await from here on: the changes, the entries and the checksum are of one moment.
    changes = lookup.recent_after(version, kinds, MAX_DIFF_CHANGES + 1)
    if changes is None or len(changes) > MAX_DIFF_CHANGES:
        return None
    touched = dict.fromkeys((c.kind, c.value) for c in changes)
    additions: list[ListEntry] = []
    removals: list[tuple[IndicatorKind, str]] = []
    for kind, value in touched:
        entry = entry_in(lookup.index, kind, value)
        if entry is None:
            removals.append((kind, value))
        else:
            additions.append(entry)
    return ListDiff(lookup.cursor, digest.checksum(kinds), additions, removals)


@dataclass(frozen=True)
class PrefixQuery:
    kind: IndicatorKind
    prefix: bytes
    blinded: bytes


@dataclass(frozen=True)
class PrefixAnswer:
    evaluated: bytes
    #: (tag, entry) for every listed entry of the bucket, and padding (entry None), shuffled.
    entries: list[tuple[bytes, ListEntry | None]]


class InvalidQuery(ValueError):
    def __init__(self, index: int) -> None:
        super().__init__(f"queries[{index}].blinded is not a valid point")
        self.index = index


class PrivateSearch:
    """Answers hash-prefix queries under the key of the epoch. Nothing a query carries, and
    nothing derived from it, is logged or kept."""

    def __init__(self, lookup: Lookup, master: bytes) -> None:
        self.lookup = lookup
        self.tags = TagCache(master)

    async def answer(self, queries: Sequence[PrefixQuery]) -> list[PrefixAnswer]:
        buckets = await self.lookup.buckets()
        self.tags.at(time.time())
        key, index, answers = self.tags.key, self.lookup.index, []
        for i, query in enumerate(queries):
            try:
                evaluated = multiply(key, query.blinded)
            except BadPoint:
                raise InvalidQuery(i) from None
            found: list[tuple[bytes, ListEntry | None]] = []
            for value in buckets.members(query.kind, query.prefix):
                entry = entry_in(index, query.kind, value)
                if entry is not None:
                    found.append((self.tags.tag(query.kind, value), entry))
            found.extend(
                (secrets.token_bytes(TAG_BYTES), None)
                for _ in range(padded_size(len(found)) - len(found))
            )
            _RANDOM.shuffle(found)
            answers.append(PrefixAnswer(evaluated, found))
        return answers
