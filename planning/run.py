"""`run_task`: run a long-horizon task with library skills, sequentially planned or blended.

The public API behind ``skillstack run-task``: resolves the task, loads the skills
(keeping learned and scripted apart: ``kinds="learned"`` refuses scripted skills),
loads the bandit preferences for (robot, task), runs the episodes, saves the
preferences atomically, optionally writes a video of the first episode, and returns a
JSON-able report whose ``skill_kinds`` says which kinds produced the figures.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from planning.bandit import PreferenceStore
from planning.blend import BlendConfig, evaluate_blender, load_blender, save_blender, train_blender
from planning.executor import ControllerConfig, HierarchicalController, load_library_skills, summarize
from planning.grounding import skills_obs_layout
from planning.spec import TaskSpec, resolve_task

__all__ = ["figure_label", "run_task"]


def figure_label(skills: Sequence[Any]) -> str:
    """"learned", "scripted" or "mixed": what a success figure over these skills measures."""
    kinds = {"learned" if s.kind in ("rl", "bc") else "scripted" for s in skills}
    return kinds.pop() if len(kinds) == 1 else "mixed"


def run_task(
    task: str | os.PathLike[str] | TaskSpec,
    *,
    library: Any = None,
    skills: Sequence[Any] | None = None,
    kinds: str = "all",
    goal: str | None = None,
    episodes: int = 10,
    seed: int = 0,
    mode: str = "plan",
    video: str | os.PathLike[str] | None = None,
    camera: str = "front",
    preferences: str | os.PathLike[str] | None = None,
    adapt: bool = True,
    config: ControllerConfig | None = None,
    blend: BlendConfig | None = None,
    on_episode: Callable[[int, dict[str, Any]], None] | None = None,
    blender: str | os.PathLike[str] | None = None,
    blender_out: str | os.PathLike[str] | None = None,
    lock: str | os.PathLike[str] | None = None,
    robot: str | None = None,
    condition: str = "nominal",
) -> dict[str, Any]:
    """Run `episodes` episodes of `task` and report success rate, skills per episode, re-plans, safety cost.

    task: a long-horizon task name (``stack-three``), an env id, a YAML spec or a TaskSpec.
    library: a SkillLibrary, its path, or None for the default library (ignored if `skills` given).
    kinds: "all" | "learned" | "scripted". mode: "plan" (sequential, with re-planning and
    bandit adaptation) or "blend" (train a SkillBlender-style high-level policy, then evaluate).
    preferences: directory of the per-robot, per-task preference files (default
    $SKILLSTACK_PREFERENCES or ~/.skillstack/preferences); nothing is written when `adapt` is False.
    blender: (blend mode) a saved blending policy to evaluate instead of training one;
    blender_out: (blend mode) where to save the freshly trained one (replaced if present).
    lock: a lock file (`skillstack skills lock TASK`): load exactly the skills it pins and refuse
    anything else (another version or digest, a skill it does not pin, another task).
    robot: (plan mode) the robot description to run on (default the Panda); the env takes the
    observation layout of the learned skills ("tcp" skills run on any robot).
    condition: (plan mode) the `envs.conditions` condition the robot runs under: the env applies
    it (latency, noise, drops, dynamics) and the planner ranks skills by their descriptors for it.
    """
    import envs
    import sim_assets

    if mode not in ("plan", "blend"):
        raise ValueError(f"mode must be 'plan' or 'blend', got {mode!r}")
    if episodes < 1:
        raise ValueError(f"episodes must be >= 1, got {episodes}")
    spec = task if isinstance(task, TaskSpec) else resolve_task(task, goal)
    if spec.env_id is None:
        raise ValueError(f"task {spec.name!r} names no env; add 'env:' to its spec")
    if lock is not None:
        from skill_library.lockfile import read_lock

        pins = read_lock(lock)
        pins.check_task(spec.name)
        if skills is not None:  # given skills must be exactly the pinned ones
            for s in skills:
                pins.check(s.manifest, str(s.path))
    if skills is None:
        from skill_library.registry import SkillLibrary

        lib = library if isinstance(library, SkillLibrary) else SkillLibrary(library)
        if lock is not None:
            from skill_library.lockfile import load_locked_skills

            skills = load_locked_skills(lib, pins, kinds)
        else:
            skills = load_library_skills(lib, kinds)
    elif kinds == "learned" and any(s.kind not in ("rl", "bc") for s in skills):
        raise ValueError("learned-only run refuses scripted skills: " + ", ".join(s.ref for s in skills if s.kind not in ("rl", "bc")))
    skills = list(skills)
    report: dict[str, Any] = {
        "task": spec.name,
        "env_id": spec.env_id,
        "goal": spec.goal_expression,
        "mode": mode,
        "episodes": episodes,
        "seed": seed,
        "skill_kinds": figure_label(skills),
        "lock": None if lock is None else str(lock),
        "skills": [{"ref": s.ref, "kind": s.kind} for s in skills],
    }
    frames: list[Any] = []
    if mode == "plan":
        store = PreferenceStore(preferences)
        from dataclasses import replace

        from envs.conditions import make_condition_env

        cfg = config or ControllerConfig(adapt=adapt)
        condition = cfg.condition if condition == "nominal" else condition  # a config may declare it too
        cfg = replace(cfg, condition=condition)
        env = make_condition_env(spec.env_id, condition, robot=robot or sim_assets.DEFAULT_ROBOT, obs_layout=skills_obs_layout(skills))
        robot_id, scene = env.unwrapped.robot.description.model_id, spec.name
        report["robot"] = robot_id
        report["condition"] = condition
        bandit = store.load(robot_id, scene)
        ctrl = HierarchicalController(skills, cfg, bandit, seed=seed)
        results = []
        for ep in range(episodes):
            r = ctrl.run_episode(env, spec.goal, seed=seed + ep, camera=camera if (video and ep == 0) else None)
            if ep == 0:
                frames = r.frames
            results.append(r)
            if on_episode is not None:
                on_episode(ep, r.to_dict())
        env.close()
        report["summary"] = summarize(results)
        report["results"] = [r.to_dict() for r in results]
        report["preferences"] = {"robot": robot_id, "scene": scene, **bandit.to_dict()}
        if cfg.adapt:
            report["preferences_file"] = str(store.save(robot_id, scene, bandit))
    else:
        if robot is not None:
            raise ValueError("blend mode runs on the default robot; --robot is for plan mode")
        if condition != "nominal":
            raise ValueError("blend mode runs nominal; a condition is for plan mode")
        if blender is not None:
            model = load_blender(blender, skills)
            if model.env_id != spec.env_id:
                raise ValueError(f"blender {blender} was trained on {model.env_id}, not {spec.env_id}")
            bcfg, labels, info = model.config, model.labels, {"loaded": str(blender), "algo": model.config.algo}
        else:
            bcfg = blend or BlendConfig(seed=seed)
            model, labels, info = train_blender(skills, spec.env_id, spec.goal, bcfg)
            if blender_out is not None:
                report["blender_saved"] = str(save_blender(model, labels, skills, spec.env_id, bcfg, blender_out, overwrite=True))
        ev = evaluate_blender(model, skills, labels, spec.env_id, episodes=episodes, seed=seed, config=bcfg, camera=camera if video else None)
        frames = ev.pop("frames")
        results = ev.pop("results")
        report["training"] = info
        report["summary"] = {
            "episodes": episodes, "success_rate": ev["success_rate"], "mean_skills": ev["mean_skills"],
            "mean_replans": 0.0, "mean_safety_cost": ev["mean_safety_cost"],
        }  # fmt: skip
        report["mean_weights"] = ev["mean_weights"]
        report["results"] = results
    if video:
        from common.video import write_mp4

        report["video"] = str(write_mp4(frames, Path(video), fps=25.0))
    return report
