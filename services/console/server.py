"""``antifraud serve console``: the web application on uvicorn, ready once it listens, and
/metrics on its metrics port like every process (the HTTP port plus 1000, or
``ANTIFRAUD_CONSOLE_METRICS_ADDR``; ``off`` turns it off)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import uvicorn

from services.common import metrics
from services.common.config import listen_addr
from services.common.logs import get_logger
from services.console.app import create_app
from services.console.settings import ConsoleSettings

log = get_logger("console")
#: How often readiness looks whether uvicorn has bound its socket.
READY_POLL_SECONDS = 0.05


def _host_port(addr: str) -> tuple[str, int]:
    host, _, port = addr.rpartition(":")
    return host.strip("[]") or "0.0.0.0", int(port)


async def serve(name: str, addr: str | None, on_ready: Callable[[], None]) -> None:
    """Serve until SIGTERM or Ctrl-C (uvicorn's own handlers: it finishes open requests)."""
    settings = ConsoleSettings.from_env()
    address = addr or listen_addr(name)
    host, port = _host_port(address)
    config = uvicorn.Config(
        create_app(settings),
        host=host,
        port=port,
        log_config=None,  # our structured logs; no access log (it would print paths)
        access_log=False,
        server_header=False,
        lifespan="on",
        timeout_graceful_shutdown=5,
    )
    server = uvicorn.Server(config)
    running = asyncio.create_task(server.serve())
    while not server.started:
        if running.done():
            await running  # it failed to start: its error goes up
            raise RuntimeError(f"the console could not listen on {host}:{port}")
        await asyncio.sleep(READY_POLL_SECONDS)
    scrape = metrics.metrics_addr(name, address)
    if scrape is not None:
        try:
            metrics.serve_metrics(scrape, lambda: server.started and not server.should_exit)
        except OSError as exc:  # metrics are for operators: the console serves without them
            log.error("metrics endpoint not started", address=scrape, error=str(exc))
    on_ready()
    await running
