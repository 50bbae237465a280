"""The CLI parses, calls and prints: a Python-API user gets the same predictions, QA scores and
reranking effect from the library functions the CLI calls (kirag.eval.qa_answers,
kirag.rag.answering, kirag.eval.report.rerank_effect)."""

from __future__ import annotations

import json

from kirag.cli import main

QUESTIONS = [
    {"id": "q1", "question": "In which city was the philosopher who taught Alexander the Great born?",
     "answers": ["Stagira"], "supporting_ids": ["Aristotle#0", "Aristotle#1"]},
    {"id": "q2", "question": "Who wrote the novella Animal Farm?",
     "answers": ["George Orwell"], "supporting_ids": ["Animal_Farm#0"]},
]  # fmt: skip
QRELS = {"q1": ["Aristotle#0", "Aristotle#1"], "q2": ["Animal_Farm#0"]}


def test_answers_scores_and_predictions_from_the_api_equal_the_clis(tmp_path, small_triple_index):
    from kirag.eval.datasets import load_questions
    from kirag.eval.qa_answers import answer_predictions, answer_scores, write_answers
    from kirag.eval.submission import write_qa_predictions

    from kirag.rag.answering import answer_questions
    from kirag.rag.pipeline import KiRAG

    questions = tmp_path / "questions.jsonl"
    questions.write_text("".join(json.dumps(q) + "\n" for q in QUESTIONS))
    cli_answers, cli_preds = tmp_path / "cli.answers.jsonl", tmp_path / "cli.preds.json"
    assert main(["-q", "answer", "--index", str(small_triple_index), "--questions", str(questions),
                 "--answers", str(cli_answers), "--output", str(cli_preds)]) == 0  # fmt: skip
    config = json.loads((tmp_path / "cli.preds.json.config.json").read_text())

    examples = load_questions(questions)
    answers = answer_questions(KiRAG(small_triple_index), [e.question for e in examples], k=10)
    predictions = answer_predictions(examples, answers, reader_k=3)
    api_answers, api_preds = tmp_path / "api.answers.jsonl", tmp_path / "api.preds.json"
    write_answers(api_answers, examples, answers, predictions)
    write_qa_predictions("hotpotqa", predictions, api_preds, [e.id for e in examples])
    assert api_answers.read_bytes() == cli_answers.read_bytes()
    assert api_preds.read_bytes() == cli_preds.read_bytes()
    scores = answer_scores(examples, answers)
    assert scores == config["results"]["scores"]
    assert set(scores) == {"EM", "F1", "support_R@3", "support_R@5", "support_R@10"}


def test_a_rerankings_effect_from_the_api_equals_the_clis(
    tmp_path, enwiki_bm25, tiny_cross_encoder, capsys
):
    from kirag.eval.report import rerank_effect
    from kirag.eval.runs import read_run

    from kirag.io.qrels import read_qrels

    topics, qrels = tmp_path / "topics.tsv", tmp_path / "qrels.txt"
    topics.write_text("".join(f"{q['id']}\t{q['question']}\n" for q in QUESTIONS))
    qrels.write_text("".join(f"{q} 0 {d} 1\n" for q, docs in QRELS.items() for d in docs))
    first, reranked = tmp_path / "bm25.trec", tmp_path / "ce.trec"
    assert main(["-q", "search", "--index", str(enwiki_bm25), "--topics", str(topics),
                 "--output", str(first), "--k", "20"]) == 0  # fmt: skip
    assert main(["-q", "rerank", "--run", str(first), "--topics", str(topics), "--index",
                 str(enwiki_bm25), "--reranker", "cross-encoder", "--model",
                 str(tiny_cross_encoder), "--k", "10", "--output", str(reranked),
                 "--qrels", str(qrels)]) == 0  # fmt: skip
    printed = capsys.readouterr().out
    config = json.loads((tmp_path / "ce.trec.config.json").read_text())
    effect = rerank_effect(read_run(first), read_run(reranked), read_qrels(qrels), k=10)
    assert json.loads(json.dumps(effect.to_dict())) == config["results"]["effect"]
    assert set(effect.results) == {"first stage", "reranked"}
    assert ("LOWERS nDCG@10" in printed) == effect.lowers_ndcg
