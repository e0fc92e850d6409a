"""The safety layer between any policy and the robot: pure numpy (+ MuJoCo FK), no rclpy.

Every joint target the bridge publishes (skill executor, replay, built-in controller)
passes through `SafetyLayer.step`, which, in this order:

1. e-stop latch: while latched nothing is sent (`estop()` returns one hold target for
   the caller to send once, so a trajectory controller stops where it is);
2. watchdog: no joint state yet, or one older than `stale_after_s` (default 100 ms; a
   caller merging topics at different rates passes each call the threshold of the stalest
   topic) -> send nothing until fresh states return (forward_command_controller has no
   timeout of its own, so the last sent, safe, target is what the robot holds);
3. NaN/inf guard on the measured state and on the requested target -> hold: re-send
   the last safe target (or nothing if there is none yet) and record the fault;
4. tracking window: the target is kept within `max_tracking_error` of the measured
   joints, so a stalled arm does not accumulate a jump;
5. joint position limits of the model (minus `joint_margin`);
6. velocity limit per control period: |target - previous target| <= v_max * scale * dt,
   where the previous target is the last one sent, or the measured joints (clamped to
   the limits) after any pause (start, stale, e-stop, reset) -- "re-anchoring"; with
   `ramp_s` > 0 the limit itself ramps up from zero over that long after each re-anchor,
   so the first commands after a start creep away from the measured joints;
7. end-effector workspace box: forward kinematics of the TCP on the robot model; a
   target whose TCP would leave the box is pulled back along the straight joint-space
   segment from the previous target (bisection), so the arm stops at the wall. If the
   previous target is itself outside (the arm started outside), only targets that do
   not move further out are allowed.

Steps 5-7 keep every published target inside the joint limits whatever the input;
`tests/test_ros_safety.py` checks that with hypothesis.

Joint names, velocity limits and the TCP come from the robot description
(`sim_assets.load_robot`); nothing here names a particular robot's joints.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import Enum

import mujoco
import numpy as np

from sim_assets import DEFAULT_ROBOT, RobotDescription, RobotDescriptionError, load_robot, robot_for_joints, robot_for_model

__all__ = [
    "Fault",
    "JointLimits",
    "SafetyConfig",
    "SafetyLayer",
    "SafetyOutput",
    "SafetyState",
    "TcpKinematics",
]

log = logging.getLogger(__name__)

# The default robot's joints (arm, gripper, both), for callers written before robots were data.
ARM_JOINTS: tuple[str, ...] = load_robot(DEFAULT_ROBOT).arm.joints
FINGER_JOINTS: tuple[str, ...] = load_robot(DEFAULT_ROBOT).gripper.joints
PANDA_JOINTS: tuple[str, ...] = ARM_JOINTS + FINGER_JOINTS


class SafetyState(str, Enum):
    """What the layer is doing now (published on the executor's status topic)."""

    IDLE = "idle"  # nothing requested yet
    WAITING = "waiting"  # no joint state received yet, sending nothing
    RUNNING = "running"  # targets pass (possibly clamped)
    HOLD = "hold"  # bad input: re-sending the last safe target
    STALE = "stale"  # watchdog: joint states missing or too old, sending nothing
    ESTOP = "estop"  # latched stop, sending nothing until reset()


class Fault(str, Enum):
    """Why the layer did not pass a target through unchanged (the status topic's last fault)."""

    NO_STATE = "no_state"
    STALE_STATE = "stale_state"
    STALE_POSE = "stale_pose"  # an object pose older than `max_pose_age_s` (the executor holds)
    NONFINITE_STATE = "nonfinite_state"
    NONFINITE_TARGET = "nonfinite_target"
    NONFINITE_OBSERVATION = "nonfinite_observation"
    NONFINITE_ACTION = "nonfinite_action"
    POLICY_ERROR = "policy_error"
    ESTOP = "estop"


@dataclass(frozen=True)
class JointLimits:
    """Position and velocity limits of the controlled joints, in controller order."""

    names: tuple[str, ...]
    lower: np.ndarray
    upper: np.ndarray
    velocity: np.ndarray  # rad/s (or m/s for the fingers)

    def __post_init__(self) -> None:
        n = len(self.names)
        for attr in ("lower", "upper", "velocity"):
            arr = np.asarray(getattr(self, attr), dtype=np.float64)
            if arr.shape != (n,):
                raise ValueError(f"JointLimits.{attr} has shape {arr.shape}, expected ({n},)")
            if not np.all(np.isfinite(arr)):
                raise ValueError(f"JointLimits.{attr} must be finite, got {arr}")
            object.__setattr__(self, attr, arr)
        if np.any(self.lower > self.upper):
            raise ValueError("JointLimits: lower > upper for " + str([m for m, b in zip(self.names, self.lower > self.upper) if b]))
        if np.any(self.velocity <= 0):
            raise ValueError("JointLimits: velocity limits must be > 0")

    @classmethod
    def from_model(
        cls,
        model: mujoco.MjModel,
        names: tuple[str, ...] | list[str] | None = None,
        robot: str | RobotDescription | None = None,
    ) -> "JointLimits":
        """Limits of `names` (default: all of the robot's joints) from a compiled model's joint
        ranges and the robot description's velocity limits. `robot` defaults to the shipped
        robot whose arm the model has."""
        try:
            desc = robot_for_model(model) if robot is None else load_robot(robot)
        except RobotDescriptionError as exc:
            raise ValueError(f"no velocity limits for this model: {exc}") from None
        names = tuple(desc.joint_names if names is None else names)
        if not names:
            raise ValueError("JointLimits.from_model: no joint names given")
        vel_by_name = dict(zip(desc.joint_names, desc.velocity_limits))
        lower, upper, vel = [], [], []
        for name in names:
            try:
                j = model.joint(name)
            except KeyError:
                raise ValueError(f"model has no joint {name!r}") from None
            if not model.jnt_limited[j.id]:
                raise ValueError(f"joint {name!r} has no position limits in the model")
            if name not in vel_by_name:
                raise ValueError(f"no velocity limit known for joint {name!r}")
            lower.append(j.range[0])
            upper.append(j.range[1])
            vel.append(vel_by_name[name])
        return cls(names, np.array(lower), np.array(upper), np.array(vel))

    def clip(self, q: np.ndarray, margin: float = 0.0) -> np.ndarray:
        """q clamped into [lower + margin, upper - margin] (margin shrinks to half the range at most)."""
        m = np.minimum(margin, 0.5 * (self.upper - self.lower))
        return np.clip(q, self.lower + m, self.upper - m)


class TcpKinematics:
    """Forward kinematics of the TCP site for the arm joints, on the robot model.

    Uses the robot alone (`sim_assets.load_robot_model(robot)`), whose base frame is the
    world frame of every skillstack scene, so positions are in the same frame as the
    workspace box. `robot` defaults to the robot whose arm joints `model` has (the default
    robot when no model is given).
    """

    def __init__(self, model: mujoco.MjModel | None = None, site: str | None = None, robot: str | RobotDescription | None = None):
        if robot is not None:
            desc = load_robot(robot)
        elif model is not None:
            try:
                desc = robot_for_model(model)
            except RobotDescriptionError as exc:
                raise ValueError(f"no TCP kinematics for this model: {exc}") from None
        else:
            desc = load_robot(DEFAULT_ROBOT)
        if model is None:
            import sim_assets

            model = sim_assets.load_robot_model(desc)
        self.model = model
        self.data = mujoco.MjData(model)
        self.arm_joints: tuple[str, ...] = desc.arm.joints
        try:
            self._site = model.site(site or desc.tcp_site).id
            self._qadr = np.array([model.joint(n).qposadr[0] for n in self.arm_joints])
        except KeyError as exc:
            raise ValueError(f"robot model lacks {exc}; expected the skillstack {desc.name} model") from None

    def tcp_position(self, q_arm: np.ndarray) -> np.ndarray:
        """TCP position (3,) for arm joint positions q_arm (one per arm joint)."""
        self.data.qpos[self._qadr] = q_arm
        mujoco.mj_kinematics(self.model, self.data)
        return self.data.site_xpos[self._site].copy()


@dataclass
class SafetyConfig:
    """Tunable safety parameters (ROS parameters of the same names, `safety.<name>`)."""

    period_s: float = 0.04  # control period the velocity limit is applied over
    velocity_scale: float = 1.0  # fraction of the model's velocity limits allowed
    joint_margin: float = 0.0  # rad (m for fingers) kept inside the position limits
    max_tracking_error: float = 0.5  # rad: |target - measured| bound (inf disables)
    stale_after_s: float = 0.1  # watchdog threshold on the joint state age
    workspace_min: tuple[float, float, float] = (0.1, -0.7, -0.005)  # TCP box, world frame (m)
    workspace_max: tuple[float, float, float] = (0.95, 0.7, 0.9)
    workspace_enabled: bool = True
    reject_implausible_states: bool = True  # drop joint states that jump faster than the limits allow
    ramp_s: float = 0.0  # after each re-anchor the velocity limit ramps up from 0 over this long (0 = off)
    max_pose_age_s: float = 1.0  # s: an object pose older than this holds the arm (the executor checks)

    def __post_init__(self) -> None:
        for name in ("period_s", "velocity_scale", "stale_after_s", "max_pose_age_s"):
            v = getattr(self, name)
            if not (math.isfinite(v) and v > 0):
                raise ValueError(f"SafetyConfig.{name} must be a positive finite number, got {v!r}")
        if not (self.ramp_s >= 0 and math.isfinite(self.ramp_s)):
            raise ValueError(f"SafetyConfig.ramp_s must be >= 0, got {self.ramp_s!r}")
        if not (self.joint_margin >= 0 and math.isfinite(self.joint_margin)):
            raise ValueError(f"SafetyConfig.joint_margin must be >= 0, got {self.joint_margin!r}")
        if not self.max_tracking_error > 0:
            raise ValueError(f"SafetyConfig.max_tracking_error must be > 0, got {self.max_tracking_error!r}")
        lo, hi = np.asarray(self.workspace_min, float), np.asarray(self.workspace_max, float)
        if lo.shape != (3,) or hi.shape != (3,) or not np.all(lo < hi):
            raise ValueError(f"workspace box needs 3 values each with min < max, got {self.workspace_min} / {self.workspace_max}")
        self.workspace_min = tuple(float(x) for x in lo)
        self.workspace_max = tuple(float(x) for x in hi)

    @classmethod
    def from_dict(cls, values: dict) -> "SafetyConfig":
        """Build from a plain mapping (YAML), rejecting unknown keys with a clear error."""
        known = set(cls.__dataclass_fields__)
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"unknown safety parameter(s) {unknown}; valid: {sorted(known)}")
        kwargs = dict(values)
        for key in ("workspace_min", "workspace_max"):
            if key in kwargs:
                kwargs[key] = tuple(float(x) for x in kwargs[key])
        return cls(**kwargs)


@dataclass
class SafetyOutput:
    """The layer's decision for one control period.

    publish: whether the caller sends `target` now. target: the safe joint targets
    (controller order) or None. clamped: which limits changed the request
    ("tracking", "position", "velocity", "workspace"). reanchored: the velocity limit
    was measured from the robot's joints rather than the previous target (first target
    after a pause).
    """

    publish: bool
    target: np.ndarray | None
    state: SafetyState
    fault: Fault | None = None
    clamped: tuple[str, ...] = ()
    reanchored: bool = False


@dataclass
class _Counters:
    published: int = 0
    held: int = 0
    suppressed: int = 0
    clamped: dict[str, int] = field(default_factory=lambda: {"tracking": 0, "position": 0, "velocity": 0, "workspace": 0})


class SafetyLayer:
    """Stateful filter from requested joint targets to safe ones (see the module docstring).

    One instance per controlled robot; not thread-safe (the executor calls it from one
    thread). Input arrays are in `limits.names` order.
    """

    def __init__(
        self,
        limits: JointLimits,
        config: SafetyConfig | None = None,
        kinematics: TcpKinematics | None = None,
        on_fault: Callable[[Fault, str], None] | None = None,
    ):
        """limits: the controlled joints' limits (their order is the array order everywhere).
        kinematics: FK for the workspace box (built from the model of the robot whose joints
        `limits` names, when None and all its arm joints are controlled). on_fault: called
        with (fault, detail) whenever the fault changes (default: the `logging` module);
        nodes route it to their ROS logger."""
        self.limits = limits
        self._on_fault = on_fault
        self.config = config or SafetyConfig()
        self._step = limits.velocity * self.config.velocity_scale * self.config.period_s
        self._lo = limits.clip(limits.lower, self.config.joint_margin)
        self._hi = limits.clip(limits.upper, self.config.joint_margin)
        self._box_lo = np.array(self.config.workspace_min)
        self._box_hi = np.array(self.config.workspace_max)
        index = {n: i for i, n in enumerate(limits.names)}
        self._kinematics = kinematics
        self._robot: RobotDescription | None = None
        if kinematics is not None:
            arm: tuple[str, ...] = kinematics.arm_joints
        else:
            try:
                self._robot = robot_for_joints(limits.names)
                arm = self._robot.arm.joints
            except RobotDescriptionError:
                arm = ()  # no shipped robot has these joints: no FK, no workspace box
        self._arm_idx = np.array([index[n] for n in arm]) if arm and all(n in index for n in arm) else None
        self._fk = None
        if self.config.workspace_enabled and self._arm_idx is not None:
            self._fk = kinematics or TcpKinematics(robot=self._robot)
        self._last: np.ndarray | None = None  # last published (safe) target
        self._last_violation = 0.0
        self._need_anchor = True
        self._since_anchor = 0  # targets published since the last re-anchor (the ramp's clock)
        self._estop = False
        self.state = SafetyState.IDLE
        self.last_fault: Fault | None = None
        self.last_fault_detail = ""
        self.counters = _Counters()

    # -- public state --------------------------------------------------------------------
    @property
    def estopped(self) -> bool:
        """True while the e-stop latch is set."""
        return self._estop

    @property
    def last_target(self) -> np.ndarray | None:
        """The last target this layer let through (a copy), or None."""
        return None if self._last is None else self._last.copy()

    def tcp_of(self, q: np.ndarray) -> np.ndarray | None:
        """TCP position of joint targets q (controller order), or None without arm joints/FK."""
        if self._arm_idx is None:
            return None
        fk = self._fk or self._kinematics or TcpKinematics(robot=self._robot)
        self._fk = fk
        return fk.tcp_position(np.asarray(q, float)[self._arm_idx])

    # -- latch ---------------------------------------------------------------------------
    def estop(self, reason: str = "e-stop requested") -> np.ndarray | None:
        """Latch a stop. Returns the hold target to send once (the last safe target), or None."""
        self._estop = True
        self.state = SafetyState.ESTOP
        self._fault(Fault.ESTOP, reason)
        return self.last_target

    def reset(self) -> None:
        """Clear the e-stop latch; the next target is re-anchored at the measured joints."""
        self._estop = False
        self._need_anchor = True
        if self.state is SafetyState.ESTOP:
            self.state = SafetyState.IDLE

    def hold(self, fault: Fault | None = None, detail: str = "") -> SafetyOutput:
        """Hold this period without a new target: re-send the last safe target (if the
        reference is still valid), recording `fault` (e.g. a NaN in the observation or
        the policy's action, found before a target could be computed)."""
        if self._estop:
            self.counters.suppressed += 1
            return SafetyOutput(False, None, SafetyState.ESTOP, Fault.ESTOP)
        return self._hold(fault, detail)

    def pause(self) -> None:
        """Forget the velocity reference: the next target is re-anchored at the measured joints
        (call when the caller stops sending for a while, e.g. the executor's stop service)."""
        self._need_anchor = True

    # -- the filter ------------------------------------------------------------------------
    def step(
        self,
        target: np.ndarray | None,
        measured: np.ndarray | None,
        state_age_s: float | None,
        stale_after_s: float | None = None,
    ) -> SafetyOutput:
        """Decide what to send this period for the requested `target`.

        target: requested joint positions (controller order), or None to only hold.
        measured: the latest measured joint positions (same order), or None if none yet.
        state_age_s: age of `measured` in seconds (None if there is none).
        stale_after_s: the watchdog threshold for this state (default `config.stale_after_s`).
        """
        limit = self.config.stale_after_s if stale_after_s is None else stale_after_s
        n = len(self.limits.names)
        if self._estop:
            self.state = SafetyState.ESTOP
            self.counters.suppressed += 1
            return SafetyOutput(False, None, self.state, Fault.ESTOP)
        if measured is None or state_age_s is None:
            return self._silence(Fault.NO_STATE, "no joint state received yet")
        if not (state_age_s <= limit):  # also catches NaN ages
            return self._silence(Fault.STALE_STATE, f"joint state is {state_age_s * 1e3:.0f} ms old (limit {limit * 1e3:.0f} ms)")
        measured = np.asarray(measured, dtype=np.float64)
        if measured.shape != (n,):
            raise ValueError(f"measured joints have shape {measured.shape}, expected ({n},)")
        if not np.all(np.isfinite(measured)):
            return self._hold(Fault.NONFINITE_STATE, "NaN/inf in the measured joint state")
        if target is None:
            return self._hold(None, "")
        target = np.asarray(target, dtype=np.float64)
        if target.shape != (n,):
            raise ValueError(f"target has shape {target.shape}, expected ({n},)")
        if not np.all(np.isfinite(target)):
            return self._hold(Fault.NONFINITE_TARGET, "NaN/inf in the requested target")

        clamped: list[str] = []
        reanchored = False
        if self._need_anchor or self._last is None:
            ref = np.clip(measured, self._lo, self._hi)
            self._last_violation = self._violation(ref)
            reanchored = True
            self._since_anchor = 0
        else:
            ref = self._last
        step = self._step
        if self.config.ramp_s > 0:
            step = step * min(1.0, (self._since_anchor + 1) * self.config.period_s / self.config.ramp_s)
        cand = target
        # 4. tracking window around the measured joints
        if math.isfinite(self.config.max_tracking_error):
            e = self.config.max_tracking_error
            c = np.clip(cand, measured - e, measured + e)
            if not np.array_equal(c, cand):
                clamped.append("tracking")
            cand = c
        # 5. position limits
        c = np.clip(cand, self._lo, self._hi)
        if not np.array_equal(c, cand):
            clamped.append("position")
        cand = c
        # 6. velocity per period, from the reference (which is inside the limits)
        c = np.clip(cand, ref - step, ref + step)
        if not np.array_equal(c, cand):
            clamped.append("velocity")
        cand = np.clip(c, self._lo, self._hi)  # ref +- step may poke out; both bounds convex
        # 7. workspace box along the segment ref -> cand (every point of it satisfies 5 and 6)
        violation = self._violation(cand)
        allowed = max(self._last_violation, 0.0) + 1e-9
        if violation > allowed:
            lo, hi = 0.0, 1.0
            for _ in range(14):
                mid = 0.5 * (lo + hi)
                if self._violation(ref + mid * (cand - ref)) <= allowed:
                    lo = mid
                else:
                    hi = mid
            cand = np.clip(ref + lo * (cand - ref), self._lo, self._hi)
            violation = self._violation(cand)
            clamped.append("workspace")
        self._last = cand
        self._last_violation = violation
        self._need_anchor = False
        self._since_anchor += 1
        self.state = SafetyState.RUNNING
        self.counters.published += 1
        for name in clamped:
            self.counters.clamped[name] += 1
        return SafetyOutput(True, cand.copy(), self.state, None, tuple(clamped), reanchored)

    # -- helpers -----------------------------------------------------------------------
    def _violation(self, q: np.ndarray) -> float:
        """Distance (m) of q's TCP outside the workspace box; 0 inside or when disabled."""
        if self._fk is None:
            return 0.0
        p = self._fk.tcp_position(q[self._arm_idx])
        out = np.maximum(self._box_lo - p, 0.0) + np.maximum(p - self._box_hi, 0.0)
        return float(np.linalg.norm(out))

    def _fault(self, fault: Fault, detail: str) -> None:
        if fault is not self.last_fault or detail != self.last_fault_detail:
            if self._on_fault is not None:
                self._on_fault(fault, detail)
            else:
                log.warning("safety: %s (%s)", fault.value, detail)
        self.last_fault = fault
        self.last_fault_detail = detail

    def _silence(self, fault: Fault, detail: str) -> SafetyOutput:
        self._fault(fault, detail)
        self._need_anchor = True  # the robot may have moved meanwhile (or restarted)
        self.state = SafetyState.WAITING if fault is Fault.NO_STATE else SafetyState.STALE
        self.counters.suppressed += 1
        return SafetyOutput(False, None, self.state, fault)

    def _hold(self, fault: Fault | None, detail: str) -> SafetyOutput:
        if fault is not None:
            self._fault(fault, detail)
        self.state = SafetyState.HOLD
        if self._last is None or self._need_anchor:
            self.counters.suppressed += 1
            return SafetyOutput(False, None, self.state, fault)
        self.counters.held += 1
        return SafetyOutput(True, self._last.copy(), self.state, fault)
