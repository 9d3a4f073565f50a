"""Per-request context: request id, deadline, the calling principal, and who this is.

Set by the server interceptors at the start of each RPC and read by the client
interceptor, so the request id and deadline pass on to every downstream call and
each downstream call proves who makes it (see services.common.tokens).
"""

from __future__ import annotations

import contextvars
import time
import uuid
from contextvars import ContextVar
from dataclasses import dataclass

REQUEST_ID_KEY = "x-request-id"
#: Where a call carries its signed principal token (``Bearer <token>``).
AUTHORIZATION_KEY = "authorization"

request_id_var: ContextVar[str] = ContextVar("request_id", default="")
deadline_var: ContextVar[float | None] = ContextVar("deadline", default=None)
#: The verified caller of the RPC being served, as ``<role>:<subject>``.
principal_var: ContextVar[str] = ContextVar("principal", default="")
#: The region the caller's key serves (an officer's), from its signed token; '' for all.
region_var: ContextVar[str] = ContextVar("region", default="")
#: The API key that proved the caller at the gateway, for log lines.
key_id_var: ContextVar[str] = ContextVar("key_id", default="")
#: The service this code runs in; downstream calls are made as this service...
service_var: ContextVar[str] = ContextVar("service", default="")
#: ...unless the gateway is acting for an authenticated caller (``<role>:<subject>``).
on_behalf_var: ContextVar[str] = ContextVar("on_behalf", default="")


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


def for_many_callers() -> contextvars.Context:
    """A context for work done at once for several callers, started by one of them (a shared
    look-up): who this is, and nothing of that caller's: no request id, deadline, principal,
    trace or log fields, which would make the others' work look like its own (and end at its
    deadline)."""
    fresh = contextvars.Context()
    fresh.run(service_var.set, service_var.get())
    return fresh


def remaining_time(budget: float) -> float:
    """The caller's remaining time, capped by our own budget for the downstream call."""
    deadline = deadline_var.get()
    if deadline is None:
        return budget
    return max(0.0, min(budget, deadline - time.monotonic()))
