"""Scripted expert success per (robot, task): N seeded episodes each, success at the last step.

Issue 22's check that every task runs on every robot: each task's scripted expert (the
same waypoint script for every robot, through the same IK controller) must succeed in
>= 95 % of 100 seeded episodes on each robot. Seeds are `--seed` .. `--seed + N - 1`
(the expert test's seeds). Success is `info["is_success"]` at the last step of the
episode, as everywhere else; safety is the summed per-step safety cost, averaged.
"""

from __future__ import annotations

import argparse
import time

GOAL_SUCCESS = 0.95


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--episodes", type=int, default=100, help="seeded episodes per (robot, task) (default 100)")
    p.add_argument("--robots", default="", help="comma-separated robots (default: every shipped robot)")
    p.add_argument("--tasks", default="", help="comma-separated task names such as Reach,StackThree (default: all)")
    p.add_argument("--seed", type=int, default=1000, help="first episode seed (default 1000)")


def measure_expert(env_id: str, episodes: int, seed: int = 1000) -> dict:
    """Success rate, mean safety cost and wall time of the scripted expert on one env id."""
    import numpy as np

    import envs
    from envs.experts import run_expert_episode

    if episodes < 1:
        raise ValueError(f"episodes must be >= 1, got {episodes}")
    env = envs.make(env_id)
    t0 = time.perf_counter()
    results = [run_expert_episode(env, seed=seed + i) for i in range(episodes)]
    wall = time.perf_counter() - t0
    env.close()
    failed = [seed + i for i, r in enumerate(results) if not r["success"]]
    return {
        "env_id": env_id,
        "robot": envs.robot_of(env_id),
        "episodes": episodes,
        "success_rate": 1.0 - len(failed) / episodes,
        "failed_seeds": failed,
        "mean_safety_cost": float(np.mean([r["safety_cost"] for r in results])),
        "wall_s": wall,
    }


def run(args: argparse.Namespace) -> dict:
    import envs
    from common.table import print_table

    robots = [r for r in args.robots.split(",") if r] or list(envs.ROBOT_ENV_IDS)
    unknown = [r for r in robots if r not in envs.ROBOT_ENV_IDS]
    if unknown:
        raise ValueError(f"unknown robot(s) {unknown}; shipped: {', '.join(envs.ROBOT_ENV_IDS)}")
    tasks = [t for t in args.tasks.split(",") if t]
    ids = [
        i
        for r in robots
        for i in envs.ROBOT_ENV_IDS[r] + envs.ROBOT_LONG_HORIZON_IDS[r]
        if "Dense" not in i and (not tasks or any(i.endswith(f"{t}-v0") for t in tasks))
    ]
    if not ids:
        raise ValueError(f"no task matches {tasks}; tasks are named like Reach, PickPlace, StackThree")
    rows = [measure_expert(i, args.episodes, args.seed) for i in ids]
    print_table(
        ["env", "robot", "episodes", f"success (goal >= {GOAL_SUCCESS:.0%})", "mean safety cost", "failed seeds"],
        [[r["env_id"], r["robot"], r["episodes"], f"{r['success_rate']:.1%}", round(r["mean_safety_cost"], 3),
          ",".join(map(str, r["failed_seeds"][:8])) or "-"] for r in rows],
    )
    short = [r["env_id"] for r in rows if r["success_rate"] < GOAL_SUCCESS]
    print("every expert at or above the goal" if not short else f"below the goal: {', '.join(short)}")
    return {"benchmark": "experts", "episodes": args.episodes, "seed": args.seed, "goal": GOAL_SUCCESS, "results": rows}
