"""The report service's rules without I/O: callers, weights, corroboration, listings, limits."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from services.common.indicators import Indicator, IndicatorKind
from services.common.principals import Principal, Role
from services.report.domain import access, case_lifecycle, limits
from services.report.domain.access import ANONYMOUS
from services.report.domain.corroboration import (
    Rules,
    Tally,
    corroborate,
    reporter_weight,
    standing_after_reports,
)
from services.report.domain.listing import (
    Retire,
    RiskLevel,
    Upsert,
    listing_for,
    sync_request_id,
)
from services.report.domain.model import (
    CaseStatus,
    FraudCategory,
    Money,
    Payee,
    Standing,
    StopPaymentStatus,
)

RULES = Rules()
NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


def named(reporter: str, reports: int = 1, confirmed: int = 0, rejected: int = 0) -> Tally:
    return Tally(reporter, False, reports, confirmed, rejected)


def anonymous(reports: int) -> Tally:
    return Tally(ANONYMOUS, True, reports, 0, 0)


# --- callers ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("principal", "reporter", "limited"),
    [
        ("", "internal", False),
        ("citizen:u1", "citizen:u1", True),
        ("citizen:", ANONYMOUS, True),
        ("analyst:a7", "analyst:a7", False),
        ("admin:root", "admin:root", False),
        ("bank:icbc", "bank:icbc", True),
        ("carrier:cmcc", "carrier:cmcc", True),
    ],
)
def test_reports_count_per_caller_and_all_anonymous_ones_as_one(
    principal: str, reporter: str, limited: bool
) -> None:
    caller = Principal.parse(principal)
    assert (access.reporter(caller), access.rate_limited(caller)) == (reporter, limited)


def test_a_citizen_sees_only_their_own_and_anonymous_owns_nothing() -> None:
    alice, bob, nobody = (
        Principal(Role.CITIZEN, "alice"),
        Principal(Role.CITIZEN, "bob"),
        Principal(Role.CITIZEN),
    )
    assert access.may_see(alice, "citizen:alice")
    assert not access.may_see(alice, "citizen:bob")
    assert not access.may_see(bob, "citizen:alice")
    assert not access.may_see(nobody, ANONYMOUS)
    assert access.may_see(Principal(Role.ANALYST, "a1"), "citizen:alice")
    assert not access.may_see(Principal(Role.BANK, "icbc"), "citizen:alice")
    assert access.may_file_case(alice)
    assert access.may_file_case(Principal(Role.ANALYST, "a1"))
    assert not access.may_file_case(nobody)
    assert not access.may_file_case(Principal(Role.BANK, "icbc"))


# --- weights and corroboration ----------------------------------------------------------------


def test_weight_falls_with_repeated_rejections_and_confirmations_offset_them() -> None:
    assert reporter_weight(0, 0, RULES) == 1.0
    assert reporter_weight(0, 1, RULES) == 1.0  # one mistake is forgiven
    assert reporter_weight(0, 2, RULES) == 0.5
    assert reporter_weight(0, 3, RULES) == 0.25
    assert reporter_weight(0, 50, RULES) == RULES.min_weight
    assert reporter_weight(2, 3, RULES) == 1.0


def test_three_distinct_reporters_reach_the_default_threshold() -> None:
    two = corroborate([named("citizen:a"), named("citizen:b")], RULES)
    three = corroborate([named("citizen:a"), named("citizen:b"), named("citizen:c")], RULES)
    assert (two.named_reporters, two.reaches(RULES)) == (2, False)
    assert (three.named_reporters, three.score, three.reaches(RULES)) == (3, 3.0, True)


def test_one_reporter_reporting_a_hundred_times_counts_once() -> None:
    result = corroborate([named("citizen:a", reports=100), named("citizen:b")], RULES)
    assert (result.named_reporters, result.score, result.reaches(RULES)) == (2, 2.0, False)


def test_anonymous_reports_weigh_little_and_together_at_most_one_reporter() -> None:
    few = corroborate([named("citizen:a"), named("citizen:b"), anonymous(2)], RULES)
    many = corroborate([named("citizen:a"), named("citizen:b"), anonymous(1000)], RULES)
    alone = corroborate([anonymous(1000)], RULES)
    assert (few.score, few.reaches(RULES)) == (2.5, False)
    assert (many.named_reporters, many.score, many.reaches(RULES)) == (2, 3.0, True)
    assert (alone.named_reporters, alone.reaches(RULES)) == (0, False)


def test_discredited_reporters_need_company_to_list_a_value() -> None:
    tallies = [named("citizen:a"), named("citizen:b"), named("citizen:c", rejected=3)]
    result = corroborate(tallies, RULES)
    assert result.score == 2.25
    assert not result.reaches(RULES)


def test_a_class_of_reporters_counts_as_that_many_reporters_of_its_weight() -> None:
    """Tallies counted in the database come per class of reporter (the same confirmed and
    rejected counts): a class of three counts as the three of them would."""
    one_by_one = [named(f"citizen:{n}", reports=2, rejected=3) for n in range(3)]
    together = Tally("", False, 6, 0, 3, reporters=3)
    assert corroborate([together, named("citizen:x")], RULES) == corroborate(
        [*one_by_one, named("citizen:x")], RULES
    )


def test_standing_after_reports_never_undoes_a_decision() -> None:
    listed = corroborate([named(f"citizen:{i}") for i in range(3)], RULES)
    weak = corroborate([named("citizen:a")], RULES)
    assert standing_after_reports(Standing.UNLISTED, listed, RULES) is Standing.CORROBORATED
    assert standing_after_reports(Standing.UNLISTED, weak, RULES) is Standing.UNLISTED
    assert standing_after_reports(Standing.CONFIRMED, weak, RULES) is Standing.CONFIRMED
    assert standing_after_reports(Standing.REJECTED, weak, RULES) is Standing.REJECTED
    assert standing_after_reports(Standing.REJECTED, listed, RULES) is Standing.CORROBORATED


# --- what goes to the risk list -----------------------------------------------------------------


def test_listing_follows_standing() -> None:
    cats = [FraudCategory.STOCK_TIPS, FraudCategory.ONLINE_LOAN, FraudCategory.STOCK_TIPS]
    medium = listing_for(Standing.CORROBORATED, 3, cats, timedelta(days=7))
    high = listing_for(Standing.CONFIRMED, 4, cats, timedelta(days=7))
    assert isinstance(medium, Upsert)
    assert (medium.level, medium.reporter_count) == (RiskLevel.MEDIUM, 3)
    assert medium.categories == (FraudCategory.ONLINE_LOAN, FraudCategory.STOCK_TIPS)
    assert medium.reason == "reported as fraud by 3 independent citizens within 7 days"
    assert isinstance(high, Upsert)
    assert high.level is RiskLevel.HIGH
    assert isinstance(listing_for(Standing.REJECTED, 0, [], timedelta(days=7)), Retire)
    assert listing_for(Standing.UNLISTED, 2, [], timedelta(days=7)) is None


def test_sync_request_ids_are_stable_uuids_per_version() -> None:
    first = sync_request_id(7, 1)
    assert first == sync_request_id(7, 1)
    assert len(first) == 36
    assert first != sync_request_id(7, 2)
    assert first != sync_request_id(8, 1)


def test_stop_payment_status_only_moves_forward() -> None:
    assert StopPaymentStatus.PENDING in StopPaymentStatus.SENT.replaces()
    assert StopPaymentStatus.QUEUED in StopPaymentStatus.SENT.replaces()
    assert StopPaymentStatus.SENT not in StopPaymentStatus.QUEUED.replaces()
    assert StopPaymentStatus.ACKNOWLEDGED not in StopPaymentStatus.SENT.replaces()
    # A hold can still end (released, returned, lapsed): acknowledged is not the end.
    assert not StopPaymentStatus.ACKNOWLEDGED.final
    assert StopPaymentStatus.ACKNOWLEDGED in StopPaymentStatus.RETURNED.replaces()
    assert StopPaymentStatus.RETURNED not in StopPaymentStatus.ACKNOWLEDGED.replaces()
    assert StopPaymentStatus.REJECTED.final
    assert StopPaymentStatus.RELEASED.final
    assert not StopPaymentStatus.SENT.final


def _payee(status: StopPaymentStatus, held: int | None = None) -> Payee:
    return Payee(
        position=0,
        account=Indicator(IndicatorKind.BANK_ACCOUNT, "6222021234567890123"),
        amount=None,
        bank_order="bankOrders/x",
        status=status,
        status_time=None,
        status_detail="",
        held_amount=None if held is None else Money("CNY", held),
    )


def test_a_case_status_follows_its_orders_and_the_officer() -> None:
    s = StopPaymentStatus
    assert case_lifecycle.status_of([], False) is CaseStatus.FILED
    assert case_lifecycle.status_of([_payee(s.PENDING)], False) is CaseStatus.FILED
    assert case_lifecycle.status_of([_payee(s.QUEUED)], False) is CaseStatus.ORDERS_SENT
    assert case_lifecycle.status_of([_payee(s.REJECTED)], False) is CaseStatus.ORDERS_SENT
    held = [_payee(s.ACKNOWLEDGED, 100), _payee(s.RETURNED, 50)]
    assert case_lifecycle.status_of(held, False) is CaseStatus.HELD
    assert case_lifecycle.held_amount(held) == Money("CNY", 100)
    assert not case_lifecycle.may_close(held)
    ended = [_payee(s.RELEASED, 100), _payee(s.RETURNED, 50)]
    assert case_lifecycle.status_of(ended, False) is CaseStatus.TRANSFERRED
    assert case_lifecycle.status_of([_payee(s.EXPIRED, 5)], False) is CaseStatus.RELEASED
    assert case_lifecycle.may_close(ended)
    assert case_lifecycle.status_of(ended, True) is CaseStatus.CLOSED


def test_amounts_add_up_in_units_and_nanos() -> None:
    total = case_lifecycle.total([Money("CNY", 1, 600_000_000), Money("CNY", 2, 500_000_000)])
    assert total == Money("CNY", 4, 100_000_000)
    assert case_lifecycle.total([Money("USD", 3)]) == Money("CNY", 0)


# --- rate limits --------------------------------------------------------------------------------


def test_rate_limit_allows_below_the_limit_and_says_when_to_retry() -> None:
    window = timedelta(minutes=10)
    assert limits.check(19, None, 20, window, NOW).allowed
    refused = limits.check(20, NOW - timedelta(minutes=4), 20, window, NOW)
    assert not refused.allowed
    assert refused.retry_after == pytest.approx(360.0)
