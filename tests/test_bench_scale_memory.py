"""`kirag bench scale` sections (b), (c), (e): the sections are registered, the extrapolation is
the line through two measurements, and the projection's figures follow from its rates."""

from __future__ import annotations

import json

import pytest

from kirag.bench import scale, scale_bm25, scale_projection


def test_sections_are_registered():
    for name in ("triple-memory", "bm25", "projection"):
        assert name in scale.SECTIONS


def test_extrapolation_is_the_line_through_the_two_measurements():
    small = {"passages": 100, "seconds": 10.0, "peak_rss_mb": 500.0, "index_mb": 2.0}
    large = {"passages": 1100, "seconds": 110.0, "peak_rss_mb": 600.0, "index_mb": 12.0}
    out = scale_bm25.extrapolate(small, large, 10_100)
    assert out["seconds"] == pytest.approx(1010.0)
    assert out["peak_rss_mb"] == pytest.approx(1500.0)
    assert out["index_mb"] == pytest.approx(102.0)
    assert out["how"].startswith("extrapolated")


def test_projection_figures_follow_from_the_rates(tmp_path):
    results = {
        "bm25": {"bm25s": {"200000": {"passages": 200_000, "passages_per_s": 5000.0}}},
        "triple-memory": {
            "builds": {
                "20": {"passages": 20, "triples": 10, "files_mb": {"triples.sqlite": 1.0}},
                "200": {
                    "passages": 200,
                    "triples": 2**20,
                    "files_mb": {"triples.sqlite": 300.0, "graph.sqlite": 100.0},
                },
            }
        },
    }
    path = tmp_path / "scale.json"
    path.write_text(json.dumps(results))
    measured = scale_projection.measured_rates(str(path))
    assert measured["bytes_per_triple"] == pytest.approx(400.0)
    rows = {(r["corpus"], r["stage"]): r for r in scale_projection.time_rows(measured)}
    encode = rows[("MS MARCO", "passage encoding (MiniLM)")]
    assert encode["1 node"] == "61.4 h (x)"  # 8,841,823 passages at 40/s
    assert encode["32 nodes"] == "1.9 h (x)"
    bm25 = rows[("DPR-Wikipedia", "BM25 index (bm25s)")]
    assert bm25["1 node"] == "1.2 h (x)" and "(m)" in bm25["rate source"]
    sizes = {"peak_rss_mb": 1.0, "index_mb": 1.0}
    results["bm25"]["bm25s"]["100000"] = {"passages": 100_000, "seconds": 30.0, **sizes}
    results["bm25"]["bm25s"]["200000"].update(seconds=40.0, **sizes)  # 20 s + 0.1 ms a passage
    path.write_text(json.dumps(results))
    rows = scale_projection.time_rows(scale_projection.measured_rates(str(path)))
    line = next(r for r in rows if r["stage"] == "BM25 index (bm25s)")
    assert line["1 node"] == f"{(20 + 8_841_823 / 10_000) / 3600:,.1f} h (x)"
    assert line["rate source"].startswith("line through 100,000 and 200,000")
    storage = {r["corpus"]: r for r in scale_projection.storage_rows(measured)}
    assert storage["MS MARCO"]["triple vectors, Flat"] == "159 GB (x)"
    assert storage["MS MARCO"]["triples.sqlite + graph.sqlite"].startswith("41 GB")
    assert scale_projection.measured_rates(None) == {}
