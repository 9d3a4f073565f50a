"""The warning service's pure rules: tier policy, contact levels, states, texts, aggregation."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, reject, settings
from hypothesis import strategies as st

from services.common.indicators import IndicatorKind, normalize
from services.warning.domain.caps import TaskBudget
from services.warning.domain.contacts import ContactEvent, ContactLevelRule, aggregate, day_of
from services.warning.domain.model import (
    Channel,
    ContactKind,
    DeliveryState,
    Person,
    Reason,
    RiskLevel,
    TaskOutcome,
    Warning,
    WarningState,
)
from services.warning.domain.policy import (
    DEFAULT_POLICY,
    DEFAULT_SCREENING_POLICY,
    PolicyError,
    TierPolicy,
)
from services.warning.domain.rules import (
    delivery_state_of_outcome,
    moves_forward,
    reason_key,
    warning_state,
)
from services.warning.domain.screening import CallerVerdict, ScreeningAction, decide
from services.warning.domain.texts import (
    FLASH_SMS_MAX_CHARS,
    FLASH_TEXT,
    delivery_text,
    guardian_text,
    standard_text,
)
from services.warning.service_layer.warnings import Draft, build, new_id
from services.warning.settings import WarningSettings

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
APP_USER = Person("+8613800138000", "u-1")
PHONE_ONLY = Person("+8613800138001")
ELDER = Person("+8613800138002", "u-2", True, ("+8613012345678", "+8613312345678"))
FRAUD = normalize(IndicatorKind.PHONE_NUMBER, "13912345678")


def channels(policy: TierPolicy, level: RiskLevel, person: Person) -> list[tuple[Channel, bool]]:
    return [(d.channel, d.guardian) for d in policy.plan(level, person)]


class TestTierPolicy:
    policy = TierPolicy.parse(DEFAULT_POLICY)

    def test_high_gives_visit_call_flash_and_push(self) -> None:
        assert channels(self.policy, RiskLevel.HIGH, APP_USER) == [
            (Channel.HOME_VISIT_TASK, False),
            (Channel.CALL_TASK, False),
            (Channel.FLASH_SMS, False),
            (Channel.APP_PUSH, False),
        ]

    def test_medium_gives_call_sms_and_push(self) -> None:
        assert channels(self.policy, RiskLevel.MEDIUM, APP_USER) == [
            (Channel.CALL_TASK, False),
            (Channel.SMS, False),
            (Channel.APP_PUSH, False),
        ]

    def test_low_pushes_to_app_users_and_texts_the_others(self) -> None:
        assert channels(self.policy, RiskLevel.LOW, APP_USER) == [(Channel.APP_PUSH, False)]
        assert channels(self.policy, RiskLevel.LOW, PHONE_ONLY) == [(Channel.SMS, False)]

    def test_push_is_skipped_for_a_number_without_the_app(self) -> None:
        assert channels(self.policy, RiskLevel.HIGH, PHONE_ONLY) == [
            (Channel.HOME_VISIT_TASK, False),
            (Channel.CALL_TASK, False),
            (Channel.FLASH_SMS, False),
        ]

    @pytest.mark.parametrize("level", [RiskLevel.LOW, RiskLevel.MEDIUM, RiskLevel.HIGH])
    def test_a_number_without_the_app_is_reached_at_its_number(self, level: RiskLevel) -> None:
        planned = self.policy.plan(level, PHONE_ONLY)
        assert planned
        assert {(d.phone_number, d.user_id, d.guardian) for d in planned} == {
            (PHONE_ONLY.phone_number, None, False)
        }
        # The plan worked out once per level is a fresh list each time, never shared.
        assert planned is not self.policy.plan(level, PHONE_ONLY)

    def test_guardians_of_a_protected_user_get_an_sms_each(self) -> None:
        planned = self.policy.plan(RiskLevel.LOW, ELDER)
        guardians = [(d.channel, d.phone_number) for d in planned if d.guardian]
        assert guardians == [(Channel.SMS, "+8613012345678"), (Channel.SMS, "+8613312345678")]

    def test_guardians_of_an_unprotected_user_are_not_warned(self) -> None:
        person = Person("+8613800138003", "u-3", False, ("+8613012345678",))
        assert not [d for d in self.policy.plan(RiskLevel.HIGH, person) if d.guardian]

    def test_a_custom_policy_is_read(self) -> None:
        policy = TierPolicy.parse("high=call;medium=sms;low=push|sms;guardian=flash_sms")
        assert channels(policy, RiskLevel.HIGH, APP_USER) == [(Channel.CALL_TASK, False)]
        assert policy.guardian_channel == Channel.FLASH_SMS

    @pytest.mark.parametrize(
        "text",
        [
            "high=call;medium=sms",  # no low
            "high=call;medium=sms;low=carrier_pigeon",
            "high=call;medium=sms;low=sms;extreme=call",
            "high=call;medium=sms;low=sms;guardian=call",
            "high call",
            "high=call;medium=sms@5;low=push",  # a fallback with no push to fall back from
            "high=call@5,push;medium=sms;low=push",  # only an SMS falls back
            "high=call;medium=sms@soon,push;low=push",
            "high=call;medium=sms@-1,push;low=push",
        ],
    )
    def test_a_bad_policy_is_refused(self, text: str) -> None:
        with pytest.raises(PolicyError):
            TierPolicy.parse(text)


_CHANNEL_NAMES = ("push", "sms", "flash_sms", "call", "home_visit")
_alternative = st.builds(
    lambda name, delay: f"{name}@{delay}" if delay is not None and "sms" in name else name,
    st.sampled_from(_CHANNEL_NAMES),
    st.one_of(st.none(), st.integers(0, 3600)),
)
_level = st.lists(
    st.lists(_alternative, min_size=1, max_size=3).map("|".join), min_size=1, max_size=5
).map(",".join)
_policies = st.builds(
    lambda low, medium, high, guardian: f"low={low};medium={medium};high={high}{guardian}",
    _level,
    _level,
    _level,
    st.sampled_from(("", ";guardian=", ";guardian=sms", ";guardian=flash_sms")),
)
_people = st.builds(
    Person,
    st.sampled_from((PHONE_ONLY.phone_number, "+8613012345678")),
    st.sampled_from((None, "u-1")),
    st.booleans(),
    st.lists(st.sampled_from(("+8613012345678", "+8613312345678")), max_size=3).map(tuple),
)


@settings(max_examples=400, deadline=None)
@given(
    text=_policies,
    level=st.sampled_from((RiskLevel.LOW, RiskLevel.MEDIUM, RiskLevel.HIGH)),
    person=_people,
)
def test_the_plan_of_a_person_without_the_app_equals_the_plan_worked_out_in_full(
    text: str, level: RiskLevel, person: Person
) -> None:
    """The shortcut for a person without the app (each level's channels worked out once, most
    of a fan-out's contacts) gives the same deliveries as the step-by-step plan, for every
    policy the parser accepts, every level and every kind of person."""
    try:
        policy = TierPolicy.parse(text)
    except PolicyError:
        reject()
    assert policy.plan(level, person) == policy.plan_in_full(level, person)


class TestFallbackPolicy:
    """The screened callee's policy: the SMS of a MEDIUM warning falls back from the push."""

    policy = TierPolicy.parse(DEFAULT_SCREENING_POLICY)

    def fallbacks(self, level: RiskLevel, person: Person) -> list[tuple[Channel, float | None]]:
        return [(d.channel, d.fallback_seconds) for d in self.policy.plan(level, person)]

    def test_an_app_users_sms_waits_behind_the_push(self) -> None:
        assert self.fallbacks(RiskLevel.MEDIUM, APP_USER) == [
            (Channel.CALL_TASK, None),
            (Channel.SMS, 5.0),
            (Channel.APP_PUSH, None),
        ]

    def test_a_number_without_the_app_is_texted_at_once(self) -> None:
        assert self.fallbacks(RiskLevel.MEDIUM, PHONE_ONLY) == [
            (Channel.CALL_TASK, None),
            (Channel.SMS, None),
        ]

    def test_guardians_are_texted_at_once(self) -> None:
        planned = self.policy.plan(RiskLevel.MEDIUM, ELDER)
        assert [d.fallback_seconds for d in planned if d.guardian] == [None, None]

    def test_the_default_policy_has_no_fallback(self) -> None:
        planned = TierPolicy.parse(DEFAULT_POLICY).plan(RiskLevel.MEDIUM, APP_USER)
        assert [d.fallback_seconds for d in planned] == [None, None, None]

    def test_a_fallback_not_needed_counts_for_nothing(self) -> None:
        not_needed = DeliveryState.NOT_NEEDED
        assert warning_state([DeliveryState.FAILED, not_needed], False) == WarningState.FAILED
        assert warning_state([DeliveryState.DELIVERED, not_needed], False) == (
            WarningState.DELIVERED
        )
        assert not moves_forward(not_needed, DeliveryState.SENT)


class TestContactLevel:
    rule = ContactLevelRule()

    @pytest.mark.parametrize(
        ("hours_ago", "count", "level"),
        [
            (2, 1, RiskLevel.MEDIUM),  # recent, once
            (2, 2, RiskLevel.HIGH),  # recent and repeated
            (48, 1, RiskLevel.LOW),  # two days ago, once
            (48, 2, RiskLevel.MEDIUM),
            (48, 5, RiskLevel.HIGH),  # two days ago, often
            (24 * 20, 1, RiskLevel.LOW),
            (24 * 20, 10, RiskLevel.MEDIUM),
        ],
    )
    def test_level_grows_with_recency_and_frequency(
        self, hours_ago: int, count: int, level: RiskLevel
    ) -> None:
        assert self.rule.level(NOW - timedelta(hours=hours_ago), count, NOW) == level

    def test_never_lower_for_more_recent_or_more_frequent(self) -> None:
        for hours in range(0, 24 * 30, 7):
            for count in range(1, 8):
                level = self.rule.level(NOW - timedelta(hours=hours), count, NOW)
                assert self.rule.level(NOW - timedelta(hours=hours), count + 1, NOW) >= level
                assert (
                    self.rule.level(NOW - timedelta(hours=max(0, hours - 7)), count, NOW) >= level
                )


class TestStates:
    def test_delivered_once_any_channel_reached_the_person(self) -> None:
        states = [DeliveryState.FAILED, DeliveryState.DELIVERED, DeliveryState.QUEUED]
        assert warning_state(states, acknowledged=False) == WarningState.DELIVERED

    def test_failed_only_when_every_channel_failed(self) -> None:
        assert warning_state([DeliveryState.FAILED] * 2, False) == WarningState.FAILED
        assert (
            warning_state([DeliveryState.FAILED, DeliveryState.SENT], False) == WarningState.PENDING
        )

    def test_acknowledgement_wins(self) -> None:
        assert warning_state([DeliveryState.FAILED], True) == WarningState.ACKNOWLEDGED

    def test_deliveries_only_move_forward(self) -> None:
        assert moves_forward(DeliveryState.QUEUED, DeliveryState.SENT)
        assert moves_forward(DeliveryState.SENT, DeliveryState.DELIVERED)
        assert moves_forward(DeliveryState.SENT, DeliveryState.FAILED)
        assert moves_forward(DeliveryState.DELIVERED, DeliveryState.ACKNOWLEDGED)
        assert not moves_forward(DeliveryState.SENT, DeliveryState.QUEUED)
        assert not moves_forward(DeliveryState.DELIVERED, DeliveryState.FAILED)
        assert not moves_forward(DeliveryState.DELIVERED, DeliveryState.DELIVERED)
        assert not moves_forward(DeliveryState.FAILED, DeliveryState.DELIVERED)

    def test_an_unreachable_person_fails_the_task_delivery(self) -> None:
        assert delivery_state_of_outcome(TaskOutcome.UNREACHABLE) == DeliveryState.FAILED
        assert delivery_state_of_outcome(TaskOutcome.ALREADY_PAID) == DeliveryState.DELIVERED

    def test_the_same_thing_is_the_indicator_else_the_case(self) -> None:
        by_indicator = reason_key(Reason(FRAUD, "case-1"))
        assert by_indicator == reason_key(Reason(FRAUD, None))
        assert reason_key(Reason(None, "case-1")) != by_indicator
        assert len(by_indicator) == 64


class TestTexts:
    def test_the_flash_text_fits_one_segment(self) -> None:
        assert len(FLASH_TEXT) <= FLASH_SMS_MAX_CHARS

    def test_standard_text_masks_the_indicator(self) -> None:
        text = standard_text(RiskLevel.HIGH, Reason(FRAUD, None))
        assert "+86139****5678" in text
        assert FRAUD.value not in text
        assert "96110" in text

    def test_guardians_read_only_the_last_digits(self) -> None:
        text = guardian_text("+8613800138002")
        assert "8002" in text
        assert "13800138002" not in text
        assert delivery_text(Channel.SMS, True, "warning", "+8613800138002") == text

    def test_flash_and_sms_words(self) -> None:
        assert delivery_text(Channel.FLASH_SMS, False, "warning", "+86138") == FLASH_TEXT
        assert delivery_text(Channel.SMS, False, "warning", "+86138") == "warning"


class TestAggregation:
    def test_events_become_counts_per_unordered_pair_and_day(self) -> None:
        a, b = "+8613800138000", "+8613912345678"
        events = [
            ContactEvent(a, b, NOW - timedelta(hours=1), ContactKind.CALL),
            ContactEvent(b, a, NOW - timedelta(hours=2), ContactKind.SMS),
            ContactEvent(b, a, NOW - timedelta(days=2), ContactKind.CALL),
        ]
        found = aggregate(events)
        assert len(found) == 2
        today = next(v for k, v in found.items() if k.day == day_of(NOW))
        assert (today.calls, today.sms, today.last_time) == (1, 1, NOW - timedelta(hours=1))
        assert all(k.number_a < k.number_b for k in found)


# Screening


@pytest.mark.parametrize(
    ("verdict", "action", "callee_level"),
    [
        (CallerVerdict(RiskLevel.NONE), ScreeningAction.ALLOW, None),
        (CallerVerdict(RiskLevel.LOW), ScreeningAction.LABEL, None),
        (CallerVerdict(RiskLevel.MEDIUM), ScreeningAction.WARN, RiskLevel.MEDIUM),
        (CallerVerdict(RiskLevel.HIGH), ScreeningAction.BLOCK, RiskLevel.LOW),
        (CallerVerdict(RiskLevel.HIGH, True, "96110 反诈专线"), ScreeningAction.LABEL, None),
    ],
)
def test_screening_decides_by_the_callers_verdict(
    verdict: CallerVerdict, action: ScreeningAction, callee_level: RiskLevel | None
) -> None:
    decision = decide(verdict)
    assert decision.action == action
    assert decision.callee_level == callee_level
    assert decision.records == (callee_level is not None)
    if verdict.verified:
        assert decision.label == verdict.verified_label
    elif action != ScreeningAction.ALLOW:
        assert decision.label
    if decision.records:
        assert decision.callee_text


# Fan-out caps


def _warning(level: RiskLevel, person: Person) -> Warning:
    return build(WarningSettings(), Draft(person, level, Reason(FRAUD, None)), NOW)


def test_tasks_over_a_cap_become_an_sms_unless_the_person_is_texted_already() -> None:
    budget = TaskBudget({Channel.CALL_TASK: 1, Channel.HOME_VISIT_TASK: 0})
    first = budget.apply(_warning(RiskLevel.MEDIUM, PHONE_ONLY))
    second = budget.apply(_warning(RiskLevel.MEDIUM, PHONE_ONLY))
    high = budget.apply(_warning(RiskLevel.HIGH, PHONE_ONLY))
    assert Channel.CALL_TASK in {d.channel for d in first.deliveries}
    # medium = call, sms: the call over the cap is dropped, the SMS already reaches them.
    assert [d.channel for d in second.deliveries] == [Channel.SMS]
    # high = visit, call, flash SMS: both tasks over their caps, the flash SMS stays.
    assert [d.channel for d in high.deliveries] == [Channel.FLASH_SMS]
    assert budget.created == {Channel.CALL_TASK: 1}
    assert budget.capped == 3


def test_a_task_over_its_cap_goes_to_sms_when_nothing_else_texts() -> None:
    policy = TierPolicy.parse("high=home_visit;medium=call;low=sms;guardian=sms")
    settings = WarningSettings(policy=policy)
    warning = build(settings, Draft(APP_USER, RiskLevel.HIGH, Reason(FRAUD, None)), NOW)
    capped = TaskBudget({Channel.HOME_VISIT_TASK: 0}).apply(warning)
    [sms] = capped.deliveries
    assert (sms.channel, sms.phone_number) == (Channel.SMS, APP_USER.phone_number)
    unlimited = TaskBudget().apply(warning)
    assert [d.channel for d in unlimited.deliveries] == [Channel.HOME_VISIT_TASK]


def test_ids_are_random_version_4_uuids() -> None:
    ids = [new_id() for _ in range(1000)]
    assert len(set(ids)) == 1000
    for found in ids:
        parsed = uuid.UUID(found)
        assert (str(parsed), parsed.version, parsed.variant) == (found, 4, uuid.RFC_4122)
