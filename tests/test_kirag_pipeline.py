"""KiRAG end to end on real Wikipedia passages: the triple index (FAISS + SQLite + entity graph),
the iterative retriever in aligner and LLM-constructor modes, the reader, the pipeline, the
baselines, LLM extraction with resume, and the `index triples` / `answer` commands."""

from __future__ import annotations

import json

import pytest

from kirag.errors import IndexLoadError, KiragError
from kirag.knowledge.triple_index import TripleIndex, build_entity_graph
from kirag.knowledge.triples import Triple
from kirag.rag.chains import IterativeRetriever
from kirag.rag.constructor import ChainConstructor, parse_decision

# a bundled bridge question whose two passages are both in the 314-passage test slice
BRIDGE = "In what year did the country whose coast the Portuguese explorer Diogo Cão reached in 1484 achieve independence?"
GOLD = {"Economy_of_Angola#1", "Angola#1"}
# no first stage here: first hops are searched among all the index's triples, and documents are
# fused from the chains and the best triples (the retriever's defaults are the aligner mode's,
# which takes its first hops from a first stage)
ALL_TRIPLES = {"triple_search": True, "fusion_weights": (1.0, 1.0, 0.5)}


@pytest.fixture(scope="module")
def index_dir(slice_triple_index):
    """The session's triple index of the whole slice (built through the CLI, as `make demo` does)."""
    counts = json.loads((slice_triple_index / "manifest.json").read_text())["counts"]
    assert counts["documents"] == 314 and counts["triples"] > 1000
    return slice_triple_index


@pytest.fixture(scope="module")
def index(index_dir):
    return TripleIndex(index_dir)


def test_triple_index_files_and_lookups(index, index_dir):
    assert index.manifest["kind"] == "triples" and index.manifest["encoder"]["model"] == "minilm"
    assert {p.suffix for p in index_dir.iterdir() if p.is_file()} <= {
        ".json",
        ".sqlite",
        ".faiss",
    }  # no pickle
    hits = index.search(["Rachel Notley premier of Alberta"], k=5)[0]
    assert any("Rachel Notley" in h.triple.tail for h in hits)
    assert all(-1.0 <= h.score <= 1.0 for h in hits)
    alberta = index.positions_of_documents(["Alberta#0"])
    assert alberta and all(t.doc_id == "Alberta#0" for t in index.triples(alberta))
    around = index.neighbours(["Alberta"])
    assert around and all(
        "alberta" in (t.head.lower() + t.tail.lower()) for t in index.triples(sorted(around)[:20])
    )
    assert index.neighbours(["Alberta"], hops=2) >= around
    assert index.docstore.get("Alberta#0").title == "Alberta"


def test_entity_graph_links_triples_through_shared_entities():
    triples = [
        Triple("Aristotle", "taught", "Alexander the Great"),
        Triple("Alexander the Great", "king of", "Macedon"),
        Triple("X", "is", "x"),
    ]
    graph = build_entity_graph(triples)
    assert graph.has_edge("aristotle", "alexander the great") and graph["alexander the great"][
        "macedon"
    ]["triples"] == [1]
    assert "x" not in graph  # a self-loop is no edge


def test_missing_and_partial_indexes_are_refused(tmp_path, index_dir):
    with pytest.raises(IndexLoadError, match="not a complete kirag index"):
        TripleIndex(tmp_path)
    bm25 = index_dir / "bm25"
    with pytest.raises(IndexLoadError, match="a 'bm25' index, expected 'triples'"):
        TripleIndex(bm25)


def test_the_folder_stores_the_corpus_once_and_the_triple_vectors_once(index, index_dir, tmp_path):
    """Format 2: one docs.sqlite shared by the nested document indexes (through their manifests),
    the triple vectors only in FAISS; a format-1 folder is refused with how to rebuild it."""
    import shutil

    import numpy as np

    assert sorted(p.name for p in index_dir.rglob("docs.sqlite")) == ["docs.sqlite"]
    assert not list(index_dir.glob("*.npy"))  # the triple vectors live in triples.faiss only
    for name in ("bm25", "dense"):
        nested = json.loads((index_dir / name / "manifest.json").read_text())
        assert nested["docstore"] == "../docs.sqlite"
    documents = index.document_retrievers()
    assert set(documents) == {"bm25", "dense"}
    assert documents["bm25"].search("Alberta premier", k=3)[0].doc_id.startswith("Alberta")
    # scoring graph-expanded candidates reads the vectors FAISS stores: equal to re-encoding
    positions = index.positions_of_documents(["Alberta#0"])[:5]
    query = index.encoder.encode(["premier of Alberta"])[0]
    texts = [index.triples([p])[0] for p in positions]
    from kirag.knowledge.triple_index import triple_embedding_text

    fresh = index.encoder.encode([triple_embedding_text(t) for t in texts]) @ query
    np.testing.assert_allclose(index.score(query, positions), fresh, atol=1e-5)
    old = tmp_path / "old-format"
    shutil.copytree(index_dir, old)
    manifest = json.loads((old / "manifest.json").read_text())
    for version in (1, 2):  # 2: the graph as one node-link JSON, loaded whole
        (old / "manifest.json").write_text(json.dumps({**manifest, "format_version": version}))
        with pytest.raises(
            IndexLoadError,
            match=rf"format {version}, .*reads format 3.*kirag index triples .*--overwrite",
        ):
            TripleIndex(old)


def _networkx_neighbours(graph, entities, hops):
    """The format-2 lookup on the whole networkx graph (the reference for graph.sqlite)."""
    from kirag.knowledge.triples import entity_key

    frontier = {entity_key(e) for e in entities} & set(graph)
    seen, positions = set(frontier), set()
    for _ in range(hops):
        found = set()
        for node in frontier:
            for _, other, data in graph.edges(node, data=True):
                positions.update(data["triples"])
                found.add(other)
        frontier = found - seen
        seen |= frontier
    return positions


def test_graph_sqlite_neighbourhoods_equal_the_networkx_graph(index):
    """graph.sqlite answers what the whole in-memory networkx graph answered, loading only the
    neighbourhood; its subgraph is the networkx graph's, edge by edge."""
    triples = index.triples(range(len(index)))
    graph = build_entity_graph(triples)
    counts = index.manifest["counts"]
    assert (counts["entities"], counts["edges"]) == (
        graph.number_of_nodes(),
        graph.number_of_edges(),
    )
    nodes = sorted(graph, key=lambda n: (-graph.degree(n), n))
    probes = nodes[:20] + nodes[20::37]
    assert len(probes) > 40
    for node in probes:
        label = graph.nodes[node]["label"]
        for hops in (1, 2):
            assert index.neighbours([label], hops) == _networkx_neighbours(graph, [label], hops)
        sub = index.graph.subgraph([label])
        assert set(sub.nodes) == {node, *graph.neighbors(node)}
        for a, b, data in sub.edges(data=True):
            assert data["triples"] == graph[a][b]["triples"]
            assert sub.nodes[a]["label"] == graph.nodes[a]["label"]
    assert index.neighbours(["no such entity anywhere"]) == set()


class _CountingEncoder:
    """The real encoder, counting its passage batches and crashing on the `crash_at`-th."""

    def __init__(self, encoder, crash_at: int | None = None):
        self._encoder, self.crash_at, self.calls = encoder, crash_at, 0

    def __getattr__(self, name):
        return getattr(self._encoder, name)

    def encode_passages(self, texts, batch_size=None):
        self.calls += 1
        if self.calls == self.crash_at:
            raise RuntimeError("killed while encoding")
        return self._encoder.encode_passages(texts, batch_size)


def test_streaming_build_equals_one_encode_and_resumes(index, tmp_path):
    """The streamed build (triples to SQLite, texts to .npy shards, FAISS fed from memory maps)
    finds what encoding every triple text in one call into one Flat index finds (the previous
    build); a crash while encoding resumes with only the missing shards. On the index's first 90
    documents (~1,000 triples, 4 shards): the same code paths as the whole slice in a third of
    the time."""
    import itertools

    import faiss
    import numpy as np

    from kirag.knowledge.triple_index import build_triple_index, triple_embedding_text

    documents = list(index.docstore)[:90]
    every = index.triples(range(len(index)))
    triples = every[: sum(1 for t in every if t.doc_id in {d.id for d in documents})]
    assert {t.doc_id for t in triples} <= {d.id for d in documents}  # the first documents' own
    by_doc = {d: list(ts) for d, ts in itertools.groupby(triples, key=lambda t: t.doc_id)}
    pairs = [(doc, by_doc.get(doc.id, [])) for doc in documents]
    encoder = index.encoder
    vectors = encoder.encode([triple_embedding_text(t) for t in triples], batch_size=256)
    flat = faiss.IndexFlatIP(vectors.shape[1])
    flat.add(vectors)
    queries = ["Aristotle taught Alexander", "anarchism opposes the state", "Alabama state capital"]
    expected_scores, expected = flat.search(encoder.encode(queries), 10)

    out = tmp_path / "streamed"
    shards = -(-len(triples) // 300)
    assert shards >= 4
    crashing = _CountingEncoder(encoder, crash_at=3)
    with pytest.raises(RuntimeError, match="killed"):
        build_triple_index(documents, pairs, out, crashing, "spacy", shard_size=300, with_bm25=False, with_dense=False)  # fmt: skip
    assert not out.exists()
    work = list(tmp_path.glob(".streamed.encode-*"))
    assert len(work) == 1 and len(list(work[0].glob("shard_*.npy"))) == 2
    resumed = _CountingEncoder(encoder)
    build_triple_index(documents, pairs, out, resumed, "spacy", shard_size=300, with_bm25=False, with_dense=False)  # fmt: skip
    assert resumed.calls == shards - 2  # the two finished shards were kept
    assert not work[0].exists() and not list(out.rglob("*.npy"))  # vectors only in FAISS
    streamed = TripleIndex(out, encoder=encoder)
    hits = streamed.search(queries, 10)
    assert [[h.position for h in row] for row in hits] == expected.tolist()
    np.testing.assert_allclose([[h.score for h in row] for row in hits], expected_scores, atol=1e-5)
    # the same positions as in the whole index: Aristotle's triples among the first documents'
    whole = {p for p in index.neighbours(["Aristotle"]) if p < len(triples)}
    assert whole and streamed.neighbours(["Aristotle"]) == whole


def test_aligner_chains_bridge_two_articles(index):
    retriever = IterativeRetriever(index, **ALL_TRIPLES, max_turns=2, beam_size=2)
    result = retriever.retrieve(BRIDGE, k=5)
    assert result.llm_calls == 0 and len(result.chains) <= 2
    assert any(t.doc_id in GOLD for c in result.chains for t in c.triples)
    chain = result.best_chain
    assert 1 <= len(chain.triples) <= 2 and chain.finished
    assert {h.doc_id for h in result.hits[:5]} >= GOLD
    assert [h.rank for h in result.hits] == list(range(1, len(result.hits) + 1))
    assert result.trace and result.trace[0].turn == 1 and result.trace[0].candidates
    assert result.answer_candidate == chain.triples[-1].tail


def test_stopping_rules(index):
    one_turn = IterativeRetriever(index, **ALL_TRIPLES, max_turns=1, beam_size=1).retrieve(BRIDGE)
    assert len(one_turn.best_chain.triples) == 1 and {t.turn for t in one_turn.trace} == {1}
    nothing_good = IterativeRetriever(index, **ALL_TRIPLES, max_turns=3, min_score=2.0).retrieve(
        BRIDGE
    )  # no candidate clears it
    assert all(not c.triples for c in nothing_good.chains)
    with pytest.raises(ValueError):
        IterativeRetriever(index, **ALL_TRIPLES, max_turns=0)


def test_graph_expansion_widens_candidates(index):
    with_graph = IterativeRetriever(
        index, **ALL_TRIPLES, max_turns=2, beam_size=1, num_candidates=5, graph_expansion=True
    ).retrieve(BRIDGE)
    without = IterativeRetriever(
        index, **ALL_TRIPLES, max_turns=2, beam_size=1, num_candidates=5, graph_expansion=False
    ).retrieve(BRIDGE)
    second = [t for t in with_graph.trace if t.turn == 2]
    assert second and len(with_graph.trace[-1].candidates) >= len(without.trace[-1].candidates)


def test_constructor_decisions_parse_tolerantly():
    candidates = [
        Triple("Alberta", "premier", "Rachel Notley"),
        Triple("Alberta", "capital", "Edmonton"),
    ]
    assert (
        parse_decision(
            "Thought: ...\nNext triple: <Alberta; premier; Rachel Notley>", candidates
        ).pick
        == 0
    )
    assert parse_decision("Thought: ...\nNext triple: 2", candidates).pick == 1
    assert (
        parse_decision(
            "Thought: the capital.\nNext triple: <alberta; capital city; edmonton>", candidates
        ).pick
        == 1
    )
    done = parse_decision("Thought: enough.\nSo the answer is: Rachel Notley.", candidates)
    assert (done.pick, done.answer) == (None, "Rachel Notley")
    assert parse_decision("\x00 garbage <<<", candidates).pick is None
    assert parse_decision(None, candidates).answer is None
    assert parse_decision("Next triple: 9", candidates).pick is None


def test_llm_constructor_mode_runs_with_the_packaged_model(index, llamacpp_engine):
    constructor = ChainConstructor(llamacpp_engine, max_tokens=48, num_candidates=5)
    result = IterativeRetriever(
        index, constructor=constructor, **ALL_TRIPLES, max_turns=2, beam_size=1
    ).retrieve(BRIDGE, k=5)
    assert result.llm_calls >= 1 and result.trace[0].decision is not None
    assert result.hits


def test_pipeline_answers_and_baselines(index_dir, llamacpp_engine):
    from kirag.retrieval.factory import load_retriever

    from kirag.rag.baselines import RetrieveReadRetrieve, SingleShotRAG
    from kirag.rag.pipeline import KiRAG, KiRAGRetriever
    from kirag.rag.reader import Reader, clean_answer

    kirag = KiRAG(index_dir, max_turns=2)
    assert kirag.mode == "aligner"
    answer = kirag.answer(BRIDGE)
    from kirag.rag.answer_type import typed_answer

    assert answer.answered_by in ("chain-tail", "chain-typed")
    assert answer.answer == typed_answer(BRIDGE, answer.result.best_chain.triples)
    record = answer.to_dict()
    assert record["chains"] and record["documents"] and record["llm_calls"] == 0
    reader = Reader(llamacpp_engine, max_tokens=16)
    texts = reader.answer([BRIDGE], [[h.document for h in answer.hits[:3]]])
    assert isinstance(texts[0], str) and reader.calls == 1
    assert clean_answer("\nAnswer: Rachel Notley.\nmore") == "Rachel Notley"
    bm25 = load_retriever(index_dir / "bm25")
    single = SingleShotRAG(bm25, reader).run([BRIDGE], k=5)[0]
    assert len(single.hits) == 5 and single.llm_calls == 1
    iterative = RetrieveReadRetrieve(bm25, reader, rounds=2).run([BRIDGE], k=5)[0]
    assert (
        len(iterative.queries) == 2
        and iterative.llm_calls == 2
        and iterative.hits[0].document is not None
    )
    as_retriever = KiRAGRetriever(index_dir, max_turns=2)
    assert [h.doc_id for h in as_retriever.search(BRIDGE, 5)] == [
        h.doc_id for h in kirag.retrieve(BRIDGE, 5).hits
    ]
    with pytest.raises(KiragError, match="needs a constructor model"):
        KiRAG(index_dir, mode="llm")


def test_llm_extraction_resumes_to_the_same_store(
    tmp_path, exact_llamacpp_engine, enwiki_slice_docs
):
    from kirag.knowledge.extraction import TripleStore, extract_corpus
    from kirag.knowledge.llm_extractor import LLMTripleExtractor

    # no KV-prefix reuse: bit-identical results whatever ran before
    extractor = LLMTripleExtractor(engine=exact_llamacpp_engine, max_tokens=40, batch_size=2)
    docs = enwiki_slice_docs[:4]
    full = TripleStore(tmp_path / "full.sqlite")
    extract_corpus(docs, extractor, full, batch_size=2)
    rows = full.dump()
    assert len(rows) == 4
    assert any(json.loads(r[3]) for r in rows)  # the tiny model does write some triples
    for _, _, _, payload in rows:
        for triple in json.loads(payload):
            assert triple["head"] and triple["relation"] and triple["tail"] and triple["sentence"]

    class Killed(Exception):
        pass

    calls = {"n": 0}
    real = extractor.extract

    def dying(batch):
        calls["n"] += 1
        if calls["n"] == 2:
            raise Killed
        return real(batch)

    extractor.extract = dying
    resumed = TripleStore(tmp_path / "resumed.sqlite")
    with pytest.raises(Killed):
        extract_corpus(docs, extractor, resumed, batch_size=2)
    extractor.extract = real
    stats = extract_corpus(docs, extractor, resumed, batch_size=2)
    assert stats.cached == 2 and stats.extracted == 2
    assert resumed.dump() == rows


def test_index_and_answer_commands(tmp_path, index_dir, capsys):
    from kirag.cli import main

    assert main(["answer", "--index", str(index_dir), "--question", BRIDGE, "--turns", "2"]) == 0
    printed = capsys.readouterr().out
    assert "chain:" in printed and "A: " in printed
    questions = tmp_path / "q.jsonl"
    questions.write_text(
        json.dumps(
            {
                "id": "b1",
                "question": BRIDGE,
                "answers": ["Rachel Notley"],
                "supporting_ids": sorted(GOLD),
            }
        )
        + "\n"
    )
    answers, preds = tmp_path / "answers.jsonl", tmp_path / "preds.json"
    assert (
        main(
            [
                "-q",
                "answer",
                "--index",
                str(index_dir),
                "--questions",
                str(questions),
                "--answers",
                str(answers),
                "--output",
                str(preds),
                "--turns",
                "2",
            ]
        )
        == 0
    )
    record = json.loads(answers.read_text().splitlines()[0])
    assert record["id"] == "b1" and record["chains"] and record["supporting_doc_ids"]
    predictions = json.loads(preds.read_text())
    assert set(predictions) == {"answer", "sp"} and "b1" in predictions["answer"]
    config = json.loads((tmp_path / "preds.json.config.json").read_text())
    assert config["results"]["scores"]["support_R@5"] >= 0.5
    assert main(["submit", "validate", "hotpotqa", str(preds), "--questions", str(questions)]) == 0


def test_llm_extraction_cuts_documents_to_the_context(exact_llamacpp_engine, enwiki_slice_docs):
    from kirag.knowledge.llm_extractor import LLMTripleExtractor
    from kirag.types import Document

    engine = exact_llamacpp_engine
    extractor = LLMTripleExtractor(engine=engine, max_tokens=40)
    base = enwiki_slice_docs[0]
    words = engine.context_length  # at least one token per word: longer than the context
    long_doc = Document(base.id, " ".join([base.text] * (words // len(base.text.split()) + 1)), base.title)  # fmt: skip
    prompt = extractor.build_prompt(long_doc)
    assert extractor.truncated_documents == 1
    assert len(engine._prompt_ids(prompt)) + 40 <= engine.context_length
    extractor.build_prompt(base)
    assert extractor.truncated_documents == 1  # a document that fits is left whole
    with pytest.raises(ValueError, match="exceeds the context"):
        engine.generate([long_doc.text * 2], max_tokens=1)  # said clearly, not "no memory slot"


class RecordingEngine:
    """The real engine, with the prompts and token budgets it received kept for inspection."""

    def __init__(self, engine):
        self.engine = engine
        self.calls: list[tuple[list[str], int, object]] = []

    def __getattr__(self, name):
        return getattr(self.engine, name)

    def generate(self, prompts, max_tokens, stop=None):
        self.calls.append((list(prompts), max_tokens, stop))
        return self.engine.generate(prompts, max_tokens=max_tokens, stop=stop)


def test_reference_candidates_accumulate_over_turns(index):
    """Turn 1: dense top-10 for the question; turn 2: for question + last step; documents and
    the aligner's top-20 pool accumulate, each triple keeping its best score."""
    from kirag.rag.aligner import Aligner, aligner_query
    from kirag.rag.reference import ReferenceRetriever, ReferenceState

    aligner = Aligner("minilm")
    retriever = ReferenceRetriever(index, None, aligner, None)
    state = ReferenceState(chains=[[]])
    assert retriever.doc_queries(BRIDGE, state.chains, 1) == [BRIDGE]
    first = retriever.add_documents(state, [BRIDGE])
    documents = set(state.doc_scores)
    assert len(documents) == 10 and set(first) == set(index.positions_of_documents(documents))
    ranked = state.ranked_documents()  # candidates: documents best first, as the reference reads
    order = [ranked.index(t.doc_id) for t in index.triples(first)]
    assert order == sorted(order)
    retriever.align(state, BRIDGE, first)
    pool = dict(state.scores)
    assert len(pool) == 20 and {state.positions[key] for key in pool} <= set(first)
    step = "<Diogo Cão; reached; coast of Angola>"
    state.chains[0].append(step)
    queries = retriever.doc_queries(BRIDGE, state.chains, 2)
    assert queries == [f"{BRIDGE} {step}"]
    second = retriever.add_documents(state, queries)
    assert documents < set(state.doc_scores) and set(first) < set(second)
    retriever.align(state, BRIDGE, second)
    assert set(pool) <= set(state.scores) and 20 < len(state.scores) <= 40
    assert all(state.scores[key] >= pool[key] for key in pool)
    new = next(key for key in state.scores if key not in pool)
    query = aligner.encode_queries([aligner_query(BRIDGE, [step])])[0]
    passage = aligner.encode_passages([state.triples[new].text])[0]
    assert state.scores[new] == pytest.approx(float(passage @ query), abs=1e-5)


def test_reference_loop_sends_the_reference_prompt(index, llamacpp_engine):
    from kirag.knowledge.demonstrations import ChainDemonstrationSelector, load_pools
    from kirag.rag.aligner import Aligner
    from kirag.rag.reference import (
        ReferenceRetriever,
        ReferenceSettings,
        assistant_prefill,
        constructor_messages,
    )

    aligner = Aligner("minilm")
    selector = ChainDemonstrationSelector(load_pools().chains("wikipedia"), aligner)
    engine = RecordingEngine(llamacpp_engine)
    settings = ReferenceSettings(max_turns=2, max_choices=7)
    result = ReferenceRetriever(index, engine, aligner, selector, settings=settings).retrieve(
        BRIDGE, k=5
    )
    (chain,) = result.chains
    assert 1 <= len(engine.calls) <= 2 and len(chain.steps) == len(engine.calls)
    prompts, max_tokens, stop = engine.calls[0]
    assert max_tokens == 64 and stop is None and len(prompts) == 1
    system, user = prompts[0].split("<|im_start|>user\n")
    assert system.startswith("<|im_start|>system\nFollow the examples")
    lines, question = user.split("\n\nQuestion: ")
    assert question == f"{BRIDGE}<|im_end|>\n<|im_start|>assistant\nThought: "
    assert len(lines.split("\n")) == 7 and all(line.startswith("<") for line in lines.split("\n"))
    demos = selector.select(BRIDGE)
    messages = constructor_messages(BRIDGE, lines.split("\n"), demos)
    assert prompts[0] == llamacpp_engine.apply_chat_template(messages) + "Thought: "
    if len(engine.calls) == 2:  # turn 2 prefills the chain so far
        assert engine.calls[1][0][0].endswith(assistant_prefill(chain.steps[:1]))
    else:  # stopped: the first step was empty
        assert chain.steps == [""]
    scores = [h.score for h in result.hits]
    assert scores == sorted(scores, reverse=True) and len(result.hits) == 5
    # the pool after every turn is in the record (why a document ranked where it did)
    assert len(result.pool_scores) == len(engine.calls)
    best = result.pool_scores[-1][0]
    assert set(best) == {"text", "doc_id", "sentence", "score"}
    assert result.hits[0].doc_id == best["doc_id"] and result.hits[0].score == best["score"]


def test_reference_mode_from_the_command_line(index_dir, capsys):
    from kirag.cli import main

    question = ["--question", BRIDGE, "--turns", "1", "--engine", "llamacpp"]
    assert main(["answer", "--index", str(index_dir), "--mode", "reference", *question]) == 0
    printed = capsys.readouterr().out
    assert "chain:\n  1. " in printed and "[reader]" in printed and "documents:" in printed
    assert main(["answer", "--index", str(index_dir), "--mode", "reference", "--beam", "2", *question]) == 2  # fmt: skip
    assert "beam 1 only" in capsys.readouterr().err
    missing = index_dir.parent / "no-such-pool.json"
    assert main(["answer", "--index", str(index_dir), "--mode", "reference", "--demonstrations", str(missing), *question]) == 2  # fmt: skip
    assert "no-such-pool.json: cannot read demonstrations" in capsys.readouterr().err
    assert main(["answer", "--index", str(index_dir), "--mode", "reference", "--dataset", "musique", *question]) == 2  # fmt: skip
    assert "no constructor demonstrations for dataset 'musique'" in capsys.readouterr().err


def test_ivfpq_triple_index_searches_and_scores_reconstructed_vectors(index, tmp_path):
    """`--index-type ivfpq` for the triples: compressed vectors, found like Flat's, and the
    graph-expanded candidates scored from the vectors IVF-PQ reconstructs (its direct map)."""
    import itertools

    import numpy as np

    from kirag.knowledge.triple_index import build_triple_index

    triples = index.triples(range(len(index)))
    by_doc = {d: list(ts) for d, ts in itertools.groupby(triples, key=lambda t: t.doc_id)}
    documents = list(index.docstore)
    pairs = [(doc, by_doc.get(doc.id, [])) for doc in documents]
    out = tmp_path / "ivfpq"
    build_triple_index(documents, pairs, out, index.encoder, "spacy", "ivfpq", with_bm25=False, with_dense=False, faiss_options={"nlist": 8})  # fmt: skip
    compressed = TripleIndex(out, encoder=index.encoder)
    assert compressed.manifest["faiss"] == {"type": "ivfpq", "nlist": 8}
    assert type(compressed.faiss).__name__ == "IndexIVFPQ" and compressed.faiss.nlist == 8
    queries = ["premier of Alberta", "Aristotle taught Alexander", "independence of Angola"]
    exact = [{h.position for h in row} for row in index.search(queries, 10)]
    approx = [{h.position for h in row} for row in compressed.search(queries, 10)]
    assert np.mean([len(a & b) / 10 for a, b in zip(exact, approx, strict=True)]) >= 0.5
    query = index.encoder.encode(["premier of Alberta"])[0]
    positions = sorted(index.neighbours(["Alberta"]))[:20]
    np.testing.assert_allclose(
        compressed.score(query, positions), index.score(query, positions), atol=0.1
    )
