"""`skillstack sweep`: seeds x hyperparameter grid on Ray, same training code as `train`."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "sweep",
        help="train a config over seeds and a hyperparameter grid on Ray",
        description="Each (seed, grid point) is a Ray task running the same code as `skillstack train`, in its "
        "own run folder under --out. A killed worker is retried and resumes from its last checkpoint; a trial "
        "that fails is reported with its traceback. Prints a table, writes OUT/sweep.json and OUT/sweep.png.",
    )
    p.add_argument("config", help="training config YAML (as for skillstack train)")
    p.add_argument("--seeds", type=int, default=3, help="seeds per grid point: 0..N-1 (default 3)")
    p.add_argument("--grid", action="append", default=[], metavar="KEY=V1,V2",
                   help="a config key and its values (repeatable; the grid is their cross product)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override applied to every trial")
    p.add_argument("--out", default=None, help="sweep folder (default runs/sweep-<experiment>)")
    p.add_argument("--address", default=None,
                   help="Ray cluster: 'auto' or ray://HOST:PORT (default: start a local instance sized to the machine)")
    p.add_argument("--max-retries", type=int, default=2, help="retries of a trial whose worker died (default 2)")
    p.add_argument("--cpus-per-trial", type=float, default=1.0, help="CPU slots each trial reserves (default 1)")
    p.add_argument("--export", action="store_true", help="export each trial's skill into the library")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from policies.sweep import parse_grid, plot_sweep, sweep
    from policies.training import load_config
    from common.table import print_table
    from skill_library.publish import publish_run

    cfg = load_config(args.config, args.set)
    out = Path(args.out or f"runs/sweep-{cfg.experiment}")
    summary = sweep(args.config, seeds=args.seeds, grid=parse_grid(args.grid), out=out, overrides=args.set,
                    address=args.address, max_retries=args.max_retries, cpus_per_trial=args.cpus_per_trial,
                    publish=publish_run if args.export else None)
    rows = []
    for t in summary["trials"]:
        rows.append([t["trial"], t["status"], _fmt(t.get("success_rate")), _fmt(t.get("coverage")),
                     _fmt(t.get("safety_cost")), _fmt(t.get("wall_s"), "{:.1f}"), t.get("resumed_from") or "-"])
    print_table(["trial", "status", "success", "coverage", "safety cost", "wall s", "resumed from"], rows)
    for g in summary["groups"]:
        label = ", ".join(f"{k}={v}" for k, v in g["params"].items()) or "all"
        sr = g["success_rate"]
        print(f"{label}: success {sr['mean']:.2f} +- {sr['std']:.2f} over {g['trials'] - g['failed']} seed(s)"
              if sr else f"{label}: no successful trial")
    for t in summary["trials"]:
        if t["status"] != "ok":
            print(f"\n--- {t['trial']} failed ---\n{t.get('traceback', '').rstrip()}")
    png = plot_sweep(summary, out / "sweep.png")
    print(f"wall time {summary['wall_s']:.1f} s (Ray start {summary['ray_startup_s']:.1f} s); "
          f"results {out / 'sweep.json'}, plot {png}")
    return 0 if all(t["status"] == "ok" for t in summary["trials"]) else 1


def _fmt(value, pattern: str = "{:.3f}") -> str:
    return "-" if value is None else pattern.format(value)
