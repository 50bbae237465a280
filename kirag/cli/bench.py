"""`kirag bench NAME`: the benchmarks of the kirag.bench wing. Results print as JSON and are
written with the run's configuration when `--output` is given. Ratios are against baselines
measured in the same run, never against numbers from elsewhere."""

from __future__ import annotations

import argparse
import importlib
import json
from pathlib import Path

from kirag.bench import BENCHMARKS
from kirag.cli.arguments import OUTPUT
from kirag.cli.common import add_command, add_seed, prepare_output


def register(subparsers) -> None:
    parser = add_command(
        subparsers, "bench", help="run a benchmark (retrieval, eval, rerank, kirag)"
    )
    names = parser.add_subparsers(dest="benchmark", metavar="NAME", required=True)
    for name, benchmark in BENCHMARKS.items():
        module_name = benchmark.module
        sub = add_command(names, name, help=benchmark.help)
        sub.add_argument(
            "--output", type=OUTPUT, help="write the results JSON here (config written beside it)"
        )
        add_seed(sub)
        sub.set_defaults(func=run, bench_module=module_name)
        try:
            module = importlib.import_module(module_name)
        except ImportError:
            continue  # a benchmark whose module is missing still lists, and says so when run
        module.add_arguments(sub)


def run(args: argparse.Namespace) -> int:
    from kirag.core.atomic import write_json
    from kirag.core.runconfig import RunConfig
    from kirag.core.seeding import set_seed

    set_seed(args.seed)
    prepare_output(args.output)
    module = importlib.import_module(args.bench_module)
    results = module.run(args)
    print(json.dumps(results, indent=2, default=str))
    if args.output:
        write_json(args.output, results)
        settings = {k: v for k, v in vars(args).items() if k != "func"}
        RunConfig(f"bench {args.benchmark}", settings, results=results).write(args.output)
        # the sections a crash would have kept (`<output>.partial.json`) are in the output now
        Path(f"{args.output}.partial.json").unlink(missing_ok=True)
    return 0
