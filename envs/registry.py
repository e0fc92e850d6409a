"""Gymnasium registration of the skillstack task family and a `make` with helpful errors."""

from __future__ import annotations

from typing import Any

import gymnasium as gym

NAMESPACE = "skillstack"
# task name -> max episode steps (25 Hz control)
EPISODE_STEPS = {"PandaReach": 50, "PandaPush": 50, "PandaPickPlace": 50, "PandaStack": 100}
# Long-horizon tasks (envs/long_horizon.py): several skills in sequence; not in ENV_IDS (their experts are chains).
LONG_HORIZON_STEPS = {"PandaPickPlaceLong": 100, "PandaStackTwo": 150, "PandaStackThree": 300, "PandaPushThenPick": 200}


def _ids(steps_by_task: dict[str, int] = EPISODE_STEPS, module: str = "envs.tasks") -> dict[str, dict[str, Any]]:
    out = {}
    for task, steps in steps_by_task.items():
        for suffix, reward_type in (("", "sparse"), ("Dense", "dense")):
            out[f"{NAMESPACE}/{task}{suffix}-v0"] = {
                "entry_point": f"{module}:{task}Env",
                "max_episode_steps": steps,
                "kwargs": {"reward_type": reward_type},
            }
    return out


_PRIMITIVE_SPECS = _ids()
_LONG_SPECS = _ids(LONG_HORIZON_STEPS, "envs.long_horizon")
_SPECS = {**_PRIMITIVE_SPECS, **_LONG_SPECS}
ENV_IDS: tuple[str, ...] = tuple(_PRIMITIVE_SPECS)
LONG_HORIZON_IDS: tuple[str, ...] = tuple(_LONG_SPECS)


def register_all() -> None:
    """Register every skillstack env id with Gymnasium (idempotent)."""
    for env_id, spec in _SPECS.items():
        if env_id not in gym.registry:
            gym.register(id=env_id, **spec)


def make(env_id: str, **kwargs: Any) -> gym.Env:
    """`gymnasium.make` for skillstack ids; an unknown id raises ValueError listing valid ones."""
    register_all()
    if env_id not in _SPECS:
        raise ValueError(f"unknown env id {env_id!r}; valid ids: {', '.join(ENV_IDS + LONG_HORIZON_IDS)}")
    return gym.make(env_id, **kwargs)
