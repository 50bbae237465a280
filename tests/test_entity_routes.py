"""Entity routes (kirag.rag.entity_routes): the question's named articles and the shared-name hop
placed into a real BM25 ranking over the 314 real Wikipedia passages of the test slice."""

from __future__ import annotations

import itertools

import pytest

from kirag.knowledge.mentions import MentionLookup, article_of, names_in, other_articles
from kirag.knowledge.titles import TitleLookup
from kirag.rag.entity_routes import (
    EntityRoutesRetriever,
    RouteSettings,
    asks_to_compare,
    place,
    routes_retriever,
)


@pytest.fixture(scope="module")
def bm25(enwiki_bm25):
    from kirag.retrieval.bm25 import BM25Retriever

    return BM25Retriever(enwiki_bm25)


def test_place_puts_extra_at_a_rank_and_loses_nothing():
    ranking = ["a", "b", "c", "d"]
    assert place(ranking, ["x", "y", "z"], at=2, count=2) == ["a", "x", "y", "b", "c", "d"]
    # already above the rank: not placed again; already below it: moved up, not duplicated
    assert place(ranking, ["a", "c"], at=2, count=2) == ["a", "c", "b", "d"]
    assert place(ranking, [], at=1, count=2) == ranking
    assert place(ranking, ["x"], at=9, count=1) == [*ranking, "x"]


def test_comparison_questions():
    assert asks_to_compare("Who died first, Albert Einstein or Aldous Huxley?")
    assert asks_to_compare("Are both the aardvark and the aardwolf native to Africa?")
    assert not asks_to_compare("Where was the president born who appointed Andrew Johnson?")


def test_titles_are_found_before_a_question_mark(bm25):
    found = TitleLookup(bm25.docstore).documents(
        ["Who died first, Albert Einstein or Aldous Huxley?"]
    )
    assert {article_of(d) for d in found} == {"Albert_Einstein", "Aldous_Huxley"}


def test_names_and_the_passages_sharing_them(bm25):
    assert {"Abraham Lincoln", "Civil War", "United States"} <= names_in(
        bm25.docstore.get("Abraham_Lincoln#0").text
    )
    mentions = MentionLookup(bm25.docstore)
    sharing = mentions.sharing(["Abraham_Lincoln#0"], max_passages=100)
    index = mentions.passages()
    assert "Abraham_Lincoln#0" in sharing
    civil_war = set(index["Civil War"])
    assert len(civil_war) > 1 and civil_war <= set(sharing)
    # a name the question writes, or one written in too many passages, links nothing
    narrow = mentions.sharing(["Abraham_Lincoln#0"], skip_names_in="the Civil War", max_passages=1)
    assert narrow and not (civil_war - {"Abraham_Lincoln#0"}) & set(narrow)
    others = other_articles(sharing, ["Abraham_Lincoln#0"])
    assert others and not any(d.startswith("Abraham_Lincoln#") for d in others)


def test_a_comparison_question_gets_both_named_articles_first(bm25):
    question = "Who died first, Albert Einstein or Aldous Huxley?"
    plain = [h.doc_id for h in bm25.search(question, 10)]
    routes = routes_retriever(bm25, settings=RouteSettings(hop_count=0))
    hits = routes.search(question, 10)
    top = [h.doc_id for h in hits]
    assert {article_of(d) for d in top[:2]} == {"Albert_Einstein", "Aldous_Huxley"}
    assert {article_of(d) for d in plain[:2]} != {"Albert_Einstein", "Aldous_Huxley"}
    assert [h.rank for h in hits] == list(range(1, 11))
    assert all(a.score > b.score for a, b in itertools.pairwise(hits))
    # not a comparison: the named articles are left where BM25 put them
    assert [h.doc_id for h in routes.search("Albert Einstein Aldous Huxley", 10)] == [
        h.doc_id for h in bm25.search("Albert Einstein Aldous Huxley", 10)
    ]


def test_the_hop_places_another_articles_passage_that_shares_a_name(bm25):
    question = "Which state was the president born in who led the Union in the Civil War?"
    first = [h.doc_id for h in bm25.search(question, 100)]
    settings = RouteSettings(named_count=0, hop_sources=1, hop_at=2, hop_count=1)
    routes = EntityRoutesRetriever(bm25, routes_retriever(bm25).scorer, settings)
    hopped = routes.hop(question, first[:1])
    assert hopped and article_of(hopped[0]) != article_of(first[0])
    shared = names_in(bm25.docstore.get(first[0]).text) & names_in(
        bm25.docstore.get(hopped[0]).text
    )
    assert shared  # the link is a name both passages write
    top = [h.doc_id for h in routes.search(question, 10)]
    assert top[0] == first[0] and top[1] == hopped[0]


def test_the_defaults_are_the_setting_chosen_on_dev():
    """RouteSettings' defaults ship what `kirag bench kirag --sections offline` chose on the dev
    questions, as its results file records (regenerate both together)."""
    import json
    from pathlib import Path

    results = Path(__file__).resolve().parents[1] / "benchmarks/results/kirag-offline.json"
    offline = json.loads(results.read_text())["offline"]
    family = offline["families"]["BM25 + entity routes, no chains"]
    assert family["chosen_on_all_dev"] == f"bm25 + routes {RouteSettings().label()}"
