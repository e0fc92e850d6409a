"""Seed and hyperparameter sweeps on Ray, running the same code as `skillstack train`.

Every (seed, grid point) is one Ray task that calls `policies.training.train` with its
own run folder. Faults are handled in two ways:

- a worker that dies (killed, out of memory, node lost) is retried by Ray up to
  `max_retries` times, and the retried trial resumes from the run folder's last
  checkpoint (train(..., resume=True)), so finished work is not redone;
- a trial that raises (a bug, a bad override) is not retried: its traceback is kept in
  the results and the other trials run on.

Results (final success, coverage, safety cost, wall time) are gathered into
`sweep.json`, printed as a table, and plotted (mean and spread across seeds).
"""

from __future__ import annotations

import itertools
import json
import os
import signal
import time
import traceback
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from common.atomic import atomic_savefig, atomic_write_json, atomic_write_text

# Fault injection for tests: when set to a file path that does not exist yet, the first
# trial to reach its checkpoint creates the file and kills its own worker process.
KILL_ONCE_ENV = "SKILLSTACK_SWEEP_KILL_ONCE"

if TYPE_CHECKING:
    from policies.training import TrainConfig


@dataclass
class Trial:
    """One sweep member: a seed and a point of the grid."""

    name: str
    seed: int
    params: dict[str, str] = field(default_factory=dict)

    def overrides(self) -> list[str]:
        return [f"seed={self.seed}"] + [f"{k}={v}" for k, v in self.params.items()]


def parse_grid(items: Sequence[str]) -> dict[str, list[str]]:
    """Parse `key=v1,v2` strings into {key: [v1, v2]} (values stay strings, as --set takes them)."""
    grid: dict[str, list[str]] = {}
    for item in items:
        key, sep, values = item.partition("=")
        if not sep or not key.strip() or not values.strip():
            raise ValueError(f"--grid expects key=v1,v2,..., got {item!r}")
        grid[key.strip()] = [v.strip() for v in values.split(",") if v.strip()]
    return grid


def make_trials(seeds: int | Sequence[int], grid: Mapping[str, Sequence[str]] | None = None) -> list[Trial]:
    """The cross product of seeds and grid points, with readable, unique names."""
    seed_list = list(range(seeds)) if isinstance(seeds, int) else [int(s) for s in seeds]
    if not seed_list:
        raise ValueError("a sweep needs at least one seed")
    grid = dict(grid or {})
    keys = sorted(grid)
    trials = []
    for values in itertools.product(*(grid[k] for k in keys)):
        params = dict(zip(keys, values))
        label = "_".join(f"{k.split('.')[-1]}-{v}" for k, v in params.items())
        for seed in seed_list:
            name = f"{label}_seed-{seed}" if label else f"seed-{seed}"
            trials.append(Trial(name=name, seed=seed, params=params))
    return trials


def run_trial(
    config: TrainConfig | Mapping[str, Any] | str, overrides: Sequence[str], run_dir: str,
    publish: Callable[[Path], Any] | None = None,
) -> dict[str, Any]:
    """Train one trial in `run_dir`, resuming if a checkpoint is there; never raises.

    `publish(run_dir)` is called once the trial has finished (the layer above passes
    `skill_library.publish_run` to add the trial's skill to the library). This is the body
    of the Ray task, and equally runnable in-process (the sequential baseline of
    `skillstack bench sweep` calls it directly).
    """
    from policies.training import list_checkpoints, train

    t0 = time.perf_counter()
    resumed_from = None
    try:
        run = Path(run_dir)
        checkpoints = list_checkpoints(run) if run.exists() else []
        if checkpoints:
            resumed_from = checkpoints[-1].name
        kill_file = os.environ.get(KILL_ONCE_ENV)
        if kill_file and not checkpoints and not os.path.exists(kill_file):
            # Test fault: train to the first checkpoint, then die like a killed worker.
            train(config, overrides, run_dir=run, progress=False, stop_after=_first_checkpoint(config, overrides))
            atomic_write_text(kill_file, str(os.getpid()))
            os.kill(os.getpid(), signal.SIGKILL)
        train(config, overrides, run_dir=run, resume=bool(checkpoints), progress=False)
        if publish is not None:
            publish(run)
        summary = json.loads((run / "summary.json").read_text())
        final = summary.get("final_eval") or {}
        return {
            "status": "ok",
            "run_dir": str(run),
            "success_rate": final.get("success_rate"),
            "coverage": final.get("coverage"),
            "safety_cost": final.get("safety_cost"),
            "env_steps": summary.get("env_steps"),
            "wall_s": time.perf_counter() - t0,
            "resumed_from": resumed_from,
            "pid": os.getpid(),
        }
    except Exception:  # a bug in one trial must not stop the sweep
        return {"status": "error", "run_dir": str(run_dir), "traceback": traceback.format_exc(),
                "wall_s": time.perf_counter() - t0, "resumed_from": resumed_from}


def _first_checkpoint(config: TrainConfig | Mapping[str, Any] | str, overrides: Sequence[str]) -> int:
    from policies.training import load_config

    return load_config(config, overrides).checkpoint.freq


def sweep(
    config: str | os.PathLike[str] | Mapping[str, Any] | TrainConfig,
    seeds: int | Sequence[int] = 2,
    grid: Mapping[str, Sequence[str]] | None = None,
    out: str | os.PathLike[str] = "runs/sweep",
    overrides: Sequence[str] = (),
    address: str | None = None,
    max_retries: int = 2,
    cpus_per_trial: float = 1.0,
    progress: bool = True,
    publish: Callable[[Path], Any] | None = None,
) -> dict[str, Any]:
    """Run every (seed, grid point) of a config as a Ray task; gather, save and return results.

    `out/<trial>/` is each trial's run folder; `out/sweep.json` the gathered table. Trials
    publish no skills unless `publish` is given (`skill_library.publish_run`, called with
    each finished trial's folder; a sweep is for comparing settings, export the winner with
    `skillstack train`).
    """
    from policies.ray_cluster import connect
    from policies.training import load_config

    cfg = load_config(config, overrides)  # validate once, up front, with a clear error
    trials = make_trials(seeds, grid)
    out_dir = Path(out)
    out_dir.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    ray = connect(address)
    startup_s = time.perf_counter() - t0
    remote = ray.remote(num_cpus=cpus_per_trial, max_retries=max_retries, retry_exceptions=False)(run_trial)
    if os.environ.get(KILL_ONCE_ENV):  # forward the test fault hook to the workers
        from policies.ray_cluster import worker_env

        remote = remote.options(runtime_env={"env_vars": worker_env({KILL_ONCE_ENV: os.environ[KILL_ONCE_ENV]})})
    futures = {remote.remote(cfg, t.overrides(), str(out_dir / t.name), publish): t for t in trials}
    results: dict[str, dict[str, Any]] = {}
    bar = _progress(len(trials), progress)
    pending = list(futures)
    while pending:
        done, pending = ray.wait(pending, num_returns=1)
        trial = futures[done[0]]
        try:
            res = ray.get(done[0])
        except Exception as exc:  # retries exhausted (worker kept dying)
            res = {"status": "error", "run_dir": str(out_dir / trial.name), "traceback": repr(exc)}
        results[trial.name] = {"trial": trial.name, "seed": trial.seed, "params": trial.params, **res}
        bar.update(1)
    bar.close()
    rows = [results[t.name] for t in trials]
    summary = {
        "config": cfg.experiment,
        "env_id": cfg.env_id,
        "trials": rows,
        "groups": group_results(rows),
        "wall_s": time.perf_counter() - t0,
        "ray_startup_s": startup_s,
    }
    atomic_write_json(out_dir / "sweep.json", summary, indent=2, default=str)
    return summary


def group_results(rows: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Mean and standard deviation across seeds for each grid point (failed trials excluded)."""
    import numpy as np

    groups: dict[str, list[Mapping[str, Any]]] = {}
    for r in rows:
        key = json.dumps(r["params"], sort_keys=True)
        groups.setdefault(key, []).append(r)
    out = []
    for key, members in groups.items():
        ok = [m for m in members if m.get("status") == "ok"]
        entry: dict[str, Any] = {"params": json.loads(key), "trials": len(members), "failed": len(members) - len(ok)}
        for metric in ("success_rate", "coverage", "safety_cost", "wall_s"):
            vals = [float(m[metric]) for m in ok if m.get(metric) is not None]
            entry[metric] = {"mean": float(np.mean(vals)), "std": float(np.std(vals))} if vals else None
        out.append(entry)
    return out


def plot_sweep(summary: Mapping[str, Any], path: str | os.PathLike[str]) -> Path:
    """Learning curves per grid point: mean success over seeds with a min-max band (PNG)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    from policies.training import read_eval_log

    fig, ax = plt.subplots(figsize=(7, 4.2))
    by_group: dict[str, list[list[dict[str, Any]]]] = {}
    for r in summary["trials"]:
        if r.get("status") != "ok":
            continue
        label = ", ".join(f"{k}={v}" for k, v in r["params"].items()) or summary.get("config") or "runs"
        try:
            by_group.setdefault(label, []).append(read_eval_log(r["run_dir"]))
        except FileNotFoundError:
            continue
    for label, logs in by_group.items():
        steps = sorted({row["step"] for log in logs for row in log})
        curves = np.array([[_at(log, s) for s in steps] for log in logs], dtype=float)
        mean = np.nanmean(curves, axis=0)
        ax.plot(steps, mean, label=f"{label} (n={len(logs)})")
        ax.fill_between(steps, np.nanmin(curves, axis=0), np.nanmax(curves, axis=0), alpha=0.2)
    ax.set_xlabel("env steps")
    ax.set_ylabel("eval success rate")
    ax.set_ylim(-0.02, 1.02)
    ax.set_title(f"sweep: {summary.get('config')} on {summary.get('env_id')}")
    ax.grid(alpha=0.3)
    if by_group:
        ax.legend(loc="lower right", fontsize=8)
    return atomic_savefig(fig, path, dpi=110, bbox_inches="tight")


def _at(log: Sequence[Mapping[str, Any]], step: int) -> float:
    for row in log:
        if row["step"] == step:
            return float(row["success_rate"])
    return float("nan")


def _progress(total: int, enabled: bool) -> Any:
    from tqdm import tqdm

    return tqdm(total=total, desc="sweep", unit="trial", disable=not enabled)
