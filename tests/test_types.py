from kirag.types import Document, Hit, rank_hits


def test_document_contents_joins_title_and_text():
    assert Document("d1", "is a city.", "Paris").contents == "Paris is a city."
    assert Document("d2", "no title").contents == "no title"


def test_hit_has_pyserini_docid_alias():
    hit = Hit("d1", 1.5, 1)
    assert hit.docid == "d1"


def test_rank_hits_sorts_by_score_then_id_and_cuts_at_k():
    hits = rank_hits([("b", 1.0), ("a", 1.0), ("c", 3.0), ("d", 0.5)], k=3)
    assert [(h.doc_id, h.rank) for h in hits] == [("c", 1), ("a", 2), ("b", 3)]
    assert all(isinstance(h.score, float) for h in hits)
