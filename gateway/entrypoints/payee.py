"""Payee checks for banks: the identity service's pre-payment decision, passed through.

The decision rule (name match, account risk, the payer's recent risky contacts) lives in
the identity service; the gateway only checks the request's shape and forwards it.
"""

from __future__ import annotations

from typing import Any

import grpc

from gateway.adapters.backends import Backends
from services.api.antifraud.gateway.v1 import gateway_pb2, gateway_pb2_grpc
from services.api.antifraud.identity.v1 import identity_pb2
from services.common import validation
from services.common.errors import InvalidArgument, Upstream
from services.common.indicators import IndicatorKind
from services.common.validation import collecting

Context = grpc.aio.ServicerContext[Any, Any]
ACCOUNT_KINDS = (IndicatorKind.BANK_ACCOUNT, IndicatorKind.PAYMENT_ACCOUNT)


class PayeeServicer(gateway_pb2_grpc.PayeeServiceServicer):
    def __init__(self, backends: Backends) -> None:
        self.backends = backends

    async def CheckPayee(
        self, request: gateway_pb2.CheckPayeeRequest, context: Context
    ) -> gateway_pb2.CheckPayeeResponse:
        with collecting() as v:
            account = validation.indicator(
                v, "account", request.account.kind, request.account.value
            )
            name = validation.text(v, "payee_name", request.payee_name, max_len=64)
            payer = validation.text(v, "payer_phone_number", request.payer_phone_number, max_len=32)
        assert account is not None
        if account.kind not in ACCOUNT_KINDS:
            raise InvalidArgument.field("account.kind", "must be a bank or payment account")
        try:
            found = await self.backends.identity.CheckPayee(
                identity_pb2.CheckPayeeRequest(
                    account=request.account, payee_name=name, payer_phone_number=payer
                )
            )
        except grpc.aio.AioRpcError as exc:
            raise Upstream.of(exc) from None
        response = gateway_pb2.CheckPayeeResponse(
            verdict=found.verdict,
            match=found.match,
            masked_holder_name=found.masked_holder_name,
            action=found.action,
            reasons=found.reasons,
            decision=found.decision,
        )
        if found.HasField("cooling_off"):
            response.cooling_off.CopyFrom(found.cooling_off)
        return response
