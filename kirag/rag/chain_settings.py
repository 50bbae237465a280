"""The settings of KiRAG's beam-search modes (aligner, llm), declared once: the chain retriever
(kirag.rag.chains.IterativeRetriever) takes them as its settings and defaults, and the modes
registry (kirag.rag.modes) names them beside the reference mode. They live below both, so the
retriever and the registry import them without importing each other.
"""

from __future__ import annotations

from dataclasses import dataclass

from kirag.core.ranges import COUNT, COUNT_OR_ZERO, NON_NEGATIVE
from kirag.core.settings import check_settings, other_default, setting
from kirag.rag.constructor import PICK_BONUS

# What a next triple must not share with the chain: its sentence (default: a triple from a
# sentence already on the chain adds no evidence), its document, or nothing.
NEW_EVIDENCE = ("sentence", "document", "none")

# first stages: a document index inside the triple index by name, "rrf" of all of them, and
# "+hop" / "+routes" on any of those (KiRAG._doc_retriever)
FIRST_STAGES = ("rrf", "bm25", "dense", "bm25+routes", "rrf+routes", "bm25+hop", "rrf+hop")


@dataclass(frozen=True)
class AlignerModeSettings:
    """Chains by beam search on the aligner's scores; no LLM in the loop (the offline default)."""

    max_turns: int = setting(3, "maximum chain length", range=COUNT, flag="--turns")
    beam_size: int = setting(2, "chains kept per turn", range=COUNT, flag="--beam")
    num_candidates: int = setting(
        30, "candidate triples per turn", range=COUNT, flag="--candidates"
    )
    graph_expansion: bool = setting(True, "candidates also from the entity graph", cli=False)
    graph_hops: int = setting(1, "entity-graph hops", range=COUNT_OR_ZERO, cli=False)
    doc_expansion_k: int = setting(
        5, "documents whose triples are candidates", range=COUNT_OR_ZERO, cli=False
    )
    pick_bonus: float = setting(PICK_BONUS, "bonus of a picked triple", cli=False)
    min_score: float = setting(0.0, "candidates scored below it are dropped", cli=False)
    new_evidence: str = setting(
        "sentence", "what a next step must add", choices=NEW_EVIDENCE, cli=False
    )
    hop_search: bool = setting(False, "search the next hop's triples by entity", cli=False)
    passage_weight: float = setting(1.0, "of the passage score", range=NON_NEGATIVE, cli=False)
    triple_search: bool = setting(
        False, "first hops among all triples (else among the first stage's)", cli=False
    )
    fusion_weights: tuple[float, float, float] = setting(
        (0.5, 1.0, 0.0), "RRF weights: first stage, chain documents, best triple", cli=False
    )
    first_stage: str = setting(
        "bm25+routes", "documents fused with the chains", choices=FIRST_STAGES, cli=False
    )

    def __post_init__(self) -> None:
        check_settings(self)


@dataclass(frozen=True)
class LLMModeSettings(AlignerModeSettings):
    """A constructor LLM picks each next triple from numbered candidates, over the aligner's
    beam (the same settings as the aligner mode's, four defaults differ)."""

    beam_size: int = other_default(AlignerModeSettings, "beam_size", 1)
    triple_search: bool = other_default(AlignerModeSettings, "triple_search", True)
    fusion_weights: tuple[float, float, float] = other_default(
        AlignerModeSettings, "fusion_weights", (1.0, 1.0, 0.0)
    )
    first_stage: str = other_default(AlignerModeSettings, "first_stage", "rrf")
