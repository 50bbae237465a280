"""Training the reasoning-chain aligner on the reference's `train_aligner.json` / `dev_aligner.json`.

The reference (jyfang6/kirag: dataset/datasets.py KGChainRetrieverSeqSampleDataset,
dataset/collators.py, retriever/retrievers.py InBatchRetriever, trainer/aligner_trainer.py):
each example is {"id", "question", "answers", "supporting_triples": [{"title", "text"}...],
"hard_negative_triples": {key: [{"title", "text"}...]}}. Hop h gives one training pair: the query
is the question alone (h = 0) or "{question}\\nknowledge triples: {'. '.join(chain[:h])}.", the
positive is the h-th supporting triple's text, and 10 hard negatives are drawn from all lists of
hard_negative_triples (repeated at random when fewer). The loss is cross-entropy over every
positive and negative in the batch with temperature 0.01 on normalised embeddings —
sentence-transformers' MultipleNegativesRankingLoss with scale 100. Dev: the positive's reciprocal
rank among its own negatives (RerankingEvaluator's MRR).

Differences, stated: the reference samples 2 of an example's chain prefixes per epoch; here every
prefix is one row and negatives are drawn once, seeded. Comparison questions' permuted chains (from
the reference's is_comparison_map.pkl) are not built: every chain is taken in its written order.
"""

from __future__ import annotations

import random
import shutil
import time
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

from kirag.core.ranges import (
    COUNT,
    COUNT_OR_ZERO,
    FRACTION,
    NON_NEGATIVE,
    POSITIVE,
    SEED,
)
from kirag.core.seeding import DEFAULT_SEED
from kirag.core.settings import check_settings, setting
from kirag.errors import InputError, KiragError
from kirag.models import DEFAULT_EMBEDDER
from kirag.rag.aligner import AlignerSettings, aligner_query

REFERENCE_TEMPERATURE = 0.01
REFERENCE_DOC_MAX = 64


@dataclass(frozen=True)
class AlignerExample:
    """One question with its chain of supporting triple texts and its hard-negative triple texts."""

    id: str
    question: str
    chain: list[str]
    negatives: list[str]


@dataclass(frozen=True)
class AlignerRow:
    """One training pair: the query (question + chain so far), the next triple, hard negatives."""

    query: str
    positive: str
    negatives: list[str]


@dataclass(frozen=True)
class TrainSettings:
    """How `kirag train aligner` fine-tunes a bi-encoder on the reference's aligner files or on
    silver chains from a question file: the reference's defaults (train_aligner.py)."""

    base_model: str = setting(
        DEFAULT_EMBEDDER, "base bi-encoder (the reference's: e5-large-v2)", flag="--model"
    )
    learning_rate: float = setting(2e-5, "peak learning rate", range=POSITIVE, flag="--lr")
    weight_decay: float = setting(0.01, "AdamW weight decay", range=NON_NEGATIVE)
    epochs: float = setting(10, "passes over the training rows", range=POSITIVE)
    warmup_ratio: float = setting(0.1, "warm-up ratio", range=FRACTION, flag="--warmup")
    batch_size: int = setting(
        8, "training rows per step (each other's in-batch negatives)", range=COUNT
    )
    accumulate: int = setting(2, "gradient accumulation steps", range=COUNT)
    grad_clip: float = setting(1.0, "gradient norm clipping", range=NON_NEGATIVE)
    query_max_length: int = setting(256, "tokens of a query", range=COUNT)
    doc_max_length: int = setting(
        REFERENCE_DOC_MAX, "tokens of a positive or negative triple", range=COUNT
    )
    num_negatives: int = setting(
        10, "hard negatives a row", range=COUNT_OR_ZERO, flag="--negatives"
    )
    seed: int = setting(DEFAULT_SEED, "random seed (the --seed flag)", range=SEED, cli=False)
    save_steps: int | None = setting(
        None, "checkpoint every N steps (default: every epoch)", range=COUNT, affects="nothing"
    )
    temperature: float = setting(
        REFERENCE_TEMPERATURE, "of the contrastive loss (its scale is 1 / it)", range=POSITIVE
    )
    # the device moves the weights at float rounding only
    device: str | None = setting(
        None, "training device (default: a GPU when there is one)", affects="rounding"
    )

    def __post_init__(self) -> None:
        check_settings(self)


def _triple_text(value: object, path: Path, line: int, what: str) -> str:
    if not isinstance(value, dict) or not isinstance(value.get("text"), str) or not value["text"]:
        raise InputError(f"{what}: expected an object with a non-empty string 'text'", path, line)
    return value["text"]


def parse_aligner_record(record: object, path: Path, line: int) -> AlignerExample:
    """One element of a reference aligner file, or InputError naming the file and line."""
    if not isinstance(record, dict):
        raise InputError("expected a JSON object", path, line)
    for key in ("question", "supporting_triples", "hard_negative_triples"):
        if key not in record:
            raise InputError(f"missing field {key!r}", path, line)
    if not isinstance(record["question"], str) or not record["question"].strip():
        raise InputError("'question' must be a non-empty string", path, line)
    support = record["supporting_triples"]
    if not isinstance(support, list) or not support:
        raise InputError("'supporting_triples' must be a non-empty list", path, line)
    negatives_by_key = record["hard_negative_triples"]
    if not isinstance(negatives_by_key, dict):
        raise InputError("'hard_negative_triples' must be an object of lists", path, line)
    chain = [_triple_text(t, path, line, "supporting_triples") for t in support]
    negatives = []
    for key, values in negatives_by_key.items():
        if not isinstance(values, list):
            raise InputError(f"hard_negative_triples[{key!r}] must be a list", path, line)
        negatives.extend(_triple_text(t, path, line, "hard_negative_triples") for t in values)
    if not negatives:
        raise InputError("no hard negative triples", path, line)
    return AlignerExample(str(record.get("id", line)), record["question"], chain, negatives)


def read_aligner_file(path: str | Path) -> list[AlignerExample]:
    """All examples of a train_aligner.json / dev_aligner.json (a JSON array), streamed."""
    from kirag.io.json_array import iter_json_array

    path = Path(path)
    if not path.is_file():
        raise InputError("no such aligner data file", path)
    examples = [parse_aligner_record(rec, path, line) for line, rec in iter_json_array(path)]
    if not examples:
        raise InputError("no examples", path)
    return examples


def reference_query(question: str, chain: Sequence[str]) -> str:
    """The reference dataset's training query: the question alone before the first triple."""
    return question.strip() if not chain else aligner_query(question, chain)


def build_rows(
    examples: Iterable[AlignerExample], num_negatives: int, seed: int, query=reference_query
) -> list[AlignerRow]:
    """One row per chain prefix; negatives drawn as the reference does (padded, then sampled)."""
    rng = random.Random(seed)
    rows = []
    for ex in examples:
        for hop, positive in enumerate(ex.chain):
            pool = list(ex.negatives)
            while len(pool) < num_negatives:
                pool.append(rng.choice(ex.negatives))
            negatives = rng.sample(pool, num_negatives)
            rows.append(AlignerRow(query(ex.question, ex.chain[:hop]), positive, negatives))
    return rows


class AlignerTrainer:
    """Fine-tunes a bi-encoder on aligner rows with sentence-transformers' trainer."""

    def __init__(self, settings: TrainSettings, device: str | None = None, progress: bool = True):
        self.settings = settings
        self.device = device
        self.progress = progress
        self.prefixes = AlignerSettings.for_model(settings.base_model)

    def _columns(self, rows: Sequence[AlignerRow], tokenizer) -> dict[str, list[str]]:
        s, p = self.settings, self.prefixes
        columns = {
            "anchor": [p.query_prefix + r.query for r in rows],
            "positive": _truncate([p.passage_prefix + r.positive for r in rows], tokenizer, s),
        }
        for i in range(s.num_negatives):
            texts = [p.passage_prefix + r.negatives[i] for r in rows]
            columns[f"negative_{i + 1}"] = _truncate(texts, tokenizer, s)
        return columns

    def train(
        self,
        train_rows: Sequence[AlignerRow],
        dev_rows: Sequence[AlignerRow],
        output: str | Path,
        checkpoints: str | Path,
        resume: bool = False,
    ) -> dict:
        """Train, save the model to `output` (save_pretrained, atomically) and return metrics."""
        from kirag.core.optional import require

        Dataset = require("datasets", "kirag", "training the aligner").Dataset
        require("sentence_transformers", "kirag", "training the aligner")
        from sentence_transformers import (
            SentenceTransformerTrainer,
            SentenceTransformerTrainingArguments,
        )
        from sentence_transformers.sentence_transformer.evaluation import RerankingEvaluator
        from sentence_transformers.sentence_transformer.losses import (
            MultipleNegativesRankingLoss,
        )

        from kirag.core.seeding import set_seed
        from kirag.models import load_sentence_transformer

        s = self.settings
        set_seed(s.seed)
        model = load_sentence_transformer(s.base_model, device=self.device)
        model.max_seq_length = s.query_max_length
        train = Dataset.from_dict(self._columns(train_rows, model.tokenizer))
        evaluator = self._evaluator(dev_rows, model.tokenizer, RerankingEvaluator)
        checkpoints = Path(checkpoints)
        if resume and not any(checkpoints.glob("checkpoint-*")):
            raise KiragError(f"{checkpoints}: no checkpoint to resume from")
        strategy = "steps" if s.save_steps else "epoch"
        args = SentenceTransformerTrainingArguments(
            output_dir=str(checkpoints),
            num_train_epochs=s.epochs,
            per_device_train_batch_size=s.batch_size,
            gradient_accumulation_steps=s.accumulate,
            learning_rate=s.learning_rate,
            weight_decay=s.weight_decay,
            warmup_steps=s.warmup_ratio,  # a float below 1: a ratio (transformers 5)
            max_grad_norm=s.grad_clip,
            seed=s.seed,
            data_seed=s.seed,
            save_strategy=strategy,
            save_steps=s.save_steps or 500,
            eval_strategy=strategy if evaluator is not None else "no",
            eval_steps=s.save_steps,
            logging_steps=10,
            report_to="none",
            disable_tqdm=not self.progress,
            use_cpu=self.device == "cpu",
        )
        loss = MultipleNegativesRankingLoss(model, scale=1 / s.temperature)
        trainer = SentenceTransformerTrainer(
            model=model, args=args, train_dataset=train, loss=loss, evaluator=evaluator
        )
        start = time.perf_counter()
        result = trainer.train(resume_from_checkpoint=True if resume else None)
        metrics = {
            "train_loss": result.training_loss,
            "steps": result.global_step,
            "train_seconds": round(time.perf_counter() - start, 1),
        }
        if evaluator is not None:
            metrics.update({f"dev_{k}": v for k, v in evaluator(model).items()})
        _save_atomically(model, Path(output))
        return metrics

    def _evaluator(self, rows: Sequence[AlignerRow], tokenizer, cls):
        if not rows:
            return None
        columns = self._columns(rows, tokenizer)
        negatives = [columns[f"negative_{i + 1}"] for i in range(self.settings.num_negatives)]
        samples = [
            {"query": q, "positive": [p], "negative": [n[j] for n in negatives]}
            for j, (q, p) in enumerate(zip(columns["anchor"], columns["positive"], strict=True))
        ]
        at_k = 1 + self.settings.num_negatives
        return cls(samples, at_k=at_k, name="dev", write_csv=False, batch_size=32)


def _truncate(texts: list[str], tokenizer, settings: TrainSettings) -> list[str]:
    """Documents cut to the reference's doc max length (sentence-transformers has one limit)."""
    limit = settings.doc_max_length - 2  # [CLS] / [SEP]
    out = []
    for text in texts:
        ids = tokenizer(text, add_special_tokens=False)["input_ids"]
        out.append(text if len(ids) <= limit else tokenizer.decode(ids[:limit]))
    return out


def _save_atomically(model, output: Path) -> None:
    """save_pretrained into a sibling temp folder, then rename over `output`."""
    tmp = output.with_name(output.name + ".tmp-save")
    if tmp.exists():
        shutil.rmtree(tmp)
    model.save_pretrained(str(tmp))
    if output.exists():
        shutil.rmtree(output)
    tmp.rename(output)


def settings_dict(settings: TrainSettings) -> dict:
    """The settings as plain JSON values (for the run config)."""
    return asdict(settings)


def _words(text: str) -> set[str]:
    import re

    return set(re.findall(r"\w+", text.lower()))


def silver_examples(questions, index, num_negatives: int = 30) -> list[AlignerExample]:
    """Silver chains from gold passages' triples in a triple index: per gold passage (ordered by
    overlap with the question), the triple sharing most words with the question and answers;
    hard negatives are the index's nearest triples to the question from other passages."""
    examples = []
    for q in questions:
        gold = list(dict.fromkeys(q.gold_doc_ids))
        if not gold:
            continue
        target = _words(q.question) | set().union(*(_words(a) for a in q.answers))
        picked = []
        for doc_id in gold:
            triples = index.triples(index.positions_of_documents([doc_id]))
            if triples:
                best = max(triples, key=lambda t: len(_words(t.text) & target))
                picked.append((len(_words(best.text) & _words(q.question)), best.text))
        if not picked:
            continue
        chain = [text for _, text in sorted(picked, key=lambda p: -p[0])]
        triples = [h.triple for h in index.search([q.question], num_negatives + 50)[0]]
        negatives = [t.text for t in triples if t.doc_id not in gold and t.text not in chain]
        if negatives:
            examples.append(AlignerExample(q.id, q.question, chain, negatives[:num_negatives]))
    return examples
