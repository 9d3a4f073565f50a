"""``antifraud up``: run each server as a child process and keep it running.

- Workers (several children serving one address): the first starts alone; its siblings
  once it is SERVING, so migrations and seeding run once, without contention.
- Start: each child says ``ready`` on a pipe once its own server took its ports and is
  SERVING (``services.common.lifecycle``), so another process answering health on the
  same address is never taken for it. Every address is checked free before any child is
  started. A child that exits before it is ready, or a start slower than the start
  timeout, stops everything: ``up`` exits non-zero.
- Run: a child that dies is logged and started again after a backoff (1 s, doubling to
  30 s; back to 1 s once a child stayed up for a minute).
- Stop: SIGTERM, SIGINT or SIGHUP at any moment (also while children are starting or
  waiting for a restart): each child gets SIGTERM and ``ANTIFRAUD_GRACE_SECONDS`` plus a
  margin (its drain and its own clean-up) before it is killed.
- Children die with the supervisor, ``kill -9`` included: see ``lifecycle.die_with_supervisor``.

No supervisor library fits better: supervisord and circus are daemons with their own
configuration files, and neither knows when a gRPC server is ready; this is one asyncio
loop over a handful of children.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from services.common import lifecycle, logs

log = logs.get_logger("supervisor")

INITIAL_BACKOFF_SECONDS = 1.0
MAX_BACKOFF_SECONDS = 30.0
#: A child up this long is healthy again: its next restart waits the initial backoff.
STABLE_SECONDS = 60.0
#: Beyond the children's grace: their drain delay and their components' own clean-up.
STOP_MARGIN_SECONDS = 10.0


@dataclass
class Child:
    name: str
    argv: list[str]
    #: What the banner says of it once all are SERVING (its address, its role).
    label: str = ""
    proc: asyncio.subprocess.Process | None = None
    ready: asyncio.Event = field(default_factory=asyncio.Event)
    restarts: int = 0
    #: A worker starts once this sibling is SERVING the first time: the first worker
    #: migrates and seeds the database alone, so siblings never wait on its locks.
    after: Child | None = None


def describe(status: int) -> str:
    """``exit 69`` or ``killed by SIGKILL``."""
    if status < 0:
        return f"killed by {signal.Signals(-status).name}"
    return f"exit {status}"


class Supervisor:
    def __init__(
        self,
        children: Sequence[Child],
        *,
        grace_seconds: float,
        start_timeout: float = 60.0,
        env: dict[str, str] | None = None,
    ) -> None:
        self.children = list(children)
        self.stop_timeout = grace_seconds + STOP_MARGIN_SECONDS
        self.start_timeout = start_timeout
        self.env = {**(env if env is not None else os.environ), "PYTHONUNBUFFERED": "1"}
        self.stopping = asyncio.Event()
        self.start_failed = asyncio.Event()
        self.failure = ""

    async def run(self) -> int:
        """Start every child, keep them up until a signal; the exit status of ``up``."""
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            loop.add_signal_handler(sig, self._on_signal, sig)
        began = time.monotonic()
        keepers = [asyncio.create_task(self._keep(child)) for child in self.children]
        all_ready = asyncio.ensure_future(
            asyncio.gather(*(child.ready.wait() for child in self.children))
        )
        waiters: list[asyncio.Future[Any]] = [
            all_ready,
            asyncio.ensure_future(self.stopping.wait()),
            asyncio.ensure_future(self.start_failed.wait()),
        ]
        await asyncio.wait(waiters, timeout=self.start_timeout, return_when=asyncio.FIRST_COMPLETED)
        code = 0
        if all_ready.done() and not self.stopping.is_set():
            self._banner(time.monotonic() - began)
            await self.stopping.wait()
        elif not self.stopping.is_set():
            if not self.start_failed.is_set():
                late = [c.name for c in self.children if not c.ready.is_set()]
                self.failure = f"not SERVING after {self.start_timeout:g}s: {', '.join(late)}"
            log.error("cannot start", error=self.failure)
            code = 1
        for waiter in waiters:
            waiter.cancel()
        await asyncio.gather(*waiters, return_exceptions=True)
        await self._stop_all(keepers)
        return code

    def _on_signal(self, sig: signal.Signals) -> None:
        if not self.stopping.is_set():
            log.info("stopping", signal=sig.name, wait_seconds=self.stop_timeout)
        self.stopping.set()

    def _banner(self, took: float) -> None:
        log.info("all serving", servers=len(self.children), seconds=round(took, 1))
        width = max(len(child.name) for child in self.children)
        print(f"\nall {len(self.children)} servers SERVING in {took:.1f}s:")
        for child in self.children:
            print(f"  {child.name:<{width}}  {child.label}")
        print("Ctrl-C or SIGTERM stops them all.\n", flush=True)

    async def _keep(self, child: Child) -> None:
        """Run one child; start it again after a backoff each time it dies, until stopped."""
        backoff = INITIAL_BACKOFF_SECONDS
        if child.after is not None:
            first = asyncio.ensure_future(child.after.ready.wait())
            stop = asyncio.ensure_future(self.stopping.wait())
            await asyncio.wait([first, stop], return_when=asyncio.FIRST_COMPLETED)
            for waiter in (first, stop):
                waiter.cancel()
        while not self.stopping.is_set():
            proc, readiness = await self._spawn(child)
            ready = await self._wait_ready(readiness)
            up_since = time.monotonic()
            if ready:
                child.ready.set()
                if child.restarts:
                    log.info("restarted", server=child.name, pid=proc.pid, restarts=child.restarts)
            status = await proc.wait()
            if self.stopping.is_set():
                return
            if not all(c.ready.is_set() for c in self.children):
                # Before everything is up, a child that dies means the suite cannot start.
                when = "after" if ready else "before"
                self.failure = f"{child.name} ({describe(status)}) {when} it was SERVING"
                self.start_failed.set()
                return
            if ready and time.monotonic() - up_since >= STABLE_SECONDS:
                backoff = INITIAL_BACKOFF_SECONDS
            log.error(
                "server exited",
                server=child.name,
                pid=proc.pid,
                status=describe(status),
                restart_in_seconds=backoff,
            )
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.stopping.wait(), backoff)
            backoff = min(backoff * 2, MAX_BACKOFF_SECONDS)
            child.restarts += 1

    async def _spawn(
        self, child: Child
    ) -> tuple[asyncio.subprocess.Process, tuple[asyncio.StreamReader, asyncio.BaseTransport]]:
        read_end, write_end = os.pipe()
        env = {
            **self.env,
            lifecycle.READY_FD: str(write_end),
            lifecycle.SUPERVISOR_PID: str(os.getpid()),
        }
        try:
            proc = await asyncio.create_subprocess_exec(
                *child.argv,
                env=env,
                pass_fds=(write_end,),
                stdin=subprocess.DEVNULL,
                stderr=logs.native_stderr(),
                # Out of the terminal's process group: Ctrl-C reaches the supervisor only,
                # which stops the children in order.
                start_new_session=True,
            )
        finally:
            os.close(write_end)
        child.proc = proc
        log.info("started", server=child.name, pid=proc.pid)
        if self.stopping.is_set():
            proc.send_signal(signal.SIGTERM)
        loop = asyncio.get_running_loop()
        reader = asyncio.StreamReader()
        transport, _ = await loop.connect_read_pipe(
            lambda: asyncio.StreamReaderProtocol(reader), os.fdopen(read_end, "rb", buffering=0)
        )
        return proc, (reader, transport)

    @staticmethod
    async def _wait_ready(readiness: tuple[asyncio.StreamReader, asyncio.BaseTransport]) -> bool:
        """True once the child says ``ready``; False when it exits (or closes) first."""
        reader, transport = readiness
        try:
            return (await reader.readline()).strip() == b"ready"
        finally:
            transport.close()

    async def _stop_all(self, keepers: list[asyncio.Task[None]]) -> None:
        self.stopping.set()
        for child in self.children:
            self._signal(child, signal.SIGTERM)
        _, late = await asyncio.wait(keepers, timeout=self.stop_timeout)
        if late:
            for child in self.children:
                if child.proc is not None and child.proc.returncode is None:
                    log.error(
                        "killed",
                        server=child.name,
                        pid=child.proc.pid,
                        after_seconds=self.stop_timeout,
                    )
                self._signal(child, signal.SIGKILL)
            await asyncio.wait(late)
        log.info("stopped", servers=len(self.children))

    @staticmethod
    def _signal(child: Child, sig: signal.Signals) -> None:
        if child.proc is not None and child.proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                child.proc.send_signal(sig)


def child_argv(name: str, worker: int = 0) -> list[str]:
    """How a child is started; ``worker`` k >= 1 shares its address with its siblings."""
    argv = [sys.executable, "-m", "services.cli", "serve", name]
    return [*argv, "--worker", str(worker)] if worker else argv
