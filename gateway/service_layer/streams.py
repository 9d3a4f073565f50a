"""Streams open through the gateway, per API key: a cap on how many, and revocation
that ends them.

A stream is admitted once, when it opens; without this a revoked key's stream would
go on for as long as its budget (a day for the change feed). The gateway follows
revocations (its own and other replicas', from the key store) and ends the streams
of a revoked key with UNAUTHENTICATED.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

from services.common import metrics
from services.common.errors import ResourceExhausted, Unauthenticated

#: How soon a client may try again after hitting the cap.
RETRY_AFTER_SECONDS = 1.0


@dataclass(eq=False)
class _Stream:
    task: asyncio.Task[object] | None
    revoked: bool = field(default=False)


class OpenStreams:
    def __init__(self, cap_per_key: int) -> None:
        self.cap = cap_per_key
        self._open: dict[str, set[_Stream]] = {}

    def keys(self) -> list[str]:
        return list(self._open)

    @asynccontextmanager
    async def hold(self, key_id: str) -> AsyncIterator[None]:
        """Count a stream against its key while the block runs; a revocation cancels the
        block and ends the stream as UNAUTHENTICATED."""
        streams = self._open.setdefault(key_id, set())
        if len(streams) >= self.cap:
            if not streams:
                del self._open[key_id]
            metrics.REFUSALS.labels("gateway", "stream_cap").inc()
            raise ResourceExhausted(
                f"at most {self.cap} open streams per key; close one first",
                retry_after=RETRY_AFTER_SECONDS,
            )
        task = asyncio.current_task()
        stream = _Stream(task)
        streams.add(stream)
        try:
            yield
        except asyncio.CancelledError:
            if not stream.revoked:
                raise
            if task is not None:
                task.uncancel()
            raise Unauthenticated("the API key has been revoked") from None
        finally:
            streams.discard(stream)
            if not streams:
                self._open.pop(key_id, None)

    def revoke(self, key_id: str) -> int:
        """End every open stream of ``key_id``; how many there were."""
        streams = self._open.get(key_id, set())
        for stream in streams:
            if not stream.revoked and stream.task is not None:
                stream.revoked = True
                stream.task.cancel()
        return len(streams)
