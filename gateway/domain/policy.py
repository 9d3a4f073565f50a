"""Which role may call which method, whose data it may touch, and how long it may take.

Deny by default: a method that is not listed here is not served by the gateway.
"""

from __future__ import annotations

from dataclasses import dataclass

from services.api.antifraud.report.v1 import knowledge_pb2
from services.common.principals import Role

CITIZEN = frozenset({Role.CITIZEN})
CARRIER = frozenset({Role.CARRIER})
BANK = frozenset({Role.BANK})
ANALYST = frozenset({Role.ANALYST})
PARTNERS = frozenset({Role.CARRIER, Role.BANK})


@dataclass(frozen=True)
class Rule:
    roles: frozenset[Role]
    #: For citizens: the request field that names whose data this is. Empty, it is set to
    #: the caller's user id; naming someone else is PERMISSION_DENIED.
    owner_field: str = ""
    #: The time allowed downstream when the caller sets no deadline (seconds).
    budget: float = 5.0
    #: Tokens the call takes from the caller's rate limit.
    cost: float = 1.0
    #: Citizens must have registered (have a user id) to call it.
    registered: bool = False

    def allows(self, role: Role) -> bool:
        return role in self.roles or role is Role.ADMIN


def _service(name: str, rules: dict[str, Rule]) -> dict[str, Rule]:
    return {f"/{name}/{method}": rule for method, rule in rules.items()}


_RISK = "antifraud.risk.v1.RiskService"
_REPORT = "antifraud.report.v1.ReportService"
# Named from its descriptor: importing it also registers the service, so the proxy (and
# anything checking this table) finds the methods in the default descriptor pool.
_KNOWLEDGE = knowledge_pb2.DESCRIPTOR.services_by_name["KnowledgeService"].full_name
_WARNING = "antifraud.warning.v1.WarningService"
_IDENTITY = "antifraud.identity.v1.IdentityService"
_GATEWAY = "antifraud.gateway.v1"

CHECKERS = frozenset({Role.CITIZEN, Role.CARRIER, Role.BANK, Role.ANALYST})
CITIZEN_OR_ANALYST = frozenset({Role.CITIZEN, Role.ANALYST})
ANALYST_OR_BANK = frozenset({Role.ANALYST, Role.BANK})
PARTNERS_OR_ANALYST = frozenset({Role.CARRIER, Role.BANK, Role.ANALYST})

#: Methods of the services that the gateway serves, by who may call them. Services
#: check ownership again from the principal; the gateway checks it first.
PROXIED: dict[str, Rule] = {
    **_service(
        _RISK,
        {
            "CheckIndicator": Rule(CHECKERS, budget=1.0),
            "BatchCheckIndicators": Rule(CHECKERS, budget=2.0, cost=5),
            "StreamCheckIndicators": Rule(PARTNERS_OR_ANALYST, budget=3600),
            "GetIndicator": Rule(ANALYST),
            "ListIndicators": Rule(ANALYST),
            "UpsertIndicator": Rule(ANALYST),
            "RetireIndicator": Rule(ANALYST),
            "ImportIndicators": Rule(ANALYST, budget=60, cost=20),
            "AddIndicatorSighting": Rule(PARTNERS_OR_ANALYST),
            "WatchIndicatorChanges": Rule(PARTNERS_OR_ANALYST, budget=86_400),
            # Local copies: the kinds each role may hold are the risk service's LIST_KINDS.
            "DownloadRiskList": Rule(PARTNERS_OR_ANALYST, budget=300, cost=50),
            "ComputeRiskListDiff": Rule(PARTNERS_OR_ANALYST, budget=10),
            # Private look-ups: one guess per call, rate-limited like a plain check.
            "SearchHashPrefixes": Rule(CHECKERS, budget=2.0, cost=5),
        },
    ),
    **_service(
        _REPORT,
        {
            "SubmitReport": Rule(CITIZEN_OR_ANALYST),
            "GetReport": Rule(CITIZEN_OR_ANALYST),
            "ListReports": Rule(CITIZEN_OR_ANALYST),
            "ReviewReport": Rule(ANALYST),
            "GetReportStats": Rule(ANALYST),
            "FileCase": Rule(CITIZEN, registered=True),
            "GetCase": Rule(CITIZEN_OR_ANALYST),
            "ListCases": Rule(CITIZEN_OR_ANALYST),
            "AssignCase": Rule(ANALYST),
            "ReplyToCase": Rule(ANALYST),
            "CloseCase": Rule(ANALYST),
            "ReviewIndicatorReports": Rule(ANALYST),
            "ListReviewIndicators": Rule(ANALYST),
            # The text as typed, identifiers and all: analysts, with a purpose, audited.
            "RevealOriginalText": Rule(ANALYST),
            # Who saw what in clear, and why: the report service's audit log.
            "ListAuditEvents": Rule(ANALYST),
            # ExportPersonalData / ErasePersonalData are not served here: the citizen's own
            # CitizenService/ExportMyData and EraseMyData compose them.
        },
    ),
    **_service(
        _KNOWLEDGE,
        {
            # Police and 96110 operators hold analyst keys: they write, publish and announce.
            "CreateArticle": Rule(ANALYST),
            "UpdateArticle": Rule(ANALYST),
            "PublishArticle": Rule(ANALYST),
            "WithdrawArticle": Rule(ANALYST),
            "DraftStoryFromCase": Rule(ANALYST),
            "CreateNotice": Rule(ANALYST),
            "AnnounceCall": Rule(ANALYST),
            # Reading is for everyone, registered or not: the app teaches before sign-up.
            "GetArticle": Rule(CITIZEN_OR_ANALYST),
            "ListArticles": Rule(CITIZEN_OR_ANALYST),
            "SearchArticles": Rule(CITIZEN_OR_ANALYST, cost=2),
            "ListNotices": Rule(CITIZEN_OR_ANALYST),
            "GetFraudTrends": Rule(CITIZEN_OR_ANALYST),
            # No user id in the request: the callee is always the caller's own user.
            "VerifyIncomingCall": Rule(CITIZEN, registered=True),
        },
    ),
    **_service(
        _WARNING,
        {
            "StreamWarnings": Rule(CITIZEN, owner_field="user_id", budget=86_400, registered=True),
            "AcknowledgeWarning": Rule(CITIZEN, owner_field="user_id", registered=True),
            "ListWarnings": Rule(CITIZEN_OR_ANALYST, owner_field="user_id"),
            "GetWarning": Rule(ANALYST),
            "GetRecipient": Rule(CITIZEN, owner_field="user_id", registered=True),
            # Either side ends a guardianship: the elder with SetGuardians, the guardian here.
            "StopGuarding": Rule(CITIZEN, owner_field="user_id", registered=True),
            "RecordContactEvents": Rule(CARRIER, budget=10, cost=10),
            "StreamContactEvents": Rule(CARRIER, budget=3600, cost=10),
            "RecordDeliveryReceipt": Rule(CARRIER),
            "DispatchWarning": Rule(ANALYST),
            "ListFanouts": Rule(ANALYST),
            "GetFanout": Rule(ANALYST),
            "UpdateFanout": Rule(ANALYST),
            "ListTasks": Rule(ANALYST),
            "GetTask": Rule(ANALYST),
            "ClaimTask": Rule(ANALYST),
            "CompleteTask": Rule(ANALYST),
            "CreateBankOrder": Rule(ANALYST),
            "GetBankOrder": Rule(ANALYST_OR_BANK),
            "ListBankOrders": Rule(ANALYST_OR_BANK),
            # Officers' acts on a hold; the bank is asked at once (its answer within budget).
            "ExtendBankOrder": Rule(ANALYST, budget=12),
            "ReleaseBankOrder": Rule(ANALYST, budget=12),
            "RefreshBankOrder": Rule(ANALYST, budget=12),
            "GetWarningStats": Rule(ANALYST),
        },
    ),
    **_service(
        _IDENTITY,
        {
            "GetUser": Rule(CITIZEN, registered=True),
            "CreateVerificationRequest": Rule(
                CITIZEN, owner_field="requester_user_id", registered=True
            ),
            "GetVerificationRequest": Rule(CITIZEN, registered=True),
            "ListIncomingVerificationRequests": Rule(
                CITIZEN, owner_field="user_id", registered=True
            ),
            "RespondToVerificationRequest": Rule(CITIZEN, owner_field="user_id", registered=True),
            "BlockRequester": Rule(CITIZEN, owner_field="user_id", registered=True),
            "UnblockRequester": Rule(CITIZEN, owner_field="user_id", registered=True),
            "BindAccount": Rule(CITIZEN, owner_field="user_id", registered=True),
            "ListBoundAccounts": Rule(CITIZEN, owner_field="user_id", registered=True),
            "UnbindAccount": Rule(CITIZEN, owner_field="user_id", registered=True),
            # Who holds an account (masked name) is asked by a registered citizen before
            # paying or befriending someone, and by analysts. Not by unregistered installs
            # (anonymous enumeration of holders), carriers (no account business) or banks
            # (PayeeService/CheckPayee answers them by the name the payer typed instead).
            "VerifyAccount": Rule(CITIZEN_OR_ANALYST, registered=True),
            # The look-ups need a face check of the last few minutes (the identity service
            # checks it): the citizen makes one here, from the app, just before.
            "CreateFaceCheck": Rule(CITIZEN, owner_field="user_id", registered=True, budget=8),
            "CountPhoneCards": Rule(CITIZEN, owner_field="user_id", registered=True, budget=8),
            "ListLinkedAccounts": Rule(CITIZEN, owner_field="user_id", registered=True, budget=8),
            "ListBankCards": Rule(CITIZEN, owner_field="user_id", registered=True, budget=8),
            # PIPL gives a person the right to know who read their data, when and why: a
            # citizen lists the reads of their own record (the service enforces whose).
            "ListAuditEvents": Rule(CITIZEN_OR_ANALYST, registered=True),
            # The pre-payment decision's follow-up: the bank acknowledges what it did (only
            # its own decisions, the service checks), analysts count outcomes, and a citizen
            # consents to their contacts counting in their bank's checks.
            "AcknowledgePayeeDecision": Rule(BANK),
            "GetPayeeDecisionStats": Rule(ANALYST),
            "SetPayeeCheckConsent": Rule(CITIZEN, owner_field="user_id", registered=True),
        },
    ),
}

#: The gateway's own composite methods.
COMPOSED: dict[str, Rule] = {
    # Sends an SMS: costly, so it takes more of the install's rate limit (the identity
    # service also caps codes per number). Open before registering: it is step 1.
    f"/{_GATEWAY}.CitizenService/SendPhoneCode": Rule(CITIZEN, budget=8, cost=10),
    f"/{_GATEWAY}.CitizenService/RegisterCitizen": Rule(CITIZEN, budget=15, cost=5),
    # A new device: an unregistered install key, the code and a face check.
    f"/{_GATEWAY}.CitizenService/SignInCitizen": Rule(CITIZEN, budget=15, cost=5),
    f"/{_GATEWAY}.CitizenService/ListMyApiKeys": Rule(CITIZEN, registered=True),
    f"/{_GATEWAY}.CitizenService/RevokeMyApiKey": Rule(CITIZEN, registered=True),
    f"/{_GATEWAY}.CitizenService/SetGuardians": Rule(CITIZEN, registered=True),
    f"/{_GATEWAY}.CitizenService/CheckApps": Rule(CITIZEN, budget=2.0, cost=5),
    f"/{_GATEWAY}.CitizenService/ExportMyData": Rule(CITIZEN, registered=True, budget=10, cost=20),
    f"/{_GATEWAY}.CitizenService/EraseMyData": Rule(CITIZEN, registered=True, budget=20, cost=20),
    f"/{_GATEWAY}.CallScreeningService/ScreenEvents": Rule(CARRIER, budget=3600),
    f"/{_GATEWAY}.PayeeService/CheckPayee": Rule(BANK, budget=2.0),
    f"/{_GATEWAY}.AnalystService/GetDashboard": Rule(ANALYST),
    f"/{_GATEWAY}.AdminService/CreateApiKey": Rule(frozenset({Role.ADMIN})),
    f"/{_GATEWAY}.AdminService/RevokeApiKey": Rule(frozenset({Role.ADMIN})),
    f"/{_GATEWAY}.AdminService/ListApiKeys": Rule(frozenset({Role.ADMIN})),
}

POLICY: dict[str, Rule] = {**PROXIED, **COMPOSED}
