"""`kirag doctor`: engines, models, extras and device found here, a short live sanity run on
bundled real passages, and which capabilities will serve well on this setup."""

from __future__ import annotations

import argparse

from kirag.cli.arguments import OUTPUT
from kirag.cli.common import add_command


def register(subparsers) -> None:
    parser = add_command(
        subparsers, "doctor", help="check this setup: engines, models, extras, device"
    )
    parser.add_argument(
        "--no-checks", action="store_true", help="only list what is installed (no live sanity run)"
    )
    parser.add_argument("--output", type=OUTPUT, help="write the report as JSON here")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from kirag.doctor import run_doctor

    report = run_doctor(checks=not args.no_checks)
    env = report["environment"]
    device = ", ".join(env.get("gpus", [])) or "CPU only (no CUDA device)"
    print(
        f"kirag doctor — Python {env['python']}, {env['cpus']} CPUs, {env.get('memory_gib', '?')} GiB, torch {env['torch']}, {device}"
    )
    print("\nextras:")
    for name, state in report["extras"].items():
        print(f"  {name:<32} {state}")
    print("\nmodels:")
    for row in report["models"]:
        print(f"  {row['name']:<14} {row['kind']:<13} {row['location']}")
    if "checks" in report:
        print("\nsanity run on bundled Wikipedia passages:")
        for check in report["checks"]:
            mark = "ok  " if check["ok"] else "FAIL"
            print(f"  [{mark}] {check['name']:<32} {check['detail']}  ({check['seconds']} s)")
        print("\nverdict:")
        for line in report["verdicts"]:
            print(f"  - {line}")
    if args.output:
        from kirag.core.atomic import write_json

        write_json(args.output, report)
    return 0 if all(c["ok"] for c in report.get("checks", [])) else 1
