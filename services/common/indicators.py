"""Normalisation of fraud indicators: the one place that turns raw input into canonical values.

Every service (risk, report, identity, gateway) stores and looks up indicators by the canonical
``value`` produced here; nothing else may re-implement these rules. The module is pure Python
(no protobuf, no database) and hot: risk look-ups call :func:`normalize` on every value, so the
common cases have fast paths and the expensive ones are memoised.

Public API: :class:`IndicatorKind`, :class:`InvalidIndicator`, :class:`Indicator`,
:func:`normalize`, :func:`lookup_keys`, :func:`display` and :func:`luhn_valid`.

Canonical forms (see each ``_normalize_*`` function for the details):

* PHONE_NUMBER: E.164 (``+8613800138000``), or the digits of a 3-6 digit service/short code.
* SMS_SENDER: a phone number as above, a ``10``-prefixed SP code's digits, or a lower-cased name.
* URL: Google Safe Browsing canonicalisation without the scheme (``evil.example/pay/``); a
  non-default port is kept (``host:8080/``), ``:80`` and ``:443`` are dropped.
* DOMAIN: lower-case IDNA (``xn--fsqu00a.xn--fiqs8s``).
* IP_ADDRESS: compressed address or CIDR network (``10.0.0.0/8``).
* BANK_ACCOUNT: 8-30 ASCII digits.
* PAYMENT_ACCOUNT: ``alipay:<id>`` or ``wechat_pay:<id>``.
* QQ_NUMBER: 5-11 digits.  WECHAT_ID: lower-cased id, or E.164 when a phone number is given.
* APP: ``package`` or ``package#sha256hex``, lower-cased.
"""

from __future__ import annotations

import contextlib
import enum
import functools
import ipaddress
import re
import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from urllib.parse import quote_from_bytes, unquote_to_bytes

import ada_url
import idna
import phonenumbers
from confusable_homoglyphs import categories as _scripts
from publicsuffixlist import PublicSuffixList

__all__ = [
    "Indicator",
    "IndicatorKind",
    "InvalidIndicator",
    "display",
    "listing_problem",
    "lookalike_skeleton",
    "lookup_keys",
    "luhn_valid",
    "mixed_script",
    "normalize",
]


class IndicatorKind(enum.IntEnum):
    """Kinds of indicator; the numbers match the proto enum antifraud.common.v1.IndicatorKind."""

    UNSPECIFIED = 0
    PHONE_NUMBER = 1
    SMS_SENDER = 2
    URL = 3
    DOMAIN = 4
    IP_ADDRESS = 5  # a single address or a CIDR range
    BANK_ACCOUNT = 6  # bank card or account number
    PAYMENT_ACCOUNT = 7  # "alipay:<id>" or "wechat_pay:<id>"
    QQ_NUMBER = 8
    WECHAT_ID = 9
    APP = 10  # "<package name>" or "<package name>#<sha256 hex of signing cert>"


class InvalidIndicator(ValueError):
    """Raised by :func:`normalize` for any input that is not a valid indicator of its kind."""

    reason: str

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason

    def __str__(self) -> str:
        return self.reason


@dataclass(frozen=True, slots=True)
class Indicator:
    """A normalised indicator. ``value`` is the canonical form that is stored and looked up."""

    kind: IndicatorKind
    value: str
    notes: tuple[str, ...] = ()  # facts found while normalising, never reasons to reject


# --------------------------------------------------------------------------------------------
# Limits, reasons and notes
# --------------------------------------------------------------------------------------------

MAX_URL_LENGTH = 2048
MAX_LENGTH = 256

_PHONE_INVALID = "not a valid phone number"
_SMS_INVALID = "not a valid SMS sender"
_URL_INVALID = "not a valid URL"
_DOMAIN_INVALID = "not a valid domain"
_IP_INVALID = "not a valid IP address or CIDR range"
_BANK_INVALID = "not a valid bank account number"
_PAYMENT_INVALID = "not a valid payment account"
_QQ_INVALID = "not a valid QQ number"
_WECHAT_INVALID = "not a valid WeChat ID"
_APP_INVALID = "not a valid app package name or signing certificate digest"

NOTE_LUHN_FAILED = "card number fails the Luhn check"
NOTE_SHORT_CODE = "service or short code kept as dialled"
NOTE_LOCAL_SERVICE_CODE = "local form of a service code (area code and code): the code itself"
NOTE_SPOOFED_SERVICE_CODE = (
    "a service code with an international prefix: official service numbers never call from "
    "abroad, a sign of a spoofed caller"
)
NOTE_SP_CODE = "an SMS sender (SP) code: matched as the SMS sender too"
NOTE_USERINFO = "URL carried user info before the host, which was removed"
NOTE_NUMERIC_HOST = "host was an IPv4 address in an obfuscated form"
NOTE_IDN_HOST = "host has internationalised (IDNA) labels"
NOTE_HOST_BITS = "host bits were set in the range and cleared"
NOTE_IPV4_MAPPED = "IPv4-mapped IPv6 address converted to IPv4"

# --------------------------------------------------------------------------------------------
# Shared input preparation
# --------------------------------------------------------------------------------------------

# Full-width forms U+FF01-U+FF5E map to ASCII 0x21-0x7E; the ideographic space to a space.
_FULLWIDTH: dict[int, int] = {0xFF01 + i: 0x21 + i for i in range(94)}
_FULLWIDTH[0x3000] = 0x20
# For kinds other than URL, other no-break spaces are spaces as well (copied from web pages).
_FULLWIDTH_AND_SPACES: dict[int, int] = {**_FULLWIDTH, 0x00A0: 0x20, 0x2007: 0x20, 0x202F: 0x20}

# Control, invisible and bidirectional-override characters, and lone surrogates.
_BAD_CHARS = re.compile(
    "[\x00-\x1f\x7f-\x9f\u00ad\u200b-\u200f\u202a-\u202e\u2060-\u2064\u2066-\u206f\ufeff"
    "\ud800-\udfff]"
)


def _prepare(raw: object, limit: int = MAX_LENGTH) -> str:
    """Strip, check the length and characters, map full-width characters to ASCII."""
    if not isinstance(raw, str):
        raise InvalidIndicator("value must be a string")
    s = raw.strip()
    if not s:
        raise InvalidIndicator("value is empty")
    if len(s) > limit:
        raise InvalidIndicator(f"value is longer than {limit} characters")
    if s.isascii():
        if not s.isprintable():
            raise InvalidIndicator("value contains control characters")
        return s
    s = s.translate(_FULLWIDTH_AND_SPACES).strip()
    if _BAD_CHARS.search(s):
        raise InvalidIndicator("value contains control or invisible characters")
    return s


def _memoize(
    fn: Callable[[str], Indicator], maxsize: int, max_input: int
) -> Callable[[str], Indicator]:
    """Memoise a normaliser of raw strings (LRU, thread-safe); failures are memoised as their
    reason and raised afresh. Inputs longer than ``max_input`` bypass the cache, which bounds
    its memory."""

    @functools.lru_cache(maxsize=maxsize)
    def cached(s: str) -> Indicator | str:
        try:
            return fn(s)
        except InvalidIndicator as exc:
            return exc.reason

    def wrapper(s: str) -> Indicator:
        if len(s) > max_input:
            return fn(s)
        result = cached(s)
        if isinstance(result, str):
            raise InvalidIndicator(result)
        return result

    return wrapper


# --------------------------------------------------------------------------------------------
# PHONE_NUMBER
# --------------------------------------------------------------------------------------------

# Separators people write inside phone numbers; removed before anything else.
_PHONE_SEPARATORS = str.maketrans("", "", " \t-.()/\u2010\u2011\u2012\u2013\u2014\u2212")
_PHONE_COMPACT = re.compile(r"\+?[0-9]+")
_CN_MOBILE_SECOND = frozenset("3456789")
# Chinese mobile numbers as issued (phonenumbers' metadata): "possible" is only a length check.


def _cn_mobile_pattern() -> re.Pattern[str]:
    metadata = phonenumbers.PhoneMetadata.metadata_for_region("CN")
    assert metadata is not None
    assert metadata.mobile is not None
    return re.compile(str(metadata.mobile.national_number_pattern))


#: China Telecom's 149 range is in service (and in the carriers' directory) but not yet in
#: phonenumbers' metadata.
_CN_MOBILE_IN_SERVICE = re.compile(r"149[0-9]{8}")


class _Mobiles:
    """Chinese mobile numbers as issued: phonenumbers' pattern, and ranges it lacks."""

    def __init__(self) -> None:
        self.pattern = _cn_mobile_pattern()

    def fullmatch(self, national: str) -> re.Match[str] | None:
        return self.pattern.fullmatch(national) or _CN_MOBILE_IN_SERVICE.fullmatch(national)


_CN_MOBILE = _Mobiles()
# Area code (010, 02x, 0xxx) followed by a regional service code (95xxx, 96xxx): the local
# form that official publicity says 96110 calls show (025-96110).
_LOCAL_SERVICE_FORM = re.compile(r"0(10|2[0-9]|[3-9][0-9]{2})(9[56][0-9]{3})")
_SP_CODE = re.compile(r"(106[0-9]{5,17})")  # with a 0 first it is a Beijing landline
_IS_POSSIBLE = phonenumbers.ValidationResult.IS_POSSIBLE
_E164 = phonenumbers.PhoneNumberFormat.E164


def _compact_phone(s: str) -> str | None:
    """``s`` without separators if it is ``+``? and ASCII digits, else None."""
    compact = "".join(s.translate(_PHONE_SEPARATORS).split())
    if not compact.isascii() or _PHONE_COMPACT.fullmatch(compact) is None:
        return None
    return compact


def _cn_mobile_fast(s: str) -> str | None:
    """E.164 of a plain Chinese mobile number (no separators), without phonenumbers."""
    if not s.isascii():
        return None
    n = len(s)
    national = None
    if n == 14:  # +86 1[3-9]xxxxxxxxx
        if s.startswith("+861") and s[4] in _CN_MOBILE_SECOND and s[1:].isdigit():
            national = s[3:]
    elif n == 11:  # 1[3-9]xxxxxxxxx
        if s[0] == "1" and s[1] in _CN_MOBILE_SECOND and s.isdigit():
            national = s
    elif n == 13:  # 86 1[3-9]xxxxxxxxx
        if s.startswith("861") and s[3] in _CN_MOBILE_SECOND and s.isdigit():
            national = s[2:]
    elif n == 15 and s.startswith("00861") and s[5] in _CN_MOBILE_SECOND and s.isdigit():
        national = s[4:]
    if national is None or _CN_MOBILE.fullmatch(national) is None:
        return None  # not a mobile as issued: the slow path decides (and refuses a bad one)
    return "+86" + national


@functools.lru_cache(maxsize=65536)
def _phone_e164(compact: str) -> str | None:
    """E.164 form of a compact number (``+``? digits) via phonenumbers, or None if invalid.

    ``is_possible`` (a length check) rather than ``is_valid`` (pattern check) for landlines
    and foreign numbers, because newly issued ranges would fail ``is_valid``; but a Chinese
    mobile number (national ``1``, not Beijing's ``10``) must be valid, as issued: a mobile of
    10 or 12 digits is impossible, not "possible". The sanity check on top: the number must be
    possible internationally (not "local only"), at most 15 digits, and a Chinese national
    number must have 10-12 digits (every Chinese number reachable from outside its area does)
    and must not start with 0 (that is the trunk prefix, never part of the number). Finally
    the E.164 form must parse back to itself, so that normalising a canonical value never
    changes it.
    """
    try:
        number = phonenumbers.parse(compact, "CN")
    except phonenumbers.NumberParseException:
        return None
    if phonenumbers.is_possible_number_with_reason(number) != _IS_POSSIBLE:
        return None
    e164 = str(phonenumbers.format_number(number, _E164))
    if not 8 <= len(e164) <= 16:
        return None
    if number.country_code == 86:
        national = str(number.national_number)
        if e164.startswith("+860") or not 10 <= len(national) <= 12:
            return None
        if national[0] == "1" and national[1] != "0" and _CN_MOBILE.fullmatch(national) is None:
            return None
    if e164 != compact:  # the canonical form must read back as itself (carrier codes may not)
        reread = phonenumbers.parse(e164, "CN")
        if phonenumbers.format_number(reread, _E164) != e164:
            return None
    return e164


def _cn_short_code(compact: str) -> tuple[str, tuple[str, ...]] | None:
    """A 3-6 digit service/short code: its digits; its local form (area code + 95xxx/96xxx,
    ``025-96110``): the code, noted; written with +86/0086 (``+86 96110``, also with an area
    code): ``+86`` and the code, noted as spoofing, so it never matches the verified code."""
    digits = compact
    international = False
    if digits.startswith("+86"):
        digits, international = digits[3:], True
    elif digits.startswith("0086"):
        digits, international = digits[4:], True
    elif digits.startswith("+"):
        return None
    local = _LOCAL_SERVICE_FORM.fullmatch(digits)
    if international and local is None and digits[:1] in "23456789" and len(digits) == 7:
        local = _LOCAL_SERVICE_FORM.fullmatch("0" + digits)  # +86 25 96110: area code, no 0
    if local is not None:
        code = local.group(2)
        if international:
            return "+86" + code, (NOTE_SPOOFED_SERVICE_CODE,)
        return code, (NOTE_LOCAL_SERVICE_CODE,)
    if 3 <= len(digits) <= 6 and digits[0] != "0":
        if international:
            return "+86" + digits, (NOTE_SPOOFED_SERVICE_CODE,)
        return digits, (NOTE_SHORT_CODE,)
    return None


def _phone_value(s: str) -> tuple[str, tuple[str, ...]] | None:
    """Canonical phone value and notes for a prepared string, or None if it is not a phone."""
    fast = _cn_mobile_fast(s)
    if fast is not None:
        return fast, ()
    compact = _compact_phone(s)
    if compact is None or len(compact) > 18:
        return None
    fast = _cn_mobile_fast(compact)
    if fast is not None:
        return fast, ()
    short = _cn_short_code(compact)
    if short is not None:
        return short
    sp_code = _SP_CODE.fullmatch(compact)
    if sp_code is not None:  # 1065 7550 1234: a bulk SMS sender, not a Beijing landline
        return sp_code.group(1), (NOTE_SP_CODE,)
    e164 = _phone_e164(compact)
    if e164 is None:
        return None
    return e164, ()


def _normalize_phone(s: str) -> Indicator:
    result = _phone_value(s)
    if result is None:
        raise InvalidIndicator(_PHONE_INVALID)
    return Indicator(IndicatorKind.PHONE_NUMBER, result[0], result[1])


# Something that is meant as a phone number inside another kind: international form, or a
# Chinese mobile number (with or without 86).
_PHONE_LIKE = re.compile(r"(?:\+|00)[0-9]{6,17}|(?:86)?1[3-9][0-9]{9}")


def _phone_like(s: str) -> str | None:
    """E.164 of ``s`` if it is written as a phone number and is one, else None."""
    compact = _compact_phone(s)
    if compact is None or _PHONE_LIKE.fullmatch(compact) is None:
        return None
    result = _phone_value(compact)
    if result is None or not result[0].startswith("+") or result[1]:
        return None
    return result[0]


# --------------------------------------------------------------------------------------------
# SMS_SENDER
# --------------------------------------------------------------------------------------------

_WHITESPACE_RUN = re.compile(r"\s+")
MAX_SMS_SENDER_NAME = 32


def _normalize_sms_sender(s: str) -> Indicator:
    compact = _compact_phone(s)
    if compact is not None:
        # An SP access code (10086, 1069..., 106575501234), also as seen when roaming
        # (+86106...): kept as its digits. Landlines (+86 10 = Beijing) do not send SMS.
        national = compact
        for prefix in ("+86", "0086"):
            if compact.startswith(prefix):
                national = compact[len(prefix) :]
        if national.startswith("10") and 5 <= len(national) <= 20:
            return Indicator(IndicatorKind.SMS_SENDER, national)
        if national != compact and 3 <= len(national) <= 6 and national[0] != "0":
            return Indicator(IndicatorKind.SMS_SENDER, national)  # +86 95588 seen roaming
        phone = _phone_value(compact)
        if phone is not None:
            if phone[0].startswith("+8610"):  # written with a trunk 0: 0106...
                return Indicator(IndicatorKind.SMS_SENDER, phone[0][3:])
            return Indicator(IndicatorKind.SMS_SENDER, phone[0], phone[1])
        if compact[0] != "+" and 3 <= len(compact) <= 20:
            return Indicator(IndicatorKind.SMS_SENDER, compact)
        raise InvalidIndicator(_SMS_INVALID)
    if not s.isascii():
        s = unicodedata.normalize("NFKC", s)
    name = _WHITESPACE_RUN.sub(" ", s).lower()
    if len(name) > MAX_SMS_SENDER_NAME or not name.isprintable():
        raise InvalidIndicator(_SMS_INVALID)
    if not any(ch.isalnum() for ch in name):
        raise InvalidIndicator(_SMS_INVALID)
    return Indicator(IndicatorKind.SMS_SENDER, name)


# --------------------------------------------------------------------------------------------
# URL: Google Safe Browsing canonicalisation, without the scheme
# --------------------------------------------------------------------------------------------

_URL_STRIP_CHARS = str.maketrans("", "", "\t\r\n")
# C1 controls U+0080-U+009F never occur in real URLs; they come from bytes decoded as Latin-1,
# so they are taken back as those bytes (Safe Browsing's `http://\x01\x80.com/` case).
_C1_TO_BYTES = {c: 0xDC00 + c for c in range(0x80, 0xA0)}
_URL_SCHEME = re.compile(rb"[A-Za-z][A-Za-z0-9+.\-]*://")
# Characters that stay as they are; all others (<= 0x20, >= 0x7f, '#', '%') are %XX-escaped.
_URL_SAFE = bytes(c for c in range(0x21, 0x7F) if c not in b"#%")
_IDEOGRAPHIC_DOTS = str.maketrans({"\u3002": ".", "\uff0e": ".", "\uff61": "."})
_DOTTED_QUAD = re.compile(r"[0-9]{1,3}(?:\.[0-9]{1,3}){3}")
_HEX_DIGITS = frozenset("0123456789abcdefABCDEF")
_OCT_DIGITS = frozenset("01234567")


def _url_bytes(s: str) -> bytes:
    if s.isascii():
        return s.encode("ascii")
    try:
        return s.translate(_C1_TO_BYTES).encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:
        raise InvalidIndicator("URL contains invalid characters") from None


def _unescape_fully(b: bytes) -> bytes:
    """Percent-unescape repeatedly until nothing changes (invalid escapes stay as they are)."""
    while b"%" in b:
        unescaped = unquote_to_bytes(b)
        if unescaped == b:
            break
        b = unescaped
    return b


def _escape(b: bytes) -> str:
    return quote_from_bytes(b, safe=_URL_SAFE)


def _ipv4_part(part: str) -> int | None:
    """One component of a loosely written IPv4 address: decimal, 0-octal or 0x-hex."""
    if not part or len(part) > 40:
        return None
    if part[:2] in ("0x", "0X"):
        digits = part[2:]
        if not all(c in _HEX_DIGITS for c in digits):
            return None
        return int(digits, 16) if digits else 0
    if part[0] == "0":
        return int(part, 8) if all(c in _OCT_DIGITS for c in part) else None
    return int(part) if part.isdigit() else None


def _parse_loose_ipv4(host: str) -> str | None:
    """Dotted-quad form of an IPv4 host in any legal encoding (``3279880203``, ``0x7f.1``)."""
    parts = host.split(".")
    if len(parts) > 4:
        return None
    numbers: list[int] = []
    for part in parts:
        number = _ipv4_part(part)
        if number is None:
            return None
        numbers.append(number)
    last = numbers.pop()
    if any(n > 255 for n in numbers) or last >= 256 ** (4 - len(numbers)):
        return None
    value = last
    for i, n in enumerate(numbers):
        value |= n << (8 * (3 - i))
    return f"{value >> 24}.{(value >> 16) & 255}.{(value >> 8) & 255}.{value & 255}"


def _idna_label(label: str) -> str | None:
    """ASCII form of a non-ASCII label by UTS #46 (non-transitional) and IDNA 2008, as browsers
    and the WHATWG URL standard map hosts (``faß`` -> ``xn--fa-hia``, not ``fass``); None when
    the label is not a valid internationalised label."""
    try:
        return idna.encode(label, uts46=True, transitional=False).decode("ascii")
    except (idna.IDNAError, UnicodeError, ValueError):
        return None


def _ipv6_text(address: int | ipaddress.IPv6Address) -> str:
    """An IPv6 address as RFC 5952 hex groups, the longest run of two or more zero groups
    as ``::`` (what ``.compressed`` gives on Python 3.11, and the WHATWG URL standard's
    form). Not ``.compressed``: Python 3.13 writes IPv4-mapped addresses dotted
    (``::ffff:1.2.3.4``), and stored keys must not change with the interpreter."""
    value = int(address)
    groups = [f"{(value >> (112 - 16 * i)) & 0xFFFF:x}" for i in range(8)]
    start, length, i = -1, 0, 0
    while i < 8:
        j = i
        while j < 8 and groups[j] == "0":
            j += 1
        if j - i > length:
            start, length = i, j - i
        i = max(j, i + 1)
    if length < 2:
        return ":".join(groups)
    return ":".join(groups[:start]) + "::" + ":".join(groups[start + length :])


def _url_host(host: bytes, notes: list[str]) -> str:
    """Canonical (escaped) host of a URL, from its unescaped bytes."""
    if host.startswith(b"["):
        if not host.endswith(b"]") or not host.isascii():
            raise InvalidIndicator(_URL_INVALID)
        try:
            address = ipaddress.IPv6Address(host[1:-1].decode("ascii"))
        except ValueError:
            raise InvalidIndicator(_URL_INVALID) from None
        if address.scope_id is not None:
            raise InvalidIndicator(_URL_INVALID)
        return f"[{_ipv6_text(address)}]"
    labels: list[bytes]
    text: str | None = None
    if not host.isascii():
        try:
            text = host.decode("utf-8").translate(_IDEOGRAPHIC_DOTS)
        except UnicodeDecodeError:
            text = None
    if text is None:
        labels = [label.lower() for label in host.split(b".") if label]
    else:
        labels = []
        idn = False
        for label in text.split("."):
            if not label:
                continue
            if label.isascii():
                labels.append(label.lower().encode("ascii"))
                continue
            # A '%' kept next to IDNA output could form a new escape: such labels stay bytes.
            ascii_label = None if "%" in label else _idna_label(label)
            if ascii_label is None:
                labels.append(label.lower().encode("utf-8"))
            else:
                labels.append(ascii_label.lower().encode("ascii"))
                idn = idn or ascii_label.startswith("xn--")
        if idn:
            notes.append(NOTE_IDN_HOST)
    if not labels:
        raise InvalidIndicator("URL has no host")
    joined = b".".join(labels)
    if b"[" in joined or b"]" in joined:  # brackets only around an IPv6 address
        raise InvalidIndicator(_URL_INVALID)
    if joined.isascii():
        ascii_host = joined.decode("ascii")
        ipv4 = _parse_loose_ipv4(ascii_host)
        if ipv4 is not None:
            if ipv4 != ascii_host:
                notes.append(NOTE_NUMERIC_HOST)
            return ipv4
    return _escape(joined)


def _url_path(path: bytes) -> bytes:
    """Resolve ``.`` and ``..`` segments and runs of slashes; an empty path becomes ``/``."""
    if not path or path == b"/":
        return b"/"
    segments = path.split(b"/")
    trailing = path.endswith(b"/") or segments[-1] in (b".", b"..")
    out: list[bytes] = []
    for segment in segments:
        if not segment or segment == b".":
            continue
        if segment == b"..":
            if out:
                out.pop()
            continue
        out.append(segment)
    if not out:
        return b"/"
    return b"/" + b"/".join(out) + (b"/" if trailing else b"")


def _url_port(port: bytes) -> str:
    if not port:
        return ""
    if not (port.isascii() and port.isdigit()) or len(port) > 5 or int(port) > 65535:
        raise InvalidIndicator(_URL_INVALID)
    number = int(port)
    return "" if number in (80, 443) else f":{number}"


#: Schemes taken as http: the web's, and their defanged spellings in threat reports.
_WEB_SCHEMES = frozenset({"http", "https", "hxxp", "hxxps", "h__p", "ws", "wss"})
_STR_URL_SCHEME = re.compile(r"([A-Za-z][A-Za-z0-9+.\-]*):")


def _as_http(s: str) -> str:
    """``s`` as an http URL: Safe Browsing ignores the scheme, and the WHATWG parser treats
    every special scheme (http, https, ws, ftp) alike; so any ``scheme://`` or web scheme
    becomes ``http:``, ``//host`` is scheme-relative, and no scheme means http."""
    match = _STR_URL_SCHEME.match(s)
    if match is not None:
        rest = s[match.end() :]
        if match.group(1).lower() in _WEB_SCHEMES or rest[:2] in ("//", "\\\\", "/\\", "\\/"):
            return "http:" + rest
    if s[:2] in ("//", "\\\\", "/\\", "\\/"):
        return "http:" + s
    return "http://" + s


def _normalize_url(s: str) -> Indicator:
    """:func:`_canonical_url`, repeated until the value reads back as itself (a host the lenient
    rules escaped can be one the WHATWG parser reads); values that never settle are refused."""
    result = _canonical_url(s)
    for _ in range(3):
        again = _canonical_url(result.value)
        if again.value == result.value:
            return result
        result = Indicator(IndicatorKind.URL, again.value, result.notes)
    raise InvalidIndicator(_URL_INVALID)


def _canonical_url(s: str) -> Indicator:
    """Safe Browsing canonicalisation of a prepared URL, returned as ``host[:port]/path[?q]``,
    applied to what the WHATWG URL parser (ada) makes of it, so the host is the host a browser
    opens: ``http://phish.example\\@mps.gov.cn/`` is ``phish.example`` (a backslash ends the
    authority), user info is dropped (noted), IDN hosts are UTS #46 non-transitional
    (``faß.de`` -> ``xn--fa-hia.de``), IPv4 hosts in any form are dotted quads, IPv6 hosts
    compressed in brackets.

    Then Safe Browsing: the fragment is dropped; host dots stripped and collapsed; the port kept
    unless ``:80``/``:443`` (Google drops every port; :func:`lookup_keys` also yields the
    port-less keys, so a port-less listing still matches); the path and query are
    percent-unescaped until nothing changes, ``.``/``..`` resolved and ``//`` collapsed in
    the path, and bytes <= 0x20, >= 0x7F, ``#`` and ``%`` escaped as ``%XX``. A URL the WHATWG
    parser refuses is canonicalised by Safe Browsing's own lenient rules
    (:func:`_normalize_url_lenient`); only NUL characters, a missing host, a bad port or bad
    brackets are rejected.
    """
    fragment = s.find("#")
    if fragment >= 0:
        s = s[:fragment]
    s = s.translate(_URL_STRIP_CHARS).strip()
    if not s:
        raise InvalidIndicator("URL has no host")
    try:
        parsed = ada_url.parse_url(_as_http(s))
    except ValueError:
        return _normalize_url_lenient(s)
    notes: list[str] = []
    host = parsed["hostname"]
    host_type = parsed["host_type"]
    if host_type == ada_url.HostType.IPV6:
        try:
            address = ipaddress.IPv6Address(host[1:-1])
        except ValueError:
            raise InvalidIndicator(_URL_INVALID) from None
        host = f"[{_ipv6_text(address)}]"
    elif host_type == ada_url.HostType.IPV4:
        if host not in s:
            notes.append(NOTE_NUMERIC_HOST)
    else:
        host = ".".join(label for label in host.split(".") if label)
        if not host:
            raise InvalidIndicator("URL has no host")
        if "%" in host or "[" in host or "]" in host:
            return _normalize_url_lenient(s)
        if host.startswith("xn--") or ".xn--" in host:
            notes.append(NOTE_IDN_HOST)
    if parsed["username"] or parsed["password"]:
        notes.append(NOTE_USERINFO)
    port = parsed["port"]
    port_part = "" if port in ("", "80", "443") else ":" + port
    path = _escape(_url_path(_unescape_fully(parsed["pathname"].encode("ascii"))))
    href = parsed["href"]
    query_at = href.find("?")
    query_part = ""
    if query_at >= 0:
        query = href[query_at + 1 :]
        hash_at = query.find("#")
        if hash_at >= 0:
            query = query[:hash_at]
        query_part = "?" + _escape(_unescape_fully(query.encode("ascii")))
    return Indicator(IndicatorKind.URL, host + port_part + path + query_part, tuple(notes))


def _normalize_url_lenient(s: str) -> Indicator:
    """Safe Browsing's own canonicalisation, for URLs the WHATWG parser refuses (hosts no
    browser opens, such as ``http://\x01\x80.com/`` in Safe Browsing's suite); it splits the
    authority as the WHATWG standard does for http: at the first ``/``, ``\\`` or ``?``.

    In order: drop the fragment; remove tab/CR/LF and surrounding spaces; work on the UTF-8
    bytes; percent-unescape until nothing changes; take any ``scheme://`` off (any scheme,
    so defanged ``hxxp://`` works; none means http); the authority runs to the first ``/`` or
    ``?``; user info is dropped (noted); host: IPv6 in brackets compressed, else dots
    stripped/collapsed, lower-cased, non-ASCII labels IDNA-encoded, loose IPv4 forms made
    dotted-quad; port: ``:80``/``:443``/empty dropped, others kept (Google drops every port;
    :func:`lookup_keys` also yields the port-less keys, so a port-less listing still matches);
    path: ``.``/``..`` resolved, ``//`` collapsed, empty -> ``/``; the query is kept as is;
    finally bytes <= 0x20, >= 0x7F, ``#`` and ``%`` are escaped as ``%XX`` (upper case).
    Only NUL characters, a missing host, a bad port or bad brackets are rejected.
    """
    notes: list[str] = []
    fragment = s.find("#")
    if fragment >= 0:
        s = s[:fragment]
    s = s.translate(_URL_STRIP_CHARS).strip()
    if not s:
        raise InvalidIndicator("URL has no host")
    b = _unescape_fully(_url_bytes(s))
    scheme = _URL_SCHEME.match(b)
    # Without a scheme http is assumed (and dropped anyway); "//host/" is scheme-relative.
    skip = scheme.end() if scheme is not None else 2 if b.startswith(b"//") else 0
    rest = b[skip:]
    # The authority runs up to the first '/', '\\' or '?' (a backslash is a slash in http).
    end = len(rest)
    for separator in (b"/", b"\\", b"?"):
        i = rest.find(separator, 0, end)
        if i >= 0:
            end = i
    authority, tail = rest[:end], rest[end:]
    at = authority.rfind(b"@")
    if at >= 0:
        authority = authority[at + 1 :]
        notes.append(NOTE_USERINFO)
    if authority.startswith(b"["):
        close = authority.find(b"]")
        if close < 0:
            raise InvalidIndicator(_URL_INVALID)
        host, after = authority[: close + 1], authority[close + 1 :]
        if after and not after.startswith(b":"):
            raise InvalidIndicator(_URL_INVALID)
        port = after[1:]
    else:
        host, _, port = authority.partition(b":")
        if b":" in port:
            raise InvalidIndicator(_URL_INVALID)
    canonical_host = _url_host(host, notes)
    canonical_port = _url_port(port)
    tail = tail.replace(b"\\", b"/")
    query_at = tail.find(b"?")
    if query_at >= 0:
        path, query = tail[:query_at], tail[query_at + 1 :]
        query_part = "?" + _escape(query)
    else:
        path, query_part = tail, ""
    value = canonical_host + canonical_port + _escape(_url_path(path)) + query_part
    return Indicator(IndicatorKind.URL, value, tuple(notes))


def _prepare_url(raw: object) -> str:
    if not isinstance(raw, str):
        raise InvalidIndicator("value must be a string")
    s = raw.strip()
    if not s:
        raise InvalidIndicator("value is empty")
    if len(s) > MAX_URL_LENGTH:
        raise InvalidIndicator(f"value is longer than {MAX_URL_LENGTH} characters")
    if "\x00" in s:
        raise InvalidIndicator("value contains NUL characters")
    if not s.isascii():
        s = s.translate(_FULLWIDTH).strip()
    return s


def _url_lookup_keys(value: str) -> list[str]:
    slash = value.find("/")
    if slash <= 0:
        return [value]
    hostport, rest = value[:slash], value[slash:]
    path, question, _ = rest.partition("?")
    # Host variants: the exact host, then the last 5..2 components (never the TLD alone).
    if hostport.startswith("["):
        close = hostport.find("]")
        host, port = hostport[: close + 1], hostport[close + 1 :]
    else:
        host, colon, port = hostport.rpartition(":")
        if colon:
            port = ":" + port
        else:
            host, port = hostport, ""
    hosts = [host]
    if not host.startswith("[") and _DOTTED_QUAD.fullmatch(host) is None:
        components = host.split(".")
        for start in range(max(1, len(components) - 5), len(components) - 1):
            hosts.append(".".join(components[start:]))
    # Path variants: with query, without, then "/" and up to 3 more leading directories.
    paths = [rest]
    if question:
        paths.append(path)
    paths.append("/")
    directories = path[1:].split("/")
    prefix = "/"
    for directory in directories[: min(len(directories) - 1, 3)]:
        prefix += directory + "/"
        paths.append(prefix)
    hostports = [h + port for h in hosts] + (hosts if port else [])
    keys: dict[str, None] = {}
    for h in hostports:
        for p in paths:
            keys[h + p] = None
    return list(keys)


# --------------------------------------------------------------------------------------------
# DOMAIN
# --------------------------------------------------------------------------------------------

_STR_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*://")
_LDH_LABEL = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?")
_HOST_END = re.compile(r"[/?#\\]")


def _domain_labels(s: str) -> list[str] | None:
    """IDNA labels of a domain, or None if it is not one (no validation of the result)."""
    scheme = _STR_SCHEME.match(s)
    if scheme is not None:
        s = s[scheme.end() :]
    end = _HOST_END.search(s)
    if end is not None:
        s = s[: end.start()]
    s = s.rpartition("@")[2]
    host, colon, port = s.rpartition(":")
    if colon:
        if port and not (port.isascii() and port.isdigit()):
            return None
        s = host
    s = s.translate(_IDEOGRAPHIC_DOTS)
    labels: list[str] = []
    for label in s.split("."):
        if not label:
            continue
        if label.isascii():
            labels.append(label.lower())
        else:
            ascii_label = _idna_label(label)
            if ascii_label is None:
                return None
            labels.append(ascii_label.lower())
    return labels


def _normalize_domain(s: str) -> Indicator:
    labels = _domain_labels(s)
    if labels is None or len(labels) < 2:
        raise InvalidIndicator(_DOMAIN_INVALID)
    for label in labels:
        if _LDH_LABEL.fullmatch(label) is None:
            raise InvalidIndicator(_DOMAIN_INVALID)
    if labels[-1].isdigit():  # an IPv4 address or a numeric top-level domain
        raise InvalidIndicator(_DOMAIN_INVALID)
    value = ".".join(labels)
    if len(value) > 253:
        raise InvalidIndicator(_DOMAIN_INVALID)
    return Indicator(IndicatorKind.DOMAIN, value)


def _domain_lookup_keys(value: str) -> list[str]:
    labels = value.split(".")
    return [".".join(labels[i:]) for i in range(max(1, len(labels) - 1))]


# --------------------------------------------------------------------------------------------
# IP_ADDRESS
# --------------------------------------------------------------------------------------------

#: The widest ranges the matcher looks up (a look-up tries every containing network down to
#: these prefix lengths); a wider listed range could never match, so it cannot be listed.
_IP_FLOOR = {4: 8, 6: 16}


def _normalize_ip(s: str) -> Indicator:
    if s.startswith("[") and "]" in s:  # "[v6]" or "[v6]/len"
        close = s.index("]")
        s = s[1:close] + s[close + 1 :]
    if "%" in s or not s.isascii():  # no zone ids
        raise InvalidIndicator(_IP_INVALID)
    notes: tuple[str, ...] = ()
    try:
        if "/" not in s:
            address = ipaddress.ip_address(s)
            if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
                address = address.ipv4_mapped
                notes = (NOTE_IPV4_MAPPED,)
            return Indicator(IndicatorKind.IP_ADDRESS, str(address), notes)
        network = ipaddress.ip_network(s, strict=False)
    except ValueError:
        raise InvalidIndicator(_IP_INVALID) from None
    given = s.partition("/")[0]
    if given != str(network.network_address):
        try:
            if ipaddress.ip_address(given) != network.network_address:
                notes = (NOTE_HOST_BITS,)
        except ValueError:
            pass
    if isinstance(network, ipaddress.IPv6Network):
        mapped = network.network_address.ipv4_mapped
        if mapped is not None and network.prefixlen >= 96:
            network = ipaddress.IPv4Network((mapped, network.prefixlen - 96))
            notes = (*notes, NOTE_IPV4_MAPPED)
    if network.prefixlen == network.max_prefixlen:
        return Indicator(IndicatorKind.IP_ADDRESS, str(network.network_address), notes)
    return Indicator(IndicatorKind.IP_ADDRESS, str(network), notes)


_V4_MASKS = [(0xFFFFFFFF << (32 - n)) & 0xFFFFFFFF for n in range(33)]
_V6_ONES = (1 << 128) - 1


def _ip_lookup_keys(value: str, lengths: Sequence[int] | None = None) -> list[str]:
    address_text, slash, length_text = value.partition("/")
    try:
        address = ipaddress.ip_address(address_text)
        prefixlen = int(length_text) if slash else address.max_prefixlen
    except ValueError:
        return [value]
    if not 0 <= prefixlen <= address.max_prefixlen:
        return [value]
    keys = [value]
    base = int(address)
    floor = _IP_FLOOR[address.version]
    tried = (
        range(prefixlen - 1, floor - 1, -1)
        if lengths is None
        else [n for n in lengths if floor <= n < prefixlen]
    )
    if address.version == 4:
        for length in tried:
            m = base & _V4_MASKS[length]
            keys.append(f"{m >> 24}.{(m >> 16) & 255}.{(m >> 8) & 255}.{m & 255}/{length}")
        return keys
    texts: dict[int, str] = {}  # most masks give the same network address: format each once
    for length in tried:
        m = base & (_V6_ONES ^ ((1 << (128 - length)) - 1))
        text = texts.get(m)
        if text is None:
            text = texts[m] = _ipv6_text(m)
        keys.append(f"{text}/{length}")
    return keys


# --------------------------------------------------------------------------------------------
# BANK_ACCOUNT
# --------------------------------------------------------------------------------------------

_ACCOUNT_SEPARATORS = str.maketrans("", "", " \t-\u2010\u2011\u2012\u2013\u2014\u2212")


def luhn_valid(digits: str) -> bool:
    """Whether an ASCII digit string passes the Luhn (mod 10) check; False for non-digits."""
    if not digits or not (digits.isascii() and digits.isdigit()):
        return False
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = ord(ch) - 48
        if i & 1:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return total % 10 == 0


def _normalize_bank_account(s: str) -> Indicator:
    digits = s.translate(_ACCOUNT_SEPARATORS)
    if not (digits.isascii() and digits.isdigit()) or not 8 <= len(digits) <= 30:
        raise InvalidIndicator(_BANK_INVALID)
    notes: tuple[str, ...] = ()
    if 13 <= len(digits) <= 19 and not luhn_valid(digits):
        notes = (NOTE_LUHN_FAILED,)
    return Indicator(IndicatorKind.BANK_ACCOUNT, digits, notes)


# --------------------------------------------------------------------------------------------
# PAYMENT_ACCOUNT
# --------------------------------------------------------------------------------------------

_PAYMENT_PROVIDERS = {
    "alipay": "alipay",
    "支付宝": "alipay",
    "wechatpay": "wechat_pay",
    "微信支付": "wechat_pay",
}
_PROVIDER_SEPARATORS = str.maketrans("", "", " _-")
_PAYMENT_ID = re.compile(r"[A-Za-z0-9_.@+\-]{1,64}")
_EMAIL = re.compile(r"[a-z0-9_.+\-]+@[a-z0-9\-]+(?:\.[a-z0-9\-]+)+")


def _normalize_payment(s: str) -> Indicator:
    provider_text, colon, ident = s.partition(":")
    if not colon:
        raise InvalidIndicator("payment account needs a provider: alipay:<id> or wechat_pay:<id>")
    provider = _PAYMENT_PROVIDERS.get(provider_text.translate(_PROVIDER_SEPARATORS).lower())
    if provider is None:
        raise InvalidIndicator("unknown payment provider")
    ident = ident.strip()
    if not ident:
        raise InvalidIndicator(_PAYMENT_INVALID)
    phone = _phone_like(ident)
    if phone is not None:
        return Indicator(IndicatorKind.PAYMENT_ACCOUNT, f"{provider}:{phone}")
    if "@" in ident:  # an e-mail address (or something like one): case-insensitive
        ident = ident.lower()
        if len(ident) <= 254 and _EMAIL.fullmatch(ident) is not None:
            return Indicator(IndicatorKind.PAYMENT_ACCOUNT, f"{provider}:{ident}")
    if _PAYMENT_ID.fullmatch(ident) is None:
        raise InvalidIndicator(_PAYMENT_INVALID)
    return Indicator(IndicatorKind.PAYMENT_ACCOUNT, f"{provider}:{ident}")


# --------------------------------------------------------------------------------------------
# QQ_NUMBER, WECHAT_ID
# --------------------------------------------------------------------------------------------

_QQ = re.compile(r"[1-9][0-9]{4,10}")
_WECHAT = re.compile(r"[a-z][a-z0-9_\-]{5,19}")


def _normalize_qq(s: str) -> Indicator:
    digits = "".join(s.split())
    if not digits.isascii() or _QQ.fullmatch(digits) is None:
        raise InvalidIndicator(_QQ_INVALID)
    return Indicator(IndicatorKind.QQ_NUMBER, digits)


def _normalize_wechat(s: str) -> Indicator:
    phone = _phone_like(s)
    if phone is not None:
        return Indicator(IndicatorKind.WECHAT_ID, phone)
    value = s.lower()
    if not value.isascii() or _WECHAT.fullmatch(value) is None:
        raise InvalidIndicator(_WECHAT_INVALID)
    return Indicator(IndicatorKind.WECHAT_ID, value)


# --------------------------------------------------------------------------------------------
# APP
# --------------------------------------------------------------------------------------------

_PACKAGE = re.compile(r"[a-z][a-z0-9_]*(?:\.[a-z][a-z0-9_]*)+")
_CERT_SEPARATORS = str.maketrans("", "", ": ")
_SHA256_HEX = re.compile(r"[0-9a-f]{64}")


def _normalize_app(s: str) -> Indicator:
    package, hash_sign, cert = s.partition("#")
    package = package.strip().lower()
    if not package.isascii() or _PACKAGE.fullmatch(package) is None:
        raise InvalidIndicator(_APP_INVALID)
    if not hash_sign:
        return Indicator(IndicatorKind.APP, package)
    cert = cert.translate(_CERT_SEPARATORS).lower()
    if not cert.isascii() or _SHA256_HEX.fullmatch(cert) is None:
        raise InvalidIndicator(_APP_INVALID)
    return Indicator(IndicatorKind.APP, f"{package}#{cert}")


# --------------------------------------------------------------------------------------------
# Public functions
# --------------------------------------------------------------------------------------------


def _normalize_phone_raw(raw: str) -> Indicator:
    fast = _cn_mobile_fast(raw)  # the hot path: an already clean Chinese mobile number
    if fast is not None:
        return Indicator(IndicatorKind.PHONE_NUMBER, fast)
    return _normalize_phone(_prepare(raw))


def _raw(fn: Callable[[str], Indicator]) -> Callable[[str], Indicator]:
    """``fn`` of a prepared string as a function of the raw string."""
    return lambda raw: fn(_prepare(raw))


# Per kind: raw string -> Indicator, memoised (size, longest input cached).
_NORMALIZERS: dict[int, Callable[[str], Indicator]] = {
    IndicatorKind.PHONE_NUMBER: _memoize(_normalize_phone_raw, 65536, 40),
    IndicatorKind.SMS_SENDER: _memoize(_raw(_normalize_sms_sender), 16384, 64),
    IndicatorKind.URL: _memoize(lambda raw: _normalize_url(_prepare_url(raw)), 8192, 512),
    IndicatorKind.DOMAIN: _memoize(_raw(_normalize_domain), 16384, 256),
    IndicatorKind.IP_ADDRESS: _memoize(_raw(_normalize_ip), 16384, 64),
    IndicatorKind.BANK_ACCOUNT: _memoize(_raw(_normalize_bank_account), 16384, 64),
    IndicatorKind.PAYMENT_ACCOUNT: _memoize(_raw(_normalize_payment), 16384, 128),
    IndicatorKind.QQ_NUMBER: _memoize(_raw(_normalize_qq), 16384, 32),
    IndicatorKind.WECHAT_ID: _memoize(_raw(_normalize_wechat), 16384, 32),
    IndicatorKind.APP: _memoize(_raw(_normalize_app), 16384, 256),
}


def normalize(kind: IndicatorKind, raw: str) -> Indicator:
    """The canonical :class:`Indicator` for ``raw`` of ``kind``.

    Raises :class:`InvalidIndicator` (and nothing else) for any input that is not a valid
    indicator of that kind, including an unspecified or unknown kind (a plain ``int`` with a
    kind's number is accepted, as protobuf enums are ints). Results are memoised per kind, so
    repeated values cost a cache look-up.
    """
    try:
        normalizer = _NORMALIZERS.get(kind)
    except TypeError:  # unhashable
        normalizer = None
    if normalizer is None:
        raise InvalidIndicator("unsupported indicator kind")
    if type(raw) is not str:
        if not isinstance(raw, str):
            raise InvalidIndicator("value must be a string")
        raw = str.__str__(raw)  # a plain str: subclasses may override hashing or equality
    try:
        return normalizer(raw)
    except InvalidIndicator:
        raise
    except (ValueError, TypeError, OverflowError) as exc:  # a safety net: never leak others
        raise InvalidIndicator(f"not a valid value for {_kind_name(kind)}") from exc


def _kind_name(kind: object) -> str:
    try:
        return IndicatorKind(kind).name  # type: ignore[call-overload,arg-type]
    except (ValueError, TypeError):
        return "unknown kind"


def ip_lookup_keys(value: str, lengths: Sequence[int]) -> list[str]:
    """``lookup_keys`` of a normalised IP address or range, trying only the containing
    networks of ``lengths`` (longest first): a matcher that knows which prefix lengths are
    listed skips the rest, which could never match."""
    return _ip_lookup_keys(value, lengths)


def lookup_keys(indicator: Indicator) -> list[str]:
    """Canonical values under which a listed entry would match this indicator, most specific
    first.

    URL: Safe Browsing host-suffix x path-prefix expressions (port-ful hosts before port-less
    ones). DOMAIN: the domain and its parents down to two labels. IP_ADDRESS: the address or
    range, then every containing network down to /8 (IPv4) or /16 (IPv6). APP: ``pkg#cert``
    then ``pkg``. Other kinds: the value itself.
    """
    kind, value = indicator.kind, indicator.value
    if kind == IndicatorKind.URL:
        return _url_lookup_keys(value)
    if kind == IndicatorKind.DOMAIN:
        return _domain_lookup_keys(value)
    if kind == IndicatorKind.IP_ADDRESS:
        return _ip_lookup_keys(value)
    if kind == IndicatorKind.APP:
        package, hash_sign, _ = value.partition("#")
        return [value, package] if hash_sign else [value]
    return [value]


MAX_DISPLAY = 64


def _mask_phone(value: str) -> str:
    """``+8613800138000`` -> ``+86138****8000``; short codes are public and stay."""
    if not value.startswith("+"):
        return value
    if len(value) >= 11:
        return value[:6] + "*" * (len(value) - 10) + value[-4:]
    return value[:3] + "*" * max(len(value) - 5, 1) + value[-2:]


def _mask_digits(value: str) -> str:
    """``6222021234561234`` -> ``6222********1234``."""
    if len(value) >= 12:
        return value[:4] + "*" * (len(value) - 8) + value[-4:]
    return value[:2] + "*" * max(len(value) - 4, 1) + value[-2:]


def _mask_email(value: str) -> str:
    local, _, domain = value.partition("@")
    return f"{local[:1]}***@{domain}"


def display(indicator: Indicator) -> str:
    """A masked form that is safe to log or show.

    Phone numbers (also as SMS senders, WeChat ids and payment ids) keep the country code, the
    first three national digits and the last four (``+86138****8000``); bank accounts the first
    and last four digits (``6222********1234``); e-mail payment ids the first character and the
    domain. Everything is cut to 64 characters (ending in ``...`` when cut).
    """
    kind, value = indicator.kind, indicator.value
    if kind in (IndicatorKind.PHONE_NUMBER, IndicatorKind.SMS_SENDER, IndicatorKind.WECHAT_ID):
        shown = _mask_phone(value)
    elif kind == IndicatorKind.BANK_ACCOUNT:
        shown = _mask_digits(value)
    elif kind == IndicatorKind.PAYMENT_ACCOUNT:
        provider, colon, ident = value.partition(":")
        if ident.startswith("+"):
            ident = _mask_phone(ident)
        elif "@" in ident:
            ident = _mask_email(ident)
        shown = provider + colon + ident
    else:
        shown = value
    if len(shown) > MAX_DISPLAY:
        shown = shown[: MAX_DISPLAY - 3] + "..."
    return shown


# --------------------------------------------------------------------------------------------
# Listing guards: what may be put on a list so that it matches, and only what it should
# --------------------------------------------------------------------------------------------

#: The deepest path prefix (directories below ``/``) a URL look-up tries, as Safe Browsing does.
MAX_URL_PREFIX_DIRECTORIES = 3
MIN_IPV4_PREFIX = _IP_FLOOR[4]
MIN_IPV6_PREFIX = _IP_FLOOR[6]

# The Public Suffix List as the package ships it (never fetched); unknown top-level labels count
# as public suffixes, so `example` is one and `phish.example` is not.
_PSL = PublicSuffixList(accept_unknown=True)


def _public_suffix(host: str) -> bool:
    return bool(_PSL.is_public(host))


def listing_problem(indicator: Indicator) -> str | None:
    """Why a normalised indicator cannot be put on a list, naming the limit; None when it can.

    * DOMAIN: a public suffix (``com.cn``, ``github.io``, by the Public Suffix List) would brand
      every site registered under it.
    * URL: likewise a URL whose host is a public suffix; and a path prefix (a path ending in
      ``/``) deeper than 3 directories, which look-ups never try (Safe Browsing's limit), so it
      would match only itself, never what lies under it.
    * IP_ADDRESS: a range wider than /8 (IPv4) or /16 (IPv6), which look-ups never try.
    """
    kind, value = indicator.kind, indicator.value
    if kind == IndicatorKind.DOMAIN:
        if _public_suffix(value):
            return f"{value} is a public suffix (Public Suffix List): list a domain under it"
        return None
    if kind == IndicatorKind.URL:
        hostport, _, rest = value.partition("/")
        path = "/" + rest.partition("?")[0]
        if not hostport.startswith("["):
            host = hostport.rsplit(":", 1)[0] if ":" in hostport else hostport
            if _DOTTED_QUAD.fullmatch(host) is None and _public_suffix(host):
                return f"the host {host} is a public suffix (Public Suffix List)"
        if "?" not in rest and path.endswith("/"):
            depth = path.count("/") - 1
            if depth > MAX_URL_PREFIX_DIRECTORIES:
                return (
                    f"a path prefix may be at most {MAX_URL_PREFIX_DIRECTORIES} directories "
                    f"deep (this one is {depth}): look-ups try no deeper prefix"
                )
        return None
    if kind == IndicatorKind.IP_ADDRESS and "/" in value:
        address, _, length = value.partition("/")
        floor = MIN_IPV6_PREFIX if ":" in address else MIN_IPV4_PREFIX
        if int(length) < floor:
            version = 6 if ":" in address else 4
            return f"an IPv{version} range may be at most /{floor} wide: look-ups try no wider"
    return None


# --------------------------------------------------------------------------------------------
# Look-alike domains
# --------------------------------------------------------------------------------------------

# Digits and letters that pass for one another in a domain (`app1e`, `g00gle`, `paypa1`).
_DIGIT_LETTER = str.maketrans({"0": "o", "1": "l", "i": "l", "3": "e", "5": "s", "8": "b"})


@functools.lru_cache(maxsize=1)
def _confusables() -> dict[str, str]:
    """Characters of other scripts that look like a Latin letter or digit, mapped to it (from
    the Unicode confusables data shipped with ``confusable_homoglyphs``)."""
    import json
    from importlib import resources

    data = json.loads(
        resources.files("confusable_homoglyphs").joinpath("confusables.json").read_text("utf-8")
    )
    found: dict[str, str] = {}
    for char, glyphs in data.items():
        if len(char) != 1 or char.isascii():
            continue
        for glyph in glyphs:
            c = glyph["c"]
            if len(c) == 1 and c.isascii() and c.isalnum():
                found[char] = c.lower()
                break
    return found


def _unicode_labels(domain: str) -> list[str]:
    labels = []
    for label in domain.split("."):
        if label.startswith("xn--"):
            with contextlib.suppress(UnicodeError):
                label = label[4:].encode("ascii").decode("punycode")
        labels.append(label)
    return labels


@functools.lru_cache(maxsize=65536)
def lookalike_skeleton(domain: str) -> str:
    """What a domain (canonical, IDNA) looks like to a reader: other scripts' look-alike
    characters as the Latin ones (Cyrillic ``а`` -> ``a``), then digits and letters that pass
    for each other made one (``1``/``i``/``l``, ``0``/``o``, ...). Two domains with the same
    skeleton look alike."""
    confusables = _confusables()
    text = ".".join(_unicode_labels(domain)).lower()
    text = "".join(confusables.get(ch, ch) for ch in text)
    return text.translate(_DIGIT_LETTER)


def mixed_script(domain: str) -> bool:
    """Whether a label of the domain mixes letters of two scripts (Latin with Cyrillic, ...)."""
    for label in _unicode_labels(domain):
        if label.isascii():
            continue
        scripts = {_scripts.alias(ch) for ch in label if ch.isalpha()} - {"COMMON", "INHERITED"}
        if len(scripts) > 1:
            return True
    return False
