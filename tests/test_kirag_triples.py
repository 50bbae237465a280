"""Triple parsing, sentence linking, the spaCy dependency extractor and the resumable store,
on the real Wikipedia passages."""

from __future__ import annotations

import pytest

from kirag.knowledge.extraction import TripleStore, content_hash, extract_corpus, make_extractor
from kirag.knowledge.sentences import SentenceSplitter, link_sentence
from kirag.knowledge.triples import (
    Triple,
    dedupe_triples,
    entity_key,
    normalize_entity,
    parse_triples,
)
from kirag.types import Document


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "<Mephisto (tank); type; World War I German tank>",
            [("Mephisto (tank)", "type", "World War I German tank")],
        ),
        (
            "noise <Aristotle; born in; Stagira; Chalkidice> more",
            [("Aristotle", "born in", "Stagira; Chalkidice")],
        ),
        ("<head entity; relation; tail entity>\n<a; b>", []),
        ("(Paris; capital of; France)", [("Paris", "capital of", "France")]),
        ("<Danube | flows into | Black Sea>", [("Danube", "flows into", "Black Sea")]),
        ("<X; is; Y>\n<x; is; y>", [("X", "is", "Y")]),
        ("", []),
        ("<<<>>> ;;; <;;> \x00\xff", []),
        ('<"The Wall"; released in; 1979.>', [("The Wall", "released in", "1979")]),
        (
            "<the Danube; flows into; Black Sea>\n<Danube; flows into; the Black Sea>",
            [("the Danube", "flows into", "Black Sea")],
        ),
    ],
)
def test_parse_triples_is_tolerant(text, expected):
    assert parse_triples(text) == expected


def test_parse_triples_never_raises_on_garbage():
    for garbage in [None, 42, "<" * 1000, "\n".join(["<a;b;c"] * 50), ">x; y; z<"]:
        assert isinstance(parse_triples(garbage), list)


def test_loose_mode_accepts_unbracketed_lines():
    assert parse_triples("Aristotle; teacher; Plato", loose=True) == [
        ("Aristotle", "teacher", "Plato")
    ]
    assert parse_triples("Aristotle; teacher; Plato") == []


def test_normalize_entity_and_dedupe():
    assert normalize_entity('  "The  Iliad".  ') == "The Iliad"
    assert entity_key("The  Iliad") == "iliad" and entity_key("The") == "the"
    a = Triple("Aristotle", "born in", "Stagira", doc_id="d")
    b = Triple("aristotle", "Born in", "the Stagira", doc_id="d")
    c = Triple("Aristotle", "born in", "Stagira", doc_id="other")
    assert dedupe_triples([a, b, c]) == [a, c]
    assert (
        a.text == "<Aristotle; born in; Stagira>" and a.sentence_text == "Aristotle born in Stagira"
    )
    assert Triple.from_dict(a.to_dict()) == a


def test_sentence_splitting_and_linking(enwiki_slice_docs):
    aristotle = next(d for d in enwiki_slice_docs if d.id == "Aristotle#0")
    sentences = SentenceSplitter("blank").split(aristotle.text)
    assert len(sentences) >= 5 and sentences[0].startswith("Aristotle")
    index = link_sentence("Aristotle joined Plato's Academy in Athens", sentences)
    assert "Plato's Academy" in sentences[index]
    assert link_sentence("zzz", ["a b", "c d"]) == 0 and link_sentence("x", []) == -1


@pytest.fixture(scope="module")
def spacy_extractor():
    return make_extractor("spacy")


def test_dependency_extractor_on_real_passages(spacy_extractor, enwiki_slice_docs):
    docs = [d for d in enwiki_slice_docs if d.id in ("Aristotle#0", "Apollo_8#2", "Alberta#0")]
    by_doc = dict(zip([d.id for d in docs], spacy_extractor.extract(docs), strict=True))
    aristotle = {t.text for t in by_doc["Aristotle#0"]}
    assert "<Aristotle; was; Greek philosopher>" in aristotle
    assert "<Aristotle; born in; city of Stagira, Chalkidice>" in aristotle
    assert "<Aristotle; joined; Plato's Academy>" in aristotle  # "he" falls back to the title
    apollo = {t.text for t in by_doc["Apollo_8#2"]}
    assert "<Apollo 8's successful mission; paved way for; Apollo 11>" in apollo
    assert any(t.head == "premier" and t.tail == "Rachel Notley" for t in by_doc["Alberta#0"])
    for triples in by_doc.values():
        for t in triples:
            assert t.doc_id in by_doc and t.sentence and t.sentence_index >= 0
            assert t.source == spacy_extractor.id


def test_unknown_extractor_lists_known_ones():
    from kirag.errors import KiragError

    with pytest.raises(KiragError, match="known: spacy, llm"):
        make_extractor("magic")


def test_store_resumes_after_a_crash_and_matches_an_uninterrupted_run(
    tmp_path, spacy_extractor, enwiki_slice_docs
):
    docs = enwiki_slice_docs[:40]
    full = TripleStore(tmp_path / "full.sqlite")
    stats = extract_corpus(docs, spacy_extractor, full, batch_size=8)
    assert (stats.extracted, stats.cached) == (40, 0) and stats.triples > 40

    class Crash(Exception):
        pass

    class CrashingExtractor:
        """The real extractor, killed after 3 batches (as a kill -9 would stop it)."""

        name, id = spacy_extractor.name, spacy_extractor.id

        def __init__(self):
            self.calls = 0

        def extract(self, batch):
            self.calls += 1
            if self.calls > 3:
                raise Crash
            return spacy_extractor.extract(batch)

    resumed = TripleStore(tmp_path / "resumed.sqlite")
    with pytest.raises(Crash):
        extract_corpus(docs, CrashingExtractor(), resumed, batch_size=8)
    assert len(resumed.dump()) == 24  # three committed batches, nothing half-written
    again = extract_corpus(docs, spacy_extractor, resumed, batch_size=8)
    assert (again.cached, again.extracted) == (24, 16)
    assert resumed.dump() == full.dump()


def test_store_redoes_changed_documents(tmp_path, spacy_extractor):
    store = TripleStore(tmp_path / "s.sqlite")
    doc = Document("d1", "Aristotle taught Alexander the Great.", "Aristotle")
    extract_corpus([doc], spacy_extractor, store)
    edited = Document("d1", "Plato taught Aristotle in Athens.", "Plato")
    assert store.done([edited], spacy_extractor.id) == set()
    stats = extract_corpus([edited], spacy_extractor, store)
    assert stats.extracted == 1
    assert {t.head for t in store.get("d1", spacy_extractor.id)} == {"Plato"}
    assert content_hash(doc) != content_hash(edited)
