"""Lucene's side of `kirag bench retrieval`: build and time kirag's Lucene backend."""

from __future__ import annotations

import sys
from pathlib import Path

from kirag.bench.harness import print_json
from kirag.bench.retrieval import lucene_side


def main(argv: list[str]) -> None:
    label, size, pseudo_queries, root = argv
    print_json(lucene_side(label, int(size), int(pseudo_queries), Path(root)))


if __name__ == "__main__":
    main(sys.argv[1:])
