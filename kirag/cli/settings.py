"""`kirag settings`: every component's settings — name, flag, default, allowed values, what it
affects — printed from the settings classes themselves. docs/settings.md is this command's
output (tests/test_settings.py keeps them equal), so the docs cannot disagree with the code."""

from __future__ import annotations

import argparse
import importlib

from kirag.cli.common import add_command

# title -> "module:Class": the settings classes declared with kirag.core.settings.setting
SETTINGS_CLASSES = {
    "BM25 index (kirag index bm25)": "kirag.retrieval.bm25:BM25Settings",
    "Dense index (kirag index dense)": "kirag.retrieval.dense:DenseSettings",
    "Triple index (kirag index triples)": "kirag.knowledge.triple_index:TripleIndexSettings",
    "LLM triple extractor (--extractor llm)": "kirag.knowledge.llm_extractor:LLMExtractorSettings",
    "Reference triple extractor (--extractor reference)": (
        "kirag.knowledge.reference_extractor:ReferenceExtractorSettings"
    ),
    "Rank1 reranker": "kirag.rerank.rank1:Rank1Settings",
    "LLM engine": "kirag.llm.settings:EngineSettings",
    "Quantization calibration (kirag quantize)": "kirag.llm.quantize:CalibrationSettings",
    "Serving limits (kirag serve)": "kirag.serve.settings:ServeSettings",
    "Ray Serve (kirag serve --ray)": "kirag.serve.ray_serve:RaySettings",
    "Ray executor (the --ray of index and rerank)": "kirag.scale.executors:RayExecutorSettings",
    "KiRAG aligner mode (the offline default)": "kirag.rag.chain_settings:AlignerModeSettings",
    "KiRAG llm mode": "kirag.rag.chain_settings:LLMModeSettings",
    "KiRAG reference mode (the paper's algorithm)": "kirag.rag.reference:ReferenceSettings",
    "KiRAG entity routes (the offline first stage)": "kirag.rag.entity_routes:RouteSettings",
    "KiRAG entity hop": "kirag.rag.entity_hop:HopSettings",
    "KiRAG answers (kirag answer)": "kirag.rag.answering:AnswerSettings",
    "KiRAG reader": "kirag.rag.reader:ReaderSettings",
    "Aligner training (kirag train aligner)": "kirag.rag.aligner_training:TrainSettings",
    "Aligner training from the corpus (kirag train aligner --from-corpus)": (
        "kirag.rag.corpus_training:CorpusAlignerSettings"
    ),
    "Encoder training (kirag train encoder)": "kirag.rag.corpus_training:CorpusEncoderSettings",
}

INTRO = """\
# Settings

Every setting below is declared once, as a field of its component's settings class; the
command-line flags, their help, validation, run records, cache keys and this page are derived
from it (`kirag settings` prints this page). *Affects*: **results** — a different value gives
different results, so it is part of every cache and work-folder key; **rounding** — it moves
results only at float rounding (a run's work folder is keyed by it, a score cache is not);
**nothing** — limits and resources. "In the hashed text": its effect is already in the text a
cache key hashes. Settings marked "(API only)" have no flag yet.
"""


def settings_class(target: str) -> type:
    module, name = target.split(":")
    return getattr(importlib.import_module(module), name)


def render() -> str:
    """The settings page: one table per settings class."""
    from kirag.core.settings import settings_table

    parts = [INTRO]
    for title, target in SETTINGS_CLASSES.items():
        cls = settings_class(target)
        doc = " ".join((cls.__doc__ or "").split())
        parts.append(
            f"## {title}\n\n`{target.replace(':', '.')}`: {doc}\n\n{settings_table(cls)}\n"
        )
    return "\n".join(parts)


def register(subparsers) -> None:
    parser = add_command(
        subparsers,
        "settings",
        help="list every component's settings: flag, default, range, what it affects",
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    print(render(), end="")
    return 0
