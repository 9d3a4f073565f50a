"""AIP-155 for the service layer: a repeated request id returns the first response.

The servicer describes how a result becomes the response; the handler recalls
and remembers it inside its own transaction (``services.common.idempotency``),
so the stored response commits together with the change it describes.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

from google.protobuf.message import Message
from sqlalchemy.ext.asyncio import AsyncConnection

from services.common import idempotency
from services.identity.adapters import tables

R = TypeVar("R")
M = TypeVar("M", bound=Message)


@dataclass(frozen=True)
class Replay(Generic[R, M]):
    method: str
    request_id: str
    fingerprint: str
    response_type: type[M]
    render: Callable[[R], M]

    async def recall(self, conn: AsyncConnection) -> M | None:
        stored = await idempotency.recall(
            conn, tables.idempotency, self.method, self.request_id, self.fingerprint
        )
        if stored is None:
            return None
        return self.response_type.FromString(stored)

    async def claim(self, conn: AsyncConnection) -> M | None:
        """Recall, and claim the request id for this transaction when there is no response
        yet: a twin then waits for this transaction and gets its response. Only in a block
        that ends with ``remember`` and a commit."""
        stored = await idempotency.claim(
            conn, tables.idempotency, self.method, self.request_id, self.fingerprint
        )
        if stored is None:
            return None
        return self.response_type.FromString(stored)

    async def remember(self, conn: AsyncConnection, result: R) -> M:
        response = self.render(result)
        await idempotency.remember(
            conn, tables.idempotency, self.method, self.request_id, self.fingerprint, response
        )
        return response
