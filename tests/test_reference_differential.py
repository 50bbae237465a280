"""KiRAG's reference mode against the reference's own code (jyfang6/kirag at 3098584d): every case
recorded by benchmarks/reference/kirag_differential.py (the reference run on our inputs, models
replaced by the shared fakes of kirag_reference_fakes.py) is replayed through kirag, which must
give the same strings byte for byte, the same scores within 1e-6 and the same rankings. Steps
A–K are those of issue 26. The reference is not needed here: its outputs are the test data."""

from __future__ import annotations

import gzip
import json
import pickle
import tempfile
from collections import Counter
from pathlib import Path

import pytest

from kirag.core.answers import token_f1
from kirag.types import Document

DATA = Path(__file__).parent / "data" / "kirag_reference_cases.json.gz"
RECORDED = json.loads(gzip.decompress(DATA.read_bytes()).decode("utf-8"))
CASES = RECORDED["cases"]
BY_KIND: dict[str, list[dict]] = {}
for _case in CASES:
    BY_KIND.setdefault(_case["kind"], []).append(_case)

pytest.importorskip("nltk")


def _ids(kind: str) -> list[str]:
    return [f"{kind}-{i}" for i in range(len(BY_KIND[kind]))]


def test_the_recording_covers_every_step_with_300_cases():
    letters = Counter(letter for c in CASES for letter in c["step"])
    assert len(CASES) >= 300
    assert set(letters) == set("ABCDEFGHIJK")
    assert RECORDED["reference"] == {"repository": "jyfang6/kirag", "commit": "3098584d"}


@pytest.fixture(scope="module")
def fakes():
    import kirag_reference_fakes

    return kirag_reference_fakes


@pytest.fixture(scope="module")
def pools(tmp_path_factory, fakes):
    """The recorded pools, converted by kirag's converter from a file in the reference's format."""
    from kirag.knowledge.demonstrations import convert_reference_file

    path = tmp_path_factory.mktemp("pools") / "test_demonstrations.py"
    path.write_text(
        f"reasoning_chains_test_examplars = {RECORDED['pools']['constructor']!r}\n"
        f"generate_knowledge_triples_test_examplars = {RECORDED['pools']['extraction']!r}\n"
    )
    converted = convert_reference_file(path, "test")
    out = tmp_path_factory.mktemp("pools") / "pools.json"
    out.write_text(json.dumps(converted.to_json()))
    return out, converted


# --- A: token F1 and the bonuses -----------------------------------------------------------


@pytest.mark.parametrize("case", BY_KIND["f1"], ids=_ids("f1"))
def test_token_f1(case):
    got = token_f1(case["input"]["prediction"], case["input"]["truth"])
    assert got == pytest.approx(case["expected"]["f1"], abs=1e-6)


@pytest.mark.parametrize("case", BY_KIND["bonus"], ids=_ids("bonus"))
def test_bonuses(case):
    from kirag.rag.reference import apply_bonuses

    pool = case["input"]["pool"]
    scores = {j: s for j, (_, s) in enumerate(pool)}
    texts = {j: t for j, (t, _) in enumerate(pool)}
    apply_bonuses(scores, texts, case["input"]["step"])
    assert [scores[j] for j in range(len(pool))] == pytest.approx(
        case["expected"]["scores"], abs=1e-6
    )


# --- A/B: constructor messages, prefilled prompt, next step ---------------------------------


@pytest.mark.parametrize("case", BY_KIND["constructor"], ids=_ids("constructor"))
def test_constructor_prompt_and_next_step(case, fakes, pools):
    from kirag.rag.reference import assistant_prefill, constructor_messages, next_step

    i, expected = case["input"], case["expected"]
    demos = [pools[1].chains("test")[k] for k in i["demonstrations"]]
    messages = constructor_messages(i["question"], i["candidates"], demos)
    assert messages[0]["content"] == expected["system"]
    assert messages[1]["content"] == expected["user"]
    engine = fakes.ScriptedEngine()
    prompt = engine.apply_chat_template(messages) + assistant_prefill(i["chain"])
    assert prompt == expected["prompt"]
    assert engine.tokenizer(prompt, add_special_tokens=False)["input_ids"] == expected["prompt_ids"]
    assert next_step(i["generated"]) == expected["step"]


# --- D: the constructor's demonstrations ----------------------------------------------------


@pytest.mark.parametrize("case", BY_KIND["chain_demonstrations"], ids=_ids("chain_demonstrations"))
def test_chain_demonstration_ranking(case, fakes, pools):
    from kirag.knowledge.demonstrations import ChainDemonstrationSelector, DemonstrationEncoder

    pool = pools[1].chains("test")
    selector = ChainDemonstrationSelector(pool, DemonstrationEncoder(fakes.HashSentenceModel()))
    chosen = selector.select(case["input"]["question"])
    assert [pool.index(d) for d in chosen] == case["expected"]["top"]


# --- E: the aligner's inputs per model family ------------------------------------------------


@pytest.mark.parametrize("case", BY_KIND["aligner_input"], ids=_ids("aligner_input"))
def test_aligner_inputs_per_family(case, fakes):
    from kirag.rag.aligner import AlignerSettings

    i = case["input"]
    s = AlignerSettings.for_family(i["family"])
    prefix, length = (
        (s.query_prefix, s.query_max_length)
        if i["side"] == "query"
        else (s.passage_prefix, s.passage_max_length)
    )
    ids = fakes.bert_tokenizer()(prefix + i["text"], max_length=length, truncation=True)
    assert ids["input_ids"] == case["expected"]["ids"]


def test_the_aligner_family_is_read_from_the_saved_model(tmp_path, fakes):
    from kirag.rag.aligner import Aligner, aligner_family

    folder = tmp_path / "my-trained-aligner"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps({"_name_or_path": "intfloat/e5-large-v2"}))
    assert aligner_family(str(folder)) == "e5"
    (folder / "config.json").write_text(json.dumps({"_name_or_path": "BAAI/bge-large-en-v1.5"}))
    assert aligner_family(str(folder)) == "bge"
    assert aligner_family(str(tmp_path / "plain")) == "none"
    assert aligner_family(str(tmp_path / "plain"), tokenizer="intfloat/e5-base-v2") == "e5"
    aligner = Aligner(fakes.HashSentenceModel(), family="bge")  # a model object, family given
    assert aligner.config()["query_prefix"].startswith("Represent this sentence")
    assert aligner.config()["family"] == "bge"


@pytest.mark.parametrize("case", BY_KIND["aligner_top"], ids=_ids("aligner_top"))
def test_aligner_top_candidates(case, fakes):
    from kirag.rag.aligner import Aligner, aligner_query
    from kirag.rag.reference import top_candidates

    i = case["input"]
    aligner = Aligner(fakes.HashSentenceModel(), family="e5")
    query = aligner.encode_queries([aligner_query(i["question"], i["chain"])])[0]
    scores = aligner.encode_passages(i["candidates"]) @ query
    top = top_candidates(scores, 20)
    assert top == case["expected"]["indices"]
    assert [float(scores[t]) for t in top] == pytest.approx(case["expected"]["scores"], abs=1e-6)


# --- C: whole scripted loops ----------------------------------------------------------------


def _document(entry: dict) -> Document:
    from kirag.eval.open_domain import paragraph_text

    if "sentences" in entry:
        return Document(
            entry["id"], paragraph_text(entry["sentences"]), entry.get("title"),
            {"sentences": entry["sentences"]},
        )  # fmt: skip
    return Document(entry["id"], entry["text"], entry.get("title"))


@pytest.fixture(scope="module")
def loop_index(tmp_path_factory):
    """One real triple index holding every loop case's documents and triples, as written."""
    from kirag.retrieval.dense import Encoder

    from kirag.knowledge.triple_index import TripleIndex, build_triple_index
    from kirag.knowledge.triples import raw_triple

    documents, by_doc = [], []
    for case in BY_KIND["loop"]:
        for entry in case["input"]["documents"]:
            document = _document(entry)
            documents.append(document)
            by_doc.append(
                (document, [raw_triple(t["text"], document, t["sentence"], "", "recorded")
                            for t in entry["triples"]])
            )  # fmt: skip
    path = tmp_path_factory.mktemp("loops") / "index"
    build_triple_index(
        documents, by_doc, path, Encoder("minilm", device="cpu"), "recorded",
        with_bm25=False, with_dense=False,
    )  # fmt: skip
    return TripleIndex(path)


@pytest.mark.parametrize("case", BY_KIND["loop"], ids=_ids("loop"))
def test_scripted_loop(case, fakes, pools, loop_index):
    from kirag.knowledge.demonstrations import ChainDemonstrationSelector, DemonstrationEncoder
    from kirag.rag.aligner import Aligner
    from kirag.rag.reference import ReferenceRetriever

    i, expected = case["input"], case["expected"]
    engine = fakes.ScriptedEngine(i["generated"])
    ranker = DemonstrationEncoder(fakes.HashSentenceModel())
    retriever = ReferenceRetriever(
        loop_index,
        engine,
        Aligner(fakes.HashSentenceModel(), family="e5"),
        ChainDemonstrationSelector(pools[1].chains("test"), ranker),
        doc_retriever=fakes.FixedDocRetriever({q: [tuple(h) for h in hs] for q, hs in i["hits"].items()}),
    )  # fmt: skip
    result = retriever.retrieve(i["question"], k=100)
    assert engine.prompts == expected["prompts"]
    assert result.chains[0].steps == expected["chain"]
    assert len(result.pool_scores) == len(expected["pool_after_turn"])
    for got, want in zip(result.pool_scores, expected["pool_after_turn"], strict=True):
        assert [(p["doc_id"], p["sentence"], p["text"]) for p in got] == [
            tuple(w[:3]) for w in want
        ]
        assert [p["score"] for p in got] == pytest.approx([w[3] for w in want], abs=1e-6)
    assert [h.doc_id for h in result.hits] == [d for d, _ in expected["documents"]]
    assert [h.score for h in result.hits] == pytest.approx(
        [s for _, s in expected["documents"]], abs=1e-6
    )


# --- F: the reader ----------------------------------------------------------------------------


@pytest.mark.parametrize("case", BY_KIND["reader"], ids=_ids("reader"))
def test_reader(case, fakes):
    from kirag.rag.reader import ReferenceReader

    i = case["input"]
    engine = fakes.ScriptedEngine([i["generated"]])
    documents = [_document({"id": f"c{j}", **ctx}) for j, ctx in enumerate(i["ctxs"])]
    (answer,) = ReferenceReader(engine).answer([i["question"]], [documents])
    assert engine.prompts == [case["expected"]["prompt"]]
    assert answer == case["expected"]["answer"]


# --- G/I/J/H: extraction --------------------------------------------------------------------


def _extractor(fakes, pools, outputs=(), **options):
    """The reference extractor over the recorded pools, with the reference's settings but
    `options` (ReferenceExtractorSettings' fields, or `settings=`)."""
    from kirag.knowledge.demonstrations import DemonstrationEncoder
    from kirag.knowledge.reference_extractor import ReferenceTripleExtractor

    return ReferenceTripleExtractor(
        engine=fakes.ScriptedEngine(outputs),
        demonstrations=str(pools[0]),
        dataset="test",
        encoder=DemonstrationEncoder(fakes.HashSentenceModel()),
        **options,
    )


def test_the_extractor_takes_its_settings_or_their_fields(fakes, pools):
    """The reference extractor's numbers are ReferenceExtractorSettings' (the reference's): given
    as settings or field by field, the same extractor and cache id; checked before any engine
    loads."""
    from kirag.errors import SettingsError
    from kirag.knowledge.reference_extractor import (
        ReferenceExtractorSettings,
        ReferenceTripleExtractor,
    )

    by_field = _extractor(fakes, pools, context=2048)
    given = _extractor(fakes, pools, settings=ReferenceExtractorSettings(context=2048))
    assert given.settings == by_field.settings and given.id == by_field.id
    assert by_field.settings.encoder == "HashSentenceModel"  # the loaded ranker, as the id names it
    assert by_field.id.endswith(":k5:HashSentenceModel:max512:ctx2048:raw")
    with pytest.raises(SettingsError, match=r"^num_demonstrations must be an integer >= 0"):
        ReferenceTripleExtractor(num_demonstrations=-1)


@pytest.mark.parametrize("case", BY_KIND["extraction"], ids=_ids("extraction"))
def test_extraction_prompt_and_triples(case, fakes, pools):
    i, expected = case["input"], case["expected"]
    extractor = _extractor(fakes, pools, [i["generated"]])
    document = _document(i["document"])
    pool = pools[1].documents("test")
    (ranked,) = extractor.selector.select_many([f"Title: {document.title}\nText: {document.text}"])
    assert [pool.index(d) for d in ranked] == expected["ranked"]
    (triples,) = extractor.extract([document])
    assert extractor.engine.prompts == [expected["prompt"]]
    assert [[t.text, t.sentence_index] for t in triples] == expected["triples"]


@pytest.mark.parametrize("case", BY_KIND["extraction_fit"], ids=_ids("extraction_fit"))
def test_extraction_demonstrations_fit_the_context(case, fakes, pools):
    i, expected = case["input"], case["expected"]
    extractor = _extractor(fakes, pools, context=i["context"])
    document = _document(i["document"])
    (demos,) = extractor.demonstrations_for([document])
    system, user = (m["content"] for m in extractor.messages(document, demos))
    assert (system, user) == (expected["system"], expected["user"])


@pytest.mark.parametrize("case", BY_KIND["extraction_parse"], ids=_ids("extraction_parse"))
def test_extraction_parser_and_sentence_links(case):
    from kirag.knowledge.reference_extractor import reference_triples

    triples = reference_triples(
        _document(case["input"]["document"]), case["input"]["generated"], "t"
    )
    assert [[t.text, t.sentence_index] for t in triples] == case["expected"]["triples"]


# --- K: the authors' cached KG ----------------------------------------------------------------


@pytest.mark.parametrize("case", BY_KIND["kg_import"], ids=_ids("kg_import"))
def test_kg_import_as_is(case):
    from kirag.knowledge.kg_import import ImportedTripleExtractor

    entry = case["input"]["entry"]
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "kg.pkl"
        path.write_bytes(pickle.dumps({entry["id"]: entry}))
        extractor = ImportedTripleExtractor(path)
    document = Document(entry["id"], " ".join(entry["sentences"]), entry["title"])
    (triples,) = extractor.extract([document])
    assert [[t.text, [t.doc_id, t.sentence_index]] for t in triples] == case["expected"][
        "candidates"
    ]


# --- batched turns: many questions in lockstep, one engine call per turn ---------------------


def test_batched_turns_give_each_question_its_own_chain(fakes, pools, loop_index):
    from kirag.knowledge.demonstrations import ChainDemonstrationSelector, DemonstrationEncoder
    from kirag.rag.aligner import Aligner
    from kirag.rag.reference import ReferenceRetriever

    hits = {
        q: [tuple(h) for h in hs] for c in BY_KIND["loop"] for q, hs in c["input"]["hits"].items()
    }
    questions = [c["input"]["question"] for c in BY_KIND["loop"]]
    for c in BY_KIND["loop"]:  # documents for every query a chain may make: its own case's
        first = c["input"]["hits"][c["input"]["question"]]
        for step_query in (f"{c['input']['question']} {g}" for g in GENERATED_STEPS):
            hits.setdefault(step_query, [tuple(h) for h in first])

    def retriever():
        engine = fakes.PromptKeyedEngine(GENERATIONS_FOR_BATCH)
        ranker = DemonstrationEncoder(fakes.HashSentenceModel())
        return engine, ReferenceRetriever(
            loop_index, engine, Aligner(fakes.HashSentenceModel(), family="e5"),
            ChainDemonstrationSelector(pools[1].chains("test"), ranker),
            doc_retriever=fakes.FixedDocRetriever(hits),
        )  # fmt: skip

    one_engine, one = retriever()
    alone = [one.retrieve(q, k=20) for q in questions]
    many_engine, many = retriever()
    batched = many.retrieve_many(questions, k=20)
    assert set(one_engine.batches) == {1}
    assert many_engine.batches[0] == len(questions) and len(many_engine.batches) <= 5
    assert sorted(one_engine.prompts) == sorted(many_engine.prompts)
    for a, b in zip(alone, batched, strict=True):
        assert [c.steps for c in a.chains] == [c.steps for c in b.chains]
        assert [(h.doc_id, h.score) for h in a.hits] == [(h.doc_id, h.score) for h in b.hits]
        assert a.pool_scores == b.pool_scores and a.llm_calls == b.llm_calls
    assert len({tuple(r.chains[0].steps) for r in batched}) > 1  # the chains do differ


GENERATIONS_FOR_BATCH = [
    "<Lyon; located in; France>",
    "<So the answer is: France>",
    "The city is known for e.g. silk weaving. It is in France.",
    "",
    "<Ada Lovelace; born in; London>",
]
GENERATED_STEPS = [
    "<Lyon; located in; France>",
    "<So the answer is: France>",
    "The city is known for e.g.",
    "",
    "<Ada Lovelace; born in; London>",
]
