"""Gymnasium registration of the skillstack task family and a `make` with helpful errors."""

from __future__ import annotations

from typing import Any

import gymnasium as gym

NAMESPACE = "skillstack"
# task name -> max episode steps (25 Hz control)
EPISODE_STEPS = {"PandaReach": 50, "PandaPush": 50, "PandaPickPlace": 50, "PandaStack": 100}


def _ids() -> dict[str, dict[str, Any]]:
    out = {}
    for task, steps in EPISODE_STEPS.items():
        for suffix, reward_type in (("", "sparse"), ("Dense", "dense")):
            out[f"{NAMESPACE}/{task}{suffix}-v0"] = {
                "entry_point": f"envs.tasks:{task}Env",
                "max_episode_steps": steps,
                "kwargs": {"reward_type": reward_type},
            }
    return out


_SPECS = _ids()
ENV_IDS: tuple[str, ...] = tuple(_SPECS)


def register_all() -> None:
    """Register every skillstack env id with Gymnasium (idempotent)."""
    for env_id, spec in _SPECS.items():
        if env_id not in gym.registry:
            gym.register(id=env_id, **spec)


def make(env_id: str, **kwargs: Any) -> gym.Env:
    """`gymnasium.make` for skillstack ids; an unknown id raises ValueError listing valid ones."""
    register_all()
    if env_id not in _SPECS:
        raise ValueError(f"unknown env id {env_id!r}; valid ids: {', '.join(ENV_IDS)}")
    return gym.make(env_id, **kwargs)
