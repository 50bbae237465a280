"""Dataset-level QA scoring on cases written from the official evaluation scripts' rules:
hotpot_evaluate_v1.py (each prediction map scored on its own, joint only with both),
2wikimultihop_evaluate_v1.1.py (answer aliases, supporting facts deduplicated before their
titles are lower-cased, evidence triples with aliases, joint of three parts, separate maxima of
precision and recall over aliases) and MuSiQue's evaluate_v1.0.py (SQuAD F1 without the yes/no
rule, answerable questions only, support F1 1 when gold and prediction are both empty,
MuSiQue-Full groups); and how a dataset file is recognised."""

from __future__ import annotations

import copy
import json

import pytest
from kirag.eval.datasets import detect_qa_format, load_questions, qa_format_for_target
from kirag.eval.qa_evaluation import evaluate_predictions
from kirag.eval.qa_metrics import f1, f1_score, squad_f1, token_f1
from kirag.eval.submission import QAPrediction, read_qa_predictions, validate_qa_predictions

from kirag.cli import main
from kirag.errors import InputError

TWOWIKI = {
    "_id": "w1",
    "type": "compositional",
    "question": "Who is the mother of the director of film X?",
    "answer": "Jane",
    "answer_id": "Q1",
    "supporting_facts": [["X", 0], ["Bob", 1]],
    "evidences": [["X", "director", "Bob"], ["Bob", "mother", "Jane"]],
    "evidences_id": [["Q10", "director", "Q11"], ["Q11", "mother", "Q1"]],
    "context": [["X", ["X is a film by Bob."]], ["Bob", ["Bob directs.", "His mother is Jane."]]],
}
ALIASES = [
    {"Q_id": "Q1", "aliases": ["Mary Jane"], "demonyms": []},
    {"Q_id": "Q11", "aliases": ["Robert"], "demonyms": []},
]


@pytest.fixture
def twowiki(tmp_path):
    (tmp_path / "dev.json").write_text(json.dumps([TWOWIKI]))
    (tmp_path / "id_aliases.json").write_text("\n".join(json.dumps(a) for a in ALIASES) + "\n")
    return load_questions(tmp_path / "dev.json", aliases=tmp_path / "id_aliases.json")


def test_2wiki_aliases_titles_and_evidence(twowiki):
    example = twowiki[0]
    assert example.answers == ["Jane", "Mary Jane"]
    assert ["Robert", "mother", "Mary Jane"] in example.metadata["evidence_alternatives"][1]
    prediction = QAPrediction(
        "w1",
        "mary jane",  # an alias of the answer
        [("x", 0), ("bob", 1)],  # titles compare case-insensitively in 2Wiki
        evidence=[["x", "Director", "Robert"], ["Bob", "mother", "Mary  Jane!"]],
    )
    aggregate = evaluate_predictions([prediction], twowiki)["aggregate"]
    assert aggregate == pytest.approx(
        {"EM": 1, "F1": 1, "sp_EM": 1, "sp_F1": 1, "evi_EM": 1, "evi_F1": 1}
        | {
            "joint_EM": 1,
            "joint_F1": 1,
        }
    )
    # one wrong extra triple: evidence precision 2/3, recall 1, no EM; joint multiplies it in
    extra = QAPrediction(
        "w1", "Jane", [("X", 0), ("Bob", 1)], evidence=[*prediction.evidence, ["X", "a", "b"]]
    )
    aggregate = evaluate_predictions([extra], twowiki)["aggregate"]
    assert aggregate["evi_EM"] == 0.0 and aggregate["evi_F1"] == pytest.approx(0.8)
    assert aggregate["joint_EM"] == 0.0 and aggregate["joint_F1"] == pytest.approx(0.8)


def test_2wiki_takes_separate_maxima_of_precision_and_recall(tmp_path):
    record = dict(TWOWIKI, answer="p", answer_id="Q5")
    (tmp_path / "dev.json").write_text(json.dumps([record]))
    (tmp_path / "al.json").write_text(
        json.dumps({"Q_id": "Q5", "aliases": ["p q r s t u v w"], "demonyms": []}) + "\n"
    )
    examples = load_questions(tmp_path / "dev.json", aliases=tmp_path / "al.json")
    # vs "p": P 1/4, R 1; vs the long alias: P 1, R 1/2 -> F1 is the best alias's (2/3), but the
    # joint uses max P = 1 and max R = 1 (update_answer), so with exact sp and evidence it is 1
    prediction = QAPrediction(
        "w1",
        "p q r s",
        [("X", 0), ("Bob", 1)],
        evidence=[["X", "director", "Bob"], ["Bob", "mother", "Jane"]],
    )
    aggregate = evaluate_predictions([prediction], examples)["aggregate"]
    assert aggregate["F1"] == pytest.approx(2 / 3) and aggregate["joint_F1"] == pytest.approx(1.0)
    assert aggregate["EM"] == 0.0 and aggregate["joint_EM"] == 0.0


def test_2wiki_evidence_ids_must_match_the_evidences(tmp_path):
    # the official script asserts that each evidences_id relation is the evidence's relation
    record = dict(TWOWIKI, evidences_id=[["Q10", "director", "Q11"], ["Q11", "father", "Q1"]])
    (tmp_path / "dev.json").write_text(json.dumps([record]))
    (tmp_path / "al.json").write_text(json.dumps(ALIASES[0]) + "\n")
    with pytest.raises(InputError, match="evidence 2's relation is 'mother' in evidences but"):
        load_questions(tmp_path / "dev.json", aliases=tmp_path / "al.json")


def test_2wiki_aliases_only_for_2wiki(tmp_path):
    (tmp_path / "m.jsonl").write_text(json.dumps(MUSIQUE_ANSWERABLE) + "\n")
    with pytest.raises(InputError, match="aliases files are for 2WikiMultiHopQA"):
        load_questions(tmp_path / "m.jsonl", aliases=tmp_path / "m.jsonl")


MUSIQUE_ANSWERABLE = {
    "id": "2hop__1",
    "question": "Is Algiers the capital of the country where Sonatrach is based?",
    "answer": "yes it is",
    "answer_aliases": [],
    "answerable": True,
    "paragraphs": [
        {"idx": 0, "title": "S", "paragraph_text": "Sonatrach is Algerian.", "is_supporting": True},
        {
            "idx": 1,
            "title": "A",
            "paragraph_text": "Algiers is the capital.",
            "is_supporting": True,
        },
        {"idx": 2, "title": "B", "paragraph_text": "Luanda.", "is_supporting": False},
    ],
}
MUSIQUE_OTHER = {
    "id": "2hop__2",
    "question": "Who founded the company that makes the Beetle?",
    "answer": "Ferdinand Porsche",
    "answer_aliases": ["Porsche"],
    "answerable": True,
    "paragraphs": [
        {"idx": 0, "title": "VW", "paragraph_text": "Volkswagen ...", "is_supporting": True},
        {"idx": 1, "title": "FP", "paragraph_text": "Ferdinand ...", "is_supporting": True},
    ],
}


def _write_jsonl(path, records):
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return path


def test_musique_answer_and_support(tmp_path):
    examples = load_questions(
        _write_jsonl(tmp_path / "m.jsonl", [MUSIQUE_ANSWERABLE, MUSIQUE_OTHER])
    )
    predictions = [
        # SQuAD F1 has no yes/no rule: "yes" vs "yes it is" is P 1, R 1/3 (HotpotQA's F1: 0)
        QAPrediction("2hop__1", "yes", support_idxs=[0, 2]),
        QAPrediction("2hop__2", "Porsche", support_idxs=[1, 0]),
    ]
    result = evaluate_predictions(predictions, examples)
    assert token_f1("yes", "yes it is") == 0.0 and squad_f1("yes", "yes it is") == 0.5
    assert result["per_question"]["2hop__1"]["F1"] == pytest.approx(0.5)
    assert result["per_question"]["2hop__1"]["support_F1"] == pytest.approx(0.5)
    assert result["aggregate"]["EM"] == 0.5 and result["aggregate"]["support_EM"] == 0.5
    assert "group_answer_sufficiency_F1" not in result["aggregate"]
    with pytest.raises(InputError, match="must follow the dataset's order"):
        evaluate_predictions(predictions[::-1], examples)
    with pytest.raises(InputError, match="line by line"):
        evaluate_predictions(predictions[:1], examples)


def test_musique_full_groups(tmp_path):
    unanswerable = copy.deepcopy(MUSIQUE_OTHER) | {"answerable": False}
    for p in unanswerable["paragraphs"]:
        p["is_supporting"] = False
    examples = load_questions(
        _write_jsonl(
            tmp_path / "full.jsonl",
            [
                MUSIQUE_OTHER,
                unanswerable,
                MUSIQUE_ANSWERABLE,
                dict(MUSIQUE_ANSWERABLE, answerable=False),
            ],
        )
    )
    assert [e.answerable for e in examples] == [True, False, True, False]
    predictions = [
        QAPrediction("2hop__2", "Porsche", support_idxs=[0, 1], answerable=True),
        QAPrediction("2hop__2", "", support_idxs=[], answerable=False),  # right: pair scores
        QAPrediction("2hop__1", "yes it is", support_idxs=[0, 1], answerable=True),
        QAPrediction("2hop__1", "no", support_idxs=[], answerable=True),  # wrong: pair is 0
    ]
    aggregate = evaluate_predictions(predictions, examples)["aggregate"]
    assert aggregate["EM"] == 1.0 and aggregate["F1"] == 1.0  # answerable versions only
    assert aggregate["group_answer_sufficiency_F1"] == pytest.approx(0.5)
    assert aggregate["group_support_sufficiency_F1"] == pytest.approx(0.5)
    assert aggregate["answerability_accuracy"] == pytest.approx(0.75)
    with pytest.raises(InputError, match="duplicate question id"):
        load_questions(_write_jsonl(tmp_path / "dup.jsonl", [MUSIQUE_OTHER, MUSIQUE_OTHER]))
    # an unanswerable question without its answerable twin: the script's assertion fails
    with pytest.raises(InputError, match="1 questions lack their answerable or unanswerable"):
        evaluate_predictions(predictions[1:], examples[1:])


def test_f1_is_the_contract_name():
    assert f1 is f1_score and f1("the Saturn V", ["Saturn V"]) == 1.0


# HotpotQA's dev file opens with a comparison question, a type 2WikiMultiHopQA has too.
HOTPOT_COMPARISON = {
    "_id": "5a8b57f25542995d1e6f1371",
    "answer": "yes",
    "question": "Were Scott Derrickson and Ed Wood of the same nationality?",
    "supporting_facts": [["Scott Derrickson", 0], ["Ed Wood", 0]],
    "context": [
        ["Ed Wood", ["Edward Davis Wood Jr. was an American filmmaker.", "He was an actor."]],
        ["Scott Derrickson", ["Scott Derrickson is an American director."]],
    ],
    "type": "comparison",
    "level": "hard",
}
HOTPOT_BRIDGE = {
    "_id": "5a8c7595554299585d9e36b6",
    "answer": "Chief of Protocol",
    "question": "What government position was held by the woman who portrayed Corliss Archer?",
    "supporting_facts": [["Kiss and Tell", 0], ["Shirley Temple", 1]],
    "context": [
        ["Kiss and Tell", ["Kiss and Tell stars Shirley Temple as Corliss Archer."]],
        ["Shirley Temple", ["Shirley Temple was an actress.", "She was Chief of Protocol."]],
    ],
    "type": "bridge",
    "level": "medium",
}


def _hotpot_predictions(path, **maps):
    answers = {HOTPOT_COMPARISON["_id"]: "yes", HOTPOT_BRIDGE["_id"]: "Chief of Protocol"}
    facts = {r["_id"]: r["supporting_facts"] for r in (HOTPOT_COMPARISON, HOTPOT_BRIDGE)}
    path.write_text(json.dumps({"answer": answers, "sp": facts} | maps))
    return path


def test_hotpot_file_opening_with_a_comparison_question_is_hotpotqa(tmp_path, capsys):
    dev = tmp_path / "hotpot_dev_distractor_v1.json"
    dev.write_text(json.dumps([HOTPOT_COMPARISON, HOTPOT_BRIDGE]))
    assert detect_qa_format(dev) == "hotpotqa"
    assert {e.dataset for e in load_questions(dev)} == {"hotpotqa"}
    # the README's command: perfect predictions score 1 everywhere, with no 2Wiki metrics
    out = tmp_path / "res.json"
    argv = ["eval", "--predictions", str(_hotpot_predictions(tmp_path / "pred.json"))]
    assert main([*argv, "--questions", str(dev), "--output", str(out)]) == 0
    aggregate = json.loads(out.read_text())["aggregate"]
    assert aggregate == {k: 1.0 for k in ("EM", "F1", "sp_EM", "sp_F1", "joint_EM", "joint_F1")}, (
        capsys.readouterr()
    )


def test_hotpot_or_2wiki_is_decided_on_fields_only_one_has(tmp_path):
    def fmt(*records):
        (tmp_path / "q.json").write_text(json.dumps(list(records)))
        return detect_qa_format(tmp_path / "q.json")

    plain = {k: v for k, v in HOTPOT_COMPARISON.items() if k not in ("type", "level")}
    comparison_2wiki = dict(TWOWIKI, _id="w2", type="comparison")
    assert fmt(comparison_2wiki, TWOWIKI) == "2wikimultihopqa"  # 2Wiki's `evidences`
    no_evidence = {k: v for k, v in TWOWIKI.items() if not k.startswith(("evidences", "answer"))}
    # a test file (no answers, no evidences): a later record's 2Wiki-only type decides
    assert fmt(dict(no_evidence, type="comparison"), no_evidence) == "2wikimultihopqa"
    assert fmt(plain, HOTPOT_BRIDGE) == "hotpotqa"  # HotpotQA's `level`
    assert fmt(plain, plain) == "hotpotqa"  # HotpotQA's test files: no type, no level
    with pytest.raises(InputError, match=r"mixes HotpotQA \(question #1\) and 2Wiki.*#2"):
        fmt(HOTPOT_BRIDGE, TWOWIKI)


def test_target_decides_how_the_dataset_file_is_read(tmp_path, capsys):
    # No `level`, a comparison question first: nothing says which dataset; --target does.
    records = [
        {k: v for k, v in r.items() if k != "level"} for r in (HOTPOT_COMPARISON, HOTPOT_BRIDGE)
    ]
    (tmp_path / "q.json").write_text(json.dumps(records))
    predictions = _hotpot_predictions(tmp_path / "pred.json")
    out = tmp_path / "res.json"
    argv = ["eval", "--predictions", str(predictions), "--questions", str(tmp_path / "q.json")]
    assert main([*argv, "--target", "hotpotqa", "--output", str(out)]) == 0
    aggregate = json.loads(out.read_text())["aggregate"]
    assert "evi_F1" not in aggregate and aggregate["joint_F1"] == 1.0
    # the same file read as 2Wiki: its evidence metrics and a three-part joint
    empty_evidence = {r["_id"]: [] for r in records}
    _hotpot_predictions(predictions, evidence=empty_evidence)
    assert main([*argv, "--target", "2wikimultihopqa", "--output", str(out)]) == 0
    aggregate = json.loads(out.read_text())["aggregate"]
    assert aggregate["evi_F1"] == 0.0 and aggregate["joint_F1"] == 0.0
    assert aggregate["sp_F1"] == 1.0
    assert qa_format_for_target(tmp_path / "q.json", "2wikimultihopqa") == "2wikimultihopqa"
    assert main([*argv, "--target", "musique"]) == 2
    assert "predictions for musique cannot be scored against a hotpotqa file" in (
        capsys.readouterr().err
    )


def test_each_prediction_map_is_scored_on_its_own(tmp_path, capsys):
    # hotpot_evaluate_v1: an id is looked up in "answer" and in "sp" separately; a part that is
    # missing scores 0 and the joint metrics count only ids present in both maps.
    dev = tmp_path / "dev.json"
    dev.write_text(json.dumps([HOTPOT_COMPARISON, HOTPOT_BRIDGE]))
    c, b = HOTPOT_COMPARISON["_id"], HOTPOT_BRIDGE["_id"]
    pred = tmp_path / "pred.json"
    pred.write_text(json.dumps({"answer": {c: "yes"}, "sp": {b: [["Kiss and Tell", 0]]}}))
    predictions = {p.id: p for p in read_qa_predictions("hotpotqa", pred)}
    assert predictions[b].answer is None and predictions[c].supporting_facts is None
    result = evaluate_predictions(list(predictions.values()), load_questions(dev))
    # c: answer 1, no sp; b: sp P 1 R 1/2 (F1 2/3), no answer; neither has a joint
    assert result["aggregate"] == pytest.approx(
        {"EM": 0.5, "F1": 0.5, "sp_EM": 0.0, "sp_F1": 1 / 3, "joint_EM": 0.0, "joint_F1": 0.0}
    )
    assert result["missing_parts"] == {"answer": 1, "sp": 1}
    # a file of supporting facts only: sp_EM is what the facts earn, not 0
    facts_only = {r["_id"]: r["supporting_facts"] for r in (HOTPOT_COMPARISON, HOTPOT_BRIDGE)}
    pred.write_text(json.dumps({"answer": {}, "sp": facts_only}))
    out = tmp_path / "res.json"
    argv = ["eval", "--predictions", str(pred), "--questions", str(dev), "--output", str(out)]
    assert main(argv) == 0
    aggregate = json.loads(out.read_text())["aggregate"]
    assert aggregate["sp_EM"] == 1.0 and aggregate["EM"] == aggregate["joint_F1"] == 0.0
    assert "missing predictions: 2 (2 without answer)" in capsys.readouterr().out
    # a submission, though, needs every map complete
    assert 'have no "answer" entry' in validate_qa_predictions("hotpotqa", pred)[0]


def test_2wiki_evidence_without_an_answer_is_scored(twowiki, tmp_path):
    pred = tmp_path / "pred.json"
    pred.write_text(
        json.dumps({"answer": {}, "sp": {}, "evidence": {"w1": [["X", "director", "Bob"]]}})
    )
    aggregate = evaluate_predictions(read_qa_predictions("2wikimultihopqa", pred), twowiki)[
        "aggregate"
    ]
    assert aggregate["evi_F1"] == pytest.approx(2 / 3) and aggregate["evi_EM"] == 0.0
    assert aggregate["F1"] == aggregate["sp_F1"] == aggregate["joint_F1"] == 0.0


def test_2wiki_deduplicates_supporting_facts_before_lowering_titles(twowiki, tmp_path):
    # normalize_sp(set(map(tuple, prediction))): the set is taken first, so ("X", 0) and
    # ("x", 0) are two predictions that both match the gold ("X", 0) once lower-cased:
    # tp 2, fp 0, fn 1 ("Bob", 1) -> P 1, R 2/3, F1 0.8 (deduplicating after: P 1, R 1/2)
    prediction = QAPrediction("w1", "Jane", [("X", 0), ("x", 0)], evidence=[])
    aggregate = evaluate_predictions([prediction], twowiki)["aggregate"]
    assert aggregate["sp_F1"] == pytest.approx(0.8) and aggregate["sp_EM"] == 0.0
    # the same fact twice in one casing is one prediction; both casings of every gold fact: EM
    both = QAPrediction("w1", "Jane", [("X", 0), ("X", 0), ("x", 0), ("BOB", 1), ("Bob", 1)])
    assert evaluate_predictions([both], twowiki)["aggregate"]["sp_EM"] == 1.0
    # HotpotQA compares titles as given: ("x", 0) is a wrong fact there
    (tmp_path / "h.json").write_text(json.dumps([HOTPOT_BRIDGE]))
    hotpot = load_questions(tmp_path / "h.json")
    facts = [("Kiss and Tell", 0), ("kiss and tell", 0)]
    aggregate = evaluate_predictions(
        [QAPrediction(HOTPOT_BRIDGE["_id"], "Chief of Protocol", facts)], hotpot
    )["aggregate"]
    assert aggregate["sp_F1"] == pytest.approx(0.5)


def test_musique_support_of_nothing_against_nothing_is_exact(tmp_path):
    # SupportMetric: "In case everything is empty, set both f1, em to be 1.0" (HotpotQA's
    # update_sp, which it copies, gives EM 1 and F1 0 there)
    no_support = copy.deepcopy(MUSIQUE_OTHER)
    for paragraph in no_support["paragraphs"]:
        paragraph["is_supporting"] = False
    unanswerable = dict(no_support, answerable=False)
    examples = load_questions(_write_jsonl(tmp_path / "m.jsonl", [no_support, unanswerable]))
    predictions = [
        QAPrediction("2hop__2", "Porsche", support_idxs=[], answerable=True),
        QAPrediction("2hop__2", "", support_idxs=[], answerable=False),
    ]
    aggregate = evaluate_predictions(predictions, examples)["aggregate"]
    assert aggregate["support_F1"] == 1.0 and aggregate["support_EM"] == 1.0
    assert aggregate["group_support_sufficiency_F1"] == 1.0  # the groups use the same metric
    wrong = [QAPrediction("2hop__2", "Porsche", support_idxs=[1]), predictions[1]]
    assert evaluate_predictions(wrong, examples)["aggregate"]["support_F1"] == 0.0
    records = [HOTPOT_COMPARISON, dict(HOTPOT_BRIDGE, supporting_facts=[])]
    (tmp_path / "h.json").write_text(json.dumps(records))
    hotpot = load_questions(tmp_path / "h.json")
    result = evaluate_predictions([QAPrediction(HOTPOT_BRIDGE["_id"], "x", [])], hotpot)
    row = result["per_question"][HOTPOT_BRIDGE["_id"]]
    assert (row["sp_EM"], row["sp_F1"]) == (1.0, 0.0)  # HotpotQA's own rule for nothing vs nothing
