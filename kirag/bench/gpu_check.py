"""`kirag bench gpu-check` (`make gpu-check`): what a lent GPU machine runs of kirag, checked
against its own CPU in one short run (a few minutes): Rank1 on the transformers engine in fp16
(and bf16) on CUDA vs fp32 on the CPU on the same pairs (P(true) difference, per-query Kendall τ,
top-k overlap, pairs/s), dense encoding on the GPU vs the CPU (cosine agreement, retrieval
overlap, passages/s), the other GPU paths the machine offers, and which installed libraries fall
outside kirag's version ranges (the check runs anyway and says so). `--cpu-only` runs the same
code with the CPU on both sides (bf16 vs fp32 for Rank1, fp32 twice for encoding): it needs no
GPU, and CI runs it.

The GPU machines have no SciPy, FAISS, bm25s or packaged models: the pairs come from the bundled
multi-hop questions and their supporting passages (each question's own and other questions'),
read from the bundled corpus, and models are named by path when their packages are absent."""

from __future__ import annotations

import argparse
import importlib.metadata
import time

from kirag.core.ranges import COUNT
from kirag.models import DEFAULT_EMBEDDER, DEFAULT_LLM

# what the GPU machines bring themselves (kirag installs there with --no-deps over them)
GPU_MACHINE_DISTRIBUTIONS = (
    "torch",
    "transformers",
    "sentence-transformers",
    "accelerate",
    "gguf",
    "numpy",
)
REFERENCE = ("cpu", "float32")  # the numerical reference: fp32 on the CPU
TOP_DEPTH = 10


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--llm", default=DEFAULT_LLM, help="Rank1 model (name, .gguf or folder)")
    parser.add_argument("--encoder", default=DEFAULT_EMBEDDER, help="sentence-transformers model")
    parser.add_argument("--questions", type=COUNT, default=8, help="bundled questions for Rank1")
    parser.add_argument(
        "--per-question", type=COUNT, default=6, help="passages per question (its own first)"
    )
    parser.add_argument("--budgets", default="0,32", help="Rank1 thinking budgets")
    parser.add_argument(
        "--gpu-dtypes", default="float16,bfloat16", help="dtypes of Rank1 on the GPU"
    )
    parser.add_argument("--passages", type=COUNT, default=512, help="passages to encode")
    parser.add_argument(
        "--cpu-only",
        action="store_true",
        help="the CPU on both sides (no GPU needed): checks the machinery, as CI does",
    )


def version_report(distributions=GPU_MACHINE_DISTRIBUTIONS) -> dict:
    """Each distribution's installed version beside kirag's ranges for it (from kirag's own
    metadata, every extra); `outside` lists those kirag's ranges do not admit."""
    from packaging.requirements import Requirement

    wanted = {name: [] for name in distributions}
    for line in importlib.metadata.requires("kirag") or []:
        requirement = Requirement(line)
        spec = str(requirement.specifier)
        if requirement.name in wanted and spec and spec not in wanted[requirement.name]:
            wanted[requirement.name].append(spec)
    rows, outside = {}, []
    for name, ranges in wanted.items():
        try:
            installed = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            rows[name] = {"installed": None, "kirag_ranges": ranges}
            continue
        from packaging.specifiers import SpecifierSet

        admitted = all(installed in SpecifierSet(r, prereleases=True) for r in ranges)
        rows[name] = {"installed": installed, "kirag_ranges": ranges, "admitted": admitted}
        if not admitted:
            outside.append(f"{name} {installed} (kirag: {' and '.join(ranges)})")
    return {"distributions": rows, "outside": outside}


def environment() -> dict:
    import platform

    import torch

    info = {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "torch_cuda": torch.version.cuda,
        "cuda_available": bool(torch.cuda.is_available()),
    }
    if info["cuda_available"]:
        info["gpus"] = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
    return info


def other_gpu_paths() -> dict:
    """The GPU paths kirag has besides transformers, and whether this machine can take them."""
    from kirag.core.optional import is_available

    out = {
        name: is_available(module)
        for name, module in (("vllm", "vllm"), ("llama_cpp", "llama_cpp"), ("faiss", "faiss"))
    }
    if is_available("onnxruntime"):
        import onnxruntime

        out["onnxruntime_providers"] = onnxruntime.get_available_providers()
    return out


def rank1_pairs(questions: int, per_question: int) -> tuple[list[tuple[str, str, str, str]], dict]:
    """(qid, question, doc_id, passage): each bundled question with its supporting passages
    first, then other questions' supporting passages, `per_question` in all; and the gold."""
    from kirag.eval.datasets import load_bundled_questions
    from kirag.io.corpus import read_corpus

    chosen = load_bundled_questions()[:questions]
    pool = list(dict.fromkeys(d for q in chosen for d in q.gold_doc_ids))
    lists = {}
    for index, q in enumerate(chosen):
        others = pool[index * 2 :] + pool[: index * 2]
        ids = list(dict.fromkeys([*q.gold_doc_ids, *others]))[:per_question]
        lists[q.id] = ids
    needed = {d for ids in lists.values() for d in ids}
    texts = {d.id: d.contents for d in read_corpus("enwiki-sample") if d.id in needed}
    pairs = [(q.id, q.question, d, texts[d]) for q in chosen for d in lists[q.id]]
    return pairs, {q.id: q.gold_doc_ids for q in chosen}


def _free(device: str) -> None:
    """Give back what the last side held (its engine is gone with its last reference)."""
    import gc

    gc.collect()
    if device.startswith("cuda"):
        import torch

        torch.cuda.empty_cache()


def rank1_check(args, sides: list[tuple[str, str]]) -> dict:
    """Rank1 P(true) on the same pairs on each (device, dtype) side and on the reference."""
    from kirag.bench.fidelity import score_agreement
    from kirag.llm.transformers_engine import TransformersEngine
    from kirag.models import resolve_model
    from kirag.rerank.rank1 import Rank1Reranker

    spec = resolve_model(args.llm, "llm")

    pairs, _ = rank1_pairs(args.questions, args.per_question)
    budgets = [int(b) for b in str(args.budgets).split(",")]
    qids, doc_ids = [p[0] for p in pairs], [p[2] for p in pairs]
    scored: dict[tuple[str, str], dict] = {}
    for device, dtype in dict.fromkeys([REFERENCE, *sides]):
        start = time.perf_counter()
        # not the factory's cache: each side is loaded, measured and freed in turn
        engine = TransformersEngine(
            spec.location, dtype=dtype, device=device, local=spec.is_local, model_id=spec.name
        )
        row = {"load_seconds": round(time.perf_counter() - start, 2), "budgets": {}}
        for budget in budgets:
            reranker = Rank1Reranker(engine=engine, thinking_budget=budget, batch_size=8)
            start = time.perf_counter()
            scores = reranker.score([(p[1], p[3]) for p in pairs])
            seconds = time.perf_counter() - start
            row["budgets"][budget] = {
                "p_true": [s.p_true for s in scores],
                "pairs_per_second": len(pairs) / seconds,
                "fallbacks": dict(reranker.fallbacks),
            }
        scored[(device, dtype)] = row
        del engine, reranker
        _free(device)
    out: dict = {"model": args.llm, "pairs": len(pairs), "reference": "/".join(REFERENCE)}
    reference = scored[REFERENCE]
    for side, row in scored.items():
        entry = {"load_seconds": row["load_seconds"]}
        for budget, result in row["budgets"].items():
            base = reference["budgets"][budget]
            entry[f"budget_{budget}"] = {
                "pairs_per_second": round(result["pairs_per_second"], 3),
                "speedup_vs_reference": round(
                    result["pairs_per_second"] / base["pairs_per_second"], 3
                ),
                "fallbacks": result["fallbacks"],
                **{
                    k: round(v, 5) if isinstance(v, float) else v
                    for k, v in score_agreement(
                        qids, doc_ids, result["p_true"], base["p_true"], TOP_DEPTH
                    ).items()
                },
            }
        out["/".join(side)] = entry
    return out


def encoding_check(args, device: str) -> dict:
    """The encoder's passage vectors on `device` (fp32, and fp16 on a GPU) vs the CPU's fp32:
    cosine of each passage's two vectors, top-10 overlap of the bundled questions' searches,
    passages/s."""
    import numpy as np

    from kirag.eval.datasets import load_bundled_questions
    from kirag.io.corpus import read_corpus
    from kirag.models import load_sentence_transformer

    passages = []
    for document in read_corpus("enwiki-sample"):
        passages.append(document.contents)
        if len(passages) == args.passages:
            break
    queries = [q.question for q in load_bundled_questions()]

    def encode(model, texts):
        return np.asarray(
            model.encode(texts, batch_size=32, normalize_embeddings=True, convert_to_numpy=True),
            dtype=np.float32,
        )

    def measure(model) -> tuple[np.ndarray, np.ndarray, float]:
        encode(model, passages[:32])  # warm-up (CUDA kernels, allocator)
        start = time.perf_counter()
        vectors = encode(model, passages)
        rate = len(passages) / (time.perf_counter() - start)
        return vectors, encode(model, queries), rate

    def top(query_vectors, passage_vectors):
        return np.argsort(-(query_vectors @ passage_vectors.T), axis=1)[:, :TOP_DEPTH]

    # float32 whatever the saved weights' type (a model brought in float16 is upcast exactly)
    reference = load_sentence_transformer(args.encoder, device="cpu").float()
    ref_passages, ref_queries, ref_rate = measure(reference)
    ref_top = top(ref_queries, ref_passages)
    out: dict = {
        "model": args.encoder,
        "passages": len(passages),
        "cpu_float32_passages_per_second": round(ref_rate, 2),
    }
    variants = [("float32", False)] + ([("float16", True)] if device.startswith("cuda") else [])
    for dtype, half in variants:
        model = load_sentence_transformer(args.encoder, device=device).float()
        if half:
            model.half()
        vectors, query_vectors, rate = measure(model)
        cosines = np.sum(vectors * ref_passages, axis=1)
        found = top(query_vectors, vectors)
        overlap = np.mean(
            [len(set(a) & set(b)) / TOP_DEPTH for a, b in zip(found, ref_top, strict=True)]
        )
        out[f"{device}/{dtype}"] = {
            "passages_per_second": round(rate, 2),
            "speedup_vs_cpu_float32": round(rate / ref_rate, 3),
            "cosine_mean": round(float(np.mean(cosines)), 7),
            "cosine_min": round(float(np.min(cosines)), 7),
            f"top{TOP_DEPTH}_overlap": round(float(overlap), 4),
        }
        del model
        _free(device)
    return out


def _section(function, *args) -> dict:
    """A section's results, or why it did not run (a check reports failures, it goes on)."""
    start = time.perf_counter()
    try:
        result = {"status": "ran", **function(*args)}
    except Exception as exc:  # recorded; the other sections still run
        result = {"status": "failed", "error": f"{type(exc).__name__}: {exc}"}
    result["seconds"] = round(time.perf_counter() - start, 2)
    return result


def run(args: argparse.Namespace) -> dict:
    out: dict = {"mode": "cpu-only" if args.cpu_only else "gpu"}
    out["versions"] = _section(version_report)
    out["environment"] = _section(environment)
    cuda = out["environment"].get("cuda_available", False)
    if not args.cpu_only and not cuda:
        out["note"] = "no CUDA device: the GPU sections did not run (use --cpu-only on a CPU)"
        return out
    device = "cpu" if args.cpu_only else "cuda"
    # on the CPU the lower precision is bfloat16 (float16 matmuls are slow or missing there)
    dtypes = ["bfloat16"] if args.cpu_only else str(args.gpu_dtypes).split(",")
    out["other_gpu_paths"] = _section(other_gpu_paths)
    out["rank1"] = _section(rank1_check, args, [(device, d) for d in dtypes])
    out["encoding"] = _section(encoding_check, args, device)
    return out
