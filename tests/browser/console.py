"""The console as its own process, next to a running suite, for the browser tests."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from services.common.health_client import http_ok
from tests import harness


@contextmanager
def console_process(
    env: dict[str, str], gateway: str, log_path: Path, **settings: str
) -> Iterator[str]:
    """``antifraud serve console`` on a free port, pointed at ``gateway``; its base URL."""
    addr = f"127.0.0.1:{harness.free_port()}"
    own = {
        **env,
        "ANTIFRAUD_GATEWAY_TARGET": gateway,
        "ANTIFRAUD_CONSOLE_ADDR": addr,
        **{f"ANTIFRAUD_CONSOLE_{k.upper()}": v for k, v in settings.items()},
    }
    with open(log_path, "ab") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "services.cli", "serve", "console"],
            env=own,
            cwd=harness.ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        yield f"http://{addr}"
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


async def wait_up(url: str, timeout: float = 180) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not await asyncio.to_thread(http_ok, url.removeprefix("http://")):
        if loop.time() > deadline:
            raise AssertionError(f"the console at {url} did not answer")
        await asyncio.sleep(0.2)
