"""The partner directory: which partner serves a number or an account, and where it is.

Every service that calls a partner routes through here, never through its own tables:

* ``carrier_for_phone(phone)``: the carrier of a Chinese mobile number by its 3-digit
  prefix (134-139, 147, 150-152, 157-159, 178, 182-184, 187, 188, 198 -> carrier-cmcc;
  130-132, 145, 155, 156, 166, 175, 176, 185, 186 -> carrier-cucc; 133, 149, 153, 173,
  177, 180, 181, 189, 199 -> carrier-ctcc; 162, 165, 167, 170, 171 -> carrier-mvno;
  192 -> carrier-cbn (China Broadnet)); None for others.
* ``bank_for_account(indicator)`` / ``bank_for_card(number)``: the bank of a card by its
  BIN (``cards.BINS``), of a payment account by provider (``alipay:`` -> bank-icbc,
  ``wechat_pay:`` -> bank-ccb); None when no simulated bank holds it (ask each bank:
  one that does not hold it answers REJECTED / ACCOUNT_NOT_FOUND).
* ``targets()``, ``carrier_targets()``, ``bank_targets()``: where each partner is reached,
  from ``ANTIFRAUD_<NAME>_TARGET`` (else its listen address), so compose and k8s can
  point at other hosts or at real partners.
* ``PartnerClients``: typed stubs per partner name over ``open_channel``, which retries
  UNAVAILABLE on every partner service: effect calls carry idempotency keys and a
  simulated failure happens before any effect, so a repeat is always safe.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from types import TracebackType

import grpc

from services.api.antifraud.partner.v1 import (
    bank_pb2_grpc,
    carrier_pb2_grpc,
    face_pb2_grpc,
    registry_pb2_grpc,
    simulator_pb2_grpc,
)
from services.common.clients import DEFAULT_BUDGET_SECONDS, open_channel
from services.common.config import target
from services.partners.domain.routing import (
    BANK_ABC,
    BANK_CCB,
    BANK_ICBC,
    BANKS,
    CARRIER_CBN,
    CARRIER_CMCC,
    CARRIER_CTCC,
    CARRIER_CUCC,
    CARRIER_MVNO,
    CARRIER_PREFIXES,
    CARRIERS,
    DISPLAY_NAMES,
    FACE,
    PAYMENT_PROVIDER_BANKS,
    REGISTRY,
    SIMULATORS,
    bank_for_account,
    bank_for_card,
    carrier_for_phone,
    carrier_of_e164,
    partner_for_account,
)
from services.partners.simulator import (
    BANK_SERVICE,
    CARRIER_SERVICE,
    CONTROL_SERVICE,
    FACE_SERVICE,
    REGISTRY_SERVICE,
)

__all__ = [
    "BANKS",
    "BANK_ABC",
    "BANK_CCB",
    "BANK_ICBC",
    "CARRIERS",
    "CARRIER_CBN",
    "CARRIER_CMCC",
    "CARRIER_CTCC",
    "CARRIER_CUCC",
    "CARRIER_MVNO",
    "CARRIER_PREFIXES",
    "DISPLAY_NAMES",
    "FACE",
    "PARTNERS",
    "PARTNER_SERVICES",
    "PAYMENT_PROVIDER_BANKS",
    "REGISTRY",
    "SIMULATORS",
    "PartnerClients",
    "bank_for_account",
    "bank_for_card",
    "bank_targets",
    "carrier_for_phone",
    "carrier_of_e164",
    "carrier_targets",
    "partner_for_account",
    "targets",
]

#: The process that hosts every simulator and serves the fleet's control service.
PARTNERS = "partners"

#: Full names of the partner services; all are safe to retry on UNAVAILABLE.
PARTNER_SERVICES: tuple[str, ...] = (
    CARRIER_SERVICE,
    BANK_SERVICE,
    FACE_SERVICE,
    REGISTRY_SERVICE,
    CONTROL_SERVICE,
)


def targets(names: Iterable[str] = SIMULATORS) -> dict[str, str]:
    """Where each named partner is reached."""
    return {name: target(name) for name in names}


def carrier_targets() -> dict[str, str]:
    return targets(CARRIERS)


def bank_targets() -> dict[str, str]:
    return targets(BANKS)


def _check(name: str, allowed: Iterable[str], what: str) -> None:
    if name not in allowed:
        raise KeyError(f"{name!r} is not a {what}; known: {', '.join(allowed)}")


class PartnerClients:
    """Stubs per partner name, over one channel per partner opened on first use.

        async with PartnerClients() as partners:
            await partners.carrier("carrier-cmcc").SendSms(request, timeout=2)

    ``overrides`` maps partner names to targets (tests); others come from configuration.
    """

    def __init__(
        self,
        overrides: Mapping[str, str] | None = None,
        *,
        budget: float = DEFAULT_BUDGET_SECONDS,
    ) -> None:
        self._overrides = dict(overrides or {})
        self._budget = budget
        self._channels: dict[str, grpc.aio.Channel] = {}
        self._carriers: dict[str, carrier_pb2_grpc.CarrierServiceStub] = {}

    def target(self, name: str) -> str:
        return self._overrides.get(name) or target(name)

    def channel(self, name: str) -> grpc.aio.Channel:
        _check(name, (*SIMULATORS, PARTNERS), "partner")
        channel = self._channels.get(name)
        if channel is None:
            channel = open_channel(
                self.target(name),
                retry_services=PARTNER_SERVICES,
                budget=self._budget,
                partner=name,
            )
            self._channels[name] = channel
        return channel

    def carrier(self, name: str) -> carrier_pb2_grpc.CarrierServiceStub:
        """The carrier's stub, made once: an SMS fan-out calls it twice per message."""
        _check(name, CARRIERS, "carrier")
        stub = self._carriers.get(name)
        if stub is None:
            stub = carrier_pb2_grpc.CarrierServiceStub(self.channel(name))  # type: ignore[no-untyped-call]
            self._carriers[name] = stub
        return stub

    def bank(self, name: str) -> bank_pb2_grpc.BankServiceStub:
        _check(name, BANKS, "bank")
        return bank_pb2_grpc.BankServiceStub(self.channel(name))  # type: ignore[no-untyped-call]

    def face(self) -> face_pb2_grpc.FaceVerificationServiceStub:
        return face_pb2_grpc.FaceVerificationServiceStub(self.channel(FACE))  # type: ignore[no-untyped-call]

    def registry(self) -> registry_pb2_grpc.IdentityRegistryServiceStub:
        return registry_pb2_grpc.IdentityRegistryServiceStub(self.channel(REGISTRY))  # type: ignore[no-untyped-call]

    def control(self, name: str = PARTNERS) -> simulator_pb2_grpc.SimulatorControlServiceStub:
        """Simulator control of one simulator, or of the whole set (``partners``)."""
        return simulator_pb2_grpc.SimulatorControlServiceStub(self.channel(name))  # type: ignore[no-untyped-call]

    async def close(self) -> None:
        channels, self._channels = self._channels, {}
        self._carriers = {}
        for channel in channels.values():
            await channel.close(None)

    async def __aenter__(self) -> PartnerClients:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()
