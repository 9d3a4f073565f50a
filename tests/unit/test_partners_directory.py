"""The partner directory: carrier by mobile prefix, bank by BIN or provider, targets, clients."""

from __future__ import annotations

import pytest

from services.common.indicators import Indicator, IndicatorKind, InvalidIndicator, normalize
from services.partners import directory
from services.partners.domain.cards import BINS, luhn_check_digit

CMCC = "134 135 136 137 138 139 147 150 151 152 157 158 159 178 182 183 184 187 188 198"
CUCC = "130 131 132 145 155 156 166 175 176 185 186"
CTCC = "133 149 153 173 177 180 181 189 199"
MVNO = "162 165 167 170 171"
CBN = "192"  # China Broadnet: a carrier whose users a look-up must not leave out


@pytest.mark.parametrize(
    ("prefixes", "carrier"),
    [
        (CMCC, "carrier-cmcc"),
        (CUCC, "carrier-cucc"),
        (CTCC, "carrier-ctcc"),
        (MVNO, "carrier-mvno"),
        (CBN, "carrier-cbn"),
    ],
)
def test_every_listed_prefix_routes_to_its_carrier(prefixes: str, carrier: str) -> None:
    for prefix in prefixes.split():
        assert directory.carrier_for_phone(f"+86{prefix}00138000") == carrier, prefix
        assert directory.carrier_for_phone(f"{prefix}00138000") == carrier, prefix


def test_the_prefix_table_has_no_overlap_and_covers_exactly_the_listed_prefixes() -> None:
    listed = {p for group in (CMCC, CUCC, CTCC, MVNO, CBN) for p in group.split()}
    tabled = [p for prefixes in directory.CARRIER_PREFIXES.values() for p in prefixes]
    assert len(tabled) == len(set(tabled))
    assert set(tabled) == listed


@pytest.mark.parametrize(
    "written",
    [
        "138 0013 8000",
        "+86 138-0013-8000",
        "008613800138000",
        "8613800138000",
        "１３８００１３８０００",
    ],
)
def test_numbers_are_normalised_before_routing(written: str) -> None:
    assert directory.carrier_for_phone(written) == "carrier-cmcc"


@pytest.mark.parametrize(
    "phone",
    ["+12025550123", "19012345678", "96110", "+862012345678"],
)
def test_numbers_of_no_simulated_carrier_route_nowhere(phone: str) -> None:
    assert directory.carrier_for_phone(phone) is None


@pytest.mark.parametrize("phone", ["+861621234567", "1380013800", "138001380001"])
def test_impossible_mobiles_are_not_phone_numbers(phone: str) -> None:
    with pytest.raises(InvalidIndicator):
        directory.carrier_for_phone(phone)


def test_a_value_that_is_not_a_phone_number_is_an_error() -> None:
    with pytest.raises(InvalidIndicator):
        directory.carrier_for_phone("call me maybe")


def _card(prefix: str, length: int = 19) -> str:
    body = prefix + "1" * (length - len(prefix) - 1)
    return body + luhn_check_digit(body)


@pytest.mark.parametrize(
    ("prefix", "bank"),
    [
        ("622202", "bank-icbc"),
        ("621226", "bank-icbc"),
        ("955880", "bank-icbc"),
        ("621700", "bank-ccb"),
        ("622700", "bank-ccb"),
        ("436742", "bank-ccb"),
        ("622848", "bank-abc"),
        ("622845", "bank-abc"),
        ("955990", "bank-abc"),
    ],
)
def test_cards_route_by_bin(prefix: str, bank: str) -> None:
    number = _card(prefix)
    assert directory.bank_for_card(number) == bank
    assert directory.bank_for_account(normalize(IndicatorKind.BANK_ACCOUNT, number)) == bank


def test_every_bin_in_the_table_routes_to_its_bank_with_its_length() -> None:
    for entry in BINS:
        assert directory.bank_for_card(_card(entry.prefix, entry.length)) == entry.bank


def test_a_card_failing_luhn_or_with_an_unknown_bin_routes_nowhere() -> None:
    good = _card("622202")
    bad = good[:-1] + str((int(good[-1]) + 1) % 10)
    assert directory.bank_for_card(bad) is None
    assert directory.bank_for_card(_card("999999")) is None
    assert directory.bank_for_card("6222-0200-1234") is None  # too short for a card


def test_payment_accounts_route_to_the_documented_banks() -> None:
    alipay = normalize(IndicatorKind.PAYMENT_ACCOUNT, "支付宝:13800138000")
    wechat = normalize(IndicatorKind.PAYMENT_ACCOUNT, "wechat_pay:wxid_abcdef")
    assert directory.bank_for_account(alipay) == "bank-icbc"
    assert directory.bank_for_account(wechat) == "bank-ccb"
    assert directory.PAYMENT_PROVIDER_BANKS == {"alipay": "bank-icbc", "wechat_pay": "bank-ccb"}


def test_other_indicator_kinds_route_to_no_bank() -> None:
    assert (
        directory.bank_for_account(Indicator(IndicatorKind.PHONE_NUMBER, "+8613800138000")) is None
    )


def test_partner_lists_and_default_targets_follow_config(monkeypatch: pytest.MonkeyPatch) -> None:
    assert directory.CARRIERS == (
        "carrier-cmcc",
        "carrier-cucc",
        "carrier-ctcc",
        "carrier-mvno",
        "carrier-cbn",
    )
    assert directory.BANKS == ("bank-icbc", "bank-ccb", "bank-abc")
    for name in ("carrier-cmcc", "bank-icbc", "face", "registry"):
        monkeypatch.delenv(f"ANTIFRAUD_{name.upper().replace('-', '_')}_TARGET", raising=False)
        monkeypatch.delenv(f"ANTIFRAUD_{name.upper().replace('-', '_')}_ADDR", raising=False)
    assert directory.carrier_targets()["carrier-cmcc"] == "127.0.0.1:50061"
    assert directory.bank_targets()["bank-icbc"] == "127.0.0.1:50071"
    assert directory.targets(["face", "registry"]) == {
        "face": "127.0.0.1:50081",
        "registry": "127.0.0.1:50082",
    }
    monkeypatch.setenv("ANTIFRAUD_BANK_ICBC_TARGET", "icbc.partners.svc:443")
    assert directory.bank_targets()["bank-icbc"] == "icbc.partners.svc:443"


async def test_client_factory_checks_partner_names_and_reuses_channels() -> None:
    clients = directory.PartnerClients({"carrier-cmcc": "127.0.0.1:1"})
    try:
        assert clients.target("carrier-cmcc") == "127.0.0.1:1"
        clients.carrier("carrier-cmcc")
        assert clients.channel("carrier-cmcc") is clients.channel("carrier-cmcc")
        with pytest.raises(KeyError):
            clients.carrier("bank-icbc")
        with pytest.raises(KeyError):
            clients.bank("carrier-cmcc")
        with pytest.raises(KeyError):
            clients.channel("risk")
    finally:
        await clients.close()
