"""`kirag bench kirag --sections offline`: the offline KiRAG path as ablations, chosen honestly.

Every system is a family of settings (first stage, fusion weight, hop sources, trained parts).
Each setting runs once on every dev and test question. Within a family the setting is chosen by
leave-one-out cross-validation on the dev questions (the setting best on the others — mean of
support R@5 and R@10, then R@3, then the simpler — is scored on the one left out): that is the
family's dev-CV figure. The setting chosen on all dev questions is then scored once on the test
questions. The offline default is chosen the same way over every setting of every family, and
becomes the default only if its dev-CV R@5 and R@10 are both >= BM25's; otherwise BM25 stays.
Paired significance (kirag.eval.significance: randomisation and t-test) against BM25 and against
the family's first stage, on the dev-CV held-out scores and on the test scores; per question
type; cost (questions/min; training minutes from the trained models' kirag-config.json).
"""

from __future__ import annotations

import argparse
import itertools
import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

KS = (3, 5, 10)
# The first stages, each a family of one setting (the baselines), by the name settings use.
STAGE_FAMILY = {
    "bm25": "BM25",
    "dense": "dense (MiniLM)",
    "rrf": "RRF(BM25, dense)",
    "dense-trained": "dense (trained encoder)",
    "rrf-trained": "RRF(BM25, trained dense)",
    "routes": "BM25 + entity routes (RouteSettings' defaults)",
}
# The name `KiRAG(index, doc_retriever=...)` takes for each first stage here.
STAGE_RETRIEVER = {
    "bm25": "bm25",
    "dense": "dense",
    "rrf": "rrf",
    "routes": "bm25+routes",
}


def chains_label() -> str:
    """The chains of the aligner mode's settings, as the tables name them."""
    from kirag.rag.modes import AlignerModeSettings

    mode = AlignerModeSettings()
    return (
        f"chains ({mode.max_turns} turns, beam {mode.beam_size}, weight {mode.fusion_weights[0]:g})"
    )


def current_default() -> str:
    """The setting that is `kirag answer`'s offline default now (kirag.rag.modes'
    AlignerModeSettings): every family is also compared with it, on dev and on test."""
    from kirag.rag.modes import AlignerModeSettings

    stage = {v: k for k, v in STAGE_RETRIEVER.items()}[AlignerModeSettings().first_stage]
    return f"{stage}, {chains_label()}"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--dev", default="", help="dev questions (kirag JSONL; default: bundled)")
    parser.add_argument("--test", default="", help="test questions, scored once (kirag JSONL)")
    parser.add_argument("--encoder", default="", help="a trained encoder folder (ablation rows)")
    parser.add_argument("--aligner", default="", help="a trained aligner folder (ablation rows)")
    parser.add_argument(
        "--families",
        default="",
        help="only the settings whose 'family | setting' this regex matches (BM25 always runs)",
    )
    parser.add_argument(
        "--bm25", default="", help="BM25 index of the corpus (default: the triple index's)"
    )
    parser.add_argument(
        "--dense", default="", help="dense index of the corpus (default: the triple index's)"
    )


@dataclass
class Setting:
    """One configuration of a family: `run(question) -> ranked document ids`."""

    family: str
    name: str
    run: Callable[[str], list[str]]
    first_stage: str  # the family's first stage (a baseline family name)
    simplicity: int = 0
    scores: list[dict[int, float]] = field(default_factory=list)
    seconds: float = 0.0


def recalls(ranked: Sequence[str], gold: Sequence[str]) -> dict[int, float]:
    from kirag.eval.qa_metrics import support_recall

    return {k: support_recall(ranked, gold, k) for k in KS}


def mean(per_question: Sequence[dict[int, float]], keep: Sequence[int]) -> dict[int, float]:
    n = max(len(keep), 1)
    return {k: sum(per_question[i][k] for i in keep) / n for k in KS}


def selection_key(r: dict[int, float], simplicity: int) -> tuple:
    return (r[5] + r[10], r[3], -simplicity)


def choose(settings: Sequence[Setting], questions: Sequence[int]) -> int:
    """Index of the setting best on `questions` (ties: the simpler, then the earlier)."""
    return max(
        range(len(settings)),
        key=lambda s: (
            *selection_key(mean(settings[s].scores, questions), settings[s].simplicity),
            -s,
        ),
    )


def leave_one_out(settings: Sequence[Setting], dev: Sequence[int]) -> tuple[list[dict], dict]:
    """Held-out per-question recalls (one per dev question) and how often each setting won."""
    held, won = [], {}
    for left in dev:
        best = choose(settings, [q for q in dev if q != left])
        won[settings[best].name] = won.get(settings[best].name, 0) + 1
        held.append(settings[best].scores[left])
    return held, dict(sorted(won.items(), key=lambda kv: -kv[1]))


def significance(a: Sequence[dict], b: Sequence[dict], ids: Sequence[str]) -> dict:
    """Paired tests of b against a on R@5 and R@10 (kirag's own: randomisation and t-test)."""
    from kirag.eval.significance import compare

    out = {}
    for k in (5, 10):
        c = compare(
            f"R@{k}",
            {q: s[k] for q, s in zip(ids, a, strict=True)},
            {q: s[k] for q, s in zip(ids, b, strict=True)},
        )
        out[f"R@{k}"] = {
            "difference": round(c.difference, 4),
            "randomization_p": round(c.randomization_p, 4),
            "t_test_p": round(c.t_test_p, 4),
        }
    return out


def by_type(per_question: Sequence[dict], types: Sequence[str]) -> dict:
    out = {}
    for kind in sorted(set(types)):
        keep = [i for i, t in enumerate(types) if t == kind]
        out[kind] = {"questions": len(keep), **_r(mean(per_question, keep))}
    return out


def _r(values: dict[int, float]) -> dict[str, float]:
    return {f"R@{k}": round(v, 4) for k, v in values.items()}


# ---------------------------------------------------------------- the systems


class Memo:
    """A retriever whose answers are kept: every setting asks the same first stage the same
    questions (each setting's time then counts its own work, not the first stage again)."""

    def __init__(self, retriever):
        self.retriever = retriever
        self._kept: dict = {}
        self.docstore = getattr(retriever, "docstore", None)
        if hasattr(retriever, "encoder"):  # a dense index: the entity hop's scorer too
            self.encoder = KeptQueries(retriever.encoder)
            self.passage_vectors = retriever.passage_vectors

    def search(self, query: str, k: int = 10, with_documents: bool = False):
        if (query, k) not in self._kept:
            self._kept[(query, k)] = self.retriever.search(query, k)
        return self._kept[(query, k)]


class KeptQueries:
    """An encoder whose query vectors are kept (the same questions, every setting)."""

    def __init__(self, encoder):
        self.encoder = encoder
        self._kept: dict[str, object] = {}

    def encode_queries(self, texts):
        import numpy as np

        missing = [t for t in dict.fromkeys(texts) if t not in self._kept]
        if missing:
            self._kept.update(zip(missing, self.encoder.encode_queries(missing), strict=True))
        return np.stack([self._kept[t] for t in texts])


def build_settings(
    index, bm25, dense, encoder: str, aligner: str, workdir: Path, answers: dict
) -> list[Setting]:
    """Every family's settings over one corpus: its BM25 and dense indexes, its triple index
    (None: the chain families are left out) and the trained models, when given. Chain settings
    record (setting, question) -> (last tail, typed answer) in `answers`."""
    from kirag.knowledge.mentions import MentionLookup
    from kirag.knowledge.titles import TitleLookup
    from kirag.rag.answer_type import typed_answer
    from kirag.rag.entity_hop import (
        DenseScorer,
        EntityHop,
        EntityHopRetriever,
        HopSettings,
        LexicalScorer,
    )
    from kirag.rag.entity_routes import EntityRoutesRetriever, RouteSettings
    from kirag.rag.pipeline import KiRAG
    from kirag.retrieval.fusion import reciprocal_rank_fusion
    from kirag.retrieval.hybrid import HybridRetriever

    stages = {"bm25": Memo(bm25)}
    hop_dense = {"bm25": LexicalScorer(stages["bm25"])}
    lookups = {"titles": TitleLookup(bm25.docstore), "mentions": MentionLookup(bm25.docstore)}
    stages["routes"] = Memo(EntityRoutesRetriever(stages["bm25"], hop_dense["bm25"], **lookups))
    if dense is not None:
        stages["dense"] = Memo(dense)
        stages["rrf"] = Memo(HybridRetriever([bm25, dense], "rrf", depth=50))
        hop_dense["minilm"] = DenseScorer(stages["dense"])
    if encoder:
        trained = trained_dense_index(dense.docstore, encoder, workdir)
        stages["dense-trained"] = Memo(trained)
        stages["rrf-trained"] = Memo(HybridRetriever([bm25, trained], "rrf", depth=50))
        hop_dense["trained"] = DenseScorer(stages["dense-trained"])

    def ids(hits) -> list[str]:
        return [h.doc_id for h in hits]

    out: list[Setting] = []
    for stage, retriever in stages.items():
        family = STAGE_FAMILY[stage]
        out.append(Setting(family, family, lambda q, r=retriever: ids(r.search(q, 10)), stage))

    def hop_family(family: str, stage_names, scorers, simplicity0=0):
        grid = itertools.product(
            stage_names, scorers, (3, 5, 10), (0.88, 0.92, 0.97), (0.0, 0.15, 0.4)
        )
        for n, (stage, scorer, depth, weight, lead) in enumerate(grid):
            settings = HopSettings(source_depth=depth, weight=weight, lead_weight=lead)
            retriever = EntityHopRetriever(
                stages[stage], EntityHop(index, hop_dense[scorer], settings)
            )
            name = f"{stage} + hop[{scorer}] (top {depth}, weight {weight:g}, lead {lead:g})"
            out.append(
                Setting(
                    family,
                    name,
                    lambda q, r=retriever: ids(r.search(q, 10)),
                    stage,
                    simplicity0 + n,
                )
            )

    def routes_family(family: str):
        scorer = hop_dense["bm25"]
        grid = itertools.product((0.4, 1.0), (False, True), (1, 2), (1, 2), (2, 3, 4), (1, 2))
        for n, (named_lead, titles, sources, named_at, hop_at, count) in enumerate(grid):
            settings = RouteSettings(
                named_lead=named_lead,
                named_at=named_at,
                hop_sources=sources,
                hop_at=hop_at,
                hop_count=count,
                hop_titles=titles,
            )
            retriever = EntityRoutesRetriever(stages["bm25"], scorer, settings, **lookups)
            name = f"bm25 + routes {settings.label()}"
            run = lambda q, r=retriever: ids(r.search(q, 10))  # noqa: E731
            out.append(Setting(family, name, run, "bm25", n))

    # the trained aligner, loaded once: its settings share the triple and passage vectors it
    # encodes (kirag.rag.aligner_vectors), as a server's requests would
    trained_aligner = None
    if aligner and index is not None:
        from kirag.retrieval.dense import Encoder

        trained_aligner = Encoder(aligner)

    def chain_family(family: str, stage_names, aligner_model, hop_scorer=None, lead=0.05):
        for n, stage in enumerate(stage_names):
            first = stages[stage]
            hop = None
            if hop_scorer is not None:
                hop = EntityHop(index, hop_dense[hop_scorer], HopSettings(lead_weight=lead))
                first = EntityHopRetriever(first, hop)
            pipeline = KiRAG(index, mode="aligner", aligner=aligner_model, doc_retriever=first)
            label = f"{stage}{' + hop' if hop else ''}, {chains_label()}"

            def run(q, p=pipeline, h=hop, label=label):
                result = p.retrieve(q, k=10)
                ranked = result.hits
                chain = result.best_chain.triples if result.best_chain else []
                answers[(label, q)] = (
                    result.answer_candidate or "",
                    typed_answer(q, chain) or "",
                )
                if h is not None and result.best_chain is not None:
                    hopped = h.from_chain(q, result.best_chain.triples)
                    ranked = reciprocal_rank_fusion([ranked, hopped], weights=[1.0, 0.5], depth=10)
                return ids(ranked)

            out.append(Setting(family, label, run, stage, 100 + n))

    routes_family("BM25 + entity routes, no chains")
    if dense is None:
        hop_family("first stage + entity hop, no chains", ("bm25",), ("bm25",))
        return out
    hop_family("first stage + entity hop, no chains", ("bm25", "rrf"), ("minilm", "bm25"))
    if encoder:
        hop_family(
            "trained encoder: first stage + entity hop", ("bm25", "rrf-trained"), ("trained",)
        )
    if index is None:
        return out  # no triple index: no chains
    chain_family("chains, untrained aligner", ("bm25", "rrf", "routes"), None)
    chain_family("chains + entity hop, untrained", ("bm25", "rrf"), None, "minilm")
    if aligner:
        chain_family("trained aligner: chains", ("bm25", "routes"), trained_aligner)
        chain_family(
            "trained aligner: chains + entity hop", ("bm25", "rrf"), trained_aligner, "minilm"
        )
    if encoder and aligner:
        chain_family("trained encoder + aligner: chains", ("rrf-trained",), trained_aligner)
        chain_family(
            "trained encoder + aligner: chains + entity hop", ("bm25", "rrf-trained"),
            trained_aligner, "trained",
        )  # fmt: skip
    return out


def trained_dense_index(docstore, encoder: str, workdir: Path):
    """A dense index of the corpus with the trained encoder (built once)."""
    from kirag.retrieval.dense import DenseRetriever

    folder = workdir / f"dense-{Path(encoder).name}"
    if not (folder / "manifest.json").exists():
        DenseRetriever.build(list(docstore), folder, model=encoder, overwrite=True)
    return DenseRetriever(folder)


def training_minutes(path: str) -> float | None:
    """The training time a trained model folder's kirag-config.json recorded, in minutes."""
    config = Path(path) / "kirag-config.json"
    if not path or not config.exists():
        return None
    seconds = json.loads(config.read_text()).get("results", {}).get("train_seconds")
    return round(seconds / 60, 2) if seconds else None


# ---------------------------------------------------------------- the run


def run_offline(args: argparse.Namespace) -> dict:
    import re

    from kirag.eval.datasets import load_bundled_questions, load_kirag_questions
    from kirag.knowledge.triple_index import TripleIndex
    from kirag.retrieval.factory import load_retriever

    dev = load_kirag_questions(args.dev) if args.dev else load_bundled_questions()
    test = load_kirag_questions(args.test) if args.test else []
    questions = dev + test
    dev_ix, test_ix = list(range(len(dev))), list(range(len(dev), len(questions)))
    types = [q.metadata.get("type", "bridge") for q in questions]
    index = TripleIndex(args.index) if (Path(args.index) / "manifest.json").exists() else None
    if index is None and not args.bm25:
        from kirag.errors import KiragError

        raise KiragError(f"{args.index}: no triple index; build it or give --bm25 (and --dense)")
    documents = index.document_retrievers() if index is not None else {}
    bm25 = load_retriever(args.bm25) if args.bm25 else documents["bm25"]
    dense = load_retriever(args.dense) if args.dense else documents.get("dense")
    workdir = Path(args.workdir)
    answers: dict = {}
    settings = build_settings(index, bm25, dense, args.encoder, args.aligner, workdir, answers)
    if args.families:
        keep = re.compile(args.families)
        settings = [
            s for s in settings if keep.search(f"{s.family} | {s.name}") or s.family == "BM25"
        ]
    from kirag.core.progress import progress

    for s in progress(settings, desc="offline settings", unit="setting"):
        start = time.perf_counter()
        s.scores = [recalls(s.run(q.question), q.gold_doc_ids) for q in questions]
        s.seconds = time.perf_counter() - start
    families: dict[str, list[Setting]] = {}
    for s in settings:
        families.setdefault(s.family, []).append(s)
    bm25 = families["BM25"][0]
    current = next((s for s in settings if s.name == current_default()), None)
    dev_ids = [questions[i].id for i in dev_ix]
    test_ids = [questions[i].id for i in test_ix]

    def report(members: list[Setting]) -> dict:
        held, won = leave_one_out(members, dev_ix)
        chosen = members[choose(members, dev_ix)]
        first = families.get(STAGE_FAMILY[chosen.first_stage], [bm25])[0]
        row = {
            "settings": len(members),
            "dev_cv": _r(mean(held, range(len(held)))),
            "dev_cv_chosen_per_fold": won,
            "chosen_on_all_dev": chosen.name,
            "dev_fitted": _r(mean(chosen.scores, dev_ix)),
            "dev_cv_by_type": by_type(held, [types[i] for i in dev_ix]),
            "dev_cv_vs_bm25": significance([bm25.scores[i] for i in dev_ix], held, dev_ids),
            "dev_cv_vs_first_stage": {
                "first_stage": first.name,
                **significance([first.scores[i] for i in dev_ix], held, dev_ids),
            },
            "questions_per_minute": round(60 * len(questions) / max(chosen.seconds, 1e-9), 1),
        }
        if current is not None:  # the bar a new default must clear on dev (its dev scores)
            row["dev_cv_vs_current_default"] = {
                "current_default": current.name,
                **significance([current.scores[i] for i in dev_ix], held, dev_ids),
            }
        if any((chosen.name, questions[i].question) in answers for i in dev_ix):
            row["answers_em"] = answer_em(answers, chosen.name, questions, dev_ix, test_ix)
        if test_ix:
            scores = [chosen.scores[i] for i in test_ix]
            row |= {
                "test": _r(mean(scores, range(len(scores)))),
                "test_by_type": by_type(scores, [types[i] for i in test_ix]),
                "test_vs_bm25": significance([bm25.scores[i] for i in test_ix], scores, test_ids),
                "test_vs_first_stage": {
                    "first_stage": first.name,
                    **significance([first.scores[i] for i in test_ix], scores, test_ids),
                },
            }
            if current is not None:
                row["test_vs_current_default"] = {
                    "current_default": current.name,
                    **significance([current.scores[i] for i in test_ix], scores, test_ids),
                }
        return row

    out = {
        "dev_questions": len(dev),
        "test_questions": len(test),
        "dev": args.dev or "bundled (kirag/data/multihop_enwiki.jsonl)",
        "triple_index": str(args.index) if index is not None else None,
        "test": args.test or None,
        "selection": "leave-one-out on dev; key: R@5 + R@10, then R@3, then the simpler setting",
        "families": {name: report(members) for name, members in families.items()},
        "training_minutes": {
            "encoder": training_minutes(args.encoder),
            "aligner": training_minutes(args.aligner),
        },
        "training_configs": {  # what each trained part is: its kirag-config.json, whole
            part: json.loads((Path(path) / "kirag-config.json").read_text())
            for part, path in (("encoder", args.encoder), ("aligner", args.aligner))
            if path and (Path(path) / "kirag-config.json").exists()
        },
    }
    every = report(settings)
    bm25_cv = out["families"]["BM25"]["dev_cv"]
    becomes = (
        every["dev_cv"]["R@5"] >= bm25_cv["R@5"] and every["dev_cv"]["R@10"] >= bm25_cv["R@10"]
    )
    out["offline_default"] = every | {
        "becomes_default": becomes,
        "rule": "default only if dev-CV R@5 and R@10 are both >= BM25's; otherwise BM25 stays",
    }
    out["all_settings_dev"] = [
        {"family": s.family, "setting": s.name, **_r(mean(s.scores, dev_ix))} for s in settings
    ]
    # every setting's R@5 / R@10 per question (dev, then test): paired tests across runs
    out["per_question"] = {
        "ids": [q.id for q in questions],
        "settings": {f"{s.family} | {s.name}": [[x[5], x[10]] for x in s.scores] for s in settings},
    }
    out["markdown"] = markdown(out)
    return out


def answer_em(answers: dict, setting: str, questions, dev_ix, test_ix) -> dict:
    """Exact match of the chain's last tail and of the typed answer (no reader), dev and test."""
    from kirag.eval.qa_metrics import exact_match

    out = {}
    for split, keep in (("dev", dev_ix), ("test", test_ix)):
        if keep:
            pairs = [(questions[i], answers[(setting, questions[i].question)]) for i in keep]
            out[split] = {
                "tail": round(sum(exact_match(a[0], q.answers) for q, a in pairs) / len(pairs), 4),
                "typed": round(sum(exact_match(a[1], q.answers) for q, a in pairs) / len(pairs), 4),
            }
    return out


def markdown(out: dict) -> str:
    """The ablation table: dev-CV and test figures per family."""
    lines = [
        "| system (setting chosen on dev) | dev-CV R@3 | dev-CV R@5 | dev-CV R@10 | test R@5 | "
        "test R@10 | test p vs BM25 (R@5 / R@10) | q/min |",
        "|---|---|---|---|---|---|---|---|",
    ]
    rows = {**out["families"], "offline default (chosen over all settings)": out["offline_default"]}
    for name, row in rows.items():
        cv, test = row["dev_cv"], row.get("test", {})
        p = row.get("test_vs_bm25", {})
        p_text = f"{p['R@5']['randomization_p']} / {p['R@10']['randomization_p']}" if p else "—"
        lines.append(
            f"| {name}: {row['chosen_on_all_dev']} | {cv['R@3']} | {cv['R@5']} | {cv['R@10']} | "
            f"{test.get('R@5', '—')} | {test.get('R@10', '—')} | {p_text} | "
            f"{row['questions_per_minute']} |"
        )
    return "\n".join(lines)


def paired_across_runs(runs: Sequence[dict], pairs: Sequence[tuple[str, str]]) -> dict:
    """Paired tests between settings of different `kirag bench kirag --sections offline` runs
    on the same questions (their "per_question" records, keyed "family | setting"): for each
    (baseline, system) pair, on the dev questions (the runs' dev split) and on the test ones."""
    ids, found, dev_n = None, {}, None
    for run in runs:
        offline = run.get("offline", run)
        if ids is not None and offline["per_question"]["ids"] != ids:
            raise ValueError("the runs were not made on the same questions")
        ids, dev_n = offline["per_question"]["ids"], offline["dev_questions"]
        found.update(offline["per_question"]["settings"])
    out = {}
    for baseline, system in pairs:
        a = [{5: r[0], 10: r[1]} for r in found[baseline]]
        b = [{5: r[0], 10: r[1]} for r in found[system]]
        out[f"{system} vs {baseline}"] = {
            split: significance(a[part], b[part], ids[part])
            for split, part in (("dev", slice(0, dev_n)), ("test", slice(dev_n, None)))
        }
    return out
