"""Caches and work folders built before the settings dataclasses stay valid: the keys today's
code derives from settings (Rank1's score-cache fingerprint, a sharded rerank's work folder, the
LLM extractor's cache id, the dense encoding folder) equal the ones recorded from the code as it
was before the change (tests/data/golden_fingerprints.json). An extraction of the full sample
takes hours; a changed key would silently start it again.

`python tests/test_golden_fingerprints.py --record` rewrites the file: only for a change that is
meant to invalidate caches, and say so in the change."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

GOLDEN = Path(__file__).parent / "data" / "golden_fingerprints.json"

RERANK_ARGS = ["rerank", "--run", "r.trec", "--topics", "t.tsv", "--index", "idx"]
SHARD_CASES = {
    "defaults": [],
    "budget-64-llamacpp-context": ["--thinking-budget", "64", "--engine", "llamacpp", "--context", "4096"],
    "prompted-reference-policy": [
        "--instruction", "Be brief.", "--dataset-prompt", "scifact", "--passage-policy", "reference",
        "--batch-size", "4", "--k", "20",
    ],
}  # fmt: skip
RANK1_CASES = {
    "budget-0": {"thinking_budget": 0},
    "budget-64": {"thinking_budget": 64},
    "reference-budget": {},
    "reference-policy-64": {"thinking_budget": 64, "passage_policy": "reference"},
    "prompted-0": {"thinking_budget": 0, "instruction": "Be brief.", "dataset_prompt": "scifact"},
}


def shard_keys() -> dict[str, str]:
    """The work folder `kirag rerank --ray` keys by the scoring settings of the command line."""
    from kirag.rerank.sharded import work_dir_for

    from kirag.cli import build_parser
    from kirag.cli.rerank import scoring_settings

    parser = build_parser()
    out = {}
    for name, extra in SHARD_CASES.items():
        args = parser.parse_args([*RERANK_ARGS, "--output", f"out/{name}.trec", *extra])
        out[name] = work_dir_for(args.output, scoring_settings(args)).name
    return out


def rank1_fingerprints(engine) -> dict[str, str]:
    from kirag.rerank.rank1 import Rank1Reranker

    return {
        name: Rank1Reranker(engine=engine, **options).fingerprint
        for name, options in RANK1_CASES.items()
    }


def extractor_ids(engine) -> dict[str, str]:
    from kirag.knowledge.llm_extractor import LLMTripleExtractor

    return {
        "llm-default": LLMTripleExtractor(engine).id,
        "llm-shots1-max128": LLMTripleExtractor(engine, num_examples=1, max_tokens=128).id,
    }


def encoding_dirs() -> dict[str, str]:
    from kirag.retrieval.dense import Encoder, work_dir_for

    from kirag.models import DEFAULT_EMBEDDER

    encoder = Encoder(DEFAULT_EMBEDDER)
    return {"default-embedder": work_dir_for(Path("idx/dense"), "corpus-fingerprint", encoder).name}


def _golden(section: str) -> dict[str, str]:
    return json.loads(GOLDEN.read_text())[section]


def test_sharded_rerank_work_folders_keep_their_names():
    assert shard_keys() == _golden("rerank_shard_dirs")


def test_dense_encoding_folders_keep_their_names():
    assert encoding_dirs() == _golden("dense_encoding_dirs")


@pytest.mark.llm
def test_rank1_score_cache_fingerprints_are_unchanged(llamacpp_engine):
    assert rank1_fingerprints(llamacpp_engine) == _golden("rank1_llamacpp")


@pytest.mark.llm
def test_llm_extraction_cache_ids_are_unchanged(llamacpp_engine):
    assert extractor_ids(llamacpp_engine) == _golden("llm_extractor_ids")


def record() -> None:
    from kirag.llm.factory import load_engine

    engine = load_engine("smollm2-135m", "llamacpp")
    data = {
        "rerank_shard_dirs": shard_keys(),
        "dense_encoding_dirs": encoding_dirs(),
        "rank1_llamacpp": rank1_fingerprints(engine),
        "llm_extractor_ids": extractor_ids(engine),
    }
    GOLDEN.write_text(json.dumps(data, indent=1, sort_keys=True) + "\n")
    print(f"wrote {GOLDEN}")


if __name__ == "__main__" and sys.argv[1:] == ["--record"]:
    record()
