"""Which robots a skill runs on, and which it was checked on.

A skill's manifest names the robot it was trained on (`embodiment.robot`), the observation
layout it reads (`embodiment.obs_layout`: "tcp" runs on any robot, "joint" only on the same
arm joints; `skill.check_env_compatible` enforces it) and `embodiment.checked_on`: one record
per (robot, env) it was evaluated on, {robot, env_id, episodes, success_rate}. The records
come from the descriptors evaluation (`skill_library.descriptors.evaluate_skill`) on the
skill's home robot when it is published, and on another robot with
`skillstack skills evaluate NAME --robot ur5e`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from skill_library.manifest import Manifest

__all__ = ["check_record", "robot_env_kwargs", "with_check"]


def robot_env_kwargs(manifest: Manifest, robot: str | None) -> dict[str, Any]:
    """The skill's task env kwargs, on `robot` (a robot description name, e.g. "ur5e") when given."""
    kwargs = dict(manifest.task.env_kwargs)
    if robot is not None:
        import sim_assets

        sim_assets.load_robot(robot)  # unknown names fail here, listing the valid ones
        kwargs["robot"] = robot
    return kwargs


def check_record(descriptors: Mapping[str, Any]) -> dict[str, Any]:
    """The `checked_on` record of a descriptors evaluation: the robot's model id, the env it ran, episodes, success rate."""
    import envs
    import sim_assets

    env_id = str(descriptors["env_id"])
    robot = descriptors.get("env_kwargs", {}).get("robot")
    if isinstance(robot, str) and robot in sim_assets.robot_names():
        env_id = envs.id_for_robot(env_id, robot)  # envs.make(id, robot=NAME) runs that robot's id
    description = sim_assets.load_robot(envs.robot_of(env_id) if robot is None or robot in sim_assets.robot_names() else robot)
    totals = descriptors["totals"]
    return {
        "robot": description.model_id,
        "env_id": env_id,
        "episodes": int(totals["episodes"]),
        "success_rate": float(totals["success_rate"]),
    }


def with_check(manifest: Manifest, record: Mapping[str, Any]) -> Manifest:
    """A copy of `manifest` whose `checked_on` holds `record`, replacing an older one for the same robot and env."""
    kept = tuple(c for c in manifest.embodiment.checked_on if (c["robot"], c["env_id"]) != (record["robot"], record["env_id"]))
    return replace(manifest, embodiment=replace(manifest.embodiment, checked_on=kept + (dict(record),)))
