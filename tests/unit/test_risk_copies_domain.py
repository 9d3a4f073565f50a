"""The list's checksum and the private look-up primitives, without I/O.

- The checksum kept incrementally (puts, replacements, removals in any order) equals the
  checksum computed afresh over the resulting entries; kinds add up independently.
- A copy loaded from entries and one that reached the same list by diffs agree.
- The OPRF: the caller's unblinded tag equals the tag the service computes for the same form,
  and no other form's; buckets are padded to a power of two of at least 8.
"""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from services.clients.risk_copy import CopyMismatch, RiskCopy
from services.common.indicators import IndicatorKind
from services.risk.domain.copies import ListDigest, ListEntry, checksum_bytes
from services.risk.domain.private import (
    Blinded,
    TagCache,
    bucket_prefix,
    multiply,
    padded_size,
)

K = IndicatorKind


def entry(i: int, level: int = 4, kind: IndicatorKind = K.PHONE_NUMBER) -> ListEntry:
    return ListEntry(int(kind), f"+86139{i:08d}", level, (i % 3) << 1, False, "")


def fresh(entries: dict[tuple[int, str], ListEntry], kinds: list[IndicatorKind]) -> bytes:
    wanted = {int(k) for k in kinds}
    return checksum_bytes(sum(e.digest() for e in entries.values() if e.kind in wanted))


@settings(max_examples=50, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 20), st.sampled_from([0, 2, 3, 4]), st.booleans())))
def test_the_incremental_checksum_is_the_checksum_of_the_entries(
    steps: list[tuple[int, int, bool]],
) -> None:
    digest = ListDigest()
    now: dict[tuple[int, str], ListEntry] = {}
    for i, level, as_url in steps:
        kind = K.URL if as_url else K.PHONE_NUMBER
        new = entry(i, level, kind) if level else None
        key = (int(kind), entry(i, 4, kind).value)
        digest.replace(now.get(key), new)
        if new is None:
            now.pop(key, None)
        else:
            now[key] = new
    for kinds in ([K.PHONE_NUMBER], [K.URL], [K.PHONE_NUMBER, K.URL]):
        assert digest.checksum(kinds) == fresh(now, kinds)


def test_a_copy_by_diffs_equals_a_copy_loaded_and_a_wrong_sum_is_refused() -> None:
    first = [entry(i) for i in range(50)]
    loaded = RiskCopy()
    loaded.load(first, "f-1", checksum_bytes(sum(e.digest() for e in first)))
    rng = random.Random(3)
    final = {(e.kind, e.value): e for e in first}
    additions = [entry(i, rng.choice([2, 3, 4])) for i in range(40, 70)]
    removals = [(K.PHONE_NUMBER, entry(i).value) for i in range(0, 10)]
    for kind, value in removals:
        final.pop((int(kind), value))
    final.update({(e.kind, e.value): e for e in additions})
    expected = checksum_bytes(sum(e.digest() for e in final.values()))
    loaded.apply(additions, removals, "f-2", expected)
    assert set(loaded.entries()) == set(final.values())
    again = RiskCopy()
    again.load(final.values(), "f-2", expected)
    assert again.checksum == loaded.checksum
    with pytest.raises(CopyMismatch):
        again.apply([entry(999)], [], "f-3", expected)
    assert again.version == ""  # unusable until loaded again
    with pytest.raises(CopyMismatch):
        RiskCopy().load(first, "f-1", expected)


def test_only_the_callers_own_form_matches_its_tag() -> None:
    service = TagCache(b"k" * 32)
    service.at(1_700_000_000)
    mine = Blinded(K.PHONE_NUMBER, "+8613912345678")
    mine_tag = mine.tag(multiply(service.key, mine.point))
    assert mine_tag == service.tag(int(K.PHONE_NUMBER), "+8613912345678")
    assert mine_tag != service.tag(int(K.PHONE_NUMBER), "+8613912345679")
    assert mine_tag != service.tag(int(K.SMS_SENDER), "+8613912345678")
    assert mine.prefix == bucket_prefix(K.PHONE_NUMBER, "+8613912345678")
    other = Blinded(K.PHONE_NUMBER, "+8613912345678")
    assert other.point != mine.point  # blinded afresh each time: nothing to link
    service.at(1_700_000_000 + 86_400)  # the next epoch: another key, other tags
    assert service.tag(int(K.PHONE_NUMBER), "+8613912345678") != mine_tag


def test_buckets_are_padded_to_a_power_of_two_of_at_least_eight() -> None:
    assert [padded_size(n) for n in (0, 1, 8, 9, 16, 17, 100)] == [8, 8, 8, 16, 16, 32, 128]
