"""Channels and stubs to the four services, from configuration."""

from __future__ import annotations

import asyncio

import grpc

from services.api.antifraud.identity.v1 import identity_pb2_grpc
from services.api.antifraud.report.v1 import report_pb2_grpc
from services.api.antifraud.risk.v1 import risk_pb2_grpc
from services.api.antifraud.warning.v1 import warning_pb2_grpc
from services.common.clients import open_channel
from services.common.config import target

#: Every risk method is a read or carries a request id, so retrying UNAVAILABLE is safe.
#: The others are not retried here: a create without a request id may have happened.
_SAFE = {"risk": ["antifraud.risk.v1.RiskService"]}


class Backends:
    def __init__(self) -> None:
        self.channels: dict[str, grpc.aio.Channel] = {
            name: open_channel(target(name), retry_services=_SAFE.get(name, ()), server_name=name)
            for name in ("risk", "report", "warning", "identity")
        }
        self.risk = risk_pb2_grpc.RiskServiceStub(self.channels["risk"])
        self.report = report_pb2_grpc.ReportServiceStub(self.channels["report"])
        self.warning = warning_pb2_grpc.WarningServiceStub(self.channels["warning"])
        self.identity = identity_pb2_grpc.IdentityServiceStub(self.channels["identity"])

    async def close(self) -> None:
        await asyncio.gather(*(channel.close(None) for channel in self.channels.values()))
