"""Skills under named perturbation conditions through ROS 2, next to the same skills in the env (issue 24).

For every item (a library skill, or `plan:TASK`: the hierarchical controller over the library's
skills on a long-horizon task) and every condition (`envs/conditions.yaml`):

- **env**: the skill (or controller) in `make_condition_env(task, condition)`, one episode per
  seed `seed + i`;
- **ROS 2**: the same seeds through real rclpy/Fast DDS on loopback: sim_robot applying the same
  condition (`ros_bridge.sim_conditions`: the envs' ConditionChannel and Randomizer, one control
  tick per arm command), the cubes where the env's reset put them, the task's goal from that reset,
  and skill_executor (a fresh process per episode, as `skillstack deploy` starts it) running the
  skill through the observation, IK and safety path of a real robot.

Success, both paths: the env's success test at the step the episode ends, the env's full episode
length (a benchmark runs the full episode: docs/skill_library.md#success-one-rule); on the ROS
path that step is the arm command of the last control tick, scored on sim_robot's true state.
Reported: success x condition for each path and ROS minus env (goal: within 5 points everywhere).
The skills come from the library (`--library`), or the starter skills built in a temporary one.
"""

from __future__ import annotations

import argparse
import os
import random
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

DEFAULT_ITEMS = "reach_goal,pick_place_red,plan:stack-two"
DEFAULT_CONDITIONS = "nominal,latency80,obs_noise1cm,drops,dynamics,realistic"
GOAL_POINTS = 5.0  # |ROS - env| in percentage points, per condition


def add_arguments(p: argparse.ArgumentParser) -> None:
    """Options of `skillstack bench robustness`."""
    p.add_argument("--skills", default=DEFAULT_ITEMS, help=f"library skills and plan:TASK items, comma-separated (default {DEFAULT_ITEMS})")
    p.add_argument("--conditions", default=DEFAULT_CONDITIONS, help=f"conditions, comma-separated or 'all' (default {DEFAULT_CONDITIONS})")
    p.add_argument("--conditions-file", default=None, help="a YAML file of your own conditions (envs/conditions.yaml's form)")
    p.add_argument("--episodes", type=int, default=2, help="seeded episodes per item, condition and path (default 2)")
    p.add_argument("--seed", type=int, default=0, help="episode i uses seed + i on both paths (default 0)")
    p.add_argument("--library", default=None, help="skill library (default: the starter skills in a temporary library)")
    p.add_argument("--domain-id", type=int, default=None, help="ROS_DOMAIN_ID (default: a random one in 100..199)")
    p.add_argument("--executor-set", action="append", default=[], metavar="KEY=VALUE",
                   help="a skill_executor parameter for every ROS episode, e.g. ik_base=measured (repeatable; "
                        "the names and checks of ros_bridge.params.ExecutorParams); ik_base applies to the env path too")


def executor_overrides(items: list[str]) -> dict[str, Any]:
    """`--executor-set KEY=VALUE` strings -> skill_executor parameters, checked as the node checks
    them (an unknown name or a bad value is refused here, before any episode runs)."""
    import dataclasses

    from policies.training.config_loading import apply_overrides
    from ros_bridge.params import ExecutorParams

    out = apply_overrides({}, items, schema=ExecutorParams)
    known = {f.name for f in dataclasses.fields(ExecutorParams)}
    unknown = sorted(set(out) - known)
    if unknown:
        raise ValueError(f"--executor-set: unknown skill_executor parameter(s) {unknown}; known: {sorted(known)}")
    ExecutorParams(**out)  # its own checks (ik_base must be ..., rates > 0, ...)
    return out


@dataclass(frozen=True)
class Item:
    """One row group: a library skill or a long-horizon task run by the hierarchical controller."""

    label: str
    skill: str  # library name, or "" for a plan
    plan_task: str  # long-horizon task, or ""
    env_id: str
    env_kwargs: dict[str, Any]
    objects: tuple[str, ...]
    max_steps: int


def _items(spec: str, library: Any) -> list[Item]:
    import envs
    from ros_bridge.hierarchy import resolve_plan_task

    out = []
    for name in [s.strip() for s in spec.split(",") if s.strip()]:
        if name.startswith("plan:"):
            task = name.split(":", 1)[1]
            env_id, _ = resolve_plan_task(task)
            skill, plan_task, kwargs = "", task, {}
        else:
            manifest = library.manifest(name)
            env_id, kwargs, skill, plan_task = manifest.task.env_id, dict(manifest.task.env_kwargs), name, ""
        env = envs.make(env_id, **kwargs)
        out.append(Item(name, skill, plan_task, env_id, kwargs, tuple(env.unwrapped.objects), int(env.spec.max_episode_steps)))
        env.close()
    if not out:
        raise ValueError("--skills names nothing to run")
    return out


def _env_episodes(item: Item, cond: Any, seeds: list[int], lib: Any, ik_base: str) -> tuple[list[bool], list[dict[str, Any]]]:
    """The env path: successes, and each episode's start (cube positions, goal) for the ROS path.
    `ik_base`: the executor's, so that both paths step from the same base under latency."""
    from envs.conditions import make_condition_env

    env = make_condition_env(item.env_id, cond, **{**item.env_kwargs, "ik_base": ik_base})
    u = env.unwrapped
    starts, successes = [], []
    try:
        if item.plan_task:
            from planning import HierarchicalController, load_library_skills
            from ros_bridge.hierarchy import resolve_plan_task

            skills = load_library_skills(lib, "all")
            _, goal = resolve_plan_task(item.plan_task)
        else:
            skill = lib.load(item.skill).bind(env)
        for s in seeds:
            obs, _ = env.reset(seed=s)
            starts.append({"positions": [float(v) for o in item.objects for v in u.object_pos(o)], "goal": u.goal.tolist()})
            if item.plan_task:  # a fresh controller per episode, as a fresh executor process has
                r = HierarchicalController(skills, seed=0).run_episode(env, goal, seed=s)
                successes.append(bool(r.success))
                continue
            skill.reset()
            info: dict[str, Any] = {}
            for t in range(item.max_steps):
                obs, _r, _term, _trunc, info = env.step(skill(obs))
                if info.get("is_success") and "first_success_step" not in starts[-1]:
                    starts[-1]["first_success_step"] = t + 1
            successes.append(bool(info.get("is_success", 0.0)))
    finally:
        env.close()
    return successes, starts


def _ros_episodes(item: Item, cond: Any, seeds: list[int], starts: list[dict[str, Any]], library_root: str,
                  domain: int, workdir: Path, conditions_file: str | None,
                  overrides: dict[str, Any] | None = None) -> tuple[list[bool], list[dict[str, Any]]]:
    """The ROS path: sim_robot under `cond` in this process, skill_executor per episode; scored on the true state."""
    import envs
    from ros_bridge.sim_episodes import SimEpisodes, load_true_state

    judge = envs.make(item.env_id, **item.env_kwargs)
    name = cond.name if conditions_file is None or cond.name in _shipped() else f"{conditions_file}:{cond.name}"
    sim = SimEpisodes(domain, item.objects, name, workdir)
    successes, ends = [], []
    try:
        for s, start in zip(seeds, starts):
            params: dict[str, Any] = {"library_root": library_root, "stop_on_success": False, "autostart": True}
            if item.plan_task:
                params.update(plan_task=item.plan_task, plan_max_steps=item.max_steps)
            else:
                params.update(skill=item.skill, goal=start["goal"])
            params.update(overrides or {})
            judge.reset(seed=s)  # the task's own state (its goal); then the true states sim_robot goes through
            judge.unwrapped.goal = np.asarray(start["goal"], dtype=np.float64)
            first: list[int] = []

            def on_tick(tick: int, qpos: dict[str, np.ndarray]) -> None:
                load_true_state(judge, qpos)
                if not first and judge.unwrapped.is_success():
                    first.append(tick)

            end = sim.run(s, start["positions"], params, item.max_steps, item.max_steps * 0.04 * 4 + 60.0, on_tick)
            load_true_state(judge, end["qpos"])
            ok = end["reason"] == "ticks" and judge.unwrapped.is_success()
            successes.append(bool(ok))
            ends.append({"seed": s, "success": bool(ok), "ticks": end["ticks"], "first_success_tick": first[0] if first else None,
                         "seconds": round(end["seconds"], 2),
                         "objects": {o: judge.unwrapped.object_pos(o).round(4).tolist() for o in item.objects},
                         "goal": [round(g, 4) for g in start["goal"]],
                         "reason": end["reason"], **({"log": end["log"]} if "log" in end else {})})
    finally:
        sim.close()
        judge.close()
    return successes, ends


def _shipped() -> set[str]:
    from envs.conditions import load_conditions

    return set(load_conditions())


def _pct(k: int, n: int) -> str:
    return f"{k}/{n} ({100.0 * k / n:.0f}%)" if n else "-"


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Both paths for every item and condition; print the table; return the JSON-able result."""
    from ros_bridge._env import ensure_ros_env

    ensure_ros_env()
    from envs.conditions import load_conditions, parse_conditions
    from envs.in_flight import DEFAULT_IK_BASE
    from skill_library import SkillLibrary, build_starter_skills

    if args.episodes < 1:
        raise ValueError(f"--episodes must be >= 1, got {args.episodes}")
    overrides = executor_overrides(args.executor_set)
    names = list(load_conditions(args.conditions_file)) if args.conditions == "all" else args.conditions
    conds = parse_conditions(names, args.conditions_file)
    domain = args.domain_id if args.domain_id is not None else random.Random(os.getpid() ^ int(time.time())).randrange(100, 200)
    seeds = [args.seed + i for i in range(args.episodes)]
    rows: list[dict[str, Any]] = []
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="skillstack-bench-robustness-") as tmp:
        if args.library:
            lib = SkillLibrary(args.library)
        else:
            lib = SkillLibrary(Path(tmp) / "library")
            build_starter_skills(lib)
        items = _items(args.skills, lib)
        for item in items:
            for cond in conds:
                t_item = time.perf_counter()
                work = Path(tmp) / f"{item.label.replace(':', '_')}-{cond.name}"
                work.mkdir(parents=True)
                try:
                    env_ok, starts = _env_episodes(item, cond, seeds, lib, overrides.get("ik_base", DEFAULT_IK_BASE))
                    ros_ok, episodes = _ros_episodes(item, cond, seeds, starts, str(lib.root), domain, work, args.conditions_file, overrides)
                except Exception as exc:  # one broken cell is reported; the others still run
                    print(f"  {item.label:<16} {cond.name:<13} error: {type(exc).__name__}: {exc}", flush=True)
                    rows.append({"item": item.label, "condition": cond.name, "error": f"{type(exc).__name__}: {exc}"})
                    continue
                row = {
                    "item": item.label, "condition": cond.name, "env_id": item.env_id, "episodes": len(seeds),
                    "env_successes": sum(env_ok), "ros_successes": sum(ros_ok),
                    "env_success_rate": float(np.mean(env_ok)), "ros_success_rate": float(np.mean(ros_ok)),
                    "ros_minus_env_points": 100.0 * (float(np.mean(ros_ok)) - float(np.mean(env_ok))),
                    "env_per_episode": env_ok, "env_first_success_steps": [st.get("first_success_step") for st in starts], "ros_per_episode": episodes, "seconds": round(time.perf_counter() - t_item, 1),
                }  # fmt: skip
                rows.append(row)
                print(f"  {item.label:<16} {cond.name:<13} env {_pct(sum(env_ok), len(seeds)):<11} "
                      f"ros {_pct(sum(ros_ok), len(seeds)):<11} ({row['seconds']:.0f} s)", flush=True)
    table = _table(rows, [c.name for c in conds], [i.label for i in items])
    print(table)
    worst = max((abs(r["ros_minus_env_points"]) for r in rows if "error" not in r), default=0.0)
    verdict = f"largest |ROS - env| = {worst:.0f} points (goal <= {GOAL_POINTS:.0f}) over {args.episodes} episode(s) per cell"
    print(verdict)
    return {
        "benchmark": "robustness", "episodes": args.episodes, "seed": args.seed, "conditions": [c.to_dict() for c in conds],
        "items": [i.label for i in items], "rows": rows, "table": table, "max_abs_difference_points": worst,
        "executor_overrides": overrides, "goal_points": GOAL_POINTS, "within_goal": worst <= GOAL_POINTS and not any("error" in r for r in rows), "seconds": round(time.perf_counter() - t0, 1),
    }  # fmt: skip


def _table(rows: list[dict[str, Any]], conditions: list[str], items: list[str]) -> str:
    """Markdown: one row per item and path (env, ROS 2, ROS - env), one column per condition."""
    cell = {(r["item"], r["condition"]): r for r in rows}
    lines = ["| skill | path | " + " | ".join(conditions) + " |", "|---|---|" + "---|" * len(conditions)]

    def show(r: dict[str, Any], what: str) -> str:
        if "error" in r:
            return "error"
        return f"{r['ros_minus_env_points']:+.0f}" if what == "diff" else _pct(r[f"{what}_successes"], r["episodes"])

    for item in items:
        rs = [cell[(item, c)] for c in conditions]
        for label, what in (("env", "env"), ("ROS 2", "ros"), ("ROS - env", "diff")):
            lines.append(f"| {item} | {label} | " + " | ".join(show(r, what) for r in rs) + " |")
    return "\n".join(lines)
