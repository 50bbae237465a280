"""Entity routes: two places a multi-hop question's missing passage is found that lexical
retrieval alone ranks low, put at fixed ranks of the first stage's ranking.

- A question that compares ("Who died first, Albert Einstein or Aldous Huxley?") names both
  articles it needs; BM25 ranks passages that share its words ("died") above their leads. The
  best passage of each article the question names by title goes to rank `named_at`.
- A bridge question's second passage is about an entity the first passage writes and the
  question does not; often the corpus has no article for it ("George Orwell" in a sample of
  "A" articles), so the link is a name both passages write. The passages of *other* articles
  that share a name with the first stage's top `hop_sources` passages (`MentionLookup`), and with
  `hop_titles` the articles those passages name by title, ranked for the question, go to rank
  `hop_at`.

Both candidate lists are ranked by the scorer (BM25 of the question, normalised) plus a prior
for an article's first passages. Where they go is chosen by cross-validation on dev questions
(`kirag bench kirag --sections offline`); `RouteSettings`' defaults are that choice.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from kirag.core.ranges import COUNT, COUNT_OR_ZERO, NON_NEGATIVE
from kirag.core.settings import check_settings, setting
from kirag.knowledge.mentions import MentionLookup, article_of, other_articles
from kirag.knowledge.titles import TitleLookup
from kirag.rag.entity_hop import rank_for
from kirag.types import Hit

_COMPARES = re.compile(r"\b(or|both|same)\b", re.IGNORECASE)


@dataclass(frozen=True)
class RouteSettings:
    """Where the question's named articles and the shared-name hop go, and what each follows.
    The defaults are the setting `kirag bench kirag --sections offline` chose on the 96 dev
    questions (benchmarks/results/kirag-offline.json; tests/test_entity_routes.py ties them)."""

    named_lead: float = setting(
        1.0,
        "lead prior of the named articles' passages: w / (1 + ordinal)",
        range=NON_NEGATIVE,
        cli=False,
    )
    named_at: int = setting(
        1, "rank of the first named-article passage (comparison questions)", range=COUNT, cli=False
    )
    named_count: int = setting(
        2, "named-article passages placed (one per article)", range=COUNT_OR_ZERO, cli=False
    )
    hop_sources: int = setting(
        1, "first-stage passages whose names are followed", range=COUNT_OR_ZERO, cli=False
    )
    hop_lead: float = setting(
        0.2, "lead prior of the hop's passages", range=NON_NEGATIVE, cli=False
    )
    hop_at: int = setting(4, "rank of the hop's first passage", range=COUNT, cli=False)
    hop_count: int = setting(2, "hop passages placed", range=COUNT_OR_ZERO, cli=False)
    hop_titles: bool = setting(True, "also the articles the sources name by title", cli=False)
    max_passages: int = setting(
        100, "a name written in more passages links nothing", range=COUNT, cli=False
    )

    def __post_init__(self) -> None:
        check_settings(self)

    def label(self) -> str:
        """The setting in a line, as benchmark tables name it."""
        titles = " + titles" if self.hop_titles else ""
        return (
            f"(named lead {self.named_lead:g} at {self.named_at}; hop from top "
            f"{self.hop_sources}{titles}, {self.hop_count} at {self.hop_at})"
        )


def asks_to_compare(question: str) -> bool:
    """Whether a question compares what it names ("… X or Y?", "Are both X and Y …")."""
    return bool(_COMPARES.search(question))


def place(ranking: Sequence[str], extra: Sequence[str], at: int, count: int) -> list[str]:
    """`ranking` with the first `count` of `extra` not already above rank `at` placed from rank
    `at` on (1-based); what they displace moves down, nothing is lost."""
    keep = list(ranking[: at - 1])
    placed = [d for d in dict.fromkeys(extra) if d not in keep][:count]
    return keep + placed + [d for d in ranking[at - 1 :] if d not in placed]


class EntityRoutesRetriever:
    """A first stage with the question's named articles and the shared-name hop placed at fixed
    ranks: a document retriever with `search` (scores: 1 / rank)."""

    def __init__(
        self,
        first_stage,
        scorer,
        settings: RouteSettings = RouteSettings(),
        titles: TitleLookup | None = None,
        mentions: MentionLookup | None = None,
    ):
        self.first_stage = first_stage
        self.scorer = scorer
        self.settings = settings
        # lookups over the scorer's corpus; pass them to share one between retrievers
        self.titles = titles or TitleLookup(scorer.docstore)
        self.mentions = mentions or MentionLookup(scorer.docstore)

    def named(self, question: str) -> list[str]:
        """The best passage of each article the question names by title, best first."""
        best: dict[str, str] = {}
        ranked = rank_for(
            self.scorer, question, self.titles.documents([question]), self.settings.named_lead
        )
        for hit in ranked:
            best.setdefault(article_of(hit.doc_id), hit.doc_id)
        return list(best.values())

    def hop(self, question: str, sources: Sequence[str]) -> list[str]:
        """Passages of other articles sharing a name with `sources`, ranked for the question."""
        s = self.settings
        found = self.mentions.sharing(sources, skip_names_in=question, max_passages=s.max_passages)
        if s.hop_titles:
            texts = [d.text for d in self.scorer.docstore.get_many(list(sources)) if d]
            found += self.titles.documents(texts)
        candidates = other_articles(dict.fromkeys(found), sources)
        return [h.doc_id for h in rank_for(self.scorer, question, candidates, s.hop_lead)]

    def search(self, query: str, k: int = 10, with_documents: bool = False) -> list[Hit]:
        s = self.settings
        first = [h.doc_id for h in self.first_stage.search(query, max(k, 100))]
        ranking = first
        if s.named_count and asks_to_compare(query):
            ranking = place(ranking, self.named(query), s.named_at, s.named_count)
        if s.hop_count:
            ranking = place(ranking, self.hop(query, first[: s.hop_sources]), s.hop_at, s.hop_count)
        return [Hit(d, 1.0 / r, r) for r, d in enumerate(ranking[:k], 1)]


def routes_retriever(bm25, first_stage=None, settings: RouteSettings = RouteSettings()):
    """`first_stage` (default: `bm25` itself) with the entity routes, scored by `bm25`."""
    from kirag.rag.entity_hop import LexicalScorer

    return EntityRoutesRetriever(first_stage or bm25, LexicalScorer(bm25), settings)
