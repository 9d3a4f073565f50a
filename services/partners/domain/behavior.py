"""How a simulator behaves: latency with jitter, failure rates, SMS delivery delay.

Draws take a ``random.Random`` so that the rules stay pure and tests can seed them.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass

MAX_LATENCY_MS = 60_000
MAX_DELIVERY_DELAY_MS = 3_600_000


@dataclass(frozen=True, slots=True)
class Behavior:
    """``delivery_*`` are None when they follow the latency draw and ``failure_rate``."""

    latency_ms: int = 0
    jitter_ms: int = 0
    failure_rate: float = 0.0
    delivery_delay_ms: int | None = None
    delivery_failure_rate: float | None = None

    def problems(self) -> list[tuple[str, str]]:
        """(field, reason) for every value out of range; empty when the behaviour is valid."""
        found: list[tuple[str, str]] = []
        for name, value in (("latency_ms", self.latency_ms), ("jitter_ms", self.jitter_ms)):
            if not 0 <= value <= MAX_LATENCY_MS:
                found.append((name, f"must be from 0 to {MAX_LATENCY_MS}"))
        if self.delivery_delay_ms is not None and not (
            0 <= self.delivery_delay_ms <= MAX_DELIVERY_DELAY_MS
        ):
            found.append(("delivery_delay_ms", f"must be from 0 to {MAX_DELIVERY_DELAY_MS}"))
        rates: list[tuple[str, float]] = [("failure_rate", self.failure_rate)]
        if self.delivery_failure_rate is not None:
            rates.append(("delivery_failure_rate", self.delivery_failure_rate))
        for name, rate in rates:
            if math.isnan(rate) or not 0.0 <= rate <= 1.0:
                found.append((name, "must be from 0 to 1"))
        return found

    def draw_latency(self, rng: random.Random) -> float:
        """Seconds to wait before answering: the latency plus or minus up to the jitter."""
        jitter = rng.uniform(-self.jitter_ms, self.jitter_ms) if self.jitter_ms else 0.0
        return max(0.0, self.latency_ms + jitter) / 1000.0

    def draw_failure(self, rng: random.Random) -> bool:
        """Whether this call fails (UNAVAILABLE)."""
        return self.failure_rate > 0.0 and rng.random() < self.failure_rate

    def draw_delivery_delay(self, rng: random.Random) -> float:
        """Seconds from accepting an SMS to its delivery."""
        if self.delivery_delay_ms is not None:
            return self.delivery_delay_ms / 1000.0
        return self.draw_latency(rng)

    def draw_delivery_failure(self, rng: random.Random) -> bool:
        rate = (
            self.failure_rate if self.delivery_failure_rate is None else self.delivery_failure_rate
        )
        return rate > 0.0 and rng.random() < rate
