"""A trained aligner (another model than the triple index's encoder) scores a candidate triple as
the index's encoder does — triple similarity + passage_weight x passage similarity — from vectors
it encodes once and keeps."""

import numpy as np
import pytest


@pytest.fixture(scope="module")
def minilm_folder(tmp_path_factory):
    """The index's own encoder saved as a folder: another model name, the same weights."""
    from kirag.models import load_sentence_transformer

    folder = tmp_path_factory.mktemp("aligner") / "minilm-copy"
    load_sentence_transformer("minilm").save_pretrained(str(folder))
    return folder


def test_a_foreign_aligner_scores_candidates_as_the_index_encoder_does(
    small_triple_index, minilm_folder
):
    from kirag.retrieval.dense import Encoder

    from kirag.knowledge.triple_index import TripleIndex
    from kirag.rag.aligner_vectors import aligner_vectors
    from kirag.rag.chains import IterativeRetriever

    index = TripleIndex(small_triple_index)
    assert index.has_passage_vectors
    aligner = Encoder(str(minilm_folder))
    own = IterativeRetriever(index)
    foreign = IterativeRetriever(index, aligner=aligner)
    assert own._vectors is None and foreign._vectors is not None
    positions = list(range(0, min(len(index), 40)))
    triples = index.triples(positions)
    query = "Which philosopher influenced Ayn Rand?"
    expected = own._align(index.encoder.encode([query])[0], positions, triples)
    got = foreign._align(aligner.encode([query])[0], positions, triples)
    np.testing.assert_allclose(got, expected, atol=1e-4)  # passage term included

    kept = aligner_vectors(aligner, index)
    assert kept is foreign._vectors  # one set of vectors per aligner and index
    encoded = kept.encoded
    again = IterativeRetriever(index, aligner=aligner)._align(
        aligner.encode([query])[0], positions, triples
    )
    np.testing.assert_allclose(again, got, atol=1e-6)
    assert kept.encoded == encoded  # nothing encoded twice
