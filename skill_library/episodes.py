"""One skill episode, one success rule: what `skills evaluate` (descriptors) and `skillstack eval` share.

The success rule (docs/skill_library.md#success), the same for descriptors, eval, run-task and
the benchmarks: **an episode succeeds when the success test holds at the step the episode ends**
(Gymnasium-Robotics' `info["is_success"]` at the final step), never "at any step".

- A flat policy (a training run, a long-horizon task in run-task, a benchmark) runs the env's full
  episode; the test is the env's `info["is_success"]` at its last step.
- A skill's episode ends at the env's episode length, or earlier when the skill itself ends, as
  the planner's executor stops it: a skill that declares effects when they hold, a scripted skill
  when its controller is done. The test at that step is the skill's effects when it declares
  them, else the env's `info["is_success"]` (for a scripted skill also its controller finishing
  its phases, its own notion of done).

Before a skill runs, `setup_skill` lets the task's scripted expert bring the scene to where the
skill starts (its first phase for an `expert_phases` skill, else its preconditions).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

__all__ = ["EpisodeResult", "evaluate_episodes", "evaluate_skill_target", "run_skill_episode", "setup_skill", "summarise"]

_LONG = 1_000_000  # the skill's own step budget ends an episode, not a TimeLimit that also counted the setup


@dataclass(frozen=True)
class EpisodeResult:
    """One skill episode: success under the rule above, steps run, duration (s), summed safety cost
    and each reward term's return."""

    success: bool
    steps: int
    duration_s: float
    safety_cost: float
    returns: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _expert_first_phase(skill: Any) -> str | None:
    c = skill.manifest.controller
    if c is None or c.name != "expert_phases":
        return None
    return str(c.params["phases"][0])


def setup_skill(env: Any, skill: Any, obs: Any, expert: Any, mode: str, budget: int) -> tuple[Any, bool]:
    """Run the task's scripted expert (at most `budget` steps) until the skill can start; (obs, ok).

    `mode` "none" starts the skill where the env is.
    """
    if mode == "none":
        return obs, True
    first_phase = _expert_first_phase(skill)
    u = env.unwrapped
    if first_phase is not None:
        if expert is None or expert.PHASES.index(first_phase) == 0:
            return obs, True
        expert.reset()
        for _ in range(budget):
            if expert.phase == first_phase:
                return obs, True
            obs, *_ = env.step(expert.act(obs))
        return obs, expert.phase == first_phase
    if not skill.manifest.preconditions or skill.preconditions_hold(u.scene_state()):
        return obs, True
    if expert is None:
        return obs, False
    expert.reset()
    for _ in range(budget):
        obs, *_ = env.step(expert.act(obs))
        if skill.preconditions_hold(u.scene_state()):
            return obs, True
    return obs, False


def run_skill_episode(env: Any, skill: Any, obs: Any, max_steps: int, frames: list[np.ndarray] | None = None) -> EpisodeResult:
    """Run a bound `skill` from `obs` for at most `max_steps` control steps and score it by the rule above.

    `frames`, when given, collects `env.render()` after every step (for a video).
    """
    u = env.unwrapped
    skill.reset()
    scripted = skill.kind == "scripted"
    has_effects = bool(skill.manifest.effects)
    cost, success, steps, returns = 0.0, False, 0, {}
    while steps < max_steps:
        obs, _r, terminated, truncated, info = env.step(skill(obs))
        steps += 1
        cost += float(info.get("safety_cost", 0.0))
        for k, v in info.get("reward_terms", {}).items():
            returns[k] = returns.get(k, 0.0) + float(v)
        if frames is not None:
            frames.append(env.render())
        if has_effects:
            success = skill.effects_hold(u.scene_state())
            ended = success  # the executor stops a skill once its effects hold
        elif scripted:
            success = skill.done or bool(info.get("is_success", 0.0))
            ended = skill.done
        else:
            success = bool(info.get("is_success", 0.0))
            ended = False  # judged at the final step: reaching the goal and leaving it is a failure
        if ended or terminated or truncated:
            break
    control_dt = float(getattr(u, "control_dt", 0.04))
    return EpisodeResult(bool(success), steps, steps * control_dt, cost, returns)


def summarise(results: Sequence[EpisodeResult]) -> dict[str, Any]:
    """Episodes, successes, success rate, mean duration (s), mean safety cost and mean returns of some episodes."""
    n = len(results)
    if n == 0:
        return {"episodes": 0, "successes": 0, "success_rate": 0.0, "mean_duration_s": 0.0, "mean_safety_cost": 0.0}
    k = sum(int(r.success) for r in results)
    return {
        "episodes": n,
        "successes": k,
        "success_rate": k / n,
        "mean_duration_s": float(np.mean([r.duration_s for r in results])),
        "mean_safety_cost": float(np.mean([r.safety_cost for r in results])),
        "returns": {k: float(np.mean([r.returns.get(k, 0.0) for r in results])) for k in results[0].returns},
    }


def evaluate_episodes(
    skill: Any,
    env: Any,
    *,
    seeds: Sequence[int] | None = None,
    states: Sequence[Any] | None = None,
    max_steps: int | None = None,
    setup: str = "auto",
    setup_steps: int | None = None,
    frames: list[np.ndarray] | None = None,
) -> list[EpisodeResult]:
    """Episodes of a bound `skill` on `env`, each from `env.reset(seed=s)` (then the setup) or from a
    saved state `env.reset(options={"state": x})` (started as is); what `skillstack eval` runs.

    `max_steps` defaults to the env's episode length; `frames` films the first episode.
    """
    if (seeds is None) == (states is None):
        raise ValueError("give seeds or states, not both")
    if max_steps is None:
        max_steps = int(getattr(env.spec, "max_episode_steps", None) or 50)
    expert = _expert_for(env) if setup == "auto" and seeds is not None else None
    out = []
    starts = [("seed", s) for s in seeds] if seeds is not None else [("state", s) for s in states]  # type: ignore[union-attr]
    for i, (kind, value) in enumerate(starts):
        if kind == "seed":
            obs, _ = env.reset(seed=int(value))
            obs, ok = setup_skill(env, skill, obs, expert, setup, 4 * max_steps if setup_steps is None else int(setup_steps))
            if not ok:  # the scene never reached the skill's start: the skill did not get to run
                out.append(EpisodeResult(False, 0, 0.0, 0.0))
                continue
        else:
            obs, _ = env.reset(options={"state": np.asarray(value, dtype=np.float64)})
        out.append(run_skill_episode(env, skill, obs, max_steps, frames if i == 0 else None))
    return out


def _expert_for(env: Any) -> Any:
    try:
        from envs.experts import make_expert

        return make_expert(env)
    except ValueError:
        return None


def evaluate_skill_target(
    skill: Any,
    episodes: int,
    seed: int,
    *,
    env_id: str | None = None,
    env_kwargs: dict[str, Any] | None = None,
    condition: Any = None,
    video: str | os.PathLike[str] | None = None,
) -> dict[str, Any]:
    """`skillstack eval SKILL`: episodes from seeds `seed + i` in the skill's task env (or `env_id`),
    under `condition` (an `envs.conditions` Condition or name; default nominal); the summary plus
    `env_id`, `safety_cost` (mean per episode) and `video` (the first episode, when asked)."""
    from envs.conditions import make_condition_env

    if episodes < 1:
        raise ValueError(f"episodes must be >= 1, got {episodes}")
    eid = env_id or skill.manifest.task.env_id
    kwargs = dict(skill.manifest.task.env_kwargs if env_kwargs is None else env_kwargs)
    if video:
        kwargs.update(render_mode="rgb_array", render_width=320, render_height=240)
    env = make_condition_env(eid, condition or "nominal", **kwargs)
    max_steps = int(env.spec.max_episode_steps or 50)
    env.close()
    env = make_condition_env(eid, condition or "nominal", **kwargs, max_episode_steps=_LONG)
    frames: list[np.ndarray] | None = [] if video else None
    try:
        skill.bind(env)
        if frames is not None:
            env.reset(seed=seed)
            frames.append(env.render())
        results = evaluate_episodes(skill, env, seeds=[seed + i for i in range(episodes)], max_steps=max_steps, frames=frames)
    finally:
        env.close()
    out = {**summarise(results), "env_id": eid, "safety_cost": summarise(results)["mean_safety_cost"]}
    if frames:
        from common.video import write_mp4

        out["video"] = str(write_mp4(frames, video, fps=1.0 / float(getattr(env.unwrapped, "control_dt", 0.04))))
    return out
