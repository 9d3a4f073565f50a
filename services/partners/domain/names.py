"""Names as partners show them; comparison and the person-name mask live in
``services.common.names`` (one rule for the identity service and the banks)."""

from __future__ import annotations

from services.common.names import mask_name, same_name

__all__ = ["mask_account_name", "mask_name", "same_name"]


def mask_account_name(name: str) -> str:
    """First and last character kept: ``zhangsan88`` -> ``z***8``; two characters -> ``z*``."""
    name = name.strip()
    if len(name) <= 1:
        return "*"
    if len(name) == 2:
        return name[0] + "*"
    return name[0] + "***" + name[-1]
