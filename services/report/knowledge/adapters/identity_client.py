"""The identity service as the knowledge context uses it: whose is this phone number?

Asked as the report service itself (no principal), because FindUserByPhone is for
internal services only: whether a number is registered is personal information, and
the analyst who announces a call never learns the answer.
"""

from __future__ import annotations

import grpc

from services.api.antifraud.identity.v1 import identity_pb2, identity_pb2_grpc
from services.common.clients import open_channel
from services.common.context import principal_var
from services.common.errors import Unavailable, Upstream

SERVICE = identity_pb2.DESCRIPTOR.services_by_name["IdentityService"].full_name

#: Codes that say "not now": the operator may simply try again.
_TRANSIENT = frozenset(
    {
        grpc.StatusCode.UNAVAILABLE,
        grpc.StatusCode.DEADLINE_EXCEEDED,
        grpc.StatusCode.RESOURCE_EXHAUSTED,
    }
)


class IdentityDirectory:
    def __init__(self, target: str, *, budget: float = 2.0) -> None:
        self.target = target
        self.budget = budget
        self._channel: grpc.aio.Channel | None = None
        self._stubs: identity_pb2_grpc.IdentityServiceStub | None = None

    @property
    def _stub(self) -> identity_pb2_grpc.IdentityServiceStub:
        # Opened on first use, inside the running event loop (a channel is bound to its loop).
        if self._channel is None:
            # FindUserByPhone is a read: safe for the channel to retry.
            self._channel = open_channel(
                self.target, retry_services=[SERVICE], budget=self.budget, server_name="identity"
            )
            self._stubs = identity_pb2_grpc.IdentityServiceStub(self._channel)  # type: ignore[no-untyped-call]
        assert self._stubs is not None
        return self._stubs

    async def user_of_phone(self, phone_e164: str) -> str | None:
        """The id of the user registered with the number, or None when nobody is."""
        as_service = principal_var.set("")
        try:
            found = await self._stub.FindUserByPhone(
                identity_pb2.FindUserByPhoneRequest(phone_number=phone_e164)
            )
        except grpc.aio.AioRpcError as exc:
            if exc.code() == grpc.StatusCode.NOT_FOUND:
                return None
            if exc.code() in _TRANSIENT:
                raise Unavailable(
                    "the identity service did not answer; nothing was announced, try again"
                ) from None
            raise Upstream.of(exc) from None
        finally:
            principal_var.reset(as_service)
        return found.user_id or None

    async def close(self) -> None:
        if self._channel is not None:
            await self._channel.close(None)
            self._channel = self._stubs = None
