"""Handlers for region notices: post one, list the ones valid now."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from services.common import regions
from services.common.errors import FieldViolation, InvalidArgument
from services.common.principals import Principal
from services.report.knowledge.adapters.repository import KnowledgeRepository
from services.report.knowledge.domain import access
from services.report.knowledge.domain.notices import NewNotice, Notice, period_problems
from services.report.knowledge.service_layer.unit_of_work import KnowledgeUnitOfWork
from services.report.service_layer import paging
from services.report.service_layer.reports import new_id


async def create(
    uow: KnowledgeUnitOfWork, caller: Principal, new: NewNotice, now: datetime
) -> Notice:
    access.require_staff(caller, "post notices")
    start = new.start_time or now
    problems = period_problems(start, new.end_time, now)
    if problems:
        raise InvalidArgument([FieldViolation(field, reason) for field, reason in problems])
    notice = Notice(
        id=new_id(),
        title=new.title,
        body=new.body,
        issuer=new.issuer,
        region=new.region,
        start_time=start,
        end_time=new.end_time,
        author=caller.audit_actor,
        create_time=now,
    )
    await uow.repo.insert_notice(notice)
    return notice


@dataclass(frozen=True, slots=True)
class NoticePage:
    notices: list[Notice]
    next_page_token: str


async def list_valid(
    repo: KnowledgeRepository, region: str, now: datetime, size: int, token: str
) -> NoticePage:
    """The notices valid at ``now`` for a region, the regions containing it and the country.

    A token carries its position, not the time: the next page is read at its own ``now``,
    so a notice that expires between pages is not shown on the later one.
    """
    digest = paging.digest({"region": region})
    found = await repo.valid_notices(
        regions.enclosing(region), now, paging.position(token, digest), size + 1
    )
    return NoticePage(*paging.trim(found, size, digest, lambda n: (n.start_time, n.id)))
