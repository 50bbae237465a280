"""Triple and passage vectors under an aligner that is not the triple index's encoder (a trained
aligner folder): encoded on first use and kept, per index, for the aligner's lifetime.

Why: the index stores its own encoder's vectors. A trained aligner must encode every candidate
triple itself; a chain's candidates repeat across turns, beams and questions (the same documents'
triples, the same neighbourhoods), so each is encoded once. The passage a triple comes from is
encoded the same way (its text, as the dense index encodes passages), so a trained aligner
scores a candidate as the index's encoder does: triple similarity + `passage_weight` x passage
similarity — without it, a trained aligner would be compared with the untrained one on a
different score.
"""

from __future__ import annotations

import weakref
from collections.abc import Sequence

import numpy as np

from kirag.knowledge.triple_index import TripleIndex, triple_embedding_text
from kirag.knowledge.triples import Triple


class AlignerVectors:
    """Kept vectors of one aligner over one triple index: by triple position and by document."""

    def __init__(self, aligner, index: TripleIndex):
        self.aligner = aligner
        self.index = index
        self._triples: dict[int, np.ndarray] = {}
        self._passages: dict[str, np.ndarray] = {}
        self.encoded = 0  # texts encoded so far (the cache's misses)

    def _encode(self, texts: list[str]) -> np.ndarray:
        self.encoded += len(texts)
        return np.asarray(self.aligner.encode(texts), dtype=np.float32).reshape(len(texts), -1)

    def triples(self, positions: Sequence[int], triples: Sequence[Triple]) -> np.ndarray:
        """The aligner's vectors of `triples` (at index `positions`), one row each."""
        missing = {p: t for p, t in zip(positions, triples, strict=True) if p not in self._triples}
        if missing:
            vectors = self._encode([triple_embedding_text(t) for t in missing.values()])
            self._triples.update(zip(missing, vectors, strict=True))
        return np.stack([self._triples[p] for p in positions])

    def passages(self, triples: Sequence[Triple]) -> np.ndarray:
        """The aligner's vectors of the passages the `triples` come from, one row per triple."""
        doc_ids = [t.doc_id for t in triples]
        missing = [d for d in dict.fromkeys(doc_ids) if d not in self._passages]
        if missing:
            documents = self.index.docstore.get_many(missing)
            texts = [d.contents if d is not None else "" for d in documents]
            self._passages.update(zip(missing, self._encode(texts), strict=True))
        return np.stack([self._passages[d] for d in doc_ids])


_KEPT: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def aligner_vectors(aligner, index: TripleIndex) -> AlignerVectors:
    """The kept vectors of `aligner` over `index`, shared by every retriever given the same
    aligner object (a bench's settings, a server's requests); dropped with the aligner."""
    per_index = _KEPT.setdefault(aligner, {})
    key = str(index.path.resolve())
    if key not in per_index:
        per_index[key] = AlignerVectors(aligner, index)
    return per_index[key]
