"""`skillstack plot RUN... [--out PNG]`: learning curves of training runs as a PNG.

Panels: success rate, each critic's (reward term's) episodic return, safety cost per
episode, and skill coverage when present, against env steps, one line per run.
"""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    """Add the `plot` subcommand."""
    p = sub.add_parser(
        "plot",
        help="plot learning curves of runs (success, per-critic returns) as PNG",
        description="Plot the evaluation curves (eval.jsonl) of one or more run directories: success rate, the "
        "return of each reward term (one critic each), safety cost, coverage.",
    )
    p.add_argument("runs", nargs="+", metavar="RUN", help="run directories")
    p.add_argument("--out", default="learning_curves.png", help="output PNG (default learning_curves.png)")
    p.add_argument("--labels", default=None, help="comma-separated legend labels (default: run folder names)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Write the PNG and print its path."""
    from policies.training import plot_runs

    labels = args.labels.split(",") if args.labels else None
    path = plot_runs(args.runs, args.out, labels=labels)
    print(f"plot written to {path}")
    return 0
