"""Personal names as they are compared and shown, by the identity service and the
bank simulators alike, so a confirmation of payee does not depend on who answered.

Two spellings of one name compare equal when they differ only in width (full-width
letters), case, spaces or the separators of minority and foreign names
(``阿卜杜·热合曼`` = ``阿卜杜热合曼``).

Confirmation of payee: a payer warned of a different name is about to pay a stranger,
often a fraudster's mule account. Typing slips are common (a homophone picked from the
input method, a character left out), so a name that is almost right is a CLOSE_MATCH,
and the masked holder name lets the payer decide. A Han name is a surname (one
character, or a compound surname such as 欧阳, 司马, 诸葛: ``COMPOUND_SURNAMES``) and a
given name, compared separately: a mule account's holder differs from the expected
payee by the surname far more often than by a slip, so the surname must be exact.

* MATCH: the same comparison form.
* CLOSE_MATCH: the same surname, and a given name with exactly one character
  different, or with exactly one character missing that is not its last.
  Names that are not all Han characters (minority names with separators, Latin
  names) have no surname split: the same length with exactly one character
  different that is not the first, or one character missing that is neither the
  first nor the last.
* NO_MATCH: anything else (also an empty name, and always a different surname).
"""

from __future__ import annotations

import enum
import unicodedata

_SEPARATORS = frozenset(" \t\u3000·•・.\u2027\u30fb-'’")


class NameMatch(enum.IntEnum):
    """Numbers match antifraud.identity.v1.PayeeMatch and antifraud.partner.v1.PayeeNameMatch."""

    MATCH = 1
    CLOSE_MATCH = 2
    NO_MATCH = 3


def comparison_form(name: str) -> str:
    folded = unicodedata.normalize("NFKC", name).casefold()
    return "".join(ch for ch in folded if not ch.isspace() and ch not in _SEPARATORS)


def same_name(a: str, b: str) -> bool:
    return comparison_form(a) == comparison_form(b)


#: Two-character (复姓) surnames: the first two characters of a Han name that starts with
#: one of these (and is longer than two characters) are its surname.
COMPOUND_SURNAMES = frozenset(
    [
        "欧阳",
        "司马",
        "诸葛",
        "上官",
        "东方",
        "皇甫",
        "尉迟",
        "公孙",
        "慕容",
        "长孙",
        "宇文",
        "司徒",
        "令狐",
        "夏侯",
        "轩辕",
        "端木",
        "独孤",
        "南宫",
        "西门",
        "百里",
        "呼延",
        "万俟",
        "澹台",
        "公冶",
        "太史",
        "申屠",
        "闻人",
        "仲孙",
        "钟离",
        "宗政",
        "濮阳",
        "淳于",
        "单于",
        "太叔",
        "赫连",
        "拓跋",
        "第五",
        "梁丘",
        "左丘",
        "东郭",
        "谷梁",
        "亓官",
        "司空",
        "司寇",
        "漆雕",
        "乐正",
        "壤驷",
        "公良",
        "巫马",
        "颛孙",
        "羊舌",
        "微生",
        "公西",
        "鲜于",
        "闾丘",
        "子车",
        "段干",
        "东门",
        "公羊",
        "即墨",
        "欧侯",
        "哥舒",
        "呼衍",
    ]
)


def _is_han(ch: str) -> bool:
    return "\u4e00" <= ch <= "\u9fff" or "\u3400" <= ch <= "\u4dbf" or ch >= "\U00020000"


def split_han_name(form: str) -> tuple[str, str] | None:
    """(surname, given name) of a Han name in comparison form; None for other names."""
    if len(form) < 2 or not all(_is_han(ch) for ch in form):
        return None
    if len(form) > 2 and form[:2] in COMPOUND_SURNAMES:
        return form[:2], form[2:]
    return form[:1], form[1:]


def _one_substitution(typed: str, holder: str, *, from_index: int) -> bool:
    if len(typed) != len(holder) or not holder:
        return False
    diffs = [i for i, (a, b) in enumerate(zip(typed, holder, strict=True)) if a != b]
    return len(diffs) == 1 and diffs[0] >= from_index


def _one_missing(typed: str, holder: str, *, first: int) -> bool:
    """``typed`` is ``holder`` without one character from ``first`` on, never its last."""
    if len(typed) != len(holder) - 1 or not typed:
        return False
    return any(typed == holder[:i] + holder[i + 1 :] for i in range(first, len(holder) - 1))


def compare(typed: str, holder: str) -> NameMatch:
    """Confirmation of payee for a typed name against the holder's name."""
    a, b = comparison_form(typed), comparison_form(holder)
    if not a or not b:
        return NameMatch.NO_MATCH
    if a == b:
        return NameMatch.MATCH
    typed_parts, holder_parts = split_han_name(a), split_han_name(b)
    if typed_parts is not None and holder_parts is not None:
        (typed_surname, typed_given), (holder_surname, holder_given) = typed_parts, holder_parts
        if typed_surname != holder_surname:
            return NameMatch.NO_MATCH
        close = _one_substitution(typed_given, holder_given, from_index=0) or _one_missing(
            typed_given, holder_given, first=0
        )
        return NameMatch.CLOSE_MATCH if close else NameMatch.NO_MATCH
    if len(b) >= 2 and _one_substitution(a, b, from_index=1):
        return NameMatch.CLOSE_MATCH
    if len(b) >= 3 and _one_missing(a, b, first=1):
        return NameMatch.CLOSE_MATCH
    return NameMatch.NO_MATCH


def mask_name(name: str) -> str:
    """All but the first character masked: ``张三`` → ``张*``, ``阿沛·阿旺晋美`` → ``阿******``."""
    chars = [ch for ch in name if not ch.isspace()]
    if not chars:
        return ""
    return chars[0] + "*" * max(len(chars) - 1, 1)
