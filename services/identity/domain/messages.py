"""The texts sent to people about remote verification.

They carry masked forms only and no text from the requester: the feature must
not become a way to put a fraudster's words on someone's phone.
"""

from __future__ import annotations

from services.identity.domain.verification import Purpose, VerificationState

PURPOSE_LABELS: dict[Purpose, str] = {
    Purpose.PAYMENT: "付款或转账前核实",
    Purpose.TRADE: "交易买卖",
    Purpose.ONLINE_CONTACT: "网络交友",
    Purpose.EMPLOYMENT: "求职招聘",
    Purpose.ACQUAINTANCE: "核实熟人、亲友或领导身份",
    Purpose.OTHER: "其他",
}


def invitation(
    requester_masked_name: str,
    requester_masked_phone: str,
    purpose: Purpose,
    valid_minutes: int,
    *,
    registered: bool,
) -> str:
    """Asks the holder of a number to verify their identity (or decline)."""
    where = (
        "请在国家反诈中心App中确认（需人脸核验）或拒绝"
        if registered
        else "请下载国家反诈中心App并实名注册后确认或拒绝"
    )
    return (
        f"【国家反诈中心】{requester_masked_name}（{requester_masked_phone}）请求核验您的身份，"
        f"用途：{PURPOSE_LABELS[purpose]}。{where}，{valid_minutes}分钟内有效。"
        "如不认识对方，请拒绝，切勿向任何人透露验证码。"
    )


def outcome(
    state: VerificationState,
    target_masked_phone: str,
    target_masked_name: str,
    name_matches: bool | None = None,
) -> str:
    """Tells the requester how their request ended (yes or no when they asked for a name)."""
    if state is VerificationState.VERIFIED and name_matches is not None:
        same = "一致" if name_matches else "不一致，请提高警惕"
        result = f"已通过，对方实名与您核对的姓名{same}"
    elif state is VerificationState.VERIFIED:
        result = f"已通过，对方实名为{target_masked_name}"
    elif state is VerificationState.DECLINED:
        result = "被对方拒绝"
    elif state is VerificationState.FAILED:
        result = "未通过：人脸核验失败，应答者并非该号码的实名机主，请提高警惕"
    else:
        result = "已过期"
    return f"【国家反诈中心】您对{target_masked_phone}发起的身份核验{result}。"


def phone_released(masked_phone: str) -> str:
    """Tells a user that the carrier registered their former number to someone else."""
    return (
        f"【国家反诈中心】运营商确认号码{masked_phone}已登记在他人名下，"
        "该号码已与您的账号解绑。请在App中登录并绑定您本人的手机号码。"
    )


def account_moved(masked_account: str) -> str:
    """Tells a user that an account they had bound was confirmed as someone else's."""
    return (
        f"【国家反诈中心】账户{masked_account}的平台或银行确认其属于他人实名，"
        "已从您的账号解绑。如有疑问，请联系该平台或银行。"
    )
