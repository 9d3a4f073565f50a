"""SimulatorControlService: behaviour, the received record, reset and seeding.

Served by each simulator for itself (``fleet=False``: an empty ``simulator`` means
itself) and by the ``partners`` process for all of them (``fleet=True``: an empty
``simulator`` means all, and seeds are routed by the partner directory). Control
calls bypass the gate: they are never delayed, failed or recorded.
"""

from __future__ import annotations

import heapq
from collections.abc import Mapping
from decimal import Decimal
from typing import TYPE_CHECKING, TypeVar

from services.api.antifraud.partner.v1 import (
    bank_pb2,
    carrier_pb2,
    face_pb2,
    registry_pb2,
    simulator_pb2_grpc,
)
from services.api.antifraud.partner.v1 import simulator_pb2 as pb
from services.clients.risk_copy import RiskCopy
from services.common import pagination
from services.common.errors import FailedPrecondition, InvalidArgument
from services.common.indicators import Indicator, IndicatorKind, InvalidIndicator, normalize
from services.common.validation import collecting, enum_value, page_size, text
from services.partners.domain.bank import Bank, Card
from services.partners.domain.behavior import Behavior
from services.partners.domain.cards import CardType
from services.partners.domain.carrier import Carrier, InternetPlatform, Line, LinkedAccount
from services.partners.domain.face import FaceOutcome, FaceProvider
from services.partners.domain.received import ReceivedCall
from services.partners.domain.registry import Registry
from services.partners.domain.routing import bank_for_account, carrier_of_e164, partner_for_account
from services.partners.entrypoints import fields
from services.partners.entrypoints.fields import Context
from services.risk.domain.model import categories_of

if TYPE_CHECKING:
    from services.partners.simulator import Simulator

S = TypeVar("S", Carrier, Bank, FaceProvider, Registry)

#: Short names of every partner method, the values ListReceived filters by.
PARTNER_METHODS = frozenset(
    method
    for module, service in (
        (carrier_pb2, "CarrierService"),
        (bank_pb2, "BankService"),
        (face_pb2, "FaceVerificationService"),
        (registry_pb2, "IdentityRegistryService"),
    )
    for method in module.DESCRIPTOR.services_by_name[service].methods_by_name
)


def behavior_message(behavior: Behavior) -> pb.Behavior:
    message = pb.Behavior(
        latency_ms=behavior.latency_ms,
        jitter_ms=behavior.jitter_ms,
        failure_rate=behavior.failure_rate,
    )
    if behavior.delivery_delay_ms is not None:
        message.delivery_delay_ms = behavior.delivery_delay_ms
    if behavior.delivery_failure_rate is not None:
        message.delivery_failure_rate = behavior.delivery_failure_rate
    return message


def simulator_info(sim: Simulator) -> pb.SimulatorInfo:
    return pb.SimulatorInfo(
        name=sim.name,
        kind=int(sim.kind),  # type: ignore[arg-type]
        display_name=sim.display_name,
        address=sim.address,
        behavior=behavior_message(sim.gate.behavior),
    )


def _received_message(call: ReceivedCall) -> pb.ReceivedCall:
    return pb.ReceivedCall(
        simulator=call.simulator,
        method=call.method,
        idempotency_key=call.idempotency_key,
        receive_time=fields.timestamp(call.receive_time),
        replayed=call.replayed,
        summary=dict(call.summary),
        sequence=call.sequence,
    )


class ControlServicer(simulator_pb2_grpc.SimulatorControlServiceServicer):
    def __init__(
        self,
        simulators: Mapping[str, Simulator],
        *,
        fleet: bool,
        risk_copy: RiskCopy | None = None,
    ) -> None:
        self.simulators = dict(sorted(simulators.items()))
        self.fleet = fleet
        #: The carriers' local copy of the risk list, when the process follows one.
        self.risk_copy = risk_copy

    async def ScreenCall(
        self, request: pb.ScreenCallRequest, context: Context
    ) -> pb.ScreenCallResponse:
        with collecting() as v:
            if not request.simulator.strip():
                v.add("simulator", "is required")
            caller = text(v, "caller_number", request.caller_number, max_len=64, required=True)
        self._of_kind(request.simulator, Carrier, "carrier")
        copy = self.risk_copy
        if copy is None or not copy.version:
            raise FailedPrecondition("no local copy of the risk list is loaded")
        try:
            verdict = copy.check(IndicatorKind.PHONE_NUMBER, caller)
        except InvalidIndicator as exc:
            raise InvalidArgument.field("caller_number", str(exc)) from None
        return pb.ScreenCallResponse(
            level=int(verdict.level),  # type: ignore[arg-type]
            categories=[int(c) for c in categories_of(verdict.categories)],  # type: ignore[misc]
            verified=verdict.verified,
            verified_label=verdict.label if verdict.verified else "",
            list_version=copy.version,
        )

    # -- choosing simulators -------------------------------------------------------------------

    def _targets(self, requested: str) -> list[Simulator]:
        name = requested.strip()
        if not name:
            return list(self.simulators.values())
        sim = self.simulators.get(name)
        if sim is not None:
            return [sim]
        if self.fleet:
            known = ", ".join(self.simulators)
            raise InvalidArgument.field("simulator", f"unknown simulator; known: {known}")
        own = next(iter(self.simulators))
        raise InvalidArgument.field("simulator", f"this server is {own}; leave it empty or name it")

    def _of_kind(self, requested: str, state_type: type[S], label: str) -> list[tuple[str, S]]:
        """The simulators of one kind the request addresses, with their state."""
        found: list[tuple[str, S]] = []
        for sim in self._targets(requested):
            if isinstance(sim.state, state_type):
                found.append((sim.name, sim.state))
        if not found:
            if requested.strip():
                raise FailedPrecondition(f"simulator {requested.strip()} is not a {label}")
            raise FailedPrecondition(f"this server has no {label} simulator")
        return found

    def _routes(self, requested: str) -> bool:
        """Whether seeds go where the directory says (the fleet, no simulator named)."""
        return self.fleet and not requested.strip()

    # -- behaviour, record, reset ----------------------------------------------------------------

    async def ListSimulators(
        self, request: pb.ListSimulatorsRequest, context: Context
    ) -> pb.ListSimulatorsResponse:
        return pb.ListSimulatorsResponse(
            simulators=[simulator_info(sim) for sim in self.simulators.values()]
        )

    async def SetBehavior(
        self, request: pb.SetBehaviorRequest, context: Context
    ) -> pb.SetBehaviorResponse:
        targets = self._targets(request.simulator)
        with collecting() as v:
            if not request.HasField("behavior"):
                v.add("behavior", "is required")
            given = request.behavior
            behavior = Behavior(
                latency_ms=given.latency_ms,
                jitter_ms=given.jitter_ms,
                failure_rate=given.failure_rate,
                delivery_delay_ms=(
                    given.delivery_delay_ms if given.HasField("delivery_delay_ms") else None
                ),
                delivery_failure_rate=(
                    given.delivery_failure_rate if given.HasField("delivery_failure_rate") else None
                ),
            )
            for field, reason in behavior.problems():
                v.add(f"behavior.{field}", reason)
        for sim in targets:
            sim.gate.behavior = behavior
        return pb.SetBehaviorResponse(simulators=[simulator_info(sim) for sim in targets])

    async def ListReceived(
        self, request: pb.ListReceivedRequest, context: Context
    ) -> pb.ListReceivedResponse:
        targets = self._targets(request.simulator)
        with collecting() as v:
            method = request.method.strip()
            if method and method not in PARTNER_METHODS:
                v.add("method", "is not a partner method (e.g. SendSms, StopPayment)")
            limit = page_size(v, request.page_size)
            position = pagination.decode(request.page_token) or {"after": 0}
            after = position.get("after")
            if not isinstance(after, int) or after < 0:
                v.add("page_token", "is not a page token from this API")
                after = 0
        streams = [
            sim.log.select(
                method=method, include_replays=request.include_replays, after=after, limit=limit + 1
            )
            for sim in targets
        ]
        merged = list(heapq.merge(*streams, key=lambda call: call.sequence))[: limit + 1]
        page, more = merged[:limit], len(merged) > limit
        return pb.ListReceivedResponse(
            received_calls=[_received_message(call) for call in page],
            next_page_token=pagination.encode({"after": page[-1].sequence}) if more else "",
        )

    async def Reset(self, request: pb.ResetRequest, context: Context) -> pb.ResetResponse:
        targets = self._targets(request.simulator)
        for sim in targets:
            sim.reset()
        return pb.ResetResponse(simulators=[simulator_info(sim) for sim in targets])

    # -- seeding --------------------------------------------------------------------------------

    async def SeedSubscribers(
        self, request: pb.SeedSubscribersRequest, context: Context
    ) -> pb.SeedSubscribersResponse:
        carriers = dict(self._of_kind(request.simulator, Carrier, "carrier"))
        route = self._routes(request.simulator)
        only = next(iter(carriers))
        seeded_at = fields.now()
        plan: list[tuple[str, dict[str, list[Line]]]] = []
        with collecting() as v:
            fields.seed_count(v, "subscribers", len(request.subscribers))
            for i, subscriber in enumerate(request.subscribers[: fields.MAX_SEED_ITEMS]):
                at = f"subscribers[{i}]"
                id_number = fields.resident_id_number(
                    v, f"{at}.resident_id_number", subscriber.resident_id_number, checked=True
                )
                lines: dict[str, list[Line]] = {name: [] for name in carriers}
                for j, line in enumerate(subscriber.lines):
                    line_at = f"{at}.lines[{j}]"
                    phone = fields.mobile_number(v, f"{line_at}.phone_number", line.phone_number)
                    accounts: list[LinkedAccount] = []
                    for k, account in enumerate(line.linked_accounts):
                        account_at = f"{line_at}.linked_accounts[{k}]"
                        platform = enum_value(
                            v, f"{account_at}.platform", account.platform, InternetPlatform
                        )
                        account_name = text(
                            v, f"{account_at}.account_name", account.account_name,
                            max_len=fields.MAX_NAME, required=True,
                        )  # fmt: skip
                        if platform is not None:
                            registered = fields.moment(
                                v,
                                f"{account_at}.register_time",
                                account.HasField("register_time"),
                                account.register_time,
                                seeded_at,
                            )
                            accounts.append(LinkedAccount(platform, account_name, registered))
                    target = carrier_of_e164(phone) if route else only
                    if target is None or target not in lines:
                        v.add(
                            f"{line_at}.phone_number",
                            "no simulated carrier serves this prefix; name the simulator",
                        )
                        continue
                    lines[target].append(
                        Line(
                            phone=phone,
                            owner_id=id_number,
                            activate_time=fields.moment(
                                v,
                                f"{line_at}.activate_time",
                                line.HasField("activate_time"),
                                line.activate_time,
                                seeded_at,
                            ),
                            switched_off=line.switched_off,
                            linked_accounts=tuple(accounts),
                        )
                    )
                plan.append((id_number, lines))
        for id_number, lines in plan:
            for name, carrier_lines in lines.items():
                carriers[name].seed_subscriber(id_number, carrier_lines)
        return pb.SeedSubscribersResponse(
            line_count=sum(len(ls) for _, lines in plan for ls in lines.values())
        )

    async def SeedCards(
        self, request: pb.SeedCardsRequest, context: Context
    ) -> pb.SeedCardsResponse:
        banks = dict(self._of_kind(request.simulator, Bank, "bank"))
        route = self._routes(request.simulator)
        only = next(iter(banks))
        customers: list[tuple[str, str, dict[str, list[Card]]]] = []
        accounts: list[tuple[str, Indicator, str, bool, str, Decimal | None]] = []
        with collecting() as v:
            if not request.card_holders and not request.account_holders:
                v.add("card_holders", "needs at least one card holder or account holder")
            fields.seed_count(v, "card_holders", len(request.card_holders), required=False)
            fields.seed_count(v, "account_holders", len(request.account_holders), required=False)
            for i, holder in enumerate(request.card_holders[: fields.MAX_SEED_ITEMS]):
                at = f"card_holders[{i}]"
                id_number = fields.resident_id_number(
                    v, f"{at}.resident_id_number", holder.resident_id_number, checked=True
                )
                name = fields.person_name(v, f"{at}.name", holder.name)
                cards: dict[str, list[Card]] = {bank: [] for bank in banks}
                for j, card in enumerate(holder.cards):
                    card_at = f"{at}.cards[{j}]"
                    card_type = enum_value(v, f"{card_at}.card_type", card.card_type, CardType)
                    try:
                        number = normalize(IndicatorKind.BANK_ACCOUNT, card.card_number)
                    except InvalidIndicator as exc:
                        v.add(f"{card_at}.card_number", exc.reason)
                        continue
                    target = bank_for_account(number) if route else only
                    if target is None or target not in cards:
                        v.add(f"{card_at}.card_number", _UNROUTED_ACCOUNT)
                        continue
                    if card_type is not None:
                        cards[target].append(Card(number.value, card_type))
                customers.append((id_number, name, cards))
            for i, seeded in enumerate(request.account_holders[: fields.MAX_SEED_ITEMS]):
                at = f"account_holders[{i}]"
                account = fields.account(
                    v, f"{at}.account", seeded.HasField("account"), seeded.account,
                    kinds=fields.HOLDER_KINDS,
                )  # fmt: skip
                holder_name = fields.person_name(v, f"{at}.holder_name", seeded.holder_name)
                holder_id = ""
                if seeded.resident_id_number:
                    holder_id = fields.resident_id_number(
                        v, f"{at}.resident_id_number", seeded.resident_id_number, checked=True
                    )
                balance = fields.balance(
                    v, f"{at}.balance", seeded.HasField("balance"), seeded.balance
                )
                if not account.value:
                    continue
                target = partner_for_account(account) if route else only
                if target is None or target not in banks:
                    v.add(f"{at}.account", _UNROUTED_ACCOUNT)
                    continue
                accounts.append((target, account, holder_name, seeded.closed, holder_id, balance))
        for id_number, name, cards in customers:
            for bank, bank_cards in cards.items():
                banks[bank].seed_customer(id_number, name, bank_cards)
        for bank, account, holder_name, closed, holder_id, balance in accounts:
            banks[bank].seed_account(
                account, holder_name, closed=closed, holder_id=holder_id, balance=balance
            )
        return pb.SeedCardsResponse(
            card_count=sum(len(cs) for _, _, cards in customers for cs in cards.values()),
            account_count=len(accounts),
        )

    async def SeedPersons(
        self, request: pb.SeedPersonsRequest, context: Context
    ) -> pb.SeedPersonsResponse:
        registries = self._of_kind(request.simulator, Registry, "registry")
        persons: list[tuple[str, str]] = []
        with collecting() as v:
            fields.seed_count(v, "persons", len(request.persons))
            for i, person in enumerate(request.persons[: fields.MAX_SEED_ITEMS]):
                id_number = fields.resident_id_number(
                    v, f"persons[{i}].resident_id_number", person.resident_id_number, checked=True
                )
                persons.append(
                    (id_number, fields.person_name(v, f"persons[{i}].name", person.name))
                )
        for _, registry in registries:
            for id_number, name in persons:
                registry.seed_person(id_number, name)
        return pb.SeedPersonsResponse(person_count=len(persons))

    async def SeedFaceOutcomes(
        self, request: pb.SeedFaceOutcomesRequest, context: Context
    ) -> pb.SeedFaceOutcomesResponse:
        providers = self._of_kind(request.simulator, FaceProvider, "face provider")
        outcomes: list[tuple[str, str, FaceOutcome]] = []
        with collecting() as v:
            fields.seed_count(v, "outcomes", len(request.outcomes))
            for i, seed in enumerate(request.outcomes[: fields.MAX_SEED_ITEMS]):
                subject = text(
                    v, f"outcomes[{i}].subject_reference", seed.subject_reference,
                    max_len=fields.MAX_REFERENCE,
                )  # fmt: skip
                token = text(v, f"outcomes[{i}].face_token", seed.face_token, max_len=4096)
                if bool(subject) == bool(token):
                    v.add(f"outcomes[{i}]", "name exactly one of subject_reference and face_token")
                outcome = enum_value(v, f"outcomes[{i}].outcome", seed.outcome, FaceOutcome)
                if outcome is not None:
                    outcomes.append((subject, token, outcome))
        for _, provider in providers:
            for subject, token, outcome in outcomes:
                if token:
                    provider.seed_token_outcome(token, outcome)
                else:
                    provider.seed_outcome(subject, outcome)
        return pb.SeedFaceOutcomesResponse(outcome_count=len(outcomes))

    async def ListHandsetMessages(
        self, request: pb.ListHandsetMessagesRequest, context: Context
    ) -> pb.ListHandsetMessagesResponse:
        carriers = self._of_kind(request.simulator, Carrier, "carrier")
        with collecting() as v:
            phone = fields.mobile_number(v, "phone_number", request.phone_number)
            limit = page_size(v, request.page_size)
        now = fields.now()
        found = [
            (message, name)
            for name, carrier in carriers
            for message in carrier.handset_messages(phone, now)
        ]
        found.sort(key=lambda pair: pair[0].due_time, reverse=True)
        return pb.ListHandsetMessagesResponse(
            messages=[
                pb.HandsetMessage(
                    simulator=name,
                    message_id=message.message_id,
                    sender_id=message.sender,
                    text=message.text,
                    delivered_time=fields.timestamp(message.due_time),
                )
                for message, name in found[:limit]
            ]
        )


_UNROUTED_ACCOUNT = "no simulated bank holds this account (BIN or provider); name the simulator"
