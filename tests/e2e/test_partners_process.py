"""`antifraud serve partners` as a real process: every simulator SERVING on its own port,
and no personal value in any log line it writes."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import grpc
import pytest

from services.api.antifraud.common.v1 import common_pb2
from services.api.antifraud.partner.v1 import bank_pb2, carrier_pb2, registry_pb2
from services.api.antifraud.partner.v1 import simulator_pb2 as sim
from services.common.health_client import wait_serving
from services.common.resident_id import with_check_character
from services.partners.directory import SIMULATORS, PartnerClients
from services.partners.domain.cards import luhn_check_digit
from tests.harness import free_port, process_suite

ID_NUMBER = with_check_character("32010619780615234")
NAME = "欧阳娜娜"
PHONE = "+8613912345678"
CARD_BODY = "622848012345678901"
CARD = CARD_BODY + luhn_check_digit(CARD_BODY)


async def test_serve_partners_starts_every_simulator_and_logs_nothing_personal(
    tmp_path: Path,
) -> None:
    with process_suite(
        ["partners"], tmp_path, extra_env={"ANTIFRAUD_PARTNERS_LATENCY_MS": "0"}
    ) as suite:
        addrs = {name: f"127.0.0.1:{free_port()}" for name in SIMULATORS}
        for name, addr in addrs.items():
            suite.set_addr(name, addr)
        await suite.start_all(timeout=20)
        for addr in addrs.values():
            await wait_serving(addr, timeout=5)

        overrides = {**addrs, "partners": suite.addrs["partners"]}
        async with PartnerClients(overrides) as partners:
            listed = await partners.control().ListSimulators(sim.ListSimulatorsRequest())
            assert {s.name: s.address for s in listed.simulators} == addrs
            await partners.control().SeedCards(
                sim.SeedCardsRequest(
                    card_holders=[
                        bank_pb2.CardHolder(
                            resident_id_number=ID_NUMBER,
                            name=NAME,
                            cards=[
                                bank_pb2.SeededCard(
                                    card_number=CARD, card_type=bank_pb2.CARD_TYPE_DEBIT
                                )
                            ],
                        )
                    ]
                )
            )
            cards = await partners.bank("bank-abc").ListCards(
                bank_pb2.ListCardsRequest(resident_id_number=ID_NUMBER, name=NAME)
            )
            assert [c.masked_card_number for c in cards.cards] == [CARD[:4] + "*" * 11 + CARD[-4:]]
            sent = await partners.carrier("carrier-cmcc").SendSms(
                carrier_pb2.SendSmsRequest(
                    idempotency_key=str(uuid.uuid4()),
                    phone_number=PHONE,
                    text=f"{NAME}您好，请警惕诈骗",
                    sender_id="12381",
                )
            )
            assert sent.state == carrier_pb2.SMS_SUBMIT_STATE_ACCEPTED
            match = await partners.registry().VerifyIdentity(
                registry_pb2.VerifyIdentityRequest(name=NAME, resident_id_number=ID_NUMBER)
            )
            assert match.match == registry_pb2.IDENTITY_MATCH_MATCH
            payee = await partners.bank("bank-abc").CheckPayeeName(
                bank_pb2.CheckPayeeNameRequest(
                    account=common_pb2.Indicator(
                        kind=common_pb2.INDICATOR_KIND_BANK_ACCOUNT, value=CARD
                    ),
                    payee_name="欧阳娜",
                )
            )
            assert payee.match == bank_pb2.PAYEE_NAME_MATCH_CLOSE_MATCH
            # A bad request's error message is logged too: it must name fields, not values.
            bad = carrier_pb2.CountPhoneCardsRequest(resident_id_number=ID_NUMBER[:-2])
            with pytest.raises(grpc.aio.AioRpcError) as caught:
                await partners.carrier("carrier-cmcc").CountPhoneCards(bad)
            assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT

        suite.terminate("partners")
        log = suite.log_text("partners")
    lines = [json.loads(line) for line in log.splitlines() if line.startswith("{")]
    rpc_lines = [line for line in lines if line.get("event") == "rpc"]
    assert {line["method"].rsplit("/", 1)[1] for line in rpc_lines} >= {
        "SeedCards",
        "ListCards",
        "SendSms",
        "VerifyIdentity",
        "CheckPayeeName",
        "CountPhoneCards",
    }
    for secret in (ID_NUMBER, ID_NUMBER[:-2], NAME, PHONE, PHONE[3:], CARD):
        assert secret not in log
