"""Tokenising for substring search over Chinese text: runs, bigrams, queries."""

from __future__ import annotations

import random

import pytest

from services.report.knowledge.domain.ngrams import (
    bigrams,
    index_grams,
    normalise,
    parse_query,
    runs,
)

TEXT = (
    "【防骗提示】网络刷单返利是诈骗！对方先让你做几单“小任务”，返还佣金，"
    "再以“卡单”为由要求垫付大额资金。下载ＡＰＰ或加入QQ群做任务的，都要警惕。"
)


def test_runs_split_on_punctuation_and_are_normalised() -> None:
    assert runs("网络刷单，返利！ＡＰＰ下载 QQ群") == ["网络刷单", "返利", "app下载", "qq群"]
    assert normalise("ＡＢＣ１２３") == "abc123"


def test_bigrams_overlap_and_a_single_character_has_none() -> None:
    assert bigrams("网络刷单") == ["网络", "络刷", "刷单"]
    assert bigrams("骗") == []


def test_the_index_holds_each_bigram_once_and_none_across_punctuation() -> None:
    grams = index_grams("刷单返利，刷单。")
    assert grams == {"刷单", "单返", "返利"}
    assert "利刷" not in grams  # "，" separates the runs


def test_every_substring_of_a_run_is_covered_by_the_index() -> None:
    rng = random.Random(9)
    indexed = index_grams(TEXT)
    for run in runs(TEXT):
        for _ in range(20):
            if len(run) < 2:
                break
            start = rng.randrange(len(run) - 1)
            end = rng.randrange(start + 2, len(run) + 1)
            query = parse_query(run[start:end])
            assert query.searchable
            assert query.grams <= indexed, run[start:end]


@pytest.mark.parametrize(
    ("text", "terms", "grams"),
    [
        ("刷单", ("刷单",), {"刷单"}),
        ("刷单 返利", ("刷单", "返利"), {"刷单", "返利"}),
        ("  ＡＰＰ  ", ("app",), {"ap", "pp"}),
        ("刷单 刷单", ("刷单",), {"刷单"}),
        ("骗 刷单", ("骗", "刷单"), {"刷单"}),
    ],
)
def test_queries_are_terms_and_the_bigrams_of_the_longer_ones(
    text: str, terms: tuple[str, ...], grams: set[str]
) -> None:
    query = parse_query(text)
    assert query.terms == terms
    assert query.grams == grams


@pytest.mark.parametrize("text", ["骗", "骗 钱", "！？", ""])
def test_a_query_without_a_two_character_word_cannot_use_the_index(text: str) -> None:
    assert not parse_query(text).searchable


def test_bigrams_narrow_the_candidates_and_only_the_substring_test_confirms() -> None:
    text = "刷单，单返"
    # Every bigram of 刷单返 is indexed for this text, yet it does not contain the term:
    # the index finds candidates, the substring test (LIKE) decides.
    query = parse_query("刷单返")
    assert query.grams <= index_grams(text)
    assert query.terms[0] not in normalise(text)
    assert not parse_query("返利").grams <= index_grams(text)
