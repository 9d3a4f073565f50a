"""Who may call which WarningService method (deny by default; admin everywhere).

Roles are callers the gateway vouches for; services are the suite's own, by name.
"""

from __future__ import annotations

from services.common.auth import Callers, roles, services, table
from services.common.principals import Role

_CITIZEN = roles(Role.CITIZEN)
_CARRIER = roles(Role.CARRIER)
_ANALYST = roles(Role.ANALYST)

POLICY: dict[str, Callers] = table(
    "antifraud.warning.v1.WarningService",
    {
        "DispatchWarning": _ANALYST,
        "GetWarning": _ANALYST,
        "ListWarnings": _CITIZEN | _ANALYST,
        "AcknowledgeWarning": _CITIZEN,
        "StreamWarnings": _CITIZEN,
        # Identity tells a citizen about a verification request.
        "SendNotification": services("identity"),
        "GetNotification": _ANALYST | services("identity"),
        "UpsertRecipient": _CITIZEN,
        "GetRecipient": _CITIZEN | _ANALYST,
        # A guardian ends their own guardianship (the service checks whose number).
        "StopGuarding": _CITIZEN,
        "RecordContactEvents": _CARRIER,
        "StreamContactEvents": _CARRIER,
        # The gateway's CallScreeningService screens for carriers (it decides and warns here).
        "ScreenContactEvents": _CARRIER,
        "ListFanouts": _ANALYST,
        "GetFanout": _ANALYST,
        "UpdateFanout": _ANALYST,
        "ListTasks": _ANALYST,
        "GetTask": _ANALYST,
        "ClaimTask": _ANALYST,
        "CompleteTask": _ANALYST,
        "RecordDeliveryReceipt": _CARRIER,
        # Report intake orders stop-payments for filed cases and follows them.
        "CreateBankOrder": _ANALYST | services("report"),
        "GetBankOrder": _ANALYST | roles(Role.BANK) | services("report"),
        "ListBankOrders": _ANALYST | roles(Role.BANK) | services("report"),
        # Police act on a hold: extend it, end it (released or returned), ask where it stands.
        "ExtendBankOrder": _ANALYST,
        "ReleaseBankOrder": _ANALYST,
        "RefreshBankOrder": _ANALYST,
        # The identity service's payee decision, for a payer who consented.
        "CheckRecentContacts": services("identity"),
        "GetWarningStats": _ANALYST,
        # A citizen's export and erasure, composed by the gateway for the citizen.
        "ExportPersonalData": services("gateway"),
        "ErasePersonalData": services("gateway"),
    },
)
