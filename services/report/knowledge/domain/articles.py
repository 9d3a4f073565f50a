"""Articles and case stories: what they say, where they stand, and how they move.

Enum numbers match ``antifraud.report.v1`` (knowledge.proto) so the edge converts by
number; nothing here knows about protobuf or the database.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import datetime

from services.report.domain.model import FraudCategory
from services.report.knowledge.domain import ngrams


class ArticleKind(enum.IntEnum):
    UNSPECIFIED = 0
    TIP = 1
    CASE_STORY = 2
    SCRIPT = 3


class ArticleState(enum.IntEnum):
    UNSPECIFIED = 0
    DRAFT = 1
    PUBLISHED = 2
    WITHDRAWN = 3


@dataclass(frozen=True, slots=True)
class Content:
    """What an author writes; every field may be changed."""

    kind: ArticleKind
    title: str
    summary: str
    body: str
    categories: tuple[FraudCategory, ...]
    region: str

    def searchable(self) -> str:
        """The normalised text searches confirm their terms in, one field per line."""
        return "\n".join(ngrams.normalise(part) for part in (self.title, self.summary, self.body))

    def grams(self) -> set[str]:
        return (
            ngrams.index_grams(self.title)
            | ngrams.index_grams(self.summary)
            | ngrams.index_grams(self.body)
        )


#: The fields UpdateArticle may change, as named in an update mask.
EDITABLE = ("kind", "title", "summary", "body", "categories", "region")


def revise(current: Content, given: Content, fields: Iterable[str]) -> Content:
    """``current`` with the named fields taken from ``given``."""
    return replace(current, **{name: getattr(given, name) for name in fields})


@dataclass(frozen=True, slots=True)
class Article:
    id: str
    content: Content
    state: ArticleState
    #: The case a story was drafted from; empty for other articles.
    source_case: str
    author: str
    create_time: datetime
    update_time: datetime
    publish_time: datetime | None

    @property
    def sort_time(self) -> datetime:
        """Lists are newest first: by publication once published, else by creation."""
        return self.publish_time or self.create_time


class Transition(enum.Enum):
    """What a publish or withdraw request does to an article in a given state."""

    APPLY = "apply"
    NOTHING = "nothing"  # already there: the request is answered with the article as it is
    REFUSE = "refuse"


def transition(current: ArticleState, target: ArticleState) -> Transition:
    """Publishing works from a draft or a withdrawn article; withdrawing from a published one
    (a draft was never seen by anyone: there is nothing to take down)."""
    if current is target:
        return Transition.NOTHING
    if target is ArticleState.PUBLISHED:
        return Transition.APPLY
    if target is ArticleState.WITHDRAWN and current is ArticleState.PUBLISHED:
        return Transition.APPLY
    return Transition.REFUSE


def article_name(article_id: str) -> str:
    return f"articles/{article_id}"


def snippet(content: Content, terms: Iterable[str], width: int = 120) -> str:
    """Up to ``width`` characters of the text around the first term found (body first)."""
    wanted = [t for t in terms if t]
    for text in (content.body, content.summary, content.title):
        normal = ngrams.normalise(text)
        if len(normal) != len(text):
            # Normalising changed the length (rare characters): positions would not line up.
            normal = text.casefold()
        for term in wanted:
            at = normal.find(term)
            if at >= 0:
                start = max(0, min(at - width // 3, len(text) - width))
                return _one_line(text[start : start + width])
    return _one_line((content.summary or content.body)[:width])


def _one_line(text: str) -> str:
    return " ".join(text.split())
