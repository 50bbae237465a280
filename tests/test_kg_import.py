"""`kirag index triples --import FILE`: the reference's cached KG corpus (a pickle of plain
dicts, the shape knowledge_graph/kg_generator.py saves) becomes a triple store and a triple
index; a pickle that names any global is refused and nothing in it runs."""

from __future__ import annotations

import json
import os
import pickle
from pathlib import Path

import pytest

from kirag.cli import main
from kirag.errors import InputError
from kirag.knowledge.kg_import import ImportedTripleExtractor, load_plain_pickle
from kirag.types import Document

CORPUS = [
    {
        "id": "0",
        "title": "Paris",
        "text": "Paris is the capital of France. It lies on the Seine.",
        "sentences": ["Paris is the capital of France.", " It lies on the Seine."],
    },
    {
        "id": "1",
        "title": "Seine",
        "text": "The Seine is a river. It flows into the English Channel.",
    },
    {"id": "2", "title": "Loire", "text": "The Loire is the longest river in France."},
]


def _entry(doc: dict, triples: list[tuple[str, int]]) -> dict:
    """One document of the reference's cache: the corpus record, its ranked demonstrations and
    its triples as `{"text": "<h; r; t>", "sentence": i}` (kg_generator.parse_generator_outputs)."""
    entry = {"id": doc["id"], "title": doc["title"]}
    if "sentences" in doc:
        entry["sentences"] = doc["sentences"]
    else:
        entry["text"] = doc["text"]
    entry["ranked_examplars_indices"] = [3, 0, 1, 2]
    entry["triples"] = [{"text": t, "sentence": s} for t, s in triples]
    return entry


def _kg_cache(path: Path, protocol: int = pickle.DEFAULT_PROTOCOL) -> Path:
    cache = {
        "0": _entry(
            CORPUS[0],
            [
                ("<Paris; capital of; France>", 0),
                ("<Paris; lies on; Seine>", 1),
                ("<Paris; capital of; France>", 0),  # a repeat: kept (one pool entry later)
                ("<Paris; France>", 0),  # two parts: kept as written, as the reference reads it
                ("Paris France", 0),  # no brackets: kept too, counted as unparsed
            ],
        ),
        "1": _entry(CORPUS[1], [("<Seine; flows into; English Channel>", 1)]),
        "9": _entry({"id": "9", "title": "Elsewhere", "text": "x"}, [("<a; b; c>", 0)]),
    }
    path.write_bytes(pickle.dumps(cache, protocol=protocol))
    return path


def _corpus(path: Path) -> Path:
    path.write_text("".join(json.dumps(d) + "\n" for d in CORPUS))
    return path


def _docs() -> list[Document]:
    return [
        Document(
            d["id"],
            d["text"],
            d["title"],
            {"sentences": d["sentences"]} if "sentences" in d else {},
        )
        for d in CORPUS
    ]


@pytest.mark.parametrize("protocol", [0, 2, pickle.HIGHEST_PROTOCOL])
def test_reference_cache_becomes_kirag_triples(tmp_path, protocol):
    extractor = ImportedTripleExtractor(_kg_cache(tmp_path / "kg.pkl", protocol))
    assert extractor.id.startswith("imported:") and len(extractor.id) == len("imported:") + 16
    paris, seine, loire = extractor.extract(_docs())
    assert [t.text for t in paris] == [
        "<Paris; capital of; France>",
        "<Paris; lies on; Seine>",
        "<Paris; capital of; France>",
        "<Paris; France>",
        "Paris France",
    ]  # the cache's triples as they are (issue 26, K)
    assert (paris[0].head, paris[0].relation, paris[0].tail) == ("Paris", "capital of", "France")
    assert paris[1].doc_id == "0" and paris[1].title == "Paris"
    assert paris[1].sentence_index == 1 and paris[1].sentence == "It lies on the Seine."
    assert paris[0].source == extractor.id
    assert seine[0].sentence == "" and seine[0].sentence_index == 1  # cache had no sentences
    assert loire == []  # not in the cache
    stats = extractor.stats
    assert (stats.documents_in_file, stats.documents_imported, stats.triples) == (3, 2, 6)
    assert stats.unparsed_triples == 1 and stats.duplicate_triples == 1
    assert stats.documents_not_in_corpus == 1  # document 9


def test_import_builds_the_triple_index(tmp_path, capsys):
    from kirag.knowledge.extraction import TripleStore
    from kirag.knowledge.triple_index import TripleIndex

    kg, corpus, index = (
        _kg_cache(tmp_path / "kg.pkl"),
        _corpus(tmp_path / "c.jsonl"),
        tmp_path / "ix",
    )
    argv = ["index", "triples", "--corpus", str(corpus), "--index", str(index), "--import", str(kg)]
    assert main([*argv, "--no-dense"]) == 0
    built = TripleIndex(index)
    extractor_id = ImportedTripleExtractor(kg).id
    assert built.manifest["extractor"] == extractor_id
    assert len(built) == 6 and built.manifest["counts"]["documents"] == 3
    texts = [t.text for t in built.triples(range(len(built)))]
    assert texts == [
        "<Paris; capital of; France>",
        "<Paris; lies on; Seine>",
        "<Paris; capital of; France>",
        "<Paris; France>",
        "Paris France",
        "<Seine; flows into; English Channel>",
    ]
    assert (
        built.search(["Which river flows into the English Channel?"], 1)[0][0].triple.head
        == "Seine"
    )
    store = TripleStore(tmp_path / ".extraction-cache.sqlite")
    assert [t.text for t in store.get("0", extractor_id)] == texts[:5]
    store.close()
    config = json.loads((index / "kirag-config.json").read_text())
    assert config["results"]["import"]["triples"] == 6
    assert config["results"]["import"]["unparsed_triples"] == 1
    # a second build takes every document from the extraction cache
    assert main([*argv, "--no-dense", "--overwrite"]) == 0
    config = json.loads((index / "kirag-config.json").read_text())
    assert config["results"]["cached"] == 3 and config["results"]["extracted"] == 0


class _System:
    """A hostile pickle: unpickling it calls os.system (the classic __reduce__ payload)."""

    def __init__(self, command: str):
        self.command = command

    def __reduce__(self):
        return (os.system, (self.command,))


class _Open:
    """A hostile pickle that creates a file through open() (pickled as io.open)."""

    def __init__(self, path: Path):
        self.path = path

    def __reduce__(self):
        return (open, (str(self.path), "w"))


@pytest.mark.parametrize("protocol", [0, pickle.HIGHEST_PROTOCOL])
def test_a_pickle_naming_a_global_is_refused_and_nothing_runs(tmp_path, capsys, protocol):
    marker = tmp_path / "pwned"
    payload = {"0": _entry(CORPUS[0], []), "1": _System(f"touch {marker}")}
    kg = tmp_path / "evil.pkl"
    kg.write_bytes(pickle.dumps(payload, protocol=protocol))
    index = tmp_path / "ix"
    argv = [
        "index",
        "triples",
        "--corpus",
        str(_corpus(tmp_path / "c.jsonl")),
        "--index",
        str(index),
    ]
    assert main([*argv, "--import", str(kg)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert f"{kg}: refused: the pickle names the global posix.system" in err
    assert not marker.exists() and not index.exists()
    # the same shape with open(): refused by the library too, and no file appears
    opened = tmp_path / "created-by-pickle"
    kg.write_bytes(pickle.dumps([_Open(opened)], protocol=protocol))
    with pytest.raises(InputError, match=r"names the global io\.open"):
        load_plain_pickle(kg)
    assert not opened.exists()
    # control: the payload is live — the standard unpickler does create the file
    pickle.loads(kg.read_bytes())[0].close()
    assert opened.exists()


def test_malformed_caches_are_one_line_errors(tmp_path, capsys):
    corpus = _corpus(tmp_path / "c.jsonl")
    argv = ["index", "triples", "--corpus", str(corpus), "--index", str(tmp_path / "ix")]
    cases = {
        b"not a pickle at all": "not a readable pickle",
        pickle.dumps([1, 2]): "expected a dict of documents",
        pickle.dumps(
            {"0": {"title": "Paris"}}
        ): "document '0': expected a dict with a 'triples' list",
        pickle.dumps({"0": {"triples": [{"text": 3}]}}): "a triple must be",
    }
    for number, (content, message) in enumerate(cases.items()):
        kg = tmp_path / f"kg{number}.pkl"
        kg.write_bytes(content)
        assert main([*argv, "--import", str(kg)]) == 2
        err = capsys.readouterr().err
        assert message in err and str(kg) in err and "Traceback" not in err
    assert main([*argv, "--import", str(tmp_path / "missing.pkl")]) == 2
    assert "no such file" in capsys.readouterr().err


def test_a_cache_of_another_corpus_is_refused(tmp_path):
    kg = tmp_path / "kg.pkl"
    kg.write_bytes(pickle.dumps({"0": _entry({"id": "0", "title": "Berlin", "text": "x"}, [])}))
    with pytest.raises(InputError, match="titled 'Berlin' but the corpus's 'Paris'"):
        ImportedTripleExtractor(kg).extract(_docs())
