"""A TCP proxy for database fault tests: forwards, refuses or black-holes connections.

- ``forward()``: connections pass to the upstream (PostgreSQL) both ways.
- ``refuse()``: nothing listens (connection refused) and open connections are cut.
- ``blackhole()``: the network stops answering. New connections are accepted and never
  answered; open ones stay open, and what is written into them is held, not delivered
  (no reset, no FIN: a client notices only by its own timeouts).

Leaving a fault (``forward()``) cuts every connection opened before it, as a partition
that outlived the peers' TCP timeouts does. ``close()`` ends everything: the listening
socket, every pipe task and both sockets of every connection, so no black-holed
connection keeps a task (or the caller's teardown) waiting.
"""

from __future__ import annotations

import asyncio
import contextlib

from tests import harness

CHUNK = 65536


class Proxy:
    """One TCP proxy on a free port of 127.0.0.1 in front of ``upstream``."""

    def __init__(self, upstream: tuple[str, int]) -> None:
        self.upstream = upstream
        self.port = harness.free_port()
        self.mode = "forward"
        #: Connections accepted since it started (a fault test sees the clients reconnect).
        self.accepted = 0
        self._server: asyncio.Server | None = None
        self._pipes: set[asyncio.Task[None]] = set()
        self._writers: set[asyncio.StreamWriter] = set()

    async def start(self) -> None:
        self._server = await asyncio.start_server(
            self._serve, "127.0.0.1", self.port, reuse_address=True
        )

    async def forward(self) -> None:
        await self._stop()
        self.mode = "forward"
        await self.start()

    async def refuse(self) -> None:
        await self._stop()
        self.mode = "refuse"

    async def blackhole(self) -> None:
        """Silence: open connections are kept (and held), new ones accepted and ignored."""
        if self._server is None:
            await self.start()
        self.mode = "blackhole"

    async def close(self) -> None:
        await self._stop()
        self.mode = "closed"

    async def _stop(self) -> None:
        """No listener, no connection, no task left."""
        server, self._server = self._server, None
        if server is not None:
            server.close()
        # Sockets first: on Python 3.12+ ``wait_closed`` waits for every connection the
        # server accepted, which a held (black-holed) one never ends by itself.
        for writer in list(self._writers):
            writer.transport.abort()
        self._writers.clear()
        pipes = list(self._pipes)
        for task in pipes:
            task.cancel()
        if pipes:
            await asyncio.wait(pipes, timeout=5)
        if server is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(server.wait_closed(), timeout=5)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self.accepted += 1
        self._pipes.add(task)
        self._writers.add(writer)
        up_writer: asyncio.StreamWriter | None = None
        try:
            if self.mode != "forward":
                await _hold(reader)
                return
            async with asyncio.timeout(5):
                up_reader, up_writer = await asyncio.open_connection(*self.upstream)
            self._writers.add(up_writer)
            await asyncio.gather(self._pipe(reader, up_writer), self._pipe(up_reader, writer))
        except (OSError, TimeoutError, asyncio.CancelledError):
            pass
        finally:
            for one in (writer, up_writer):
                if one is not None:
                    one.transport.abort()
                    self._writers.discard(one)
            self._pipes.discard(task)

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while data := await reader.read(CHUNK):
            if self.mode != "forward":
                await _hold(reader)  # black-holed: never delivered
                return
            writer.write(data)
            await writer.drain()
        writer.transport.abort()  # one side ended: so does the other


async def _hold(reader: asyncio.StreamReader) -> None:
    """Swallow what the peer sends until it goes away (or the proxy cuts it)."""
    while await reader.read(CHUNK):
        pass
