"""Rules of warnings: what counts as the same warning, how states add up and move."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

from services.warning.domain.model import (
    DeliveryState,
    Reason,
    TaskOutcome,
    WarningState,
)


def reason_key(reason: Reason) -> str:
    """What "the same thing" means for the once-per-window rule: the indicator, else the case.

    Hashed, so the key is short and fixed-size whatever the indicator's length.
    """
    if reason.indicator is not None:
        raw = f"indicator:{int(reason.indicator.kind)}:{reason.indicator.value}"
    else:
        raw = f"case:{reason.case_id}"
    return hashlib.sha256(raw.encode()).hexdigest()


def warning_state(deliveries: Iterable[DeliveryState], acknowledged: bool) -> WarningState:
    """A warning is acknowledged once the person says so, delivered once any channel reached
    them, failed once every channel failed, and pending until then. A fallback that was not
    needed counts for nothing (another channel reached the person)."""
    states = [s for s in deliveries if s != DeliveryState.NOT_NEEDED]
    if acknowledged or DeliveryState.ACKNOWLEDGED in states:
        return WarningState.ACKNOWLEDGED
    if DeliveryState.DELIVERED in states:
        return WarningState.DELIVERED
    if states and all(s == DeliveryState.FAILED for s in states):
        return WarningState.FAILED
    return WarningState.PENDING


def moves_forward(current: DeliveryState, new: DeliveryState) -> bool:
    """Receipts and polls can arrive late or twice: a delivery only moves forward. ACKNOWLEDGED
    FAILED and NOT_NEEDED are final; a delivered one can still be acknowledged, nothing else."""
    if current in (DeliveryState.ACKNOWLEDGED, DeliveryState.FAILED, DeliveryState.NOT_NEEDED):
        return False
    if current == DeliveryState.DELIVERED:
        return new == DeliveryState.ACKNOWLEDGED
    return new == DeliveryState.FAILED or new > current


def delivery_state_of_outcome(outcome: TaskOutcome) -> DeliveryState:
    """A task reached the person unless they were unreachable."""
    return DeliveryState.FAILED if outcome == TaskOutcome.UNREACHABLE else DeliveryState.DELIVERED
