"""The Ray executor on a local cluster (ray.init(num_cpus=4), workers at 0.5 CPU: two 1-CPU
workers on 2 cores starve Ray's own tasks and hang, see DESIGN.md): the same outputs as the
serial path — embeddings within 1e-6 in corpus order, identical triple stores, identical Rank1
scores — and a failure injected at shard k resumed by computing only the missing shards."""

from __future__ import annotations

import functools

import numpy as np
import pytest
from failing_shards import FailAt, Injected

pytest.importorskip("ray", reason="the ray extra (ray[data]) is not installed")

from kirag.retrieval.dense import (
    Encoder,
    EncodeTask,
    encode_to_shards,
    encoder_settings,
)

from kirag.io.docstore import DocStore
from kirag.knowledge.extraction import TripleStore, extract_corpus, make_extractor
from kirag.scale import RayExecutor, cut_into_shards
from kirag.types import Hit, Query

pytestmark = pytest.mark.ray


@pytest.fixture(scope="session")
def ray_cluster():
    import ray
    import ray.cloudpickle

    ray.init(num_cpus=4, include_dashboard=False, log_to_driver=False)
    # the failure-injecting task lives in a test helper module: send it by value, not by name
    import failing_shards

    ray.cloudpickle.register_pickle_by_value(failing_shards)
    yield ray
    ray.shutdown()


def pool(workers: int = 2) -> RayExecutor:
    return RayExecutor(workers=workers, cpus_per_worker=0.5)


@pytest.fixture(scope="module")
def passages(enwiki_slice_docs):
    return enwiki_slice_docs[:200]


@pytest.fixture(scope="module")
def encoder(minilm):
    return Encoder("minilm")


def _merged(paths) -> np.ndarray:
    return np.concatenate([np.load(p) for p in paths])


def test_ray_embeddings_match_serial_in_corpus_order(ray_cluster, encoder, passages, tmp_path):
    texts = [d.contents for d in passages[:80]]
    serial = encode_to_shards(encoder, texts, tmp_path / "serial", len(texts), shard_size=10)
    on_ray = encode_to_shards(
        encoder, iter(texts), tmp_path / "ray", len(texts), shard_size=10, executor=pool()
    )
    assert (
        [p.name for p in on_ray]
        == [p.name for p in serial]
        == [f"shard_{i:05d}.npy" for i in range(8)]
    )
    a, b = _merged(serial), _merged(on_ray)
    assert a.shape == b.shape == (80, 384)
    assert np.abs(a - b).max() <= 1e-6
    # same order: each Ray row is nearest to the serial row of the same passage
    assert (np.argmax(b @ a.T, axis=1) == np.arange(80)).all()


def test_a_failure_at_shard_k_is_resumed_by_computing_only_the_missing_shards(
    ray_cluster, encoder, passages, tmp_path
):
    texts = [d.contents for d in passages[:60]]
    work = tmp_path / "work"
    task = EncodeTask(encoder_settings(encoder), work)
    with pytest.raises(Injected, match="shard_00002"):  # the task's own error, not a wrapper
        pool().run(FailAt(task, 2), cut_into_shards(texts, 10))
    finished = sorted(int(p.stem[-5:]) for p in work.glob("shard_*.npy"))
    assert 2 not in finished and len(finished) < 6  # shard 2 failed; the others kept
    assert not [p for p in work.iterdir() if p.suffix != ".npy"]  # no temporaries left

    report = pool().run(task, cut_into_shards(texts, 10))
    missing = sorted(set(range(6)) - set(finished))
    assert report.computed == missing  # counted: only the missing shards were encoded
    assert sorted(report.skipped) == finished
    reference = encoder.encode_passages(texts)
    assert np.abs(_merged(sorted(work.glob("shard_*.npy"))) - reference).max() <= 1e-6


def test_ray_extraction_gives_the_serial_triple_store(ray_cluster, passages, tmp_path):
    docs = passages[:80]
    spacy = make_extractor("spacy")
    serial = TripleStore(tmp_path / "serial.sqlite")
    extract_corpus(docs, spacy, serial, batch_size=8)  # today's in-process path
    on_ray = TripleStore(tmp_path / "ray.sqlite")
    stats = extract_corpus(
        docs,
        spacy,
        on_ray,
        batch_size=8,
        executor=pool(),
        shard_size=20,
        factory=functools.partial(make_extractor, "spacy"),
    )
    assert stats.documents == stats.extracted == 80 and stats.triples > 80
    assert on_ray.dump() == serial.dump()
    assert not list(tmp_path.glob(".ray.sqlite.encode-*"))  # shard files removed once merged
    again = extract_corpus(docs, spacy, on_ray, executor=pool(), shard_size=20)
    assert again.cached == 80 and again.extracted == 0  # nothing recomputed


def test_ray_rank1_scores_equal_serial(ray_cluster, passages, smollm2_gguf, tmp_path):
    pytest.importorskip("llama_cpp", reason="the llamacpp extra is not installed")
    from kirag.rerank.rank1 import Rank1Reranker
    from kirag.rerank.sharded import rerank_sharded

    factory = functools.partial(
        Rank1Reranker,
        str(smollm2_gguf),
        engine="llamacpp",
        engine_options={"reuse_prefix": False},
        thinking_budget=4,
        batch_size=2,
    )
    store = DocStore.build(tmp_path / "docs.sqlite", passages[:12])
    queries = {
        "q1": Query("q1", "Who taught Aristotle?"),
        "q2": Query("q2", "When did Apollo 8 launch?"),
        "q3": Query("q3", "What is the capital of Alberta?"),
    }
    ids = [d.id for d in passages[:12]]
    run = {
        q: [Hit(ids[i * 4 + j], 10.0 - j, j + 1) for j in range(3)] for i, q in enumerate(queries)
    }
    serial = factory().rerank_run(run, queries, store, show_progress=False)  # today's path
    on_ray = rerank_sharded(
        pool(), factory, run, queries, store, tmp_path / "work", queries_per_shard=1
    )
    assert list(on_ray) == list(serial)  # query order kept
    for qid in serial:
        assert [(h.doc_id, h.score, h.rank) for h in on_ray[qid]] == [
            (h.doc_id, h.score, h.rank) for h in serial[qid]
        ]
        assert [h.metadata["reasoning"] for h in on_ray[qid]] == [
            h.metadata["reasoning"] for h in serial[qid]
        ]
        assert all(h.document is not None for h in on_ray[qid])
    assert not (tmp_path / "work").exists()


def test_kirag_index_dense_on_ray_records_the_executor(
    ray_cluster, enwiki_slice, encoder, tmp_path
):
    import json

    from kirag.cli import main
    from kirag.core.runconfig import config_path_for

    corpus = tmp_path / "corpus.jsonl"
    corpus.write_text("".join(enwiki_slice.read_text("utf-8").splitlines(True)[:40]), "utf-8")
    index = tmp_path / "dense"
    argv = ["index", "dense", "--corpus", str(corpus), "--index", str(index), "--shard-size", "10"]
    assert main([*argv, "--ray", "--workers", "2", "--cpus-per-worker", "0.5"]) == 0
    vectors = np.load(index / "embeddings.npy")
    docs = DocStore(index / "docs.sqlite")
    assert np.abs(vectors - encoder.encode_passages([d.contents for d in docs])).max() <= 1e-6
    settings = json.loads(config_path_for(index).read_text())["settings"]
    assert settings["ray"] is True and settings["workers"] == 2
    assert ray_cluster.is_initialized()  # a Ray the caller started is left running


def test_ray_flags_without_ray_are_refused(tmp_path, capsys):
    from kirag.cli import main

    code = main(
        ["index", "dense", "--corpus", "x.jsonl", "--index", str(tmp_path / "i"), "--workers", "2"]
    )
    assert code == 2
    assert "--workers only applies with --ray" in capsys.readouterr().err


def test_vllm_stages_build_on_cpu_with_kirag_prompts_and_parsers(ray_cluster, tmp_path):
    """`--ray --engine vllm`: the Ray Data vLLM processors build here (no vLLM, no GPU:
    generation is unverified); their preprocess is kirag's prompt, their postprocess its
    parser, checked on rows shaped as the vLLM stage returns them."""
    pytest.importorskip("ray.data.llm", reason="ray.data.llm is not importable")
    from kirag.rerank import rank1_scoring as rs
    from kirag.rerank.rank1_ray import Rank1Parse, Rank1Prompts, RayVLLMRank1Reranker
    from ray.llm._internal.batch.processor.base import Processor

    from kirag.knowledge.llm_extractor import (
        extraction_messages,
        load_extraction_prompt,
        system_message,
    )
    from kirag.knowledge.ray_extraction import (
        ExtractionParse,
        ExtractionPrompts,
        RayVLLMTripleExtractor,
    )
    from kirag.scale.llm import VLLMStage

    model = str(tmp_path / "rank1-model")  # not loaded: the processor is only built
    reranker = RayVLLMRank1Reranker(VLLMStage(model, batch_size=4), 837, 905, thinking_budget=64)
    assert isinstance(reranker.generate, Processor) and isinstance(reranker.force, Processor)
    row = Rank1Prompts(64)({"query": "Who taught Aristotle?", "passage": "Plato taught him."})
    assert row["prompt"] == rs.build_prompt("Who taught Aristotle?", "Plato taught him.")
    assert row["sampling_params"]["stop"] == list(rs.STOP_STRINGS)
    assert row["sampling_params"]["max_tokens"] == 64 and row["sampling_params"]["logprobs"] == 20
    generated = {
        "query": "q",
        "passage": "p",
        "generated_text": "Plato taught him.\n</think> true",
        "num_generated_tokens": 9,
        "logprobs": [{11: {"logprob": -0.5}}, {837: {"logprob": -0.2}, 905: {"logprob": -1.8}}],
    }
    parsed = Rank1Parse(837, 905)(generated)
    assert parsed["p_true"] == pytest.approx(rs.p_true({837: -0.2, 905: -1.8}, 837, 905))
    assert parsed["thinking_tokens"] == 9 and parsed["reasoning"].endswith("</think> true")
    no_answer = Rank1Parse(837, 905)({**generated, "logprobs": [{11: {"logprob": -0.1}}]})
    assert no_answer["p_true"] == -1.0  # sent to the forced (rethink) pass

    extractor = RayVLLMTripleExtractor(VLLMStage(str(tmp_path / "llm")), max_tokens=128)
    assert isinstance(extractor.processor, Processor) and extractor.stage.chat_template
    prompt = load_extraction_prompt()
    doc = {"id": "Aristotle#0", "title": "Aristotle", "text": "Aristotle was a Greek philosopher."}
    system = system_message(prompt, prompt["examples"][:2])
    request = ExtractionPrompts(system, 128)(doc)
    assert request["messages"] == extraction_messages(prompt, system, doc["title"], doc["text"])
    out = ExtractionParse(extractor.id)(
        {**doc, "_row": 0, "generated_text": "<Aristotle; was; Greek philosopher>"}
    )
    assert [(t["head"], t["relation"], t["tail"]) for t in out["triples"]] == [
        ("Aristotle", "was", "Greek philosopher")
    ]


@pytest.mark.llm
def test_kirag_rerank_on_ray_writes_the_serial_run(ray_cluster, enwiki_slice, tmp_path):
    """`kirag rerank --ray`: query shards on two workers, merged in query order, the run config
    records the executor. (The CLI's llama.cpp engine reuses KV prefixes, which moves scores by
    up to 5e-2 with what ran before: exact equality is the reuse_prefix=False test above.)"""
    pytest.importorskip("llama_cpp", reason="the llamacpp extra is not installed")
    import json

    from kirag.eval.runs import read_run_scores

    from kirag.cli import main
    from kirag.core.runconfig import config_path_for

    topics = tmp_path / "topics.tsv"
    topics.write_text("q1\tWho wrote Animal Farm?\nq2\tWhich king was taught by Aristotle?\n")
    run = tmp_path / "first.trec"
    docs = ["Aristotle#0", "Animal_Farm#0", "Alabama#0"]
    run.write_text(
        "".join(
            f"{q} Q0 {d} {r} {10.0 - r} bm25\n" for q in ("q1", "q2") for r, d in enumerate(docs, 1)
        )
    )
    common = ["-q", "rerank", "--run", str(run), "--topics", str(topics), "--corpus",
              str(enwiki_slice), "--engine", "llamacpp", "--thinking-budget", "0", "--k", "3"]  # fmt: skip
    assert main([*common, "--output", str(tmp_path / "serial.trec")]) == 0
    ray_args = ["--ray", "--workers", "2", "--cpus-per-worker", "0.5", "--queries-per-shard", "1"]
    assert main([*common, "--output", str(tmp_path / "ray.trec"), *ray_args]) == 0
    serial = read_run_scores(tmp_path / "serial.trec")
    on_ray = read_run_scores(tmp_path / "ray.trec")
    assert list(on_ray) == list(serial) == ["q1", "q2"]
    for qid in serial:
        assert set(on_ray[qid]) == set(serial[qid])
        for doc, score in serial[qid].items():
            assert on_ray[qid][doc] == pytest.approx(score, abs=5e-2)
    config = json.loads(config_path_for(tmp_path / "ray.trec").read_text())
    assert config["settings"]["ray"] is True and config["results"]["fallbacks"]["none"] == 6
    assert not list(tmp_path.glob(".ray.trec.rerank-*"))  # shard outputs removed once merged
