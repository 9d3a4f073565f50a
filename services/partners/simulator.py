"""One partner simulator as a Component: its state, its gate (behaviour, idempotency,
record) and the two services it serves (the partner's and SimulatorControlService)."""

from __future__ import annotations

import enum
import random
from collections.abc import Callable, Sequence

from services.api.antifraud.partner.v1 import (
    bank_pb2,
    bank_pb2_grpc,
    carrier_pb2,
    carrier_pb2_grpc,
    face_pb2,
    face_pb2_grpc,
    registry_pb2,
    registry_pb2_grpc,
    simulator_pb2,
    simulator_pb2_grpc,
)
from services.common.auth import CallerPolicy
from services.common.server import Binding
from services.partners.domain.bank import Bank
from services.partners.domain.behavior import Behavior
from services.partners.domain.carrier import Carrier
from services.partners.domain.face import FaceProvider
from services.partners.domain.received import ReceivedLog
from services.partners.domain.registry import Registry
from services.partners.domain.routing import DISPLAY_NAMES
from services.partners.entrypoints.bank_servicer import BankServicer
from services.partners.entrypoints.carrier_servicer import CarrierServicer
from services.partners.entrypoints.control_servicer import ControlServicer
from services.partners.entrypoints.face_servicer import FaceServicer
from services.partners.entrypoints.gate import Gate
from services.partners.entrypoints.registry_servicer import RegistryServicer

PartnerState = Carrier | Bank | FaceProvider | Registry


class SimulatorKind(enum.IntEnum):
    """Numbers match antifraud.partner.v1.SimulatorKind."""

    CARRIER = 1
    BANK = 2
    FACE = 3
    REGISTRY = 4


def _full_name(descriptor: object, service: str) -> str:
    name: str = descriptor.services_by_name[service].full_name  # type: ignore[attr-defined]
    return name


CONTROL_SERVICE = _full_name(simulator_pb2.DESCRIPTOR, "SimulatorControlService")
CARRIER_SERVICE = _full_name(carrier_pb2.DESCRIPTOR, "CarrierService")
BANK_SERVICE = _full_name(bank_pb2.DESCRIPTOR, "BankService")
FACE_SERVICE = _full_name(face_pb2.DESCRIPTOR, "FaceVerificationService")
REGISTRY_SERVICE = _full_name(registry_pb2.DESCRIPTOR, "IdentityRegistryService")


class Simulator:
    """A partner simulator; ``address`` is set by whoever starts its server."""

    def __init__(
        self,
        name: str,
        state: PartnerState,
        *,
        behavior: Behavior,
        sequence: Callable[[], int] | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self.name = name
        self.state = state
        self.startup_behavior = behavior
        self.log = ReceivedLog(name, sequence)
        self.gate = Gate(name, behavior, self.log, rng)
        self.address = ""
        self._bindings = [
            self.partner_binding(),
            Binding(
                CONTROL_SERVICE,
                simulator_pb2_grpc.add_SimulatorControlServiceServicer_to_server,
                ControlServicer({name: self}, fleet=False),
            ),
        ]

    def caller_policy(self) -> CallerPolicy:
        # A simulated partner answers anyone, as a partner's test endpoint would.
        return CallerPolicy.open(self.name)

    @property
    def kind(self) -> SimulatorKind:
        if isinstance(self.state, Carrier):
            return SimulatorKind.CARRIER
        if isinstance(self.state, Bank):
            return SimulatorKind.BANK
        if isinstance(self.state, FaceProvider):
            return SimulatorKind.FACE
        return SimulatorKind.REGISTRY

    @property
    def display_name(self) -> str:
        return DISPLAY_NAMES.get(self.name, self.name)

    def reset(self) -> None:
        """Back to start-up: nothing seeded, received or remembered; start-up behaviour."""
        self.state.reset()
        self.gate.reset(self.startup_behavior)

    def partner_binding(self) -> Binding:
        state = self.state
        if isinstance(state, Carrier):
            return Binding(
                CARRIER_SERVICE,
                carrier_pb2_grpc.add_CarrierServiceServicer_to_server,
                CarrierServicer(state, self.gate),
            )
        if isinstance(state, Bank):
            return Binding(
                BANK_SERVICE,
                bank_pb2_grpc.add_BankServiceServicer_to_server,
                BankServicer(state, self.gate),
            )
        if isinstance(state, FaceProvider):
            return Binding(
                FACE_SERVICE,
                face_pb2_grpc.add_FaceVerificationServiceServicer_to_server,
                FaceServicer(state, self.gate),
            )
        return Binding(
            REGISTRY_SERVICE,
            registry_pb2_grpc.add_IdentityRegistryServiceServicer_to_server,
            RegistryServicer(state, self.gate),
        )

    # -- Component ---------------------------------------------------------------------------

    def bindings(self) -> Sequence[Binding]:
        return self._bindings

    async def start(self) -> None:
        return None  # nothing runs in the background: SMS delivery is a function of time

    async def stop(self) -> None:
        return None
