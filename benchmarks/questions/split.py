"""Split the hand-written multi-hop questions (batchNN.jsonl beside this file) into the dev and
test sets shipped in kirag/data: multihop_enwiki_dev.jsonl and multihop_enwiki_test.jsonl.

Seeded and stratified by question type: within each batch file and each type, the questions are
shuffled with `random.Random(f"{SEED}:{batch}:{type}")` and the first round(DEV_FRACTION * n)
go to dev, the rest to test. Each batch is split on its own, so adding a batch never moves a
question that an earlier batch put in dev or test (settings chosen on dev stay unfitted to test).

    python benchmarks/questions/split.py           # write the two files
    python benchmarks/questions/split.py --check   # exit 1 if they differ from what it would write
"""

from __future__ import annotations

import argparse
import json
import random
import sys
from pathlib import Path

SEED = 28
DEV_FRACTION = 0.6
HERE = Path(__file__).resolve().parent
DATA = HERE.parents[1] / "kirag" / "data"
OUTPUTS = {"dev": DATA / "multihop_enwiki_dev.jsonl", "test": DATA / "multihop_enwiki_test.jsonl"}
FIELDS = ("id", "question", "answers", "supporting_ids", "type")


def batch_files(folder: Path = HERE) -> list[Path]:
    """The question batches, in name order."""
    return sorted(folder.glob("batch*.jsonl"))


def read_batch(path: Path) -> list[dict]:
    """The questions of one batch file, one JSON object per non-blank line."""
    records = []
    for lineno, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            raise SystemExit(f"{path}:{lineno}: not JSON ({exc.msg})") from None
        if not isinstance(record, dict) or tuple(record) != FIELDS:
            raise SystemExit(f"{path}:{lineno}: expected the fields {', '.join(FIELDS)} in order")
        records.append(record)
    return records


def split_batch(name: str, records: list[dict]) -> dict[str, set[str]]:
    """The ids of one batch's dev and test questions (seeded, stratified by type)."""
    chosen: dict[str, set[str]] = {"dev": set(), "test": set()}
    for qtype in sorted({r["type"] for r in records}):
        ids = [r["id"] for r in records if r["type"] == qtype]
        random.Random(f"{SEED}:{name}:{qtype}").shuffle(ids)
        n_dev = round(DEV_FRACTION * len(ids))
        chosen["dev"].update(ids[:n_dev])
        chosen["test"].update(ids[n_dev:])
    return chosen


def split_all(folder: Path = HERE) -> dict[str, list[dict]]:
    """Every batch's questions in file order, assigned to "dev" or "test"."""
    out: dict[str, list[dict]] = {"dev": [], "test": []}
    for path in batch_files(folder):
        records = read_batch(path)
        chosen = split_batch(path.stem, records)
        for record in records:
            out["dev" if record["id"] in chosen["dev"] else "test"].append(record)
    return out


def render(records: list[dict]) -> str:
    """JSONL text in the style of the bundled multihop_enwiki.jsonl."""
    return "".join(json.dumps(r) + "\n" for r in records)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="compare, do not write")
    args = parser.parse_args(argv)
    splits = split_all()
    stale = []
    for name, path in OUTPUTS.items():
        text = render(splits[name])
        if args.check:
            if not path.exists() or path.read_text(encoding="utf-8") != text:
                stale.append(str(path))
        else:
            path.write_text(text, encoding="utf-8")
            print(f"{path}: {len(splits[name])} questions")
    if stale:
        print("out of date (run benchmarks/questions/split.py): " + ", ".join(stale))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
