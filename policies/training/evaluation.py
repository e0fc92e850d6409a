"""Deterministic evaluation of a policy: success rate, safety cost, per-term returns, and
cube-displacement coverage for skill discovery (the issue's 2 cm cells)."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import gymnasium as gym
import numpy as np

from policies.training.config import TrainConfig
from policies.training.env_factory import make_env

__all__ = ["COVERAGE_CELL", "displacement_coverage", "eval_skills", "evaluate_model", "run_episodes"]

COVERAGE_CELL = 0.02  # metres: the 2 cm cells for cube-displacement coverage


def evaluate_model(
    model: Any,
    cfg: TrainConfig,
    episodes: int,
    seed: int,
    video_path: str | os.PathLike[str] | None = None,
    skills: np.ndarray | None = None,
    normalize: Callable[[Any], Any] | None = None,
) -> dict[str, Any]:
    """Deterministic evaluation: success rate, safety cost per episode, per-term returns.

    With skill discovery, episode i runs skill ``skills[i % len(skills)]`` and the result
    also has the cube-displacement coverage (distinct 2 cm cells of the final minus the
    initial cube x-y, the no-displacement cell excluded). The first episode is recorded
    to ``video_path`` when given. ``normalize`` maps a raw observation to the policy's
    input (the training ``VecNormalize``'s ``normalize_obs``).
    """
    env = make_env(cfg, render=video_path is not None, monitor=False)
    norm = normalize or (lambda o: o)
    try:
        return run_episodes(lambda o: model.predict(norm(o), deterministic=True)[0], env, episodes, seed, video_path,
                            skills)
    finally:
        env.close()


def run_episodes(
    policy: Callable[[Any], np.ndarray],
    env: gym.Env,
    episodes: int,
    seed: int,
    video_path: str | os.PathLike[str] | None = None,
    skills: np.ndarray | None = None,
) -> dict[str, Any]:
    """Roll ``policy`` out for ``episodes`` episodes on ``env`` (seeds ``seed + i``) and
    summarise success, safety cost and per-term returns (see ``evaluate_model``)."""
    successes, costs, lengths = [], [], []
    returns: dict[str, list[float]] = {}
    displacements = []
    frames: list[np.ndarray] = []
    u = env.unwrapped
    objects = tuple(getattr(u, "objects", ()))
    for ep in range(episodes):
        options = {"skill": skills[ep % len(skills)]} if skills is not None else None
        obs, _ = env.reset(seed=seed + ep, options=options)
        start = u.object_pos(objects[0])[:2].copy() if objects else None
        record = video_path is not None and ep == 0
        if record:
            frames.append(env.render())
        term_sum: dict[str, float] = {}
        cost, info, steps, done = 0.0, {}, 0, False
        while not done:
            obs, _, terminated, truncated, info = env.step(policy(obs))
            steps += 1
            cost += float(info.get("safety_cost", 0.0))
            for k, v in info.get("reward_terms", {}).items():
                term_sum[k] = term_sum.get(k, 0.0) + float(v)
            if record:
                frames.append(env.render())
            done = terminated or truncated
        successes.append(float(info.get("is_success", 0.0)))
        costs.append(cost)
        lengths.append(steps)
        for k, v in term_sum.items():
            returns.setdefault(k, []).append(v)
        if start is not None:
            displacements.append(u.object_pos(objects[0])[:2] - start)
    out: dict[str, Any] = {
        "episodes": episodes,
        "success_rate": float(np.mean(successes)) if successes else 0.0,
        "safety_cost": float(np.mean(costs)) if costs else 0.0,
        "episode_length": float(np.mean(lengths)) if lengths else 0.0,
        "returns": {k: float(np.mean(v)) for k, v in returns.items()},
    }
    if displacements:
        out["coverage"] = displacement_coverage(np.asarray(displacements))
        out["mean_displacement"] = float(np.mean(np.linalg.norm(displacements, axis=1)))
    if video_path is not None and frames:
        from common.video import write_mp4

        write_mp4(frames, video_path, fps=1.0 / float(getattr(u, "control_dt", 0.04)))
        out["video"] = str(video_path)
    return out


def displacement_coverage(displacements: np.ndarray, cell: float = COVERAGE_CELL) -> int:
    """Distinct ``cell``-sized x-y cells reached by displacements (centred cells; the cell
    around zero, i.e. "did not move the cube", is not counted)."""
    cells = {tuple(c) for c in np.floor(np.asarray(displacements)[:, :2] / cell + 0.5).astype(int).tolist()}
    cells.discard((0, 0))
    return len(cells)


def eval_skills(cfg: TrainConfig, n: int) -> np.ndarray | None:
    """The skills an evaluation cycles through (``None`` without skill discovery)."""
    if cfg.skill_discovery is None:
        return None
    from policies.skill_discovery import make_prior

    return make_prior(cfg.skill_discovery).enumerate(n, seed=cfg.eval.seed)
