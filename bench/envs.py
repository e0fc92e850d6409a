"""Env step rate of every (robot, task) pair, and its overhead over raw MuJoCo physics measured in the same run.

For each task on each shipped robot (`--robots`): run N env steps with seeded random actions (resets excluded from the
timing) and record the actuator targets the env applied; then restore the initial
state and replay exactly those targets through bare `mujoco.mj_step(nstep=substeps)`.
Both runs integrate the identical trajectory, so the ratio env-time / physics-time is
the env's own cost (IK, observation, rewards, safety, validation) per unit of physics.
Rounds are interleaved and the median taken, because these machines are shared.
"""

from __future__ import annotations

import argparse
import statistics
import time


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--steps", type=int, default=2000, help="env steps per round (default 2000)")
    p.add_argument("--rounds", type=int, default=3, help="interleaved rounds; the median is reported (default 3)")
    p.add_argument("--envs", default="", help="comma-separated env ids (default: every sparse task of every robot in --robots)")
    p.add_argument("--robots", default="", help="comma-separated robots (default: every shipped robot)")
    p.add_argument("--seed", type=int, default=0)


def measure_env(env_id: str, steps: int, rounds: int, seed: int = 0) -> dict:
    """Median env steps/s, physics-only steps/s, and their time ratio for one env id.

    Env and physics runs alternate episode by episode (same start state, same actuator
    targets), so load from other processes hits both sides alike.
    """
    import mujoco
    import numpy as np

    import envs

    env = envs.make(env_id)
    u = env.unwrapped
    m, d, n = u.model, u.data, u.n_substeps
    spec = mujoco.mjtState.mjSTATE_INTEGRATION
    start = np.empty(mujoco.mj_stateSize(m, spec))
    episode = env.spec.max_episode_steps
    ctrls = np.empty((episode, m.nu))
    rng = np.random.default_rng(seed)
    env_rates, phys_rates, ratios = [], [], []
    for r in range(rounds):
        env_t = phys_t = 0.0
        done = 0
        while done < steps:
            env.reset(seed=seed + r * 100_000 + done)
            mujoco.mj_getState(m, d, start, spec)
            actions = rng.uniform(-1, 1, size=(episode, *env.action_space.shape)).astype(np.float32)
            t0 = time.perf_counter()
            for i in range(episode):
                u.step(actions[i])
                ctrls[i] = d.ctrl
            env_t += time.perf_counter() - t0
            mujoco.mj_setState(m, d, start, spec)
            t0 = time.perf_counter()
            for i in range(episode):
                d.ctrl[:] = ctrls[i]
                mujoco.mj_step(m, d, nstep=n)
            phys_t += time.perf_counter() - t0
            done += episode
        env_rates.append(done / env_t)
        phys_rates.append(done / phys_t)
        ratios.append(env_t / phys_t)
    env.close()
    return {
        "env_id": env_id,
        "substeps": n,
        "physics_hz": round(1.0 / m.opt.timestep),
        "env_steps_per_s": statistics.median(env_rates),
        "physics_steps_per_s": statistics.median(phys_rates),
        "overhead_ratio": statistics.median(ratios),
    }


def run(args: argparse.Namespace) -> dict:
    import envs
    from common.table import print_table

    robots = [r for r in args.robots.split(",") if r] or list(envs.ROBOT_ENV_IDS)
    unknown = [r for r in robots if r not in envs.ROBOT_ENV_IDS]
    if unknown:
        raise ValueError(f"unknown robot(s) {unknown}; shipped: {', '.join(envs.ROBOT_ENV_IDS)}")
    ids = [i for i in args.envs.split(",") if i] or [i for r in robots for i in envs.ROBOT_ENV_IDS[r] if "Dense" not in i]
    rows = [measure_env(i, args.steps, args.rounds, args.seed) for i in ids]
    for row in rows:
        row["robot"] = envs.robot_of(row["env_id"])
    print_table(
        ["env", "substeps", "env steps/s", "physics-only steps/s", "overhead ratio (goal <= 1.3)"],
        [[r["env_id"], r["substeps"], round(r["env_steps_per_s"]), round(r["physics_steps_per_s"]),
          round(r["overhead_ratio"], 3)] for r in rows],
    )
    for pick in (r for r in rows if r["env_id"].endswith("PickPlace-v0")):
        print(f"{pick['env_id']}: {pick['env_steps_per_s']:.0f} env steps/s (goal >= 1000), "
              f"overhead ratio {pick['overhead_ratio']:.2f} (goal <= 1.3)")
    return {"benchmark": "envs", "steps": args.steps, "rounds": args.rounds, "results": rows}
