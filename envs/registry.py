"""Gymnasium registration of the skillstack task family, for every shipped robot, and a `make` with helpful errors.

Every task is registered once per robot under `skillstack/<prefix><Task>[Dense]-v0`, where
the prefix is the robot description's `env_prefix` (`PandaReach-v0`, `UR5eReach-v0`, ...).
`make(env_id, robot=NAME)` returns the named robot's version of the same task, so a
recorded `env.spec.id` always names the robot it ran on.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym

from sim_assets import DEFAULT_ROBOT, load_robot, robot_names

NAMESPACE = "skillstack"
# task -> max episode steps (25 Hz control). The task classes keep the names they had when the
# Panda was the only robot: envs.tasks.Panda<Task>Env.
TASK_STEPS = {"Reach": 50, "Push": 50, "PickPlace": 50, "Stack": 100}
# Long-horizon tasks (envs/long_horizon.py): several skills in sequence; not in ENV_IDS (their experts are chains).
LONG_HORIZON_TASK_STEPS = {"PickPlaceLong": 100, "StackTwo": 150, "StackThree": 300, "PushThenPick": 200}
_CLASS_PREFIX = "Panda"
_PREFIXES = {name: load_robot(name).env_prefix for name in robot_names()}
# The same, keyed by the default robot's id names ("PandaReach"), as before robots were data.
EPISODE_STEPS = {f"{_PREFIXES[DEFAULT_ROBOT]}{task}": steps for task, steps in TASK_STEPS.items()}
LONG_HORIZON_STEPS = {f"{_PREFIXES[DEFAULT_ROBOT]}{task}": steps for task, steps in LONG_HORIZON_TASK_STEPS.items()}


def _ids(robot: str, steps_by_task: dict[str, int], module: str) -> dict[str, dict[str, Any]]:
    out = {}
    for task, steps in steps_by_task.items():
        for suffix, reward_type in (("", "sparse"), ("Dense", "dense")):
            kwargs: dict[str, Any] = {"reward_type": reward_type}
            if robot != DEFAULT_ROBOT:
                kwargs["robot"] = robot
            out[f"{NAMESPACE}/{_PREFIXES[robot]}{task}{suffix}-v0"] = {
                "entry_point": f"{module}:{_CLASS_PREFIX}{task}Env",
                "max_episode_steps": steps,
                "kwargs": kwargs,
            }
    return out


_PRIMITIVE = {r: _ids(r, TASK_STEPS, "envs.tasks") for r in robot_names()}
_LONG = {r: _ids(r, LONG_HORIZON_TASK_STEPS, "envs.long_horizon") for r in robot_names()}
_SPECS = {env_id: spec for specs in (*_PRIMITIVE.values(), *_LONG.values()) for env_id, spec in specs.items()}
# Ids of every primitive / long-horizon task (sparse and dense) per robot.
ROBOT_ENV_IDS: dict[str, tuple[str, ...]] = {r: tuple(specs) for r, specs in _PRIMITIVE.items()}
ROBOT_LONG_HORIZON_IDS: dict[str, tuple[str, ...]] = {r: tuple(specs) for r, specs in _LONG.items()}
# The default robot's ids (what every command and benchmark uses unless told a robot).
ENV_IDS: tuple[str, ...] = ROBOT_ENV_IDS[DEFAULT_ROBOT]
LONG_HORIZON_IDS: tuple[str, ...] = ROBOT_LONG_HORIZON_IDS[DEFAULT_ROBOT]


def register_all() -> None:
    """Register every skillstack env id with Gymnasium (idempotent)."""
    for env_id, spec in _SPECS.items():
        if env_id not in gym.registry:
            gym.register(id=env_id, **spec)


def robot_of(env_id: str) -> str:
    """The shipped robot a registered id runs (ValueError for an unknown id)."""
    _check_id(env_id)
    return _SPECS[env_id]["kwargs"].get("robot", DEFAULT_ROBOT)


def id_for_robot(env_id: str, robot: str) -> str:
    """The id of the same task (and reward variant) on another shipped robot."""
    task = env_id.split("/", 1)[1].removeprefix(_PREFIXES[robot_of(env_id)])
    if robot not in _PREFIXES:
        load_robot(robot)  # raises, listing the shipped robots
    return f"{NAMESPACE}/{_PREFIXES[robot]}{task}"


def make(env_id: str, **kwargs: Any) -> gym.Env:
    """`gymnasium.make` for skillstack ids; an unknown id raises ValueError listing valid ones.

    `robot=NAME` runs the same task on another shipped robot (the returned env's spec id is
    that robot's id); a description YAML path runs it on a robot that is not shipped.
    """
    register_all()
    _check_id(env_id)
    robot = kwargs.pop("robot", None)
    if robot is not None:
        if isinstance(robot, str) and robot in _PREFIXES:
            env_id = id_for_robot(env_id, robot)
        else:
            load_robot(robot)  # a description file path (or a description): refused here when bad
            kwargs["robot"] = robot
    return gym.make(env_id, **kwargs)


def _check_id(env_id: str) -> None:
    if env_id not in _SPECS:
        valid = [i for ids in (*ROBOT_ENV_IDS.values(), *ROBOT_LONG_HORIZON_IDS.values()) for i in ids]
        raise ValueError(f"unknown env id {env_id!r}; valid ids: {', '.join(valid)}")
