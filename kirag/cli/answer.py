"""`kirag answer`: answer multi-hop questions with KiRAG over a triple index.

The offline default ("aligner" mode) builds chains with the aligner alone and answers with the
chain's last tail entity; `--constructor MODEL` switches to kirag's LLM constructor ("llm") and
`--reader MODEL` answers with an LLM from the top documents. `--mode reference` runs the paper's
algorithm (jyfang6/kirag) with its prompts, numbers and reader.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from kirag.cli.arguments import INPUT, OUTPUT
from kirag.cli.common import (
    add_command,
    add_seed,
    add_server,
    prepare_output,
    served_settings,
    server_options,
)
from kirag.cli.report import add_html, write_report
from kirag.core.settings import add_arguments, add_per_mode_arguments, per_mode_options
from kirag.eval.submission import QA_TARGETS
from kirag.llm.settings import EngineSettings
from kirag.rag.answering import AnswerSettings
from kirag.rag.modes import MODES
from kirag.rag.reader import ReaderSettings
from kirag.rerank.rank1 import Rank1Settings

EPILOG = """\
examples:
  kirag answer --index indexes/enwiki-triples --question "Where was the president born who appointed Andrew Johnson military governor of Tennessee?"
  kirag answer --index indexes/enwiki-triples --questions questions.jsonl --answers answers.jsonl --output preds.json
  kirag answer --index indexes/hotpot-triples --questions hotpot_dev_distractor_v1.json --output preds.json \\
      --constructor Llama-3.1-8B-Instruct --reader Llama-3.1-8B-Instruct --engine vllm      # a GPU machine
"""


def register(subparsers) -> None:
    parser = add_command(
        subparsers, "answer", help="answer multi-hop questions with KiRAG", epilog=EPILOG
    )
    parser.add_argument(
        "--index", type=INPUT, required=True, help="triple index folder (kirag index triples)"
    )
    what = parser.add_mutually_exclusive_group(required=True)
    what.add_argument("--question", help="one question: the answer and its chain are printed")
    parser.add_argument(
        "--expect",
        action="append",
        metavar="ANSWER",
        help="with --question: a gold answer (repeatable); prints whether the answer is right",
    )
    what.add_argument(
        "--questions",
        type=INPUT,
        help="HotpotQA / 2Wiki JSON, MuSiQue JSONL or kirag multi-hop JSONL",
    )
    parser.add_argument(
        "--output", type=OUTPUT, help="official prediction file (format from --format)"
    )
    parser.add_argument(
        "--answers",
        type=OUTPUT,
        help="kirag's answers JSONL: answer, documents, chains (what `kirag submit qa` reads)",
    )
    parser.add_argument(
        "--format",
        default="auto",
        choices=["auto", *QA_TARGETS],
        help="prediction format (auto: the dataset's)",
    )
    add_kirag_models(parser)
    add_arguments(
        parser, EngineSettings, only=("engine",), title="LLM engine (constructor, reader, --rerank)"
    )
    parser.add_argument(
        "--aligner",
        default=None,
        help="bi-encoder scoring candidate triples (default: the index's encoder)",
    )
    parser.add_argument(
        "--aligner-tokenizer",
        default=None,
        help="base model whose tokenizer a trained aligner folder without one uses",
    )
    parser.add_argument(
        "--aligner-family",
        default=None,
        choices=["e5", "bge", "none"],
        help="reference mode: the aligner's prefixes and lengths (default: read from the model's "
        "name, saved config and tokenizer; e5 'query: '/'passage: ', bge its instruction)",
    )
    parser.add_argument(
        "--demonstration-encoder",
        default=None,
        help="reference mode: the model ranking the constructor's demonstrations with the "
        "reference's E5 settings ('query: ', 128 tokens; the reference: intfloat/e5-large-v2; "
        "default: the index's encoder)",
    )
    parser.add_argument(
        "--demonstrations",
        type=INPUT,
        default=None,
        help="reference mode: demonstration pool JSON (default: the shipped Wikipedia pool)",
    )
    parser.add_argument(
        "--dataset",
        default="wikipedia",
        help="reference mode: which pool of the demonstration file (default wikipedia)",
    )
    add_per_mode_arguments(parser, MODES)
    parser.add_argument(
        "--no-graph", action="store_true", help="no entity-graph expansion of the candidates"
    )
    add_arguments(parser, AnswerSettings)
    add_arguments(parser, ReaderSettings, only=("k",))
    parser.add_argument(
        "--rerank", default=None, help="rerank the chain's documents with Rank1 using this model"
    )
    # that reranker's thinking budget: Rank1's, spelled for this command, 0 (answer at once)
    add_arguments(
        parser,
        Rank1Settings,
        only=("thinking_budget",),
        defaults={"thinking_budget": 0},
        flags={"thinking_budget": "--rerank-budget"},
    )
    add_html(parser)
    add_server(parser)
    add_seed(parser)
    parser.set_defaults(func=run)


def add_kirag_models(parser) -> None:
    """KiRAG's mode and LLMs (kirag answer, kirag serve --kirag)."""
    parser.add_argument(
        "--mode",
        default="auto",
        choices=["auto", *MODES],
        help="auto: llm when --constructor is given, else aligner; reference: the paper's "
        "algorithm (jyfang6/kirag), constructor and reader default to the packaged tiny model",
    )
    parser.add_argument(
        "--constructor",
        default=None,
        help="LLM that writes each next step (llm and reference modes)",
    )
    parser.add_argument(
        "--reader",
        default=None,
        help="LLM that answers from the top documents (default: the chain's answer)",
    )


def build_kirag(args: argparse.Namespace):
    from kirag.rag.pipeline import KiRAG

    options = server_options(args)
    reranker = None
    if args.rerank:
        from kirag.rerank.factory import load_reranker

        reranker = load_reranker(
            "rank1",
            args.rerank,
            engine=args.engine,
            thinking_budget=args.rerank_budget,
            engine_options=options,
        )
    return KiRAG(
        args.index,
        mode=args.mode,
        constructor_model=args.constructor,
        reader_model=args.reader,
        engine=args.engine,
        aligner=args.aligner,
        reader_k=args.reader_k,
        reranker=reranker,
        aligner_tokenizer=args.aligner_tokenizer,
        demonstrations=args.demonstrations,
        dataset=args.dataset,
        **({"graph_expansion": False} if args.no_graph else {}),
        **(
            {
                "aligner_family": args.aligner_family,
                "demonstration_encoder": args.demonstration_encoder,
            }
            if args.mode == "reference"
            else {}
        ),
        engine_options=options,
        **per_mode_options(args, MODES),
    )


def run(args: argparse.Namespace) -> int:
    from kirag.core.seeding import set_seed

    set_seed(args.seed)
    for output in (args.output, getattr(args, "answers", None), args.html):
        prepare_output(output)
    kirag = build_kirag(args)
    if args.question:
        answer = kirag.answer(args.question, k=args.k)
        print_answer(answer)
        if args.html:
            _write_html(args.html, kirag, [answer], [None])
        if args.expect:
            from kirag.eval.qa_metrics import exact_match, f1_score

            right = exact_match(answer.answer, args.expect)
            print(
                f"right: {'yes' if right else 'no'} (gold: {' | '.join(args.expect)}; "
                f"token F1 {f1_score(answer.answer, args.expect):.2f})"
            )
        return 0
    return _answer_file(args, kirag)


def _write_html(path: str, kirag, answers, examples) -> None:
    """The KiRAG report of these answers (kirag report's), with gold answers and support."""
    from kirag.report.records import answer_record, kirag_item, kirag_payload, store_documents

    documents = store_documents(kirag.index.docstore)
    items = [
        kirag_item(answer_record(a, e.id if e is not None else str(n)), documents, e)
        for n, (a, e) in enumerate(zip(answers, examples, strict=True), 1)
    ]
    write_report(kirag_payload(items), path)


def print_answer(answer, documents: int = 3) -> None:
    """The answer, its best reasoning chain and the top documents, for a terminal."""
    print(f"Q: {answer.question}")
    print(f"A: {answer.answer or '(no answer)'}   [{answer.answered_by}]")
    chain = answer.result.best_chain
    if chain is not None and chain.steps:  # reference mode: the constructor's own steps
        print("chain:")
        for step, text in enumerate(chain.steps, 1):
            print(f"  {step}. {' '.join(text.split()) or '(empty: stop)'}")
    elif chain is not None and chain.triples:
        print("chain:")
        for step in chain.records:
            print(f"  {step.step}. {step.triple}  ({step.doc_id}, {step.score:.3f})")
    print("documents:")
    for hit in answer.hits[:documents]:
        print(f"  {hit.rank}. {hit.doc_id}")


def _answer_file(args: argparse.Namespace, kirag) -> int:
    from kirag.core.runconfig import RunConfig
    from kirag.eval.datasets import detect_qa_format, load_questions
    from kirag.eval.qa_answers import answer_predictions, answer_scores, write_answers
    from kirag.eval.submission import write_qa_predictions
    from kirag.rag.answering import answer_questions

    examples = load_questions(args.questions)
    dataset = detect_qa_format(Path(args.questions))
    target = (
        args.format if args.format != "auto" else ("hotpotqa" if dataset == "kirag" else dataset)
    )
    started = time.perf_counter()
    answers = answer_questions(kirag, [e.question for e in examples], k=args.k)
    seconds = time.perf_counter() - started
    predictions = answer_predictions(examples, answers, args.reader_k)
    results = {
        "questions": len(examples),
        "seconds": round(seconds, 2),
        "questions_per_minute": round(60 * len(examples) / max(seconds, 1e-9), 2),
        "llm_calls_per_question": round(
            sum(a.to_dict()["llm_calls"] for a in answers) / max(len(answers), 1), 2
        ),
        "mode": kirag.mode,
    }
    if all(e.answers for e in examples):
        results["scores"] = answer_scores(examples, answers)
        print(json.dumps(results["scores"]))
    outputs = []
    if args.answers:
        write_answers(args.answers, examples, answers, predictions)
        outputs.append(args.answers)
    if args.output:
        write_qa_predictions(target, predictions, args.output, [e.id for e in examples])
        outputs.append(args.output)
    if args.html:
        _write_html(args.html, kirag, answers, examples)
        outputs.append(args.html)
    settings = {k: v for k, v in vars(args).items() if k != "func"}
    settings |= served_settings()
    for output in outputs:
        RunConfig("answer", settings, results=results).write(output)
    print(
        f"answered {len(examples)} questions in {seconds:.1f}s ({results['questions_per_minute']} questions/min); wrote {', '.join(outputs) or 'nothing (no --output / --answers)'}"
    )
    return 0
