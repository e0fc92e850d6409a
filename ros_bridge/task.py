"""The robot-side twin of a task: observation and action -> joint targets with the envs' code.

`TaskModel` holds a scratch instance of the task's environment (never stepped). Each
control period the executor writes the measured joint and object state into its MjData,
refreshes kinematics, and asks the *environment's own* code for the observation and for
the joint targets an end-effector action maps to (`PandaEnv.command`: workspace
clip, yaw target, differential IK). So a policy sees on the robot exactly the vector it
was trained on, and its actions mean exactly what they meant in simulation.

`load_policy` turns the executor's `skill` parameter into a callable obs -> action:
``expert`` (the task's scripted expert, reading the same filled-in state), a skill
package directory, or ``name[@version]`` from the skill library; `resolve_task` picks the
env the skill was trained in when no task is given.
No rclpy here.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import mujoco
import numpy as np

from ros_bridge.state import JointReading, ObjectReading

__all__ = ["DEFAULT_TASK", "Policy", "PolicyInfo", "TaskModel", "load_policy", "resolve_task"]


class Policy(Protocol):
    """What the executor runs: obs dict -> action array, with an episode reset."""

    def __call__(self, obs: Mapping[str, np.ndarray]) -> np.ndarray:
        """The action for this observation."""
        ...

    def reset(self) -> None:
        """Start a new episode."""
        ...


class TaskModel:
    """Scratch environment of one task, filled from measured state (see module docstring)."""

    def __init__(self, env_id: str, env_kwargs: Mapping[str, Any] | None = None, robot: str | None = None):
        """env_id: the task; env_kwargs: as recorded in a skill's manifest; robot: run the task
        on this robot (a shipped name or description path) when it is not the id's own."""
        import envs

        kwargs = dict(env_kwargs or {})
        kwargs.setdefault("randomization", None)  # the robot supplies the noise
        if robot is not None and kwargs.get("robot", envs.robot_of(env_id)) != robot:
            kwargs["robot"] = robot
        self.env = envs.make(env_id, **kwargs).unwrapped
        self.env.limit_gripper_speed = False  # the safety layer limits every target sent to the robot, the fingers' too
        self.env_id = self.env.spec.id if self.env.spec is not None else env_id
        self.env.reset(seed=0)
        self.model: mujoco.MjModel = self.env.model
        self.data: mujoco.MjData = self.env.data
        self.robot = self.env.robot
        self.objects: tuple[str, ...] = tuple(self.env.objects)
        self.control_dt: float = float(self.env.control_dt)
        self.goal_dim = int(self.env.goal.size)
        self.action_dim = int(self.env.action_space.shape[0])
        self.state_joints: tuple[str, ...] = tuple(self.robot.joint_names)  # arm then gripper
        self._qadr = np.concatenate((self.robot.arm_qpos, self.robot.finger_qpos))
        self._dadr = np.concatenate((self.robot.arm_dof, self.robot.finger_dof))
        self._obj_adr = {}
        for name in self.objects:
            j = self.model.joint(f"cube_{name}_joint")
            self._obj_adr[name] = (int(j.qposadr[0]), int(j.dofadr[0]))
        self._act = np.concatenate((self.robot.arm_actuators, self.robot.finger_actuators))

    # -- goal ------------------------------------------------------------------------------
    def set_goal(self, goal: Sequence[float]) -> None:
        """Set the task goal (e.g. the reach target, or the cube's destination)."""
        g = np.asarray(goal, dtype=np.float64).reshape(-1)
        if g.shape != (self.goal_dim,):
            raise ValueError(
                f"{self.env_id} needs a goal of {self.goal_dim} numbers, got {g.size} "
                "(set skill_executor.goal to that many numbers, or [] for the task's default goal)"
            )
        if not np.all(np.isfinite(g)):
            raise ValueError(f"goal must be finite, got {g.tolist()}")
        self.env.goal = g.copy()

    @property
    def goal(self) -> np.ndarray:
        """The task goal currently set (a copy)."""
        return self.env.goal.copy()

    # -- state -> observation ----------------------------------------------------------------
    def load_state(self, joints: JointReading, objects: Mapping[str, ObjectReading]) -> None:
        """Write measured joints (`state_joints` order) and object poses into the scratch data."""
        d = self.data
        d.qpos[self._qadr] = joints.position
        d.qvel[self._dadr] = joints.velocity
        for name, (qa, da) in self._obj_adr.items():
            r = objects.get(name)
            if r is None:
                continue
            d.qpos[qa : qa + 3] = r.position
            d.qpos[qa + 3 : qa + 7] = r.quat_wxyz
            d.qvel[da : da + 3] = r.linvel
            d.qvel[da + 3 : da + 6] = r.angvel
        mujoco.mj_kinematics(self.model, d)
        mujoco.mj_comPos(self.model, d)

    def observe(self) -> dict[str, np.ndarray]:
        """The GoalEnv observation dict at the loaded state (the envs' builder)."""
        return self.env.observe()

    def is_success(self, obs: Mapping[str, np.ndarray]) -> bool:
        """The task's success test on this observation."""
        return bool(self.env.is_success(obs))

    def tcp_pos(self) -> np.ndarray:
        """TCP position at the loaded state."""
        return self.env.tcp_pos()

    def tcp_pose(self) -> np.ndarray:
        """TCP pose (4x4, base frame) at the loaded state."""
        T = np.eye(4)
        T[:3, :3] = self.robot.tcp_mat(self.data)
        T[:3, 3] = self.robot.tcp_pos(self.data)
        return T

    def closing_axis(self) -> tuple[float, float, float] | None:
        """The gripper's closing direction in the TCP frame (unit), from its two fingers' bodies at
        the loaded state; None for a gripper that is not two fingers."""
        m, d = self.model, self.data
        bodies = sorted({int(m.geom_bodyid[g]) for g in self.robot.gripper_geoms})
        if len(bodies) != 2:
            return None
        v = self.robot.tcp_mat(d).T @ (d.xpos[bodies[0]] - d.xpos[bodies[1]])
        n = float(np.linalg.norm(v))
        return None if n < 1e-6 else tuple(float(x) for x in v / n)

    def gripper_width(self) -> float:
        """Opening between the fingers (m) at the loaded state, through the robot description's width map."""
        return float(self.robot.gripper_width(self.data))

    # -- action -> joint targets -------------------------------------------------------------
    def targets_for_action(self, action: np.ndarray, base: np.ndarray | None = None) -> np.ndarray:
        """Joint targets (`state_joints` order) for an action, through the env's own IK path.

        The action is clipped to [-1, 1] like the env does; a non-finite action raises
        ValueError (the caller holds instead). `base`: joint positions (`state_joints` order)
        the step is taken from instead of the loaded state (the last command sent); the loaded
        state is restored afterwards.
        """
        a = np.asarray(action, dtype=np.float64).reshape(-1)
        if a.shape != (self.action_dim,):
            raise ValueError(f"action has {a.size} values, {self.env_id} expects {self.action_dim}")
        if not np.all(np.isfinite(a)):
            raise ValueError("action contains NaN or inf")
        if base is None:
            self.env.command(a)
            return self.data.ctrl[self._act].copy()
        measured = self.data.qpos[self._qadr].copy()
        self.data.qpos[self._qadr] = base
        mujoco.mj_kinematics(self.model, self.data)
        mujoco.mj_comPos(self.model, self.data)
        try:
            self.env.command(a)
        finally:
            self.data.qpos[self._qadr] = measured
            mujoco.mj_kinematics(self.model, self.data)
            mujoco.mj_comPos(self.model, self.data)
        return self.data.ctrl[self._act].copy()

    def reset_episode(self) -> None:
        """Forget per-episode controller state (the env's yaw target)."""
        self.env.reset_controller()


@dataclass
class PolicyInfo:
    """What was loaded: a display name, and the control rate it asks for (Hz, or None)."""

    name: str
    control_hz: float | None


DEFAULT_TASK = "skillstack/PandaReach-v0"


class _ExpertPolicy:
    def __init__(self, task: TaskModel):
        from envs.experts import make_expert

        self.expert = make_expert(task.env)
        self.task = task

    def reset(self) -> None:
        """Restart the expert's script."""
        self.expert.reset()

    def __call__(self, obs: Mapping[str, np.ndarray]) -> np.ndarray:
        return np.asarray(self.expert.act(obs), dtype=np.float64)

    @property
    def done(self) -> bool:
        """True once the expert finished its script."""
        return bool(self.expert.done)


class _SkillPolicy:
    """A library skill bound to the task's scratch env (scripted skills read its state)."""

    def __init__(self, skill: Any, task: TaskModel):
        self.skill = skill.bind(task.env)

    def reset(self) -> None:
        """Start the skill's episode (scripted skills restart their controller)."""
        self.skill.reset()

    def __call__(self, obs: Mapping[str, np.ndarray]) -> np.ndarray:
        return np.asarray(self.skill(obs), dtype=np.float64)

    @property
    def done(self) -> bool:
        """True once a scripted skill finished (network skills never say so)."""
        return bool(self.skill.done)


def _library_skill(spec: str, library_root: str | None, lock_file: str | None, load: bool) -> Any:
    """A package directory (verified: trusted signer) or a library `name[@version]` (verified against its
    index entry) - its manifest, or the loaded skill with `load` - checked against `lock_file` if given."""
    path = Path(spec).expanduser()
    if path.is_dir():
        from skill_library import load_skill, read_package

        found = load_skill(path) if load else read_package(path).manifest
    else:
        from skill_library import SkillLibrary

        lib = SkillLibrary(library_root or None)
        found = lib.load(spec) if load else lib.manifest(spec)
    if lock_file:
        from skill_library.lockfile import read_lock

        read_lock(lock_file).check(found.manifest if load else found, spec)
    return found


def resolve_task(skill: str, task: str = "", library_root: str | None = None, lock_file: str | None = None) -> tuple[str, dict[str, Any]]:
    """The env id (and kwargs) the executor should model: `task` if given, else the task the
    skill package was trained on (read from its verified manifest), else PandaReach.

    Lets `skillstack deploy --skill push_red` pick the push scene (and sim_robot its cube)
    without the user repeating the task.
    """
    spec = (skill or "expert").strip()
    if spec == "expert":
        if lock_file:
            raise ValueError("a lock file pins library skills; the built-in expert is not one (give --skill NAME)")
        return (task or DEFAULT_TASK), {}
    manifest = _library_skill(spec, library_root, lock_file, load=False)
    if task and task != manifest.task.env_id:
        return task, {}
    return manifest.task.env_id, dict(manifest.task.env_kwargs)


def load_policy(spec: str, task: TaskModel, library_root: str | None = None, lock_file: str | None = None) -> tuple[Policy, PolicyInfo]:
    """Resolve the executor's `skill` parameter to a policy bound to `task`.

    spec: ``expert`` (the task's scripted expert through the same IK and safety path),
    a skill package directory, or ``name[@version]`` in the skill library (optionally
    rooted at `library_root`). Packages load without unpickling (safetensors + JSON) and
    are checked against the task's embodiment, action and observation shapes, and, with
    `lock_file`, against the version, digest and signer the lock pins.
    """
    spec = (spec or "expert").strip()
    if spec == "expert":
        if lock_file:
            raise ValueError("a lock file pins library skills; the built-in expert is not one (give --skill NAME)")
        pol = _ExpertPolicy(task)
        return pol, PolicyInfo(f"expert:{type(pol.expert).__name__}", 1.0 / task.control_dt)
    skill = _library_skill(spec, library_root, lock_file, load=True)
    pol = _SkillPolicy(skill, task)
    hz = float(skill.manifest.control_hz or 0.0) or None
    return pol, PolicyInfo(skill.ref, hz)
