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
        # Registration and sign-in come through the gateway's composites, as the install.
        "StartPhoneChallenge": _CITIZEN,
        "RegisterUser": _CITIZEN,
        "SignInUser": _CITIZEN,
        # A guardian's consent, checked when the gateway sets guardians for a citizen.
        "ConfirmPhoneChallenge": _CITIZEN,
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
        "ListBoundAccounts": _CITIZEN,
        "UnbindAccount": _CITIZEN,
        # Who holds an account: registered citizens and analysts (see the gateway's table).
        "VerifyAccount": roles(Role.CITIZEN, Role.ANALYST),
        "CheckPayee": roles(Role.BANK),
        # The bank says what it did with a decision (only its own); analysts count them.
        "AcknowledgePayeeDecision": roles(Role.BANK),
        "GetPayeeDecisionStats": roles(Role.ANALYST),
        # A citizen's consent that payee checks of their payments use their contacts.
        "SetPayeeCheckConsent": _CITIZEN,
        "CreateFaceCheck": _CITIZEN,
        "CountPhoneCards": _CITIZEN,
        "ListLinkedAccounts": _CITIZEN,
        "ListBankCards": _CITIZEN,
        # Staff, and a citizen for the reads of their own record (PIPL).
        # A citizen's export and erasure, composed by the gateway for the citizen it
        # authenticated (CitizenService/ExportMyData, EraseMyData).
        "ExportPersonalData": services("gateway"),
        "ErasePersonalData": services("gateway"),
        "ListAuditEvents": roles(Role.CITIZEN, Role.ANALYST),
    },
)
