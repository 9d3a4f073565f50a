"""Who may call which RiskService method (deny by default; admin everywhere).

Roles are callers the gateway vouches for; services are the suite's own, by name.
"""

from __future__ import annotations

from services.common.auth import Callers, roles, services, table
from services.common.indicators import IndicatorKind
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
        # Local copies: a partner downloads and follows the kinds LIST_KINDS gives its role.
        "DownloadRiskList": _PARTNERS_OR_ANALYST,
        "ComputeRiskListDiff": _PARTNERS_OR_ANALYST,
        # Private look-ups: the app checks without telling which value.
        "SearchHashPrefixes": _CHECKERS,
    },
)

_EVERY_KIND = frozenset(kind for kind in IndicatorKind if kind)
_K = IndicatorKind
#: Which kinds of the list each role may hold in a local copy (DownloadRiskList,
#: ComputeRiskListDiff); a role not named holds none. Carriers screen calls, SMS and the
#: links in them; banks screen payees, the sites and the apps payments come from.
LIST_KINDS: dict[Role, frozenset[IndicatorKind]] = {
    Role.CARRIER: frozenset({_K.PHONE_NUMBER, _K.SMS_SENDER, _K.URL, _K.DOMAIN, _K.IP_ADDRESS}),
    Role.BANK: frozenset(
        {_K.BANK_ACCOUNT, _K.PAYMENT_ACCOUNT, _K.URL, _K.DOMAIN, _K.IP_ADDRESS, _K.APP}
    ),
    Role.ANALYST: _EVERY_KIND,
    Role.ADMIN: _EVERY_KIND,
}
