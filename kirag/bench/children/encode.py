"""Dense encoding for `kirag bench retrieval`: `size` synthetic passages encoded by kirag's
sharded, streamed encoder ("kirag") or by SentenceTransformer.encode directly ("direct")."""

from __future__ import annotations

import sys
import time
from pathlib import Path

from kirag.bench.corpora import iter_synthetic, sample_documents
from kirag.bench.harness import print_json
from kirag.bench.memory import peak_rss_mb


def main(argv: list[str]) -> None:
    mode, size, out = argv[0], int(argv[1]), Path(argv[2])
    documents = sample_documents()
    warm = [d.contents for d in documents[:8]]
    if mode == "kirag":
        # streamed, as kirag index dense streams a corpus: the passages are never all in memory
        from kirag.io.npy_files import concatenate_npy
        from kirag.retrieval.dense import Encoder, encode_to_shards

        texts = (d.contents for d in iter_synthetic(documents, size, seed=7))
        encoder = Encoder("minilm")
        encoder.encode(warm)
        start = time.perf_counter()
        shards = encode_to_shards(encoder, texts, out / "shards", size)
        concatenate_npy(shards, out / "embeddings.npy")
    else:
        from kirag.models import load_sentence_transformer

        texts = [d.contents for d in iter_synthetic(documents, size, seed=7)]
        model = load_sentence_transformer("minilm")
        model.encode(warm)
        start = time.perf_counter()
        model.encode(texts, batch_size=32, normalize_embeddings=True, convert_to_numpy=True)
    print_json({"seconds": time.perf_counter() - start, "peak_rss_mb": peak_rss_mb()})


if __name__ == "__main__":
    main(sys.argv[1:])
