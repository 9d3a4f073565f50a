"""Substring search over Chinese text with a bigram index.

Chinese is written without spaces, so words cannot be split off reliably; instead
every text is cut into runs of letters and digits and each run into overlapping
two-character grams (``网络刷单`` -> ``网络``, ``络刷``, ``刷单``). A document that
contains a query term contains every bigram of that term, so the index narrows the
candidates and a substring test confirms them. Both sides are normalised the same
way first: NFKC (full-width to half-width) and case folding.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

#: Letters and digits of any script (CJK included), without the underscore.
_RUN = re.compile(r"[^\W_]+")
MIN_TERM = 2


def normalise(text: str) -> str:
    return unicodedata.normalize("NFKC", text).casefold()


def runs(text: str) -> list[str]:
    """The runs of letters and digits of a text, normalised."""
    return _RUN.findall(normalise(text))


def bigrams(run: str) -> list[str]:
    return [run[i : i + 2] for i in range(len(run) - 1)]


def index_grams(text: str) -> set[str]:
    """Every distinct bigram of a text: what the index stores for it."""
    return {gram for run in runs(text) for gram in bigrams(run)}


@dataclass(frozen=True, slots=True)
class Query:
    """A parsed search: every term must occur in the text as a substring."""

    #: Distinct normalised terms, in the order given.
    terms: tuple[str, ...]
    #: The bigrams of the terms of two characters or more (one-character terms
    #: have none; they are only confirmed).
    grams: frozenset[str]

    @property
    def searchable(self) -> bool:
        return bool(self.grams)


def parse_query(text: str) -> Query:
    terms = tuple(dict.fromkeys(runs(text)))
    grams = frozenset(g for term in terms if len(term) >= MIN_TERM for g in bigrams(term))
    return Query(terms, grams)
