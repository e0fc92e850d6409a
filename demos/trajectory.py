"""Joint-space trajectory of a demonstration, the same for simulated and real-robot demos.

What "send a recorded motion to the robot" needs (the ROS bridge's replay streams it as
a JointTrajectory): the robot's joint positions (arm, then gripper) at the control rate.
Which robot, and how its observation is laid out, comes from what the demo file recorded
(`recorded_robot`): its env id and env kwargs (`robot`, `obs_layout`), or an import's own
`robot` / `joint_order` attributes. Real-robot imports store the joints as `obs/joint_pos`;
simulated recordings in the "joint" layout store the robot part of the env observation
(`envs.observation.robot_fields`): the arm joints in `joint_pos`, the finger opening in
`gripper_width`, mapped to finger joints through the description's width map; in the "tcp"
layout (no joint angles) the joints are read from the recorded simulator states. Files
recorded before robots were data name no robot: they are the default robot's, in the
"joint" layout, and read as before.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from demos.format import Episode

__all__ = ["JointTrajectory", "joint_trajectory", "recorded_robot"]

REAL_ENV_PREFIX = "real/"  # env ids of real-robot imports without a sim env: real/<robot>


@dataclass
class JointTrajectory:
    """Positions (T+1, joints) of the robot's joints (arm then gripper, `joint_names`) every `dt` seconds."""

    joint_names: tuple[str, ...]
    dt: float
    positions: np.ndarray

    @property
    def times(self) -> np.ndarray:
        """Time of each row from the start of the demo (s)."""
        return np.arange(len(self.positions)) * self.dt


def recorded_robot(env_id: str | None = None, env_kwargs: Mapping[str, Any] | None = None,
                   episode_attrs: Mapping[str, Any] | None = None) -> tuple[str, str]:
    """(robot, observation layout) a demo was recorded with.

    The robot: an episode's own `robot` attribute (bag imports), else env_kwargs["robot"], else the robot
    the registered env id runs (`real/<robot>` for imports without a sim env), else the default robot.
    The layout: env_kwargs["obs_layout"], else "joint" (the envs' default, and all there was before
    layouts were recorded). ValueError for an env id that is neither registered nor `real/<robot>`.
    """
    from envs.observation import OBS_LAYOUTS
    from sim_assets import DEFAULT_ROBOT, load_robot

    kwargs = dict(env_kwargs or {})
    robot = (episode_attrs or {}).get("robot") or kwargs.get("robot")
    if not robot and env_id:
        if env_id.startswith(REAL_ENV_PREFIX):
            robot = env_id[len(REAL_ENV_PREFIX):]
        else:
            import envs

            robot = envs.robot_of(env_id)
    robot = str(robot or DEFAULT_ROBOT)
    load_robot(robot)  # an unknown robot fails here, naming the shipped ones
    layout = str(kwargs.get("obs_layout", "joint"))
    if layout not in OBS_LAYOUTS:
        raise ValueError(f"demo recorded with an unknown obs_layout {layout!r}; layouts: {list(OBS_LAYOUTS)}")
    return robot, layout


def joint_trajectory(episode: Episode, dt: float | None = None, *, env_id: str | None = None,
                     env_kwargs: Mapping[str, Any] | None = None) -> JointTrajectory:
    """Joint positions of `episode` at every step, plus the final state (T+1 rows).

    `env_id` / `env_kwargs`: the demo file's (`DemoFile.env_id`, `.env_kwargs`), which say the robot
    and observation layout (`recorded_robot`); without them the episode is taken as the default robot's
    in the "joint" layout (how every file was recorded before robots were data). dt defaults to the
    demo's `rate_hz` attribute (real-robot imports) or the envs' control period (0.04 s). Raises
    ValueError when the demo has neither `joint_pos` nor `observation` in `obs/`, or an observation
    of the wrong width for its robot and layout.
    """
    from envs.base import TabletopEnv
    from envs.observation import robot_fields
    from sim_assets import load_robot

    if dt is None:
        rate = episode.attrs.get("rate_hz")
        dt = 1.0 / float(rate) if rate else float(TabletopEnv.control_dt)
    robot, layout = recorded_robot(env_id, env_kwargs, episode.attrs)
    desc = load_robot(robot)
    names = desc.arm.joints + desc.gripper.joints
    order = episode.attrs.get("joint_order")  # an import's own joints (any robot), description names
    if isinstance(order, str):
        order = json.loads(order)
    if order and "joint_pos" in episode.obs and np.shape(episode.obs["joint_pos"])[1:] == (len(order),):
        names = tuple(order)
        q = np.concatenate((episode.obs["joint_pos"], episode.next_obs["joint_pos"][-1:]))
    elif "joint_pos" in episode.obs and np.shape(episode.obs["joint_pos"])[1:] == (len(names),):
        q = np.concatenate((episode.obs["joint_pos"], episode.next_obs["joint_pos"][-1:]))
    elif "observation" in episode.obs and layout == "tcp":
        q = _joints_from_states(episode, env_id, env_kwargs, names)
    elif "observation" in episode.obs:
        obs = np.concatenate((episode.obs["observation"], episode.next_obs["observation"][-1:]))
        sl, offset = {}, 0
        for field, size in robot_fields(len(desc.arm.joints), layout):
            sl[field] = slice(offset, offset + size)
            offset += size
        if obs.shape[1] < offset:
            raise ValueError(f"demo {episode.name or '?'}: observation has {obs.shape[1]} columns, fewer than the "
                             f"{offset} of the {robot}'s {layout!r} layout it was recorded with")
        grip = desc.gripper
        q = np.empty((len(obs), len(names)))
        q[:, : len(desc.arm.joints)] = obs[:, sl["joint_pos"]]
        q[:, len(desc.arm.joints):] = (np.asarray(grip.width_to_joint_offset, dtype=np.float64)
                                       + np.asarray(grip.width_to_joint_scale, dtype=np.float64) * obs[:, sl["gripper_width"]])
    else:
        raise ValueError(f"demo {episode.name or '?'} has neither obs/joint_pos nor obs/observation")
    return JointTrajectory(joint_names=tuple(names), dt=float(dt), positions=q)


def _joints_from_states(episode: Episode, env_id: str | None, env_kwargs: Mapping[str, Any] | None,
                        names: tuple[str, ...]) -> np.ndarray:
    """The joints of a "tcp"-layout recording (whose observation has no joint angles), from its simulator
    states, replayed into the recording env. ValueError when the demo has no states to read them from."""
    if episode.states is None or not env_id or env_id.startswith(REAL_ENV_PREFIX):
        raise ValueError(f"demo {episode.name or '?'} was recorded in the 'tcp' observation layout, which holds no "
                         "joint angles, and has no simulator states to read them from")
    import envs

    env = envs.make(env_id, **dict(env_kwargs or {}))
    try:
        u = env.unwrapped
        if u.robot.joint_names != names:
            raise ValueError(f"demo {episode.name or '?'}: env {env_id} runs joints {u.robot.joint_names}, not the recorded {names}")
        rows = []
        for state in episode.states:
            u.set_state(state)
            rows.append(np.concatenate((u.data.qpos[u.robot.arm_qpos], u.data.qpos[u.robot.finger_qpos])))
        # States are stored before each step (T rows); the final one is the last step replayed (deterministic).
        u.step(episode.actions[-1])
        rows.append(np.concatenate((u.data.qpos[u.robot.arm_qpos], u.data.qpos[u.robot.finger_qpos])))
    finally:
        env.close()
    return np.stack(rows)
