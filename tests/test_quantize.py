"""`kirag quantize` (kirag.llm.quantize): calibration settings and text on the packaged SmolLM2's
real tokenizer, Rank1's exact prompts without loading the weights, the one-line errors, and (slow,
with llama.cpp's tools built by `make llama-tools`) a real Q2_K with domain calibration that loads
in the llama.cpp engine with its calibration in the engine's precision and the score fingerprint."""

from __future__ import annotations

import json

import pytest

from kirag.errors import KiragError, SettingsError
from kirag.llm.quantize import (
    CalibrationSettings,
    GGUFVocab,
    LlamaTools,
    calibration_text,
    quantize_gguf,
)

pytestmark = pytest.mark.llamacpp


@pytest.fixture(scope="module")
def vocab(smollm2_gguf):
    vocab = GGUFVocab(smollm2_gguf)
    yield vocab
    vocab.close()


@pytest.fixture(scope="module")
def texts(enwiki_slice_docs):
    general = [d.contents for d in enwiki_slice_docs[:60]]
    domain = [f"<|im_start|>user\nIs this relevant?\n{d.contents}" for d in enwiki_slice_docs[60:]]
    return domain, general


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"kind": "domain-ish"}, "kind must be one of none, general, domain, cross"),
        ({"kind": "general", "chunks": 1}, r"chunks must be an integer >= 2 \(got 1\)"),
        (
            {"kind": "cross", "domain_share": 1.0},
            "domain_share must be a finite number > 0 and < 1",
        ),
    ],
)
def test_calibration_settings_refuse_bad_values(kwargs, message):
    with pytest.raises(SettingsError, match=message):
        CalibrationSettings(**kwargs)


def test_cross_calibration_takes_its_shares_and_is_seeded(vocab, texts):
    domain, general = texts
    settings = CalibrationSettings("cross", chunks=4, context=128, domain_share=0.25)
    text, info = calibration_text(settings, vocab.count, domain, general)
    assert 128 <= info["domain"]["tokens"] - 0.25 * 512 <= 128 + 600  # its share + a margin
    assert 384 <= info["general"]["tokens"] <= 384 + 128 + 600
    assert vocab.count(text) >= settings.tokens
    again, _ = calibration_text(settings, vocab.count, domain, general)
    other, _ = calibration_text(
        CalibrationSettings("cross", chunks=4, context=128, domain_share=0.25, seed=7),
        vocab.count,
        domain,
        general,
    )
    assert again == text and other != text


def test_domain_calibration_without_domain_text_names_the_parameters(vocab, texts):
    with pytest.raises(SettingsError, match="give domain"):
        calibration_text(CalibrationSettings("domain"), vocab.count, (), texts[1])
    with pytest.raises(SettingsError, match="lower chunks"):
        calibration_text(CalibrationSettings("general", chunks=400), vocab.count, (), texts[1][:3])
    assert calibration_text(CalibrationSettings("none"), vocab.count) == ("", {})


def test_rank1_prompts_from_the_vocabulary_equal_the_engines(vocab, llamacpp_engine):
    from kirag.rerank.rank1 import Rank1Reranker

    long_passage = "Animal Farm is a novella by George Orwell. " * 1000  # over the context
    pairs = [("Who wrote Animal Farm?", "A short passage."), ("Who wrote it?", long_passage)]
    from_vocab = Rank1Reranker(engine=vocab, thinking_budget=64).prompts(pairs)
    from_engine = Rank1Reranker(engine=llamacpp_engine, thinking_budget=64).prompts(pairs)
    assert from_vocab == from_engine
    assert "Who wrote Animal Farm?" in from_vocab[0] and len(from_vocab[1]) < len(long_passage)


def test_missing_tools_and_bad_inputs_are_one_line_errors(tmp_path, smollm2_gguf):
    with pytest.raises(KiragError, match="make llama-tools"):
        LlamaTools.find(tmp_path)
    tools = LlamaTools(tmp_path)
    settings = CalibrationSettings("none")
    with pytest.raises(SettingsError, match="unknown GGUF format"):
        quantize_gguf(smollm2_gguf, "Q3_X", tmp_path / "out", settings, tools=tools)
    with pytest.raises(SettingsError, match="needs an importance matrix"):
        quantize_gguf(smollm2_gguf, "IQ2_XS", tmp_path / "out", settings, tools=tools)
    with pytest.raises(KiragError, match="not a GGUF file"):
        quantize_gguf(tmp_path, "Q2_K", tmp_path / "out", settings, tools=tools)


@pytest.mark.slow
def test_q2_k_with_domain_calibration_loads_and_says_so(tmp_path, smollm2_gguf, texts):
    from kirag.rerank.rank1 import Rank1Reranker

    from kirag.llm.llamacpp_engine import LlamaCppEngine

    try:
        tools = LlamaTools.find()
    except KiragError as exc:
        pytest.skip(str(exc))
    domain, general = texts
    settings = CalibrationSettings("domain", chunks=2, context=128)
    record = quantize_gguf(
        smollm2_gguf, "Q2_K", tmp_path / "q2k", settings, domain=domain, tools=tools, threads=2
    )
    saved = json.loads((tmp_path / "q2k" / "quantization.json").read_text())
    assert saved["format"] == "Q2_K" and saved["calibration"]["kind"] == "domain"
    assert "f32 dequantization" in saved["base"] and saved["calibration_texts"]["domain"]["texts"]
    assert (tmp_path / "q2k" / "imatrix.gguf").is_file()
    assert 0 < record.size_bytes < smollm2_gguf.stat().st_size
    plain = quantize_gguf(
        smollm2_gguf, "Q2_K", tmp_path / "plain", CalibrationSettings(), tools=tools, threads=2
    )
    assert plain.summary == "Q2_K, no imatrix"
    fingerprints = []
    for folder in ("q2k", "plain"):
        engine = LlamaCppEngine(str(tmp_path / folder / "model.gguf"), context_length=512)
        try:
            assert engine.quantization.startswith("Q2_K")
            assert engine.quantization in engine.precision
            reranker = Rank1Reranker(engine=engine, thinking_budget=0)
            score = reranker.score([("Who wrote Animal Farm?", general[0])])[0]
            assert 0.0 <= score.p_true <= 1.0
            fingerprints.append(reranker.fingerprint)
        finally:
            engine.close()
    assert "imatrix domain 2x128" in record.summary
    assert fingerprints[0] != fingerprints[1]


def test_cli_errors_are_one_line_naming_the_flags(tmp_path, capsys):
    from kirag.cli import main

    argv = ["quantize", "smollm2-135m", "--to", "q2_k", "--output", str(tmp_path / "out")]
    assert main([*argv, "--calibration", "domain", "--queries", str(tmp_path / "t.tsv")]) == 2
    assert "needs --queries, --run and --index together" in capsys.readouterr().err
    assert main([*argv, "--tools", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "make llama-tools" in err
    assert not (tmp_path / "out").exists()
