"""The ``partners`` process: every simulator on its own port, one control port for all.

``start()`` starts each simulator's server with the shared runtime (health,
reflection, interceptors) and ``stop()`` stops them. The component's own server
serves SimulatorControlService for the whole set: ListSimulators tells where each
simulator listens (useful when they run on port 0), an empty ``simulator`` in
SetBehavior, Reset and ListReceived means all, and seeds without a simulator name
are routed by the partner directory. Its health turns SERVING only once every
simulator is SERVING.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from services.api.antifraud.partner.v1 import simulator_pb2_grpc
from services.clients.risk_copy import RiskCopy, RiskListFollower
from services.common.auth import CallerPolicy
from services.common.config import ServerSettings
from services.common.logs import get_logger
from services.common.server import Binding, RunningServer, start_server
from services.partners.entrypoints.control_servicer import ControlServicer
from services.partners.simulator import CONTROL_SERVICE, Simulator

log = get_logger("partners")


def _advertised(addr: str, port: int) -> str:
    host = addr.rsplit(":", 1)[0] if ":" in addr else addr
    if host in ("", "0.0.0.0", "[::]"):  # a wildcard bind is reached on loopback
        host = "127.0.0.1"
    return f"{host}:{port}"


class PartnersComponent:
    name = "partners"

    def __init__(
        self,
        simulators: Sequence[Simulator],
        settings_for: Callable[[str], ServerSettings],
        *,
        follow_risk_list: Callable[[RiskCopy], RiskListFollower] | None = None,
    ) -> None:
        self.simulators = {sim.name: sim for sim in simulators}
        self._settings_for = settings_for
        self._running: list[RunningServer] = []
        #: The carriers' local copy of the risk list (screening), followed when configured.
        self.risk_copy = RiskCopy()
        self._follow = follow_risk_list
        self._follower: RiskListFollower | None = None
        self._bindings = [
            Binding(
                CONTROL_SERVICE,
                simulator_pb2_grpc.add_SimulatorControlServiceServicer_to_server,
                ControlServicer(self.simulators, fleet=True, risk_copy=self.risk_copy),
            )
        ]

    def caller_policy(self) -> CallerPolicy:
        # Simulated partners answer anyone, as a partner's test endpoint would.
        return CallerPolicy.open(self.name)

    def bindings(self) -> Sequence[Binding]:
        return self._bindings

    def address(self, name: str) -> str:
        """Where a running simulator listens (``host:port``)."""
        return self.simulators[name].address

    async def start(self) -> None:
        try:
            for sim in self.simulators.values():
                settings = self._settings_for(sim.name)
                running = await start_server(sim, settings)
                self._running.append(running)
                sim.address = _advertised(settings.addr, running.port)
        except BaseException:
            await self.stop()
            raise
        if self._follow is not None:
            self._follower = self._follow(self.risk_copy)
            self._follower.start()
        log.info("simulators serving", simulators=list(self.simulators))

    async def stop(self) -> None:
        if self._follower is not None:
            await self._follower.stop()
            self._follower = None
        running, self._running = self._running, []
        for server in reversed(running):
            await server.stop(self._settings_for(server.component.name).grace_seconds)
            if isinstance(server.component, Simulator):
                server.component.address = ""
