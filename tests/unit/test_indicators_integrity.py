"""Risk list integrity, table-driven: URLs as browsers parse them (WHATWG, then Safe Browsing),
IDNA 2008, listing guards, look-alike domains, phone forms; and the property that whatever may be
listed matches itself and its documented variants."""

from __future__ import annotations

import ipaddress
import json
import re
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from services.common import indicators
from services.common.indicators import (
    Indicator,
    IndicatorKind,
    InvalidIndicator,
    listing_problem,
    lookalike_skeleton,
    lookup_keys,
    mixed_script,
    normalize,
)
from services.risk.domain.index import RiskIndex
from services.risk.domain.model import RiskLevel, Snapshot

K = IndicatorKind
DATA = Path(__file__).resolve().parents[1] / "data"
SPOOF = (
    "a service code with an international prefix: official service numbers never call from "
    "abroad, a sign of a spoofed caller"
)
LOCAL = "local form of a service code (area code and code): the code itself"
SHORT = "service or short code kept as dialled"
SP = "an SMS sender (SP) code: matched as the SMS sender too"


def value(kind: IndicatorKind, raw: str) -> str:
    return normalize(kind, raw).value


# ---------------------------------------------------------------------------------------------
# URL: the host a browser opens
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        # A backslash ends the authority in http(s), as in every browser.
        ("http://phish.example\\@mps.gov.cn/login", "phish.example/@mps.gov.cn/login"),
        ("https://phish.example\\@mps.gov.cn/", "phish.example/@mps.gov.cn/"),
        ("http:\\\\phish.example\\a\\b", "phish.example/a/b"),
        ("http:/\\phish.example/", "phish.example/"),
        ("phish.example\\login", "phish.example/login"),
        ("http://user@phish.example\\@mps.gov.cn/", "phish.example/@mps.gov.cn/"),
        # '@' before the first '/', '\\' or '?' is user info: the host comes after it.
        ("http://mps.gov.cn@phish.example/login", "phish.example/login"),
        ("http://mps.gov.cn:443@phish.example/", "phish.example/"),
        ("http://a@b@phish.example/", "phish.example/"),
        ("http://phish.example?@mps.gov.cn/", "phish.example/?@mps.gov.cn/"),
        ("http://phish.example#@mps.gov.cn/", "phish.example/"),
        # Scheme spellings: every special scheme, defanged ones, none.
        ("HTTPS://Phish.Example/", "phish.example/"),
        ("http:phish.example/a", "phish.example/a"),
        ("hxxps://phish.example/a", "phish.example/a"),
        ("ftp://phish.example/a", "phish.example/a"),
        ("http:///phish.example/a", "phish.example/a"),
        # Percent-encoded hosts are decoded once, as browsers do.
        ("http://%70hish.example/", "phish.example/"),
        ("http://phish%2Eexample/", "phish.example/"),
        # IPv6 hosts, compressed; IPv4 in any notation the WHATWG parser reads.
        ("http://[2001:db8:1::9]/a", "[2001:db8:1::9]/a"),
        ("http://[2001:0DB8:0001:0000:0000:0000:0000:0009]:8080/", "[2001:db8:1::9]:8080/"),
        ("http://[::ffff:1.2.3.4]/", "[::ffff:102:304]/"),
        ("http://0x7f.0.0.1/", "127.0.0.1/"),
        ("http://2130706433/", "127.0.0.1/"),
        # IDNA 2008 / UTS #46 non-transitional: ß and a final ς stay themselves.
        ("http://faß.de/", "xn--fa-hia.de/"),
        ("http://FASS.de/", "fass.de/"),
        ("http://straße.example/", "xn--strae-oqa.example/"),
        ("http://ΣΑΣ.example/", "xn--mxa9ab.example/"),
        ("http://аpple.com/", "xn--pple-43d.com/"),
        ("http://例子。中国/", "xn--fsqu00a.xn--fiqs8s/"),
        # A port of 80 or 443 is dropped whatever the scheme; others are kept.
        ("https://phish.example:80/", "phish.example/"),
        ("http://phish.example:443/", "phish.example/"),
        ("https://phish.example:8443/", "phish.example:8443/"),
    ],
)
def test_urls_name_the_host_a_browser_opens(raw: str, expected: str) -> None:
    assert value(K.URL, raw) == expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("faß.de", "xn--fa-hia.de"),
        ("FAß.DE", "xn--fa-hia.de"),
        ("fass.de", "fass.de"),
        ("xn--fa-hia.de", "xn--fa-hia.de"),
        ("straße.example", "xn--strae-oqa.example"),
        ("ΣΑΣ.example", "xn--mxa9ab.example"),
        ("ς.example", "xn--3xa.example"),
        ("例子.中国", "xn--fsqu00a.xn--fiqs8s"),
        ("http://phish.example\\@mps.gov.cn/", "phish.example"),
        ("аpple.com", "xn--pple-43d.com"),
    ],
)
def test_domains_are_idna_2008_non_transitional(raw: str, expected: str) -> None:
    assert value(K.DOMAIN, raw) == expected


@pytest.mark.parametrize("raw", ["☃.example", "a\u200db.example", "-a.example", "a_b.example"])
def test_domains_idna_2008_refuses_are_invalid(raw: str) -> None:
    with pytest.raises(InvalidIndicator):
        normalize(K.DOMAIN, raw)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [("faß.example", "xn--fa-hia.example"), ("ΣΑΣ.example", "xn--mxa9ab.example")],
)
def test_a_url_host_and_a_domain_are_encoded_alike(raw: str, expected: str) -> None:
    assert value(K.DOMAIN, raw) == expected
    assert value(K.URL, f"http://{raw}/").split("/")[0] == expected


def _wpt_cases() -> list[Any]:
    data = json.loads((DATA / "wpt-urltestdata.json").read_text("utf-8"))
    special = re.compile(r"^[\x00-\x20]*https?:[/\\]{2}", re.IGNORECASE)
    return [
        pytest.param(case, id=f"{n}")
        for n, case in enumerate(data)
        if isinstance(case, dict) and special.match(case["input"])
    ]


#: Inputs a browser opens that we refuse on purpose: NUL characters, hosts of only dots.
_REFUSED = re.compile(r"\x00|^http://\.+/$")


@pytest.mark.parametrize("case", _wpt_cases())
def test_whatwg_url_test_data(case: dict[str, Any]) -> None:
    """Every http(s) case of the WHATWG URL test data: the indicator names the host and port
    a browser opens. (A URL the standard refuses is canonicalised by Safe Browsing's lenient
    rules or refused; either way nothing but InvalidIndicator is raised.)"""
    raw = case["input"]
    try:
        indicator = normalize(K.URL, raw)
    except InvalidIndicator:
        assert case.get("failure") or _REFUSED.search(raw), raw
        return
    if case.get("failure"):
        return
    host = ".".join(label for label in case["hostname"].split(".") if label)
    port = "" if case["port"] in ("", "80", "443") else ":" + case["port"]
    assert indicator.value.startswith(host + port + "/"), (raw, indicator.value)
    assert ("?" in indicator.value) == ("?" in case["href"].partition("#")[0])


def test_the_wpt_data_covers_what_the_issue_names() -> None:
    inputs = [p.values[0]["input"] for p in _wpt_cases()]
    assert any("\\" in i for i in inputs)  # backslashes
    assert any("@" in i for i in inputs)  # credentials
    assert any("[" in i for i in inputs)  # IPv6
    assert any("%" in i for i in inputs)  # percent-encoding
    assert len(inputs) > 300


# ---------------------------------------------------------------------------------------------
# Listing guards
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "raw", "problem"),
    [
        (K.DOMAIN, "com.cn", "com.cn is a public suffix"),
        (K.DOMAIN, "github.io", "github.io is a public suffix"),
        (K.DOMAIN, "gov.cn", "gov.cn is a public suffix"),
        (K.DOMAIN, "co.uk", "co.uk is a public suffix"),
        (K.DOMAIN, "中国", None),  # one label: not a domain at all (refused by normalize)
        (K.URL, "http://github.io/", "the host github.io is a public suffix"),
        (K.URL, "http://com.cn/pay/", "the host com.cn is a public suffix"),
        (K.URL, "http://e.example/a/b/c/d/", "at most 3 directories deep (this one is 4)"),
        (K.URL, "http://e.example/a/b/c/d/e/", "at most 3 directories deep (this one is 5)"),
        (K.IP_ADDRESS, "10.0.0.0/7", "an IPv4 range may be at most /8 wide"),
        (K.IP_ADDRESS, "0.0.0.0/0", "an IPv4 range may be at most /8 wide"),
        (K.IP_ADDRESS, "2001::/15", "an IPv6 range may be at most /16 wide"),
        (K.IP_ADDRESS, "::/0", "an IPv6 range may be at most /16 wide"),
        # Listable:
        (K.DOMAIN, "evil.github.io", None),
        (K.DOMAIN, "scam.com.cn", None),
        (K.DOMAIN, "phish.example", None),
        (K.URL, "http://e.example/a/b/c/", None),
        (K.URL, "http://e.example/a/b/c/d/e.html", None),  # a page: matched as itself
        (K.URL, "http://e.example/a/b/c/d/?q=1", None),
        (K.URL, "http://1.2.3.4/a/", None),
        (K.IP_ADDRESS, "10.0.0.0/8", None),
        (K.IP_ADDRESS, "2001::/16", None),
        (K.IP_ADDRESS, "1.2.3.4", None),
        (K.PHONE_NUMBER, "13800138000", None),
    ],
)
def test_listing_guards(kind: IndicatorKind, raw: str, problem: str | None) -> None:
    try:
        indicator = normalize(kind, raw)
    except InvalidIndicator:
        assert problem is None
        return
    found = listing_problem(indicator)
    if problem is None:
        assert found is None
    else:
        assert found is not None
        assert problem in found


# ---------------------------------------------------------------------------------------------
# Look-alike domains
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("a", "b", "alike"),
    [
        ("аpple.com", "apple.com", True),  # Cyrillic а
        ("аррӏе.com", "apple.com", True),  # all Cyrillic
        ("app1e.com", "apple.com", True),  # digit for a letter
        ("g00gle.com", "google.com", True),
        ("mp5.gov.cn", "mps.gov.cn", True),
        ("paypai.com", "paypal.com", True),  # i for l
        ("apple.com", "apple.com", True),
        ("apples.com", "apple.com", False),
        ("mps.gov.com", "mps.gov.cn", False),
        ("icbc.com.cn", "ccb.com.cn", False),
    ],
)
def test_lookalike_skeletons(a: str, b: str, alike: bool) -> None:
    sa_ = lookalike_skeleton(value(K.DOMAIN, a))
    sb_ = lookalike_skeleton(value(K.DOMAIN, b))
    assert (sa_ == sb_) is alike


@pytest.mark.parametrize(
    ("raw", "mixed"),
    [("аpple.com", True), ("аррӏе.com", False), ("apple.com", False), ("例子.中国", False)],
)
def test_mixed_script(raw: str, mixed: bool) -> None:
    assert mixed_script(value(K.DOMAIN, raw)) is mixed


def _verified(label: str) -> Snapshot:
    return Snapshot(RiskLevel.NONE, 0, 0, 0, 1, 1, 2**31 - 1, True, label)


@pytest.mark.parametrize(
    ("kind", "raw", "imitated", "mixed"),
    [
        (K.DOMAIN, "аpple.com", "apple.com", True),
        (K.URL, "http://login.app1e.com/pay", "apple.com", False),
        (K.URL, "http://mp5.gov.cn/", "mps.gov.cn", False),
        (K.URL, "http://[2001:db8::1]/", None, False),
        (K.URL, "http://www.mps.gov.cn/", None, False),  # the real one
        (K.DOMAIN, "mps.gov.cn", None, False),
        (K.DOMAIN, "applepie.com", None, False),
        (K.PHONE_NUMBER, "96110", None, False),
    ],
)
def test_index_flags_lookalikes_of_verified_domains(
    kind: IndicatorKind, raw: str, imitated: str | None, mixed: bool
) -> None:
    index = RiskIndex()
    index.put(K.DOMAIN, "apple.com", _verified("Apple"))
    index.put(K.DOMAIN, "mps.gov.cn", _verified("中华人民共和国公安部"))
    found = index.lookalike(normalize(kind, raw))
    if imitated is None:
        assert found is None
    else:
        assert found is not None
        assert (found.domain, found.mixed_script) == (imitated, mixed)
    index.put(K.DOMAIN, "apple.com", Snapshot(RiskLevel.NONE, 0, 0, 0, 0, 0, 0))
    assert index.lookalike(normalize(K.DOMAIN, "аpple.com")) is None  # no longer verified


# ---------------------------------------------------------------------------------------------
# Phones
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected", "notes"),
    [
        # The local forms of 96110 that official publicity names: area code + 96110.
        ("025-96110", "96110", (LOCAL,)),
        ("02596110", "96110", (LOCAL,)),
        ("(025) 96110", "96110", (LOCAL,)),
        ("010-96110", "96110", (LOCAL,)),
        ("0755-96110", "96110", (LOCAL,)),
        ("0512 96110", "96110", (LOCAL,)),
        ("021-95588", "95588", (LOCAL,)),
        ("96110", "96110", (SHORT,)),
        # An international prefix on a service code: spoofing, never the verified code.
        ("0086 96110", "+8696110", (SPOOF,)),
        ("+86 96110", "+8696110", (SPOOF,)),
        ("+86-96110", "+8696110", (SPOOF,)),
        ("+8696110", "+8696110", (SPOOF,)),
        ("+86 25 96110", "+8696110", (SPOOF,)),
        ("0086 025 96110", "+8696110", (SPOOF,)),
        ("+86 110", "+86110", (SPOOF,)),
        ("+86 95588", "+8695588", (SPOOF,)),
        # SMS sender (SP) codes: their digits, as the SMS sender kind has them.
        ("106575501234", "106575501234", (SP,)),
        ("1065 7550 1234", "106575501234", (SP,)),
        ("1069-0000-1234-5678", "1069000012345678", (SP,)),
        # A Beijing landline is not an SP code.
        ("010-6557-5012", "+861065575012", ()),
        ("+86 10 6557 5012", "+861065575012", ()),
        # Mobiles as issued.
        ("13800138000", "+8613800138000", ()),
        ("19912345678", "+8619912345678", ()),
        ("+86 166 1234 5678", "+8616612345678", ()),
    ],
)
def test_phone_forms(raw: str, expected: str, notes: tuple[str, ...]) -> None:
    assert normalize(K.PHONE_NUMBER, raw) == Indicator(K.PHONE_NUMBER, expected, notes)


@pytest.mark.parametrize(
    "raw",
    [
        "1380013800",  # 10 digits
        "138001380001",  # 12 digits
        "+86 138 0013 800",
        "+86 138 0013 80001",
        "008613800138",
        "14012345678",  # no such mobile range
        "12012345678",
        "11012345678",
        "0250-96110",  # no such area code form
        "025-961100",
    ],
)
def test_impossible_mobiles_and_forms_are_invalid(raw: str) -> None:
    with pytest.raises(InvalidIndicator, match=r"^not a valid phone number$"):
        normalize(K.PHONE_NUMBER, raw)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("106575501234", "106575501234"),
        ("+86 106575501234", "106575501234"),
        ("+86 95588", "95588"),  # seen when roaming: the code
        ("95588", "95588"),
    ],
)
def test_sms_sender_codes_match_their_phone_listing(raw: str, expected: str) -> None:
    assert value(K.SMS_SENDER, raw) == expected
    index = RiskIndex()
    listed = Snapshot(RiskLevel.HIGH, 0, 8, 0, 1, 1, 2**31 - 1)
    index.put(K.PHONE_NUMBER, expected, listed)
    hit = index.lookup(normalize(K.SMS_SENDER, raw), 100)
    assert hit is not None
    assert hit.kind is K.PHONE_NUMBER
    index = RiskIndex()
    index.put(K.SMS_SENDER, expected, listed)
    if raw.startswith("+86"):
        return  # as a phone number: the spoofed form of a code, or a Beijing landline
    hit = index.lookup(normalize(K.PHONE_NUMBER, raw), 100)
    assert hit is not None
    assert hit.kind is K.SMS_SENDER


# ---------------------------------------------------------------------------------------------
# Matching across kinds: URL hosts against listed domains and IP addresses and ranges
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "listed", "url", "matches"),
    [
        (K.IP_ADDRESS, "2001:db8:1::/48", "http://[2001:db8:1::9]/a", True),
        (K.IP_ADDRESS, "2001:db8:1::9", "http://[2001:db8:1::9]:8443/a", True),
        (K.IP_ADDRESS, "2001:db8:2::/48", "http://[2001:db8:1::9]/a", False),
        (K.IP_ADDRESS, "1.2.3.0/24", "http://[::ffff:1.2.3.4]/", True),
        (K.IP_ADDRESS, "127.0.0.0/8", "http://2130706433/", True),
        (K.DOMAIN, "phish.example", "http://phish.example\\@mps.gov.cn/login", True),
        (K.DOMAIN, "mps.gov.cn", "http://phish.example\\@mps.gov.cn/login", False),
        (K.DOMAIN, "xn--fa-hia.example", "http://faß.example/", True),
        (K.DOMAIN, "fass.example", "http://faß.example/", False),
    ],
)
def test_url_hosts_match_listings_of_other_kinds(
    kind: IndicatorKind, listed: str, url: str, matches: bool
) -> None:
    index = RiskIndex()
    index.put(kind, value(kind, listed), Snapshot(RiskLevel.HIGH, 0, 8, 0, 1, 1, 2**31 - 1))
    hit = index.lookup(normalize(K.URL, url), 100)
    assert (hit is not None) is matches


# ---------------------------------------------------------------------------------------------
# Property: whatever may be listed matches itself and its documented variants
# ---------------------------------------------------------------------------------------------

_LABEL = st.from_regex(r"[a-z0-9](?:[a-z0-9-]{0,8}[a-z0-9])?", fullmatch=True)
_ULABEL = st.text(alphabet=st.sampled_from("abcxyzßäöüçéσςа例子中国ру"), min_size=1, max_size=6)
_TLD = st.sampled_from(["com", "cn", "example", "com.cn", "github.io", "xn--fiqs8s", "co.uk"])
_DOMAIN = st.builds(
    lambda labels, tld: ".".join([*labels, tld]),
    st.lists(st.one_of(_LABEL, _ULABEL), min_size=0, max_size=4),
    _TLD,
)
_SEGMENT = st.text(alphabet=st.sampled_from("abcXYZ09-_.~%!$ é/\\"), min_size=0, max_size=6)
_URL = st.builds(
    lambda scheme, host, port, segments, slash, query: (
        f"{scheme}{host}{port}/{'/'.join(segments)}{'/' if slash else ''}{query}"
    ),
    st.sampled_from(["http://", "https://", "", "hxxp://", "HTTP://"]),
    st.one_of(_DOMAIN, st.ip_addresses(v=4).map(str), st.ip_addresses(v=6).map(lambda a: f"[{a}]")),
    st.sampled_from(["", ":80", ":8080", ":443"]),
    st.lists(_SEGMENT, max_size=6),
    st.booleans(),
    st.sampled_from(["", "?", "?a=1", "?a=%2F&b=c d"]),
)
_IP = st.one_of(
    st.ip_addresses().map(str),
    st.builds(lambda a, n: f"{a}/{n}", st.ip_addresses(v=4), st.integers(0, 32)),
    st.builds(lambda a, n: f"{a}/{n}", st.ip_addresses(v=6), st.integers(0, 128)),
)
_PHONE = st.one_of(
    st.from_regex(r"1[3-9][0-9]{9}", fullmatch=True),
    st.from_regex(r"\+86 ?1[3-9][0-9] ?[0-9]{4} ?[0-9]{4}", fullmatch=True),
    st.from_regex(r"0(10|2[0-9]|[3-9][0-9]{2})-?[0-9]{7,8}", fullmatch=True),
    st.from_regex(r"(\+86 ?|0086 ?|0[0-9]{2,3}-?)?9[56][0-9]{3}", fullmatch=True),
    st.from_regex(r"106[0-9]{5,12}", fullmatch=True),
    st.from_regex(r"\+(1|44|852) ?[0-9]{6,11}", fullmatch=True),
)
_SMS = st.one_of(_PHONE, st.from_regex(r"[A-Za-z]{2,12}", fullmatch=True))
_STRATEGIES: dict[IndicatorKind, st.SearchStrategy[str]] = {
    K.URL: _URL,
    K.DOMAIN: _DOMAIN,
    K.IP_ADDRESS: _IP,
    K.PHONE_NUMBER: _PHONE,
    K.SMS_SENDER: _SMS,
}


def _variants(indicator: Indicator) -> list[Indicator]:
    """Documented variants a listing must match: a listed domain its subdomains and URLs on
    them; a listed URL the same URL with a fragment and, for a path prefix, what lies under it;
    a range every address in it."""
    kind, listed = indicator.kind, indicator.value
    if kind is K.DOMAIN:
        return [
            normalize(K.DOMAIN, "sub." + listed),
            normalize(K.URL, f"http://{listed}/x?y"),
            normalize(K.URL, f"https://a.b.{listed}:8443/"),
        ]
    if kind is K.URL:
        found = [normalize(K.URL, f"http://{listed}#fragment")]
        path = listed.partition("?")[0]
        if path.endswith("/") and "?" not in listed:
            found.append(normalize(K.URL, f"http://{path}deeper/page.html?q=1"))
        return found
    if kind is K.IP_ADDRESS and "/" in listed:
        network = ipaddress.ip_network(listed)
        last = network.broadcast_address
        if isinstance(last, ipaddress.IPv6Address) and last.ipv4_mapped is not None:
            # Mapped addresses are read as the IPv4 address they carry: take one that is not.
            last = network.network_address
        return [normalize(K.IP_ADDRESS, str(last)), normalize(K.IP_ADDRESS, f"{last}")]
    return []


@pytest.mark.parametrize("kind", list(_STRATEGIES))
def test_whatever_upsert_accepts_matches_itself_and_its_variants(kind: IndicatorKind) -> None:
    @settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))
    @given(_STRATEGIES[kind])
    def check(raw: str) -> None:
        try:
            indicator = normalize(kind, raw)
        except InvalidIndicator:
            return
        if listing_problem(indicator) is not None:
            return  # refused at upsert
        index = RiskIndex()
        index.put(kind, indicator.value, Snapshot(RiskLevel.HIGH, 0, 8, 0, 1, 1, 2**31 - 1))
        for probe in [indicator, normalize(kind, raw), normalize(kind, indicator.value)]:
            hit = index.lookup(probe, 100)
            assert hit is not None, (raw, probe)
            assert hit.value == indicator.value
        assert lookup_keys(indicator)[0] == indicator.value
        for probe in _variants(indicator):
            assert index.lookup(probe, 100) is not None, (raw, indicator.value, probe.value)

    check()


#: Eight groups, zero half the time, so that runs of zeros of every length come up.
_GROUPS = st.lists(st.one_of(st.just(0), st.integers(0, 0xFFFF)), min_size=8, max_size=8)


@given(_GROUPS.map(lambda groups: sum(g << (112 - 16 * i) for i, g in enumerate(groups))))
def test_ipv6_text_is_rfc5952_hex_groups_on_every_python(value: int) -> None:
    """The same text for an address whatever the interpreter: parsing it back gives the
    address, every group is lower-case hex without leading zeros, and ``::`` stands for
    the longest run (two or more, the first of equals) of zero groups. (Python 3.13's
    ``.compressed`` writes IPv4-mapped addresses dotted; 3.11's does not.)"""
    text = indicators._ipv6_text(value)
    assert int(ipaddress.IPv6Address(text)) == value
    assert "." not in text
    groups = [(value >> (112 - 16 * i)) & 0xFFFF for i in range(8)]
    runs = [
        (j - i, i)
        for i in range(8)
        for j in range(i + 1, 9)
        if all(g == 0 for g in groups[i:j]) and (i == 0 or groups[i - 1] != 0)
    ]
    longest = max((length for length, _ in runs), default=0)
    if longest < 2:
        assert text == ":".join(f"{g:x}" for g in groups)
    else:
        start = min(i for length, i in runs if length == longest)
        head = ":".join(f"{g:x}" for g in groups[:start])
        tail = ":".join(f"{g:x}" for g in groups[start + longest :])
        assert text == f"{head}::{tail}"


def test_ipv4_mapped_addresses_keep_their_hex_form() -> None:
    assert indicators._ipv6_text(ipaddress.IPv6Address("::ffff:1.2.3.4")) == "::ffff:102:304"
