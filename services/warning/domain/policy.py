"""The tier policy: which channels a warning of each level goes through.

Written as ``high=home_visit,call,flash_sms,push;medium=call,sms,push;low=push|sms;guardian=sms``:
per level, a comma-separated list of steps; a step of alternatives separated by
``|`` uses the first one the person can receive (an app push needs a registered
app user; every other channel needs only the phone number, which every person
has). ``guardian`` names the channel a protected user's guardians are warned by.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from services.warning.domain.model import Channel, Person, RiskLevel

DEFAULT_POLICY = (
    "high=home_visit,call,flash_sms,push;medium=call,sms,push;low=push|sms;guardian=sms"
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


@dataclass(frozen=True)
class TierPolicy:
    steps: Mapping[RiskLevel, tuple[tuple[Channel, ...], ...]]
    guardian_channel: Channel | None

    @classmethod
    def parse(cls, text: str) -> TierPolicy:
        steps: dict[RiskLevel, tuple[tuple[Channel, ...], ...]] = {}
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
            steps[level] = tuple(
                tuple(_channel(alt) for alt in step.split("|"))
                for step in (s.strip() for s in value.split(","))
                if step
            )
        for level in _LEVEL_NAMES.values():
            if not steps.get(level):
                raise PolicyError(f"no channel for level {level.name.lower()}")
        return cls(steps, guardian)

    def plan(self, level: RiskLevel, person: Person) -> list[PlannedDelivery]:
        """The deliveries of a warning at ``level`` to ``person``, guardians included."""
        planned: list[PlannedDelivery] = []
        seen: set[Channel] = set()
        for alternatives in self.steps[level]:
            for channel in alternatives:
                if channel == Channel.APP_PUSH and person.user_id is None:
                    continue
                if channel not in seen:
                    seen.add(channel)
                    planned.append(_to_person(channel, person))
                break
        if person.protected and self.guardian_channel is not None:
            guardians = dict.fromkeys(g for g in person.guardians if g != person.phone_number)
            planned.extend(
                PlannedDelivery(self.guardian_channel, phone, None, guardian=True)
                for phone in guardians
            )
        return planned


def _to_person(channel: Channel, person: Person) -> PlannedDelivery:
    if channel == Channel.APP_PUSH:
        return PlannedDelivery(channel, None, person.user_id)
    return PlannedDelivery(channel, person.phone_number, person.user_id)


def _channel(name: str) -> Channel:
    channel = _CHANNEL_NAMES.get(name.strip().lower())
    if channel is None:
        raise PolicyError(f"unknown channel {name.strip()!r}; use {', '.join(_CHANNEL_NAMES)}")
    return channel
