"""`kirag data prepare`: the open-domain setup of HotpotQA / 2WikiMultiHopQA / MuSiQue from
small synthetic files in each dataset's exact official format (HotpotQA's abstracts dump is a
real tar.bz2 of folders of bz2 JSON-lines files), read back with kirag's own readers."""

from __future__ import annotations

import bz2
import io
import json
import tarfile
from pathlib import Path

import numpy as np
import pytest
from kirag.eval.datasets import load_questions
from kirag.eval.open_domain import HOTPOT_ABSTRACTS, split_train_dev

from kirag.cli import main
from kirag.io.corpus import read_corpus
from kirag.io.json_array import iter_json_array
from kirag.io.qrels import read_qrels

# --- HotpotQA ---------------------------------------------------------------------------------

PAGES = {  # page id -> (title, sentences); ids deliberately out of order across dump files
    "AA/wiki_00": [(303, "Paris", ["Paris is the capital of France.", " It is on the Seine."])],
    "AA/wiki_01": [
        (12, "Anarchism", ["Anarchism is a political philosophy."]),
        (4001, "Seine", ["The Seine is a river.", " It flows through Paris."]),
    ],
    "AB/wiki_00": [
        (12, "Anarchism", ["Anarchism is a political philosophy."]),  # identical repeat
        (77, "Mercury", ["Mercury is a planet."]),
        (5000, "Mercury", ["Mercury is an element."]),  # same title, higher id
        (90, "Empty page", []),
    ],
}


def _bz2_lines(pages) -> bytes:
    lines = [
        json.dumps(
            {
                "id": str(pid),
                "url": f"https://en.wikipedia.org/wiki?curid={pid}",
                "title": title,
                "text": text,
                "charoffset": [],
                "text_with_links": text,
                "charoffset_with_links": [],
            }
        )
        for pid, title, text in pages
    ]
    return bz2.compress(("\n".join(lines) + "\n").encode())


def _dump(path: Path, pages=PAGES, bad: bytes | None = None) -> Path:
    """The official abstracts dump's shape: a tar.bz2 of FOLDER/XX/wiki_NN.bz2 files."""
    with tarfile.open(path, "w:bz2") as tar:
        for name, content in pages.items():
            data = _bz2_lines(content)
            if bad is not None and name == "AB/wiki_00":
                data = bz2.compress(bad)
            info = tarfile.TarInfo(f"{HOTPOT_ABSTRACTS}/{name}.bz2")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


def _hotpot_question(i: int, facts) -> dict:
    return {
        "_id": f"5a8b{i:04d}",
        "question": f"Question {i}?",
        "answer": f"answer {i}",
        "type": "bridge" if i % 2 else "comparison",
        "level": "medium",
        "supporting_facts": [list(f) for f in facts],
        "context": [[t, ["Some sentence."]] for t, _ in facts],
    }


def _hotpot_raw(raw: Path, train_size: int = 8) -> Path:
    raw.mkdir(parents=True, exist_ok=True)
    train = [
        _hotpot_question(i, [("Paris", 0), ("Seine", 1), ("Paris", 1)]) for i in range(train_size)
    ]
    dev = [
        _hotpot_question(100, [("Mercury", 0), ("Anarchism", 0)]),
        _hotpot_question(101, [("Seine", 0), ("No such page", 0)]),
    ]
    (raw / "hotpot_train_v1.1.json").write_text(json.dumps(train, indent=1))
    (raw / "hotpot_dev_distractor_v1.json").write_text(json.dumps(dev))
    _dump(raw / f"{HOTPOT_ABSTRACTS}.tar.bz2")
    return raw


def _read(folder: Path):
    corpus = {d.id: d for d in read_corpus(folder / "corpus.jsonl")}
    splits = {s: load_questions(folder / f"{s}.jsonl") for s in ("train", "dev", "test")}
    qrels = {s: read_qrels(folder / f"qrels.{s}.txt") for s in ("train", "dev", "test")}
    return corpus, splits, qrels


def test_hotpotqa_from_the_abstracts_dump(tmp_path, capsys):
    raw = _hotpot_raw(tmp_path / "raw")
    out = tmp_path / "data" / "hotpotqa"
    argv = ["data", "prepare", "hotpotqa", "--raw", str(raw), "--output", str(out)]
    assert main([*argv, "--num-dev", "3"]) == 0
    printed = capsys.readouterr().out
    assert "1 supporting facts name no corpus document" in printed
    corpus, splits, qrels = _read(out)
    # every page once (the identical repeat skipped), ids the page ids, sorted numerically
    assert list(corpus) == ["12", "77", "90", "303", "4001", "5000"]
    assert corpus["303"].title == "Paris"
    assert corpus["303"].text == "Paris is the capital of France. It is on the Seine."
    assert corpus["303"].metadata["sentences"][1] == " It is on the Seine."
    assert corpus["90"].text == "" and corpus["90"].title == "Empty page"
    # the reference's split: original dev as test; seeded permutation's last 3 train as dev
    order = np.random.RandomState(0).permutation(8)
    train_ids = [f"5a8b{i:04d}" for i in range(8)]
    assert [q.id for q in splits["dev"]] == [train_ids[i] for i in order[-3:]]
    assert [q.id for q in splits["train"]] == [train_ids[i] for i in order[:-3]]
    assert [q.id for q in splits["test"]] == ["5a8b0100", "5a8b0101"]
    # qrels and supporting ids point at corpus ids (a repeated title: the highest id)
    assert qrels["test"] == {"5a8b0100": {"5000": 1, "12": 1}, "5a8b0101": {"4001": 1}}
    assert all(qrels["train"][q.id] == {"303": 1, "4001": 1} for q in splits["train"])
    assert splits["test"][0].gold_doc_ids == ["5000", "12"]
    assert splits["test"][0].answers == ["answer 100"]
    record = json.loads((out / "test.jsonl").read_text().splitlines()[0])
    assert record["supporting_facts"] == [["5000", 0], ["12", 0]]
    assert record["type"] == "comparison"
    config = json.loads((out / "kirag-config.json").read_text())
    assert config["command"] == "data prepare hotpotqa"
    assert config["results"]["documents"] == 6 and config["results"]["duplicates_skipped"] == 1
    assert config["settings"]["num_dev"] == 3 and config["settings"]["seed"] == 0
    # the staging folder is gone once the preparation completed
    assert not [p for p in out.parent.iterdir() if p.name.startswith(".")]
    # idempotent: an existing folder is refused without --overwrite; with it, the same bytes
    before = {p.name: p.read_bytes() for p in out.iterdir() if p.suffix != ".json"}
    assert main([*argv, "--num-dev", "3"]) == 2
    assert "already exists" in capsys.readouterr().err
    assert main([*argv, "--num-dev", "3", "--overwrite"]) == 0
    assert {p.name: p.read_bytes() for p in out.iterdir() if p.suffix != ".json"} == before
    # --overwrite replaces only a folder a preparation wrote, refused before any staging
    other = tmp_path / "mine"
    other.mkdir()
    assert main([*argv[:-1], str(other), "--overwrite"]) == 2
    assert "not a prepared dataset folder" in capsys.readouterr().err
    assert not [p for p in tmp_path.iterdir() if ".encode-" in p.name]
    # another seed draws another dev split
    assert main([*argv, "--num-dev", "3", "--overwrite", "--seed", "7"]) == 0
    assert [q.id for q in load_questions(out / "dev.jsonl")] == [
        train_ids[i] for i in np.random.RandomState(7).permutation(8)[-3:]
    ]


def test_hotpotqa_resumes_from_the_staged_dump(tmp_path, capsys):
    raw = _hotpot_raw(tmp_path / "raw")
    out = tmp_path / "hotpotqa"
    train = raw / "hotpot_train_v1.1.json"
    good = train.read_text()
    train.write_text(good[:-40])  # a truncated download: fails after the dump was staged
    argv = ["data", "prepare", "hotpotqa", "--raw", str(raw), "--output", str(out)]
    assert main([*argv, "--num-dev", "3"]) == 2
    err = capsys.readouterr().err
    assert f"{train}:" in err and "Traceback" not in err
    assert not out.exists()
    assert [p for p in tmp_path.iterdir() if ".encode-" in p.name]  # staging kept
    train.write_text(good)
    assert main([*argv, "--num-dev", "3"]) == 0
    config = json.loads((out / "kirag-config.json").read_text())
    assert config["results"]["dump_files_read"] == 0  # every dump file came from the stage
    assert len(list(read_corpus(out / "corpus.jsonl"))) == 6


def test_hotpotqa_extracted_dump_folder_gives_the_same_corpus(tmp_path):
    from kirag.eval.open_domain import prepare_dataset

    raw = _hotpot_raw(tmp_path / "raw")
    with tarfile.open(raw / f"{HOTPOT_ABSTRACTS}.tar.bz2") as tar:
        tar.extractall(tmp_path / "extracted", filter="data")
    prepare_dataset("hotpotqa", raw, tmp_path / "a", num_dev=3)
    prepare_dataset(
        "hotpotqa",
        raw,
        tmp_path / "b",
        abstracts=tmp_path / "extracted" / HOTPOT_ABSTRACTS,
        num_dev=3,
    )
    for name in ("corpus.jsonl", "train.jsonl", "dev.jsonl", "test.jsonl", "qrels.test.txt"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()


def test_a_bad_dump_line_names_the_dump_file_and_line(tmp_path, capsys):
    raw = _hotpot_raw(tmp_path / "raw")
    _dump(
        raw / f"{HOTPOT_ABSTRACTS}.tar.bz2",
        bad=b'{"id": "5", "title": "X", "text": ["a"]}\n{oops\n',
    )
    argv = ["data", "prepare", "hotpotqa", "--raw", str(raw), "--output", str(tmp_path / "o")]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert f"{HOTPOT_ABSTRACTS}/AB/wiki_00.bz2:2:" in err and "Traceback" not in err


# --- 2WikiMultiHopQA --------------------------------------------------------------------------


def _twowiki_question(qid: str, context, facts, answer: str | None = "yes") -> dict:
    record = {
        "_id": qid,
        "type": "comparison",
        "question": f"Question {qid}?",
        "context": context,
        "supporting_facts": facts,
        "evidences": [["a", "b", "c"]],
    }
    if answer is not None:
        record["answer"] = answer
    return record


def _twowiki_raw(raw: Path, train_size: int = 6) -> Path:
    raw.mkdir(parents=True, exist_ok=True)
    a = ["Alpha", ["Alpha is a film.", "It was made in 1990."]]
    b = ["Beta", ["Beta is a film."]]
    b2 = ["Beta", ["Beta is a village."]]  # same title, other text: another paragraph
    c = ["Gamma", ["Gamma is a director."]]
    train = [
        _twowiki_question(
            f"t{i}", [a, b] if i % 2 else [b, c], [["alpha" if i % 2 else "Gamma", 0]]
        )
        for i in range(train_size)
    ]
    dev = [_twowiki_question("d0", [b2, a], [["Beta", 0], ["Alpha", 1]], answer="no")]
    test = [_twowiki_question("x0", [c, ["Delta", ["Delta."]]], [], answer=None)]
    for name, data in (("train.json", train), ("dev.json", dev), ("test.json", test)):
        (raw / name).write_text(json.dumps(data))
    return raw


def test_2wikimultihopqa_as_ircot_builds_it(tmp_path, capsys):
    raw = _twowiki_raw(tmp_path / "raw")
    out = tmp_path / "2wiki"
    argv = ["data", "prepare", "2wikimultihopqa", "--raw", str(raw), "--output", str(out)]
    assert main([*argv, "--num-dev", "2"]) == 0
    corpus, splits, qrels = _read(out)
    # all paragraphs of train, dev, test, deduplicated by (title, text), numbered by first use
    assert [(d.id, d.title, d.text) for d in corpus.values()] == [
        ("0", "Beta", "Beta is a film."),
        ("1", "Gamma", "Gamma is a director."),
        ("2", "Alpha", "Alpha is a film. It was made in 1990."),
        ("3", "Beta", "Beta is a village."),
        ("4", "Delta", "Delta."),
    ]
    train_ids = [f"t{i}" for i in range(6)]
    order = np.random.RandomState(0).permutation(6)
    assert [q.id for q in splits["dev"]] == [train_ids[i] for i in order[-2:]]
    assert [q.id for q in splits["test"]] == ["d0"]  # the original dev set; test.json: corpus only
    # a supporting title matches the question's own paragraph, case-insensitively
    assert qrels["test"] == {"d0": {"3": 1, "2": 1}}
    expected = {f"t{i}": {"2" if i % 2 else "1": 1} for i in range(6)}
    assert {**qrels["train"], **qrels["dev"]} == expected
    assert sum(len(v) for v in qrels["train"].values()) == 4
    assert splits["test"][0].answers == ["no"]


def test_2wikimultihopqa_malformed_question_names_file_and_line(tmp_path, capsys):
    raw = _twowiki_raw(tmp_path / "raw")
    (raw / "dev.json").write_text(
        '[\n{"_id": "d0", "question": "q", "context": [["T", "not a list"]]}\n]'
    )
    argv = [
        "data",
        "prepare",
        "2wikimultihopqa",
        "--raw",
        str(raw),
        "--output",
        str(tmp_path / "o"),
    ]
    assert main([*argv, "--num-dev", "2"]) == 2
    err = capsys.readouterr().err
    assert f"{raw / 'dev.json'}:2:" in err and "Traceback" not in err
    assert not (tmp_path / "o").exists()


# --- MuSiQue ----------------------------------------------------------------------------------


def _musique_question(qid: str, paragraphs, support, answerable: bool = True) -> dict:
    return {
        "id": qid,
        "question": f"Question {qid}?",
        "answer": "Paris",
        "answer_aliases": ["City of Light"],
        "answerable": answerable,
        "paragraphs": [
            {"idx": i, "title": t, "paragraph_text": x, "is_supporting": i in support}
            for i, (t, x) in enumerate(paragraphs)
        ],
        "question_decomposition": [
            {"id": 1, "question": "q", "answer": "a", "paragraph_support_idx": i} for i in support
        ],
    }


def test_musique_as_ircot_builds_it(tmp_path):
    raw = tmp_path / "raw"
    raw.mkdir()
    p = [
        ("France", "Paris is the capital of France."),
        ("Seine", "The Seine flows."),
        ("Loire", "A river."),
    ]
    train = [_musique_question(f"2hop__{i}", [p[i % 3], p[(i + 1) % 3]], [1]) for i in range(5)]
    dev = [_musique_question("3hop__9", [p[2], ("Seine", "The Seine is long.")], [1, 0])]
    test = [
        {
            "id": "t",
            "question": "?",
            "paragraphs": [{"idx": 0, "title": "X", "paragraph_text": "Y"}],
        }
    ]
    for name, data in (("train", train), ("dev", dev), ("test", test)):
        lines = "\n".join(json.dumps(r) for r in data) + "\n"
        (raw / f"musique_ans_v1.0_{name}.jsonl").write_text(lines)
    from kirag.eval.open_domain import prepare_dataset

    stats = prepare_dataset("musique", raw, tmp_path / "out", num_dev=2)
    corpus, splits, qrels = _read(tmp_path / "out")
    assert [(d.id, d.title) for d in corpus.values()] == [
        ("0", "France"),
        ("1", "Seine"),
        ("2", "Loire"),
        ("3", "Seine"),
        ("4", "X"),
    ]
    assert stats.documents == 5 and stats.questions == {"train": 3, "dev": 2, "test": 1}
    # each decomposition step's paragraph_support_idx, in the question's own paragraphs
    assert qrels["test"] == {"3hop__9": {"3": 1, "2": 1}}
    assert splits["test"][0].gold_doc_ids == ["3", "2"]
    for split in ("train", "dev"):
        for q in splits[split]:
            i = int(q.id.split("__")[1])
            assert qrels[split][q.id] == {str((i + 1) % 3): 1}
    record = json.loads((tmp_path / "out" / "test.jsonl").read_text())
    assert record["answers"] == ["Paris"] and record["answer_aliases"] == ["City of Light"]


def test_num_dev_must_leave_train_questions(tmp_path, capsys):
    raw = _twowiki_raw(tmp_path / "raw", train_size=3)
    argv = [
        "data",
        "prepare",
        "2wikimultihopqa",
        "--raw",
        str(raw),
        "--output",
        str(tmp_path / "o"),
    ]
    assert main(argv) == 2  # the default 500 of 3 questions
    assert "--num-dev 500" in capsys.readouterr().err
    assert main([*argv[:3], "--raw", str(tmp_path / "nowhere"), "--output", "x"]) == 2


def test_split_is_the_reference_numpy_permutation():
    np.random.seed(0)  # the reference: seed_everything(0); np.random.permutation(n)
    reference = np.random.permutation(20)
    train, dev = split_train_dev(list(range(20)), 5, seed=0)
    assert dev == list(reference[-5:]) and train == list(reference[:-5])
    assert sorted(train + dev) == list(range(20))


# --- the streaming JSON-array reader ----------------------------------------------------------


def test_json_array_streams_elements_with_their_lines(tmp_path, monkeypatch):
    import kirag.io.json_array as module

    monkeypatch.setattr(module, "CHUNK_CHARS", 7)  # elements cut across many chunks
    records = [{"a": i, "text": "é" * i, "n": [1.5, None, True]} for i in range(30)]
    path = tmp_path / "x.json"
    path.write_text("[\n" + ",\n".join(json.dumps(r) for r in records) + "\n]\n", "utf-8")
    got = list(iter_json_array(path))
    assert [r for _, r in got] == records
    assert [line for line, _ in got] == list(range(2, 32))
    path.write_text("[1, 2\n, 3]")
    assert [v for _, v in iter_json_array(path)] == [1, 2, 3]
    for text, line in (('[{"a": 1},\n{"a": }]', 2), ('{"a": 1}', 1), ("[1,\n2\n", 3), ("[1] x", 1)):
        path.write_text(text)
        with pytest.raises(Exception, match=rf"x\.json:{line}:"):
            list(iter_json_array(path))
