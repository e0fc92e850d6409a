"""TabletopEnv: the shared robot, scene, controller and GoalEnv plumbing under every task.

A task (envs/tasks.py) is a small subclass that says which cubes it uses, how to sample
the initial scene and goal, what the achieved goal is, and what its interaction term
measures. Everything else lives here once: action validation, the differential-IK
controller, physics stepping, observation, reward terms, safety cost, rendering,
determinism, state save/restore and domain randomisation.

The robot is data (`robot="panda"` or `"ur5e"`, or a description YAML path): its
description says which joints the IK drives, how many joint actions there are, how a
gripper action maps to finger commands and where the grasp reach ends. Tasks are
defined in the table's frame, so the same task runs on every robot; with
`obs_layout="tcp"` (no joint angles) and end-effector actions, so does a policy.

Conventions follow Gymnasium-Robotics' Fetch tasks (dict observation, vectorised
`compute_reward`, `info["is_success"]`) plus `info["reward_terms"]` for multi-critic
learning: scalar reward = sum_k reward_weights[k] * reward_terms[k].
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

import gymnasium as gym
import mujoco
import numpy as np
from gymnasium import spaces

import sim_assets
from envs.ik import DifferentialIK, clamp, tcp_yaw, yaw_rotation
from envs.in_flight import DEFAULT_IK_BASE, IK_BASES, InFlightCommands
from envs.observation import OBS_LAYOUTS, ObservationBuilder, refresh_kinematics
from envs.predicates import SceneState
from envs.randomization import DomainRandomization, Randomizer
from envs.robot import Robot
from envs.safety import SafetyCost

REWARD_TERMS: tuple[str, ...] = ("task", "interaction", "safety")
DEFAULT_WEIGHTS = {
    "sparse": {"task": 1.0, "interaction": 0.0, "safety": 1.0},
    "dense": {"task": 1.0, "interaction": 0.5, "safety": 1.0},
}
# TCP targets are kept inside this box (world frame, metres): above the table, in front of the base.
WORKSPACE_LOW = np.array([0.15, -0.5, 0.01])
WORKSPACE_HIGH = np.array([0.85, 0.5, 0.55])
_HALF_PI = np.pi / 2  # the yaw target's range is +-this (-_HALF_PI is the same float as -np.pi / 2)


def per_goal_distances(achieved: np.ndarray, desired: np.ndarray, n_goals: int) -> np.ndarray:
    """Distances between `n_goals` stacked 3-D positions, shape (..., n_goals)."""
    a = np.asarray(achieved)
    d = np.asarray(desired)
    diff = a.reshape(*a.shape[:-1], n_goals, 3) - d.reshape(*d.shape[:-1], n_goals, 3)
    return np.sqrt((diff * diff).sum(axis=-1))


class TabletopEnv(gym.Env):
    """Base class of the tabletop tasks. Subclasses set the class attributes and hooks below."""

    metadata = {"render_modes": ["rgb_array"], "render_fps": 25}

    # --- set by tasks ---
    objects: tuple[str, ...] = ()
    goal_sites: tuple[str, ...] = ("goal",)
    goal_threshold: float = 0.05
    # The goal is this many 3-D positions side by side (one per goal object); 1: the whole goal is
    # one point. `goal_distances` measures each block.
    goal_blocks: int = 1

    control_dt: float = 0.04  # 25 Hz
    physics_dt: float = 0.002  # 500 Hz (the MJCF timestep)

    def __init__(
        self,
        reward_type: str = "sparse",
        action_mode: str = "ee",
        yaw: bool = False,
        render_mode: str | None = None,
        render_width: int = 480,
        render_height: int = 360,
        camera: str = "front",
        randomization: bool | dict | DomainRandomization | None = None,
        reward_weights: Mapping[str, float] | None = None,
        max_delta: float = 0.05,
        robot: str | sim_assets.RobotDescription = sim_assets.DEFAULT_ROBOT,
        obs_layout: str = "joint",
        ik_base: str = DEFAULT_IK_BASE,
    ):
        if reward_type not in DEFAULT_WEIGHTS:
            raise ValueError(f"reward_type must be one of {sorted(DEFAULT_WEIGHTS)}, got {reward_type!r}")
        if action_mode not in ("ee", "joint"):
            raise ValueError(f"action_mode must be 'ee' or 'joint', got {action_mode!r}")
        if obs_layout not in OBS_LAYOUTS:
            raise ValueError(f"obs_layout must be one of {list(OBS_LAYOUTS)} ('tcp': no joint angles, the same on every robot), got {obs_layout!r}")
        if ik_base not in IK_BASES:
            raise ValueError(f"ik_base must be one of {IK_BASES}, got {ik_base!r}")
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise ValueError(f"render_mode must be one of {self.metadata['render_modes']} or None, got {render_mode!r}")
        self.reward_type = reward_type
        self.action_mode = action_mode
        self.yaw = bool(yaw) and action_mode == "ee"
        self.render_mode = render_mode
        self.render_width, self.render_height = int(render_width), int(render_height)
        self.max_delta = float(max_delta)
        self.reward_weights = dict(DEFAULT_WEIGHTS[reward_type])
        if reward_weights:
            unknown = set(reward_weights) - set(REWARD_TERMS)
            if unknown:
                raise ValueError(f"unknown reward term(s) {sorted(unknown)}; terms: {list(REWARD_TERMS)}")
            self.reward_weights.update({k: float(v) for k, v in reward_weights.items()})

        description = sim_assets.load_robot(robot)
        self.model_xml = sim_assets.scene_xml(tuple(self.objects), tuple(self.goal_sites), description)
        self.model = mujoco.MjModel.from_xml_string(self.model_xml)
        self.data = mujoco.MjData(self.model)
        self.n_substeps = int(round(self.control_dt / self.model.opt.timestep))
        # The gripper targets move at most the description's finger velocity per control period, as the ROS 2
        # safety layer lets them on the robot. A scratch env whose targets go through that layer turns it off.
        self.limit_gripper_speed = True
        self.robot = Robot.from_model(self.model, description)
        self.ik = DifferentialIK(self.model, self.robot)
        self.obs_layout = obs_layout
        self.obs_builder = ObservationBuilder(self.model, self.objects, self.robot, obs_layout)
        self.safety = SafetyCost(self.model, self.robot)
        self.camera_names = tuple(self.model.camera(i).name for i in range(self.model.ncam))
        self.camera = self._check_camera(camera)
        self._goal_site_ids = [self.model.site(n).id for n in self.goal_sites]
        self.cube_half_size = sim_assets.CUBE_HALF_SIZE

        self.randomization = DomainRandomization.from_value(randomization)
        obj_geoms = [self.model.geom(f"cube_{o}").id for o in self.objects]
        obj_bodies = [self.model.body(f"cube_{o}").id for o in self.objects]
        self._randomizer = Randomizer(self.model, self.robot, obj_geoms, obj_bodies) if self.randomization else None
        # Command latency, as a robot has it: joint targets computed now (IK at send time), applied
        # `_latency + command_latency_steps` ticks later. `_latency` is the randomisation's draw,
        # `command_latency_steps` a condition's (envs.conditions.ConditionWrapper sets it).
        self._latency = 0
        self.command_latency_steps = 0
        self._pending: deque[np.ndarray] = deque()  # joint targets sent, not yet applied
        # Where the IK steps from under latency: the measured joints, or where the arm will be when
        # the command lands once a lag >= 2 ticks is identified (`in_flight`, envs.in_flight): the same
        # choice, and the same default, as skill_executor's `ik_base`.
        self.ik_base = ik_base
        self._in_flight = InFlightCommands() if ik_base == "in_flight" else None
        # The arm joints the controller last received, when a condition dropped this tick's state
        # message (ConditionWrapper sets it); None: the true joints, fresh.
        self.measured_arm: np.ndarray | None = None
        # The scene the controller perceived this tick when a condition says so (ConditionWrapper sets
        # it): noisy cubes, or all of the last tick's scene (arm too) after a dropped state message,
        # as on a robot; None: the true scene. Read through `perceived_object_pos` and
        # `perceived_scene_state`; rewards and the success test keep reading the true state.
        self.observed_scene: SceneState | None = None
        self.randomization_draw: dict[str, float] = {}

        n_act = (4 + int(self.yaw)) if action_mode == "ee" else self.robot.n_arm + 1
        self.action_space = spaces.Box(-1.0, 1.0, shape=(n_act,), dtype=np.float32)
        self._action_shape = (n_act,)
        self._workspace = tuple(zip(WORKSPACE_LOW.tolist(), WORKSPACE_HIGH.tolist()))
        goal_dim = self._goal_dim()
        self.observation_space = spaces.Dict(
            {
                "observation": spaces.Box(-np.inf, np.inf, shape=(self.obs_builder.size,), dtype=np.float64),
                "achieved_goal": spaces.Box(-np.inf, np.inf, shape=(goal_dim,), dtype=np.float64),
                "desired_goal": spaces.Box(-np.inf, np.inf, shape=(goal_dim,), dtype=np.float64),
            }
        )
        self.goal = np.zeros(goal_dim)
        self._target_yaw = 0.0
        self._target_mat, self._target_mat_yaw = yaw_rotation(0.0), 0.0
        self._target_rows = self._target_mat.tolist()  # the same as Python floats, for the IK (made once per yaw)
        self._renderers: dict[tuple[int, int], mujoco.Renderer] = {}
        self._objects_pos_index: dict[tuple[str, ...], np.ndarray] = {}
        self._state_size = mujoco.mj_stateSize(self.model, mujoco.mjtState.mjSTATE_INTEGRATION)
        # Each cube's position as a view into qpos (made once; object_pos/object_view read it every step).
        self._object_views = {o: self.obs_builder.object_pos(self.data, o) for o in self.objects}
        # The step measures goal distances on Python floats when they are `goal_distances`' own
        # blockwise Euclidean distances over 3-D blocks (numpy sums 3 numbers left to right, as
        # Python does, so the same bits); a task with its own `goal_distances` keeps numpy.
        self._float_distances = type(self).goal_distances is TabletopEnv.goal_distances and goal_dim == 3 * self.goal_blocks
        self._reset_sim()

    # ------------------------------------------------------------------ task hooks
    def _goal_dim(self) -> int:
        return 3

    def _sample_scene(self, rng: np.random.Generator) -> None:
        """Place the cubes (via `set_object_pos`) and set `self.goal`."""
        raise NotImplementedError

    def _achieved_goal(self) -> np.ndarray:
        raise NotImplementedError

    def _interaction(self) -> float:
        """Shaping term (<= 0): how close the gripper is to what it should interact with."""
        raise NotImplementedError

    def goal_distances(self, achieved: np.ndarray, desired: np.ndarray) -> np.ndarray:
        """Per-goal-object distances, shape (..., goal_blocks): Euclidean over each 3-D block of the
        goal, or over the whole goal when `goal_blocks` is 1 (the default: one goal point)."""
        if self.goal_blocks != 1:
            return per_goal_distances(achieved, desired, self.goal_blocks)
        diff = achieved - desired
        return np.sqrt((diff * diff).sum(axis=-1))[..., None]

    def _step_goal(self, achieved: np.ndarray, desired: np.ndarray) -> tuple[bool, float]:
        """Success (every goal distance under the threshold) and the summed distance of one goal pair.

        What `step` reads of `goal_distances`. With `_float_distances` (the base's blockwise
        distances over 3-D blocks) it is computed on Python floats, since numpy's per-call cost
        dwarfs the maths on 1-3 distances: the same sums in the same order, so the same bits.
        """
        threshold = self.goal_threshold
        if not self._float_distances:
            dist = self.goal_distances(achieved, desired)
            return bool((dist < threshold).all()), float(dist.sum())
        a, g = achieved.tolist(), desired.tolist()
        success, total = True, 0.0
        for i in range(0, len(a), 3):
            dx, dy, dz = a[i] - g[i], a[i + 1] - g[i + 1], a[i + 2] - g[i + 2]
            dist = math.sqrt(dx * dx + dy * dy + dz * dz)
            success = success and dist < threshold
            total += dist  # left to right from the first (0.0 + d is d), as numpy sums a few numbers
        return success, total

    def _goal_site_positions(self) -> list[np.ndarray]:
        return [self.goal[3 * i : 3 * i + 3] for i in range(len(self.goal_sites))]

    # ------------------------------------------------------------------ helpers for tasks
    def set_object_pos(self, name: str, pos: np.ndarray, quat: np.ndarray | None = None) -> None:
        """Place a cube (free joint) at `pos`, at rest."""
        j = self.model.joint(f"cube_{name}_joint")
        a, v = j.qposadr[0], j.dofadr[0]
        self.data.qpos[a : a + 3] = pos
        self.data.qpos[a + 3 : a + 7] = quat if quat is not None else (1.0, 0.0, 0.0, 0.0)
        self.data.qvel[v : v + 6] = 0.0

    def object_pos(self, name: str) -> np.ndarray:
        """World position of cube `name` (a copy)."""
        return self.object_view(name).copy()

    def object_view(self, name: str) -> np.ndarray:
        """World position of cube `name` as a view into the simulator state (read it, don't keep it)."""
        try:
            return self._object_views[name]
        except KeyError:
            raise ValueError(f"unknown object {name!r}; scene has {list(self.objects)}") from None

    def objects_pos(self, names: tuple[str, ...]) -> np.ndarray:
        """The positions of cubes `names`, concatenated (one gather per step, for achieved goals)."""
        index = self._objects_pos_index.get(names)
        if index is None:
            index = self._objects_pos_index[names] = np.concatenate([self.obs_builder.object_qpos_range(n) for n in names])
        return self.data.qpos[index]

    def tcp_pos(self) -> np.ndarray:
        """TCP position (a copy)."""
        return self.robot.views(self.data).tcp_pos.copy()

    def gripper_width(self) -> float:
        return self.robot.gripper_width(self.data)

    def table_height_of(self, n_stacked: int = 0) -> float:
        """Centre height of a cube resting on the table with `n_stacked` cubes under it."""
        return self.cube_half_size * (2 * n_stacked + 1)

    # ------------------------------------------------------------------ gymnasium API
    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        self._reset_sim()
        if options and "state" in options:
            self.set_state(options["state"])
        obs = self._get_obs()
        return obs, {"is_success": float(self._is_success(obs)), "randomization": dict(self.randomization_draw)}

    def _reset_sim(self) -> None:
        m, d = self.model, self.data
        mujoco.mj_resetData(m, d)
        if self._randomizer is not None:
            self.randomization_draw = self._randomizer.apply(self.randomization, self.np_random)
            self._latency = int(self.randomization_draw["latency"])
            self.cube_half_size = sim_assets.CUBE_HALF_SIZE * self.randomization_draw["size_scale"]
        self._forget_commands()
        self.robot.set_home(m, d)
        self._target_yaw = 0.0
        self._sample_scene(self.np_random)
        self._sync_goal_sites()
        mujoco.mj_forward(m, d)

    def step(self, action: np.ndarray):
        act = self._action_floats(action)
        k = self._latency + self.command_latency_steps
        if k or self.measured_arm is not None:  # without latency nothing is in flight: the plain path
            self._send_late(act, k)
        else:
            self._apply_action(act)
        m, d = self.model, self.data
        mujoco.mj_step(m, d, nstep=self.n_substeps)
        refresh_kinematics(m, d)
        obs = self._get_obs()
        success, total = self._step_goal(obs["achieved_goal"], obs["desired_goal"])
        task = (0.0 if success else -1.0) if self.reward_type == "sparse" else -total
        cost = self.safety(d)
        interaction = float(self._interaction())
        w = self.reward_weights
        reward = w["task"] * task + w["interaction"] * interaction + w["safety"] * -cost
        # Fresh dicts every step: callers keep infos (replay buffers, HER relabelling).
        info = {"is_success": float(success), "reward_terms": {"task": task, "interaction": interaction, "safety": -cost},
                "safety_cost": cost}
        return obs, float(reward), False, False, info

    # -- public pieces of `step`, for controllers that drive a real robot (ros_bridge) -------
    def observe(self) -> dict[str, np.ndarray]:
        """The observation dict at the current state (kinematics must be current)."""
        return self._get_obs()

    def is_success(self, obs: dict[str, np.ndarray] | None = None) -> bool:
        """The task's success test on `obs` (default: the current observation)."""
        return self._is_success(self._get_obs() if obs is None else obs)

    def command(self, action: Any) -> np.ndarray:
        """Validate an action and write the joint targets it maps to into `data.ctrl`, without
        stepping physics; returns the targets (arm then gripper joints). ValueError on bad input."""
        self._apply_action(self._validate_action(action).tolist())
        return self.data.ctrl[np.concatenate((self.robot.arm_actuators, self.robot.finger_actuators))].copy()

    def reset_controller(self) -> None:
        """Forget per-episode controller state (the yaw target, the joint targets still in flight)."""
        self._target_yaw = 0.0
        self._forget_commands()

    def _forget_commands(self) -> None:
        self._pending.clear()
        self.measured_arm = None
        self.observed_scene = None
        if self._in_flight is not None:
            self._in_flight.reset()

    def _validate_action(self, action: Any) -> np.ndarray:
        a = np.asarray(action, dtype=np.float64)
        if a.shape != self._action_shape:
            raise ValueError(f"action has shape {a.shape}, expected {self.action_space.shape} ({self.action_description()})")
        # A finite sum proves every entry finite (cheaper than isfinite on a few numbers); only an
        # inf/NaN sum, or an overflowing one, takes the full check.
        if not math.isfinite(a.sum()) and not np.isfinite(a).all():
            bad = np.flatnonzero(~np.isfinite(a)).tolist()
            raise ValueError(f"action contains NaN or inf at index {bad}: {a.tolist()}")
        return a.clip(-1.0, 1.0)

    def _action_floats(self, action: Any) -> list[float]:
        """`_validate_action(action)` as Python floats, the form `_apply_action` takes.

        A float32/float64 array of the right shape with a finite sum (the common case) is checked
        and clipped on floats (the same values as numpy's clip); anything else takes the full check.
        """
        if type(action) is np.ndarray and action.dtype.char in "fd" and action.shape == self._action_shape:
            a = action.tolist()  # float32 -> float is exact, as numpy's cast to float64 is
            if math.isfinite(sum(a)):
                return [-1.0 if x < -1.0 else 1.0 if x > 1.0 else x for x in a]
        return self._validate_action(action).tolist()

    def action_description(self) -> str:
        """Human-readable meaning of each action dimension."""
        if self.action_mode == "joint":
            return f"dq1..dq{self.robot.n_arm} (fraction of max joint step), gripper (-1 closed .. +1 open)"
        return "dx, dy, dz" + (", dyaw" if self.yaw else "") + ", gripper (-1 closed .. +1 open)"

    def _hold_action(self) -> np.ndarray:
        """Action that holds the current pose (no motion, the gripper at its width)."""
        a = np.zeros(self.action_space.shape)
        a[-1] = self.robot.gripper_action(self.gripper_width())
        return a

    def _send_late(self, act: list[float], k: int) -> None:
        """Compute the joint targets for `act` now and apply the ones sent `k` ticks ago (the arm keeps
        its targets while the queue fills): what skill_executor -> a robot with k periods of command
        latency does. The IK steps from the measured joints (`measured_arm` when a condition says the
        controller's last joint state is an older one), or under `ik_base="in_flight"` from where the
        arm will be when the command lands, exactly as the executor does (`envs.in_flight`)."""
        d, robot = self.data, self.robot
        ix, qix = robot.actuators_ix, robot.arm_qpos_ix
        applied = d.ctrl[ix].copy()
        if self._pending:
            d.ctrl[ix] = self._pending[-1]  # the fingers' rate limit runs from the last target sent
        measured = d.qpos[qix].copy() if self.measured_arm is None else np.array(self.measured_arm, dtype=np.float64)
        base = measured if self.measured_arm is not None else None
        if self._in_flight is not None:
            inc = self._in_flight.in_flight(measured)
            base = base if inc is None else measured + inc
        if base is None:
            self._apply_action(act)
        else:  # the IK at the base's pose; then the true joints back (mj_step recomputes the kinematics from qpos)
            true_q = d.qpos[qix].copy()
            d.qpos[qix] = base
            refresh_kinematics(self.model, d)
            try:
                self._apply_action(act)
            finally:
                d.qpos[qix] = true_q
        sent = d.ctrl[ix].copy()
        if self._in_flight is not None:
            self._in_flight.observe(measured)
            self._in_flight.sent(sent[: robot.n_arm])
        self._pending.append(sent)
        d.ctrl[ix] = self._pending.popleft() if len(self._pending) > k else applied

    def _apply_action(self, act: list[float]) -> None:
        """Write the joint targets for a validated action (Python floats, see `_action_floats`) into ctrl.

        Python floats throughout: the same IEEE operations as the numpy formulation on these few
        numbers (so the same targets, bit for bit), without numpy's per-call cost.
        """
        d, robot = self.data, self.robot
        views = robot.views(d)
        if self.action_mode == "ee":
            # Move the target by max_delta * action from the TCP, kept inside the workspace box.
            tcp, md = views.tcp_pos.tolist(), self.max_delta
            target = []
            for x, a, (lo, hi) in zip(tcp, act, self._workspace):  # clamp(x + md * a, lo, hi) inline, per axis
                x += md * a
                x = lo if lo > x else x
                target.append(hi if hi < x else x)
            if self.yaw:
                self._target_yaw = clamp(self._target_yaw + 0.25 * act[3], -_HALF_PI, _HALF_PI)
            if self._target_yaw != self._target_mat_yaw:
                self._target_mat, self._target_mat_yaw = yaw_rotation(self._target_yaw), self._target_yaw
                self._target_rows = self._target_mat.tolist()
            q_target = self.ik.solve_floats(d, target, self._target_mat, self.control_dt, tcp, self._target_rows)
        else:
            step = (self.ik.config.velocity_scale * robot.qd_max * self.control_dt).tolist()
            q = views.qpos[robot.arm_qpos_ix].tolist()
            q_target = [clamp(x + a * s, lo, hi) for x, a, s, lo, hi in zip(q, act, step, robot.q_min.tolist(), robot.q_max.tolist())]
        # Arm then gripper targets in one write; the fingers at the robot's own speed (a grasp takes its real time).
        width = 0.5 * (act[-1] + 1.0) * robot.max_gripper_width_f
        views.ctrl[robot.actuators_ix] = q_target + (robot.rate_limited_gripper_targets(d, width, self.control_dt)
                                                     if self.limit_gripper_speed else robot.gripper_targets_list(width))

    def _get_obs(self) -> dict[str, np.ndarray]:
        vec = self.obs_builder.build(self.data)
        if self.randomization is not None and self.randomization.observation_noise_std > 0:
            vec = vec + self.np_random.normal(0.0, self.randomization.observation_noise_std, size=vec.shape)
        return {"observation": vec, "achieved_goal": self._achieved_goal(), "desired_goal": self.goal.copy()}

    def _is_success(self, obs: dict[str, np.ndarray]) -> bool:
        return bool(np.all(self.goal_distances(obs["achieved_goal"], obs["desired_goal"]) < self.goal_threshold))

    def _task_term(self, achieved: np.ndarray, desired: np.ndarray) -> np.ndarray:
        dist = self.goal_distances(achieved, desired)
        if self.reward_type == "sparse":
            return -np.any(dist >= self.goal_threshold, axis=-1).astype(np.float64)
        return -dist.sum(axis=-1)

    # -- vectorised GoalEnv functions (HER relabelling calls these) ------------------------
    def compute_reward(self, achieved_goal: np.ndarray, desired_goal: np.ndarray, info: Any) -> np.ndarray:
        """Scalar reward for (possibly batched) goals.

        The task term is recomputed from the goals; the other terms are read from
        `info["reward_terms"]` (a dict, or an array/list of dicts for a batch). When `info`
        carries no terms (stable-baselines3's HER passes empty dicts unless
        copy_info_dict=True) those terms count as 0.
        """
        achieved_goal = np.asarray(achieved_goal, dtype=np.float64)
        desired_goal = np.asarray(desired_goal, dtype=np.float64)
        reward = self.reward_weights["task"] * self._task_term(achieved_goal, desired_goal)
        for name in ("interaction", "safety"):
            w = self.reward_weights[name]
            if w:
                reward = reward + w * _info_term(info, name, reward.shape)
        return reward

    def compute_terminated(self, achieved_goal: np.ndarray, desired_goal: np.ndarray, info: Any) -> np.ndarray:
        """Episodes never terminate early (Fetch convention): the time limit ends them."""
        return np.zeros(np.shape(achieved_goal)[:-1], dtype=bool)

    def compute_truncated(self, achieved_goal: np.ndarray, desired_goal: np.ndarray, info: Any) -> np.ndarray:
        """Truncation comes from the TimeLimit wrapper, never from the goals."""
        return np.zeros(np.shape(achieved_goal)[:-1], dtype=bool)

    # ------------------------------------------------------------------ state
    @property
    def state_size(self) -> int:
        return self._state_size + self.goal.size + 1

    def get_state(self) -> np.ndarray:
        """Full simulator state (MuJoCo integration state), then the goal, then the target yaw.

        Restoring it with `set_state` reproduces the episode exactly (action replay
        divergence 0 for the same actions).
        """
        state = np.empty(self._state_size)
        mujoco.mj_getState(self.model, self.data, state, mujoco.mjtState.mjSTATE_INTEGRATION)
        return np.concatenate((state, self.goal, [self._target_yaw]))

    def set_state(self, state: np.ndarray) -> None:
        """Restore a state from `get_state` (same task, same model)."""
        state = np.asarray(state, dtype=np.float64)
        if state.shape != (self.state_size,):
            raise ValueError(f"state has shape {state.shape}, expected ({self.state_size},) for {type(self).__name__}")
        if not np.all(np.isfinite(state)):
            raise ValueError("state contains NaN or inf")
        mujoco.mj_setState(self.model, self.data, state[: self._state_size], mujoco.mjtState.mjSTATE_INTEGRATION)
        self.goal = state[self._state_size : self._state_size + self.goal.size].copy()
        self._target_yaw = float(state[-1])
        self._forget_commands()
        self._sync_goal_sites()
        mujoco.mj_forward(self.model, self.data)

    def _sync_goal_sites(self) -> None:
        for sid, pos in zip(self._goal_site_ids, self._goal_site_positions()):
            self.model.site_pos[sid] = pos

    @property
    def observation_layout(self) -> dict[str, slice]:
        """Names of the observation vector's parts -> slices."""
        return dict(self.obs_builder.layout)

    def scene_state(self) -> SceneState:
        """Snapshot for predicates (envs.predicates)."""
        goals = dict(zip(self.goal_sites, (p.copy() for p in self._goal_site_positions())))
        return SceneState(
            tcp_pos=self.tcp_pos(),
            tcp_mat=self.robot.tcp_mat(self.data).copy(),
            gripper_width=self.gripper_width(),
            objects={o: self.object_pos(o) for o in self.objects},
            goals=goals,
            cube_half_size=self.cube_half_size,
            goal_threshold=self.goal_threshold,
            grasp_reach=self.robot.description.grasp_reach,
        )

    def perceived_object_pos(self, name: str) -> np.ndarray:
        """Where the controller perceives cube `name` (`observed_scene`, else the true position)."""
        if self.observed_scene is not None:
            return np.array(self.observed_scene.object(name), dtype=np.float64)
        return self.object_pos(name)

    def perceived_scene_state(self) -> SceneState:
        """The scene as the controller perceives it (`observed_scene`, else `scene_state()`): what a
        planner decides on. On the robot (ros_bridge.task) the scene is filled from the state messages
        received, so both are the same there."""
        s = self.observed_scene
        if s is None:
            return self.scene_state()
        return replace(s, tcp_pos=s.tcp_pos.copy(), tcp_mat=s.tcp_mat.copy(), objects={o: p.copy() for o, p in s.objects.items()},
                       goals={g: p.copy() for g, p in s.goals.items()})

    def tcp_yaw(self) -> float:
        return tcp_yaw(self.robot.tcp_mat(self.data))

    # ------------------------------------------------------------------ rendering
    def _check_camera(self, name: str) -> str:
        if name not in self.camera_names:
            raise ValueError(f"unknown camera {name!r}; valid cameras: {list(self.camera_names)}")
        return name

    def render_camera(
        self,
        camera: str | None = None,
        width: int | None = None,
        height: int | None = None,
        shadows: bool | None = None,
    ) -> np.ndarray:
        """Render a named camera to a uint8 HxWx3 image (headless with MUJOCO_GL=egl).

        Shadows cost about 5x the render time with software GL; by default they are on
        for images of 256 px or more (videos for people) and off for smaller ones (frames
        for learning).
        """
        name = self._check_camera(camera or self.camera)
        w, h = int(width or self.render_width), int(height or self.render_height)
        if shadows is None:
            shadows = max(w, h) >= 256
        key = (w, h)
        renderer = self._renderers.get(key)
        if renderer is None:
            renderer = self._renderers[key] = mujoco.Renderer(self.model, height=h, width=w)
        renderer.update_scene(self.data, camera=name)
        renderer.scene.flags[mujoco.mjtRndFlag.mjRND_SHADOW] = bool(shadows)
        return renderer.render()

    def render(self):
        if self.render_mode == "rgb_array":
            return self.render_camera()
        return None

    def close(self) -> None:
        for r in self._renderers.values():
            r.close()
        self._renderers.clear()


PandaEnv = TabletopEnv  # the name before robots were data


def _info_term(info: Any, name: str, shape: tuple[int, ...]) -> np.ndarray | float:
    """Read reward term `name` from one info dict or a batch of them (missing -> 0)."""
    if isinstance(info, Mapping):
        return float(info.get("reward_terms", {}).get(name, 0.0))
    if info is None:
        return 0.0
    values = np.array([float(i.get("reward_terms", {}).get(name, 0.0)) if i else 0.0 for i in np.ravel(info)])
    return values.reshape(shape) if values.size == int(np.prod(shape)) else values
