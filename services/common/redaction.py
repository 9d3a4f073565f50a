"""Personal details in free text: masked on the way in (:func:`mask_identifiers`), and
removed from a victim's account before it becomes a story (:func:`redact`).

:func:`mask_identifiers` is what every service applies to free text it stores and
shows (report and case descriptions, evidence, analysts' notes): ID numbers, bank
cards, phone numbers, other long numbers and names introduced by a cue are replaced by
their masked forms (``110105**********2X``, ``6222********1234``, ``+86138****8000``,
``王*``), and the identifiers found are returned normalised, so the caller can keep the
original sealed and the identifiers as fields of their own.

:func:`redact` makes two passes. First every value the case itself names (payee accounts, suspect
numbers, URLs, ids) is removed wherever it occurs, however it is spaced or
prefixed, so nothing the case holds can survive. Then shapes: e-mail addresses,
URLs and domains, social accounts after their keyword, amounts (rounded, not
removed), dates (cut to the month), ID numbers, phone numbers, long digit runs,
mixed letter-digit handles, and names by the way Chinese text introduces them
(我叫..., 自称..., 王警官, 小李). Names without such a cue cannot be told from other words: the
result is a draft that an analyst reads before publishing.
"""

from __future__ import annotations

import enum
import re
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

from services.common.indicators import (
    Indicator,
    IndicatorKind,
    InvalidIndicator,
    display,
    luhn_valid,
    normalize,
)
from services.common.names import mask_name
from services.common.resident_id import checksum_valid
from services.common.resident_id import mask as mask_id_number


class RedactionKind(enum.IntEnum):
    UNSPECIFIED = 0
    NAME = 1
    PHONE_NUMBER = 2
    ID_NUMBER = 3
    ACCOUNT_NUMBER = 4
    URL = 5
    EMAIL = 6
    SOCIAL_ACCOUNT = 7
    OTHER_NUMBER = 8
    AMOUNT = 9
    DATE = 10


PLACEHOLDER: dict[RedactionKind, str] = {
    RedactionKind.PHONE_NUMBER: "【电话号码】",
    RedactionKind.ID_NUMBER: "【身份证号】",
    RedactionKind.ACCOUNT_NUMBER: "【账号】",
    RedactionKind.URL: "【网址】",
    RedactionKind.EMAIL: "【邮箱】",
    RedactionKind.SOCIAL_ACCOUNT: "【社交账号】",
    RedactionKind.OTHER_NUMBER: "【号码】",
}

_KIND_OF_INDICATOR: dict[IndicatorKind, RedactionKind] = {
    IndicatorKind.PHONE_NUMBER: RedactionKind.PHONE_NUMBER,
    IndicatorKind.SMS_SENDER: RedactionKind.PHONE_NUMBER,
    IndicatorKind.URL: RedactionKind.URL,
    IndicatorKind.DOMAIN: RedactionKind.URL,
    IndicatorKind.IP_ADDRESS: RedactionKind.URL,
    IndicatorKind.BANK_ACCOUNT: RedactionKind.ACCOUNT_NUMBER,
    IndicatorKind.PAYMENT_ACCOUNT: RedactionKind.ACCOUNT_NUMBER,
    IndicatorKind.QQ_NUMBER: RedactionKind.SOCIAL_ACCOUNT,
    IndicatorKind.WECHAT_ID: RedactionKind.SOCIAL_ACCOUNT,
    IndicatorKind.APP: RedactionKind.SOCIAL_ACCOUNT,
}

#: Between the digits of one number people write spaces and dashes.
_SEP = r"[ \-\u00a0\u2010-\u2015]?"
#: The characters a URL is made of (ASCII only: Chinese text right after a link is not part of it).
_URL_CHARS = r"[A-Za-z0-9\-._~:/?#\[\]@!$&'()*+,;=%]"
#: Common surnames. Characters that are far more often ordinary words (方, 于, 向, 万, 任,
#: 付, 余...) are left out: "对方经理" must not become "对某经理".
_SURNAMES = (
    "王李张刘陈杨黄赵吴周徐孙朱胡郭何林罗郑梁谢宋唐许韩冯邓曹彭曾萧肖田董袁潘蒋蔡杜叶魏苏吕"
    "丁沈姚卢姜崔钟谭陆汪廖贾夏韦邹孟熊秦邱尹薛闫段雷侯龙陶黎贺顾毛郝龚邵钱严覃戴莫孔汤殷"
    "马高金程"
)
#: Characters that end a name: particles, verbs and pronouns that follow one.
_NOT_IN_NAME = (
    "的了在是给和与跟向对把被让叫说上下来去到从就也都还又很这那个们我你他她它有要会为以及并"
)
_GIVEN = rf"(?:(?![{_NOT_IN_NAME}])[\u4e00-\u9fff])"
_ROLES = (
    "警官|警察|民警|探长|队长|所长|局长|科长|处长|主任|法官|检察官|书记|经理|总监|主管|老师|教授"
    "|医生|律师|会计|先生|女士|小姐|同学|师傅|阿姨|叔叔|大爷|大妈|老板"
)
_INTRODUCTIONS = (
    "我叫|名叫|叫做|我是|自称是|自称|化名|名字是|名字叫|姓名[:：]?|联系人[:：]?|收款人[:：]?|户名[:：]?"
    "|叫"
)


@dataclass(frozen=True, slots=True)
class Redacted:
    text: str
    counts: dict[RedactionKind, int]


# --- values the case names ---------------------------------------------------------------------


def _digit_pattern(digits: str) -> str:
    """The digits with any single separator between them, e.g. ``138 0013-8000``."""
    return _SEP.join(re.escape(d) for d in digits)


def _digit_forms(indicator: Indicator) -> list[str]:
    """The digit strings a numeric value may be written as (E.164 without and with 86)."""
    value = indicator.value
    if indicator.kind is IndicatorKind.PAYMENT_ACCOUNT:
        value = value.partition(":")[2]
    if indicator.kind is IndicatorKind.WECHAT_ID and not value.startswith("+"):
        return []
    digits = re.sub(r"\D", "", value)
    if len(digits) < 5 or not re.fullmatch(r"\+?[\d ()\-]+", value):
        return []
    forms = [digits]
    if value.startswith("+86"):
        forms.insert(0, digits[2:])
    return forms


def _literal_forms(indicator: Indicator) -> list[str]:
    """The text forms of a non-numeric value: an account id, a host, a package name."""
    value = indicator.value
    kind = indicator.kind
    if kind is IndicatorKind.PAYMENT_ACCOUNT:
        value = value.partition(":")[2]
    elif kind in (IndicatorKind.URL, IndicatorKind.DOMAIN):
        value = value.split("/", 1)[0]
        value = value.rsplit(":", 1)[0] if value.count(":") == 1 else value  # drop a port
    elif kind is IndicatorKind.IP_ADDRESS:
        value = value.split("/")[0]
    elif kind is IndicatorKind.APP:
        value = value.split("#")[0]
    if _digit_forms(indicator) or len(value) < 4:
        return []
    return [value]


def known_patterns(indicator: Indicator) -> list[re.Pattern[str]]:
    """Patterns that find the value however it is written in free text."""
    country = r"(?:\+?86" + _SEP + ")?"
    found = [re.compile(country + _digit_pattern(f)) for f in _digit_forms(indicator)]
    for literal in _literal_forms(indicator):
        escaped = re.escape(literal)
        if indicator.kind in (IndicatorKind.URL, IndicatorKind.DOMAIN):
            # The whole link: scheme, www., the host, and its port and path.
            escaped = rf"(?:https?://)?(?:www\.)?{escaped}(?:[:/]{_URL_CHARS}*)?"
        found.append(re.compile(escaped, re.IGNORECASE))
    return found


def leaks(text: str, known: Iterable[Indicator]) -> list[Indicator]:
    """The values of ``known`` that can still be found in ``text``."""
    return [i for i in known if any(p.search(text) for p in known_patterns(i))]


# --- shapes ------------------------------------------------------------------------------------

_EMAIL = re.compile(r"[A-Za-z0-9._%+\-]+@[A-Za-z0-9\-]+(?:\.[A-Za-z0-9\-]+)+")
_URL = re.compile(rf"(?:https?://|www\.){_URL_CHARS}+", re.IGNORECASE)
_DOMAIN = re.compile(
    rf"(?<![A-Za-z0-9\-.@])(?:[a-z0-9](?:[a-z0-9\-]{{0,61}}[a-z0-9])?\.)+[a-z]{{2,10}}"
    rf"(?::\d+)?(?:/{_URL_CHARS}*)?(?![A-Za-z0-9\-])",
    re.IGNORECASE,
)
_SOCIAL = re.compile(
    r"(?P<key>微信号?|[Vv][Xx]|[Ww][Xx]|QQ号?|[Qq][Qq]号?|支付宝(?:账号|账户)?|抖音号?|钉钉号?"
    r"|Telegram|TG|飞机号?)\s*[:：是为]?\s*(?P<id>[A-Za-z0-9][A-Za-z0-9_\-.]{3,39})"
)
_AMOUNT = re.compile(
    r"(?:约|大约)?(?P<prefix>[¥￥]|人民币|RMB|CNY)?\s*"
    r"(?P<number>\d{1,3}(?:[,，]\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?)\s*"
    r"(?P<unit>万元|万块|万|千元|元|块钱)?"
)
_ID_NUMBER = re.compile(
    r"(?<!\d)\d{6}(?:18|19|20)\d{2}(?:0[1-9]|1[0-2])(?:0[1-9]|[12]\d|3[01])\d{3}[\dXx](?![\dA-Za-z])"
)
_PHONE = re.compile(
    rf"(?<!\d)(?:(?:\+?86{_SEP})?1[3-9]\d(?:{_SEP}\d){{8}}|0\d{{2,3}}{_SEP}\d{{7,8}})(?!\d)"
)
_DIGITS = re.compile(rf"(?<!\d)\d(?:{_SEP}\d){{4,}}(?!\d)")
#: A day of a month: 2026-03-05, 2026/3/5, 2026年3月5日, 3月5日 (号 as well as 日).
_DATE = re.compile(
    r"(?<!\d)(?:(?P<year>\d{4})[\-/.年])?(?P<month>1[0-2]|0?[1-9])[\-/.月]"
    r"(?P<day>3[01]|[12]\d|0?[1-9])(?:日|号)?(?!\d)"
)
#: Five-digit numbers starting 1 or 9 are public service lines (96110, 12381, 95588...).
_SERVICE_NUMBER = re.compile(r"[19]\d{4}")
_HANDLE = re.compile(
    r"(?<![A-Za-z0-9_])(?=[A-Za-z0-9_\-]*\d)(?=[A-Za-z0-9_\-]*[A-Za-z])"
    r"[A-Za-z0-9][A-Za-z0-9_\-]{5,}(?![A-Za-z0-9_])"
)
_NAME_WITH_ROLE = re.compile(rf"[{_SURNAMES}]{_GIVEN}{{0,2}}?(?P<role>{_ROLES})")
_INTRODUCED_NAME = re.compile(rf"(?P<intro>{_INTRODUCTIONS})\s*[{_SURNAMES}]{_GIVEN}{{1,2}}")
_FAMILIAR_NAME = re.compile(
    rf"(?P<prefix>[小老])[{_SURNAMES}](?=[^\u4e00-\u9fff]|[{_NOT_IN_NAME}]|$)"
)


def rounded_amount(yuan: Decimal) -> str:
    """An amount to two significant figures, in 万 from ten thousand on: ``约13万元``."""
    if yuan <= 0:
        return "0元"
    if yuan >= 10_000:
        return f"约{_format(_two_figures(yuan / 10_000))}万元"
    return f"约{_format(_two_figures(yuan))}元"


def _two_figures(value: Decimal) -> Decimal:
    exponent = value.adjusted() - 1
    return value.scaleb(-exponent).quantize(Decimal(1), ROUND_HALF_UP).scaleb(exponent)


def _format(value: Decimal) -> str:
    text = f"{value:f}"
    return text.rstrip("0").rstrip(".") if "." in text else text


_UNIT_YUAN = {"万元": 10_000, "万块": 10_000, "万": 10_000, "千元": 1_000, "元": 1, "块钱": 1}


#: What a rule makes of a match: the replacement and what it removed, or None to keep it.
Rule = Callable[[re.Match[str]], tuple[str, RedactionKind] | None]


class _Pass:
    """One redaction run: applies rules in order and counts what each removed."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.counts: Counter[RedactionKind] = Counter()

    def sub(self, pattern: re.Pattern[str], rule: Rule) -> None:
        def replace(match: re.Match[str]) -> str:
            found = rule(match)
            if found is None:
                return match.group(0)
            self.counts[found[1]] += 1
            return found[0]

        self.text = pattern.sub(replace, self.text)

    def remove(self, pattern: re.Pattern[str], kind: RedactionKind) -> None:
        self.sub(pattern, lambda _m: (PLACEHOLDER[kind], kind))


def _amount(match: re.Match[str]) -> tuple[str, RedactionKind] | None:
    number, unit, prefix = match.group("number"), match.group("unit"), match.group("prefix")
    grouped = "," in number or "，" in number
    if not (unit or prefix or grouped):
        return None  # a bare number: not known to be money (the digit rules look at it)
    yuan = Decimal(number.replace(",", "").replace("，", "")) * _UNIT_YUAN.get(unit or "元", 1)
    return rounded_amount(yuan), RedactionKind.AMOUNT


def _date(match: re.Match[str]) -> tuple[str, RedactionKind] | None:
    raw, year, month = match.group(0), match.group("year"), int(match.group("month"))
    if year is None and "月" not in raw:
        return None  # 3-5 or 3.5 alone is no date
    return (f"{year}年" if year else "") + f"{month}月", RedactionKind.DATE


def _digits(match: re.Match[str]) -> tuple[str, RedactionKind] | None:
    raw = match.group(0)
    if _SERVICE_NUMBER.fullmatch(raw):
        return None
    digits = re.sub(r"\D", "", raw)
    kind = RedactionKind.ACCOUNT_NUMBER if len(digits) >= 12 else RedactionKind.OTHER_NUMBER
    return PLACEHOLDER[kind], kind


def redact(text: str, known: Iterable[Indicator] = ()) -> Redacted:
    """``text`` without personal details, and how many of each kind were removed."""
    run = _Pass(text)
    # Longest first, so a value that contains another is removed whole.
    for indicator in sorted(known, key=lambda i: -len(i.value)):
        kind = _KIND_OF_INDICATOR.get(indicator.kind, RedactionKind.OTHER_NUMBER)
        for pattern in known_patterns(indicator):
            run.remove(pattern, kind)
    run.remove(_EMAIL, RedactionKind.EMAIL)
    run.remove(_URL, RedactionKind.URL)
    run.remove(_DOMAIN, RedactionKind.URL)
    social = RedactionKind.SOCIAL_ACCOUNT
    run.sub(_SOCIAL, lambda m: (m.group("key") + PLACEHOLDER[social], social))
    run.sub(_AMOUNT, _amount)
    run.sub(_DATE, _date)
    run.remove(_ID_NUMBER, RedactionKind.ID_NUMBER)
    run.remove(_PHONE, RedactionKind.PHONE_NUMBER)
    run.sub(_DIGITS, _digits)
    run.remove(_HANDLE, RedactionKind.SOCIAL_ACCOUNT)
    name = RedactionKind.NAME
    run.sub(_NAME_WITH_ROLE, lambda m: ("某" + m.group("role"), name))
    run.sub(_INTRODUCED_NAME, lambda m: (m.group("intro") + "某某", name))
    run.sub(_FAMILIAR_NAME, lambda m: (m.group("prefix") + "某", name))
    return Redacted(run.text, dict(run.counts))


# --- masking on the way in ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Masked:
    """Free text with its identifiers masked, and what was found (normalised)."""

    text: str
    #: ID numbers found (canonical, upper-case X); they are no indicator kind.
    id_numbers: tuple[str, ...] = ()
    #: Phone numbers (E.164) and bank cards (digits) found, as indicators.
    indicators: tuple[Indicator, ...] = ()


#: A run of digits with the separators people type (spaces, dashes), long enough to identify.
_NUMBER_RUN = re.compile(
    rf"(?<![\dA-Za-z])(?:\+?86{_SEP})?\d(?:{_SEP}\d){{6,}}[\dXx]?(?![\dA-Za-z])"
)
_ID_SHAPE = re.compile(r"\d{17}[\dX]")


def _mask_number(raw: str, ids: list[str], found: list[Indicator]) -> str:
    compact = re.sub(r"[^\dXx+]", "", raw).upper()
    digits = compact.lstrip("+")
    if _ID_SHAPE.fullmatch(digits) and (checksum_valid(digits) or _ID_NUMBER.fullmatch(digits)):
        ids.append(digits)
        return mask_id_number(digits)
    if not digits.isdigit():
        digits = digits.rstrip("X")
        if not digits.isdigit():
            return raw
    if 13 <= len(digits) <= 19 and luhn_valid(digits):
        card = Indicator(IndicatorKind.BANK_ACCOUNT, digits)
        found.append(card)
        return display(card)
    if _PHONE.fullmatch(raw.strip()):
        try:
            phone = normalize(IndicatorKind.PHONE_NUMBER, compact)
        except InvalidIndicator:
            phone = None
        if phone is not None:
            found.append(phone)
            return display(phone)
    if len(digits) >= 7:
        # Another long number (an account, a card failing Luhn): its ends only.
        return display(Indicator(IndicatorKind.BANK_ACCOUNT, digits))
    return raw


def _mask_named_role(match: re.Match[str]) -> str:
    """``王芳警官`` → ``王*警官``; a surname alone (``王警官``) names nobody and stays."""
    name = match.group(0)[: match.start("role") - match.start()]
    return (mask_name(name) if len(name) >= 2 else name) + match.group("role")


def mask_identifiers(text: str) -> Masked:
    """``text`` with ID numbers, cards, phone numbers, long numbers and introduced names
    masked. Short numbers (amounts, dates, 96110) are left as they are."""
    if not text:
        return Masked(text)
    ids: list[str] = []
    found: list[Indicator] = []
    masked = _NUMBER_RUN.sub(lambda m: _mask_number(m.group(0), ids, found), text)
    masked = _NAME_WITH_ROLE.sub(_mask_named_role, masked)
    masked = _INTRODUCED_NAME.sub(
        lambda m: m.group("intro") + mask_name(m.group(0)[len(m.group("intro")) :].strip()),
        masked,
    )
    unique = tuple(dict.fromkeys(found))
    return Masked(masked, tuple(dict.fromkeys(ids)), unique)
