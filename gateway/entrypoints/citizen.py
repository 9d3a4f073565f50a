"""What the gateway composes for the citizen app: registration with a key of
one's own, guardians, and the app self-check."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import grpc

from gateway.adapters import tables
from gateway.adapters.backends import Backends
from gateway.adapters.keystore import KeyStore
from gateway.entrypoints.proxy import citizen_user_id
from services.api.antifraud.common.v1 import common_pb2
from services.api.antifraud.gateway.v1 import gateway_pb2, gateway_pb2_grpc
from services.api.antifraud.identity.v1 import identity_pb2
from services.api.antifraud.report.v1 import report_pb2
from services.api.antifraud.risk.v1 import risk_pb2
from services.api.antifraud.warning.v1 import warning_pb2
from services.common import context as ctx
from services.common import idempotency, validation
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


@contextlib.contextmanager
def as_the_gateway() -> Iterator[None]:
    """Call the services as the suite itself (no principal), for the citizen it authenticated:
    export and erasure are served to internal callers only, so that no citizen key can name
    another user id to them."""
    token = ctx.principal_var.set("")
    try:
        yield
    finally:
        ctx.principal_var.reset(token)


MAX_APPS = 1000
MAX_GUARDIANS = 5


def _user_id() -> str:
    user_id = citizen_user_id()
    if not user_id:
        raise PermissionDenied("register with your real name first")
    return user_id


def _phones(field: str, raw: Any) -> list[str]:
    if len(raw) > MAX_GUARDIANS:
        raise InvalidArgument.field(field, f"at most {MAX_GUARDIANS} guardians")
    with collecting() as v:
        found = [
            validation.indicator(v, f"{field}[{i}]", IndicatorKind.PHONE_NUMBER, p)
            for i, p in enumerate(raw)
        ]
    return [f.value for f in found if f is not None]


class CitizenServicer(gateway_pb2_grpc.CitizenServiceServicer):
    def __init__(self, backends: Backends, keys: KeyStore, db: Database) -> None:
        self.backends = backends
        self.keys = keys
        self.db = db

    async def RegisterCitizen(
        self, request: gateway_pb2.RegisterCitizenRequest, context: Context
    ) -> gateway_pb2.RegisterCitizenResponse:
        if citizen_user_id():
            raise FailedPrecondition("this key already belongs to a registered user")
        with collecting() as v:
            request_id = validation.request_id(v, request.request_id)
            phone = validation.indicator(
                v, "phone_number", IndicatorKind.PHONE_NUMBER, request.phone_number
            )
        guardians = _phones("guardian_phone_numbers", request.guardian_phone_numbers)
        assert phone is not None
        print_ = idempotency.fingerprint(request)
        async with UnitOfWork(self.db) as uow:
            prior = await idempotency.recall(
                uow.conn, tables.idempotency_keys, "RegisterCitizen", request_id, print_
            )
        if prior is not None:
            # The key was shown once, to the first response; it is never stored.
            return gateway_pb2.RegisterCitizenResponse.FromString(prior)
        try:
            registered = await self.backends.identity.RegisterUser(
                identity_pb2.RegisterUserRequest(
                    request_id=request_id,
                    full_name=request.full_name,
                    id_number=request.id_number,
                    phone_number=request.phone_number,
                )
            )
            await self.backends.warning.UpsertRecipient(
                warning_pb2.UpsertRecipientRequest(
                    recipient=warning_pb2.Recipient(
                        user_id=registered.user.user_id,
                        phone_number=phone.value,
                        protected=request.protected,
                        guardian_phone_numbers=guardians,
                    )
                )
            )
        except grpc.aio.AioRpcError as err:
            raise Upstream.of(err) from None
        response = gateway_pb2.RegisterCitizenResponse(user=registered.user)
        issued = await self.keys.create(
            Role.CITIZEN, registered.user.user_id, "registered in the app"
        )
        async with UnitOfWork(self.db) as uow:
            await idempotency.remember(
                uow.conn, tables.idempotency_keys, "RegisterCitizen", request_id, print_, response
            )
            await uow.commit()
        response.api_key = issued.token
        return response

    async def SetGuardians(
        self, request: gateway_pb2.SetGuardiansRequest, context: Context
    ) -> gateway_pb2.SetGuardiansResponse:
        user_id = _user_id()
        guardians = _phones("guardian_phone_numbers", request.guardian_phone_numbers)
        try:
            current = await self.backends.warning.GetRecipient(
                warning_pb2.GetRecipientRequest(user_id=user_id)
            )
            recipient = current.recipient
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
