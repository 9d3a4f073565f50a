"""Personal names as partners compare and show them.

Two spellings of one name compare equal when they differ only in width (full-width
letters), case, spaces or the separating dot of minority and foreign names
(``阿卜杜·热合曼`` = ``阿卜杜热合曼``).
"""

from __future__ import annotations

import unicodedata

_SEPARATORS = str.maketrans("", "", " \t\u3000·•・.\u2027\u30fb")


def comparison_form(name: str) -> str:
    """The form in which two names are compared."""
    return unicodedata.normalize("NFKC", name).casefold().translate(_SEPARATORS)


def same_name(a: str, b: str) -> bool:
    return comparison_form(a) == comparison_form(b)


def mask_name(name: str) -> str:
    """All but the first character masked: ``张三丰`` -> ``张**`` (as MaskedIdentity shows it)."""
    name = name.strip()
    if not name:
        return ""
    return name[0] + "*" * max(len(name) - 1, 1)


def mask_account_name(name: str) -> str:
    """First and last character kept: ``zhangsan88`` -> ``z***8``; two characters -> ``z*``."""
    name = name.strip()
    if len(name) <= 1:
        return "*"
    if len(name) == 2:
        return name[0] + "*"
    return name[0] + "***" + name[-1]
