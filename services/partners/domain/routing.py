"""Which partner serves what: carrier by mobile prefix, bank by BIN or payment provider.

Pure functions on canonical values (see ``services.common.indicators``); the
directory (``services.partners.directory``) adds where each partner is reached.

Decisions where the real world is not one table:

* Carriers by the 3-digit prefix of a Chinese mobile number, as issued; number
  portability is not modelled (a carrier simulator seeded with a ported number
  serves it all the same). China Broadnet (中国广电, 192) is a carrier of its own;
  the MVNO blocks (162, 165, 167, 170, 171) are served by one MVNO simulator. Every
  number a Chinese carrier issues is some simulator's, so a look-up that asked every
  carrier has asked everyone who could hold a card.
* Payment institutions are simulated by bank simulators: ``alipay:`` accounts by
  bank-icbc, ``wechat_pay:`` accounts by bank-ccb (the BankService contract is the
  same for banks and payment institutions).
"""

from __future__ import annotations

from services.common.indicators import Indicator, IndicatorKind, normalize
from services.partners.domain.cards import bin_of, is_card_number

CARRIER_CMCC = "carrier-cmcc"
CARRIER_CUCC = "carrier-cucc"
CARRIER_CTCC = "carrier-ctcc"
CARRIER_MVNO = "carrier-mvno"
CARRIER_CBN = "carrier-cbn"
BANK_ICBC = "bank-icbc"
BANK_CCB = "bank-ccb"
BANK_ABC = "bank-abc"
FACE = "face"
REGISTRY = "registry"

CARRIERS: tuple[str, ...] = (CARRIER_CMCC, CARRIER_CUCC, CARRIER_CTCC, CARRIER_MVNO, CARRIER_CBN)
BANKS: tuple[str, ...] = (BANK_ICBC, BANK_CCB, BANK_ABC)
SIMULATORS: tuple[str, ...] = (*CARRIERS, *BANKS, FACE, REGISTRY)

DISPLAY_NAMES: dict[str, str] = {
    CARRIER_CMCC: "中国移动",
    CARRIER_CUCC: "中国联通",
    CARRIER_CTCC: "中国电信",
    CARRIER_MVNO: "虚拟运营商 (162/165/167/170/171)",
    CARRIER_CBN: "中国广电",
    BANK_ICBC: "中国工商银行",
    BANK_CCB: "中国建设银行",
    BANK_ABC: "中国农业银行",
    FACE: "人脸核验服务",
    REGISTRY: "公民身份信息核查",
}


def _prefixes(*spans: tuple[int, int]) -> tuple[str, ...]:
    return tuple(str(p) for low, high in spans for p in range(low, high + 1))


# fmt: off
CARRIER_PREFIXES: dict[str, tuple[str, ...]] = {
    CARRIER_CMCC: _prefixes(
        (134, 139), (147, 147), (150, 152), (157, 159), (178, 178), (182, 184), (187, 188),
        (198, 198),
    ),
    CARRIER_CUCC: _prefixes(
        (130, 132), (145, 145), (155, 156), (166, 166), (175, 176), (185, 186)
    ),
    CARRIER_CTCC: _prefixes(
        (133, 133), (149, 149), (153, 153), (173, 173), (177, 177), (180, 181), (189, 189),
        (199, 199),
    ),
    CARRIER_MVNO: _prefixes((162, 162), (165, 165), (167, 167), (170, 171)),
    CARRIER_CBN: _prefixes((192, 192)),
}
# fmt: on
_CARRIER_BY_PREFIX = {p: c for c, prefixes in CARRIER_PREFIXES.items() for p in prefixes}

PAYMENT_PROVIDER_BANKS: dict[str, str] = {"alipay": BANK_ICBC, "wechat_pay": BANK_CCB}
#: WeChat and QQ accounts are confirmed by their operator, Tencent, whose payment
#: institution (WeChat Pay) bank-ccb stands for.
PLATFORM_ACCOUNT_BANKS: dict[IndicatorKind, str] = {
    IndicatorKind.WECHAT_ID: BANK_CCB,
    IndicatorKind.QQ_NUMBER: BANK_CCB,
}


def carrier_of_e164(e164: str) -> str | None:
    """The carrier of a canonical (E.164) Chinese mobile number, or None."""
    if len(e164) != 14 or not e164.startswith("+861"):
        return None
    return _CARRIER_BY_PREFIX.get(e164[3:6])


def carrier_for_phone(phone: str) -> str | None:
    """The carrier a phone number belongs to by its prefix; None when no simulated carrier has it.

    ``phone`` may be in any form the indicator normaliser accepts; anything that is not a
    phone number raises ``InvalidIndicator``.
    """
    return carrier_of_e164(normalize(IndicatorKind.PHONE_NUMBER, phone).value)


def bank_for_account(account: Indicator) -> str | None:
    """The bank holding a canonical BANK_ACCOUNT (by BIN; Luhn-valid card numbers only) or
    PAYMENT_ACCOUNT (by provider); None when no simulated bank does."""
    if account.kind == IndicatorKind.BANK_ACCOUNT:
        found = bin_of(account.value)
        if found is None or not is_card_number(account.value):
            return None
        return found.bank
    if account.kind == IndicatorKind.PAYMENT_ACCOUNT:
        return PAYMENT_PROVIDER_BANKS.get(account.value.partition(":")[0])
    return None


def partner_for_account(account: Indicator) -> str | None:
    """The partner that can confirm who holds an account: its bank or payment institution,
    or the operator of a WeChat or QQ account; None when no simulated partner can."""
    return PLATFORM_ACCOUNT_BANKS.get(account.kind) or bank_for_account(account)


def bank_for_card(number: str) -> str | None:
    """The bank of a card number in any form the normaliser accepts (else ``InvalidIndicator``)."""
    return bank_for_account(normalize(IndicatorKind.BANK_ACCOUNT, number))
