"""The offline KiRAG path's new parts on the real slice: the entity hop, silver chains and ICT
pairs from the corpus itself, and training from them (a few steps; the model folder loads, its
config is recorded, a run resumes)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from kirag.cli import main


@pytest.fixture(scope="module")
def index(small_triple_index):
    from kirag.knowledge.triple_index import TripleIndex

    return TripleIndex(small_triple_index)


def test_documents_of_titles_finds_the_article_a_mention_names(index):
    found = index.documents_of_titles(["the Greek philosopher Aristotle"])
    assert found == ["Aristotle#0", "Aristotle#1", "Aristotle#2"]
    assert index.documents_of_titles(["nothing titled so"]) == []


def test_entity_hop_returns_the_passages_about_an_entity_the_source_names(index):
    from kirag.rag.entity_hop import DenseScorer, EntityHop, HopSettings

    scorer = DenseScorer(index.document_retrievers()["dense"])
    hop = EntityHop(index, scorer, HopSettings(depth=50))
    named = hop.entities_of(["Ayn_Rand#1"])
    assert "Ayn Rand" in named  # a triple's entity
    assert any("Aristotle" in text for text in named)  # the passage's text
    hits = hop.hop("Where was the philosopher Rand admired born?", ["Ayn_Rand#1"])
    ids = [h.doc_id for h in hits]
    assert {"Aristotle#0", "Aristotle#1", "Aristotle#2"} <= set(ids)
    assert "Ayn_Rand#1" not in ids  # the source itself is not a hop
    assert [h.rank for h in hits] == list(range(1, len(hits) + 1))
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)


def test_lead_prior_ranks_an_articles_first_passage_first(index):
    from kirag.rag.entity_hop import EntityHop, HopSettings, LexicalScorer, passage_ordinal

    assert passage_ordinal("Aristotle#12") == 12 and passage_ordinal("plain") is None
    scorer = LexicalScorer(index.document_retrievers()["bm25"])
    hop = EntityHop(None, scorer, HopSettings(lead_weight=10.0))  # titles from the text alone
    ranked = hop.rank("Aristotle", ["Aristotle#2", "Aristotle#1", "Aristotle#0"])
    assert [h.doc_id for h in ranked] == ["Aristotle#0", "Aristotle#1", "Aristotle#2"]


def test_entity_hop_retriever_fuses_the_hop_with_the_first_stage(index):
    from kirag.rag.entity_hop import DenseScorer, EntityHop, EntityHopRetriever

    documents = index.document_retrievers()
    hop = EntityHop(index, DenseScorer(documents["dense"]))
    retriever = EntityHopRetriever(documents["bm25"], hop)
    question = "Which philosopher did Ayn Rand name as her only influence?"
    first = [h.doc_id for h in documents["bm25"].search(question, 10)]
    fused = [h.doc_id for h in retriever.search(question, 10)]
    assert len(fused) == len(set(fused)) == min(10, len(first) + 3)
    assert set(fused) - set(first) <= {d for d in index.docstore.all_ids()}


def test_silver_chains_cross_documents_in_the_offline_modes_text_format(index):
    from kirag.knowledge.triple_index import triple_embedding_text
    from kirag.rag.chains import Chain
    from kirag.rag.corpus_training import CorpusGraph, aligner_rows, silver_chains

    graph = CorpusGraph(index)
    chains = silver_chains(graph, 20, seed=1)
    assert chains and chains == silver_chains(graph, 20, seed=1)  # seeded
    for chain in chains:
        assert 2 <= len(chain.triples) <= 3
        assert chain.triples[0].title != chain.triples[1].title  # across documents
        assert chain.question.startswith("What ") and chain.question.endswith("?")
    rows = aligner_rows(graph, chains[:3], num_negatives=2, seed=1)
    assert len(rows) == sum(len(c.triples) for c in chains[:3])
    first = chains[0]
    assert rows[0].query == first.question
    assert rows[1].query == Chain(triples=[first.triples[0]]).query(first.question)
    assert rows[1].positive == triple_embedding_text(first.triples[1])
    assert all(len(r.negatives) == 2 and r.positive not in r.negatives for r in rows)
    assert all(n.startswith("title: ") for r in rows for n in r.negatives)


def test_ict_pairs_take_a_sentence_out_of_its_passage(enwiki_slice):
    from kirag.io.corpus import read_corpus
    from kirag.rag.corpus_training import encoder_pairs

    documents = list(read_corpus(enwiki_slice))
    rows = encoder_pairs(documents, 30, seed=3)
    assert len(rows) == 30 and rows == encoder_pairs(documents, 30, seed=3)
    passages = {d.contents for d in documents}
    removed = [r for r in rows if r.query not in r.positive]
    assert len(removed) >= 20  # most pairs lose their query sentence (ICT keeps 10 %)
    assert all(r.query and r.positive for r in rows)
    assert all(r.positive not in passages for r in removed)  # the rest of the passage
    titles = encoder_pairs(documents, 5, seed=3, recipe="title")
    assert all(r.query in {d.title for d in documents} for r in titles)


@pytest.mark.slow
def test_train_aligner_from_corpus_saves_loads_and_resumes(small_triple_index, tmp_path):
    """A few steps on the small index's silver chains (about a minute on 2 cores)."""
    output = tmp_path / "aligner"
    argv = [
        "-q", "train", "aligner", "--from-corpus", str(small_triple_index), "--output",
        str(output), "--chains", "12", "--batch-size", "4", "--negatives", "1",
        "--query-max-length", "32", "--doc-max-length", "32", "--save-steps", "2",
        "--epochs", "1", "--dev-fraction", "0",
    ]  # fmt: skip
    assert main(argv) == 0
    config = json.loads((output / "kirag-config.json").read_text())
    assert config["settings"]["from_corpus"] == str(small_triple_index)
    assert config["settings"]["num_negatives"] == 1 and config["settings"]["epochs"] == 1
    steps = config["results"]["steps"]
    assert steps >= 2 and config["results"]["train_seconds"] > 0
    assert main([*argv[:-4], "--epochs", "2", "--dev-fraction", "0", "--resume"]) == 0
    resumed = json.loads((output / "kirag-config.json").read_text())
    assert resumed["results"]["steps"] == 2 * steps  # continued, not restarted

    from kirag.rag.pipeline import KiRAG

    pipeline = KiRAG(small_triple_index, aligner=str(output))
    result = pipeline.retrieve("Which philosopher influenced Ayn Rand?", k=5)
    assert result.hits and result.best_chain.triples


def test_typed_answer_takes_the_span_of_the_questions_type_from_the_final_step():
    from kirag.knowledge.triples import Triple
    from kirag.rag.answer_type import answer_type, typed_answer

    assert answer_type("Where was the president born who appointed Andrew Johnson?") == "place"
    assert answer_type("In what year did the author publish her novel?") == "date"
    assert answer_type("How many characters does ASCII encode?") == "number"
    assert answer_type("Who hosted the 88th ceremony?") == "person"
    assert answer_type("Is the sky blue?") is None
    step = Triple(
        "Abraham Lincoln",
        "was born in",
        "a log cabin",
        doc_id="Abraham_Lincoln#1",
        sentence="Abraham Lincoln was born in a log cabin in Hodgenville, Kentucky, in 1809.",
    )
    question = "Where was the president born who appointed Andrew Johnson?"
    assert typed_answer(question, [step]) in ("Hodgenville", "Kentucky")
    assert typed_answer("In what year was Lincoln born?", [step]) == "1809"
    assert typed_answer("What did Lincoln like?", [step]) == "a log cabin"  # no type: the tail
    assert typed_answer(question, []) is None


@pytest.mark.slow
def test_train_encoder_from_corpus_saves_a_folder_the_dense_index_loads(enwiki_slice, tmp_path):
    """ICT pairs from the slice, a few steps; then `kirag index dense --encoder` uses it."""
    output = tmp_path / "encoder"
    argv = [
        "-q", "train", "encoder", "--from-corpus", str(enwiki_slice), "--output", str(output),
        "--pairs", "16", "--batch-size", "8", "--max-length", "32",
    ]  # fmt: skip
    assert main(argv) == 0
    config = json.loads((output / "kirag-config.json").read_text())
    assert config["settings"]["recipe"] == "ict" and config["settings"]["num_negatives"] == 0
    assert config["results"]["steps"] == 2 and config["results"]["train_rows"] == 16
    corpus = tmp_path / "tiny.jsonl"
    corpus.write_text("".join(enwiki_slice.read_text().splitlines(keepends=True)[:12]))
    index = tmp_path / "dense"
    assert main(["-q", "index", "dense", "--corpus", str(corpus), "--index", str(index),
                 "--encoder", str(output)]) == 0  # fmt: skip
    from kirag.retrieval.factory import load_retriever

    hits = load_retriever(index).search("Aristotle", 3)
    assert len(hits) == 3


def test_offline_bench_chooses_on_the_other_questions_and_scores_the_left_out_one():
    from kirag.bench.offline import Setting, choose, leave_one_out, significance

    def setting(name, per_question, simplicity):
        s = Setting("f", name, lambda q: [], "bm25", simplicity)
        s.scores = [{3: v, 5: v, 10: v} for v in per_question]
        return s

    # "a" wins on questions 0-2, "b" only on question 3: leaving 3 out picks "a" (scores 0 there)
    a = setting("a", [1.0, 1.0, 1.0, 0.0], 0)
    b = setting("b", [0.0, 0.5, 0.5, 1.0], 1)
    assert choose([a, b], [0, 1, 2, 3]) == 0
    held, won = leave_one_out([a, b], [0, 1, 2, 3])
    assert [h[5] for h in held] == [1.0, 1.0, 1.0, 0.0] and won == {"a": 4}
    tie = setting("tie", [1.0, 1.0, 1.0, 0.0], 5)  # same scores, less simple: never chosen
    assert choose([tie, a], [0, 1, 2, 3]) == 1
    test = significance(b.scores, a.scores, ["q0", "q1", "q2", "q3"])
    assert test["R@5"]["difference"] == 0.25 and 0 < test["R@5"]["randomization_p"] <= 1


def test_kirag_takes_a_first_stage_with_the_entity_hop_by_name(small_triple_index):
    from kirag.rag.entity_hop import EntityHopRetriever
    from kirag.rag.pipeline import KiRAG

    pipeline = KiRAG(small_triple_index, doc_retriever="bm25+hop")
    assert isinstance(pipeline.retriever.doc_retriever, EntityHopRetriever)
    result = pipeline.retrieve("Which philosopher influenced Ayn Rand?", k=5)
    assert len(result.hits) == 5


def test_kirag_takes_a_first_stage_with_the_entity_routes_by_name(small_triple_index):
    from kirag.rag.entity_routes import EntityRoutesRetriever
    from kirag.rag.pipeline import KiRAG

    pipeline = KiRAG(small_triple_index, doc_retriever="bm25+routes")
    routes = pipeline.retriever.doc_retriever
    assert isinstance(routes, EntityRoutesRetriever)
    assert type(routes.first_stage).__name__ == "BM25Retriever"
    result = pipeline.retrieve("Which philosopher influenced Ayn Rand?", k=5)
    assert len(result.hits) == 5


def test_offline_bench_runs_the_routes_family_end_to_end(enwiki_slice, enwiki_bm25, tmp_path):
    """`kirag bench kirag --sections offline` over a real BM25 index of the slice and the dev
    questions whose gold passages it holds: every family chosen on dev, scored on test, the
    routes' defaults among the settings, and no partial file left behind."""
    from kirag.rag.entity_routes import RouteSettings

    held = {json.loads(line)["id"] for line in enwiki_slice.read_text().splitlines()}
    rows = [
        line
        for line in (Path(__file__).resolve().parents[1] / "kirag/data/multihop_enwiki_dev.jsonl")
        .read_text()
        .splitlines()
        if set(json.loads(line)["supporting_ids"]) <= held
    ]
    assert len(rows) >= 6
    dev, test = tmp_path / "dev.jsonl", tmp_path / "test.jsonl"
    dev.write_text("\n".join(rows[:-3]) + "\n")
    test.write_text("\n".join(rows[-3:]) + "\n")
    output = tmp_path / "offline.json"
    (tmp_path / "offline.json.partial.json").write_text("{}")
    argv = ["-q", "bench", "kirag", "--sections", "offline", "--index", str(tmp_path / "none")]
    argv += ["--bm25", str(enwiki_bm25), "--dev", str(dev), "--test", str(test)]
    assert main([*argv, "--output", str(output), "--workdir", str(tmp_path / "w")]) == 0
    offline = json.loads(output.read_text())["offline"]
    routes = offline["families"]["BM25 + entity routes, no chains"]
    assert routes["settings"] == 96 and set(routes["test"]) == {"R@3", "R@5", "R@10"}
    names = {s["setting"] for s in offline["all_settings_dev"]}
    assert f"bm25 + routes {RouteSettings().label()}" in names
    assert not (tmp_path / "offline.json.partial.json").exists()
