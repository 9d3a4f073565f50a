"""What the gateway composes for the citizen app: registration with a key of
one's own, guardians, and the app self-check."""

from __future__ import annotations

import contextlib
from collections.abc import Awaitable, Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import grpc
import sqlalchemy as sa
from google.protobuf.message import Message
from sqlalchemy.exc import IntegrityError

from gateway.adapters import tables
from gateway.adapters.backends import Backends
from gateway.adapters.keystore import KeyStore, StoredKey
from gateway.domain import key_sealing
from gateway.domain.principals import parse_token
from gateway.entrypoints.proxy import citizen_user_id
from gateway.service_layer.auth import AUTH_HEADER
from services.api.antifraud.common.v1 import common_pb2
from services.api.antifraud.gateway.v1 import gateway_pb2, gateway_pb2_grpc
from services.api.antifraud.identity.v1 import identity_pb2
from services.api.antifraud.report.v1 import report_pb2
from services.api.antifraud.risk.v1 import risk_pb2
from services.api.antifraud.warning.v1 import warning_pb2
from services.common import context as ctx
from services.common import idempotency, regions, validation
from services.common.config import env_float
from services.common.db import Database, UnitOfWork
from services.common.errors import (
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    PermissionDenied,
    Upstream,
)
from services.common.indicators import IndicatorKind
from services.common.logs import get_logger
from services.common.principals import Role
from services.common.validation import collecting

Context = grpc.aio.ServicerContext[Any, Any]
log = get_logger("gateway.citizen")
ERASE_CONFIRMATION = "ERASE"


def home_region(id_number: str) -> str:
    """The region on a resident ID number (its first six digits, the household registration,
    户籍地) when it names one: where the person's call and home-visit tasks go."""
    code = id_number.strip()[:6]
    return code if regions.problem(code) is None else ""


@contextlib.contextmanager
def as_the_gateway() -> Iterator[None]:
    """Call the services as the gateway itself (its own signed token), for the citizen it
    authenticated: export and erasure are served to the gateway only, so that no citizen
    key can name another user id to them."""
    token = ctx.on_behalf_var.set("")
    try:
        yield
    finally:
        ctx.on_behalf_var.reset(token)


MAX_APPS = 1000
MAX_GUARDIANS = 5
R = TypeVar("R", gateway_pb2.RegisterCitizenResponse, gateway_pb2.SignInCitizenResponse)

#: How long a consumed install key keeps working after it registered or signed someone in,
#: so a lost answer can be asked for again; then it is revoked.
INSTALL_KEY_GRACE = timedelta(seconds=env_float("GATEWAY_INSTALL_KEY_GRACE_SECONDS", 900))
#: The idempotency record marking an install key consumed (request id: the key's id).
CONSUMED = "InstallKeyConsumed"
DESCRIPTIONS = {
    "RegisterCitizen": "registered in the app",
    "SignInCitizen": "signed in on a new device",
}


def _user_id() -> str:
    user_id = citizen_user_id()
    if not user_id:
        raise PermissionDenied("register with your real name first")
    return user_id


def api_key_message(key: StoredKey) -> gateway_pb2.ApiKey:
    return gateway_pb2.ApiKey(
        key_id=key.key_id,
        role=gateway_pb2.ROLE_CITIZEN,
        subject=key.subject,
        description=key.description,
        revoked=key.revoked,
    )


def _mobile(v: validation.Violations, field: str, raw: str) -> str:
    found = validation.indicator(v, field, IndicatorKind.PHONE_NUMBER, raw)
    if found is None:
        return ""
    if not (found.value.startswith("+861") and len(found.value) == 14):
        # A guardian is warned by SMS and in the app, and confirms by a code: a mobile.
        v.add(field, "must be a Chinese mobile number")
        return ""
    return found.value


def _phones(field: str, raw: Any) -> list[str]:
    if len(raw) > MAX_GUARDIANS:
        raise InvalidArgument.field(field, f"at most {MAX_GUARDIANS} guardians")
    with collecting() as v:
        found = [_mobile(v, f"{field}[{i}]", p) for i, p in enumerate(raw)]
    return [f for f in found if f]


class CitizenServicer(gateway_pb2_grpc.CitizenServiceServicer):
    def __init__(self, backends: Backends, keys: KeyStore, db: Database) -> None:
        self.backends = backends
        self.keys = keys
        self.db = db

    def _install(self, context: Context) -> tuple[str, str]:
        """The calling install key's (id, secret): an unregistered citizen key."""
        if citizen_user_id():
            raise FailedPrecondition("this key already belongs to a registered user")
        metadata = dict(context.invocation_metadata() or ())
        _, _, token = str(metadata.get(AUTH_HEADER, "")).partition(" ")
        parsed = parse_token(token.strip())
        if parsed is None:  # the interceptor let it in, so this does not happen
            raise PermissionDenied("an install key is required")
        return parsed

    async def _issue_once(
        self,
        context: Context,
        method: str,
        request_id: str,
        request: Message,
        response_type: type[R],
        work: Callable[[], Awaitable[tuple[R, str]]],
    ) -> R:
        """Run ``work`` (which answers and names the user) once per request id; the install
        key that calls is consumed, and a repeat by it returns the same new key."""
        key_id, secret = self._install(context)
        print_ = idempotency.fingerprint(request)
        async with UnitOfWork(self.db) as uow:
            prior = await idempotency.recall(
                uow.conn, tables.idempotency_keys, method, request_id, print_
            )
            claim = await uow.conn.scalar(
                sa.select(tables.idempotency_keys.c.fingerprint).where(
                    tables.idempotency_keys.c.method == CONSUMED,
                    tables.idempotency_keys.c.request_id == key_id,
                )
            )
        if prior is not None:
            return _opened(response_type.FromString(prior), key_id, secret, request_id)
        mine = f"{method}:{request_id}"
        if claim is not None and claim != mine:
            raise FailedPrecondition(
                "this install key has already registered or signed in a user; use the key "
                "that call returned (the same request id returns it again)"
            )
        if claim is None:
            try:
                async with UnitOfWork(self.db) as uow:
                    await idempotency.remember(
                        uow.conn, tables.idempotency_keys, CONSUMED, key_id, mine,
                        gateway_pb2.ListMyApiKeysRequest(),
                    )  # fmt: skip
                    await uow.commit()
            except IntegrityError:
                # A twin of this very request (same request id) is told "in progress".
                async with UnitOfWork(self.db) as uow:
                    holder = await uow.conn.scalar(
                        sa.select(tables.idempotency_keys.c.fingerprint).where(
                            tables.idempotency_keys.c.method == CONSUMED,
                            tables.idempotency_keys.c.request_id == key_id,
                        )
                    )
                if holder == mine:
                    raise idempotency.InProgress(
                        f"request_id {request_id} is still being processed; retry shortly"
                    ) from None
                raise FailedPrecondition("this install key is registering a user already") from None
        # The request id is claimed before any work: a twin is told "in progress" (ABORTED).
        async with UnitOfWork(self.db) as uow:
            prior = await idempotency.claim(
                uow.conn, tables.idempotency_keys, method, request_id, print_
            )
            await uow.commit()
        if prior is not None:
            return _opened(response_type.FromString(prior), key_id, secret, request_id)
        try:
            response, user_id = await work()
        except BaseException:
            # Nothing was issued: the install key may try again, with any request id.
            async with UnitOfWork(self.db) as uow:
                await uow.conn.execute(
                    sa.delete(tables.idempotency_keys).where(
                        tables.idempotency_keys.c.method == CONSUMED,
                        tables.idempotency_keys.c.request_id == key_id,
                    )
                )
                await idempotency.release(uow.conn, tables.idempotency_keys, method, request_id)
                await uow.commit()
            raise
        issued = await self.keys.create(Role.CITIZEN, user_id, DESCRIPTIONS[method])
        stored = response_type()
        stored.CopyFrom(response)
        stored.api_key = key_sealing.seal(  # type: ignore[attr-defined]
            issued.token, install_key_id=key_id, install_secret=secret, request_id=request_id
        )
        async with UnitOfWork(self.db) as uow:
            await idempotency.remember(
                uow.conn, tables.idempotency_keys, method, request_id, print_, stored
            )
            await uow.commit()
        # The install key is spent: it works on for the grace (retries), then not at all.
        await self.keys.revoke(key_id, after=INSTALL_KEY_GRACE)
        response.api_key = issued.token  # type: ignore[attr-defined]
        return response

    async def _confirm_guardians(
        self, numbers: list[str], confirmations: Any, already: set[str]
    ) -> None:
        """Every new guardian has passed on the code sent to their number: they agreed."""
        by_phone: dict[str, Any] = {}
        with collecting() as v:
            for i, given in enumerate(confirmations):
                phone = _mobile(v, f"guardian_confirmations[{i}].phone_number", given.phone_number)
                if phone:
                    by_phone[phone] = given
        for i, number in enumerate(numbers):
            if number in already:
                continue
            given = by_phone.get(number)
            if given is None:
                raise InvalidArgument.field(
                    f"guardian_phone_numbers[{i}]",
                    "a new guardian confirms with the code sent to their number "
                    "(SendPhoneCode, purpose GUARDIAN)",
                )
            try:
                await self.backends.identity.ConfirmPhoneChallenge(
                    identity_pb2.ConfirmPhoneChallengeRequest(
                        phone_challenge=given.phone_challenge,
                        phone_number=number,
                        code=given.code,
                        purpose=identity_pb2.PHONE_CHALLENGE_PURPOSE_GUARDIAN,
                    )
                )
            except grpc.aio.AioRpcError as err:
                raise Upstream.of(err) from None

    async def SendPhoneCode(
        self, request: gateway_pb2.SendPhoneCodeRequest, context: Context
    ) -> gateway_pb2.SendPhoneCodeResponse:
        try:
            started = await self.backends.identity.StartPhoneChallenge(
                identity_pb2.StartPhoneChallengeRequest(
                    phone_number=request.phone_number, purpose=request.purpose
                )
            )
        except grpc.aio.AioRpcError as err:
            raise Upstream.of(err) from None
        return gateway_pb2.SendPhoneCodeResponse(
            phone_challenge=started.phone_challenge,
            masked_phone_number=started.masked_phone_number,
            expire_time=started.expire_time,
        )

    async def RegisterCitizen(
        self, request: gateway_pb2.RegisterCitizenRequest, context: Context
    ) -> gateway_pb2.RegisterCitizenResponse:
        with collecting() as v:
            request_id = validation.request_id(v, request.request_id)
            phone = validation.indicator(
                v, "phone_number", IndicatorKind.PHONE_NUMBER, request.phone_number
            )
            # Checked here too: whatever principal the gateway calls identity as, no
            # registration through the front door skips proving the phone.
            if not request.phone_challenge.strip():
                v.add("phone_challenge", "is required: SendPhoneCode first")
            if not request.code.strip():
                v.add("code", "is required: the code the SMS carried")
        guardians = _phones("guardian_phone_numbers", request.guardian_phone_numbers)
        assert phone is not None

        async def work() -> tuple[gateway_pb2.RegisterCitizenResponse, str]:
            try:
                registered = await self.backends.identity.RegisterUser(
                    identity_pb2.RegisterUserRequest(
                        request_id=request_id,
                        full_name=request.full_name,
                        id_number=request.id_number,
                        phone_number=request.phone_number,
                        phone_challenge=request.phone_challenge,
                        code=request.code,
                    )
                )
            except grpc.aio.AioRpcError as err:
                raise Upstream.of(err) from None
            await self._confirm_guardians(guardians, request.guardian_confirmations, set())
            try:
                await self.backends.warning.UpsertRecipient(
                    warning_pb2.UpsertRecipientRequest(
                        recipient=warning_pb2.Recipient(
                            user_id=registered.user.user_id,
                            phone_number=phone.value,
                            protected=request.protected,
                            guardian_phone_numbers=guardians,
                            region=home_region(request.id_number),
                        ),
                        # Identity proved the number is this user's now (code, carrier).
                        take_over_phone_number=True,
                    )
                )
            except grpc.aio.AioRpcError as err:
                raise Upstream.of(err) from None
            user = registered.user
            return gateway_pb2.RegisterCitizenResponse(user=user), user.user_id

        return await self._issue_once(
            context,
            "RegisterCitizen",
            request_id,
            request,
            gateway_pb2.RegisterCitizenResponse,
            work,
        )

    async def SignInCitizen(
        self, request: gateway_pb2.SignInCitizenRequest, context: Context
    ) -> gateway_pb2.SignInCitizenResponse:
        with collecting() as v:
            request_id = validation.request_id(v, request.request_id)

        async def work() -> tuple[gateway_pb2.SignInCitizenResponse, str]:
            try:
                signed = await self.backends.identity.SignInUser(
                    identity_pb2.SignInUserRequest(
                        request_id=request_id,
                        phone_challenge=request.phone_challenge,
                        code=request.code,
                        face_token=request.face_token,
                    )
                )
            except grpc.aio.AioRpcError as err:
                raise Upstream.of(err) from None
            return gateway_pb2.SignInCitizenResponse(user=signed.user), signed.user.user_id

        return await self._issue_once(
            context, "SignInCitizen", request_id, request, gateway_pb2.SignInCitizenResponse, work
        )

    async def ListMyApiKeys(
        self, request: gateway_pb2.ListMyApiKeysRequest, context: Context
    ) -> gateway_pb2.ListMyApiKeysResponse:
        user_id = _user_id()
        found = await self.keys.list_for(Role.CITIZEN, user_id)
        return gateway_pb2.ListMyApiKeysResponse(keys=[api_key_message(k) for k in found])

    async def RevokeMyApiKey(
        self, request: gateway_pb2.RevokeMyApiKeyRequest, context: Context
    ) -> gateway_pb2.RevokeMyApiKeyResponse:
        user_id = _user_id()
        key_id = request.key_id.strip()
        if not key_id:
            raise InvalidArgument.field("key_id", "is required")
        found = await self.keys.find(key_id)
        if found is None or found.role is not Role.CITIZEN or found.subject != user_id:
            # Someone else's key and no key at all are told apart by no one.
            raise NotFound("you have no key with this id")
        await self.keys.revoke(key_id)
        again = await self.keys.find(key_id)
        assert again is not None
        return gateway_pb2.RevokeMyApiKeyResponse(key=api_key_message(again))

    async def SetGuardians(
        self, request: gateway_pb2.SetGuardiansRequest, context: Context
    ) -> gateway_pb2.SetGuardiansResponse:
        user_id = _user_id()
        guardians = _phones("guardian_phone_numbers", request.guardian_phone_numbers)
        try:
            current = await self.backends.warning.GetRecipient(
                warning_pb2.GetRecipientRequest(user_id=user_id)
            )
        except grpc.aio.AioRpcError as err:
            raise Upstream.of(err) from None
        recipient = current.recipient
        await self._confirm_guardians(
            guardians,
            request.guardian_confirmations,
            set(recipient.guardian_phone_numbers),
        )
        try:
            recipient.protected = request.protected
            del recipient.guardian_phone_numbers[:]
            recipient.guardian_phone_numbers.extend(guardians)
            updated = await self.backends.warning.UpsertRecipient(
                warning_pb2.UpsertRecipientRequest(recipient=recipient)
            )
        except grpc.aio.AioRpcError as err:
            raise Upstream.of(err) from None
        return gateway_pb2.SetGuardiansResponse(recipient=updated.recipient)

    async def CheckApps(
        self, request: gateway_pb2.CheckAppsRequest, context: Context
    ) -> gateway_pb2.CheckAppsResponse:
        if not 1 <= len(request.apps) <= MAX_APPS:
            raise InvalidArgument.field("apps", f"must hold 1 to {MAX_APPS} apps")
        values = []
        with collecting() as v:
            for i, app in enumerate(request.apps):
                raw = app.package_name + (
                    f"#{app.certificate_sha256}" if app.certificate_sha256 else ""
                )
                found = validation.indicator(v, f"apps[{i}]", IndicatorKind.APP, raw)
                if found is not None:
                    values.append(
                        common_pb2.Indicator(kind=common_pb2.INDICATOR_KIND_APP, value=found.value)
                    )
        try:
            checked = await self.backends.risk.BatchCheckIndicators(
                risk_pb2.BatchCheckIndicatorsRequest(indicators=values)
            )
        except grpc.aio.AioRpcError as err:
            raise Upstream.of(err) from None
        return gateway_pb2.CheckAppsResponse(verdicts=checked.verdicts)

    async def ExportMyData(
        self, request: gateway_pb2.ExportMyDataRequest, context: Context
    ) -> gateway_pb2.ExportMyDataResponse:
        """Each service's part, unmasked: only ever for the caller's own user id."""
        user_id = _user_id()
        try:
            with as_the_gateway():
                identity = await self.backends.identity.ExportPersonalData(
                    identity_pb2.ExportPersonalDataRequest(user_id=user_id)
                )
                report = await self.backends.report.ExportPersonalData(
                    report_pb2.ExportPersonalDataRequest(user_id=user_id)
                )
                warning = await self.backends.warning.ExportPersonalData(
                    warning_pb2.ExportPersonalDataRequest(user_id=user_id)
                )
        except grpc.aio.AioRpcError as err:
            if err.code() == grpc.StatusCode.NOT_FOUND:
                raise NotFound("no data is held for this user") from None
            raise Upstream.of(err) from None
        response = gateway_pb2.ExportMyDataResponse(
            user_id=user_id, identity=identity, report=report, warning=warning
        )
        response.export_time.FromDatetime(datetime.now(UTC))
        return response

    async def EraseMyData(
        self, request: gateway_pb2.EraseMyDataRequest, context: Context
    ) -> gateway_pb2.EraseMyDataResponse:
        """Erase the caller everywhere, then revoke their keys. Each step can be repeated, so a
        failure half-way is finished by calling again with a key that still works."""
        user_id = _user_id()
        if request.confirm != ERASE_CONFIRMATION:
            raise InvalidArgument.field("confirm", f"must be {ERASE_CONFIRMATION}")
        try:
            with as_the_gateway():
                report = await self.backends.report.ErasePersonalData(
                    report_pb2.ErasePersonalDataRequest(user_id=user_id)
                )
                warning = await self.backends.warning.ErasePersonalData(
                    warning_pb2.ErasePersonalDataRequest(user_id=user_id)
                )
                # Identity last: until it is gone, the key still names a registered user.
                identity = await self.backends.identity.ErasePersonalData(
                    identity_pb2.ErasePersonalDataRequest(user_id=user_id)
                )
        except grpc.aio.AioRpcError as err:
            raise Upstream.of(err) from None
        revoked = await self.keys.revoke_subject(Role.CITIZEN, user_id)
        log.info("citizen erased", revoked_keys=revoked)
        return gateway_pb2.EraseMyDataResponse(
            identity=identity, report=report, warning=warning, revoked_key_count=revoked
        )


def _opened(response: R, key_id: str, secret: str, request_id: str) -> R:
    """A stored response with its key unsealed for the install that asked."""
    try:
        response.api_key = key_sealing.open_sealed(  # type: ignore[attr-defined]
            response.api_key,  # type: ignore[attr-defined]
            install_key_id=key_id,
            install_secret=secret,
            request_id=request_id,
        )
    except key_sealing.NotYours:
        raise PermissionDenied("this request id was used by another install") from None
    return response
