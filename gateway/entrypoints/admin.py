"""API key management for administrators."""

from __future__ import annotations

from typing import Any

import grpc

from gateway.adapters.keystore import KeyStore, StoredKey
from gateway.domain.principals import key_principal
from gateway.service_layer.streams import OpenStreams
from services.api.antifraud.gateway.v1 import gateway_pb2, gateway_pb2_grpc
from services.common import pagination, regions, validation
from services.common.errors import InvalidArgument, NotFound
from services.common.principals import InvalidPrincipal, Role
from services.common.validation import collecting

Context = grpc.aio.ServicerContext[Any, Any]
_ROLES = {
    gateway_pb2.ROLE_CITIZEN: Role.CITIZEN,
    gateway_pb2.ROLE_CARRIER: Role.CARRIER,
    gateway_pb2.ROLE_BANK: Role.BANK,
    gateway_pb2.ROLE_ANALYST: Role.ANALYST,
    gateway_pb2.ROLE_ADMIN: Role.ADMIN,
}
_NUMBERS = {role: number for number, role in _ROLES.items()}


def _key_pb(key: StoredKey) -> gateway_pb2.ApiKey:
    return gateway_pb2.ApiKey(
        key_id=key.key_id,
        role=_NUMBERS[key.role],  # type: ignore[arg-type]
        subject=key.subject,
        description=key.description,
        revoked=key.revoked,
        region=key.region,
    )


class AdminServicer(gateway_pb2_grpc.AdminServiceServicer):
    def __init__(self, keys: KeyStore, streams: OpenStreams) -> None:
        self.keys = keys
        self.streams = streams

    async def CreateApiKey(
        self, request: gateway_pb2.CreateApiKeyRequest, context: Context
    ) -> gateway_pb2.CreateApiKeyResponse:
        with collecting() as v:
            role = _ROLES.get(request.role)  # type: ignore[call-overload]
            if role is None:
                v.add(
                    "role", "is required" if not request.role else f"unknown value {request.role}"
                )
            subject = validation.text(v, "subject", request.subject, max_len=128)
            description = validation.text(v, "description", request.description, max_len=200)
            region = request.region.strip()
            if region and role is not None and role is not Role.ANALYST:
                v.add("region", "only an officer's (analyst's) key serves a region")
            elif region and (why := regions.problem(region)) is not None:
                v.add("region", why)
        assert role is not None
        try:
            # Refused here rather than issuing a key that every service would refuse.
            key_principal(role, subject, region)
        except InvalidPrincipal as exc:
            raise InvalidArgument.field("subject", str(exc)) from None
        issued = await self.keys.create(role, subject, description, region)
        stored = await self.keys.find(issued.key_id)
        assert stored is not None
        return gateway_pb2.CreateApiKeyResponse(key=_key_pb(stored), api_key=issued.token)

    async def RevokeApiKey(
        self, request: gateway_pb2.RevokeApiKeyRequest, context: Context
    ) -> gateway_pb2.RevokeApiKeyResponse:
        with collecting() as v:
            key_id = validation.text(v, "key_id", request.key_id, max_len=16, required=True)
        await self.keys.revoke(key_id)
        self.keys.forget(key_id)
        self.streams.revoke(key_id)  # other replicas end theirs when they read the revocation
        stored = await self.keys.find(key_id)
        if stored is None:
            raise NotFound("no such key")
        return gateway_pb2.RevokeApiKeyResponse(key=_key_pb(stored))

    async def ListApiKeys(
        self, request: gateway_pb2.ListApiKeysRequest, context: Context
    ) -> gateway_pb2.ListApiKeysResponse:
        with collecting() as v:
            size = validation.page_size(v, request.page_size)
        position = pagination.decode(request.page_token) or {}
        after = str(position.get("after", ""))
        found = await self.keys.list(after, size + 1)
        response = gateway_pb2.ListApiKeysResponse(keys=[_key_pb(k) for k in found[:size]])
        if len(found) > size:
            response.next_page_token = pagination.encode({"after": found[size - 1].key_id})
        return response
