"""Announced police calls: "is this really the police calling me?".

An operator registers a warning call before making it; the callee may then ask
whether a call from that number to them was announced. The callee is always the
asking citizen's own user id, so an answer never says anything about anyone else,
and "no" reads the same whether the number announced nothing or called others.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

#: How long an announcement stands (checked at the edge, with the Duration it came in).
MIN_TTL = timedelta(minutes=1)
MAX_TTL = timedelta(hours=24)

NOT_ANNOUNCED_ADVICE = (
    "没有查到这个号码向您登记的来电。请立即挂断，拨打96110或110核实；"
    "不要转账汇款，不要透露验证码和银行卡信息。"
)


def announced_advice(station: str) -> str:
    return (
        f"这是{station}登记的反诈劝阻来电，请放心接听。"
        "民警不会要求您转账汇款或提供验证码；如有疑问，请拨打96110核实。"
    )


@dataclass(frozen=True, slots=True)
class NewCall:
    """A validated announcement; the callee is its user id (None: not registered)."""

    caller_number: str
    callee_user_id: str | None
    masked_callee: str
    reason: str
    station_name: str
    ttl: timedelta


@dataclass(frozen=True, slots=True)
class AnnouncedCall:
    id: str
    caller_number: str
    masked_callee: str
    reason: str
    station_name: str
    announcer: str
    create_time: datetime
    expire_time: datetime


@dataclass(frozen=True, slots=True)
class CallCheck:
    """The answer a callee gets."""

    call: AnnouncedCall | None

    @property
    def announced(self) -> bool:
        return self.call is not None

    @property
    def advice(self) -> str:
        if self.call is None:
            return NOT_ANNOUNCED_ADVICE
        return announced_advice(self.call.station_name)


def call_name(call_id: str) -> str:
    return f"announcedCalls/{call_id}"
