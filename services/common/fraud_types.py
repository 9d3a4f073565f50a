"""The shared vocabulary of verdicts, for domain code that must not import protobuf:
the same names and numbers as ``antifraud.common.v1.RiskLevel`` and ``FraudCategory``
(a unit test keeps them in step)."""

from __future__ import annotations

import enum


class RiskLevel(enum.IntEnum):
    UNSPECIFIED = 0
    NONE = 1
    LOW = 2
    MEDIUM = 3
    HIGH = 4


class FraudCategory(enum.IntEnum):
    UNSPECIFIED = 0
    ONLINE_LOAN = 1
    ORDER_BRUSHING = 2
    PIG_BUTCHERING = 3
    FAKE_CUSTOMER_SERVICE = 4
    IMPERSONATING_ACQUAINTANCE = 5
    IMPERSONATING_OFFICIALS = 6
    STOCK_TIPS = 7
    FAKE_SHOPPING = 8
    CAMPUS_LOAN_CANCELLATION = 9
    GAME_CURRENCY = 10
    OTHER = 11
