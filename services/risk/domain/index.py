"""The in-memory risk index: every listed value, packed small, answering look-ups
without touching the database.

A look-up tries every listed form that could match the value (host suffixes and
path prefixes of a URL, parent domains, containing CIDR ranges, an app's
package without its certificate) and across kinds where one implies the other
(a URL's host against listed domains and IPs; a phone number against listed SMS
senders). The allow list wins over any hit; otherwise the highest level does.
"""

from __future__ import annotations

import itertools
import struct
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from services.common.indicators import (
    Indicator,
    IndicatorKind,
    InvalidIndicator,
    ip_lookup_keys,
    lookalike_skeleton,
    lookup_keys,
    mixed_script,
    normalize,
)
from services.risk.domain.model import RiskLevel, Snapshot, stages_of

# level, flags, categories, reporters, first_seen, last_seen, expire: 20 bytes.
_PACK = struct.Struct("<BBHIIII")
#: The size of an entry as stored (``RiskIndex.columns``): level at byte 0, flags at byte 1,
#: categories at bytes 2-3 (little-endian).
ENTRY_BYTES = _PACK.size
_VERIFIED = 0x80  # a bit of the flags byte: the allow list stands behind the value
_NONE = int(RiskLevel.NONE)
#: The largest epoch second and count an entry holds (2106-02-07T06:28:15Z). Requests cannot
#: carry later times (``services.common.validation``); a stored one is held as this, "for ever".
U32_MAX = 0xFFFFFFFF
_LEVELS = frozenset(int(level) for level in RiskLevel)


def _u32(value: int) -> int:
    return 0 if value < 0 else U32_MAX if value > U32_MAX else value


class UnloadableRow(ValueError):
    """A stored row the index cannot hold (an unknown kind or level, a value not a string)."""


@dataclass(frozen=True, slots=True)
class Hit:
    packed: bytes  # the entry as stored: equal entries give equal verdicts
    label: str
    kind: IndicatorKind
    value: str  # the listed value that matched

    @property
    def snapshot(self) -> Snapshot:
        return snapshot_of(self.packed, self.label)


@dataclass(frozen=True, slots=True)
class Lookalike:
    """A domain or URL host that looks like a verified domain and is not it."""

    domain: str  # the verified domain imitated
    label: str  # its label
    imitation: str  # the domain (the host or a parent of it) that imitates it
    mixed_script: bool  # the imitation mixes scripts in one label


def _pack(s: Snapshot) -> bytes:
    """The entry for a snapshot; never fails: times and counts are held within 32 bits."""
    flags = (s.flags & 0x7F) | (_VERIFIED if s.verified else 0)
    return _PACK.pack(
        int(s.level),
        flags,
        s.categories & 0xFFFF,
        _u32(s.reporters),
        _u32(s.first_seen),
        _u32(s.last_seen),
        _u32(s.expire),
    )


def pack_listed(level: int, verified: bool, categories: int) -> bytes:
    """The entry a local copy holds: the verdict as last recorded, standing for ever."""
    return _PACK.pack(level, _VERIFIED if verified else 0, categories & 0xFFFF, 0, 0, 0, U32_MAX)


def snapshot_of(packed: bytes, label: str) -> Snapshot:
    """The verdict an entry as stored (``packed``) and its label stand for."""
    level, flags, categories, reporters, first_seen, last_seen, expire = _PACK.unpack(packed)
    return Snapshot(
        RiskLevel(level),
        categories,
        flags & 0x7F,
        reporters,
        first_seen,
        last_seen,
        expire,
        bool(flags & _VERIFIED),
        label,
    )


def _why(kind: IndicatorKind | None, level: Any, value: Any) -> str:
    if kind is None:
        return "unknown indicator kind"
    if level not in _LEVELS:
        return f"unknown risk level {level!r}"
    return f"value is {type(value).__name__}, not text"


#: Kinds whose only listed form is the value itself (phone numbers add SMS senders below).
_EXACT = frozenset(
    {
        IndicatorKind.BANK_ACCOUNT,
        IndicatorKind.PAYMENT_ACCOUNT,
        IndicatorKind.QQ_NUMBER,
        IndicatorKind.WECHAT_ID,
    }
)


_PHONE, _SENDER = IndicatorKind.PHONE_NUMBER, IndicatorKind.SMS_SENDER


def candidates(indicator: Indicator) -> list[tuple[IndicatorKind, str]]:
    """Every listed form (kind, value) that would match the indicator."""
    kind = indicator.kind
    if kind is IndicatorKind.PHONE_NUMBER:
        # The hot path of call screening: a number, and the same number as an SMS sender.
        return [(kind, indicator.value), (IndicatorKind.SMS_SENDER, indicator.value)]
    if kind in _EXACT:
        return [(kind, indicator.value)]
    found: list[tuple[IndicatorKind, str]] = [(kind, key) for key in lookup_keys(indicator)]
    if kind is IndicatorKind.URL:
        found.extend(_url_host_candidates(indicator.value))
    elif kind is IndicatorKind.SMS_SENDER and (
        indicator.value[0] == "+" or indicator.value.isdigit()
    ):  # a number or code sending SMS: as listed among phone numbers too (SP codes, 95588)
        found.append((IndicatorKind.PHONE_NUMBER, indicator.value))
    return found


def _url_host_candidates(
    value: str, ranges: RangeLengths | None = None
) -> list[tuple[IndicatorKind, str]]:
    """A URL's host as the listed IP address, range or domain that would contain it (only
    ranges of the prefix lengths ``ranges`` holds, when given)."""
    hostport = value.split("/", 1)[0]
    if hostport.startswith("["):  # an IPv6 host, as "[2001:db8::1]" or "[2001:db8::1]:8443"
        host = hostport[1 : hostport.find("]")]
        kind = IndicatorKind.IP_ADDRESS
    else:
        host = hostport.rsplit(":", 1)[0]
        is_ipv4 = host[-1:].isdigit() and host.replace(".", "").isdigit()
        kind = IndicatorKind.IP_ADDRESS if is_ipv4 else IndicatorKind.DOMAIN
    if not host:
        return []
    try:
        listed = normalize(kind, host)
    except InvalidIndicator:
        return []
    if ranges is not None and kind is IndicatorKind.IP_ADDRESS:
        return [(kind, key) for key in ranges.keys(listed.value)]
    return [(kind, key) for key in lookup_keys(listed)]


#: ``RiskIndex.decide``'s "until" when nothing among the candidates lapses or changes stage.
FOREVER = 1 << 62
#: Epoch numbers (``RiskIndex.epoch``, ``looks_epoch``), unique in the process: a number kept
#: with an answer of one index is never an epoch of another.
_EPOCHS = itertools.count(1)


def _range_length(value: str) -> tuple[int, int] | None:
    """(IP version, prefix length) of a listed range; None for a single address (always
    looked up) or a value that is no range."""
    address, slash, length = value.partition("/")
    if not slash or not length.isdigit():
        return None
    return (6 if ":" in address else 4), int(length)


class RangeLengths:
    """Which prefix lengths listed IP ranges have, counted as entries come and go: a look-up
    tries only the containing networks of those lengths (a handful) rather than every one
    down to /8 (24 for an IPv4 address, 112 for IPv6), which could never match."""

    def __init__(self) -> None:
        self._counts: dict[tuple[int, int], int] = {}
        #: Per IP version, the listed lengths, longest first (most specific match first).
        self.lengths: dict[int, tuple[int, ...]] = {4: (), 6: ()}
        #: A new number whenever ``lengths`` changes: candidates computed under another epoch
        #: are stale (``RiskIndex.epoch``).
        self.epoch = next(_EPOCHS)

    def add(self, value: str) -> None:
        key = _range_length(value)
        if key is not None:
            seen = self._counts.get(key, 0)
            self._counts[key] = seen + 1
            if not seen:
                self._changed(key[0])

    def remove(self, value: str) -> None:
        key = _range_length(value)
        if key is not None and key in self._counts:
            left = self._counts[key] - 1
            if left:
                self._counts[key] = left
            else:
                del self._counts[key]
                self._changed(key[0])

    def _changed(self, version: int) -> None:
        self.lengths[version] = tuple(
            sorted((n for v, n in self._counts if v == version), reverse=True)
        )
        self.epoch = next(_EPOCHS)

    def keys(self, value: str) -> list[str]:
        """``lookup_keys`` of a normalised IP address or range, listed lengths only."""
        return ip_lookup_keys(value, self.lengths[6 if ":" in value else 4])


class RiskIndex:
    """Listed values and their verdicts; written by one refresher, read by every look-up."""

    def __init__(self) -> None:
        # One dictionary per kind: look-ups need no key building, only the value.
        # Keyed by kind (an IntEnum: its number finds the same entries, as ``decide`` uses).
        self._entries: dict[int, dict[str, bytes]] = {k: {} for k in IndicatorKind}
        self._labels: dict[tuple[int, str], str] = {}
        # Verdicts that change as their assertions lapse: (start, packed, label) per stage.
        self._stages: dict[tuple[int, str], tuple[tuple[int, bytes, str], ...]] = {}
        # Verified domains by what they look like (lookalike_skeleton): skeleton -> domains.
        self._verified_looks: dict[str, set[str]] = {}
        self._verified_skeleton: dict[str, str] = {}
        #: A new number whenever the verified domains change (``looks_epoch``).
        self._looks_epoch = next(_EPOCHS)
        #: A new number whenever anything in the index changes (``version``).
        self._version = next(_EPOCHS)
        self._ranges = RangeLengths()

    def _track_verified(self, kind: IndicatorKind, value: str, verified: bool) -> None:
        if kind is not IndicatorKind.DOMAIN:
            return
        if verified:
            self._looks_epoch = next(_EPOCHS)
            skeleton = self._verified_skeleton[value] = lookalike_skeleton(value)
            self._verified_looks.setdefault(skeleton, set()).add(value)
            return
        old: str | None = self._verified_skeleton.pop(value, None)  # cheap: a dict miss
        if old is None:
            return
        self._looks_epoch = next(_EPOCHS)
        found = self._verified_looks.get(old)
        if found is not None:
            found.discard(value)
            if not found:
                del self._verified_looks[old]

    def __len__(self) -> int:
        return sum(len(entries) for entries in self._entries.values())

    def put(self, kind: IndicatorKind, value: str, snapshot: Snapshot) -> None:
        self._version = next(_EPOCHS)
        entries = self._entries[kind]
        self._track_verified(kind, value, snapshot.listed and snapshot.verified)
        if snapshot.later:
            self._stages[(kind, value)] = tuple(
                (start, _pack(stage), stage.label) for start, stage in snapshot.later
            )
        else:
            self._stages.pop((kind, value), None)
        if not snapshot.listed:
            if entries.pop(value, None) is not None and kind is IndicatorKind.IP_ADDRESS:
                self._ranges.remove(value)
            self._labels.pop((kind, value), None)
            return
        if kind is IndicatorKind.IP_ADDRESS and value not in entries:
            self._ranges.add(value)
        entries[value] = _pack(snapshot)
        if snapshot.label:
            self._labels[(kind, value)] = snapshot.label
        else:
            self._labels.pop((kind, value), None)

    def load(self, rows: Iterable[Sequence[Any]]) -> list[tuple[Any, str]]:
        """Bulk load at start from rows of (row id, kind, value, level, flags, categories,
        reporters, first_seen, last_seen, expire, verified, label, stages), packed as ``put``
        packs them (``stages`` as stored: model.stages_text). A row the index cannot hold
        is left out and returned as (row id, why): one bad row never stops a server."""
        self._version = next(_EPOCHS)
        entries, labels, pack = self._entries, self._labels, _PACK.pack
        kinds = {int(k): k for k in IndicatorKind if k}
        levels, u32 = _LEVELS, _u32
        skipped: list[tuple[Any, str]] = []
        for row in rows:
            try:
                (
                    _row_id, kind_number, value, level, flags, cats, reporters,
                    first, last, expire, verified, label, stages,
                ) = row  # fmt: skip
                kind = kinds.get(kind_number)
                if kind is None or level not in levels or type(value) is not str:
                    raise UnloadableRow(_why(kind, level, value))
                staged = (
                    tuple((start, _pack(stage), stage.label) for start, stage in stages_of(stages))
                    if stages
                    else ()
                )
                entry = pack(
                    level, (flags & 0x7F) | (_VERIFIED if verified else 0), cats & 0xFFFF,
                    u32(reporters), u32(first), u32(last), u32(expire),
                )  # fmt: skip
                if kind is IndicatorKind.IP_ADDRESS and value not in entries[kind]:
                    self._ranges.add(value)
                entries[kind][value] = entry
                if label:
                    labels[(kind, value)] = label
                if verified:
                    self._track_verified(kind, value, True)
                if staged:
                    self._stages[(kind, value)] = staged
            except (UnloadableRow, TypeError, ValueError, struct.error) as exc:
                skipped.append((row[0] if row else None, str(exc) or type(exc).__name__))
        return skipped

    def load_listed(
        self, kind: IndicatorKind, values: Iterable[str], packed: Iterable[bytes]
    ) -> None:
        """Bulk load of entries without label, stages or the allow list behind them (a local
        copy's columns): ``packed`` as ``pack_listed`` packs them, pairwise with ``values``."""
        self._version = next(_EPOCHS)
        entries = self._entries[kind]
        if kind is IndicatorKind.DOMAIN:  # may hold verified entries: a look-alike's "real one"
            self._looks_epoch = next(_EPOCHS)
        if kind is not IndicatorKind.IP_ADDRESS:
            entries.update(zip(values, packed, strict=True))
            return
        for value, entry in zip(values, packed, strict=True):
            if value not in entries:
                self._ranges.add(value)
            entries[value] = entry

    def columns(self, kind: IndicatorKind) -> tuple[list[str], list[bytes]]:
        """Every listed value of a kind and its entry as stored, as two lists in the same
        order, copied: safe to use while the index changes."""
        entries = self._entries[kind]
        return list(entries), list(entries.values())

    def packed(self, kind: IndicatorKind, value: str) -> bytes | None:
        """The entry as stored (level, flags, categories, ...), or None when not listed."""
        return self._entries[kind].get(value)

    def numbers(self) -> tuple[dict[str, bytes], dict[str, bytes]]:
        """The listed phone numbers and SMS senders, each value to its entry as stored: the
        index's own tables, not copies, for a caller that only asks whether a number is in
        them (an unlisted number is in neither) and keeps them no longer than a call."""
        entries = self._entries
        return entries[_PHONE], entries[_SENDER]

    def label(self, kind: IndicatorKind, value: str) -> str:
        return self._labels.get((kind, value), "")

    def items(self, kind: IndicatorKind) -> list[tuple[str, bytes]]:
        """Every listed value of a kind with its entry as stored, copied: safe to iterate
        while the index changes."""
        return list(self._entries[kind].items())

    def get(self, kind: IndicatorKind, value: str) -> Snapshot | None:
        packed = self._entries[kind].get(value)
        return None if packed is None else snapshot_of(packed, self._labels.get((kind, value), ""))

    def candidates(self, indicator: Indicator) -> list[tuple[IndicatorKind, str]]:
        """``candidates``, less the IP ranges of prefix lengths nothing listed has."""
        kind = indicator.kind
        if kind is IndicatorKind.IP_ADDRESS:
            return [(kind, key) for key in self._ranges.keys(indicator.value)]
        if kind is IndicatorKind.URL:
            found: list[tuple[IndicatorKind, str]] = [(kind, key) for key in lookup_keys(indicator)]
            found.extend(_url_host_candidates(indicator.value, self._ranges))
            return found
        return candidates(indicator)

    @property
    def epoch(self) -> int:
        """Stands for the index's ``candidates`` rules: a new number when they change (an IP
        range of a prefix length not listed before, or the last of one retired), so a caller
        keeping an indicator's candidates keeps them only while this is the same number.
        Numbers are never reused, by this index or another in the process."""
        return self._ranges.epoch

    @property
    def looks_epoch(self) -> int:
        """Stands for the verified domains ``lookalike`` compares with: a new number when they
        change, so a caller keeping a ``lookalike`` answer keeps it only while this is the
        same number (never reused, as ``epoch``)."""
        return self._looks_epoch

    @property
    def version(self) -> int:
        """A new number whenever anything in the index changes (never reused, as ``epoch``):
        a ``decide`` answer stands while this is the same number, until its second."""
        return self._version

    def lookup(self, indicator: Indicator, now: int) -> Hit | None:
        """The hit that decides the verdict, or None when nothing listed matches."""
        entries = self._entries
        kind = indicator.kind
        if kind is _PHONE:  # call screening: most numbers are listed neither way
            value = indicator.value
            if value not in entries[_PHONE] and value not in entries[_SENDER]:
                return None
        elif kind in _EXACT and indicator.value not in entries[kind]:
            return None
        found, _ = self.decide(self.candidates(indicator), now)
        if found is None:
            return None
        packed, label, listed_kind, listed = found
        return Hit(packed, label, IndicatorKind(listed_kind), listed)

    def decide(
        self, candidates: Sequence[tuple[int, str]], now: int
    ) -> tuple[tuple[bytes, str, int, str] | None, int]:
        """``lookup`` over an indicator's ``candidates`` (computed under the current
        ``epoch``; kinds as ``IndicatorKind`` or their numbers), as the fields of its ``Hit``
        (packed, label, kind as given, value): the stage in force at ``now``, the allow list
        first, else the highest level. With it, the second until which that answer stands
        while the index stays as it is (``version``): the first later second at which an
        entry among the candidates lapses or enters its next stage (``FOREVER`` when none
        does)."""
        entries, staged, labels = self._entries, self._stages, self._labels
        best: tuple[bytes, str, int, str] | None = None
        until = FOREVER
        for kind, value in candidates:
            packed = entries[kind].get(value)
            if packed is None:
                continue
            label = None
            if staged:
                stages = staged.get((kind, value))
                if stages is not None:  # assertions behind it lapse: the stage in force
                    for start, stage_packed, stage_label in stages:
                        if start > now:
                            until = min(until, start)
                            break
                        packed, label = stage_packed, stage_label
            expire = _PACK.unpack_from(packed)[6]
            if expire <= now:
                continue  # lapsed; the sweeper will record it
            until = min(until, expire)
            if packed[0] <= _NONE and not packed[1] & _VERIFIED:
                continue  # nothing stands any more
            if label is None:
                label = labels.get((kind, value), "")
            if packed[1] & _VERIFIED:
                return (packed, label, kind, value), until
            if best is None or packed[0] > best[0][0]:
                best = packed, label, kind, value
        return best, until

    def lookalike(self, indicator: Indicator) -> Lookalike | None:
        """The verified domain a domain or URL host imitates (it, or a parent of it, looks like
        a verified domain and is not one), or None."""
        looks = self._verified_looks
        if not looks:
            return None
        kind = indicator.kind
        if kind is IndicatorKind.URL:
            domains = [v for k, v in _url_host_candidates(indicator.value) if k is kind.DOMAIN]
        elif kind is IndicatorKind.DOMAIN:
            domains = lookup_keys(indicator)
        else:
            return None
        if not domains:
            return None
        verified = self._entries[IndicatorKind.DOMAIN]
        if any(d in verified and verified[d][1] & _VERIFIED for d in domains):
            return None  # the real one, or under it
        for domain in domains:
            for original in sorted(looks.get(lookalike_skeleton(domain), ())):
                if original != domain:
                    label = self._labels.get((IndicatorKind.DOMAIN, original), "")
                    return Lookalike(original, label, domain, mixed_script(domain))
        return None
