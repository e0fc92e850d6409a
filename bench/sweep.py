"""Wall time of a 4-trial sweep on Ray against the same 4 trials run one after another.

Both sides run `policies.sweep.run_trial` on identical (config, seed) pairs in fresh run
folders on this machine: serially in this process, then as Ray tasks on a local instance
sized to the machine. Reported: speed-up = serial wall / Ray wall (Ray start-up shown
separately and included), and the per-trial overhead Ray adds =
(Ray wall x parallel slots - sum of serial trial times) / trials.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", default="configs/reach.yaml", help="training config (default configs/reach.yaml)")
    p.add_argument("--trials", type=int, default=4, help="number of trials, one seed each (default 4)")
    p.add_argument("--timesteps", type=int, default=600, help="env steps per trial (default 600)")
    p.add_argument("--address", default=None, help="Ray cluster to use (default: a local instance)")


def run(args: argparse.Namespace) -> dict:
    from policies.ray_cluster import available_cpus, connect
    from policies.sweep import make_trials, run_trial
    from policies.training import load_config
    from common.table import print_table

    overrides = [f"total_timesteps={args.timesteps}", "eval.freq=0", "eval.episodes=5",
                 f"checkpoint.freq={args.timesteps}", "algo_kwargs.learning_starts=100"]
    cfg = load_config(args.config, overrides)
    trials = make_trials(args.trials)
    with tempfile.TemporaryDirectory(prefix="skillstack-bench-sweep-") as tmp:
        serial = []
        t0 = time.perf_counter()
        for t in trials:
            res = run_trial(cfg, t.overrides(), os.path.join(tmp, "serial", t.name))
            if res["status"] != "ok":
                raise RuntimeError(f"serial trial {t.name} failed:\n{res['traceback']}")
            serial.append(res["wall_s"])
        serial_wall = time.perf_counter() - t0

        t0 = time.perf_counter()
        ray = connect(args.address)
        startup = time.perf_counter() - t0
        slots = min(available_cpus(), len(trials))
        task = ray.remote(num_cpus=1)(run_trial)
        t1 = time.perf_counter()
        results = ray.get([task.remote(cfg, t.overrides(), os.path.join(tmp, "ray", t.name)) for t in trials])
        ray_wall = time.perf_counter() - t1
        failed = [r for r in results if r["status"] != "ok"]
        if failed:
            raise RuntimeError(f"ray trial failed:\n{failed[0]['traceback']}")
        if args.address is None:
            ray.shutdown()
    total_ray = ray_wall + startup
    overhead = (ray_wall * slots - sum(serial)) / len(trials)
    rows = [
        ["serial (one after another)", round(serial_wall, 1), "-", "1.00"],
        ["ray, excluding start-up", round(ray_wall, 1), slots, f"{serial_wall / ray_wall:.2f}"],
        ["ray, including start-up", round(total_ray, 1), slots, f"{serial_wall / total_ray:.2f}"],
    ]
    print_table(["mode", "wall s", "parallel slots", "speed-up"], rows)
    print(f"{len(trials)} trials x {args.timesteps} env steps; mean serial trial {sum(serial) / len(serial):.1f} s; "
          f"Ray start-up {startup:.1f} s; Ray overhead per trial {overhead:+.1f} s "
          f"(slot-seconds beyond the serial compute, divided by trials)")
    return {
        "benchmark": "sweep", "trials": len(trials), "timesteps": args.timesteps, "parallel_slots": slots,
        "serial_wall_s": serial_wall, "serial_trial_s": serial, "ray_wall_s": ray_wall, "ray_startup_s": startup,
        "speedup": serial_wall / ray_wall, "speedup_with_startup": serial_wall / total_ray,
        "overhead_per_trial_s": overhead,
    }
