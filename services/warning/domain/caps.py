"""Caps on the call and home-visit tasks of a fan-out: 2,000 contacts must not make 500
call tasks unasked. A task over its cap becomes an SMS to the person, unless the warning
already texts them."""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from services.warning.domain.model import (
    CARRIER_CHANNELS,
    TASK_CHANNELS,
    Channel,
    Delivery,
    Fanout,
    Warning,
)


@dataclass
class TaskBudget:
    """How many more call and home-visit tasks a fan-out may create (absent: no cap). A task
    over its cap becomes an SMS to the person, unless the warning already sends them one."""

    remaining: dict[Channel, int] = field(default_factory=dict)
    created: dict[Channel, int] = field(default_factory=dict)
    capped: int = 0

    @classmethod
    def left_of(cls, fanout: Fanout) -> TaskBudget:
        """What is left of a fan-out's caps."""
        remaining: dict[Channel, int] = {}
        if fanout.call_task_cap is not None:
            remaining[Channel.CALL_TASK] = max(0, fanout.call_task_cap - fanout.call_tasks)
        if fanout.home_visit_task_cap is not None:
            remaining[Channel.HOME_VISIT_TASK] = max(
                0, fanout.home_visit_task_cap - fanout.home_visit_tasks
            )
        return cls(remaining)

    def apply(self, warning: Warning) -> Warning:
        if not any(d.channel in TASK_CHANNELS for d in warning.deliveries):
            return warning  # nothing to count or cap: the warning as it is
        kept: list[Delivery] = []
        for d in warning.deliveries:
            if d.channel not in TASK_CHANNELS:
                kept.append(d)
                continue
            left = self.remaining.get(d.channel)
            if left is None or left > 0:
                if left is not None:
                    self.remaining[d.channel] = left - 1
                self.created[d.channel] = self.created.get(d.channel, 0) + 1
                kept.append(d)
                continue
            self.capped += 1
            texted = any(
                k.channel in CARRIER_CHANNELS and not k.guardian
                for k in (*kept, *warning.deliveries)
            )
            if not texted:
                kept.append(replace(d, channel=Channel.SMS, phone_number=warning.phone_number))
        if len(kept) == len(warning.deliveries) and all(
            k is d for k, d in zip(kept, warning.deliveries, strict=True)
        ):
            return warning  # every task within its cap
        return replace(warning, deliveries=tuple(kept))
