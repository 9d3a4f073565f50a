"""The tier policy: which channels a warning of each level goes through.

Written as ``high=home_visit,call,flash_sms,push;medium=call,sms,push;low=push|sms;guardian=sms``:
per level, a comma-separated list of steps; a step of alternatives separated by
``|`` uses the first one the person can receive (an app push needs a registered
app user; every other channel needs only the phone number, which every person
has). ``guardian`` names the channel a protected user's guardians are warned by.

``sms@5`` (or ``flash_sms@5``) makes the SMS a fallback to the app push of the same level:
for an app user it is written with the warning but due 5 seconds later, and it is not sent
(NOT_NEEDED) when the push reached the user's live stream, or they acknowledged, before
then; a person without the app gets it at once. Guardians are always texted at once.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace

from services.warning.domain.model import Channel, Person, RiskLevel

DEFAULT_POLICY = (
    "high=home_visit,call,flash_sms,push;medium=call,sms,push;low=push|sms;guardian=sms"
)
#: The callee of a screened call: a MEDIUM caller is talking to them now, so an app user with
#: an open stream sees the push within a second; the SMS only follows when the push did not
#: reach them within 5 s (no live stream). A blocked HIGH caller's callee gets LOW.
DEFAULT_SCREENING_POLICY = (
    "high=home_visit,call,flash_sms,push;medium=call,sms@5,push;low=push|sms;guardian=sms"
)

_CHANNEL_NAMES: Mapping[str, Channel] = {
    "push": Channel.APP_PUSH,
    "sms": Channel.SMS,
    "flash_sms": Channel.FLASH_SMS,
    "call": Channel.CALL_TASK,
    "home_visit": Channel.HOME_VISIT_TASK,
}
_LEVEL_NAMES: Mapping[str, RiskLevel] = {
    "low": RiskLevel.LOW,
    "medium": RiskLevel.MEDIUM,
    "high": RiskLevel.HIGH,
}
_GUARDIAN_CHANNELS = frozenset({Channel.SMS, Channel.FLASH_SMS})


class PolicyError(ValueError):
    """The policy text cannot be understood."""


@dataclass(frozen=True)
class PlannedDelivery:
    """One delivery a warning will have."""

    channel: Channel
    phone_number: str | None
    user_id: str | None
    guardian: bool = False
    #: Sent this long after the warning unless its app push reached the person first.
    fallback_seconds: float | None = None


@dataclass(frozen=True)
class TierPolicy:
    steps: Mapping[RiskLevel, tuple[tuple[Channel, ...], ...]]
    guardian_channel: Channel | None
    #: Channels that are fallbacks to the push at a level, with their delay in seconds.
    fallbacks: Mapping[tuple[RiskLevel, Channel], float] = field(default_factory=dict)
    #: Per level, the channels of a person without the app (most of a fan-out's contacts):
    #: worked out once, not for every contact.
    _without_app: Mapping[RiskLevel, tuple[Channel, ...]] = field(
        init=False, repr=False, compare=False
    )

    def __post_init__(self) -> None:
        without_app = {level: tuple(self._channels(level, False)) for level in self.steps}
        object.__setattr__(self, "_without_app", without_app)

    @classmethod
    def parse(cls, text: str) -> TierPolicy:
        steps: dict[RiskLevel, tuple[tuple[Channel, ...], ...]] = {}
        fallbacks: dict[tuple[RiskLevel, Channel], float] = {}
        guardian: Channel | None = None
        for part in filter(None, (p.strip() for p in text.split(";"))):
            key, eq, value = part.partition("=")
            key = key.strip().lower()
            if not eq:
                raise PolicyError(f"policy part {part!r} has no '='")
            if key == "guardian":
                guardian = _channel(value.strip()) if value.strip() else None
                if guardian is not None and guardian not in _GUARDIAN_CHANNELS:
                    raise PolicyError("guardians can be warned by sms or flash_sms only")
                continue
            level = _LEVEL_NAMES.get(key)
            if level is None:
                raise PolicyError(f"unknown level {key!r}; use low, medium, high or guardian")
            planned: list[tuple[Channel, ...]] = []
            for step in filter(None, (s.strip() for s in value.split(","))):
                alternatives: list[Channel] = []
                for alt in step.split("|"):
                    name, at, delay = alt.partition("@")
                    channel = _channel(name)
                    if at:
                        fallbacks[level, channel] = _fallback_delay(channel, delay, step)
                    alternatives.append(channel)
                planned.append(tuple(alternatives))
            steps[level] = tuple(planned)
        for level in _LEVEL_NAMES.values():
            if not steps.get(level):
                raise PolicyError(f"no channel for level {level.name.lower()}")
        for level, channel in fallbacks:
            if not any(Channel.APP_PUSH in step for step in steps[level]):
                raise PolicyError(
                    f"{channel.name.lower()}@ at level {level.name.lower()} falls back from "
                    "the app push, but that level has no push"
                )
        return cls(steps, guardian, fallbacks)

    def plan(self, level: RiskLevel, person: Person) -> list[PlannedDelivery]:
        """The deliveries of a warning at ``level`` to ``person``, guardians included."""
        guarded = person.protected and self.guardian_channel is not None
        if person.user_id is None and not guarded:
            # No push, so no fallback from it, and no guardians: the channels as they are.
            phone = person.phone_number
            return [PlannedDelivery(c, phone, None) for c in self._without_app[level]]
        return self.plan_in_full(level, person)

    def plan_in_full(self, level: RiskLevel, person: Person) -> list[PlannedDelivery]:
        """:meth:`plan` worked out step by step for any person, without the shortcut for a
        person without the app (which must give the same deliveries)."""
        guarded = person.protected and self.guardian_channel is not None
        channels = self._channels(level, person.user_id is not None)
        planned = [_to_person(channel, person) for channel in channels]
        pushed = Channel.APP_PUSH in channels
        planned = [
            replace(p, fallback_seconds=self.fallbacks.get((level, p.channel)))
            if pushed and (level, p.channel) in self.fallbacks
            else p
            for p in planned
        ]
        if guarded:
            assert self.guardian_channel is not None
            guardians = dict.fromkeys(g for g in person.guardians if g != person.phone_number)
            planned.extend(
                PlannedDelivery(self.guardian_channel, phone, None, guardian=True)
                for phone in guardians
            )
        return planned

    def _channels(self, level: RiskLevel, has_app: bool) -> list[Channel]:
        """The channels of a warning at ``level`` to the person, in order: per step the first
        alternative they can receive (a push needs the app), each channel once."""
        channels: list[Channel] = []
        for alternatives in self.steps[level]:
            for channel in alternatives:
                if channel == Channel.APP_PUSH and not has_app:
                    continue
                if channel not in channels:
                    channels.append(channel)
                break
        return channels


def _to_person(channel: Channel, person: Person) -> PlannedDelivery:
    if channel == Channel.APP_PUSH:
        return PlannedDelivery(channel, None, person.user_id)
    return PlannedDelivery(channel, person.phone_number, person.user_id)


def _fallback_delay(channel: Channel, delay: str, step: str) -> float:
    if channel not in _GUARDIAN_CHANNELS:
        raise PolicyError(f"only sms and flash_sms can fall back from the push ({step!r})")
    try:
        seconds = float(delay)
    except ValueError:
        raise PolicyError(f"{step!r}: the delay after '@' is a number of seconds") from None
    if not 0 <= seconds <= 3600:
        raise PolicyError(f"{step!r}: the delay is 0 to 3600 seconds")
    return seconds


def _channel(name: str) -> Channel:
    channel = _CHANNEL_NAMES.get(name.strip().lower())
    if channel is None:
        raise PolicyError(f"unknown channel {name.strip()!r}; use {', '.join(_CHANNEL_NAMES)}")
    return channel
