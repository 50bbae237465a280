"""The benchmarks' corpora and queries: the bundled 4,996-passage Wikipedia sample, synthetic
corpora of any size sampled from its sentences (seeded, streamed), and the bundled multi-hop
questions plus pseudo-queries."""

from __future__ import annotations

import random
import re

from kirag.eval.datasets import load_bundled_questions
from kirag.io.corpus import read_corpus
from kirag.types import Document


def sample_documents() -> list:
    return list(read_corpus("enwiki-sample"))


def sentences_of(documents) -> list[str]:
    splitter = re.compile(r"(?<=[.!?])\s+(?=[A-Z])")
    return [s for d in documents for s in splitter.split(d.text) if len(s.split()) >= 5]


def iter_synthetic(documents, size: int, seed: int = 42):
    """`size` passages of 2-5 sentences drawn at random from the sample (seeded), one at a time."""
    rng = random.Random(seed)
    sentences = sentences_of(documents)
    for i in range(size):
        yield Document(f"syn{i}", " ".join(rng.sample(sentences, rng.randint(2, 5))))


def synthetic_corpus(documents, size: int, seed: int = 42) -> list:
    return list(iter_synthetic(documents, size, seed))


def benchmark_queries(documents, count: int, seed: int = 42) -> dict[str, str]:
    """The bundled multi-hop questions and pseudo-queries (6-10 word windows of sentences)."""
    queries = {q.id: q.question for q in load_bundled_questions()}
    rng = random.Random(seed)
    sentences = sentences_of(documents)
    for i in range(count):
        words = rng.choice(sentences).split()
        start = rng.randrange(max(1, len(words) - 10))
        queries[f"pseudo{i}"] = " ".join(words[start : start + rng.randint(6, 10)])
    return queries


def bench_corpus(label: str, size: int, pseudo_queries: int) -> tuple[list, dict[str, str]]:
    """The documents (the sample itself, or `size` synthetic passages sampled from it, seeded)
    and the benchmark queries, reading the sample once."""
    sample = sample_documents()
    documents = sample if label == "sample" else synthetic_corpus(sample, size)
    return documents, benchmark_queries(sample, pseudo_queries)
