"""The domain vocabulary matches the shared protos, name for name and number for number."""

from __future__ import annotations

import enum

import pytest

from services.api.antifraud.common.v1 import common_pb2
from services.common.fraud_types import FraudCategory, RiskLevel


@pytest.mark.parametrize(
    ("domain", "proto", "prefix"),
    [
        (RiskLevel, common_pb2.RiskLevel, "RISK_LEVEL_"),
        (FraudCategory, common_pb2.FraudCategory, "FRAUD_CATEGORY_"),
    ],
)
def test_enums_match_the_proto(domain: type[enum.IntEnum], proto: object, prefix: str) -> None:
    from_proto = {name.removeprefix(prefix): number for name, number in proto.items()}  # type: ignore[attr-defined]
    assert {m.name: m.value for m in domain} == from_proto
