"""`skillstack bench NAME`: run a benchmark from bench/, print its table, write JSON.

Each module `bench/<name>.py` provides `add_arguments(parser)` and `run(args) -> dict`.
"""

from __future__ import annotations

import argparse
import importlib

BENCHMARKS = {
    "envs": "env step rate and overhead over raw MuJoCo physics",
    "experts": "scripted expert success per (robot, task) over seeded episodes",
    "skills": "skill package load time and call latency",
    "demos": "demonstration recording and replay throughput, LeRobot export/import, ROS 2 bag import",
    "training": "multi-critic SAC throughput against SB3 SAC",
    "ros": "ROS 2 bridge tick and end-to-end latency",
    "sbd": "skill boundary detection: boundary/segment F1 vs baselines, held-out task, speed",
    "tasks": "long-horizon task success: skills (learned / scripted) vs flat SAC, blending vs sequential",
    "sweep": "4-trial sweep on Ray against the same trials run one after another",
    "perception": "marker-based object poses vs ground truth with the arm moving, rendering cost, detection latency",
    "robustness": "skills under perturbation conditions through ROS 2 (sim_robot) next to the env, success x condition",
}


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("bench", help="run a benchmark (table + JSON)", description="Run a benchmark: prints a "
                       "table, writes JSON (default bench/results/NAME.json), compares against a baseline measured "
                       "in the same run.")
    bsub = p.add_subparsers(dest="bench_name", metavar="NAME")
    for name, help_text in BENCHMARKS.items():
        try:
            module = importlib.import_module(f"bench.{name}")
        except ImportError:
            continue  # benchmark not present in this checkout
        bp = bsub.add_parser(name, help=help_text, description=module.__doc__)
        bp.add_argument("--out", default=f"bench/results/{name}.json", help="where to write the JSON results")
        module.add_arguments(bp)
        bp.set_defaults(func=_runner(module))
    p.set_defaults(func=lambda args: (p.print_help(), 2)[1])


def _runner(module):
    def run(args: argparse.Namespace) -> int:
        from bench.common import write_result

        result = module.run(args)
        path = write_result(result, args.out)
        print(f"results written to {path}")
        return 0

    return run
