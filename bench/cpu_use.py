"""CPU used by processes and by the whole machine over a measured interval (Linux /proc).

What a bench prints when a target is missed: whether its servers' event loops were busy
(a process near 1.0 CPU-s per second is one saturated core), whether the machine's cores
were, and how much of that was other processes' (the database, other work on the host).
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass

_TICK = os.sysconf("SC_CLK_TCK")


def _process_seconds(pid: int) -> float:
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / _TICK  # utime + stime


def _machine_seconds() -> tuple[float, float]:
    """(busy, total) CPU seconds of all cores since boot."""
    with open("/proc/stat") as f:
        values = [int(v) for v in f.readline().split()[1:]]
    idle = values[3] + (values[4] if len(values) > 4 else 0)  # idle + iowait
    total = sum(values[:8])
    return (total - idle) / _TICK, total / _TICK


@dataclass
class CpuUse:
    """CPU seconds per named process, and the machine's busy share, over one interval."""

    wall: float
    cores: int
    by_process: dict[str, float]
    machine_busy: float  # CPU seconds of all cores

    def per_second(self, name: str) -> float:
        return self.by_process.get(name, 0.0) / self.wall if self.wall else 0.0

    @property
    def busy_share(self) -> float:
        """The machine's cores busy, 0..1."""
        return self.machine_busy / (self.wall * self.cores) if self.wall else 0.0

    @property
    def others(self) -> float:
        """CPU seconds of every process not named (the database, other work on the host)."""
        return max(0.0, self.machine_busy - sum(self.by_process.values()))


class CpuMeter:
    """``start()`` then ``stop()`` around an interval, for the given processes (pid 0: this
    one)."""

    def __init__(self, pids: dict[str, int]) -> None:
        self.pids = pids
        self._started: tuple[float, dict[str, float], float] | None = None

    def _now(self) -> dict[str, float]:
        return {
            name: time.process_time() if pid == 0 else _process_seconds(pid)
            for name, pid in self.pids.items()
        }

    def read(self) -> tuple[dict[str, float], float]:
        """CPU seconds so far: each process's, and every core's busy time (whoever used it)."""
        return self._now(), _machine_seconds()[0]

    def start(self) -> None:
        self._started = (time.perf_counter(), self._now(), _machine_seconds()[0])

    def stop(self) -> CpuUse:
        assert self._started is not None, "start() first"
        wall0, procs0, busy0 = self._started
        procs1 = self._now()
        return CpuUse(
            wall=time.perf_counter() - wall0,
            cores=os.cpu_count() or 1,
            by_process={n: procs1[n] - procs0[n] for n in self.pids},
            machine_busy=_machine_seconds()[0] - busy0,
        )
