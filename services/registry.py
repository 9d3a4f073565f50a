"""Every process the suite can run, by name, and how to build it.

Imports are lazy so that ``antifraud serve risk`` loads only the risk service.
"""

from __future__ import annotations

import importlib
import importlib.util
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from services.common.config import listen_addr
from services.common.server import Component


@dataclass(frozen=True)
class Entry:
    module: str  # a module with ``build(name) -> Component`` (for "web": ``serve``)
    role: str  # "service", "gateway", "simulator", "web" or "tool"

    @property
    def grpc(self) -> bool:
        """A gRPC server on the shared runtime (the web console is not)."""
        return self.role != "web"


REGISTRY: dict[str, Entry] = {
    "partners": Entry("services.partners.bootstrap", "simulator"),
    "risk": Entry("services.risk.bootstrap", "service"),
    "report": Entry("services.report.bootstrap", "service"),
    "warning": Entry("services.warning.bootstrap", "service"),
    "identity": Entry("services.identity.bootstrap", "service"),
    "gateway": Entry("gateway.bootstrap", "gateway"),
    "echo": Entry("services.echo.component", "tool"),
    # The analyst and police console: HTTP, a client of the gateway, no database.
    "console": Entry("services.console.server", "web"),
}

#: What `antifraud up` starts. Each is its own process; all start at once and
#: find each other by address, so the order only matters for reading.
UP_ORDER = ["partners", "risk", "report", "warning", "identity", "gateway", "console"]


def build(name: str) -> Component:
    entry = REGISTRY.get(name)
    if entry is None:
        raise KeyError(f"unknown service {name!r}; known: {', '.join(sorted(REGISTRY))}")
    if not entry.grpc:
        raise KeyError(f"{name!r} is no gRPC server; run it with serve_web")
    module = importlib.import_module(entry.module)
    component: Component = module.build(name)
    return component


def migrations(name: str) -> Path | None:
    """The Alembic versions of process ``name`` (``<package>/adapters/migrations/versions``
    beside its module), found without importing or building it; None when it has no
    database."""
    entry = REGISTRY.get(name)
    if entry is None:
        raise KeyError(f"unknown service {name!r}; known: {', '.join(sorted(REGISTRY))}")
    spec = importlib.util.find_spec(entry.module)
    if spec is None or spec.origin is None:
        raise KeyError(f"{name}: module {entry.module} not found")
    versions = Path(spec.origin).parent / "adapters" / "migrations" / "versions"
    return versions if versions.is_dir() else None


def listen_addresses(name: str) -> list[str]:
    """Every address the process ``name`` listens on: its own; for ``partners`` also each
    simulator's, which that one process hosts."""
    names = [name]
    if name == "partners":
        from services.partners.domain.routing import SIMULATORS

        names += list(SIMULATORS)
    return [listen_addr(n) for n in names]


async def serve_web(name: str, addr: str | None, on_ready: Callable[[], None]) -> None:
    """Run a web process (the console) until it is told to stop."""
    module = importlib.import_module(REGISTRY[name].module)
    await module.serve(name, addr, on_ready)
