"""`kirag eval`: evaluate runs against judgments (ranking) or answers against a QA dataset."""

from __future__ import annotations

import argparse
from pathlib import Path

from kirag.cli.arguments import INPUT, OUTPUT
from kirag.cli.common import add_command, add_on_error, on_error
from kirag.cli.report import add_html, write_report
from kirag.core.ranges import COUNT
from kirag.eval.submission import QA_TARGETS

EPILOG = """\
examples:
  kirag eval --run bm25.trec --qrels qrels.dl19-passage.txt --preset dl
  kirag eval --run bm25.trec --run rerank.trec --qrels qrels.txt --metrics nDCG@10 MRR@10 --plot diff.png
  kirag eval --run run.tsv --qrels qrels.dev.small.tsv --preset msmarco
  kirag eval --predictions preds.json --questions hotpot_dev_distractor_v1.json
presets: dl = nDCG@10, MAP, R@1000 with binary relevance at grade >= 2 (TREC DL passage);
         msmarco = MRR@10 as the official MS MARCO script computes it, R@1000;
         beir = nDCG@10, R@100.
"""

PRESETS = {
    "dl": {"metrics": ["nDCG@10", "MAP", "R@1000"], "rel_level": 2},
    "msmarco": {"metrics": ["MRR@10", "R@1000"], "rel_level": None},
    "beir": {"metrics": ["nDCG@10", "R@100"], "rel_level": None},
}


def register(subparsers) -> None:
    parser = add_command(
        subparsers, "eval", help="evaluate runs or answers against judgments", epilog=EPILOG
    )
    parser.add_argument(
        "--run",
        type=INPUT,
        action="append",
        help="run file (TREC, MS MARCO TSV or JSONL); repeat to compare, the first is the baseline",
    )
    parser.add_argument("--qrels", type=INPUT, help="judgments (TREC qrels or BEIR TSV)")
    parser.add_argument(
        "--metrics",
        nargs="+",
        type=metric_name,
        help="metrics, e.g. MRR@10 nDCG@10 MAP R@1000 P@10 (default: the preset's)",
    )
    parser.add_argument("--preset", choices=list(PRESETS), help="metric conventions of a benchmark")
    parser.add_argument(
        "--rel-level", type=COUNT, help="grade from which binary metrics count a document relevant"
    )
    parser.add_argument(
        "--missing",
        choices=["zero", "skip"],
        default="zero",
        help="judged queries absent from a run: count 0 (trec_eval -c, default) or leave out",
    )
    parser.add_argument(
        "--predictions",
        type=INPUT,
        help="QA predictions (HotpotQA/2Wiki JSON, MuSiQue JSONL) to score",
    )
    parser.add_argument(
        "--questions", type=INPUT, help="the QA dataset file the predictions answer"
    )
    parser.add_argument(
        "--aliases",
        type=INPUT,
        help="2WikiMultiHopQA's id_aliases.json (answer and evidence aliases)",
    )
    parser.add_argument(
        "--target",
        choices=["auto", *QA_TARGETS],
        default="auto",
        help="the benchmark: how the dataset file is read and the predictions' format "
        "(auto: detected from the dataset file)",
    )
    parser.add_argument("--per-query", type=OUTPUT, help="write per-query values as JSON here")
    parser.add_argument(
        "--output", type=OUTPUT, help="write the results (aggregates, comparisons) as JSON here"
    )
    parser.add_argument(
        "--plot",
        type=OUTPUT,
        help="PNG of per-query differences of the first metric between the first two runs",
    )
    parser.add_argument("--trials", type=COUNT, default=10_000, help="randomisation-test trials")
    parser.add_argument(
        "--check",
        action="store_true",
        help="first check each run (rank order, score order, ties) and print what trec_eval "
        "would silently reorder; the metrics are still printed, and the exit status is 1 when "
        "a check found an error",
    )
    add_html(parser)
    add_on_error(parser)
    parser.set_defaults(func=run)


def metric_name(text: str) -> str:
    """argparse's type of --metrics: the name's form and cutoff checked before anything runs."""
    from kirag.errors import KiragError
    from kirag.eval.metrics import check_metric_name

    try:
        return check_metric_name(text)
    except KiragError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def run(args: argparse.Namespace) -> int:
    from kirag.errors import KiragError

    if args.html and not (args.run and args.qrels):
        raise KiragError("--html reports runs evaluated with --qrels (kirag report does answers)")
    if args.predictions:
        if not args.questions:
            raise KiragError("--predictions needs --questions (the dataset file)")
        results = _evaluate_qa(args)
    elif args.run and args.qrels:
        results = _evaluate_runs(args)
    else:
        raise KiragError("give --run and --qrels (ranking) or --predictions and --questions (QA)")
    output = args.output or args.per_query or getattr(args, "plot", None)
    if args.output:
        from kirag.core.atomic import write_json

        write_json(args.output, {k: v for k, v in results.items() if k != "per_query"})
    if args.per_query:
        from kirag.core.atomic import write_json

        write_json(args.per_query, results.get("per_query", {}))
    if output:
        from kirag.core.runconfig import RunConfig

        settings = {k: v for k, v in vars(args).items() if k != "func"}
        RunConfig(
            "eval",
            settings,
            results={k: v for k, v in results.items() if k in ("aggregate", "comparisons")},
        ).write(output)
    if results.get("check_errors"):
        print(f"check: {results['check_errors']} errors found (listed above): exit status 1")
        return 1
    return 0


def _evaluate_runs(args: argparse.Namespace) -> dict:
    from kirag.eval.metrics import EvalResult, evaluate, msmarco_mrr10, parse_metric
    from kirag.eval.report import comparisons, metrics_table, plot_differences
    from kirag.eval.runs import read_run_scores
    from kirag.io.qrels import read_qrels

    preset = PRESETS.get(args.preset or "", {})
    metrics = args.metrics or preset.get("metrics") or ["nDCG@10", "MRR@10", "MAP", "R@1000"]
    rel_level = args.rel_level if args.rel_level is not None else preset.get("rel_level")
    for metric in metrics:  # an unknown metric fails before any file is read
        parse_metric(metric, rel_level)
    qrels = read_qrels(args.qrels, on_error=on_error(args))
    official_mrr = args.preset == "msmarco"
    results = {}
    check_errors = 0
    for path in args.run:
        if args.check:
            check_errors += _check_run(path)
        scores = read_run_scores(path)
        trec_metrics = [m for m in metrics if not (official_mrr and m.upper() == "MRR@10")]
        result = (
            evaluate(scores, qrels, trec_metrics, rel_level=rel_level, missing=args.missing)
            if trec_metrics
            else EvalResult(
                {}, {}, len(qrels), missing_queries=[q for q in qrels if q not in scores]
            )
        )
        if official_mrr and any(m.upper() == "MRR@10" for m in metrics):
            del scores
            value, per_query = msmarco_mrr10(read_run_scores(path, value="rank"), qrels)
            result.aggregate = {"MRR@10": value, **result.aggregate}
            for qid, rr in per_query.items():
                result.per_query.setdefault(qid, {})["MRR@10"] = rr
        if result.missing_queries:
            how = (
                "counted as 0"
                if args.missing == "zero"
                else "left out (--missing skip; the official MS MARCO MRR@10 counts them 0)"
                if official_mrr
                else "left out (--missing skip)"
            )
            print(
                f"note: {path}: {len(result.missing_queries)} judged queries have no results, {how}"
            )
        if result.unjudged_queries:
            print(f"note: {path}: {len(result.unjudged_queries)} queries without judgments ignored")
        results[_label(path, results)] = result
    print(metrics_table(results, trials=args.trials))
    if args.plot:
        if len(results) < 2:
            from kirag.errors import KiragError

            raise KiragError("--plot needs two runs (--run A --run B)")
        names = list(results)[:2]
        metric = next(iter(results[names[0]].aggregate))
        plot_differences(results[names[0]], results[names[1]], metric, args.plot, labels=names)
        print(f"wrote {args.plot}")
    if args.html:
        from kirag.eval.runs import read_run
        from kirag.report.records import curves_of, eval_payload

        runs = dict(zip(results, (read_run(p) for p in args.run), strict=True))
        curves = curves_of(runs, qrels, rel_level)
        write_report(eval_payload(results, curves, trials=args.trials), args.html)
    return {
        "aggregate": {name: r.aggregate for name, r in results.items()},
        "queries": {name: r.queries for name, r in results.items()},
        "missing_queries": {name: len(r.missing_queries) for name, r in results.items()},
        "unjudged_queries": {name: len(r.unjudged_queries) for name, r in results.items()},
        "comparisons": comparisons(results, trials=args.trials) if len(results) > 1 else [],
        "per_query": {name: r.per_query for name, r in results.items()},
        "check_errors": check_errors,
    }


def _check_run(path: str) -> int:
    """Print the problems of one run; how many are errors. Queries with no judgments, and
    judged queries with no results, are the evaluation's own notes (qrels are not topics)."""
    from kirag.eval.runs import read_run, validate_run

    report = validate_run(read_run(path, sort=False))
    for problem in report.problems[:20]:
        print(f"check: {path}: {problem}")
    if len(report.problems) > 20:
        print(f"check: {path}: ... and {len(report.problems) - 20} more")
    if not report.problems:
        print(f"check: {path}: no problems")
    return len(report.errors)


def _label(path: str, taken: dict) -> str:
    label = Path(path).name
    return label if label not in taken else f"{label}#{len(taken)}"


def _evaluate_qa(args: argparse.Namespace) -> dict:
    from kirag.eval.datasets import load_questions, qa_format_for_target
    from kirag.eval.qa_evaluation import evaluate_predictions
    from kirag.eval.submission import read_qa_predictions

    fmt = qa_format_for_target(args.questions, args.target)
    examples = load_questions(args.questions, fmt, aliases=args.aliases)
    target = "hotpotqa" if fmt == "kirag" else fmt
    predictions = read_qa_predictions(target, args.predictions)
    result = evaluate_predictions(predictions, examples)
    width = max(len(k) for k in result["aggregate"])
    for metric, value in result["aggregate"].items():
        print(f"{metric:<{width}}  {value:.4f}")
    lacking = ", ".join(
        f"{n} without {part}" for part, n in result.get("missing_parts", {}).items()
    )
    print(
        f"questions: {result['questions']}, missing predictions: "
        f"{len(result['missing_predictions'])}{f' ({lacking})' if lacking else ''}"
    )
    return {
        "aggregate": result["aggregate"],
        "per_query": result["per_question"],
        "missing_predictions": result["missing_predictions"],
    }
