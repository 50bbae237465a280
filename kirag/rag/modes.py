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

from typing import Any

from kirag.core.settings import declared
from kirag.errors import KiragError
from kirag.rag.chain_settings import AlignerModeSettings, LLMModeSettings
from kirag.rag.reference import ReferenceSettings

# the mode classes are re-exported: the registry is where a mode's settings are looked up
__all__ = [
    "MODES",
    "AlignerModeSettings",
    "LLMModeSettings",
    "ReferenceSettings",
    "mode_of",
    "mode_settings",
]

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
