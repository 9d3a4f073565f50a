"""Who may do what with fraud knowledge.

Staff (analysts, who are also the police and 96110 operators, admins and internal
services) write and see everything; everyone else reads what is published. Only a
registered citizen is someone a call can have been announced to.
"""

from __future__ import annotations

from services.common.errors import PermissionDenied
from services.common.principals import Principal, Role
from services.report.knowledge.domain.articles import ArticleState


def require_staff(caller: Principal, what: str) -> None:
    if not caller.staff:
        raise PermissionDenied(f"only analysts {what}")


def visible_states(caller: Principal, asked: ArticleState | None) -> tuple[ArticleState, ...]:
    """The states a caller's list may show: what staff ask for (any when not asked), else
    published articles only."""
    if caller.staff:
        return () if asked is None else (asked,)
    if asked not in (None, ArticleState.PUBLISHED):
        raise PermissionDenied("only analysts see articles that are not published")
    return (ArticleState.PUBLISHED,)


def may_read(caller: Principal, state: ArticleState) -> bool:
    return caller.staff or state is ArticleState.PUBLISHED


def callee_of(caller: Principal) -> str:
    """The user id a call check is about: always the calling citizen's own."""
    if caller.role is not Role.CITIZEN or caller.anonymous:
        raise PermissionDenied("only a registered citizen can check a call made to them")
    return caller.subject
