"""Who may call which IdentityService method (deny by default; admin everywhere).

Roles are callers the gateway vouches for; services are the suite's own, by name.
"""

from __future__ import annotations

from services.common.auth import Callers, roles, services, table
from services.common.principals import Role

_CITIZEN = roles(Role.CITIZEN)

POLICY: dict[str, Callers] = table(
    "antifraud.identity.v1.IdentityService",
    {
        "RegisterUser": _CITIZEN,
        "GetUser": _CITIZEN,
        # Report intake finds the user an announced police call is for.
        "FindUserByPhone": services("report"),
        "CreateVerificationRequest": _CITIZEN,
        "GetVerificationRequest": _CITIZEN,
        "ListIncomingVerificationRequests": _CITIZEN,
        "RespondToVerificationRequest": _CITIZEN,
        "BlockRequester": _CITIZEN,
        "UnblockRequester": _CITIZEN,
        "BindAccount": _CITIZEN,
        "VerifyAccount": roles(Role.CITIZEN, Role.CARRIER, Role.BANK, Role.ANALYST),
        "CheckPayee": roles(Role.BANK),
        "CountPhoneCards": _CITIZEN,
        "ListLinkedAccounts": _CITIZEN,
        "ListBankCards": _CITIZEN,
        "ListAuditEvents": roles(Role.ANALYST),
    },
)
