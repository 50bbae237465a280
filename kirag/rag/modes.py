"""KiRAG's three modes as siblings: each is a settings class — one name per setting across
modes, each with its own defaults — and the chain retriever it configures. `KiRAG` composes a
mode's retriever with a reader; the CLI's flags, their per-mode help and the docs table are
derived from these classes.

- `AlignerModeSettings` (the offline default): chains by beam search on the aligner's scores;
- `LLMModeSettings`: a constructor LLM picks each next triple from numbered candidates;
- `ReferenceSettings` (kirag.rag.reference): the paper's algorithm with the reference's numbers.

The aligner mode's defaults were chosen by leave-one-out cross-validation on the bundled bridge
questions (`kirag bench kirag-cv`, benchmarks/results/kirag-settings-cv.json): 3 turns, beam 2,
the chain documents fused at half the first stage's weight (30 of 31 folds). Its untrained
aligner picks first hops among the first-stage documents' triples (searching all triples adds
near-duplicates of the question it cannot tell apart). Its first stage, BM25 + the entity
routes, was chosen on the 96 dev questions of the sample (`kirag bench kirag --sections offline`,
benchmarks/results/kirag-offline-chains.json; docs/kirag-offline.md). The LLM mode's first stage
was not measured there and stays RRF; its constructor gets the reference's candidate search.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from kirag.core.ranges import COUNT, COUNT_OR_ZERO, NON_NEGATIVE
from kirag.core.settings import as_record, check_settings, declared, other_default, setting
from kirag.errors import KiragError
from kirag.rag.chains import NEW_EVIDENCE
from kirag.rag.constructor import PICK_BONUS
from kirag.rag.reference import ReferenceSettings

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


MODES: dict[str, type] = {
    "aligner": AlignerModeSettings,
    "llm": LLMModeSettings,
    "reference": ReferenceSettings,
}


def mode_settings(mode: str, **options: Any):
    """The settings of `mode` with `options` over its defaults; an option the mode does not
    have is refused, naming the mode's settings."""
    if mode not in MODES:
        raise KiragError(f"unknown KiRAG mode {mode!r}; known: auto, {', '.join(MODES)}")
    known = [item.name for item in declared(MODES[mode])]
    for name in options:
        if name not in known:
            raise KiragError(
                f"option {name!r} does not apply to {mode} mode; known: {', '.join(known)}",
                parameters=(name,),
            )
    return MODES[mode](**options)


def mode_of(settings: Any) -> str:
    """The mode a settings object configures."""
    for mode, cls in MODES.items():
        if type(settings) is cls:
            return mode
    raise KiragError(f"not a KiRAG mode's settings: {type(settings).__name__}")


def chain_options(settings: Any) -> dict[str, Any]:
    """A beam-search mode's settings as the chain retriever's keyword arguments."""
    record = as_record(settings)
    record.pop("first_stage")
    return record
