"""Payee checks for banks: the risk verdict and confirmation of payee, at once."""

from __future__ import annotations

import asyncio
from typing import Any

import grpc

from gateway.adapters.backends import Backends
from services.api.antifraud.gateway.v1 import gateway_pb2, gateway_pb2_grpc
from services.api.antifraud.identity.v1 import identity_pb2
from services.api.antifraud.risk.v1 import risk_pb2
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
        assert account is not None
        if account.kind not in ACCOUNT_KINDS:
            raise InvalidArgument.field("account.kind", "must be a bank or payment account")
        risk_call = self.backends.risk.CheckIndicator(
            risk_pb2.CheckIndicatorRequest(indicator=request.account)
        )
        payee_call = (
            self.backends.identity.CheckPayee(
                identity_pb2.CheckPayeeRequest(account=request.account, payee_name=name)
            )
            if name
            else None
        )
        results = await asyncio.gather(
            risk_call, *([payee_call] if payee_call else []), return_exceptions=True
        )
        verdict = results[0]
        if isinstance(verdict, grpc.aio.AioRpcError):
            raise Upstream.of(verdict)
        if isinstance(verdict, BaseException):
            raise verdict
        response = gateway_pb2.CheckPayeeResponse(verdict=verdict.verdict)
        if payee_call is not None:
            payee = results[1]
            if isinstance(payee, grpc.aio.AioRpcError):
                # The name check is a help, not a gate: say it could not be answered.
                response.match = identity_pb2.PAYEE_MATCH_UNAVAILABLE
            elif isinstance(payee, BaseException):
                raise payee
            else:
                response.match = payee.match
                response.masked_holder_name = payee.masked_holder_name
        return response
