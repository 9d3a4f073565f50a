"""Words on the pages, Chinese (zh-CN) first and English, and times in Asia/Shanghai."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from google.protobuf.timestamp_pb2 import Timestamp

from services.api.antifraud.common.v1 import common_pb2 as c
from services.api.antifraud.report.v1 import report_pb2 as rp
from services.api.antifraud.warning.v1 import warning_pb2 as wn

LANGS = ("zh", "en")
SHANGHAI = ZoneInfo("Asia/Shanghai")

#: Message id -> (Chinese, English).
MESSAGES: dict[str, tuple[str, str]] = {
    "title": ("反诈工作台", "Anti-fraud console"),
    "nav.review": ("线索审核", "Review"),
    "nav.cases": ("案件", "Cases"),
    "nav.tasks": ("劝阻任务", "Tasks"),
    "nav.figures": ("数据图表", "Figures"),
    "nav.signout": ("退出登录", "Sign out"),
    "lang.other": ("English", "中文"),
    "signin.title": ("登录", "Sign in"),
    "signin.key": ("本人的分析员或民警密钥", "Your own analyst or police key"),
    "signin.submit": ("登录", "Sign in"),
    "signin.hint": (
        "请使用发给您本人的密钥；所有操作以您的身份经网关执行并留痕。",
        "Use the key issued to you: every action runs as you through the gateway and is audited.",
    ),
    "signin.refused": (
        "此密钥无权使用工作台（仅限分析员和民警）。",
        "This key may not use the console (analysts and police only).",
    ),
    "signin.invalid": ("密钥无效或已吊销。", "The key is invalid or revoked."),
    "signin.expired": ("会话已过期，请重新登录。", "Your session ended; please sign in again."),
    "signin.out": ("您已退出登录。", "You are signed out."),
    "error.csrf": (
        "表单已失效（CSRF 校验失败），请返回重试。",
        "The form expired (CSRF check failed); go back and try again.",
    ),
    "error.forbidden": ("您的密钥无权执行此操作。", "Your key may not do this."),
    "error.unavailable": (
        "后台服务暂不可用，请稍后再试。",
        "A service is unavailable; try again shortly.",
    ),
    "error.not_found": ("未找到。", "Not found."),
    "error.invalid": ("请求有误：", "The request was refused: "),
    "error.title": ("出错了", "Something went wrong"),
    "review.title": ("待审核线索（按指标汇总）", "Review queue, by indicator"),
    "review.empty": ("没有待审核的线索。", "No report is waiting for review."),
    "review.indicator": ("指标", "Indicator"),
    "review.kind": ("类型", "Kind"),
    "review.reports": ("举报数", "Reports"),
    "review.reporters": ("不同举报人", "Distinct reporters"),
    "review.verdict": ("当前研判", "Current verdict"),
    "review.why": ("依据", "Why"),
    "review.oldest": ("最早举报", "Oldest report"),
    "review.open": ("查看", "Open"),
    "detail.title": ("指标详情", "Indicator"),
    "detail.verdict": ("当前研判", "Current verdict"),
    "detail.reports": ("相关举报", "Reports"),
    "detail.history": ("研判历史", "Verdict history"),
    "detail.warnings": ("由此发出的预警", "Warnings it caused"),
    "detail.fanouts": ("接触人预警进度", "Contact warnings (fan-out)"),
    "detail.decide": (
        "对该指标的全部待审举报作出决定",
        "Decide on every open report of this value",
    ),
    "detail.reason": ("理由（举报人可见）", "Reason (the reporters see it)"),
    "detail.confirm": ("确认为诈骗", "Confirm as fraud"),
    "detail.reject": ("驳回", "Reject"),
    "detail.decided": ("已处理 {n} 条举报。", "{n} reports decided."),
    "detail.reveal": ("查看原文（将记入审计）", "Show the text as typed (audited)"),
    "detail.purpose": ("查看目的", "Purpose"),
    "detail.revealed": ("原文（已审计）", "Text as typed (audited)"),
    "detail.masked_note": (
        "个人信息已脱敏；查看原文须填写目的并记入审计日志。",
        "Personal data is masked; showing the text as typed needs a purpose and is audited.",
    ),
    "detail.no_history": ("暂无变更记录。", "No change recorded."),
    "detail.none": ("无", "None"),
    "col.report": ("举报", "Report"),
    "col.status": ("状态", "Status"),
    "col.reporter": ("举报人", "Reporter"),
    "col.category": ("诈骗类型", "Fraud type"),
    "col.description": ("描述（脱敏）", "Description (masked)"),
    "col.time": ("时间", "Time"),
    "col.level": ("风险等级", "Level"),
    "col.change": ("变更", "Change"),
    "col.phone": ("手机号", "Phone"),
    "col.state": ("状态", "State"),
    "col.channels": ("渠道", "Channels"),
    "col.contacts": ("接触人数", "Contacts"),
    "col.processed": ("已处理", "Processed"),
    "col.warned": ("已预警", "Warned"),
    "col.suppressed": ("已抑制", "Suppressed"),
    "col.amount": ("金额", "Amount"),
    "col.bank": ("银行", "Bank"),
    "col.account": ("收款账户", "Payee account"),
    "col.order": ("止付指令", "Bank order"),
    "col.held": ("已止付金额", "Held"),
    "col.task": ("任务", "Task"),
    "col.type": ("类型", "Type"),
    "col.operator": ("处理人", "Operator"),
    "col.lease": ("领取到期", "Lease ends"),
    "col.outcome": ("结果", "Outcome"),
    "col.notes": ("备注", "Notes"),
    "col.claims": ("领取次数", "Claims"),
    "cases.title": ("案件看板", "Cases board"),
    "cases.empty": ("暂无案件。", "No case."),
    "cases.lost": ("损失", "Lost"),
    "cases.held_total": ("已止付合计", "Held in total"),
    "cases.board.filed": ("已报案", "Filed"),
    "cases.board.orders_sent": ("止付处理中", "Stop-payment under way"),
    "cases.board.held": ("银行已止付", "Funds held"),
    "cases.board.released": ("已解除止付", "Released"),
    "cases.board.transferred": ("已返还被害人", "Returned to the victim"),
    "cases.board.closed": ("已结案", "Closed"),
    "cases.attention": ("止付被拒或失败，需跟进", "An order was refused or failed: follow up"),
    "cases.open": ("查看案件", "Open the case"),
    "case.title": ("案件详情", "Case"),
    "case.status": ("案件状态", "Status"),
    "case.officer": ("承办民警", "Officer"),
    "case.unassigned": ("未指派", "unassigned"),
    "case.history": ("办理经过", "History"),
    "case.reply": ("回复被害人", "Reply to the victim"),
    "case.reply_hint": (
        "被害人在 App 中可见；身份证号、银行卡号、手机号会被自动脱敏。",
        "The victim reads it in the app; ID, card and phone numbers are masked.",
    ),
    "case.send": ("发送回复", "Send the reply"),
    "case.replied": ("回复已发送。", "Reply sent."),
    "col.event": ("事项", "Event"),
    "col.actor": ("经办", "By"),
    "col.text": ("内容", "Text"),
    "col.region": ("辖区", "Region"),
    "tasks.title": ("劝阻任务", "Dissuasion tasks"),
    "tasks.call": ("电话劝阻", "Calls"),
    "tasks.visit": ("上门劝阻", "Home visits"),
    "tasks.claim": ("领取", "Claim"),
    "tasks.complete": ("记录结果", "Record outcome"),
    "tasks.empty": ("队列为空。", "The queue is empty."),
    "tasks.mine": ("我领取的任务", "My tasks"),
    "tasks.claimed": ("已领取任务，号码已显示。", "Task claimed; its number is shown."),
    "tasks.completed": ("已记录结果。", "Outcome recorded."),
    "figures.title": ("数据图表", "Figures"),
    "figures.reports_per_day": ("每日举报数（按诈骗类型）", "Reports per day, by fraud type"),
    "figures.warnings_by_channel": (
        "预警投递（按渠道与结果）",
        "Warning deliveries, by channel and outcome",
    ),
    "figures.high_to_warning": (
        "从高风险到首次预警的时长（分钟）",
        "Time from HIGH to the first warning (minutes)",
    ),
    "figures.case_to_ack": (
        "从报案到银行确认止付的时长（分钟）",
        "Time from a case to the bank's acknowledgement (minutes)",
    ),
    "figures.dissuasion": ("劝阻任务结果", "Outcomes of call and visit tasks"),
    "figures.dissuaded_share": (
        "{warnings} 条预警中，{dissuaded} 人被成功劝阻。",
        "Of {warnings} warnings, {dissuaded} led to a person dissuaded.",
    ),
    "figures.fanout": ("接触人预警进度", "Fan-out progress"),
    "figures.no_data": ("暂无数据。", "No data yet."),
    "figures.warning_states": ("预警状态", "Warnings by state"),
    "figures.count": ("数量", "Count"),
    "figures.partial": ("部分服务未响应，数字不完整：", "Some services did not answer: "),
    "figures.table": ("数据表", "Data table"),
    "figures.total": ("合计", "Total"),
}

LEVELS: dict[int, tuple[str, str]] = {
    c.RISK_LEVEL_UNSPECIFIED: ("未知", "unknown"),
    c.RISK_LEVEL_NONE: ("无风险", "none"),
    c.RISK_LEVEL_LOW: ("低", "low"),
    c.RISK_LEVEL_MEDIUM: ("中", "medium"),
    c.RISK_LEVEL_HIGH: ("高", "high"),
}
KINDS: dict[int, tuple[str, str]] = {
    c.INDICATOR_KIND_PHONE_NUMBER: ("电话号码", "phone number"),
    c.INDICATOR_KIND_SMS_SENDER: ("短信发送方", "SMS sender"),
    c.INDICATOR_KIND_URL: ("网址", "URL"),
    c.INDICATOR_KIND_DOMAIN: ("域名", "domain"),
    c.INDICATOR_KIND_IP_ADDRESS: ("IP 地址", "IP address"),
    c.INDICATOR_KIND_BANK_ACCOUNT: ("银行账户", "bank account"),
    c.INDICATOR_KIND_PAYMENT_ACCOUNT: ("支付账户", "payment account"),
    c.INDICATOR_KIND_QQ_NUMBER: ("QQ 号", "QQ number"),
    c.INDICATOR_KIND_WECHAT_ID: ("微信号", "WeChat id"),
    c.INDICATOR_KIND_APP: ("应用", "app"),
}
CATEGORIES: dict[int, tuple[str, str]] = {
    c.FRAUD_CATEGORY_UNSPECIFIED: ("未分类", "unclassified"),
    c.FRAUD_CATEGORY_ONLINE_LOAN: ("网络贷款", "online loan"),
    c.FRAUD_CATEGORY_ORDER_BRUSHING: ("刷单返利", "order brushing"),
    c.FRAUD_CATEGORY_PIG_BUTCHERING: ("杀猪盘", "pig butchering"),
    c.FRAUD_CATEGORY_FAKE_CUSTOMER_SERVICE: ("冒充客服", "fake customer service"),
    c.FRAUD_CATEGORY_IMPERSONATING_ACQUAINTANCE: ("冒充熟人", "impersonating an acquaintance"),
    c.FRAUD_CATEGORY_IMPERSONATING_OFFICIALS: ("冒充公检法", "impersonating officials"),
    c.FRAUD_CATEGORY_STOCK_TIPS: ("虚假投资理财", "stock tips"),
    c.FRAUD_CATEGORY_FAKE_SHOPPING: ("虚假购物", "fake shopping"),
    c.FRAUD_CATEGORY_CAMPUS_LOAN_CANCELLATION: ("注销校园贷", "campus loan cancellation"),
    c.FRAUD_CATEGORY_GAME_CURRENCY: ("游戏币交易", "game currency"),
    c.FRAUD_CATEGORY_OTHER: ("其他", "other"),
}
REPORT_STATUSES: dict[int, tuple[str, str]] = {
    rp.REPORT_STATUS_UNSPECIFIED: ("未知", "unknown"),
    rp.REPORT_STATUS_RECEIVED: ("已受理", "received"),
    rp.REPORT_STATUS_UNDER_REVIEW: ("待审核", "under review"),
    rp.REPORT_STATUS_CONFIRMED: ("已确认", "confirmed"),
    rp.REPORT_STATUS_REJECTED: ("已驳回", "rejected"),
    rp.REPORT_STATUS_DUPLICATE: ("重复", "duplicate"),
}
STANDINGS: dict[int, tuple[str, str]] = {
    rp.INDICATOR_STANDING_UNSPECIFIED: ("未知", "unknown"),
    rp.INDICATOR_STANDING_UNLISTED: ("未入库", "not listed"),
    rp.INDICATOR_STANDING_CORROBORATED: ("多人举报印证", "corroborated"),
    rp.INDICATOR_STANDING_CONFIRMED: ("已确认", "confirmed"),
    rp.INDICATOR_STANDING_REJECTED: ("已驳回", "rejected"),
}
CHANNELS: dict[int, tuple[str, str]] = {
    wn.CHANNEL_UNSPECIFIED: ("未知", "unknown"),
    wn.CHANNEL_APP_PUSH: ("App 推送", "app push"),
    wn.CHANNEL_SMS: ("短信", "SMS"),
    wn.CHANNEL_FLASH_SMS: ("闪信", "flash SMS"),
    wn.CHANNEL_CALL_TASK: ("电话劝阻", "call task"),
    wn.CHANNEL_HOME_VISIT_TASK: ("上门劝阻", "home visit"),
}
DELIVERY_STATES: dict[int, tuple[str, str]] = {
    wn.DELIVERY_STATE_UNSPECIFIED: ("未知", "unknown"),
    wn.DELIVERY_STATE_QUEUED: ("排队中", "queued"),
    wn.DELIVERY_STATE_SENT: ("已发送", "sent"),
    wn.DELIVERY_STATE_DELIVERED: ("已送达", "delivered"),
    wn.DELIVERY_STATE_ACKNOWLEDGED: ("已确认", "acknowledged"),
    wn.DELIVERY_STATE_FAILED: ("失败", "failed"),
    wn.DELIVERY_STATE_NOT_NEEDED: ("无需发送", "not needed"),
}
WARNING_STATES: dict[int, tuple[str, str]] = {
    wn.WARNING_STATE_UNSPECIFIED: ("未知", "unknown"),
    wn.WARNING_STATE_PENDING: ("待送达", "pending"),
    wn.WARNING_STATE_DELIVERED: ("已送达", "delivered"),
    wn.WARNING_STATE_ACKNOWLEDGED: ("已确认", "acknowledged"),
    wn.WARNING_STATE_FAILED: ("失败", "failed"),
}
TASK_TYPES: dict[int, tuple[str, str]] = {
    wn.TASK_TYPE_UNSPECIFIED: ("未知", "unknown"),
    wn.TASK_TYPE_CALL: ("电话劝阻", "call"),
    wn.TASK_TYPE_HOME_VISIT: ("上门劝阻", "home visit"),
}
TASK_STATES: dict[int, tuple[str, str]] = {
    wn.TASK_STATE_UNSPECIFIED: ("未知", "unknown"),
    wn.TASK_STATE_OPEN: ("待领取", "open"),
    wn.TASK_STATE_CLAIMED: ("处理中", "claimed"),
    wn.TASK_STATE_COMPLETED: ("已完成", "completed"),
}
TASK_OUTCOMES: dict[int, tuple[str, str]] = {
    wn.TASK_OUTCOME_UNSPECIFIED: ("未记录", "not recorded"),
    wn.TASK_OUTCOME_DISSUADED: ("已劝阻", "reached and dissuaded"),
    wn.TASK_OUTCOME_UNREACHABLE: ("未联系上", "not reached"),
    wn.TASK_OUTCOME_ALREADY_PAID: ("已被骗转账", "already paid"),
    wn.TASK_OUTCOME_FALSE_ALARM: ("误报/拒绝", "false alarm or refused"),
}
ORDER_STATES: dict[int, tuple[str, str]] = {
    wn.BANK_ORDER_STATE_UNSPECIFIED: ("未知", "unknown"),
    wn.BANK_ORDER_STATE_QUEUED: ("排队中", "queued"),
    wn.BANK_ORDER_STATE_SENT: ("已发送", "sent"),
    wn.BANK_ORDER_STATE_ACKNOWLEDGED: ("已止付", "held"),
    wn.BANK_ORDER_STATE_REJECTED: ("被拒绝", "refused"),
    wn.BANK_ORDER_STATE_FAILED: ("失败", "failed"),
}
CASE_STATUSES: dict[int, tuple[str, str]] = {
    rp.CASE_STATUS_UNSPECIFIED: ("未知", "unknown"),
    rp.CASE_STATUS_FILED: ("已报案", "filed"),
    rp.CASE_STATUS_ORDERS_SENT: ("止付处理中", "orders sent"),
    rp.CASE_STATUS_HELD: ("银行已止付", "held"),
    rp.CASE_STATUS_RELEASED: ("已解除止付", "released"),
    rp.CASE_STATUS_TRANSFERRED: ("已返还", "returned"),
    rp.CASE_STATUS_CLOSED: ("已结案", "closed"),
}
CASE_EVENTS: dict[int, tuple[str, str]] = {
    rp.CASE_EVENT_TYPE_UNSPECIFIED: ("未知", "unknown"),
    rp.CASE_EVENT_TYPE_FILED: ("报案", "filed"),
    rp.CASE_EVENT_TYPE_STATUS_CHANGED: ("状态变更", "status changed"),
    rp.CASE_EVENT_TYPE_ASSIGNED: ("指派民警", "officer assigned"),
    rp.CASE_EVENT_TYPE_REPLY: ("回复被害人", "reply to the victim"),
    rp.CASE_EVENT_TYPE_CLOSED: ("结案", "closed"),
}
FANOUT_STATES: dict[int, tuple[str, str]] = {
    wn.FANOUT_STATE_UNSPECIFIED: ("未知", "unknown"),
    wn.FANOUT_STATE_RUNNING: ("进行中", "running"),
    wn.FANOUT_STATE_DONE: ("已完成", "done"),
}
REVIEW_DECISIONS: dict[int, tuple[str, str]] = {
    rp.REVIEW_DECISION_UNSPECIFIED: ("未知", "unknown"),
    rp.REVIEW_DECISION_CONFIRM: ("确认", "confirmed"),
    rp.REVIEW_DECISION_REJECT: ("驳回", "rejected"),
}


class Translator:
    """The words of one language, for the templates."""

    def __init__(self, lang: str) -> None:
        self.lang = lang if lang in LANGS else LANGS[0]
        self._index = LANGS.index(self.lang)

    @property
    def html_lang(self) -> str:
        return "zh-CN" if self.lang == "zh" else "en"

    def __call__(self, key: str, **values: object) -> str:
        pair = MESSAGES.get(key)
        text = pair[self._index] if pair else key
        return text.format(**values) if values else text

    def enum(self, table: dict[int, tuple[str, str]], value: int) -> str:
        pair = table.get(value)
        return pair[self._index] if pair else str(value)

    def time(self, stamp: Timestamp | datetime | None) -> str:
        """``2026-11-30 20:15`` in Asia/Shanghai; empty when unset."""
        when = to_datetime(stamp)
        return when.astimezone(SHANGHAI).strftime("%Y-%m-%d %H:%M") if when else ""


def to_datetime(stamp: Timestamp | datetime | None) -> datetime | None:
    if stamp is None:
        return None
    if isinstance(stamp, datetime):
        return stamp
    if not stamp.seconds and not stamp.nanos:
        return None
    return stamp.ToDatetime(tzinfo=UTC)
