"""Table-driven tests of services.common.indicators: normalisation, lookup keys, masking."""

from __future__ import annotations

import dataclasses
import ipaddress
import random
import re
from pathlib import Path

import pytest

from services.common.indicators import (
    Indicator,
    IndicatorKind,
    InvalidIndicator,
    display,
    lookup_keys,
    luhn_valid,
    normalize,
)

K = IndicatorKind
ALL_KINDS = [kind for kind in IndicatorKind if kind != IndicatorKind.UNSPECIFIED]
LUHN = "card number fails the Luhn check"
SHORT = "service or short code kept as dialled"
CERT = "ab" * 32


def value(kind: IndicatorKind, raw: str) -> str:
    return normalize(kind, raw).value


# ---------------------------------------------------------------------------------------------
# The types
# ---------------------------------------------------------------------------------------------


def test_kind_numbers_match_the_proto_enum() -> None:
    proto = Path(__file__).resolve().parents[2] / "protos/antifraud/common/v1/common.proto"
    if not proto.exists():
        pytest.skip("common.proto is not in this tree")
    text = proto.read_text(encoding="utf-8")
    body = text[text.index("enum IndicatorKind") :]
    body = body[: body.index("}")]
    numbers = {
        name: int(number)
        for name, number in re.findall(r"INDICATOR_KIND_([A-Z_]+)\s*=\s*(\d+);", body)
    }
    assert numbers == {kind.name: kind.value for kind in IndicatorKind}


def test_invalid_indicator_is_a_value_error_with_its_reason() -> None:
    with pytest.raises(InvalidIndicator) as info:
        normalize(K.PHONE_NUMBER, "abc")
    assert isinstance(info.value, ValueError)
    assert info.value.reason == "not a valid phone number"
    assert str(info.value) == info.value.reason


def test_indicator_is_frozen_with_slots() -> None:
    indicator = normalize(K.QQ_NUMBER, "10001")
    assert indicator == Indicator(K.QQ_NUMBER, "10001", ())
    assert isinstance(indicator.kind, IndicatorKind)
    with pytest.raises(dataclasses.FrozenInstanceError):
        indicator.value = "x"  # type: ignore[misc]
    assert not hasattr(indicator, "__dict__")


def test_a_plain_int_kind_is_accepted() -> None:
    indicator = normalize(1, "13800138000")  # type: ignore[arg-type]
    assert indicator.kind is K.PHONE_NUMBER
    assert indicator.value == "+8613800138000"


# ---------------------------------------------------------------------------------------------
# Rejections common to every kind
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ALL_KINDS)
@pytest.mark.parametrize(
    "raw",
    [
        "",
        "   ",
        "\t\n",
        "\u3000",
        "1" * 5000,
        "13800138000\x00",
        "\x00",
        "a\x00b.com",
        "x" * 3000,
    ],
)
def test_every_kind_rejects_empty_overlong_and_nul(kind: IndicatorKind, raw: str) -> None:
    with pytest.raises(InvalidIndicator):
        normalize(kind, raw)


@pytest.mark.parametrize(
    ("kind", "raw"),
    [
        (K.PHONE_NUMBER, "138\x0100138000"),
        (K.SMS_SENDER, "icbc\x1bbank"),
        (K.SMS_SENDER, "icbc\u202ebank"),
        (K.DOMAIN, "evil\x7f.example"),
        (K.IP_ADDRESS, "10.0.0.1\x85x"),
        (K.BANK_ACCOUNT, "6222\x0b021234561234"),
        (K.PAYMENT_ACCOUNT, "alipay:ab\x02c"),
        (K.QQ_NUMBER, "1000\u200b1"),
        (K.WECHAT_ID, "fraud\x08boss"),
        (K.APP, "com.evil\ufeff.app"),
    ],
)
def test_control_and_invisible_characters_are_rejected(kind: IndicatorKind, raw: str) -> None:
    with pytest.raises(InvalidIndicator, match="control"):
        normalize(kind, raw)


@pytest.mark.parametrize("kind", [K.UNSPECIFIED, 0, 11, 99, -1, None, "PHONE_NUMBER", [1]])
def test_unspecified_and_unknown_kinds_are_rejected(kind: object) -> None:
    with pytest.raises(InvalidIndicator, match="unsupported indicator kind"):
        normalize(kind, "13800138000")  # type: ignore[arg-type]


@pytest.mark.parametrize("raw", [None, 13800138000, b"13800138000", ["13800138000"]])
@pytest.mark.parametrize("kind", [K.PHONE_NUMBER, K.URL, K.DOMAIN])
def test_non_strings_are_rejected(kind: IndicatorKind, raw: object) -> None:
    with pytest.raises(InvalidIndicator, match="must be a string"):
        normalize(kind, raw)  # type: ignore[arg-type]


def test_the_url_limit_is_2048_and_others_256() -> None:
    url = "http://evil.example/" + "a" * (2048 - len("http://evil.example/"))
    assert value(K.URL, url) == url.removeprefix("http://")
    with pytest.raises(InvalidIndicator, match="longer than 2048"):
        normalize(K.URL, url + "a")
    with pytest.raises(InvalidIndicator, match="longer than 256"):
        normalize(K.SMS_SENDER, "1" * 257)


def test_failures_are_raised_afresh_each_time() -> None:
    with pytest.raises(InvalidIndicator) as first:
        normalize(K.DOMAIN, "not a domain")
    with pytest.raises(InvalidIndicator) as second:
        normalize(K.DOMAIN, "not a domain")
    assert first.value is not second.value
    assert first.value.reason == second.value.reason == "not a valid domain"


# ---------------------------------------------------------------------------------------------
# PHONE_NUMBER
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("+8613800138000", "+8613800138000"),
        ("138 0013 8000", "+8613800138000"),
        ("+86-138-0013-8000", "+8613800138000"),
        ("+86 138 0013 8000", "+8613800138000"),
        ("008613800138000", "+8613800138000"),
        ("86 13800138000", "+8613800138000"),
        ("8613800138000", "+8613800138000"),
        ("13800138000", "+8613800138000"),
        ("  13800138000\n", "+8613800138000"),
        ("１３８００１３８０００", "+8613800138000"),
        ("＋８６ １３８ ００１３ ８０００", "+8613800138000"),
        ("138.0013.8000", "+8613800138000"),
        ("138\u00a00013\u00a08000", "+8613800138000"),
        ("19912345678", "+8619912345678"),
        ("010-12345678", "+861012345678"),
        ("(010) 1234-5678", "+861012345678"),
        ("+86 10 12345678", "+861012345678"),
        ("+86 010 12345678", "+861012345678"),
        ("0755-12345678", "+8675512345678"),
        ("400-820-8820", "+864008208820"),
        ("+1 650 253 0000", "+16502530000"),
        ("+1 (650) 253-0000", "+16502530000"),
        ("+44 20 7946 0958", "+442079460958"),
        ("+852 9123 4567", "+85291234567"),
        ("0085291234567", "+85291234567"),
    ],
)
def test_phone_numbers_become_e164(raw: str, expected: str) -> None:
    indicator = normalize(K.PHONE_NUMBER, raw)
    assert indicator == Indicator(K.PHONE_NUMBER, expected)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("96110", "96110"),
        ("12381", "12381"),
        ("110", "110"),
        ("120", "120"),
        ("12110", "12110"),
        ("12315", "12315"),
        ("95588", "95588"),
        ("955 88", "95588"),
        ("10086", "10086"),
        ("100-86", "10086"),
        ("９６１１０", "96110"),
    ],
)
def test_service_and_short_codes_stay_digits(raw: str, expected: str) -> None:
    assert normalize(K.PHONE_NUMBER, raw) == Indicator(K.PHONE_NUMBER, expected, (SHORT,))


@pytest.mark.parametrize(
    "raw",
    [
        "abc",
        "123456789012345678901",
        "+999 1",
        "+86",
        "+",
        "12",
        "0110",
        "12345678",  # a local number without its area code
        "+8612345678",
        "1-800-FLOWERS",
        "138 0013 8000 ext 12",
        "+86 138 0013 8000 +1",
        "13800138000x",
        "١٣٨٠٠١٣٨٠٠٠",  # Arabic-Indic digits are not mapped
        "++8613800138000",
        "+86 0",
    ],
)
def test_invalid_phone_numbers_are_rejected(raw: str) -> None:
    with pytest.raises(InvalidIndicator, match=r"^not a valid phone number$"):
        normalize(K.PHONE_NUMBER, raw)


# ---------------------------------------------------------------------------------------------
# SMS_SENDER
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("106575501234", "106575501234"),
        ("1065 7550 1234", "106575501234"),
        ("1069-0000-1234-5678", "1069000012345678"),
        ("+86106575501234", "106575501234"),
        ("0106575501234", "106575501234"),
        ("10086", "10086"),
        ("95588", "95588"),
        ("13800138000", "+8613800138000"),
        ("+86 138 0013 8000", "+8613800138000"),
        ("+1 650 253 0000", "+16502530000"),
        ("12520", "12520"),
        ("ICBC", "icbc"),
        ("  Apple   Pay ", "apple pay"),
        ("Apple\u2028Pay", "apple pay"),
        ("Cafe\u0301", "caf\u00e9"),  # NFKC: one form for composed and decomposed
        ("中国银行", "中国银行"),
        ("ＩＣＢＣ", "icbc"),
        ("a" * 32, "a" * 32),
    ],
)
def test_sms_senders(raw: str, expected: str) -> None:
    assert value(K.SMS_SENDER, raw) == expected


@pytest.mark.parametrize(
    "raw",
    ["a" * 33, "!!!", "+999 1", "1" * 21, "+", "a\ue000b"],
)
def test_invalid_sms_senders_are_rejected(raw: str) -> None:
    with pytest.raises(InvalidIndicator):
        normalize(K.SMS_SENDER, raw)


# ---------------------------------------------------------------------------------------------
# URL: Google Safe Browsing canonicalisation (expected values are Google's, without scheme)
# ---------------------------------------------------------------------------------------------

SAFE_BROWSING_CASES = [
    ("http://host/%25%32%35", "host/%25"),
    ("http://host/%25%32%35%25%32%35", "host/%25%25"),
    ("http://host/%2525252525252525", "host/%25"),
    ("http://host/asdf%25%32%35asd", "host/asdf%25asd"),
    ("http://host/%%%25%32%35asd%%", "host/%25%25%25asd%25%25"),
    ("http://www.google.com/", "www.google.com/"),
    (
        "http://%31%36%38%2e%31%38%38%2e%39%39%2e%32%36/%2E%73%65%63%75%72%65/"
        "%77%77%77%2E%65%62%61%79%2E%63%6F%6D/",
        "168.188.99.26/.secure/www.ebay.com/",
    ),
    (
        "http://195.127.0.11/uploads/%20%20%20%20/.verify/.eBaysecure=updateuserdataxplimnbqmn"
        "-xplmvalidateinfoswqpcmlx=hgplmcx/",
        "195.127.0.11/uploads/%20%20%20%20/.verify/.eBaysecure=updateuserdataxplimnbqmn"
        "-xplmvalidateinfoswqpcmlx=hgplmcx/",
    ),
    (
        "http://host%23.com/%257Ea%2521b%2540c%2523d%2524e%25f%255E00%252611%252A22%252833"
        "%252944_55%252B",
        "host%23.com/~a!b@c%23d$e%25f^00&11*22(33)44_55+",
    ),
    ("http://3279880203/blah", "195.127.0.11/blah"),
    ("http://www.google.com/blah/..", "www.google.com/"),
    ("www.google.com/", "www.google.com/"),
    ("www.google.com", "www.google.com/"),
    ("http://www.evil.com/blah#frag", "www.evil.com/blah"),
    ("http://www.GOOgle.com/", "www.google.com/"),
    ("http://www.google.com.../", "www.google.com/"),
    ("http://www.google.com/foo\tbar\rbaz\n2", "www.google.com/foobarbaz2"),
    ("http://www.google.com/q?", "www.google.com/q?"),
    ("http://www.google.com/q?r?", "www.google.com/q?r?"),
    ("http://www.google.com/q?r?s", "www.google.com/q?r?s"),
    ("http://evil.com/foo#bar#baz", "evil.com/foo"),
    ("http://evil.com/foo;", "evil.com/foo;"),
    ("http://evil.com/foo?bar;", "evil.com/foo?bar;"),
    ("http://\x01\x80.com/", "%01%80.com/"),
    ("http://notrailingslash.com", "notrailingslash.com/"),
    # Google drops every port; we keep non-default ones (and match port-less listings).
    ("http://www.gotaport.com:1234/", "www.gotaport.com:1234/"),
    ("  http://www.google.com/  ", "www.google.com/"),
    ("http:// leadingspace.com/", "%20leadingspace.com/"),
    ("http://%20leadingspace.com/", "%20leadingspace.com/"),
    ("%20leadingspace.com/", "%20leadingspace.com/"),
    ("https://www.securesite.com/", "www.securesite.com/"),
    ("http://host.com/ab%23cd", "host.com/ab%23cd"),
    ("http://host.com//twoslashes?more//slashes", "host.com/twoslashes?more//slashes"),
]


@pytest.mark.parametrize(("raw", "expected"), SAFE_BROWSING_CASES)
def test_safe_browsing_canonicalization(raw: str, expected: str) -> None:
    assert value(K.URL, raw) == expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("evil.example/pay/", "evil.example/pay/"),
        ("HTTP://EVIL.EXAMPLE/PAY/", "evil.example/PAY/"),
        ("http://evil.example:80/a", "evil.example/a"),
        ("https://evil.example:443/a", "evil.example/a"),
        ("http://evil.example:0080/a", "evil.example/a"),
        ("http://evil.example:/a", "evil.example/a"),
        ("http://evil.example:8080/a", "evil.example:8080/a"),
        ("evil.example:8080/a", "evil.example:8080/a"),
        ("http://user:pw@evil.example/a", "evil.example/a"),
        ("http://www.bank.com@evil.example/login", "evil.example/login"),
        ("http://0x7f.1/", "127.0.0.1/"),
        ("http://0177.0.0.1/", "127.0.0.1/"),
        ("http://127.1/", "127.0.0.1/"),
        ("http://1.2.3/", "1.2.0.3/"),
        ("http://0x7F000001/", "127.0.0.1/"),
        ("http://256.1.1.1/", "256.1.1.1/"),  # not an IPv4 address: left as a host name
        ("http://[2001:DB8:0::1]:8443/a", "[2001:db8::1]:8443/a"),
        ("http://[::1]/", "[::1]/"),
        ("http://例子.中国/路径?q=中", "xn--fsqu00a.xn--fiqs8s/%E8%B7%AF%E5%BE%84?q=%E4%B8%AD"),
        ("http://例子。中国/", "xn--fsqu00a.xn--fiqs8s/"),
        ("http://%E4%BE%8B%E5%AD%90.%E4%B8%AD%E5%9B%BD/", "xn--fsqu00a.xn--fiqs8s/"),
        ("http://XN--FSQU00A.xn--fiqs8s/", "xn--fsqu00a.xn--fiqs8s/"),
        ("http://ｅｖｉｌ．ｅｘａｍｐｌｅ／ｐａｙ", "evil.example/pay"),
        ("hxxp://evil.example/x", "evil.example/x"),
        ("//evil.example/x", "evil.example/x"),
        ("http://evil.example?a=1", "evil.example/?a=1"),
        ("http://evil.example/a/./b/../c/", "evil.example/a/c/"),
        ("http://evil.example/../../a", "evil.example/a"),
        ("http://evil.example/a/%2E%2E/b", "evil.example/b"),
        ("http://evil.example/a b", "evil.example/a%20b"),
        ("http://evil.example/%7e/%00", "evil.example/~/%00"),
        ("http://evil.example/\u00e9", "evil.example/%C3%A9"),
        ("http://evil.example/\x7f", "evil.example/%7F"),
        ("http://evil.example/a?b=%2F%3F#frag", "evil.example/a?b=/?"),
    ],
)
def test_url_canonicalization(raw: str, expected: str) -> None:
    assert value(K.URL, raw) == expected


@pytest.mark.parametrize(
    ("raw", "note"),
    [
        ("http://user@evil.example/", "URL carried user info before the host, which was removed"),
        ("http://3279880203/", "host was an IPv4 address in an obfuscated form"),
        ("http://例子.中国/", "host has internationalised (IDNA) labels"),
    ],
)
def test_url_notes(raw: str, note: str) -> None:
    assert note in normalize(K.URL, raw).notes


def test_plain_url_has_no_notes() -> None:
    assert normalize(K.URL, "http://evil.example/pay").notes == ()


@pytest.mark.parametrize(
    "raw",
    [
        "http://.../x",
        "http://",
        "#frag",
        "http://evil.example:99999/",
        "http://evil.example:8o/",
        "http://evil.example:1:2/",
        "javascript:alert(1)",
        "http://[::1/",
        "http://[not-v6]/",
        "http://[::1]x/",
        "http://a[b/",
        "http://evil\x00.example/",
        "http://\ud800.example/",
    ],
)
def test_invalid_urls_are_rejected(raw: str) -> None:
    with pytest.raises(InvalidIndicator):
        normalize(K.URL, raw)


def test_url_lookup_keys_safe_browsing_example() -> None:
    # Google's example: http://a.b.c/1/2.html?param=1
    indicator = normalize(K.URL, "http://a.b.c/1/2.html?param=1")
    assert lookup_keys(indicator) == [
        "a.b.c/1/2.html?param=1",
        "a.b.c/1/2.html",
        "a.b.c/",
        "a.b.c/1/",
        "b.c/1/2.html?param=1",
        "b.c/1/2.html",
        "b.c/",
        "b.c/1/",
    ]


def test_url_lookup_keys_use_at_most_five_hosts_and_skip_the_tld() -> None:
    keys = lookup_keys(normalize(K.URL, "http://a.b.c.d.e.f.g/1.html"))
    assert keys == [
        "a.b.c.d.e.f.g/1.html",
        "a.b.c.d.e.f.g/",
        "c.d.e.f.g/1.html",
        "c.d.e.f.g/",
        "d.e.f.g/1.html",
        "d.e.f.g/",
        "e.f.g/1.html",
        "e.f.g/",
        "f.g/1.html",
        "f.g/",
    ]
    assert not any(key.startswith("g/") for key in keys)


def test_url_lookup_keys_use_at_most_four_path_prefixes() -> None:
    keys = lookup_keys(normalize(K.URL, "http://evil.example/1/2/3/4/5/6.html?x=1"))
    assert keys == [
        "evil.example/1/2/3/4/5/6.html?x=1",
        "evil.example/1/2/3/4/5/6.html",
        "evil.example/",
        "evil.example/1/",
        "evil.example/1/2/",
        "evil.example/1/2/3/",
    ]


def test_url_lookup_keys_for_an_ip_host_use_only_that_host() -> None:
    assert lookup_keys(normalize(K.URL, "http://1.2.3.4/1/")) == ["1.2.3.4/1/", "1.2.3.4/"]
    assert lookup_keys(normalize(K.URL, "http://[2001:db8::1]/")) == ["[2001:db8::1]/"]


def test_url_lookup_keys_without_duplicates() -> None:
    assert lookup_keys(normalize(K.URL, "http://evil.example/")) == ["evil.example/"]
    assert lookup_keys(normalize(K.URL, "http://evil.example/pay/")) == [
        "evil.example/pay/",
        "evil.example/",
    ]


def test_url_lookup_keys_with_a_port_fall_back_to_port_less_hosts() -> None:
    assert lookup_keys(normalize(K.URL, "http://a.evil.example:8080/pay/x")) == [
        "a.evil.example:8080/pay/x",
        "a.evil.example:8080/",
        "a.evil.example:8080/pay/",
        "evil.example:8080/pay/x",
        "evil.example:8080/",
        "evil.example:8080/pay/",
        "a.evil.example/pay/x",
        "a.evil.example/",
        "a.evil.example/pay/",
        "evil.example/pay/x",
        "evil.example/",
        "evil.example/pay/",
    ]


@pytest.mark.parametrize(
    ("listed", "visited", "matches"),
    [
        ("evil.example/pay/", "http://a.b.evil.example/pay/x?y=1", True),
        ("evil.example/", "https://WWW.EVIL.EXAMPLE/anything/at/all", True),
        ("http://evil.example/pay/x?y=1", "http://evil.example/pay/x?y=1#top", True),
        ("evil.example/pay/x", "http://evil.example/pay/x?y=2", True),
        ("evil.example/pay/", "http://evil.example:8080/pay/x", True),
        ("evil.example:8080/", "http://evil.example:8080/pay/x", True),
        ("evil.example:8080/", "http://evil.example:9090/pay/x", False),
        ("evil.example/pay/", "http://evil.example/payments/", False),
        ("evil.example/pay/x?y=1", "http://evil.example/pay/x?y=2", False),
        ("example/", "http://evil.example/", False),  # the TLD alone is never a key
        ("notevil.example/", "http://evil.example/", False),
        ("例子.中国/", "http://www.xn--fsqu00a.xn--fiqs8s/", True),
    ],
)
def test_a_listed_url_is_found_by_lookup_keys(listed: str, visited: str, matches: bool) -> None:
    listed_value = value(K.URL, listed)
    assert (listed_value in lookup_keys(normalize(K.URL, visited))) is matches


# ---------------------------------------------------------------------------------------------
# DOMAIN
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("evil.example", "evil.example"),
        ("EVIL.Example.", "evil.example"),
        (".evil.example..", "evil.example"),
        ("a..evil.example", "a.evil.example"),
        ("例子.中国", "xn--fsqu00a.xn--fiqs8s"),
        ("例子。中国", "xn--fsqu00a.xn--fiqs8s"),
        ("XN--FSQU00A.xn--fiqs8s", "xn--fsqu00a.xn--fiqs8s"),
        ("ｅｖｉｌ．ｅｘａｍｐｌｅ", "evil.example"),
        ("https://Sub.Evil.Example:8443/path?x=1#y", "sub.evil.example"),
        ("evil.example/pay", "evil.example"),
        ("user@evil.example", "evil.example"),
        ("evil.example:8080", "evil.example"),
        ("a-b.c0.example", "a-b.c0.example"),
        ("1.2.3.example", "1.2.3.example"),
        ("a" * 63 + ".example", "a" * 63 + ".example"),
    ],
)
def test_domains(raw: str, expected: str) -> None:
    assert normalize(K.DOMAIN, raw) == Indicator(K.DOMAIN, expected)


@pytest.mark.parametrize(
    "raw",
    [
        "example",
        "localhost",
        "-evil.example",
        "evil-.example",
        "ev_il.example",
        "evil example.com",
        "evil.example:http",
        "a" * 64 + ".example",
        ".".join(["a" * 60] * 5),  # 304 characters
        ".".join(["abcdefg"] * 32),  # 255 characters
        "1.2.3.4",
        "evil.123",
        "...",
        "evil!.example",
        "%65vil.example",
        "例 子.中国",
    ],
)
def test_invalid_domains_are_rejected(raw: str) -> None:
    with pytest.raises(InvalidIndicator):
        normalize(K.DOMAIN, raw)


@pytest.mark.parametrize(
    ("raw", "keys"),
    [
        ("a.b.evil.example", ["a.b.evil.example", "b.evil.example", "evil.example"]),
        ("evil.example", ["evil.example"]),
        ("www.例子.中国", ["www.xn--fsqu00a.xn--fiqs8s", "xn--fsqu00a.xn--fiqs8s"]),
    ],
)
def test_domain_lookup_keys(raw: str, keys: list[str]) -> None:
    assert lookup_keys(normalize(K.DOMAIN, raw)) == keys


def test_a_listed_domain_matches_its_subdomains_only() -> None:
    keys = lookup_keys(normalize(K.DOMAIN, "a.b.evil.example"))
    assert value(K.DOMAIN, "EVIL.example") in keys
    assert value(K.DOMAIN, "b.evil.example") in keys
    assert value(K.DOMAIN, "c.evil.example") not in keys
    assert "example" not in keys


# ---------------------------------------------------------------------------------------------
# IP_ADDRESS
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected", "notes"),
    [
        ("192.168.1.1", "192.168.1.1", ()),
        (" 8.8.8.8 ", "8.8.8.8", ()),
        ("１９２.１６８.１.１", "192.168.1.1", ()),
        ("2001:0DB8:0000:0000:0000:0000:0000:0001", "2001:db8::1", ()),
        ("[2001:db8::1]", "2001:db8::1", ()),
        ("::1", "::1", ()),
        ("10.0.0.0/8", "10.0.0.0/8", ()),
        ("10.1.2.3/8", "10.0.0.0/8", ("host bits were set in the range and cleared",)),
        ("10.0.0.0/255.0.0.0", "10.0.0.0/8", ()),
        ("1.2.3.4/32", "1.2.3.4", ()),
        ("2001:db8::1/128", "2001:db8::1", ()),
        ("2001:DB8::/32", "2001:db8::/32", ()),
        ("0.0.0.0/0", "0.0.0.0/0", ()),
        ("::ffff:1.2.3.4", "1.2.3.4", ("IPv4-mapped IPv6 address converted to IPv4",)),
        ("::ffff:10.0.0.0/104", "10.0.0.0/8", ("IPv4-mapped IPv6 address converted to IPv4",)),
    ],
)
def test_ip_addresses(raw: str, expected: str, notes: tuple[str, ...]) -> None:
    assert normalize(K.IP_ADDRESS, raw) == Indicator(K.IP_ADDRESS, expected, notes)


@pytest.mark.parametrize(
    "raw",
    [
        "192.168.001.001",  # leading zeros are ambiguous (octal?): rejected
        "256.1.1.1",
        "1.2.3",
        "3279880203",
        "1.2.3.4/33",
        "1.2.3.4/",
        "10.0.0.0/-1",
        "::1/129",
        "fe80::1%eth0",
        "2001:db8:::1",
        "evil.example",
        "1.2.3.4 5",
    ],
)
def test_invalid_ip_addresses_are_rejected(raw: str) -> None:
    with pytest.raises(InvalidIndicator, match=r"^not a valid IP address or CIDR range$"):
        normalize(K.IP_ADDRESS, raw)


def test_ipv4_address_lookup_keys_are_its_networks_down_to_8() -> None:
    keys = lookup_keys(normalize(K.IP_ADDRESS, "10.1.2.3"))
    assert keys[:4] == ["10.1.2.3", "10.1.2.2/31", "10.1.2.0/30", "10.1.2.0/29"]
    assert keys[-1] == "10.0.0.0/8"
    assert len(keys) == 1 + 24
    expected = [str(ipaddress.ip_network(f"10.1.2.3/{n}", strict=False)) for n in range(31, 7, -1)]
    assert keys[1:] == expected


def test_ipv6_address_lookup_keys_are_its_networks_down_to_16() -> None:
    keys = lookup_keys(normalize(K.IP_ADDRESS, "2001:db8:1:2::abcd"))
    assert keys[0] == "2001:db8:1:2::abcd"
    assert keys[1] == "2001:db8:1:2::abcc/127"
    assert keys[-1] == "2001::/16"
    assert len(keys) == 1 + 112
    assert "2001:db8:1:2::/64" in keys
    assert "2001:db8::/32" in keys


def test_range_lookup_keys_are_itself_then_containing_networks() -> None:
    assert lookup_keys(normalize(K.IP_ADDRESS, "10.1.0.0/16")) == [
        "10.1.0.0/16",
        "10.0.0.0/15",
        "10.0.0.0/14",
        "10.0.0.0/13",
        "10.0.0.0/12",
        "10.0.0.0/11",
        "10.0.0.0/10",
        "10.0.0.0/9",
        "10.0.0.0/8",
    ]
    assert lookup_keys(normalize(K.IP_ADDRESS, "10.0.0.0/8")) == ["10.0.0.0/8"]
    assert lookup_keys(normalize(K.IP_ADDRESS, "0.0.0.0/0")) == ["0.0.0.0/0"]


@pytest.mark.parametrize(
    ("listed", "address", "matches"),
    [
        ("10.0.0.0/8", "10.200.3.4", True),
        ("10.1.2.3/24", "10.1.2.77", True),
        ("192.168.0.0/16", "192.169.0.1", False),
        ("1.2.3.4", "1.2.3.4", True),
        ("1.2.3.4/32", "1.2.3.5", False),
        ("2001:db8::/32", "2001:db8:ffff::1", True),
        ("2001:db8::/32", "2001:db9::1", False),
        ("10.0.0.0/16", "::ffff:10.0.200.1", True),
    ],
)
def test_a_listed_range_contains_the_address(listed: str, address: str, matches: bool) -> None:
    listed_value = value(K.IP_ADDRESS, listed)
    assert (listed_value in lookup_keys(normalize(K.IP_ADDRESS, address))) is matches


# ---------------------------------------------------------------------------------------------
# BANK_ACCOUNT
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected", "notes"),
    [
        ("4111 1111 1111 1111", "4111111111111111", ()),
        ("4111-1111-1111-1111", "4111111111111111", ()),
        ("６２２２ ０２１２ ３４５６ １２３４", "6222021234561234", (LUHN,)),
        ("6222021234561234", "6222021234561234", (LUHN,)),
        ("6222021234561236", "6222021234561236", ()),
        ("79927398713", "79927398713", ()),  # 11 digits: no Luhn check
        ("79927398710", "79927398710", ()),
        ("12345678", "12345678", ()),
        ("1" * 30, "1" * 30, ()),
        ("0000123456789", "0000123456789", (LUHN,)),
        ("6217 0000 0000 0000 007", "6217000000000000007", (LUHN,)),
    ],
)
def test_bank_accounts(raw: str, expected: str, notes: tuple[str, ...]) -> None:
    assert normalize(K.BANK_ACCOUNT, raw) == Indicator(K.BANK_ACCOUNT, expected, notes)


@pytest.mark.parametrize(
    "raw", ["1234567", "1" * 31, "6222abc", "6222.0212", "+6222021234561234", "١٢٣٤٥٦٧٨٩"]
)
def test_invalid_bank_accounts_are_rejected(raw: str) -> None:
    with pytest.raises(InvalidIndicator, match=r"^not a valid bank account number$"):
        normalize(K.BANK_ACCOUNT, raw)


@pytest.mark.parametrize(
    ("digits", "valid"),
    [
        ("4111111111111111", True),
        ("4111111111111112", False),
        ("79927398713", True),
        ("79927398710", False),
        ("0", True),
        ("18", True),
        ("", False),
        ("4111 1111", False),
        ("１８", False),
    ],
)
def test_luhn_valid(digits: str, valid: bool) -> None:
    assert luhn_valid(digits) is valid


# ---------------------------------------------------------------------------------------------
# PAYMENT_ACCOUNT
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("alipay:13800138000", "alipay:+8613800138000"),
        ("ALIPAY: 138 0013 8000", "alipay:+8613800138000"),
        ("支付宝:Fraud.Boss@Example.COM", "alipay:fraud.boss@example.com"),
        ("支付宝：2088102122524333", "alipay:2088102122524333"),
        ("alipay:Ab_c.d-1", "alipay:Ab_c.d-1"),
        ("wechat_pay:wxid_Abc123", "wechat_pay:wxid_Abc123"),
        ("WeChatPay:+1 650 253 0000", "wechat_pay:+16502530000"),
        ("WeChat Pay:abc", "wechat_pay:abc"),
        ("微信支付:13800138000", "wechat_pay:+8613800138000"),
        ("wechat-pay:1234567890", "wechat_pay:1234567890"),
    ],
)
def test_payment_accounts(raw: str, expected: str) -> None:
    assert value(K.PAYMENT_ACCOUNT, raw) == expected


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        ("13800138000", "payment account needs a provider"),
        ("paypal:abc", "unknown payment provider"),
        (":abc", "unknown payment provider"),
        ("alipay:", "not a valid payment account"),
        ("alipay:a b", "not a valid payment account"),
        ("alipay:" + "a" * 65, "not a valid payment account"),
        ("alipay:张三", "not a valid payment account"),
        ("wechat_pay:a/b", "not a valid payment account"),
    ],
)
def test_invalid_payment_accounts_are_rejected(raw: str, reason: str) -> None:
    with pytest.raises(InvalidIndicator, match=f"^{reason}"):
        normalize(K.PAYMENT_ACCOUNT, raw)


# ---------------------------------------------------------------------------------------------
# QQ_NUMBER, WECHAT_ID
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("10001", "10001"),
        ("12345678901", "12345678901"),
        ("１２３４５６", "123456"),
        (" 88 888 ", "88888"),
    ],
)
def test_qq_numbers(raw: str, expected: str) -> None:
    assert normalize(K.QQ_NUMBER, raw) == Indicator(K.QQ_NUMBER, expected)


@pytest.mark.parametrize("raw", ["1234", "123456789012", "012345", "12345a", "qq12345", "-12345"])
def test_invalid_qq_numbers_are_rejected(raw: str) -> None:
    with pytest.raises(InvalidIndicator, match=r"^not a valid QQ number$"):
        normalize(K.QQ_NUMBER, raw)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("Fraud_Boss-01", "fraud_boss-01"),
        ("abcdef", "abcdef"),
        ("wxid_abcdefghijklmn", "wxid_abcdefghijklmn"),
        ("a" * 20, "a" * 20),
        ("13800138000", "+8613800138000"),
        ("+86 138 0013 8000", "+8613800138000"),
        ("ＦｒａｕｄＢｏｓｓ", "fraudboss"),
    ],
)
def test_wechat_ids(raw: str, expected: str) -> None:
    assert normalize(K.WECHAT_ID, raw) == Indicator(K.WECHAT_ID, expected)


@pytest.mark.parametrize(
    "raw", ["abcde", "a" * 21, "1abcdef", "_abcdef", "abc def", "abc.def", "微信号码abc", "+999 1"]
)
def test_invalid_wechat_ids_are_rejected(raw: str) -> None:
    with pytest.raises(InvalidIndicator, match=r"^not a valid WeChat ID$"):
        normalize(K.WECHAT_ID, raw)


# ---------------------------------------------------------------------------------------------
# APP
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("com.evil.app", "com.evil.app"),
        ("Com.Evil.App_2", "com.evil.app_2"),
        ("com.evil.app#" + CERT, "com.evil.app#" + CERT),
        ("com.evil.app#" + CERT.upper(), "com.evil.app#" + CERT),
        ("com.evil.app#" + ":".join(["AB"] * 32), "com.evil.app#" + CERT),
        ("ｃｏｍ．ｅｖｉｌ．ａｐｐ", "com.evil.app"),
    ],
)
def test_apps(raw: str, expected: str) -> None:
    assert normalize(K.APP, raw) == Indicator(K.APP, expected)


@pytest.mark.parametrize(
    "raw",
    [
        "evil",
        "com.",
        ".com.evil",
        "com..evil",
        "com.1evil",
        "com._evil",
        "com.evil-app",
        "com.evil.app#",
        "com.evil.app#abc",
        "com.evil.app#" + "g" * 64,
        "com.evil.app#" + "ab" * 33,
        "com.evil.app#" + "ab" * 20,  # a SHA-1 digest is not accepted
        "#" + CERT,
    ],
)
def test_invalid_apps_are_rejected(raw: str) -> None:
    with pytest.raises(InvalidIndicator):
        normalize(K.APP, raw)


def test_app_lookup_keys() -> None:
    assert lookup_keys(normalize(K.APP, "com.evil.app#" + CERT)) == [
        "com.evil.app#" + CERT,
        "com.evil.app",
    ]
    assert lookup_keys(normalize(K.APP, "com.evil.app")) == ["com.evil.app"]


@pytest.mark.parametrize(
    ("kind", "raw"),
    [
        (K.PHONE_NUMBER, "13800138000"),
        (K.SMS_SENDER, "106575501234"),
        (K.BANK_ACCOUNT, "6222021234561234"),
        (K.PAYMENT_ACCOUNT, "alipay:13800138000"),
        (K.QQ_NUMBER, "10001"),
        (K.WECHAT_ID, "fraud_boss"),
    ],
)
def test_other_kinds_lookup_keys_are_the_value(kind: IndicatorKind, raw: str) -> None:
    indicator = normalize(kind, raw)
    assert lookup_keys(indicator) == [indicator.value]


# ---------------------------------------------------------------------------------------------
# display
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "raw", "shown"),
    [
        (K.PHONE_NUMBER, "13800138000", "+86138****8000"),
        (K.PHONE_NUMBER, "010-12345678", "+86101***5678"),
        (K.PHONE_NUMBER, "+1 650 253 0000", "+16502**0000"),
        (K.PHONE_NUMBER, "96110", "96110"),
        (K.SMS_SENDER, "13800138000", "+86138****8000"),
        (K.SMS_SENDER, "106575501234", "106575501234"),
        (K.SMS_SENDER, "ICBC", "icbc"),
        (K.WECHAT_ID, "13800138000", "+86138****8000"),
        (K.WECHAT_ID, "fraud_boss", "fraud_boss"),
        (K.BANK_ACCOUNT, "6222021234561234", "6222********1234"),
        (K.BANK_ACCOUNT, "6217000000000000007", "6217***********0007"),
        (K.BANK_ACCOUNT, "12345678", "12****78"),
        (K.PAYMENT_ACCOUNT, "alipay:13800138000", "alipay:+86138****8000"),
        (K.PAYMENT_ACCOUNT, "alipay:fraud.boss@example.com", "alipay:f***@example.com"),
        (K.PAYMENT_ACCOUNT, "wechat_pay:wxid_abc", "wechat_pay:wxid_abc"),
        (K.QQ_NUMBER, "10001", "10001"),
        (K.DOMAIN, "evil.example", "evil.example"),
        (K.IP_ADDRESS, "10.0.0.0/8", "10.0.0.0/8"),
        (K.URL, "http://evil.example/pay", "evil.example/pay"),
        (K.APP, "com.evil.app#" + CERT, ("com.evil.app#" + CERT)[:61] + "..."),
        (K.URL, "http://evil.example/" + "a" * 100, ("evil.example/" + "a" * 100)[:61] + "..."),
    ],
)
def test_display(kind: IndicatorKind, raw: str, shown: str) -> None:
    text = display(normalize(kind, raw))
    assert text == shown
    assert len(text) <= 64


# ---------------------------------------------------------------------------------------------
# Fuzz: only Indicator or InvalidIndicator, and canonical values are fixed points
# ---------------------------------------------------------------------------------------------

FUZZ_POOLS = [
    "0123456789",
    "abcdefghijklmnopqrstuvwxyzABCDEFZ",
    "+-./:@#%?[]_ ",
    "\x00\x01\t\n\r\x7f\x80\x9f",
    "１２３ａＡ．／：＠＃％\u3000",
    "例子中国支付宝微信",
    "\ud800\udc80\udfff",
    "\u200b\u202e\ufeff\u00a0\u2028",
    "😀é\u0301ß",
]
FUZZ_TOKENS = ["%2e", "%2f", "%25", "%41", "%00", "%zz", "xn--", "http://", "::", "0x", "+86"]
FUZZ_SEEDS = {
    K.PHONE_NUMBER: ["+8613800138000", "010-12345678", "95588", "+1 650 253 0000"],
    K.SMS_SENDER: ["106575501234", "ICBC", "+8613800138000"],
    K.URL: ["http://a.b.evil.example/pay/x?y=1", "http://例子.中国/", "http://[::1]:81/a"],
    K.DOMAIN: ["a.evil.example", "例子.中国"],
    K.IP_ADDRESS: ["10.1.2.3/8", "2001:db8::1", "::ffff:1.2.3.4"],
    K.BANK_ACCOUNT: ["6222021234561234"],
    K.PAYMENT_ACCOUNT: ["alipay:13800138000", "wechat_pay:a@b.com"],
    K.QQ_NUMBER: ["123456"],
    K.WECHAT_ID: ["fraud_boss", "13800138000"],
    K.APP: ["com.evil.app#" + CERT],
}


def _random_string(rng: random.Random) -> str:
    roll = rng.random()
    if roll < 0.02:
        return rng.choice(FUZZ_POOLS[0]) * 100_000
    if roll < 0.04:
        return "".join(rng.choice(FUZZ_POOLS[1]) for _ in range(3000)) + "\x00"
    length = rng.choice([0, 1, 2, 5, 10, 20, 40, 80, 300])
    parts: list[str] = []
    for _ in range(length):
        if rng.random() < 0.1:
            parts.append(rng.choice(FUZZ_TOKENS))
        else:
            parts.append(rng.choice(rng.choice(FUZZ_POOLS)))
    return "".join(parts)


def _mutate(rng: random.Random, text: str) -> str:
    chars = list(text)
    for _ in range(rng.randint(1, 4)):
        i = rng.randint(0, len(chars))
        roll = rng.random()
        if roll < 0.5 or not chars:
            chars.insert(i, rng.choice(rng.choice(FUZZ_POOLS)))
        elif roll < 0.8:
            del chars[min(i, len(chars) - 1)]
        else:
            chars[min(i, len(chars) - 1)] = rng.choice(rng.choice(FUZZ_POOLS))
    return "".join(chars)


@pytest.mark.parametrize("kind", ALL_KINDS)
def test_fuzz_only_indicators_or_invalid_indicator(kind: IndicatorKind) -> None:
    rng = random.Random(20240601 + int(kind))
    accepted = 0
    reasons: list[tuple[str, str]] = []
    for i in range(400):
        raw = _random_string(rng) if i % 2 else _mutate(rng, rng.choice(FUZZ_SEEDS[kind]))
        try:
            indicator = normalize(kind, raw)
        except InvalidIndicator as exc:
            reasons.append((exc.reason, str(exc)))
            continue
        accepted += 1
        assert isinstance(indicator, Indicator)
        assert indicator.kind is kind
        assert indicator.value
        assert normalize(kind, indicator.value).value == indicator.value, raw
        keys = lookup_keys(indicator)
        assert keys[0] == indicator.value
        assert len(keys) == len(set(keys))
        assert len(display(indicator)) <= 64
    assert accepted > 0
    assert reasons
    assert all(reason and text == reason for reason, text in reasons)


@pytest.mark.parametrize("kind", ALL_KINDS)
@pytest.mark.parametrize("raw", ["\x00" * 10, "a" * 1_000_000, "\ud800", "1\x00" * 5])
def test_hostile_inputs_are_rejected(kind: IndicatorKind, raw: str) -> None:
    with pytest.raises(InvalidIndicator):
        normalize(kind, raw)


@pytest.mark.parametrize(
    ("kind", "raw"),
    [(kind, seed) for kind, seeds in FUZZ_SEEDS.items() for seed in seeds]
    + [(K.URL, raw) for raw, _ in SAFE_BROWSING_CASES],
)
def test_canonical_values_are_fixed_points(kind: IndicatorKind, raw: str) -> None:
    canonical = normalize(kind, raw)
    assert normalize(kind, canonical.value).value == canonical.value
