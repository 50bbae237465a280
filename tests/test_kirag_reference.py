"""KiRAG's reference mode, row by row of issue 17's table: the constructor's messages and prefill
as the real SmolLM2 chat template renders them, the next-step rule, the bonuses, the document
scores, the aligner's strings/prefixes/lengths, the reader's prompt, the demonstration pools."""

from __future__ import annotations

import json

import numpy as np
import pytest

from kirag.errors import KiragError
from kirag.knowledge.demonstrations import (
    ChainDemonstration,
    ChainDemonstrationSelector,
    ExtractionDemonstrationSelector,
    convert_reference_file,
    load_pools,
    rank_by_similarity,
)
from kirag.rag.aligner import Aligner, AlignerSettings, aligner_query
from kirag.rag.reader import (
    ReferenceReader,
    build_reference_reader_messages,
    parse_reference_answer,
)
from kirag.rag.reference import (
    CONSTRUCTOR_INSTRUCTION,
    ReferenceSettings,
    apply_bonuses,
    assistant_prefill,
    constructor_messages,
    document_scores,
    next_step,
    stated_answer,
)
from kirag.types import Document

DEMOS = [
    ChainDemonstration("Q1?", ("<a; r; b>", "<b; s; c>"), "c"),
    ChainDemonstration("Q2?", ("<x; r; y>",), "y"),
]


def test_settings_default_to_the_reference_numbers():
    s = ReferenceSettings()
    assert (s.max_turns, s.topk, s.num_candidates, s.max_choices) == (5, 10, 20, 100)
    assert (s.max_new_tokens, s.num_demonstrations, s.beam_size) == (64, 5, 1)
    assert (s.bonus, s.match_f1) == (0.5, 0.6)


def test_constructor_messages_are_the_reference_text():
    messages = constructor_messages("Who?", ["<a; r; b>", "<c; s; d>"], DEMOS)
    assert messages == [
        {
            "role": "system",
            "content": CONSTRUCTOR_INSTRUCTION
            + "\n\nExamples:\n\n"
            + "Question: Q1?\nThought: <a; r; b>. <b; s; c>. So the answer is: c\n\n"
            + "Question: Q2?\nThought: <x; r; y>. So the answer is: y",
        },
        {"role": "user", "content": "<a; r; b>\n<c; s; d>\n\nQuestion: Who?"},
    ]
    assert CONSTRUCTOR_INSTRUCTION == (
        "Follow the examples to answer the input question by reasoning step-by-step. "
        "Output both reasoning steps and the answer."
    )
    # no demonstrations: the bare instruction; no candidates: the question alone (stripped)
    assert constructor_messages("Who?", [], [])[0]["content"] == CONSTRUCTOR_INSTRUCTION
    assert constructor_messages("Who?", [], [])[1]["content"] == "Question: Who?"


def test_the_prefill_follows_the_engines_chat_template(llamacpp_engine):
    """What the engine receives: its own template's rendering of system + user, then the
    assistant turn opened and prefilled with "Thought: " and the chain so far."""
    messages = constructor_messages("Who?", ["<a; r; b>"], DEMOS[:1])
    prompt = llamacpp_engine.apply_chat_template(messages) + assistant_prefill(["<a; r; b>", ""])
    assert prompt == (
        "<|im_start|>system\n" + messages[0]["content"] + "<|im_end|>\n"
        "<|im_start|>user\n<a; r; b>\n\nQuestion: Who?<|im_end|>\n"
        "<|im_start|>assistant\nThought: <a; r; b>. "
    )
    assert assistant_prefill([]) == "Thought: "


def test_next_step_is_the_first_triple_else_the_first_sentence():
    assert next_step(" , <A; born in; B> then <B; in; C>") == "<A; born in; B>"
    assert next_step("<head entity; relation; tail entity> <X ; y; z >") == "<X ; y; z>"
    assert next_step(". So the answer is: Paris. More text.") == "So the answer is: Paris."
    assert next_step("  ") == "" and next_step("") == ""
    assert stated_answer(["<a; b; c>", "So the answer is: Paris."]) == "Paris"


def test_bonus_rules():
    texts = {
        1: "<Paris; capital of; France>",
        2: "<Lyon; city in; France>",
        3: "<Paris; river; Seine>",
    }
    scores = {1: 0.2, 2: 0.9, 3: 0.5}
    # a generated triple with token F1 >= 0.6 rewards the best-matching pool triple
    assert apply_bonuses(scores, texts, "<Paris; capital of; France>") == [1]
    assert scores == {1: 0.7, 2: 0.9, 3: 0.5}
    # F1 below 0.6: nothing
    assert apply_bonuses(scores, texts, "<Berlin; capital of; Germany>") == []
    # "answer is: X" rewards the first triple, best first, whose text contains X
    assert apply_bonuses(scores, texts, "So the answer is: Paris") == [1]
    assert scores[1] == pytest.approx(1.2) and scores[3] == 0.5
    # yes/no answers and empty steps are ignored
    assert apply_bonuses(scores, texts, "So the answer is: yes") == []
    assert apply_bonuses(scores, texts, "") == []
    # custom numbers
    scores = {1: 0.0, 2: 0.0, 3: 0.0}
    assert apply_bonuses(scores, texts, "<Lyon; city in; France>", bonus=1.0, match_f1=0.99) == [2]
    assert scores[2] == 1.0


def test_documents_are_scored_by_their_best_triple():
    scores = {1: 0.3, 2: 0.8, 3: 0.5, 4: 0.1}
    doc_of = {1: "A", 2: "B", 3: "A", 4: "C"}
    assert document_scores(scores, doc_of) == [("B", 0.8), ("A", 0.5), ("C", 0.1)]


def test_aligner_strings_prefixes_and_lengths(minilm):
    assert aligner_query("Q?", []) == "Q?\nknowledge triples: ."
    assert aligner_query("Q?", ["<a; b; c>", "<c; d; e>"]) == (
        "Q?\nknowledge triples: <a; b; c>. <c; d; e>."
    )
    assert AlignerSettings.for_model("intfloat/e5-large-v2") == AlignerSettings(
        "query: ", "passage: ", 256, 128
    )
    assert AlignerSettings.for_model("minilm") == AlignerSettings()
    e5like = Aligner("minilm", AlignerSettings("query: ", "passage: ", 256, 6))
    plain = minilm.encode(["query: who", "passage: a b"], normalize_embeddings=True)
    assert np.allclose(e5like.encode_queries(["who"])[0], plain[0], atol=1e-5)
    assert np.allclose(e5like.encode_passages(["a b"])[0], plain[1], atol=1e-5)  # 6 tokens fit
    # 6 tokens for passages: texts that differ only after them encode the same; queries do not
    a = "passage text that is long enough to be cut here"
    b = "passage text that is long enough to be cut somewhere else entirely"
    assert np.allclose(*e5like.encode_passages([a, b]), atol=1e-6)
    assert not np.allclose(*e5like.encode_queries([a, b]), atol=1e-3)


def test_a_trained_aligner_folder_without_tokenizer_loads_with_a_named_base(minilm, tmp_path):
    transformer = minilm[0].auto_model
    transformer.save_pretrained(tmp_path / "aligner")  # weights + config, no tokenizer
    assert not list((tmp_path / "aligner").glob("tokenizer*"))
    aligner = Aligner(str(tmp_path / "aligner"), tokenizer="minilm")
    expected = minilm.encode(["Who taught Alexander?"], normalize_embeddings=True)[0]
    assert float(aligner.encode_queries(["Who taught Alexander?"])[0] @ expected) > 0.9999
    with pytest.raises(KiragError, match="a folder is needed"):
        Aligner("minilm", tokenizer="minilm")


def test_reference_reader_prompt(llamacpp_engine):
    docs = [Document("d1", "Paris is the capital.", "Paris"), Document("d2", "No title.", None)]
    messages = build_reference_reader_messages("What is the capital?", docs)
    assert messages == [
        {
            "role": "system",
            "content": "Given some context and a question, please only output the answer to the question.",
        },
        {
            "role": "user",
            "content": "context:\n\n1. title: Paris, text: Paris is the capital.\n\n2. No title.\n\n"
            "question: What is the capital?\nThe answer is:",
        },
    ]
    assert parse_reference_answer("\n  Paris \nmore") == "Paris"
    assert parse_reference_answer("So the answer is: Paris") == "Paris"
    reader = ReferenceReader(llamacpp_engine)
    assert reader.max_tokens == 32
    answers = reader.answer(["What is the capital?"], [docs], chains=["<ignored; chain; x>"])
    assert reader.calls == 1 and len(answers) == 1 and "\n" not in answers[0]


def test_shipped_pool_and_selection(minilm):
    pools = load_pools()
    chains, docs = pools.chains("wikipedia"), pools.documents("wikipedia")
    assert len(chains) >= 5 and len(docs) >= 5
    aligner = Aligner("minilm")
    chosen = ChainDemonstrationSelector(chains, aligner, k=5).select(
        "When was the director of Stalker born?"
    )
    assert len(chosen) == 5 and "Andrei Rublev" in chosen[0].question
    picked = ExtractionDemonstrationSelector(docs, aligner, k=2).select_many(
        ["Title: Neil Armstrong\nText: Neil Armstrong was an American astronaut."]
    )
    assert len(picked[0]) == 2 and picked[0][0].title == "Apollo 11"
    assert rank_by_similarity(
        np.array([1.0, 0.0]), np.array([[0.1, 0], [0.9, 0], [0.1, 0]]), 2
    ) == [1, 0]
    with pytest.raises(KiragError, match="no constructor demonstrations for dataset 'musique'"):
        pools.chains("musique")


def test_user_pool_file_and_its_errors(tmp_path):
    good = tmp_path / "pool.json"
    good.write_text(json.dumps(load_pools().to_json()))
    assert load_pools(good).chains("wikipedia") == load_pools().chains("wikipedia")
    bad = tmp_path / "bad.json"
    bad.write_text(
        '{"format": "kirag-demonstrations/1",\n "constructor": {"hotpotqa": [{"question": "q"}]}}'
    )
    with pytest.raises(KiragError, match=r"bad.json: constructor.hotpotqa\[0\]"):
        load_pools(bad)
    broken = tmp_path / "broken.json"
    broken.write_text('{"format":\n')
    with pytest.raises(KiragError, match=r"broken.json:2: not valid JSON"):
        load_pools(broken)


def test_reference_demonstration_files_convert_without_executing(tmp_path):
    marker = tmp_path / "executed"
    source = tmp_path / "hotpotqa_demonstrations.py"
    source.write_text(
        f"open({str(marker)!r}, 'w').write('x')\n\n"
        "triple_selection_hotpotqa_examplars = [[{'question': 'q', 'triples': []}]]\n\n"
        "reasoning_chains_hotpotqa_examplars = [\n"
        "    {\n"
        '        "question": "Where was the author of Dune born?",\n'
        '        "chains": "<Dune; author; Frank Herbert>, <Frank Herbert; born in; Tacoma, Washington>",\n'
        '        "answer": "Tacoma",\n'
        "    },\n"
        "]\n\n"
        "generate_knowledge_triples_hotpotqa_examplars = [\n"
        '    {"title": "Dune", "text": "Dune is a novel by Frank Herbert.",\n'
        '     "triples": "<Dune; type; novel>\\n<Dune; author; Frank Herbert>"},\n'
        "]\n"
    )
    pools = convert_reference_file(source, "hotpotqa")
    assert not marker.exists()
    (demo,) = pools.chains("hotpotqa")
    # split on every comma, as the reference writes its demonstrations
    assert demo.chain == (
        "<Dune; author; Frank Herbert>",
        "<Frank Herbert; born in; Tacoma",
        "Washington>",
    )
    assert demo.text() == (
        "Question: Where was the author of Dune born?\nThought: <Dune; author; Frank Herbert>. "
        "<Frank Herbert; born in; Tacoma. Washington>. So the answer is: Tacoma"
    )
    (doc,) = pools.documents("hotpotqa")
    assert doc.triples == ("<Dune; type; novel>", "<Dune; author; Frank Herbert>")
    assert doc.document() == "Title: Dune\nText: Dune is a novel by Frank Herbert."
    nonliteral = tmp_path / "x_demonstrations.py"
    nonliteral.write_text("import os\nreasoning_chains_x_examplars = os.listdir('.')\n")
    with pytest.raises(
        KiragError, match=r"x_demonstrations.py:2: reasoning_chains_x_examplars is not a literal"
    ):
        convert_reference_file(nonliteral, "x")


def test_stop_rule():
    from kirag.rag.reference import should_stop

    assert not should_stop([[]], 1)
    assert should_stop([["<a; b; c>", ""]], 3)
    assert not should_stop([["<a; b; c>"]], 2)
    assert not should_stop([["", "So the answer is: x"]], 3)


def test_reference_extraction_messages():
    from kirag.knowledge.demonstrations import (
        EXTRACTION_INSTRUCTION,
        ExtractionDemonstration,
        extraction_messages,
    )

    demo = ExtractionDemonstration(
        "Dune", "Dune is a novel.", ("<Dune; type; novel>", "<Dune; genre; science fiction>")
    )
    assert extraction_messages("Emma", "Emma is a novel.", [demo, demo]) == [
        {
            "role": "system",
            "content": EXTRACTION_INSTRUCTION
            + "\n\nTitle: Dune\nText: Dune is a novel.\nKnowledge Triples: <Dune; type; novel>\n<Dune; genre; science fiction>"
            + "\n\nTitle: Dune\nText: Dune is a novel.\nKnowledge Triples: <Dune; type; novel>\n<Dune; genre; science fiction>",
        },
        {"role": "user", "content": "Title: Emma\nText: Emma is a novel."},
    ]
    assert EXTRACTION_INSTRUCTION.startswith("You are a knowledge graph constructor")


def test_converter_command_writes_a_pool_kirag_reads(tmp_path, capsys):
    from kirag.knowledge.demonstrations import main

    source = tmp_path / "musique_demonstrations.py"
    source.write_text(
        "reasoning_chains_musique_examplars = [\n"
        "    {'question': 'q?', 'chains': '<a; b; c>, <c; d; e>', 'answer': 'e'},\n"
        "]\n"
    )
    out = tmp_path / "pool.json"
    assert main([str(source), "musique", str(out)]) == 0
    assert "1 constructor and 0 extraction" in capsys.readouterr().out
    (demo,) = load_pools(out).chains("musique")
    assert demo.chain == ("<a; b; c>", "<c; d; e>") and demo.answer == "e"
    assert main([str(tmp_path / "missing.py"), "x", str(out)]) == 2
    assert "missing.py: cannot read" in capsys.readouterr().err


def test_reference_extractor_chooses_demonstrations_per_document_and_parses_brackets_only(
    llamacpp_engine, enwiki_slice_docs
):
    """`--extractor reference`: the engine receives its chat template over the reference's
    messages with the 5 demonstrations most similar to each document; the output is parsed with
    `<([^>]*)>` only (a bare "a; b; c" line is not a triple, unlike kirag's own `llm` prompt)."""
    from kirag.knowledge.demonstrations import (
        DemonstrationEncoder,
        ExtractionDemonstrationSelector,
        load_pools,
    )
    from kirag.knowledge.reference_extractor import (
        ReferenceTripleExtractor,
        document_text,
        reference_triples,
    )

    extractor = ReferenceTripleExtractor(engine=llamacpp_engine, max_tokens=24, batch_size=2)
    documents = enwiki_slice_docs[:2]
    pool = load_pools().documents("wikipedia")
    expected = ExtractionDemonstrationSelector(pool, DemonstrationEncoder("minilm"), 5).select_many(
        [document_text(d) for d in documents]
    )
    prompts = extractor._prompts(documents)
    for document, demonstrations, prompt in zip(documents, expected, prompts, strict=True):
        assert len(demonstrations) == min(5, len(pool))
        assert prompt == llamacpp_engine.apply_chat_template(
            extractor.messages(document, demonstrations)
        )
    assert extractor.id.startswith("reference:llamacpp:") and ":wikipedia:" in extractor.id
    parsed = reference_triples(
        documents[0], "<Emma; written by; Jane Austen>\nEmma; genre; novel", extractor.id
    )
    assert [(t.head, t.relation, t.tail) for t in parsed] == [("Emma", "written by", "Jane Austen")]
    assert parsed[0].text == "<Emma; written by; Jane Austen>"  # kept as written
    results = extractor.extract(documents)  # the real model, end to end
    assert len(results) == 2 and all(t.source == extractor.id for r in results for t in r)
