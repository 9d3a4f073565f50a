"""The list as columns (RISK_LIST_ENCODING_COLUMNS), without I/O.

- Column hashing adds up to the same checksum as hashing entry by entry.
- Round trip: an index of several kinds, with verified (labelled) entries, category masks and
  levels, taken as columns, encoded as the service sends them, decoded by the client: the
  copy verifies against the service's checksum and holds exactly the service's entries,
  the same as a copy loaded from messages.
- A corrupted chunk is refused and leaves the copy as it was: columns of different lengths,
  an unknown kind or level, a value or level changed in transit (the checksum does not add
  up), a value sent twice.
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from services.api.antifraud.risk.v1 import risk_pb2
from services.clients.risk_copy import CopyMismatch, Loading, RiskCopy
from services.common.indicators import IndicatorKind
from services.risk.domain.copies import (
    ListDigest,
    ListEntry,
    checksum_bytes,
    columns_of,
    columns_sum,
    entries_in,
)
from services.risk.domain.index import RiskIndex
from services.risk.domain.model import RiskLevel, Snapshot
from services.risk.entrypoints import convert

K = IndicatorKind
KINDS = [k for k in IndicatorKind if k]


@settings(max_examples=50, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.text(min_size=1, max_size=30),
            st.sampled_from([int(level) for level in RiskLevel]),
            st.integers(0, 0xFFFF),
        ),
        max_size=40,
    ),
    st.sampled_from(KINDS),
)
def test_columns_add_up_to_the_entries_checksum(
    rows: list[tuple[str, int, int]], kind: IndicatorKind
) -> None:
    by_entry = sum(ListEntry(int(kind), v, lv, m, False, "").digest() for v, lv, m in rows)
    values = [v for v, _, _ in rows]
    assert columns_sum(kind, values, [(lv, m) for _, lv, m in rows]) == by_entry


def service_index() -> RiskIndex:
    """Entries of several kinds: levels, category masks, and verified values with labels."""
    index = RiskIndex()
    for i in range(300):
        kind = KINDS[i % len(KINDS)]
        value = f"value-{i}.example" if kind is K.DOMAIN else f"+86139{i:08d}"
        level = RiskLevel(2 + i % 3)
        verified = i % 50 == 7
        label = f"official {i}" if verified else ""
        index.put(
            kind,
            value,
            Snapshot(
                RiskLevel.NONE if verified else level,
                (i * 37) % 0x10000,
                3,  # source flags: not part of a copy's entry
                i,
                1_700_000_000,
                1_700_000_100,
                2_000_000_000,
                verified,
                label,
            ),
        )
    return index


def chunks_of(index: RiskIndex, size: int) -> tuple[bytes, list[bytes]]:
    """The service's checksum, and its download as COLUMNS, chunk by chunk, on the wire."""
    digest = ListDigest()
    allowed: list[ListEntry] = []
    wire: list[bytes] = []
    for kind in KINDS:
        columns, verified = columns_of(kind, *index.columns(kind), index)
        digest.add_columns(columns)
        for entry in verified:
            digest.add(entry)
        allowed.extend(verified)
        for start in range(0, len(columns), size):
            chunk = risk_pb2.DownloadRiskListResponse(
                columns=[convert.columns_pb(columns.part(start, start + size))]
            )
            wire.append(chunk.SerializeToString())
    first = risk_pb2.DownloadRiskListResponse(
        entries=[
            risk_pb2.RiskListEntry(
                kind=e.kind,  # type: ignore[arg-type]
                value=e.value,
                level=e.level,  # type: ignore[arg-type]
                category_mask=e.categories,
                verified=e.verified,
                label=e.label,
            )
            for e in allowed
        ]
    )
    return digest.checksum(KINDS), [first.SerializeToString(), *wire]


def load(wire: list[bytes]) -> Loading:
    loading = Loading()
    for raw in wire:
        chunk = risk_pb2.DownloadRiskListResponse.FromString(raw)
        loading.add_messages(chunk.entries)
        for columns in chunk.columns:
            loading.add_columns(columns)
    return loading


def test_a_copy_loaded_from_columns_is_the_services_list() -> None:
    index = service_index()
    checksum, wire = chunks_of(index, 17)
    assert checksum == checksum_bytes(sum(e.digest() for e in entries_in(index, KINDS)))
    copy = RiskCopy()
    copy.finish(load(wire), "f-1", checksum)
    assert copy.checksum == checksum
    assert set(copy.entries()) == set(entries_in(index, KINDS))
    assert sum(e.verified for e in copy.entries()) == 6  # the allow list, with its labels
    by_messages = RiskCopy()
    by_messages.load(entries_in(index, KINDS), "f-1", checksum)
    assert set(by_messages.entries()) == set(copy.entries())
    # What a copy decides from: the verdict, standing (no lapse, no source flags).
    hit = copy.index.get(K.PHONE_NUMBER, "+8613900000000")
    assert hit is not None
    assert (hit.level, hit.flags, hit.expire) == (RiskLevel.LOW, 0, 0xFFFFFFFF)


def corrupted(wire: list[bytes], change: str) -> list[bytes]:
    """The download with its second chunk changed in transit as ``change`` says."""
    chunk = risk_pb2.DownloadRiskListResponse.FromString(wire[1])
    columns = chunk.columns[0]
    match change:
        case "short column":
            del columns.category_masks[-1]
        case "unknown kind":
            columns.kind = 99  # type: ignore[assignment]
        case "unknown level":
            columns.levels[0] = 9  # type: ignore[call-overload]
        case "value changed":
            columns.values[0] = columns.values[0] + "0"
        case "level changed":
            columns.levels[0] = 4 if columns.levels[0] != 4 else 3  # type: ignore[call-overload]
        case "sent twice":
            other = risk_pb2.DownloadRiskListResponse.FromString(wire[1])
            return [*wire, other.SerializeToString()]
    return [wire[0], chunk.SerializeToString(), *wire[2:]]


CHANGES = ["short column", "unknown kind", "unknown level", "value changed", "level changed"]


@pytest.mark.parametrize("change", [*CHANGES, "sent twice"])
def test_a_corrupted_chunk_is_refused_and_the_copy_stays(change: str) -> None:
    index = service_index()
    checksum, wire = chunks_of(index, 17)
    copy = RiskCopy()
    copy.finish(load(wire), "f-1", checksum)
    before = set(copy.entries())
    with pytest.raises(CopyMismatch):
        copy.finish(load(corrupted(wire, change)), "f-2", checksum)
    assert (copy.version, copy.checksum, set(copy.entries())) == ("f-1", checksum, before)
