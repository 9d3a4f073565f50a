"""Identity proofing through the gateway only, every process running as deployed: the
phone is proven by a code its carrier sends and tied to the ID number by the carrier's
real-name match; nothing tells a stranger who is registered; a lost answer returns the
same key, an install key registers one person, and a citizen signs in on a new device
(code and face) and manages their keys. On SQLite and PostgreSQL."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable

import grpc
import pytest

from services.api.antifraud.common.v1 import common_pb2 as c
from services.api.antifraud.gateway.v1 import gateway_pb2 as gw
from services.api.antifraud.identity.v1 import identity_pb2 as idn
from services.api.antifraud.partner.v1 import bank_pb2, carrier_pb2, face_pb2, registry_pb2
from services.api.antifraud.partner.v1 import simulator_pb2 as sim
from services.api.antifraud.warning.v1 import warning_pb2 as wn
from services.common.errors import field_violations
from tests.e2e.deployment import (
    Citizen,
    Deployment,
    eventually,
    new_id_number,
    new_phone,
)

pytestmark = pytest.mark.slow

Metadata = tuple[tuple[str, str], ...]


async def error_of(call: Awaitable[object]) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await call
    return caught.value


async def owns(suite: Deployment, id_number: str, *phones: str) -> None:
    """The carriers' real-name records: these numbers are registered to this ID."""
    await suite.control.SeedSubscribers(
        sim.SeedSubscribersRequest(
            subscribers=[
                carrier_pb2.Subscriber(
                    resident_id_number=id_number,
                    lines=[carrier_pb2.SubscriberLine(phone_number=p) for p in phones],
                )
            ]
        )
    )


async def person(suite: Deployment, name: str) -> tuple[str, str]:
    """A person the registry knows, holding one number: (ID number, phone)."""
    id_number, phone = new_id_number(), new_phone()
    await suite.control.SeedPersons(
        sim.SeedPersonsRequest(
            persons=[registry_pb2.Person(resident_id_number=id_number, name=name)]
        )
    )
    await owns(suite, id_number, phone)
    return id_number, phone


def wrong(code: str) -> str:
    return f"{(int(code) + 1) % 10 ** len(code):0{len(code)}d}"


def key_id(token: str) -> str:
    return token.split("_")[1]


def registration(
    name: str, id_number: str, phone: str, challenge: str, code: str, request_id: str = ""
) -> gw.RegisterCitizenRequest:
    return gw.RegisterCitizenRequest(
        request_id=request_id or str(uuid.uuid4()),
        full_name=name,
        id_number=id_number,
        phone_number=phone,
        phone_challenge=challenge,
        code=code,
    )


async def test_a_squatter_cannot_register_someone_elses_number(suite: Deployment) -> None:
    victim_id, victim_phone = await person(suite, "王芳")
    squatter_id, _ = await person(suite, "李强")
    squatter = await suite.key(gw.ROLE_CITIZEN)

    # The code goes to the victim's handset; a guess does not prove the number.
    challenge, code = await suite.send_code(victim_phone, squatter)
    guessed = await error_of(
        suite.citizen.RegisterCitizen(
            registration("李强", squatter_id, victim_phone, challenge, wrong(code)),
            metadata=squatter,
        )
    )
    assert guessed.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert {f for f, _ in field_violations(guessed)} == {"code"}

    # Talked out of the victim, the code still does not make the number his: the carrier
    # says the number is registered to another ID.
    challenge, code = await suite.send_code(victim_phone, squatter)
    refused = await error_of(
        suite.citizen.RegisterCitizen(
            registration("李强", squatter_id, victim_phone, challenge, code), metadata=squatter
        )
    )
    assert refused.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert {f for f, _ in field_violations(refused)} == {"phone_number", "id_number"}

    # The owner registers the number (the squatter's attempts left nothing behind).
    owner = await suite.register(phone=victim_phone, id_number=victim_id, name="王芳")
    assert owner.key
    me = await suite.identity.GetUser(
        idn.GetUserRequest(name=f"users/{owner.user_id}"), metadata=owner.metadata
    )
    assert me.user.identity.masked_phone_number == victim_phone[:6] + "****" + victim_phone[-4:]

    # The carrier was asked with evidence of why: the challenge, never a value in clear.
    matches = await suite.control.ListReceived(
        sim.ListReceivedRequest(method="MatchSubscriberIdentity", page_size=500)
    )
    consents = [c.summary["consent_reference"] for c in matches.received_calls]
    assert consents
    assert all(c.startswith("phoneChallenges/") for c in consents)
    assert all(victim_id not in str(c.summary) for c in matches.received_calls)


async def test_a_number_that_changed_hands_is_released_from_its_former_user(
    suite: Deployment,
) -> None:
    old_id, phone = await person(suite, "赵敏")
    former = await suite.register(phone=phone, id_number=old_id, name="赵敏")
    # The carrier recycles the number to a new subscriber, who registers it.
    new_id, _ = await person(suite, "周杰")
    await owns(suite, new_id, phone)
    holder = await suite.register(phone=phone, id_number=new_id, name="周杰")
    assert holder.user_id != former.user_id
    seen = await suite.identity.GetUser(
        idn.GetUserRequest(name=f"users/{former.user_id}"), metadata=former.metadata
    )
    assert seen.user.identity.masked_phone_number == ""


async def test_registration_is_no_oracle_of_who_is_registered(suite: Deployment) -> None:
    registered_id, registered_phone = await person(suite, "孙丽")
    await suite.register(phone=registered_phone, id_number=registered_id, name="孙丽")
    fresh_id, fresh_phone = await person(suite, "孙丽")
    stranger_id, stranger_phone = await person(suite, "钱伟")
    stranger = await suite.key(gw.ROLE_CITIZEN)

    # Step 1 answers alike for a registered and an unregistered number, for either purpose.
    for purpose in (
        idn.PHONE_CHALLENGE_PURPOSE_REGISTRATION,
        idn.PHONE_CHALLENGE_PURPOSE_SIGN_IN,
    ):
        answers = []
        for phone in (registered_phone, fresh_phone):
            sent = await suite.citizen.SendPhoneCode(
                gw.SendPhoneCodeRequest(phone_number=phone, purpose=purpose),
                metadata=stranger,
            )
            assert sent.phone_challenge.startswith("phoneChallenges/")
            assert sent.HasField("expire_time")
            answers.append(sorted(f.name for f, _ in sent.ListFields()))
        assert answers[0] == answers[1]

    # Without the code, registered and unregistered ID numbers and phones answer alike.
    outcomes = []
    for id_number, phone in ((registered_id, registered_phone), (fresh_id, fresh_phone)):
        challenge, code = await suite.send_code(phone, stranger)
        error = await error_of(
            suite.citizen.RegisterCitizen(
                registration("孙丽", id_number, phone, challenge, wrong(code)), metadata=stranger
            )
        )
        outcomes.append((error.code(), error.details(), field_violations(error)))
    assert outcomes[0] == outcomes[1]

    # With his own number proven, someone else's ID number (registered or not) gets the
    # carrier's no, and nothing about our users.
    outcomes = []
    for id_number in (registered_id, fresh_id):
        challenge, code = await suite.send_code(stranger_phone, stranger)
        error = await error_of(
            suite.citizen.RegisterCitizen(
                registration("孙丽", id_number, stranger_phone, challenge, code),
                metadata=stranger,
            )
        )
        outcomes.append((error.code(), error.details(), field_violations(error)))
    assert outcomes[0] == outcomes[1]
    assert outcomes[0][0] is grpc.StatusCode.INVALID_ARGUMENT
    assert stranger_id  # his own ID would register: see the squatting test


async def test_a_lost_answer_returns_the_same_key_and_the_install_key_is_spent(
    suite: Deployment,
) -> None:
    id_number, phone = await person(suite, "吴刚")
    install = await suite.key(gw.ROLE_CITIZEN)
    challenge, code = await suite.send_code(phone, install)
    request = registration("吴刚", id_number, phone, challenge, code)
    first = await suite.citizen.RegisterCitizen(request, metadata=install)
    again = await suite.citizen.RegisterCitizen(request, metadata=install)
    assert first.api_key
    assert again.api_key == first.api_key
    assert again.user == first.user
    key = (("authorization", f"Bearer {first.api_key}"),)
    mine = await suite.identity.GetUser(
        idn.GetUserRequest(name=f"users/{first.user.user_id}"), metadata=key
    )
    assert mine.user.user_id == first.user.user_id

    # Another install repeating the request id gets nothing.
    other = await suite.key(gw.ROLE_CITIZEN)
    denied = await error_of(suite.citizen.RegisterCitizen(request, metadata=other))
    assert denied.code() is grpc.StatusCode.PERMISSION_DENIED

    # The spent install key registers no one else.
    second_id, second_phone = await person(suite, "郑爽")
    challenge, code = await suite.send_code(second_phone, install)
    spent = await error_of(
        suite.citizen.RegisterCitizen(
            registration("郑爽", second_id, second_phone, challenge, code), metadata=install
        )
    )
    assert spent.code() is grpc.StatusCode.FAILED_PRECONDITION

    # A registered citizen registering again is told to sign in (they proved it all).
    fresh = await suite.key(gw.ROLE_CITIZEN)
    challenge, code = await suite.send_code(phone, fresh)
    exists = await error_of(
        suite.citizen.RegisterCitizen(
            registration("吴刚", id_number, phone, challenge, code), metadata=fresh
        )
    )
    assert exists.code() is grpc.StatusCode.ALREADY_EXISTS


async def test_sign_in_on_a_new_device_and_manage_ones_keys(suite: Deployment) -> None:
    citizen = await suite.register()
    device = await suite.key(gw.ROLE_CITIZEN)
    challenge, code = await suite.send_code(
        citizen.phone, device, idn.PHONE_CHALLENGE_PURPOSE_SIGN_IN
    )
    # Someone else's face with the right code: no key.
    stranger_face = f"someone-else-{uuid.uuid4()}"
    await suite.control.SeedFaceOutcomes(
        sim.SeedFaceOutcomesRequest(
            outcomes=[
                face_pb2.FaceOutcomeSeed(
                    face_token=stranger_face, outcome=face_pb2.FACE_OUTCOME_FAIL
                )
            ]
        )
    )
    refused = await error_of(
        suite.citizen.SignInCitizen(
            gw.SignInCitizenRequest(
                request_id=str(uuid.uuid4()),
                phone_challenge=challenge,
                code=code,
                face_token=stranger_face,
            ),
            metadata=device,
        )
    )
    assert refused.code() is grpc.StatusCode.PERMISSION_DENIED
    # The holder's own face, with the same code: a new key for the new device.
    signed = await suite.citizen.SignInCitizen(
        gw.SignInCitizenRequest(
            request_id=str(uuid.uuid4()),
            phone_challenge=challenge,
            code=code,
            face_token=f"liveness-{uuid.uuid4()}",
        ),
        metadata=device,
    )
    assert signed.user.user_id == citizen.user_id
    assert signed.api_key
    assert signed.api_key != citizen.key
    new_key = (("authorization", f"Bearer {signed.api_key}"),)

    listed = await suite.citizen.ListMyApiKeys(gw.ListMyApiKeysRequest(), metadata=new_key)
    ids = {k.key_id for k in listed.keys}
    assert {key_id(citizen.key), key_id(signed.api_key)} <= ids
    assert all(k.subject == citizen.user_id for k in listed.keys)

    # The lost phone's key is revoked from the new one; it stops working.
    revoked = await suite.citizen.RevokeMyApiKey(
        gw.RevokeMyApiKeyRequest(key_id=key_id(citizen.key)), metadata=new_key
    )
    assert revoked.key.revoked

    async def refused_now() -> bool:
        try:
            await suite.citizen.ListMyApiKeys(gw.ListMyApiKeysRequest(), metadata=citizen.metadata)
        except grpc.aio.AioRpcError as err:
            return err.code() is grpc.StatusCode.UNAUTHENTICATED
        return False

    await eventually(refused_now)

    # Someone else's key is no key of yours.
    other = await suite.register()
    foreign = await error_of(
        suite.citizen.RevokeMyApiKey(
            gw.RevokeMyApiKeyRequest(key_id=key_id(other.key)), metadata=new_key
        )
    )
    assert foreign.code() is grpc.StatusCode.NOT_FOUND

    # A proven number with no user behind it: told so, since its holder asks.
    nobody = new_phone()
    install = await suite.key(gw.ROLE_CITIZEN)
    challenge, code = await suite.send_code(nobody, install, idn.PHONE_CHALLENGE_PURPOSE_SIGN_IN)
    missing = await error_of(
        suite.citizen.SignInCitizen(
            gw.SignInCitizenRequest(
                request_id=str(uuid.uuid4()),
                phone_challenge=challenge,
                code=code,
                face_token=f"liveness-{uuid.uuid4()}",
            ),
            metadata=install,
        )
    )
    assert missing.code() is grpc.StatusCode.NOT_FOUND


async def test_the_look_ups_need_a_fresh_face_check_and_carry_it_to_partners(
    suite: Deployment,
) -> None:
    citizen = await suite.register()
    lookups = (
        suite.identity.CountPhoneCards(idn.CountPhoneCardsRequest(), metadata=citizen.metadata),
        suite.identity.ListLinkedAccounts(
            idn.ListLinkedAccountsRequest(), metadata=citizen.metadata
        ),
        suite.identity.ListBankCards(idn.ListBankCardsRequest(), metadata=citizen.metadata),
    )
    for call in lookups:
        refused = await error_of(call)
        assert refused.code() is grpc.StatusCode.FAILED_PRECONDITION

    # Someone else's face in front of the citizen's phone: a failed check opens nothing.
    stranger_face = f"someone-else-{uuid.uuid4()}"
    await suite.control.SeedFaceOutcomes(
        sim.SeedFaceOutcomesRequest(
            outcomes=[
                face_pb2.FaceOutcomeSeed(
                    face_token=stranger_face, outcome=face_pb2.FACE_OUTCOME_FAIL
                )
            ]
        )
    )
    failed = await suite.identity.CreateFaceCheck(
        idn.CreateFaceCheckRequest(request_id=str(uuid.uuid4()), face_token=stranger_face),
        metadata=citizen.metadata,
    )
    assert failed.face_check.result == idn.FACE_CHECK_RESULT_FAILED
    assert not failed.face_check.HasField("expire_time")
    still = await error_of(
        suite.identity.CountPhoneCards(idn.CountPhoneCardsRequest(), metadata=citizen.metadata)
    )
    assert still.code() is grpc.StatusCode.FAILED_PRECONDITION

    passed = await suite.identity.CreateFaceCheck(
        idn.CreateFaceCheckRequest(
            request_id=str(uuid.uuid4()), face_token=f"liveness-{uuid.uuid4()}"
        ),
        metadata=citizen.metadata,
    )
    assert passed.face_check.result == idn.FACE_CHECK_RESULT_PASSED
    consent = passed.face_check.name
    assert consent.startswith("faceChecks/")
    await suite.identity.CountPhoneCards(idn.CountPhoneCardsRequest(), metadata=citizen.metadata)
    await suite.identity.ListBankCards(idn.ListBankCardsRequest(), metadata=citizen.metadata)
    for method in ("CountPhoneCards", "ListCards"):
        seen = await suite.control.ListReceived(
            sim.ListReceivedRequest(method=method, page_size=500)
        )
        assert consent in {c.summary.get("consent_reference") for c in seen.received_calls}


async def test_a_broadnet_subscriber_is_looked_up_at_broadnet_too(suite: Deployment) -> None:
    phone = f"+86192{uuid.uuid4().int % 10**8:08d}"
    id_number = new_id_number()
    await owns(suite, id_number, phone)
    citizen = await suite.register(phone=phone, id_number=id_number)
    await suite.identity.CreateFaceCheck(
        idn.CreateFaceCheckRequest(
            request_id=str(uuid.uuid4()), face_token=f"liveness-{uuid.uuid4()}"
        ),
        metadata=citizen.metadata,
    )
    counted = await suite.identity.CountPhoneCards(
        idn.CountPhoneCardsRequest(), metadata=citizen.metadata
    )
    by_carrier = {c.carrier_id: c for c in counted.carriers}
    assert by_carrier["carrier-cbn"].card_count == 1
    assert counted.complete
    # Broadnet silent: the answer says it may be missing cards.
    await suite.control.SetBehavior(
        sim.SetBehaviorRequest(simulator="carrier-cbn", behavior=sim.Behavior(failure_rate=1.0))
    )
    try:
        partial = await suite.identity.CountPhoneCards(
            idn.CountPhoneCardsRequest(), metadata=citizen.metadata
        )
    finally:
        await suite.control.SetBehavior(
            sim.SetBehaviorRequest(simulator="carrier-cbn", behavior=sim.Behavior())
        )
    assert not partial.complete


async def test_an_account_is_bound_only_when_its_platform_says_it_is_yours(
    suite: Deployment,
) -> None:
    owner = await suite.register(name="欧阳娜娜")
    squatter = await suite.register(name="李强")
    qq = c.Indicator(kind=c.INDICATOR_KIND_QQ_NUMBER, value=f"{uuid.uuid4().int % 10**9 + 10**8}")
    await suite.control.SeedCards(
        sim.SeedCardsRequest(
            account_holders=[
                bank_pb2.AccountHolder(
                    account=qq, holder_name="欧阳娜娜", resident_id_number=owner.id_number
                )
            ]
        )
    )

    async def bind(citizen: Citizen) -> idn.BindAccountResponse:
        response: idn.BindAccountResponse = await suite.identity.BindAccount(
            idn.BindAccountRequest(request_id=str(uuid.uuid4()), account=qq),
            metadata=citizen.metadata,
        )
        return response

    # The squatter cannot bind it, so nothing vouches for him.
    refused = await error_of(bind(squatter))
    assert refused.code() is grpc.StatusCode.FAILED_PRECONDITION
    bound = await bind(owner)
    assert bound.bound_account.confirmation == idn.ACCOUNT_CONFIRMATION_PLATFORM_CONFIRMED
    checked = await suite.identity.VerifyAccount(
        idn.VerifyAccountRequest(account=qq), metadata=squatter.metadata
    )
    assert checked.bound_to_verified_person
    assert checked.holder_identity.masked_name == "欧***"

    # Who holds an account is not for unregistered installs nor carriers to ask.
    for role in (gw.ROLE_CITIZEN, gw.ROLE_CARRIER):
        key = await suite.key(role, "" if role == gw.ROLE_CITIZEN else "carrier-cmcc")
        denied = await error_of(
            suite.identity.VerifyAccount(idn.VerifyAccountRequest(account=qq), metadata=key)
        )
        assert denied.code() is grpc.StatusCode.PERMISSION_DENIED

    # The owner lists and unbinds; then nothing vouches for the account.
    listed = await suite.identity.ListBoundAccounts(
        idn.ListBoundAccountsRequest(), metadata=owner.metadata
    )
    assert [a.name for a in listed.bound_accounts] == [bound.bound_account.name]
    await suite.identity.UnbindAccount(
        idn.UnbindAccountRequest(name=bound.bound_account.name),
        metadata=owner.metadata,
    )
    after = await suite.identity.VerifyAccount(
        idn.VerifyAccountRequest(account=qq), metadata=squatter.metadata
    )
    assert not after.bound_to_verified_person
    foreign = await error_of(
        suite.identity.UnbindAccount(
            idn.UnbindAccountRequest(name=bound.bound_account.name),
            metadata=squatter.metadata,
        )
    )
    assert foreign.code() in (grpc.StatusCode.PERMISSION_DENIED, grpc.StatusCode.INVALID_ARGUMENT)

    # A dispute: bound again by the owner, then the platform says the account is now
    # another person's; that person's binding takes it over.
    again = await bind(owner)
    await suite.control.SeedCards(
        sim.SeedCardsRequest(
            account_holders=[
                bank_pb2.AccountHolder(
                    account=qq, holder_name="李强", resident_id_number=squatter.id_number
                )
            ]
        )
    )
    moved = await bind(squatter)
    assert moved.bound_account.name != again.bound_account.name
    mine = await suite.identity.ListBoundAccounts(
        idn.ListBoundAccountsRequest(), metadata=owner.metadata
    )
    assert not mine.bound_accounts


async def test_a_citizen_reads_who_read_their_data(suite: Deployment) -> None:
    citizen = await suite.register()
    await suite.identity.CreateFaceCheck(
        idn.CreateFaceCheckRequest(
            request_id=str(uuid.uuid4()), face_token=f"liveness-{uuid.uuid4()}"
        ),
        metadata=citizen.metadata,
    )
    await suite.identity.ListBankCards(idn.ListBankCardsRequest(), metadata=citizen.metadata)
    own = await suite.identity.ListAuditEvents(
        idn.ListAuditEventsRequest(), metadata=citizen.metadata
    )
    reads = [(e.actor, e.purpose.split(" ")[0]) for e in own.audit_events]
    assert (f"citizen:{citizen.user_id}", "ListBankCards") in reads
    assert all(e.record == f"users/{citizen.user_id}" for e in own.audit_events)
    other = await suite.register()
    peek = await error_of(
        suite.identity.ListAuditEvents(
            idn.ListAuditEventsRequest(record=f"users/{other.user_id}"),
            metadata=citizen.metadata,
        )
    )
    assert peek.code() is grpc.StatusCode.PERMISSION_DENIED
    anonymous = await suite.key(gw.ROLE_CITIZEN)
    refused = await error_of(
        suite.identity.ListAuditEvents(idn.ListAuditEventsRequest(), metadata=anonymous)
    )
    assert refused.code() is grpc.StatusCode.PERMISSION_DENIED


async def test_a_guardian_agrees_by_code_and_is_a_mobile(suite: Deployment) -> None:
    elder = await suite.register(protected=True)
    guardian = new_phone()

    def setting(*confirmations: gw.GuardianConfirmation) -> gw.SetGuardiansRequest:
        return gw.SetGuardiansRequest(
            protected=True,
            guardian_phone_numbers=[guardian],
            guardian_confirmations=list(confirmations),
        )

    # Named without their consent: refused.
    unasked = await error_of(suite.citizen.SetGuardians(setting(), metadata=elder.metadata))
    assert unasked.code() is grpc.StatusCode.INVALID_ARGUMENT
    # A wrong code is no consent either.
    consent = await suite.guardian_consent(guardian, elder.metadata)
    forged = gw.GuardianConfirmation(
        phone_number=guardian, phone_challenge=consent.phone_challenge, code=wrong(consent.code)
    )
    bad = await error_of(suite.citizen.SetGuardians(setting(forged), metadata=elder.metadata))
    assert bad.code() is grpc.StatusCode.INVALID_ARGUMENT
    # The code the guardian received and passed on: a guardian.
    consent = await suite.guardian_consent(guardian, elder.metadata)
    done = await suite.citizen.SetGuardians(setting(consent), metadata=elder.metadata)
    assert list(done.recipient.guardian_phone_numbers) == [guardian]
    # Kept on the next change without a new code; removed by the elder.
    again = await suite.citizen.SetGuardians(setting(), metadata=elder.metadata)
    assert list(again.recipient.guardian_phone_numbers) == [guardian]
    ended = await suite.citizen.SetGuardians(
        gw.SetGuardiansRequest(protected=True), metadata=elder.metadata
    )
    assert not ended.recipient.guardian_phone_numbers
    # A landline cannot be a guardian.
    landline = await error_of(
        suite.citizen.SetGuardians(
            gw.SetGuardiansRequest(protected=True, guardian_phone_numbers=["010-62345678"]),
            metadata=elder.metadata,
        )
    )
    assert landline.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert [f for f, _ in field_violations(landline)] == ["guardian_phone_numbers[0]"]


async def test_is_this_guan_yu_gets_yes_or_no_and_the_phone_holder_answers(
    suite: Deployment,
) -> None:
    requester = await suite.register()
    guan_yu = await suite.register(name="关羽")

    async def ask_and_answer(expected: str) -> idn.VerificationRequest:
        created = await suite.identity.CreateVerificationRequest(
            idn.CreateVerificationRequestRequest(
                request_id=str(uuid.uuid4()),
                target_phone_number=guan_yu.phone,
                purpose=idn.VERIFICATION_PURPOSE_ACQUAINTANCE,
                expected_name=expected,
            ),
            metadata=requester.metadata,
        )
        name = created.verification_request.name
        # The invitation is open to the holder until answered, then withdrawn.
        open_ones = await suite.identity.ListIncomingVerificationRequests(
            idn.ListIncomingVerificationRequestsRequest(), metadata=guan_yu.metadata
        )
        assert name in [r.name for r in open_ones.verification_requests]
        await suite.identity.RespondToVerificationRequest(
            idn.RespondToVerificationRequestRequest(
                request_id=str(uuid.uuid4()),
                name=name,
                decision=idn.VERIFICATION_DECISION_ACCEPT,
                face_token=f"liveness-{uuid.uuid4()}",
            ),
            metadata=guan_yu.metadata,
        )
        open_ones = await suite.identity.ListIncomingVerificationRequests(
            idn.ListIncomingVerificationRequestsRequest(), metadata=guan_yu.metadata
        )
        assert name not in [r.name for r in open_ones.verification_requests]
        seen = await suite.identity.GetVerificationRequest(
            idn.GetVerificationRequestRequest(name=name), metadata=requester.metadata
        )
        return seen.verification_request

    yes = await ask_and_answer("关羽")
    assert yes.state == idn.VERIFICATION_STATE_VERIFIED
    assert yes.name_check == idn.NAME_CHECK_MATCH
    assert not yes.HasField("target_identity")  # yes or no is all the requester learns
    no = await ask_and_answer("关平")
    assert no.name_check == idn.NAME_CHECK_NO_MATCH
    assert not no.HasField("target_identity")


async def test_a_guardian_ends_the_guardianship_too(suite: Deployment) -> None:
    guardian = await suite.register()
    elder = await suite.register(protected=True, guardians=[guardian.phone])
    stopped = await suite.warning.StopGuarding(wn.StopGuardingRequest(), metadata=guardian.metadata)
    assert stopped.removed_count == 1
    profile = await suite.warning.GetRecipient(wn.GetRecipientRequest(), metadata=elder.metadata)
    assert not profile.recipient.guardian_phone_numbers
