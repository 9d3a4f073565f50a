"""`antifraud up` as a supervisor, as real processes: it restarts a child that dies, fails
loudly when a server cannot start, honours SIGTERM at any moment, never leaves a child
behind (kill -9 of the supervisor included), and refuses ports another process holds."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from services.common.health_client import wait_serving
from tests.harness import ROOT, free_port

# Bounded waits: generous, since the machine may be busy; never a timing assertion.
WAIT = 60.0


class Up:
    """One `antifraud up` process, its JSON log lines and its stdout."""

    def __init__(
        self, tmp: Path, names: list[str], options: tuple[str, ...], extra_env: dict[str, str]
    ) -> None:
        self.stderr_path = tmp / "up.err"
        self.stdout_path = tmp / "up.out"
        self.addrs = {name: f"127.0.0.1:{free_port()}" for name in names}
        env = {
            **os.environ,
            "ANTIFRAUD_DATA_DIR": str(tmp / "data"),
            "ANTIFRAUD_LOG_FORMAT": "json",
            "ANTIFRAUD_GRACE_SECONDS": "1",
            # One process each unless a test asks for workers (tests/e2e/test_workers.py).
            "ANTIFRAUD_RISK_WORKERS": "1",
            "ANTIFRAUD_GATEWAY_WORKERS": "1",
            **{f"ANTIFRAUD_{n.upper()}_ADDR": a for n, a in self.addrs.items()},
            **extra_env,
        }
        with open(self.stderr_path, "wb") as err, open(self.stdout_path, "wb") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "services.cli", "up", *options, "--only", *names],
                env=env,
                cwd=ROOT,
                stdout=out,
                stderr=err,
            )

    def records(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.stderr_path.read_text().splitlines() if line]

    def events(self, event: str) -> list[dict[str, Any]]:
        return [r for r in self.records() if r.get("event") == event]

    def stdout(self) -> str:
        return self.stdout_path.read_text()

    async def wait_for(self, what: Callable[[], Any], timeout: float = WAIT) -> Any:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = what()
            if found:
                return found
            if self.proc.poll() is not None:
                found = what()
                assert found, f"up exited {self.proc.returncode}:\n{self.stderr_path.read_text()}"
                return found
            await asyncio.sleep(0.1)
        raise AssertionError(f"not seen in {timeout}s:\n{self.stderr_path.read_text()}")

    def exit_status(self, timeout: float = WAIT) -> int:
        return self.proc.wait(timeout)

    def child_pids(self) -> list[int]:
        return [r["pid"] for r in self.events("started")]


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie of ours is dead too: only the supervisor (or init) can reap it.
    with open(f"/proc/{pid}/stat") as stat:
        return stat.read().split(")")[-1].split()[0] != "Z"


async def wait_gone(pids: list[int], timeout: float = WAIT) -> None:
    deadline = time.monotonic() + timeout
    while any(alive(pid) for pid in pids):
        assert time.monotonic() < deadline, f"still running: {[p for p in pids if alive(p)]}"
        await asyncio.sleep(0.1)


@contextmanager
def up(tmp: Path, names: list[str], *options: str, **extra_env: str) -> Iterator[Up]:
    process = Up(tmp, names, options, extra_env)
    try:
        yield process
    finally:
        if process.proc.poll() is None:
            process.proc.kill()
            process.proc.wait()
        for pid in process.child_pids():
            if alive(pid):
                os.kill(pid, signal.SIGKILL)


@contextmanager
def listening(port: int) -> Iterator[None]:
    """Another process's server on ``port``, as far as binding goes."""
    with socket.socket() as holder:
        holder.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        holder.bind(("127.0.0.1", port))
        holder.listen()
        yield


async def test_a_child_that_dies_is_restarted_and_sigterm_stops_all(tmp_path: Path) -> None:
    with up(tmp_path, ["echo"]) as suite:
        await suite.wait_for(lambda: suite.events("all serving"))
        assert "all 1 servers SERVING" in suite.stdout()
        first = suite.child_pids()[0]
        os.kill(first, signal.SIGKILL)

        exited = await suite.wait_for(lambda: suite.events("server exited"))
        assert exited[0]["server"] == "echo"
        assert exited[0]["status"] == "killed by SIGKILL"
        assert exited[0]["restart_in_seconds"] > 0
        restarted = await suite.wait_for(lambda: suite.events("restarted"))
        assert restarted[0]["pid"] != first
        await wait_serving(suite.addrs["echo"], timeout=WAIT)

        suite.proc.send_signal(signal.SIGTERM)
        assert suite.exit_status() == 0
        await wait_gone(suite.child_pids())


async def test_kill_9_of_up_takes_every_child_down(tmp_path: Path) -> None:
    with up(tmp_path, ["echo", "partners"], ANTIFRAUD_PARTNERS_LATENCY_MS="0") as suite:
        await suite.wait_for(lambda: suite.events("all serving"))
        children = suite.child_pids()
        assert len(children) == 2
        suite.proc.kill()
        suite.proc.wait()
        await wait_gone(children)


async def test_sigterm_while_a_server_is_still_starting(tmp_path: Path) -> None:
    # A "database" that accepts connections and never answers: risk hangs in its start.
    with socket.socket() as black_hole:
        black_hole.bind(("127.0.0.1", 0))
        black_hole.listen()
        port = black_hole.getsockname()[1]
        url = f"postgresql+asyncpg://nobody@127.0.0.1:{port}/db"
        with up(tmp_path, ["echo", "risk"], ANTIFRAUD_RISK_DATABASE_URL=url) as suite:
            await suite.wait_for(lambda: len(suite.events("started")) == 2)
            await wait_serving(suite.addrs["echo"], timeout=WAIT)
            suite.proc.send_signal(signal.SIGTERM)
            assert suite.exit_status() == 0
            await wait_gone(suite.child_pids())
            assert not suite.events("all serving")
            assert not suite.events("killed"), "risk should stop at SIGTERM, not be killed"


async def test_up_gives_up_when_a_server_is_not_serving_in_time(tmp_path: Path) -> None:
    with socket.socket() as black_hole:
        black_hole.bind(("127.0.0.1", 0))
        black_hole.listen()
        url = f"postgresql+asyncpg://nobody@127.0.0.1:{black_hole.getsockname()[1]}/db"
        with up(tmp_path, ["risk"], "--timeout", "3", ANTIFRAUD_RISK_DATABASE_URL=url) as suite:
            assert suite.exit_status() == 1
            (failed,) = suite.events("cannot start")
            assert failed["error"] == "not SERVING after 3s: risk"
            await wait_gone(suite.child_pids())


async def test_up_exits_non_zero_when_a_server_cannot_start(tmp_path: Path) -> None:
    refused = f"postgresql+asyncpg://nobody@127.0.0.1:{free_port()}/db"
    with up(tmp_path, ["echo", "risk"], ANTIFRAUD_RISK_DATABASE_URL=refused) as suite:
        assert suite.exit_status() != 0
        failed = suite.events("cannot start")
        risk_line = [r for r in failed if r.get("service") == "risk"]
        assert len(risk_line) == 1
        assert "database" in risk_line[0]["error"]
        assert "traceback" not in suite.stderr_path.read_text().lower()
        summary = [r for r in failed if "service" not in r]
        assert "risk (exit 69) before it was SERVING" in summary[0]["error"]
        assert "SERVING in" not in suite.stdout()
        await wait_gone(suite.child_pids())


async def test_a_port_held_by_another_process_is_one_line_and_never_all_serving(
    tmp_path: Path,
) -> None:
    port = free_port()
    with listening(port), up(tmp_path, ["echo"], ANTIFRAUD_ECHO_ADDR=f"127.0.0.1:{port}") as suite:
        assert suite.exit_status() == 69
        records = suite.records()
        assert len(records) == 1, records
        assert records[0]["event"] == "cannot start"
        assert records[0]["error"] == f"cannot listen on 127.0.0.1:{port}: Address already in use"
        assert suite.child_pids() == []
        assert "SERVING" not in suite.stdout()


@pytest.mark.parametrize(
    ("variable", "value", "expected"),
    [
        ("ANTIFRAUD_GRACE_SECONDS", "abc", "a number of seconds"),
        ("ANTIFRAUD_LOG_LEVEL", "verbose", "one of debug, info"),
        ("ANTIFRAUD_LOG_FORMAT", "xml", "one of auto, json, console"),
    ],
)
async def test_up_refuses_a_bad_setting_before_starting_anything(
    tmp_path: Path, variable: str, value: str, expected: str
) -> None:
    with up(tmp_path, ["echo"], **{variable: value}) as suite:
        assert suite.exit_status() == 78
        (record,) = suite.records()
        assert record["event"] == "bad setting"
        assert record["variable"] == variable
        assert record["value"] == value
        assert expected in record["expected"]
        assert suite.child_pids() == []
