"""A case story (诈骗案例) drafted from a confirmed case.

The story keeps what teaches (the fraudster's script in the victim's words, the
category, how much was lost, roughly, and when, to the month) and drops what
identifies: the victim's account is redacted, every value the case names is
removed, amounts are rounded and the date is cut to the month. A final check
refuses a draft in which any value of the case can still be found.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from decimal import Decimal

from services.common.indicators import Indicator
from services.report.domain.model import Case, Money
from services.report.knowledge.domain import categories, redaction
from services.report.knowledge.domain.articles import ArticleKind, Content
from services.report.knowledge.domain.redaction import RedactionKind

#: Stories tell the month in China's time, where the case happened.
CHINA = timezone(timedelta(hours=8), "Asia/Shanghai")


class StoryLeak(AssertionError):
    """A value of the case survived redaction: a bug, and no draft is made."""


@dataclass(frozen=True, slots=True)
class Story:
    content: Content
    redactions: dict[RedactionKind, int]


def yuan(money: Money) -> Decimal:
    return Decimal(money.units) + Decimal(money.nanos) / Decimal(10**9)


def case_values(case: Case) -> list[Indicator]:
    """Every indicator the case names: payee accounts and the fraudster's numbers and links."""
    return [p.account for p in case.payees] + list(case.suspects)


def _month(when: datetime) -> str:
    local = when.astimezone(CHINA)
    return f"{local.year}年{local.month}月"


def compose(case: Case) -> Story:
    known = case_values(case)
    account = redaction.redact(case.description, known)
    label = categories.label(case.category)
    lost = yuan(case.amount_lost)
    amount = redaction.rounded_amount(lost)
    month = _month(case.incident_time)
    counts = dict(account.counts)
    if lost > 0:
        counts[RedactionKind.AMOUNT] = counts.get(RedactionKind.AMOUNT, 0) + 1
    facts = [f"时间：{month}", f"损失：{amount}" if lost > 0 else "损失：无"]
    if case.payees:
        facts.append(f"资金去向：{len(case.payees)}个收款账户，已发出紧急止付并列入风险名单")
    if case.suspects:
        facts.append(f"涉案号码、网址等：{len(case.suspects)}个，已列入风险名单")
    body = "\n\n".join(
        [
            "【案情经过】\n" + account.text.strip(),
            "【涉案情况】\n" + "\n".join(facts),
            "【防骗提示】\n" + categories.tip(case.category) + "\n" + categories.FOUR_RULES,
        ]
    )
    victim = f"一名市民被骗{amount}" if lost > 0 else "一名市民险些被骗"
    content = Content(
        kind=ArticleKind.CASE_STORY,
        title=f"{label}案例：{victim}",
        summary=f"{month}，{victim}。{categories.tip(case.category)}",
        body=body,
        categories=(case.category,),
        region="",
    )
    left = redaction.leaks("\n".join((content.title, content.summary, content.body)), known)
    if left:
        raise StoryLeak(f"{len(left)} value(s) of the case survived redaction")
    return Story(content, counts)
