"""How each fraud category is named to citizens, and the one piece of advice a story ends with."""

from __future__ import annotations

from services.report.domain.model import FraudCategory

LABELS: dict[FraudCategory, str] = {
    FraudCategory.ONLINE_LOAN: "虚假网络贷款诈骗",
    FraudCategory.ORDER_BRUSHING: "刷单返利诈骗",
    FraudCategory.PIG_BUTCHERING: "“杀猪盘”婚恋交友诈骗",
    FraudCategory.FAKE_CUSTOMER_SERVICE: "冒充电商物流客服诈骗",
    FraudCategory.IMPERSONATING_ACQUAINTANCE: "冒充熟人或领导诈骗",
    FraudCategory.IMPERSONATING_OFFICIALS: "冒充公检法诈骗",
    FraudCategory.STOCK_TIPS: "虚假投资理财诈骗",
    FraudCategory.FAKE_SHOPPING: "虚假购物诈骗",
    FraudCategory.CAMPUS_LOAN_CANCELLATION: "注销“校园贷”诈骗",
    FraudCategory.GAME_CURRENCY: "网游虚假交易诈骗",
    FraudCategory.OTHER: "电信网络诈骗",
}

TIPS: dict[FraudCategory, str] = {
    FraudCategory.ONLINE_LOAN: (
        "正规贷款放款前不会收取任何费用。凡是要求先交“保证金”“解冻费”“刷流水”的，都是诈骗。"
    ),
    FraudCategory.ORDER_BRUSHING: ("刷单本身就是违法行为。所有“先垫付、后返利”的兼职，都是诈骗。"),
    FraudCategory.PIG_BUTCHERING: (
        "网上结识、从未见面却带你投资、赌博、“内部渠道”赚钱的“恋人”，就是骗子。"
    ),
    FraudCategory.FAKE_CUSTOMER_SERVICE: (
        "退款、理赔请在官方平台内办理。自称客服要求屏幕共享、下载会议软件或转账的，都是诈骗。"
    ),
    FraudCategory.IMPERSONATING_ACQUAINTANCE: (
        "熟人或领导通过网络、短信要求转账汇款，务必先打电话或当面核实。"
    ),
    FraudCategory.IMPERSONATING_OFFICIALS: (
        "公检法机关不会通过电话、网络办案，不会要求转账到“安全账户”，也没有“安全账户”。"
    ),
    FraudCategory.STOCK_TIPS: ("不要相信“内幕消息”“稳赚不赔”。投资理财请通过有资质的正规机构。"),
    FraudCategory.FAKE_SHOPPING: (
        "网购请使用正规平台并在平台内付款，不要私下转账，不要点击对方发来的付款链接。"
    ),
    FraudCategory.CAMPUS_LOAN_CANCELLATION: (
        "注销“校园贷”、消除“征信影响”不需要转账。征信问题请向中国人民银行征信中心核实。"
    ),
    FraudCategory.GAME_CURRENCY: (
        "买卖游戏装备、账号请使用官方交易平台，不要私下交易，不要点击陌生链接充值。"
    ),
    FraudCategory.OTHER: "凡是要求转账汇款的陌生人，都要先核实。",
}

#: 三不一多: the four rules every story ends with.
FOUR_RULES = "牢记“三不一多”：未知链接不点击，陌生来电不轻信，个人信息不透露，转账汇款多核实。"


def label(category: FraudCategory) -> str:
    return LABELS.get(category, LABELS[FraudCategory.OTHER])


def tip(category: FraudCategory) -> str:
    return TIPS.get(category, TIPS[FraudCategory.OTHER])
