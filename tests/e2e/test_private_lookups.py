"""Private look-ups (SearchHashPrefixes with the reference client) give the verdict a plain
check gives, for every kind and for the URL expression rules (host suffixes, path prefixes,
a URL's host as a listed domain or address range, numbers as SMS senders, the allow list),
on a real server over a real socket; SQLite and PostgreSQL. The privacy scan (nothing of the
checked value in logs or databases) is in test_private_lookups_privacy.py."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import pytest

from services.api.antifraud.common.v1 import common_pb2 as c
from services.api.antifraud.risk.v1 import risk_pb2 as r
from services.api.antifraud.risk.v1 import risk_pb2_grpc as rg
from services.clients.private_check import PrivateChecker
from services.common.db import Database
from services.common.errors import field_violations
from services.common.indicators import IndicatorKind, InvalidIndicator, normalize
from services.risk.bootstrap import RiskComponent
from services.risk.domain.model import categories_mask
from tests import harness
from tests.e2e.test_risk_service import assertion
from tests.harness import serving

K = IndicatorKind
CITIZEN = [("x-principal", "citizen:u-private")]

#: (kind, value, level, categories, source): every kind, and the URL expression forms.
LISTED: list[tuple[IndicatorKind, str, int, list[int], int]] = [
    (K.PHONE_NUMBER, "+8613912345678", c.RISK_LEVEL_HIGH, [c.FRAUD_CATEGORY_ONLINE_LOAN], 0),
    (K.PHONE_NUMBER, "+8617012340000", c.RISK_LEVEL_MEDIUM, [], 0),
    (K.SMS_SENDER, "106575501234", c.RISK_LEVEL_HIGH, [c.FRAUD_CATEGORY_ORDER_BRUSHING], 0),
    (K.URL, "pay.evil.example/login/", c.RISK_LEVEL_HIGH, [c.FRAUD_CATEGORY_FAKE_SHOPPING], 0),
    (K.URL, "phish.example/a/b.html?x=1", c.RISK_LEVEL_MEDIUM, [], 0),
    (K.DOMAIN, "fraud-site.example", c.RISK_LEVEL_HIGH, [c.FRAUD_CATEGORY_PIG_BUTCHERING], 0),
    (K.DOMAIN, "sub.lowrisk.example", c.RISK_LEVEL_LOW, [], 0),
    (K.IP_ADDRESS, "203.0.113.0/24", c.RISK_LEVEL_HIGH, [], 0),
    (K.IP_ADDRESS, "2001:db8:abcd::/48", c.RISK_LEVEL_MEDIUM, [], 0),
    (K.BANK_ACCOUNT, "6222021234567890128", c.RISK_LEVEL_HIGH, [c.FRAUD_CATEGORY_ONLINE_LOAN], 0),
    (K.PAYMENT_ACCOUNT, "alipay:fraud@example.com", c.RISK_LEVEL_MEDIUM, [], 0),
    (K.QQ_NUMBER, "123456789", c.RISK_LEVEL_LOW, [], 0),
    (K.WECHAT_ID, "scam_helper_01", c.RISK_LEVEL_HIGH, [], 0),
    (K.APP, "com.fake.loan", c.RISK_LEVEL_HIGH, [c.FRAUD_CATEGORY_ONLINE_LOAN], 0),
    (K.DOMAIN, "safe-bank.example", c.RISK_LEVEL_NONE, [], r.SOURCE_TYPE_ALLOW_LIST),
]

#: Values checked both ways: listed ones, their variants (what the expression rules match),
#: and harmless neighbours.
PROBES: list[tuple[IndicatorKind, str]] = [
    (K.PHONE_NUMBER, "139 1234 5678"),
    (K.PHONE_NUMBER, "+86 139-1234-5678"),
    (K.PHONE_NUMBER, "13912345679"),
    (K.PHONE_NUMBER, "17012340000"),
    (K.PHONE_NUMBER, "96110"),
    (K.PHONE_NUMBER, "+86 96110"),
    (K.PHONE_NUMBER, "1065 7550 1234"),
    (K.SMS_SENDER, "106575501234"),
    (K.SMS_SENDER, "+8613912345678"),
    (K.SMS_SENDER, "95588"),
    (K.URL, "https://pay.evil.example/login/step2?id=7"),
    (K.URL, "http://www.pay.evil.example/login/"),
    (K.URL, "pay.evil.example/other"),
    (K.URL, "hxxp://phish.example/a/b.html?x=1"),
    (K.URL, "phish.example/a/b.html"),
    (K.URL, "https://shop.fraud-site.example/cart#top"),
    (K.URL, "http://203.0.113.77:8080/pay"),
    (K.URL, "http://[2001:db8:abcd:12::1]/x"),
    (K.URL, "https://safe-bank.example/login"),
    (K.URL, "https://harmless.example/"),
    (K.DOMAIN, "a.b.fraud-site.example"),
    (K.DOMAIN, "lowrisk.example"),
    (K.DOMAIN, "x.sub.lowrisk.example"),
    (K.DOMAIN, "safe-bank.example"),
    (K.IP_ADDRESS, "203.0.113.9"),
    (K.IP_ADDRESS, "203.0.114.9"),
    (K.IP_ADDRESS, "2001:db8:abcd:ffff::9"),
    (K.BANK_ACCOUNT, "6222 0212 3456 7890 128"),
    (K.BANK_ACCOUNT, "6222021234567890136"),
    (K.PAYMENT_ACCOUNT, "alipay:fraud@example.com"),
    (K.PAYMENT_ACCOUNT, "wechat_pay:fraud@example.com"),
    (K.QQ_NUMBER, "123456789"),
    (K.QQ_NUMBER, "987654321"),
    (K.WECHAT_ID, "Scam_Helper_01"),
    (K.APP, "com.fake.loan#" + "ab" * 32),
    (K.APP, "com.real.bank"),
]
WPT = Path(__file__).parents[1] / "data" / "wpt-urltestdata.json"


def wpt_urls(limit: int = 40) -> list[str]:
    """Absolute http(s) inputs of the WHATWG URL test data, as URL indicators read them."""
    cases = json.loads(WPT.read_text())
    found = [
        case["input"]
        for case in cases
        if isinstance(case, dict)
        and "failure" not in case
        and str(case.get("input", "")).lower().startswith(("http://", "https://"))
    ]
    return found[:limit]


@pytest.fixture
async def risk(db_target: tuple[str, str | None]) -> AsyncIterator[rg.RiskServiceStub]:
    url, schema = db_target
    async with (
        serving(RiskComponent(Database("risk", url=url, schema=schema))) as running,
        harness.channel(running.address) as channel,
    ):
        stub = rg.RiskServiceStub(channel)
        for kind, value, level, categories, source in LISTED:
            await stub.UpsertIndicator(
                r.UpsertIndicatorRequest(
                    request_id=str(uuid.uuid4()),
                    indicator=c.Indicator(kind=int(kind), value=value),  # type: ignore[arg-type]
                    assertion=assertion(
                        source or r.SOURCE_TYPE_ANALYST,
                        level,
                        "allow-list" if source else "analyst-1",
                        categories=categories,
                        label="银行官网" if source else "",
                    ),
                )
            )
        yield stub


async def plain(stub: rg.RiskServiceStub, kind: IndicatorKind, value: str) -> tuple[object, ...]:
    reply = await stub.CheckIndicator(
        r.CheckIndicatorRequest(indicator=c.Indicator(kind=int(kind), value=value)),  # type: ignore[arg-type]
        metadata=CITIZEN,
    )
    v = reply.verdict
    return (int(v.level), categories_mask(frozenset(v.categories)), v.verified)  # type: ignore[arg-type]


async def test_private_verdicts_equal_plain_checks(risk: rg.RiskServiceStub) -> None:
    private = PrivateChecker(risk, metadata=CITIZEN)
    probes = PROBES + [(K.URL, u) for u in wpt_urls()]
    listed_seen = 0
    for kind, value in probes:
        try:
            normalize(kind, value)
        except InvalidIndicator:
            continue
        verdict = await private.check(kind, value)
        mine = (int(verdict.level), verdict.categories, verdict.verified)
        assert mine == await plain(risk, kind, value), (kind, value)
        listed_seen += verdict.level > c.RISK_LEVEL_NONE or verdict.verified
    assert listed_seen >= 25  # the probes reach the list, not only its absence


async def test_bad_queries_are_invalid_argument_naming_the_field(risk: rg.RiskServiceStub) -> None:
    phone = c.INDICATOR_KIND_PHONE_NUMBER
    bad = [
        (r.HashPrefixQuery(kind=phone, prefix=b"\x01", blinded=b"\x02" * 32), "queries[0].prefix"),
        (r.HashPrefixQuery(kind=phone, prefix=b"\x01\x02", blinded=b"\xff" * 32), "queries[0].blinded"),  # noqa: E501
        (r.HashPrefixQuery(prefix=b"\x01\x02", blinded=b"\x02" * 32), "queries[0].kind"),
    ]  # fmt: skip
    for query, field in bad:
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await risk.SearchHashPrefixes(r.SearchHashPrefixesRequest(queries=[query]))
        assert caught.value.code() is grpc.StatusCode.INVALID_ARGUMENT
        assert [f for f, _ in field_violations(caught.value)] == [field]
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await risk.SearchHashPrefixes(r.SearchHashPrefixesRequest())
    assert caught.value.code() is grpc.StatusCode.INVALID_ARGUMENT
