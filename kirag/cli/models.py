"""`kirag models`: the short model names kirag knows and where each resolves on this machine."""

from __future__ import annotations

import argparse

from kirag.cli.common import add_command


def register(subparsers) -> None:
    parser = add_command(
        subparsers,
        "models",
        help="list the embedded default models and named presets",
        epilog="Any model argument also takes a local path, or a hub id when the hub is reachable.",
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from kirag.models import list_models

    rows = list_models()
    width = max(len(r["name"]) for r in rows)
    for row in rows:
        print(f"{row['name']:<{width}}  {row['kind']:<13}  {row['location']}")
    return 0
