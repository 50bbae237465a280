"""`kirag report` and `--html` on answer / rerank / eval: built from real outputs (KiRAG over the
small triple index, Rank1 on the packaged SmolLM2 through llama.cpp, BM25 runs), then opened in
Debian's chromium with every network request blocked."""

from __future__ import annotations

import json
import re

import pytest
from browser_support import PageWatch, browser, screenshot  # noqa: F401 (fixture)

from kirag.cli import main

# a server or index build in the fixtures, model calls: over 30 s on 2 cores
pytestmark = pytest.mark.slow

QUESTIONS = [
    {"id": "q1", "question": "In which city was the philosopher who taught Alexander the Great born?",
     "answers": ["Stagira"], "supporting_ids": ["Aristotle#0", "Aristotle#1"]},
    {"id": "q2", "question": "Who wrote the novella Animal Farm?",
     "answers": ["George Orwell"], "supporting_ids": ["Animal_Farm#0"]},
    {"id": "q3", "question": "What is the best-known novel of the Russian-born writer Ayn Rand?",
     "answers": ["Atlas Shrugged"], "supporting_ids": ["Ayn_Rand#1"]},
]  # fmt: skip
QRELS = {"q1": ["Aristotle#0", "Aristotle#1"], "q2": ["Animal_Farm#0"], "q3": ["Ayn_Rand#1"]}


@pytest.fixture(scope="module")
def made(tmp_path_factory, small_triple_index, enwiki_bm25):
    """Every input kind, made by the real commands, and the HTML they wrote."""
    root = tmp_path_factory.mktemp("report")
    files = {name: root / name for name in (
        "questions.jsonl", "topics.tsv", "qrels.txt", "answers.jsonl", "answers.html",
        "bm25.trec", "rank1.trec", "rank1.jsonl", "rank1.html", "eval.html")}  # fmt: skip
    files["questions.jsonl"].write_text("".join(json.dumps(q) + "\n" for q in QUESTIONS))
    files["topics.tsv"].write_text("".join(f"{q['id']}\t{q['question']}\n" for q in QUESTIONS))
    files["qrels.txt"].write_text(
        "".join(f"{q} 0 {d} 1\n" for q, docs in QRELS.items() for d in docs)
    )
    f = {k: str(v) for k, v in files.items()}
    assert main(["-q", "answer", "--index", str(small_triple_index), "--questions", f["questions.jsonl"],
                 "--answers", f["answers.jsonl"], "--html", f["answers.html"]]) == 0  # fmt: skip
    assert main(["-q", "search", "--index", str(enwiki_bm25), "--topics", f["topics.tsv"],
                 "--output", f["bm25.trec"], "--k", "20"]) == 0  # fmt: skip
    assert main(["-q", "rerank", "--run", f["bm25.trec"], "--topics", f["topics.tsv"],
                 "--index", str(enwiki_bm25), "--engine", "llamacpp", "--thinking-budget", "0",
                 "--k", "3", "--output", f["rank1.trec"], "--explanations", f["rank1.jsonl"],
                 "--qrels", f["qrels.txt"], "--html", f["rank1.html"]]) == 0  # fmt: skip
    assert main(["-q", "eval", "--run", f["bm25.trec"], "--run", f["rank1.trec"], "--qrels",
                 f["qrels.txt"], "--metrics", "nDCG@10", "R@3", "--trials", "500",
                 "--html", f["eval.html"]]) == 0  # fmt: skip
    return files


def payload_of(path) -> dict:
    """The JSON a report embeds."""
    text = path.read_text(encoding="utf-8")
    found = re.search(
        r'<script id="report-data" type="application/json">(.*?)</script>', text, re.S
    )
    return json.loads(found.group(1))


def test_kirag_report_from_answer_and_from_the_jsonl(made, small_triple_index, tmp_path):
    direct = payload_of(made["answers.html"])
    assert direct["kind"] == "kirag" and direct["summary"]["questions"] == 3
    out = tmp_path / "again.html"
    assert main(["report", str(made["answers.jsonl"]), "--questions", str(made["questions.jsonl"]),
                 "--index", str(small_triple_index), "--html", str(out)]) == 0  # fmt: skip
    again = payload_of(out)
    assert again["summary"] == direct["summary"]
    answers = [json.loads(line) for line in made["answers.jsonl"].read_text().splitlines()]
    for item, record, question in zip(again["items"], answers, QUESTIONS, strict=True):
        assert item["id"] == question["id"] and item["answer"] == record["answer"]
        assert [d["id"] for d in item["documents"]] == [d["id"] for d in record["documents"]]
        assert item["gold_answers"] == question["answers"]
        found = set(question["supporting_ids"]) <= {d["id"] for d in record["documents"]}
        assert item["support_found"] == found
        best = item["chains"][0]
        assert len(best["steps"]) == len(record["chains"][0]["triples"])
        for step, text in zip(best["steps"], record["chains"][0]["triples"], strict=True):
            assert text == f"<{step['head']}; {step['relation']}; {step['tail']}>"
            start, end = step["span"]  # the highlighted sentence lies inside the passage
            assert 0 <= start < end <= len(step["passage"])
    # the report from the run itself highlights the triple's own sentence
    for item in direct["items"]:
        for step in item["chains"][0]["steps"]:
            assert step["passage"][step["span"][0] : step["span"][1]].strip()
    wrong = sum(1 for i in direct["items"] if not i["correct"]["em"])
    assert direct["summary"].get("wrong", 0) == wrong


def test_rank1_report_moves_reasoning_and_judgments(made, enwiki_bm25, tmp_path):
    direct = payload_of(made["rank1.html"])
    out = tmp_path / "rank1.html"
    assert main(["report", str(made["rank1.jsonl"]), "--topics", str(made["topics.tsv"]),
                 "--qrels", str(made["qrels.txt"]), "--index", str(enwiki_bm25),
                 "--html", str(out)]) == 0  # fmt: skip
    again = payload_of(out)
    assert again["summary"] == direct["summary"] == {
        "queries": 3, "pairs": 9, "fallbacks": again["summary"]["fallbacks"],
        "truncated passages": again["summary"]["truncated passages"],
    }  # fmt: skip
    rows = [json.loads(line) for line in made["rank1.jsonl"].read_text().splitlines()]
    by_pair = {(r["qid"], r["docid"]): r for r in rows}
    for item in again["items"]:
        assert item["query"] == next(q["question"] for q in QUESTIONS if q["id"] == item["qid"])
        for doc in item["docs"]:
            row = by_pair[(item["qid"], doc["docid"])]
            assert doc["move"] == row["first_stage_rank"] - row["rank"]
            assert doc["p_true"] == row["p_true"] and doc["title"]
            assert doc["relevance"] == int(doc["docid"] in QRELS[item["qid"]])


def test_eval_report_matches_kirag_eval(made, tmp_path):
    from kirag.eval.metrics import evaluate
    from kirag.eval.report import comparisons
    from kirag.eval.runs import read_run

    from kirag.io.qrels import read_qrels

    direct = payload_of(made["eval.html"])
    qrels = read_qrels(made["qrels.txt"])
    results = {
        name: evaluate(read_run(made[name]), qrels, ["nDCG@10", "R@3"])
        for name in ("bm25.trec", "rank1.trec")
    }
    assert direct["runs"] == list(results)
    assert direct["aggregate"] == {n: r.aggregate for n, r in results.items()}
    assert direct["comparisons"] == comparisons(results, trials=500)
    assert len(direct["per_query"]) == 3
    assert direct["curves"]["recall@k"]["ks"][0] == 1
    out = tmp_path / "eval.html"
    assert main(["report", str(made["bm25.trec"]), str(made["rank1.trec"]), "--qrels",
                 str(made["qrels.txt"]), "--metrics", "nDCG@10", "R@3", "--trials", "500",
                 "--html", str(out)]) == 0  # fmt: skip
    assert payload_of(out)["comparisons"] == direct["comparisons"]


def test_page_is_self_contained_and_escapes_its_data():
    from kirag.report import render_page

    hostile = "</script><script>alert(1)</script><!--"
    page = render_page({"kind": "kirag", "summary": {}, "items": [], "title": hostile}, hostile)
    assert "<script>alert(1)" not in page and "</script><script>alert" not in page
    assert not re.search(r"""(src|href)\s*=\s*["']?https?:""", page)
    assert "default-src 'none'" in page


def test_report_errors_are_one_line(made, tmp_path, capsys):
    out = str(tmp_path / "x.html")
    assert (
        main(["report", str(made["answers.jsonl"]), str(made["rank1.jsonl"]), "--html", out]) == 2
    )
    assert "different kinds" in capsys.readouterr().err
    assert main(["report", str(made["bm25.trec"]), "--html", out]) == 2
    assert "--qrels" in capsys.readouterr().err
    assert main(["report", str(made["rank1.jsonl"]), "--html", str(made["rank1.jsonl"])]) == 2
    assert "are the same file" in capsys.readouterr().err
    bad = tmp_path / "bad.jsonl"
    bad.write_text(made["answers.jsonl"].read_text().splitlines()[0] + "\n{broken\n")
    assert main(["report", str(bad), "--html", out]) == 2
    assert f"{bad}:2:" in capsys.readouterr().err


def test_reports_in_a_browser_with_the_network_blocked(made, browser):  # noqa: F811
    for name, kind in (("answers.html", "kirag"), ("rank1.html", "rank1"), ("eval.html", "eval")):
        payload = payload_of(made[name])
        watch = PageWatch(browser, block_network=True, allow=(made[name].as_uri(),))
        page = watch.page
        page.goto(made[name].as_uri())
        page.wait_for_selector("#summary")
        for key, value in payload["summary"].items():
            assert page.locator(f'#summary span[data-key="{key}"] b').inner_text() == str(value)
        if kind == "kirag":
            assert page.locator("section.kirag-item").count() == 3
            assert page.locator("svg.chain-graph").count() >= 1
            wrong = payload["summary"].get("wrong", 0)
            page.check("#only-wrong")
            assert page.locator("section.kirag-item").count() == wrong
            page.uncheck("#only-wrong")
        elif kind == "rank1":
            assert page.locator("section.rank1-item").count() == 3
            page.locator("section.rank1-item details summary").first.click()
        else:
            assert page.locator("#per-query tr").count() == 1 + 3
            assert page.locator("svg.curve").count() == 2
            page.locator("#per-query th.sortable").first.click()
        screenshot(page, f"report-{kind}.png")
        assert watch.errors == []
        # the file itself is the only request; nothing had to be blocked
        assert watch.blocked == [] and set(watch.requests) == {made[name].as_uri()}
        watch.close()


def test_a_10k_query_report_pages_and_states_its_size(tmp_path, browser, capsys):  # noqa: F811
    import random

    rng = random.Random(7)
    per_query = {
        run: {f"q{i}": {"nDCG@10": rng.random(), "R@100": rng.random()} for i in range(10_000)}
        for run in ("bm25", "rerank")
    }
    source, out = tmp_path / "per-query.json", tmp_path / "big.html"
    source.write_text(json.dumps(per_query))
    assert main(["report", str(source), "--trials", "1000", "--html", str(out)]) == 0
    printed = capsys.readouterr().out
    assert f"({out.stat().st_size / 1e6:.2f} MB" in printed and "10000 queries" in printed
    watch = PageWatch(browser, block_network=True, allow=(out.as_uri(),))
    watch.page.goto(out.as_uri())
    watch.page.wait_for_selector("#per-query")
    assert watch.page.locator("#per-query tr").count() == 1 + 100  # one page of 100 rows
    assert "page 1 of 100" in watch.page.locator(".pager").first.inner_text()
    assert "MB" in watch.page.locator("header.top").inner_text()
    assert watch.errors == []
    watch.close()
