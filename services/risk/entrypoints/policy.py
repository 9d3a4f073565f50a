"""Who may call which RiskService method (deny by default; admin everywhere).

Roles are callers the gateway vouches for; services are the suite's own, by name.
"""

from __future__ import annotations

from services.common.auth import Callers, roles, services, table
from services.common.principals import Role

_CHECKERS = roles(Role.CITIZEN, Role.CARRIER, Role.BANK, Role.ANALYST)
_PARTNERS_OR_ANALYST = roles(Role.CARRIER, Role.BANK, Role.ANALYST)
_ANALYST = roles(Role.ANALYST)

POLICY: dict[str, Callers] = table(
    "antifraud.risk.v1.RiskService",
    {
        # Identity checks a bound account against the list.
        "CheckIndicator": _CHECKERS | services("identity"),
        # Warning dispatch screens calls for carriers.
        "BatchCheckIndicators": _CHECKERS | services("warning"),
        "StreamCheckIndicators": _PARTNERS_OR_ANALYST,
        "GetIndicator": _ANALYST,
        "ListIndicators": _ANALYST,
        # Report intake promotes corroborated indicators and case payees, and withdraws them.
        "UpsertIndicator": _ANALYST | services("report"),
        "RetireIndicator": _ANALYST | services("report"),
        "AddIndicatorSighting": _PARTNERS_OR_ANALYST,
        "ImportIndicators": _ANALYST,
        # Warning dispatch follows the feed for the 12381 fan-out.
        "WatchIndicatorChanges": _PARTNERS_OR_ANALYST | services("warning"),
    },
)
