"""The call-screening rule: what a carrier does with a call or SMS from a caller of a given
verdict, and what follows for the callee.

Verified callers are labelled as such (反诈名片); confirmed fraud is blocked; corroborated
reports warn; weak signals label. A risky caller (MEDIUM or higher, not verified) makes the
contact worth keeping and warns the callee: a callee talking to a suspected fraudster gets
the full medium tier (a 96110 call), one whose fraud call was blocked is told so by push or
SMS.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from services.warning.domain.model import RiskLevel


class ScreeningAction(enum.IntEnum):
    ALLOW = 1
    LABEL = 2
    WARN = 3
    BLOCK = 4


LABELS = {
    RiskLevel.LOW: "反诈提醒：该号码有涉诈风险，请谨慎接听",
    RiskLevel.MEDIUM: "反诈提醒：该号码被多人举报涉嫌诈骗，请勿转账或透露验证码",
    RiskLevel.HIGH: "该号码已确认为诈骗号码，呼叫已拦截",
}
WARNING_TEXT = {
    RiskLevel.MEDIUM: (
        "您正在与一个被多人举报涉嫌诈骗的号码联系。请勿转账、勿透露验证码；如有疑问请拨打96110。"
    ),
    RiskLevel.HIGH: (
        "我们拦截了一个已确认的诈骗号码对您的呼叫。任何自称公检法、客服要求转账的都是诈骗。"
    ),
}
#: The level the callee is warned at, by the caller's level.
CALLEE_WARNING_LEVEL = {RiskLevel.MEDIUM: RiskLevel.MEDIUM, RiskLevel.HIGH: RiskLevel.LOW}


@dataclass(frozen=True)
class CallerVerdict:
    """What the rule needs of the caller's verdict."""

    level: RiskLevel
    verified: bool = False
    verified_label: str = ""


@dataclass(frozen=True)
class Decision:
    action: ScreeningAction
    label: str
    #: The callee's warning level and text; None when the caller carries no risk.
    callee_level: RiskLevel | None = None
    callee_text: str = ""

    @property
    def records(self) -> bool:
        """Whether the contact is kept and the callee warned."""
        return self.callee_level is not None


def decide(verdict: CallerVerdict) -> Decision:
    if verdict.verified:
        return Decision(ScreeningAction.LABEL, verdict.verified_label)
    level = verdict.level
    if level == RiskLevel.HIGH:
        action = ScreeningAction.BLOCK
    elif level == RiskLevel.MEDIUM:
        action = ScreeningAction.WARN
    elif level == RiskLevel.LOW:
        return Decision(ScreeningAction.LABEL, LABELS[level])
    else:
        return Decision(ScreeningAction.ALLOW, "")
    return Decision(action, LABELS[level], CALLEE_WARNING_LEVEL[level], WARNING_TEXT[level])
