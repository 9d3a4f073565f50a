"""A verified local copy of the risk list, for carriers and banks that screen at memory speed
and keep screening when the risk service cannot be reached.

``RiskCopy`` holds the list in memory (the risk service's own index, so look-ups match as a
plain check matches: the same normalisation, host suffixes and path prefixes, parent
domains, CIDR ranges, numbers as SMS senders, the allow list first) and keeps its checksum
as entries come and go. ``RiskListFollower`` downloads it (DownloadRiskList), applies diffs
(ComputeRiskListDiff), verifies the checksum after each, and downloads again on RESET or a
mismatch. While the service is unreachable the copy stays as it was and keeps answering.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections.abc import Iterable, Sequence

import grpc

from services.api.antifraud.risk.v1 import risk_pb2, risk_pb2_grpc
from services.common.indicators import IndicatorKind, normalize
from services.common.logs import get_logger
from services.common.loops import cancel_and_wait
from services.risk.domain.copies import (
    MODULUS,
    ListEntry,
    LocalVerdict,
    checksum_bytes,
    columns_sum,
    decide,
    entries_in,
    entry_in,
)
from services.risk.domain.index import U32_MAX, RiskIndex, pack_listed
from services.risk.domain.model import NOTHING, RiskLevel

_KINDS = {int(kind): kind for kind in IndicatorKind if kind}
_LEVELS = frozenset(int(level) for level in RiskLevel)

log = get_logger("clients.risk_copy")
Metadata = Sequence[tuple[str, str]]


class CopyMismatch(Exception):
    """The copy's checksum is not the service's: throw it away and download again."""


def entry_of(pb: risk_pb2.RiskListEntry) -> ListEntry:
    return ListEntry(pb.kind, pb.value, pb.level, pb.category_mask, pb.verified, pb.label)


class Loading:
    """A download being loaded chunk by chunk as it arrives (hashing and indexing overlap
    the transfer), into a fresh index that replaces the copy's only once it verifies."""

    def __init__(self) -> None:
        self.index = RiskIndex()
        self.total = 0
        self.skipped = 0
        #: Entries received: the index must hold as many (a value sent twice is refused).
        self.received = 0

    def add_messages(self, entries: Iterable[risk_pb2.RiskListEntry]) -> None:
        self.add((e.kind, e.value, e.level, e.category_mask, e.verified, e.label) for e in entries)

    def add(self, entries: Iterable[tuple[int, str, int, int, bool, str]]) -> None:
        total = 0
        rows: list[tuple[object, ...]] = []
        sha256, from_bytes, append = hashlib.sha256, int.from_bytes, rows.append
        for kind, value, level, categories, verified, label in entries:
            # ListEntry.canonical, inlined: this loop runs once per entry of the list.
            canonical = (
                f"{kind}\x1f{value}\x1f{level}\x1f{categories}\x1f{int(verified)}\x1f{label}"
            )
            total += from_bytes(sha256(canonical.encode()).digest(), "big")
            append(
                (None, kind, value, level, 0, categories, 0, 0, 0, U32_MAX, verified, label, None)
            )
        self.total += total
        self.received += len(rows)
        self.skipped += len(self.index.load(rows))

    def add_columns(self, columns: risk_pb2.RiskListColumns) -> None:
        """Entries of one kind as columns (RISK_LIST_ENCODING_COLUMNS): decoded, hashed and
        indexed a column at a time; CopyMismatch for a chunk that cannot be right."""
        kind = _KINDS.get(columns.kind)
        if kind is None:
            raise CopyMismatch(f"a downloaded chunk has an unknown kind {columns.kind}")
        values = list(columns.values)
        verdicts = list(zip(columns.levels, columns.category_masks, strict=False))
        if not len(values) == len(verdicts) == len(columns.levels) == len(columns.category_masks):
            raise CopyMismatch("a downloaded chunk's columns are not of one length")
        packed: dict[tuple[int, int], bytes] = {}
        for level, categories in set(verdicts):  # a list has few distinct verdicts
            if level not in _LEVELS:
                raise CopyMismatch(f"a downloaded chunk has an unknown level {level}")
            packed[(level, categories)] = pack_listed(level, False, categories)
        self.total += columns_sum(kind, values, verdicts)
        self.received += len(values)
        self.index.load_listed(kind, values, map(packed.__getitem__, verdicts))


class RiskCopy:
    """The list of some kinds at one version, in memory, with its running checksum."""

    def __init__(self) -> None:
        self.index = RiskIndex()
        self.version = ""
        self.kinds: tuple[IndicatorKind, ...] = ()
        self._sum = 0

    def __len__(self) -> int:
        return len(self.index)

    @property
    def checksum(self) -> bytes:
        return checksum_bytes(self._sum)

    def load(self, entries: Iterable[ListEntry], version: str, checksum: bytes) -> None:
        """Replace the copy by a downloaded list; CopyMismatch (and no change) when it does
        not add up to ``checksum``."""
        loading = Loading()
        loading.add(entries)
        self.finish(loading, version, checksum)

    def finish(self, loading: Loading, version: str, checksum: bytes) -> None:
        """Replace the copy by what ``loading`` holds, if it adds up to ``checksum``."""
        if checksum_bytes(loading.total) != checksum:
            raise CopyMismatch("the downloaded list does not add up to its checksum")
        if loading.skipped:
            raise CopyMismatch(f"{loading.skipped} downloaded entries could not be held")
        if len(loading.index) != loading.received:
            raise CopyMismatch("the download named some entries more than once")
        self.index, self._sum, self.version = loading.index, loading.total % MODULUS, version

    def apply(
        self,
        additions: Iterable[ListEntry],
        removals: Iterable[tuple[IndicatorKind, str]],
        version: str,
        checksum: bytes,
    ) -> None:
        """Apply a diff; CopyMismatch when the result is not the service's list (the copy is
        then unusable until loaded again)."""
        index = self.index
        for kind, value in removals:
            self._replace(index, IndicatorKind(kind), value, None)
        for entry in additions:
            self._replace(index, IndicatorKind(entry.kind), entry.value, entry)
        self.version = version
        if self.checksum != checksum:
            self.version = ""
            raise CopyMismatch("the copy does not add up to the service's checksum")

    def _replace(
        self, index: RiskIndex, kind: IndicatorKind, value: str, entry: ListEntry | None
    ) -> None:
        old = entry_in(index, kind, value)
        if old is not None:
            self._sum = (self._sum - old.digest()) % MODULUS
        if entry is None:
            if old is not None:
                index.put(kind, value, NOTHING)
            return
        index.put(kind, value, entry.snapshot())
        self._sum = (self._sum + entry.digest()) % MODULUS

    def entries(self) -> list[ListEntry]:
        return list(entries_in(self.index, self.kinds or tuple(IndicatorKind)))

    def check(self, kind: IndicatorKind, value: str) -> LocalVerdict:
        """The verdict for a raw value, normalised as the risk service normalises it
        (InvalidIndicator when it cannot be)."""
        indicator = normalize(kind, value)
        return decide(indicator, self.index.lookup(indicator, int(time.time())))


class RiskListFollower:
    """Keeps a RiskCopy current from the risk service (directly or through the gateway)."""

    def __init__(
        self,
        stub: risk_pb2_grpc.RiskServiceStub,
        copy: RiskCopy | None = None,
        *,
        kinds: Sequence[IndicatorKind] = (),
        metadata: Metadata | None = None,
        timeout: float = 60.0,
        max_wait: float = 5.0,
        channel: grpc.aio.Channel | None = None,
    ) -> None:
        self.stub = stub
        self._channel = channel  # closed on stop, when given
        self.copy = copy if copy is not None else RiskCopy()
        self.kinds = tuple(kinds)
        self.metadata = metadata
        self.timeout = timeout
        self.max_wait = max_wait
        #: Downloads made (the first, and one per reset or mismatch).
        self.downloads = 0
        self.resets = 0
        self._task: asyncio.Task[None] | None = None

    async def download(self) -> None:
        request = risk_pb2.DownloadRiskListRequest(
            kinds=[int(k) for k in self.kinds],  # type: ignore[misc]
            encoding=risk_pb2.RISK_LIST_ENCODING_COLUMNS,
        )
        version, checksum, kinds = "", b"", self.kinds
        loading = Loading()
        call = self.stub.DownloadRiskList(request, metadata=self.metadata, timeout=self.timeout)
        async for chunk in call:
            if chunk.version_token:
                version, checksum = chunk.version_token, chunk.checksum
                kinds = tuple(IndicatorKind(k) for k in chunk.kinds)
            loading.add_messages(chunk.entries)
            for columns in chunk.columns:  # a service older than the columns sends none
                loading.add_columns(columns)
        self.copy.finish(loading, version, checksum)
        self.copy.kinds = kinds
        self.downloads += 1

    async def sync_once(self) -> float:
        """Bring the copy up to date once; returns how long the service asks to wait."""
        if not self.copy.version:
            await self.download()
            return 0.0
        response: risk_pb2.ComputeRiskListDiffResponse = await self.stub.ComputeRiskListDiff(
            risk_pb2.ComputeRiskListDiffRequest(
                version_token=self.copy.version,
                kinds=[int(k) for k in self.kinds],  # type: ignore[misc]
            ),
            metadata=self.metadata,
            timeout=self.timeout,
        )
        if response.response_type == risk_pb2.DIFF_RESPONSE_TYPE_RESET:
            self.resets += 1
            await self.download()
            return 0.0
        try:
            self.copy.apply(
                map(entry_of, response.additions),
                [(IndicatorKind(r.kind), r.value) for r in response.removals],
                response.new_version_token,
                response.checksum,
            )
        except CopyMismatch:
            self.resets += 1
            log.warning("local copy of the risk list did not verify: downloading it again")
            await self.download()
            return 0.0
        return float(response.retry_after_seconds)

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="risk-list-follower")

    async def stop(self) -> None:
        await cancel_and_wait(self._task)
        self._task = None
        if self._channel is not None:
            await self._channel.close(None)
            self._channel = None

    async def _run(self) -> None:
        failures = 0
        while True:
            try:
                wait = await self.sync_once()
                failures = 0
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                # Unreachable or refusing: the copy stays as it is and keeps answering.
                failures += 1
                wait = min(0.2 * 2 ** min(failures, 8), 30.0)
                code = exc.code().name if isinstance(exc, grpc.aio.AioRpcError) else repr(exc)
                log.warning("risk list not synced", error=code, retry_in=wait)
            await asyncio.sleep(min(wait, self.max_wait))
