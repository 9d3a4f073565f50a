"""Per-request context: request id, deadline and calling principal.

Set by the server interceptor at the start of each RPC and read by the client
interceptor so they pass on to every downstream call.
"""

from __future__ import annotations

import time
import uuid
from contextvars import ContextVar
from dataclasses import dataclass

REQUEST_ID_KEY = "x-request-id"
#: Set by the gateway after it authenticates a caller; services trust it only from the gateway.
PRINCIPAL_KEY = "x-principal"

request_id_var: ContextVar[str] = ContextVar("request_id", default="")
deadline_var: ContextVar[float | None] = ContextVar("deadline", default=None)
principal_var: ContextVar[str] = ContextVar("principal", default="")


@dataclass(frozen=True)
class Deadline:
    """An absolute deadline on the monotonic clock."""

    at: float

    @classmethod
    def after(cls, seconds: float) -> Deadline:
        return cls(time.monotonic() + seconds)

    def remaining(self) -> float:
        return max(0.0, self.at - time.monotonic())


def new_request_id() -> str:
    return str(uuid.uuid4())


def current_request_id() -> str:
    return request_id_var.get()


def current_principal() -> str:
    return principal_var.get()


def remaining_time(budget: float) -> float:
    """The caller's remaining time, capped by our own budget for the downstream call."""
    deadline = deadline_var.get()
    if deadline is None:
        return budget
    return max(0.0, min(budget, deadline - time.monotonic()))
