"""Builds the partner simulators from configuration.

``build("partners")`` is the one process that hosts every simulator (see ``fleet``);
``build("carrier-cmcc")`` (or any simulator name) builds one simulator alone.

Behaviour at start, per simulator ``<KEY>`` (``carrier-cmcc`` -> ``CARRIER_CMCC``), else for
all of them with ``<KEY>`` = ``PARTNERS``, else the default:

    ANTIFRAUD_<KEY>_LATENCY_MS             20  every call waits this long
    ANTIFRAUD_<KEY>_JITTER_MS              10  plus or minus up to this
    ANTIFRAUD_<KEY>_FAILURE_RATE           0   share of calls answered UNAVAILABLE
    ANTIFRAUD_<KEY>_DELIVERY_DELAY_MS      -   SMS delivery delay; a latency draw if unset
    ANTIFRAUD_<KEY>_DELIVERY_FAILURE_RATE  -   share of SMS whose delivery FAILS; else FAILURE_RATE

Each simulator listens at ``listen_addr(name)`` (``ANTIFRAUD_<KEY>_ADDR``).

The carriers screen calls (SimulatorControlService/ScreenCall) from a local copy of the risk
list that the ``partners`` process follows as a carrier would, through the gateway:

    ANTIFRAUD_PARTNERS_RISK_LIST_ADDR      -   the gateway (or the risk service); unset: no copy
    ANTIFRAUD_PARTNERS_RISK_LIST_KEY       -   a carrier API key (afk_...)
"""

from __future__ import annotations

import random
from collections.abc import Callable

from services.api.antifraud.risk.v1 import risk_pb2_grpc
from services.clients.risk_copy import RiskCopy, RiskListFollower
from services.common.clients import bare_channel
from services.common.config import ServerSettings, SettingError, env, env_key
from services.common.indicators import IndicatorKind
from services.common.server import Component
from services.partners.domain.bank import Bank
from services.partners.domain.behavior import Behavior
from services.partners.domain.carrier import Carrier
from services.partners.domain.face import FaceProvider
from services.partners.domain.received import new_sequence
from services.partners.domain.registry import Registry
from services.partners.domain.routing import BANKS, CARRIERS, FACE, REGISTRY, SIMULATORS
from services.partners.fleet import PartnersComponent
from services.partners.simulator import PartnerState, Simulator

DEFAULT_LATENCY_MS = 20
DEFAULT_JITTER_MS = 10


def _setting(name: str, suffix: str) -> tuple[str, str]:
    """(variable, raw value) of a behaviour setting: the simulator's own, else the fleet's."""
    for key in (env_key(name), "PARTNERS"):
        raw = env(f"{key}_{suffix}").strip()
        if raw:
            return f"ANTIFRAUD_{key}_{suffix}", raw
    return "", ""


def _number(name: str, suffix: str, parse: Callable[[str], float]) -> float | None:
    variable, raw = _setting(name, suffix)
    if not raw:
        return None
    try:
        return parse(raw)
    except ValueError:
        kind = "a whole number" if parse is int else "a number"
        raise SettingError(variable, raw, kind) from None


def behavior_from_env(name: str) -> Behavior:
    """The start-up behaviour of a simulator; ValueError names a bad variable."""
    latency = _number(name, "LATENCY_MS", int)
    jitter = _number(name, "JITTER_MS", int)
    failure = _number(name, "FAILURE_RATE", float)
    delay = _number(name, "DELIVERY_DELAY_MS", int)
    delivery_failure = _number(name, "DELIVERY_FAILURE_RATE", float)
    behavior = Behavior(
        latency_ms=int(DEFAULT_LATENCY_MS if latency is None else latency),
        jitter_ms=int(DEFAULT_JITTER_MS if jitter is None else jitter),
        failure_rate=0.0 if failure is None else failure,
        delivery_delay_ms=None if delay is None else int(delay),
        delivery_failure_rate=delivery_failure,
    )
    problems = behavior.problems()
    if problems:
        field, reason = problems[0]
        variable, raw = _setting(name, field.upper())
        expected = "a number " + reason.removeprefix("must be ")
        raise SettingError(variable or f"ANTIFRAUD_{env_key(name)}_{field.upper()}", raw, expected)
    return behavior


def _state(name: str) -> PartnerState:
    if name in CARRIERS:
        return Carrier(name)
    if name in BANKS:
        return Bank(name)
    if name == FACE:
        return FaceProvider(name)
    if name == REGISTRY:
        return Registry(name)
    raise KeyError(f"unknown simulator {name!r}; known: {', '.join(SIMULATORS)}")


def build_simulator(
    name: str,
    *,
    behavior: Behavior | None = None,
    sequence: Callable[[], int] | None = None,
    rng: random.Random | None = None,
) -> Simulator:
    """One simulator; its behaviour from the environment unless given."""
    state = _state(name)
    return Simulator(
        name,
        state,
        behavior=behavior if behavior is not None else behavior_from_env(name),
        sequence=sequence,
        rng=rng,
    )


def risk_list_from_env() -> Callable[[RiskCopy], RiskListFollower] | None:
    """How the carriers follow the risk list for screening: through the gateway
    (``ANTIFRAUD_PARTNERS_RISK_LIST_ADDR``) with a carrier API key
    (``ANTIFRAUD_PARTNERS_RISK_LIST_KEY``), as a real carrier would; None when not set."""
    addr, key = env("PARTNERS_RISK_LIST_ADDR").strip(), env("PARTNERS_RISK_LIST_KEY").strip()
    if not addr:
        return None
    if not key:
        raise SettingError("ANTIFRAUD_PARTNERS_RISK_LIST_KEY", "", "a carrier API key")

    def follow(copy: RiskCopy) -> RiskListFollower:
        channel = bare_channel(addr, server_name="gateway")
        return RiskListFollower(
            risk_pb2_grpc.RiskServiceStub(channel),
            copy,
            kinds=(IndicatorKind.PHONE_NUMBER, IndicatorKind.SMS_SENDER),
            metadata=[("authorization", f"Bearer {key}")],
            channel=channel,
        )

    return follow


def build_partners(
    *,
    settings_for: Callable[[str], ServerSettings] = ServerSettings.from_env,
    behavior: Behavior | None = None,
    follow_risk_list: Callable[[RiskCopy], RiskListFollower] | None = None,
) -> PartnersComponent:
    """Every simulator in one component; tests pass ``settings_for`` to choose ports, and
    ``follow_risk_list`` for the carriers' copy of the risk list (else from the environment)."""
    sequence = new_sequence()  # one order of received calls across the whole set
    simulators = [build_simulator(n, behavior=behavior, sequence=sequence) for n in SIMULATORS]
    follow = follow_risk_list if follow_risk_list is not None else risk_list_from_env()
    return PartnersComponent(simulators, settings_for, follow_risk_list=follow)


def build(name: str) -> Component:
    if name == "partners":
        return build_partners()
    return build_simulator(name)
