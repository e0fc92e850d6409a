"""Distil skills into learned `bc` skills from demonstrations of the hierarchical controller.

A teacher (the controller over scripted skills: the starter skills, or any skills the
library holds) solves the long-horizon tasks while every action each skill chooses is
recorded, in that skill's own observation layout (the grounding view's
`skill_observation`, so a skill made on PandaStack reads green-on-red as red-on-blue),
together with the decision's outcome. Only executions that reached their effects are
kept. Per teacher skill one behaviour-cloning network (`policies.bc`) is fitted on the
pooled executions from every task, so a pick skill sees cubes picked from the table,
beside a tower and after a push, and is packaged as a `bc` skill with the teacher's
preconditions and effects, descriptors evaluated like any other skill, and provenance
whose `env_steps` is the number of env steps the demonstrations took (the budget a flat
policy is given in `skillstack bench tasks`).

Two choices matter for closed-loop success of the students (measured in docs/planning.md):

- DART-style noise injection (Laskey et al., 2017): the executed action is the teacher's
  plus Gaussian noise on the translation components, the recorded label is the teacher's
  clean action; the students see, and learn to correct, the small drifts their own errors
  cause. The gripper component is never perturbed (a twitch would drop the cube).
- The teacher runs with `finish_steps=0`: each skill hands over as soon as its effects hold,
  as a learned skill will (it has no script to finish), so the next skill's data start
  where a student will hand over.

And one for a short distillation: enough gradient updates (`batch` 64), or a student fitted on
a few thousand steps dithers between closing and opening the gripper at the cube.
"""

from __future__ import annotations

import tempfile
import time
import zlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["DistillConfig", "DistilledSkill", "SkillDemos", "TaskDemos", "collect_skill_demos", "distill_skills", "flat_observation"]

OBS_KEYS = ("observation", "desired_goal")
DEFAULT_TASKS = ("pick-place", "stack-two", "stack-three", "push-then-pick")


@dataclass(frozen=True)
class DistillConfig:
    """What to record and how to fit the students."""

    tasks: tuple[str, ...] = DEFAULT_TASKS
    episodes_per_task: int = 300
    action_noise: float = 0.1  # std of the noise added to the executed translation actions (units of the action bound)
    seed: int = 0
    hidden: tuple[int, ...] = (256, 256)
    epochs: int = 200
    # Small batches: a student's data are a few thousand steps, and at 256 a short fit took too few updates to
    # tell a grasp from a release (120 stack-two episodes x 60 epochs: 900 updates, 77 % closed-loop success;
    # at 64: 87 %, at no extra time per epoch on the CPU).
    batch: int = 64
    lr: float = 1e-3
    threads: int = 1  # torch threads for fitting (a second thread was 14x slower on 2 busy cores)
    suffix: str = "_bc"
    version: str = "0.1.0"
    evaluate: bool = True  # descriptors for each student (grid x grid cells, episodes_per_cell each)
    grid: int = 3
    episodes_per_cell: int = 2
    obs_layout: str = "tcp"  # the students' observation layout: "tcp" (no joint angles) runs on any robot
    # The envs.conditions condition the teachers are recorded under (e.g. "realistic"): the students then
    # learn from the late, noisy, dropped observations the now observing scripted teachers acted on.
    condition: str = "nominal"
    # The shipped robots the teachers are recorded on (`skillstack robots`): each task's episodes are split evenly
    # across them (the first robots take the remainder), and each robot's episodes are seeded as with one robot, so
    # robots=("panda",) records the same demonstrations as before robots were a choice.
    robots: tuple[str, ...] = ("panda",)
    # A teacher skill that reached its effects fewer times than this gets no student: a network fitted on one or
    # two executions knows those paths only (the zoo's stack-three teachers pushed a cube once in 120 episodes).
    min_executions: int = 1


@dataclass
class SkillDemos:
    """Recorded executions of one teacher skill: observations (N, D), clean actions (N, A)."""

    template: Any  # the teacher skill (its manifest gives task, preconditions, effects)
    obs: list[np.ndarray] = field(default_factory=list)
    actions: list[np.ndarray] = field(default_factory=list)
    executions: int = 0
    failures: int = 0
    env_steps: int = 0  # steps taken by all its executions, failed ones included (what its data cost)

    @property
    def steps(self) -> int:
        return len(self.obs)


@dataclass
class TaskDemos:
    """Whole successful teacher episodes of one task in the env's own layout (what a flat BC policy learns from).

    Every env step is a row: skill steps with the teacher's clean action, the controller's
    own steps (clearing the gripper, holding still once the goal holds) with what it executed.
    """

    env_id: str
    obs: list[np.ndarray] = field(default_factory=list)
    actions: list[np.ndarray] = field(default_factory=list)
    episodes: int = 0


class _StepRecorder:
    """Wraps an env: records (observation before the step, label) for every step; the label is the
    clean action the hook left in `clean`, else the executed action."""

    def __init__(self, env: Any) -> None:
        self.env = env
        self.clean: np.ndarray | None = None
        self.rows: list[tuple[np.ndarray, np.ndarray]] = []
        self._obs: Any = None

    def __getattr__(self, name: str) -> Any:
        return getattr(self.env, name)

    def reset(self, **kwargs: Any) -> Any:
        self.rows = []
        self._obs, info = self.env.reset(**kwargs)
        return self._obs, info

    def step(self, action: np.ndarray) -> Any:
        label = self.clean if self.clean is not None else np.asarray(action, dtype=np.float64)
        self.rows.append((flat_observation(self._obs), np.array(label, dtype=np.float64)))
        self.clean = None
        out = self.env.step(action)
        self._obs = out[0]
        return out


@dataclass
class DistilledSkill:
    """One student: its ref, teacher, data size and own success (descriptor total, when evaluated)."""

    ref: str
    teacher: str
    executions: int
    steps: int
    bc_mse: float
    success_rate: float | None
    train_seconds: float


def flat_observation(obs: Mapping[str, np.ndarray]) -> np.ndarray:
    """The `OBS_KEYS` of a dict observation, concatenated: what a distilled (or flat BC) network reads."""
    return np.concatenate([np.ravel(np.asarray(obs[k], dtype=np.float64)) for k in OBS_KEYS])


def _split(total: int, parts: int) -> list[int]:
    """`total` episodes over `parts` robots, as evenly as possible (the first ones take the remainder)."""
    return [total // parts + (i < total % parts) for i in range(parts)]


def _check_robots(config: DistillConfig) -> None:
    from sim_assets import robot_names

    known = robot_names()
    if not config.robots:
        raise ValueError(f"robots must name at least one robot; known robots: {', '.join(known)}")
    unknown = [r for r in config.robots if r not in known]
    if unknown:
        raise ValueError(f"unknown robot(s) {', '.join(map(repr, unknown))}; known robots: {', '.join(known)}")
    if len(set(config.robots)) != len(config.robots):
        raise ValueError(f"robots must not repeat, got {config.robots}")
    if config.episodes_per_task < len(config.robots):
        raise ValueError(f"episodes_per_task ({config.episodes_per_task}) must give every robot an episode ({len(config.robots)} robots)")


def _file_episode(result: Any, rows: list[tuple[np.ndarray, np.ndarray]], pending: Mapping[int, tuple[str, list, list]],
                  demos: dict[str, SkillDemos], task_demos: TaskDemos) -> None:
    """One recorded episode into the demos: its env rows into `task_demos` when it succeeded, and each
    skill execution's (observation, action) pairs into its teacher's SkillDemos (failed ones counted)."""
    if result.success:
        task_demos.obs += [o for o, _ in rows]
        task_demos.actions += [a for _, a in rows]
        task_demos.episodes += 1
    for d in result.decisions:
        name, xs, ys = pending.get(d.index, (None, [], []))
        if name is None:
            continue
        rec = demos[name]
        rec.env_steps += len(xs)
        if d.outcome == "success" and xs:
            rec.obs += xs
            rec.actions += ys
            rec.executions += 1
        else:
            rec.failures += 1


def collect_skill_demos(
    teachers: Sequence[Any],
    config: DistillConfig = DistillConfig(),
    progress: Callable[[str, int, dict[str, Any]], None] | None = None,
) -> tuple[dict[str, SkillDemos], dict[str, Any], dict[str, TaskDemos]]:
    """Run the controller over `teachers` on every task of `config`, recording each skill's actions.

    Returns (skill name -> SkillDemos, stats, task name -> TaskDemos) where stats has
    env_steps (all steps taken, the demonstration budget), per-task teacher success and
    episode counts, and the same per robot of `config.robots` (`stats["tasks"][task]["robots"]`).
    A task's TaskDemos pool every robot's successful episodes under the task's (Panda) env id.
    The same config and seed give the same demonstrations.
    `progress(task, episode, result_dict)` is called after every episode.
    """
    from envs.conditions import make_condition_env
    from planning.executor import ControllerConfig, HierarchicalController
    from planning.spec import resolve_task

    if config.episodes_per_task < 1:
        raise ValueError(f"episodes_per_task must be >= 1, got {config.episodes_per_task}")
    if config.action_noise < 0 or not np.isfinite(config.action_noise):
        raise ValueError(f"action_noise must be a finite value >= 0, got {config.action_noise}")
    _check_robots(config)
    demos: dict[str, SkillDemos] = {}
    stats: dict[str, Any] = {"env_steps": 0, "tasks": {}}
    rng = np.random.default_rng(config.seed)
    pending: dict[int, tuple[str, list[np.ndarray], list[np.ndarray]]] = {}
    flat: dict[str, TaskDemos] = {}
    recorder: _StepRecorder | None = None

    def hook(decision: Any, gs: Any, obs: Mapping[str, np.ndarray], action: np.ndarray) -> np.ndarray:
        rec = pending.setdefault(decision.index, (gs.skill.name, [], []))
        rec[1].append(flat_observation(gs.view.skill_observation(obs)))
        rec[2].append(np.asarray(action, dtype=np.float64).copy())
        if gs.skill.name not in demos:
            demos[gs.skill.name] = SkillDemos(gs.skill)
        if recorder is not None:
            recorder.clean = np.asarray(action, dtype=np.float64).copy()
        executed = np.array(action, dtype=np.float32)
        executed[:-1] += rng.normal(0.0, config.action_noise, executed.size - 1).astype(np.float32)
        return np.clip(executed, -1.0, 1.0)

    ctrl_cfg = ControllerConfig(explore=False, adapt=False, finish_steps=0)
    for task in config.tasks:
        spec = resolve_task(task)
        task_demos = flat[task] = TaskDemos(spec.env_id)
        successes = 0
        per_robot: dict[str, Any] = {}
        for robot, episodes in zip(config.robots, _split(config.episodes_per_task, len(config.robots))):
            env = recorder = _StepRecorder(make_condition_env(spec.env_id, config.condition, obs_layout=config.obs_layout,
                                                              robot=robot))  # fmt: skip
            ctrl = HierarchicalController(teachers, ctrl_cfg, seed=config.seed, action_hook=hook)
            robot_successes = 0
            for ep in range(episodes):
                pending.clear()
                # Seeded by task name, not position, so one task's episodes are the same whatever else is demonstrated.
                result = ctrl.run_episode(env, spec.goal, seed=config.seed * 100_003 + zlib.crc32(task.encode()) % 10_007 + ep)
                stats["env_steps"] += result.steps
                robot_successes += int(result.success)
                _file_episode(result, recorder.rows, pending, demos, task_demos)
                if progress is not None:
                    progress(task, ep, result.to_dict())
            env.close()
            successes += robot_successes
            per_robot[robot] = {"episodes": episodes, "teacher_success_rate": robot_successes / episodes}
        stats["tasks"][task] = {"episodes": config.episodes_per_task, "teacher_success_rate": successes / config.episodes_per_task,
                                "robots": per_robot}  # fmt: skip
    return demos, stats, flat


def distill_skills(
    teachers: Sequence[Any],
    library: Any,
    config: DistillConfig = DistillConfig(),
    log: Callable[[str], None] | None = None,
    progress: Callable[[str, int, dict[str, Any]], None] | None = None,
) -> tuple[list[DistilledSkill], dict[str, Any]]:
    """Record the teacher controller, fit one `bc` student per teacher skill, add the students to `library`.

    `library`: a SkillLibrary or its path. Students are named teacher name + `config.suffix`
    (``pick_red`` -> ``pick_red_bc``), keep the teacher's task, preconditions and effects, and
    record the demonstrations' env steps in their provenance. Returns (students, stats).
    Raises ValueError when no teacher execution succeeded (nothing to learn from).
    """
    import torch

    import envs
    from policies.bc import train_bc

    from skill_library.authoring import new_provenance, observation_spec_from_flat_stats, task_from_env
    from skill_library.publish import DescriptorSettings, publish_skill
    from skill_library.registry import SkillLibrary

    if config.min_executions < 1:
        raise ValueError(f"min_executions must be >= 1, got {config.min_executions}")
    lib = library if isinstance(library, SkillLibrary) else SkillLibrary(library)
    if config.threads > 0:
        torch.set_num_threads(config.threads)
    t0 = time.perf_counter()
    demos, stats, _flat = collect_skill_demos(teachers, config, progress)
    stats["collect_seconds"] = time.perf_counter() - t0
    usable = {n: d for n, d in demos.items() if d.executions >= config.min_executions}
    if not usable:
        raise ValueError(f"no teacher skill reached its effects {config.min_executions} time(s) or more: nothing to distil "
                         "(check the teachers on these tasks, or record more episodes)")
    out: list[DistilledSkill] = []
    with tempfile.TemporaryDirectory(prefix="skillstack-distill-") as tmp:
        for name, d in sorted(usable.items()):
            man = d.template.manifest
            env = envs.make(man.task.env_id, obs_layout=config.obs_layout)
            x, y = np.stack(d.obs), np.stack(d.actions)
            policy = train_bc(x, y, action_low=env.action_space.low, action_high=env.action_space.high, hidden=config.hidden,
                              epochs=config.epochs, batch=config.batch, lr=config.lr, seed=config.seed)  # fmt: skip
            student = name + config.suffix
            path = Path(tmp) / student
            cfg = {k: v for k, v in vars(config).items()}
            cfg["teacher"] = d.template.ref
            evaluate = config.evaluate and bool(man.effects)  # success = effects hold: none to check without
            published = publish_skill(
                path, name=student, version=config.version, kind="bc", env=env, arch=policy.arch, state_dict=policy.state_dict,
                observation=observation_spec_from_flat_stats(env, OBS_KEYS, policy.obs_mean, policy.obs_std),
                description=(f"Behaviour cloning of {d.template.ref} from {d.executions} successful executions "
                             f"({d.steps} steps) recorded while the hierarchical controller solved "
                             f"{', '.join(config.tasks)} (DART noise {config.action_noise}). {man.description}"),
                tags=("bc", "distilled", task_from_env(env).family), preconditions=man.preconditions, effects=man.effects,
                provenance=new_provenance(command="skillstack skills distill", config=cfg, seed=config.seed,
                                          env_steps=d.env_steps),
                descriptors=DescriptorSettings(config.grid, config.episodes_per_cell, config.seed) if evaluate else None,
                library=lib,
            )  # fmt: skip
            env.close()
            ref, success = published.ref, published.success_rate
            out.append(DistilledSkill(ref, d.template.ref, d.executions, d.steps, float(policy.train_loss[-1]), success, policy.seconds))
            if log:
                log(f"{ref}: {d.executions} executions, {d.steps} steps, bc mse {policy.train_loss[-1]:.4f}, "
                    f"own success {'-' if success is None else f'{success:.0%}'}")  # fmt: skip
    stats["seconds"] = time.perf_counter() - t0
    return out, stats
