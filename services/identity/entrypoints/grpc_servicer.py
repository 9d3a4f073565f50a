"""IdentityService over gRPC: validate and convert at the edge, call the service layer."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import grpc

from services.api.antifraud.common.v1 import common_pb2
from services.api.antifraud.identity.v1 import identity_pb2 as pb
from services.api.antifraud.identity.v1 import identity_pb2_grpc
from services.common import context as ctx
from services.common import principals, validation
from services.common.errors import NotFound, PermissionDenied
from services.common.idempotency import fingerprint
from services.common.principals import InvalidPrincipal, Principal, Role
from services.common.validation import Violations, collecting
from services.identity.adapters.payee_decisions_repo import StoredDecision
from services.identity.domain.accounts import BoundAccount
from services.identity.domain.challenges import ChallengePurpose
from services.identity.domain.payee_decision import PayeeOutcome
from services.identity.domain.users import User
from services.identity.domain.verification import (
    Decision,
    Purpose,
    VerificationRequest,
    VerificationState,
)
from services.identity.entrypoints import convert
from services.identity.service_layer import (
    accounts,
    audit_log,
    lookups,
    payee_decisions,
    phone_proof,
    privacy,
    registration,
    verification,
)
from services.identity.service_layer.deps import Deps
from services.identity.service_layer.replay import Replay
from services.identity.service_layer.verification import (
    CreateRequest,
    Respond,
    Responded,
    VerificationView,
)

Context = grpc.aio.ServicerContext[object, object]


def _principal() -> Principal:
    try:
        return principals.current()
    except InvalidPrincipal:
        raise PermissionDenied("the caller's principal is not recognised") from None


class IdentityServicer(identity_pb2_grpc.IdentityServiceServicer):
    def __init__(self, deps: Deps) -> None:
        self.deps = deps

    # ------------------------------------------------------------- registration

    async def RegisterUser(
        self, request: pb.RegisterUserRequest, context: Context
    ) -> pb.RegisterUserResponse:
        principal = _principal()
        today = convert.china_today(self.deps.clock())
        with collecting() as v:
            request_id = validation.request_id(v, request.request_id)
            name = convert.person_name(v, "full_name", request.full_name)
            resident = convert.resident_id(v, "id_number", request.id_number, today)
            phone = convert.cn_mobile(v, "phone_number", request.phone_number)
            challenge_id = code = ""
            if request.phone_challenge or request.code:
                challenge_id = convert.resource_id(
                    v, "phone_challenge", request.phone_challenge, convert.PHONE_CHALLENGES
                )
                code = convert.one_time_code(v, "code", request.code)
        assert resident is not None
        replay: Replay[User, pb.RegisterUserResponse] = Replay(
            "RegisterUser",
            request_id,
            fingerprint(request),
            pb.RegisterUserResponse,
            lambda user: pb.RegisterUserResponse(user=convert.user(user)),
        )
        cmd = registration.RegisterUser(name, resident, phone, challenge_id, code)
        return await registration.register_user(self.deps, principal, cmd, replay)

    async def StartPhoneChallenge(
        self, request: pb.StartPhoneChallengeRequest, context: Context
    ) -> pb.StartPhoneChallengeResponse:
        principal = _principal()
        with collecting() as v:
            phone = convert.cn_mobile(v, "phone_number", request.phone_number)
            purpose = validation.enum_value(v, "purpose", request.purpose, ChallengePurpose)
        assert purpose is not None
        challenge = await phone_proof.start_challenge(self.deps, principal, phone, purpose)
        return pb.StartPhoneChallengeResponse(
            phone_challenge=f"{convert.PHONE_CHALLENGES}{challenge.id}",
            masked_phone_number=challenge.masked_phone,
            expire_time=convert.timestamp(challenge.expire_time),
        )

    async def ConfirmPhoneChallenge(
        self, request: pb.ConfirmPhoneChallengeRequest, context: Context
    ) -> pb.ConfirmPhoneChallengeResponse:
        principal = _principal()
        with collecting() as v:
            challenge_id = convert.resource_id(
                v, "phone_challenge", request.phone_challenge, convert.PHONE_CHALLENGES
            )
            phone = convert.cn_mobile(v, "phone_number", request.phone_number)
            code = convert.one_time_code(v, "code", request.code)
            purpose = validation.enum_value(v, "purpose", request.purpose, ChallengePurpose)
        assert purpose is not None
        challenge = await phone_proof.confirm(
            self.deps, principal, challenge_id, code, purpose, phone
        )
        return pb.ConfirmPhoneChallengeResponse(masked_phone_number=challenge.masked_phone)

    async def SignInUser(
        self, request: pb.SignInUserRequest, context: Context
    ) -> pb.SignInUserResponse:
        principal = _principal()
        with collecting() as v:
            request_id = validation.request_id(v, request.request_id)
            challenge_id = convert.resource_id(
                v, "phone_challenge", request.phone_challenge, convert.PHONE_CHALLENGES
            )
            code = convert.one_time_code(v, "code", request.code)
            face_token = validation.text(
                v, "face_token", request.face_token, max_len=convert.MAX_FACE_TOKEN, required=True
            )
        replay: Replay[User, pb.SignInUserResponse] = Replay(
            "SignInUser",
            request_id,
            fingerprint(request),
            pb.SignInUserResponse,
            lambda user: pb.SignInUserResponse(user=convert.user(user)),
        )
        cmd = registration.SignIn(challenge_id, code, face_token, request_id)
        return await registration.sign_in(self.deps, principal, cmd, replay)

    async def GetUser(self, request: pb.GetUserRequest, context: Context) -> pb.GetUserResponse:
        principal = _principal()
        with collecting() as v:
            user_id = convert.resource_id(v, "name", request.name, convert.USERS)
        user = await registration.get_user(self.deps, principal, user_id)
        return pb.GetUserResponse(user=convert.user(user))

    async def FindUserByPhone(
        self, request: pb.FindUserByPhoneRequest, context: Context
    ) -> pb.FindUserByPhoneResponse:
        principal = _principal()
        with collecting() as v:
            phone = convert.cn_mobile(v, "phone_number", request.phone_number)
        user_id = await registration.find_user_by_phone(self.deps, principal, phone)
        return pb.FindUserByPhoneResponse(user_id=user_id)

    # ------------------------------------------------------- remote verification

    async def CreateVerificationRequest(
        self, request: pb.CreateVerificationRequestRequest, context: Context
    ) -> pb.CreateVerificationRequestResponse:
        principal = _principal()
        with collecting() as v:
            request_id = validation.request_id(v, request.request_id)
            requester = convert.identifier(v, "requester_user_id", request.requester_user_id)
            target = convert.cn_mobile(v, "target_phone_number", request.target_phone_number)
            purpose = validation.enum_value(v, "purpose", request.purpose, Purpose)
            expected = (
                convert.person_name(v, "expected_name", request.expected_name)
                if request.expected_name
                else ""
            )
        assert purpose is not None
        replay: Replay[VerificationView, pb.CreateVerificationRequestResponse] = Replay(
            "CreateVerificationRequest",
            request_id,
            fingerprint(request),
            pb.CreateVerificationRequestResponse,
            lambda view: pb.CreateVerificationRequestResponse(
                verification_request=convert.verification_request(view)
            ),
        )
        cmd = CreateRequest(requester, target, purpose, expected)
        return await verification.create_request(self.deps, principal, cmd, replay)

    async def GetVerificationRequest(
        self, request: pb.GetVerificationRequestRequest, context: Context
    ) -> pb.GetVerificationRequestResponse:
        principal = _principal()
        with collecting() as v:
            verification_id = convert.resource_id(
                v, "name", request.name, convert.VERIFICATION_REQUESTS
            )
        view = await verification.get_request(self.deps, principal, verification_id)
        return pb.GetVerificationRequestResponse(
            verification_request=convert.verification_request(view)
        )

    async def ListIncomingVerificationRequests(
        self, request: pb.ListIncomingVerificationRequestsRequest, context: Context
    ) -> pb.ListIncomingVerificationRequestsResponse:
        principal = _principal()
        with collecting() as v:
            user_id = convert.identifier(v, "user_id", request.user_id)
            state = validation.enum_value(
                v, "state", request.state, VerificationState, required=False
            )
            page_size = validation.page_size(v, request.page_size)
        views, token = await verification.list_incoming(
            self.deps, principal, user_id, state, page_size, request.page_token
        )
        return pb.ListIncomingVerificationRequestsResponse(
            verification_requests=[convert.verification_request(view) for view in views],
            next_page_token=token,
        )

    async def RespondToVerificationRequest(
        self, request: pb.RespondToVerificationRequestRequest, context: Context
    ) -> pb.RespondToVerificationRequestResponse:
        principal = _principal()
        with collecting() as v:
            request_id = validation.request_id(v, request.request_id)
            verification_id = convert.resource_id(
                v, "name", request.name, convert.VERIFICATION_REQUESTS
            )
            user_id = convert.identifier(v, "user_id", request.user_id)
            decision = validation.enum_value(v, "decision", request.decision, Decision)
            face_token = request.face_token
            if decision is Decision.ACCEPT and not face_token:
                v.add("face_token", "is required to accept")
            if len(face_token) > convert.MAX_FACE_TOKEN:
                v.add("face_token", f"must be at most {convert.MAX_FACE_TOKEN} characters")
            if decision is Decision.DECLINE and face_token:
                v.add("face_token", "must be empty when declining")
        assert decision is not None
        replay: Replay[Responded, pb.RespondToVerificationRequestResponse] = Replay(
            "RespondToVerificationRequest",
            request_id,
            fingerprint(request),
            pb.RespondToVerificationRequestResponse,
            lambda done: pb.RespondToVerificationRequestResponse(
                verification_request=convert.verification_request(done.view),
                face_check_result=(
                    None
                    if done.face_result is None
                    else convert.enum("FACE_CHECK_RESULT", done.face_result)
                ),
            ),
        )
        cmd = Respond(request_id, verification_id, user_id, decision, face_token)
        return await verification.respond(self.deps, principal, cmd, replay)

    async def BlockRequester(
        self, request: pb.BlockRequesterRequest, context: Context
    ) -> pb.BlockRequesterResponse:
        principal = _principal()
        with collecting() as v:
            user_id = convert.identifier(v, "user_id", request.user_id)
            requester = convert.identifier(v, "requester_user_id", request.requester_user_id)
        result = await verification.block_requester(self.deps, principal, user_id, requester)
        return pb.BlockRequesterResponse(
            requester_identity=common_pb2.MaskedIdentity(
                masked_name=result.requester.masked_name,
                masked_phone_number=result.requester.masked_phone,
            ),
            declined_count=result.declined,
            block_time=convert.timestamp(result.block_time),
        )

    async def UnblockRequester(
        self, request: pb.UnblockRequesterRequest, context: Context
    ) -> pb.UnblockRequesterResponse:
        principal = _principal()
        with collecting() as v:
            user_id = convert.identifier(v, "user_id", request.user_id)
            requester = convert.identifier(v, "requester_user_id", request.requester_user_id)
        removed = await verification.unblock_requester(self.deps, principal, user_id, requester)
        return pb.UnblockRequesterResponse(unblocked=removed)

    # ------------------------------------------------------------------ accounts

    async def BindAccount(
        self, request: pb.BindAccountRequest, context: Context
    ) -> pb.BindAccountResponse:
        principal = _principal()
        with collecting() as v:
            request_id = validation.request_id(v, request.request_id)
            user_id = convert.identifier(v, "user_id", request.user_id)
            account = convert.account(v, "account", request.HasField("account"), request.account)
        assert account is not None
        replay: Replay[BoundAccount, pb.BindAccountResponse] = Replay(
            "BindAccount",
            request_id,
            fingerprint(request),
            pb.BindAccountResponse,
            lambda bound: pb.BindAccountResponse(bound_account=convert.bound_account(bound)),
        )
        return await accounts.bind_account(
            self.deps, principal, user_id, account, replay, ctx.current_request_id()
        )

    async def ListBoundAccounts(
        self, request: pb.ListBoundAccountsRequest, context: Context
    ) -> pb.ListBoundAccountsResponse:
        principal = _principal()
        with collecting() as v:
            user_id = convert.identifier(v, "user_id", request.user_id)
        found = await accounts.list_accounts(self.deps, principal, user_id)
        return pb.ListBoundAccountsResponse(
            bound_accounts=[convert.bound_account(a) for a in found]
        )

    async def UnbindAccount(
        self, request: pb.UnbindAccountRequest, context: Context
    ) -> pb.UnbindAccountResponse:
        principal = _principal()
        with collecting() as v:
            user_id = convert.identifier(v, "user_id", request.user_id)
            account_id = convert.resource_id(
                v, "name", request.name, f"{convert.USERS}{user_id}/accounts/"
            )
        await accounts.unbind_account(self.deps, principal, user_id, account_id)
        return pb.UnbindAccountResponse()

    async def VerifyAccount(
        self, request: pb.VerifyAccountRequest, context: Context
    ) -> pb.VerifyAccountResponse:
        principal = _principal()
        with collecting() as v:
            account = convert.account(v, "account", request.HasField("account"), request.account)
        assert account is not None
        result = await accounts.verify_account(self.deps, principal, account)
        return pb.VerifyAccountResponse(
            masked_value=result.masked_value,
            bound_to_verified_person=result.holder_masked_name is not None,
            holder_identity=(
                None
                if result.holder_masked_name is None
                else common_pb2.MaskedIdentity(masked_name=result.holder_masked_name)
            ),
            confirmation=(
                None
                if result.confirmation is None
                else convert.enum("ACCOUNT_CONFIRMATION", result.confirmation)
            ),
            risk_verdict=result.risk_verdict,
            risk_status=convert.enum("SOURCE_STATUS", result.risk_status),
        )

    async def CheckPayee(
        self, request: pb.CheckPayeeRequest, context: Context
    ) -> pb.CheckPayeeResponse:
        principal = _principal()
        with collecting() as v:
            account = convert.account(v, "account", request.HasField("account"), request.account)
            payee_name = (
                convert.person_name(v, "payee_name", request.payee_name)
                if request.payee_name
                else ""
            )
            payer = (
                convert.cn_mobile(v, "payer_phone_number", request.payer_phone_number)
                if request.payer_phone_number
                else ""
            )
        assert account is not None
        found = await payee_decisions.decide_payment(
            self.deps,
            self.deps.contacts,
            principal,
            account,
            payee_name,
            payer,
            ctx.current_request_id(),
        )
        decision = found.decision
        response = pb.CheckPayeeResponse(
            action=convert.enum("PAYEE_ACTION", decision.action),
            reasons=[convert.enum("PAYEE_REASON", r) for r in decision.reasons],
            decision=f"payeeDecisions/{found.decision_id}",
            verdict=found.verdict,
        )
        if decision.cooling_off is not None:
            response.cooling_off.FromTimedelta(decision.cooling_off)
        result = found.name
        if result is not None:
            response.match = convert.enum("PAYEE_MATCH", result.match)  # type: ignore[assignment]
            response.masked_holder_name = result.masked_holder_name
            if result.source is not None:
                response.source = convert.enum("PAYEE_SOURCE", result.source)  # type: ignore[assignment]
            response.bank_id = result.bank_id
        return response

    async def AcknowledgePayeeDecision(
        self, request: pb.AcknowledgePayeeDecisionRequest, context: Context
    ) -> pb.AcknowledgePayeeDecisionResponse:
        principal = _principal()
        with collecting() as v:
            decision_id = _decision_id(v, request.name)
            outcome = validation.enum_value(v, "outcome", request.outcome, PayeeOutcome)
        assert outcome is not None
        found = await payee_decisions.acknowledge(self.deps, principal, decision_id, outcome)
        return pb.AcknowledgePayeeDecisionResponse(decision=_decision_pb(found))

    async def GetPayeeDecisionStats(
        self, request: pb.GetPayeeDecisionStatsRequest, context: Context
    ) -> pb.GetPayeeDecisionStatsResponse:
        principal = _principal()
        with collecting() as v:
            start = validation.optional_time(
                v, "start_time", request.start_time, request.HasField("start_time")
            )
            end = validation.optional_time(
                v, "end_time", request.end_time, request.HasField("end_time")
            )
        found = await payee_decisions.stats(self.deps, principal, start, end)
        return pb.GetPayeeDecisionStatsResponse(
            counts=[
                pb.PayeeDecisionCount(
                    action=convert.enum("PAYEE_ACTION", action),
                    outcome=None if outcome is None else convert.enum("PAYEE_OUTCOME", outcome),
                    count=n,
                )
                for action, outcome, n in found
            ]
        )

    async def SetPayeeCheckConsent(
        self, request: pb.SetPayeeCheckConsentRequest, context: Context
    ) -> pb.SetPayeeCheckConsentResponse:
        principal = _principal()
        with collecting() as v:
            user_id = validation.text(v, "user_id", request.user_id, max_len=36, required=True)
        when = await payee_decisions.set_consent(self.deps, principal, user_id, request.consent)
        response = pb.SetPayeeCheckConsentResponse(consent=request.consent)
        response.update_time.FromDatetime(when)
        return response

    # ------------------------------------------------------------------- look-ups

    async def CreateFaceCheck(
        self, request: pb.CreateFaceCheckRequest, context: Context
    ) -> pb.CreateFaceCheckResponse:
        principal = _principal()
        with collecting() as v:
            user_id = convert.identifier(v, "user_id", request.user_id)
            request_id = validation.request_id(v, request.request_id)
            face_token = validation.text(
                v, "face_token", request.face_token, max_len=convert.MAX_FACE_TOKEN, required=True
            )
        check = await lookups.create_face_check(
            self.deps, principal, user_id, request_id, face_token
        )
        made = pb.FaceCheck(
            name=f"{lookups.FACE_CHECKS}{check.id}",
            result=convert.enum("FACE_CHECK_RESULT", check.result),  # type: ignore[arg-type]
            create_time=convert.timestamp(check.create_time),
        )
        if check.expire_time is not None:
            made.expire_time.CopyFrom(convert.timestamp(check.expire_time))
        return pb.CreateFaceCheckResponse(face_check=made)

    async def CountPhoneCards(
        self, request: pb.CountPhoneCardsRequest, context: Context
    ) -> pb.CountPhoneCardsResponse:
        principal = _principal()
        with collecting() as v:
            user_id = convert.identifier(v, "user_id", request.user_id)
        result = await lookups.count_phone_cards(
            self.deps, principal, user_id, ctx.current_request_id()
        )
        carriers = []
        for answer in result.carriers:
            entry = pb.CarrierPhoneCards(
                carrier_id=answer.partner.id,
                display_name=answer.partner.display_name,
                status=convert.enum("SOURCE_STATUS", answer.status),
            )
            if answer.value is not None:
                entry.card_count = answer.value.card_count
                for card in answer.value.cards:
                    phone_card = entry.phone_cards.add(masked_phone_number=card.masked_phone)
                    if card.activate_time is not None:
                        phone_card.activate_time.CopyFrom(convert.timestamp(card.activate_time))
            carriers.append(entry)
        return pb.CountPhoneCardsResponse(
            carriers=carriers, total_card_count=result.total, complete=result.complete
        )

    async def ListLinkedAccounts(
        self, request: pb.ListLinkedAccountsRequest, context: Context
    ) -> pb.ListLinkedAccountsResponse:
        result = await self._listing(request, lookups.list_linked_accounts)
        return pb.ListLinkedAccountsResponse(
            linked_accounts=[convert.linked_account(a) for a in result.page.items],
            **_listed(result),
        )

    async def ListBankCards(
        self, request: pb.ListBankCardsRequest, context: Context
    ) -> pb.ListBankCardsResponse:
        result = await self._listing(request, lookups.list_bank_cards)
        return pb.ListBankCardsResponse(
            cards=[convert.bank_card(c) for c in result.page.items], **_listed(result)
        )

    async def _listing(
        self, request: _UserPageRequest, look_up: Callable[..., Awaitable[lookups.Listing[T]]]
    ) -> lookups.Listing[T]:
        """A page of what partners hold for a user: the user and page checked, then asked."""
        principal = _principal()
        with collecting() as v:
            user_id = convert.identifier(v, "user_id", request.user_id)
            page_size = validation.page_size(v, request.page_size)
        return await look_up(
            self.deps, principal, user_id, page_size, request.page_token, ctx.current_request_id()
        )

    # ---------------------------------------------------------------------- audit

    async def ListAuditEvents(
        self, request: pb.ListAuditEventsRequest, context: Context
    ) -> pb.ListAuditEventsResponse:
        principal = _principal()
        with collecting() as v:
            record = validation.text(v, "record", request.record, max_len=160)
            actor = validation.text(v, "actor", request.actor, max_len=160)
            page_size = validation.page_size(v, request.page_size)
        events, token = await audit_log.list_audit_events(
            self.deps, principal, record, actor, page_size, request.page_token
        )
        return pb.ListAuditEventsResponse(
            audit_events=[convert.audit_event(e) for e in events], next_page_token=token
        )

    # ------------------------------------------------------------- personal data (PIPL)

    async def ExportPersonalData(
        self, request: pb.ExportPersonalDataRequest, context: Context
    ) -> pb.ExportPersonalDataResponse:
        user_id = _internal_user(request.user_id)
        found = await privacy.export(self.deps, user_id)
        if found is None:
            raise NotFound(f"users/{user_id} not found")
        return pb.ExportPersonalDataResponse(
            user=convert.user(found.user),
            full_name=found.revealed.name,
            id_number=found.revealed.id_number,
            phone_number=found.revealed.phone_e164,
            accounts=[
                pb.ExportedAccount(
                    account=common_pb2.Indicator(
                        kind=int(a.account.kind),  # type: ignore[arg-type]
                        value=a.account.value,
                    ),
                    confirmation=convert.enum("ACCOUNT_CONFIRMATION", a.confirmation),
                    create_time=convert.timestamp(a.create_time),
                )
                for a in found.accounts
            ],
            outgoing_requests=[_exported_request(r) for r in found.outgoing],
            incoming_requests=[_exported_request(r) for r in found.incoming],
            blocked_user_ids=found.blocked,
        )

    async def ErasePersonalData(
        self, request: pb.ErasePersonalDataRequest, context: Context
    ) -> pb.ErasePersonalDataResponse:
        user_id = _internal_user(request.user_id)
        deleted = await privacy.erase(self.deps, user_id)
        return pb.ErasePersonalDataResponse(erased=deleted is not None, deleted_count=deleted or 0)


T = TypeVar("T")
_UserPageRequest = pb.ListLinkedAccountsRequest | pb.ListBankCardsRequest


def _listed(result: lookups.Listing[Any]) -> dict[str, Any]:
    """The fields every partner listing answers with besides its items."""
    return {
        "next_page_token": result.next_page_token,
        "sources": [convert.source(s) for s in result.sources],
        "complete": result.complete,
    }


def _internal_user(user_id: str) -> str:
    if _principal().role is not Role.INTERNAL:
        raise PermissionDenied("export and erasure go through the gateway's CitizenService")
    with collecting() as v:
        found = convert.identifier(v, "user_id", user_id)
    return found


def _exported_request(request: VerificationRequest) -> pb.VerificationRequest:
    message = pb.VerificationRequest(
        name=f"verificationRequests/{request.id}",
        requester_user_id=request.requester_id,
        masked_target_phone_number=request.masked_target_phone,
        purpose=convert.enum("VERIFICATION_PURPOSE", request.purpose),
        state=convert.enum("VERIFICATION_STATE", request.state),
        create_time=convert.timestamp(request.create_time),
        expire_time=convert.timestamp(request.expire_time),
    )
    if request.respond_time is not None:
        message.respond_time.CopyFrom(convert.timestamp(request.respond_time))
    return message


_DECISION = re.compile(r"payeeDecisions/([0-9a-f-]{36})")


def _decision_id(v: Violations, name: str) -> str:
    found = _DECISION.fullmatch(name)
    if found is None:
        v.add("name", "must be a resource name payeeDecisions/{id}")
        return ""
    return found.group(1)


def _decision_pb(found: StoredDecision) -> pb.PayeeDecision:
    message = pb.PayeeDecision(
        name=f"payeeDecisions/{found.id}",
        action=convert.enum("PAYEE_ACTION", found.action),
        reasons=[convert.enum("PAYEE_REASON", r) for r in found.reasons],
        outcome=None if found.outcome is None else convert.enum("PAYEE_OUTCOME", found.outcome),
    )
    message.create_time.FromDatetime(found.create_time)
    if found.acknowledge_time is not None:
        message.acknowledge_time.FromDatetime(found.acknowledge_time)
    return message
