"""The record of partner calls a simulator received, for tests to assert on (ListReceived).

Only calls that were answered are recorded: a call failed by the simulated behaviour or
rejected as invalid had no effect and is not. Summaries carry ids, states and masked
values only. The record is bounded; the oldest calls are dropped first.
"""

from __future__ import annotations

import itertools
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime

DEFAULT_CAPACITY = 100_000


@dataclass(frozen=True, slots=True)
class ReceivedCall:
    sequence: int
    simulator: str
    method: str
    idempotency_key: str
    receive_time: datetime
    replayed: bool
    summary: Mapping[str, str] = field(default_factory=dict)


def new_sequence() -> Callable[[], int]:
    """A source of increasing sequence numbers; simulators in one process share one."""
    counter = itertools.count(1)
    return lambda: next(counter)


class ReceivedLog:
    def __init__(
        self,
        simulator: str,
        sequence: Callable[[], int] | None = None,
        capacity: int = DEFAULT_CAPACITY,
    ) -> None:
        self.simulator = simulator
        self._sequence = sequence or new_sequence()
        self._calls: deque[ReceivedCall] = deque(maxlen=capacity)

    def record(
        self,
        method: str,
        idempotency_key: str,
        *,
        replayed: bool,
        summary: Mapping[str, str],
        now: datetime,
    ) -> ReceivedCall:
        call = ReceivedCall(
            self._sequence(), self.simulator, method, idempotency_key, now, replayed,
            dict(summary),
        )  # fmt: skip
        self._calls.append(call)
        return call

    def select(
        self, *, method: str, include_replays: bool, after: int, limit: int
    ) -> list[ReceivedCall]:
        """Up to ``limit`` calls with a sequence above ``after``, oldest first."""
        found: list[ReceivedCall] = []
        for call in self._calls:
            if call.sequence <= after:
                continue
            if method and call.method != method:
                continue
            if call.replayed and not include_replays:
                continue
            found.append(call)
            if len(found) >= limit:
                break
        return found

    def clear(self) -> None:
        self._calls.clear()
