"""What people read: the standard warning texts and the text each delivery carries.

A warning's deliveries derive their text from the warning at send time, so a
retry always sends the same words. Indicators appear masked; a flash SMS must
fit one segment (70 characters), so it carries a short fixed text.
"""

from __future__ import annotations

from services.common.indicators import IndicatorKind, display
from services.warning.domain.model import Channel, Reason, RiskLevel

#: The sender shown on warning SMS: the national anti-fraud SMS service.
SMS_SENDER_ID = "12381"
FLASH_SMS_MAX_CHARS = 70

_ADVICE = "公检法不会电话办案，客服不会主动退款，请勿转账汇款、勿透露验证码。如有疑问请拨打96110。"

_EXPOSURE = {
    IndicatorKind.PHONE_NUMBER: "您近期与涉嫌诈骗的号码{v}有过联系。",
    IndicatorKind.SMS_SENDER: "您近期收到涉嫌诈骗的短信（发送方{v}）。",
    IndicatorKind.URL: "您可能访问了涉嫌诈骗的网址{v}。",
    IndicatorKind.DOMAIN: "您可能访问了涉嫌诈骗的网站{v}。",
    IndicatorKind.BANK_ACCOUNT: "您可能正向涉嫌诈骗的账户{v}转账。",
    IndicatorKind.PAYMENT_ACCOUNT: "您可能正向涉嫌诈骗的支付账户{v}付款。",
    IndicatorKind.APP: "您可能安装了涉嫌诈骗的应用{v}。",
}

_URGENCY = {
    RiskLevel.HIGH: "【国家反诈中心紧急预警】",
    RiskLevel.MEDIUM: "【国家反诈中心预警】",
    RiskLevel.LOW: "【国家反诈中心提醒】",
}

FLASH_TEXT = "【国家反诈中心】您正遭遇诈骗风险！请立即停止转账汇款，民警将与您联系，咨询请拨96110。"


def standard_text(level: RiskLevel, reason: Reason) -> str:
    """The text of a warning dispatched without one."""
    head = _URGENCY.get(level, _URGENCY[RiskLevel.LOW])
    if reason.indicator is not None:
        template = _EXPOSURE.get(reason.indicator.kind, "您可能接触了涉嫌诈骗的线索{v}。")
        return head + template.format(v=display(reason.indicator)) + _ADVICE
    return head + "您可能正遭遇与已立案诈骗案件相关的诈骗。" + _ADVICE


def guardian_text(person_phone: str) -> str:
    """The SMS to a guardian: names the family member only by the last digits of their number."""
    return (
        f"【国家反诈中心预警】您的家人（手机尾号{person_phone[-4:]}）可能正遭遇电信网络诈骗，"
        "请尽快联系提醒，劝阻其转账汇款。如有疑问请拨打96110。"
    )


def delivery_text(channel: Channel, guardian: bool, warning_text: str, person_phone: str) -> str:
    """The words one delivery of a warning carries."""
    if guardian:
        return guardian_text(person_phone)
    if channel == Channel.FLASH_SMS:
        return FLASH_TEXT
    return warning_text
