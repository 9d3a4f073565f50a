"""The verdict rules and the in-memory index, without I/O."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from services.common.indicators import IndicatorKind, normalize
from services.risk.domain.index import U32_MAX, RiskIndex
from services.risk.domain.model import (
    Assertion,
    FraudCategory,
    RiskLevel,
    Snapshot,
    SourceFlag,
    SourceType,
    categories_of,
    compute_snapshot,
    reasons,
    stages_of,
    stages_text,
)

NOW = datetime(2026, 11, 1, tzinfo=UTC)


def assertion(
    source: SourceType,
    level: RiskLevel,
    *,
    source_id: str = "x",
    expires_in: timedelta = timedelta(days=30),
    categories: frozenset[FraudCategory] = frozenset(),
    reporters: int = 0,
    label: str = "",
    lapsed: bool = False,
) -> Assertion:
    return Assertion(
        source_type=source,
        source_id=source_id,
        level=level,
        categories=categories,
        reason="r",
        expire_time=NOW + expires_in,
        create_time=NOW - timedelta(days=2),
        update_time=NOW - timedelta(days=1),
        reporter_count=reporters,
        label=label,
        lapsed=lapsed,
    )


def test_highest_level_in_force_wins_and_sources_add_up() -> None:
    snap = compute_snapshot(
        [
            assertion(
                SourceType.CITIZEN_REPORTS,
                RiskLevel.MEDIUM,
                reporters=3,
                categories=frozenset({FraudCategory.STOCK_TIPS}),
            ),
            assertion(
                SourceType.ANALYST,
                RiskLevel.HIGH,
                categories=frozenset({FraudCategory.ONLINE_LOAN}),
            ),
        ],
        NOW,
    )
    assert snap.level is RiskLevel.HIGH
    assert categories_of(snap.categories) == [FraudCategory.ONLINE_LOAN, FraudCategory.STOCK_TIPS]
    assert SourceFlag(snap.flags) == SourceFlag.ANALYST | SourceFlag.CITIZEN_REPORTS
    assert snap.reporters == 3
    assert snap.first_seen == int((NOW - timedelta(days=2)).timestamp())


def test_allow_list_beats_any_number_of_reports() -> None:
    snap = compute_snapshot(
        [
            assertion(SourceType.CITIZEN_REPORTS, RiskLevel.HIGH, reporters=10_000),
            assertion(SourceType.ALLOW_LIST, RiskLevel.NONE, label="96110"),
        ],
        NOW,
    )
    assert snap.verified
    assert snap.level is RiskLevel.NONE
    assert snap.label == "96110"
    assert reasons(snap) == ["verified official: 96110"]


@pytest.mark.parametrize(
    ("expires_in", "lapsed", "expected"),
    [
        (timedelta(days=1), False, RiskLevel.HIGH),
        (timedelta(seconds=-1), False, RiskLevel.NONE),
        (timedelta(days=1), True, RiskLevel.NONE),
    ],
)
def test_lapsed_and_expired_assertions_count_for_nothing(
    expires_in: timedelta, lapsed: bool, expected: RiskLevel
) -> None:
    snap = compute_snapshot(
        [assertion(SourceType.POLICE, RiskLevel.HIGH, expires_in=expires_in, lapsed=lapsed)], NOW
    )
    assert snap.level is expected


def test_reasons_explain_the_verdict() -> None:
    snap = compute_snapshot(
        [
            assertion(
                SourceType.CITIZEN_REPORTS,
                RiskLevel.MEDIUM,
                reporters=4,
                categories=frozenset({FraudCategory.PIG_BUTCHERING}),
            ),
            assertion(SourceType.POLICE, RiskLevel.HIGH),
        ],
        NOW,
    )
    words = reasons(snap, "evil.example/")
    assert words[0].startswith("confirmed fraud")
    assert "reported by 4 distinct citizens" in words
    assert "confirmed by police" in words
    assert "used for romance investment (pig butchering)" in words
    assert words[-1] == "listed as evil.example/"


def _listed(level: RiskLevel = RiskLevel.HIGH, expire: int | None = None, **kw: object) -> Snapshot:
    now = int(NOW.timestamp())
    return Snapshot(level, 0, 0, 0, now, now, expire if expire is not None else now + 3600, **kw)  # type: ignore[arg-type]


NOW_S = int(NOW.timestamp())


@pytest.mark.parametrize(
    ("listed_kind", "listed", "checked_kind", "checked", "matches"),
    [
        # URL host suffixes and path prefixes, as Safe Browsing matches them.
        (
            IndicatorKind.URL,
            "evil.example/pay/",
            IndicatorKind.URL,
            "http://a.b.evil.example/pay/x?y=1",
            True,
        ),
        (
            IndicatorKind.URL,
            "evil.example/pay/",
            IndicatorKind.URL,
            "http://evil.example/shop/",
            False,
        ),
        (
            IndicatorKind.URL,
            "evil.example/",
            IndicatorKind.URL,
            "https://EVIL.example/anything",
            True,
        ),
        (IndicatorKind.URL, "a.evil.example/", IndicatorKind.URL, "http://evil.example/", False),
        # A listed domain catches its subdomains, also inside URLs.
        (IndicatorKind.DOMAIN, "evil.example", IndicatorKind.DOMAIN, "x.y.evil.example", True),
        (
            IndicatorKind.DOMAIN,
            "evil.example",
            IndicatorKind.URL,
            "http://login.evil.example/a",
            True,
        ),
        (IndicatorKind.DOMAIN, "evil.example", IndicatorKind.DOMAIN, "notevil.example", False),
        # CIDR ranges catch their addresses, also as URL hosts.
        (IndicatorKind.IP_ADDRESS, "10.1.0.0/16", IndicatorKind.IP_ADDRESS, "10.1.200.3", True),
        (IndicatorKind.IP_ADDRESS, "10.1.0.0/16", IndicatorKind.IP_ADDRESS, "10.2.0.1", False),
        (IndicatorKind.IP_ADDRESS, "10.1.0.0/16", IndicatorKind.URL, "http://10.1.2.3/login", True),
        # An app listed by package matches every certificate; by certificate, only that one.
        (IndicatorKind.APP, "com.fake.bank", IndicatorKind.APP, "com.fake.bank#" + "ab" * 32, True),
        (
            IndicatorKind.APP,
            "com.fake.bank#" + "ab" * 32,
            IndicatorKind.APP,
            "com.fake.bank#" + "cd" * 32,
            False,
        ),
        # Phone numbers in any format; a listed SMS sender is a risky caller too.
        (
            IndicatorKind.PHONE_NUMBER,
            "+8613800138000",
            IndicatorKind.PHONE_NUMBER,
            "138 0013 8000",
            True,
        ),
        (
            IndicatorKind.SMS_SENDER,
            "+8613800138000",
            IndicatorKind.PHONE_NUMBER,
            "+86-138-0013-8000",
            True,
        ),
    ],
)
def test_index_matching(
    listed_kind: IndicatorKind,
    listed: str,
    checked_kind: IndicatorKind,
    checked: str,
    matches: bool,
) -> None:
    index = RiskIndex()
    stored = normalize(listed_kind, listed)
    index.put(stored.kind, stored.value, _listed())
    hit = index.lookup(normalize(checked_kind, checked), NOW_S)
    assert (hit is not None) is matches
    if hit is not None:
        assert (hit.kind, hit.value) == (stored.kind, stored.value)


def test_index_prefers_allow_list_then_highest_level() -> None:
    index = RiskIndex()
    index.put(IndicatorKind.DOMAIN, "evil.example", _listed(RiskLevel.LOW))
    index.put(IndicatorKind.URL, "evil.example/pay/", _listed(RiskLevel.HIGH))
    hit = index.lookup(normalize(IndicatorKind.URL, "http://evil.example/pay/1"), NOW_S)
    assert hit is not None
    assert hit.snapshot.level is RiskLevel.HIGH
    index.put(
        IndicatorKind.DOMAIN, "evil.example", _listed(RiskLevel.NONE, verified=True, label="ok")
    )
    hit = index.lookup(normalize(IndicatorKind.URL, "http://evil.example/pay/1"), NOW_S)
    assert hit is not None
    assert hit.snapshot.verified
    assert hit.snapshot.label == "ok"


def test_index_ignores_expired_entries_and_drops_unlisted() -> None:
    index = RiskIndex()
    index.put(IndicatorKind.QQ_NUMBER, "123456", _listed(expire=NOW_S - 1))
    assert index.lookup(normalize(IndicatorKind.QQ_NUMBER, "123456"), NOW_S) is None
    index.put(IndicatorKind.QQ_NUMBER, "123456", _listed())
    assert len(index) == 1
    index.put(IndicatorKind.QQ_NUMBER, "123456", _listed(RiskLevel.NONE))
    assert len(index) == 0


def test_index_round_trips_every_field() -> None:
    index = RiskIndex()
    snap = Snapshot(
        RiskLevel.MEDIUM, 0b1010, int(SourceFlag.BANK | SourceFlag.CASE), 7, 11, 22, NOW_S + 5
    )
    index.put(IndicatorKind.BANK_ACCOUNT, "6222020200112233445", snap)
    assert index.get(IndicatorKind.BANK_ACCOUNT, "6222020200112233445") == snap


def test_bulk_load_packs_rows_exactly_as_put_does() -> None:
    snap = Snapshot(RiskLevel.HIGH, 0b110, int(SourceFlag.POLICE), 4, 10, 20, NOW_S + 60)
    official = Snapshot(RiskLevel.NONE, 0, 0, 0, 10, 20, NOW_S + 60, True, "96110")
    by_put, by_load = RiskIndex(), RiskIndex()
    by_put.put(IndicatorKind.DOMAIN, "evil.example", snap)
    by_put.put(IndicatorKind.PHONE_NUMBER, "96110", official)
    skipped = by_load.load(
        [
            (1, int(IndicatorKind.DOMAIN), "evil.example", 4, snap.flags, snap.categories, 4, 10,
             20, NOW_S + 60, False, "", ""),
            (2, int(IndicatorKind.PHONE_NUMBER), "96110", 1, 0, 0, 0, 10, 20, NOW_S + 60, True,
             "96110", ""),
        ]
    )  # fmt: skip
    assert skipped == []
    for kind, value in [
        (IndicatorKind.DOMAIN, "evil.example"),
        (IndicatorKind.PHONE_NUMBER, "96110"),
    ]:
        assert by_load.get(kind, value) == by_put.get(kind, value)


@pytest.mark.parametrize(
    ("offset", "level", "verified"),
    [
        (0, RiskLevel.HIGH, False),
        (59, RiskLevel.HIGH, False),
        (60, RiskLevel.LOW, False),  # the HIGH lapsed: the standing LOW decides at once
        (3599, RiskLevel.LOW, False),
        (3600, None, False),  # everything lapsed
    ],
)
def test_a_lapsed_assertion_never_decides_the_verdict(
    offset: int, level: RiskLevel | None, verified: bool
) -> None:
    snap = compute_snapshot(
        [
            assertion(
                SourceType.ANALYST, RiskLevel.HIGH, source_id="a", expires_in=timedelta(seconds=60)
            ),
            assertion(
                SourceType.CARRIER, RiskLevel.LOW, source_id="c", expires_in=timedelta(hours=1)
            ),
        ],
        NOW,
    )
    assert snap.level is RiskLevel.HIGH
    assert [(start - NOW_S, s.level) for start, s in snap.later] == [(60, RiskLevel.LOW)]
    assert snap.at(NOW_S + offset).level is (level or RiskLevel.LOW)
    assert stages_of(stages_text(snap)) == snap.later
    for index in _by_put_and_by_load(IndicatorKind.PHONE_NUMBER, "+8613800138000", snap):
        hit = index.lookup(normalize(IndicatorKind.PHONE_NUMBER, "13800138000"), NOW_S + offset)
        if level is None:
            assert hit is None
        else:
            assert hit is not None
            assert hit.snapshot.level is level
            assert hit.snapshot.verified is verified


def test_an_allow_list_entry_lapsing_over_a_report_stops_vouching_at_once() -> None:
    snap = compute_snapshot(
        [
            assertion(SourceType.ALLOW_LIST, RiskLevel.NONE, source_id="allow",
                      expires_in=timedelta(seconds=10), label="客服"),
            assertion(SourceType.CITIZEN_REPORTS, RiskLevel.MEDIUM, source_id="r", reporters=5),
        ],
        NOW,
    )  # fmt: skip
    assert snap.verified
    for index in _by_put_and_by_load(IndicatorKind.PHONE_NUMBER, "95588", snap):
        before = index.lookup(normalize(IndicatorKind.PHONE_NUMBER, "95588"), NOW_S + 9)
        after = index.lookup(normalize(IndicatorKind.PHONE_NUMBER, "95588"), NOW_S + 10)
        assert before is not None
        assert before.snapshot.verified
        assert after is not None
        assert not after.snapshot.verified
        assert after.snapshot.level is RiskLevel.MEDIUM
        assert after.label == ""


def _by_put_and_by_load(kind: IndicatorKind, value: str, snap: Snapshot) -> list[RiskIndex]:
    by_put, by_load = RiskIndex(), RiskIndex()
    by_put.put(kind, value, snap)
    by_load.load(
        [
            (1, int(kind), value, int(snap.level), snap.flags, snap.categories, snap.reporters,
             snap.first_seen, snap.last_seen, snap.expire, snap.verified, snap.label,
             stages_text(snap)),
        ]
    )  # fmt: skip
    return [by_put, by_load]


def test_bulk_load_leaves_out_rows_it_cannot_hold_and_loads_the_rest() -> None:
    index = RiskIndex()
    domain = int(IndicatorKind.DOMAIN)
    skipped = index.load(
        [
            (1, 99, "x", 4, 0, 0, 0, 0, 0, NOW_S + 60, False, "", ""),  # unknown kind
            (2, domain, "a.example", 42, 0, 0, 0, 0, 0, NOW_S + 60, False, "", ""),  # unknown level
            (3, domain, None, 4, 0, 0, 0, 0, 0, NOW_S + 60, False, "", ""),  # no value
            (4, domain, "b.example", 4, 0, 0, 0, 0, 0, "soon", False, "", ""),  # not a number
            (5,),  # not a row at all
            (6, domain, "ok.example", 4, 0, 0, 0, 0, 0, NOW_S + 60, False, "", ""),
        ]
    )
    assert [row_id for row_id, _ in skipped] == [1, 2, 3, 4, 5]
    assert all(why for _, why in skipped)
    assert index.lookup(normalize(IndicatorKind.DOMAIN, "ok.example"), NOW_S) is not None
    assert len(index) == 1


def test_times_past_32_bits_are_held_as_the_last_second_not_an_error() -> None:
    # An expiry of 2200-01-01 (stored before the edge refused it) or a negative count must
    # neither stop a load nor a change from being applied: it is held within 32 bits.
    far = 7_258_118_400
    index = RiskIndex()
    index.put(IndicatorKind.QQ_NUMBER, "123456", _listed(expire=far))
    snapshot = index.get(IndicatorKind.QQ_NUMBER, "123456")
    assert snapshot is not None
    assert snapshot.expire == U32_MAX
    assert index.lookup(normalize(IndicatorKind.QQ_NUMBER, "123456"), NOW_S) is not None
    loaded = RiskIndex()
    skipped = loaded.load(
        [(1, int(IndicatorKind.QQ_NUMBER), "123456", 4, 0, 0, -3, -1, far, far, False, "", "")]
    )
    assert skipped == []
    held = loaded.get(IndicatorKind.QQ_NUMBER, "123456")
    assert held is not None
    assert (held.reporters, held.first_seen, held.expire) == (0, 0, U32_MAX)
