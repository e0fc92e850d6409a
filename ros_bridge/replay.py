"""Stream a recorded demonstration to a robot through the safety layer, for any robot with a profile.

`stream_demo` is what `skillstack replay FILE --to-ros` runs. The robot is described by a
robot profile (`ros_bridge.profile`; the demo's own when it was imported through one, e.g. a
franka_ros2 bag imported with `--profile fr3`, else the executor's from the params file): its
joint-state topics are merged by name (`MergedJointStates`: an arm and a gripper at their own
rates, each with its own watchdog threshold), and commands go out exactly as the skill executor
sends them (`bringup.plan_bringup` + `command_paths.CommandPaths`: the profile's arm controller
and interface in the driver's joint names, the gripper on its own path such as a
control_msgs/GripperCommand action). For each chosen demo it reads the description's joint
positions at the demo's rate (`demos.joint_trajectory`: the same for simulated and real-robot
recordings), waits for fresh states and a listening controller, moves the arm to the demo's first
configuration, then sends each recorded configuration as the target of its control period. Every
target passes through the very `SafetyLayer` the skill executor uses, with the same limits (the
tighter of the description's and the profile's): joint and velocity limits, the velocity ramp,
the workspace box, the stale-state watchdog and the NaN guard. While the watchdog holds, the
replay pauses on the configuration it was about to send and resumes there (it aborts after
`state_timeout` of stale states), so no recorded configuration is skipped.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from ros_bridge.bringup import BringupPlan, plan_bringup
from ros_bridge.joint_states import MergedJointStates
from ros_bridge.params import DEFAULT_PARAMS_FILE, node_params
from ros_bridge.profile import ProfileError
from ros_bridge.safety import Fault, JointLimits, SafetyConfig, SafetyLayer, TcpKinematics

__all__ = ["EpisodeStream", "ReplayReport", "replay_plan", "stream_demo"]


@dataclass
class EpisodeStream:
    """How one demo went out: counts per control period and the final tracking error."""

    name: str
    steps: int
    sent: int = 0
    held: int = 0
    suppressed: int = 0  # periods with nothing sent (stale states, e-stop)
    clamped: int = 0  # targets changed by a limit
    final_error: float = math.nan  # max |measured - last recorded| over joints (rad) at the end
    seconds: float = 0.0
    aborted: str = ""  # why the stream stopped early, if it did


@dataclass
class ReplayReport:
    """All streamed demos. `int(report)` is the command's exit code (0 when none aborted)."""

    path: Path
    episodes: list[EpisodeStream] = field(default_factory=list)
    profile: str = ""

    @property
    def ok(self) -> bool:
        """True when every demo was streamed to the end."""
        return all(not e.aborted for e in self.episodes)

    def __int__(self) -> int:
        return 0 if self.ok else 1


def replay_plan(
    joint_names: Sequence[str],
    profile: str,
    period_s: float,
    *,
    controller: str = "",
    interface: str = "",
    joint_states_topic: str = "",
    safety: SafetyConfig | None = None,
) -> BringupPlan:
    """What a replay of a demo with `joint_names` (description names) does on `profile`'s robot:
    state topics, command paths, limits. ProfileError when the demo is of another robot."""
    from sim_assets import load_robot_model

    from ros_bridge.params import ExecutorParams

    params = ExecutorParams(profile=profile, controller=controller, interface=interface,
                            joint_states_topic=joint_states_topic, safety=safety or SafetyConfig())  # fmt: skip
    prof = params.robot_profile
    desc = prof.description
    if tuple(joint_names) != desc.joint_names:
        raise ProfileError(f"the demo moves joints {list(joint_names)}, but profile {prof.name!r} drives the {desc.name} "
                           f"({list(desc.joint_names)}); pass the profile of the robot it was recorded on")  # fmt: skip
    return plan_bringup(params, load_robot_model(desc), period_s)


def stream_demo(
    path: str | Path,
    episodes: Sequence[int] | None = None,
    *,
    profile: str | None = None,
    controller: str = "",
    interface: str = "",
    joint_states_topic: str = "",
    rate_hz: float | None = None,
    safety: SafetyConfig | None = None,
    params_file: str | Path | None = None,
    domain_id: int | None = None,
    localhost_only: bool | None = None,
    settle_tolerance: float = 0.02,
    settle_timeout: float = 5.0,
    state_timeout: float = 10.0,
    listeners: int = 1,
    echo: Callable[[str], None] = print,
) -> ReplayReport:
    """Stream the joint motion of demos in `path` (all, or the given indices) to a robot.

    profile: the robot profile (name or YAML path); default the demo's own (`profile` attribute
    of an imported bag), else the skill executor's in `params_file`. controller / interface /
    joint_states_topic override the profile's ('' = the profile's). rate_hz: streaming rate
    (default the demo's own). safety: limits to apply (default: the `safety` block of
    `params_file`'s skill_executor, else the defaults). domain_id / localhost_only: ROS discovery
    for this process (default: the environment). settle_*: how closely and how long to wait at
    the first configuration before streaming. state_timeout: how long to wait for joint states
    and a controller (and how long states may stay stale mid-stream) before aborting.
    listeners: readers of the arm's command topic to wait for before streaming (the controller, plus
    a recorder or monitor that must hear the whole replay; an action server counts as one).
    """
    from demos import DemoFile, joint_trajectory

    if interface not in ("", "position", "trajectory", "action"):
        raise ValueError(f"interface must be 'position', 'trajectory' or 'action' ('' = the profile's), got {interface!r}")
    if listeners < 1:
        raise ValueError(f"listeners must be at least 1 (the controller), got {listeners}")
    path = Path(path)
    executor = node_params(params_file or DEFAULT_PARAMS_FILE, "skill_executor")
    safety = safety or executor.safety
    with DemoFile(path) as demos:
        names = [demos.demo_name(i) for i in episodes] if episodes else list(demos.demo_names)
        eps = [demos.episode(n, images=False) for n in names]
        env_id, env_kwargs = demos.env_id, demos.env_kwargs  # the robot and layout the file recorded
    trajectories = [(ep.name or n, joint_trajectory(ep, env_id=env_id, env_kwargs=env_kwargs)) for n, ep in zip(names, eps)]
    recorded_on = {str(ep.attrs.get("profile") or "") for ep in eps} - {""}
    if profile is None and len(recorded_on) > 1:
        raise ProfileError(f"{path}: the demos were imported through several profiles {sorted(recorded_on)}; pass one")
    profile = profile or (recorded_on.pop() if recorded_on else executor.profile)

    from ros_bridge._ros import STATE_QOS, stamp_s
    from ros_bridge.command_paths import CommandPaths
    from ros_bridge.probe import Probe
    from sensor_msgs.msg import JointState

    report = ReplayReport(path, profile=str(profile))
    first_dt = 1.0 / rate_hz if rate_hz else trajectories[0][1].dt
    plan = replay_plan(trajectories[0][1].joint_names, profile, first_dt, controller=controller, interface=interface,
                       joint_states_topic=joint_states_topic, safety=safety)  # fmt: skip
    desc = plan.profile.description
    order = list(desc.joint_names)
    cmd_idx = np.array([order.index(j) for j in plan.limits.names])
    n_arm = len(plan.arm_joints)
    from sim_assets import load_robot_model

    state_limits = JointLimits.from_model(load_robot_model(desc), order, robot=desc)  # the executor's implausible-jump check
    joints = MergedJointStates(order, plan.state_topics, aliases=plan.aliases,
                               max_velocity=state_limits.velocity if plan.safety.reject_implausible_states else None)  # fmt: skip
    topics = ", ".join(t.topic for t in plan.state_topics)
    probe = Probe(domain_id=domain_id, name="skillstack_replay", localhost_only=bool(localhost_only))
    try:
        for i, t in enumerate(plan.state_topics):
            probe.node.create_subscription(
                JointState, t.topic,
                lambda m, i=i: joints.update(i, m.name, m.position, m.velocity, stamp_s(m.header.stamp), probe.now()),
                STATE_QOS,
            )  # fmt: skip
        paths = CommandPaths(probe.node, plan, first_dt, echo)
        echo(f"replay: {len(trajectories)} demo(s) from {path} on profile {plan.profile.name} ({desc.name}) -> "
             f"arm {paths.arm_path}; gripper {paths.gripper_path}")  # fmt: skip

        for name, traj in trajectories:
            if traj.joint_names != desc.joint_names:
                raise ProfileError(f"{path}: {name} moves joints {list(traj.joint_names)}, not the {desc.name}'s")
            dt = 1.0 / rate_hz if rate_hz else traj.dt
            layer = SafetyLayer(plan.limits, replace(plan.safety, period_s=dt),
                                TcpKinematics(robot=desc) if plan.safety.workspace_enabled else None,
                                on_fault=lambda f, d: echo(f"replay: safety: {f.value}: {d}"))  # fmt: skip
            paths.period_s = dt
            paths.reset()
            rec = EpisodeStream(name, steps=len(traj.positions))
            report.episodes.append(rec)
            if not probe.wait_for(lambda: _fresh(joints, probe), state_timeout):
                rec.aborted = f"no fresh {topics} within {state_timeout:.0f} s"
            elif not probe.wait_for(lambda: not paths.not_ready(), state_timeout):
                rec.aborted = f"{paths.not_ready()} within {state_timeout:.0f} s"
            elif not probe.wait_for(lambda: paths.subscribers() >= listeners, state_timeout):
                rec.aborted = f"{paths.subscribers()} of {listeners} listeners on {paths.topic} within {state_timeout:.0f} s"
            if rec.aborted:
                echo(f"replay: {name}: {rec.aborted}")
                break
            t0 = time.monotonic()

            def tick(target: np.ndarray) -> object:
                out = _tick(layer, target[cmd_idx], joints, cmd_idx, probe, rec)
                if out.publish:
                    grip = np.clip(target[cmd_idx][n_arm:], layer.limits.lower[n_arm:], layer.limits.upper[n_arm:])
                    paths.send(out.target, grip if len(grip) else None)
                return out

            # 1. Move to the first recorded configuration, rate-limited by the safety layer.
            start = traj.positions[0]
            deadline = time.monotonic() + settle_timeout
            next_t = time.monotonic()
            while time.monotonic() < deadline:
                reading = joints.latest()
                if reading is not None and np.max(np.abs(reading.position - start)) <= settle_tolerance:
                    break
                tick(start)
                next_t = _sleep_until(next_t + dt)
            # 2. Stream the recorded configurations, one per control period. While the
            # watchdog holds (stale or missing states) the replay pauses on the configuration
            # it was about to send and resumes there: no recorded configuration is skipped.
            stale_since = None
            i = 1
            while i < len(traj.positions):
                out = tick(traj.positions[i])
                if not out.publish and out.fault in _WATCHDOG_FAULTS:
                    stale_since = stale_since or time.monotonic()
                    if time.monotonic() - stale_since > state_timeout:
                        rec.aborted = f"robot states stale for {state_timeout:.0f} s ({out.fault.value})"
                        break
                else:
                    stale_since = None
                    i += 1
                next_t = _sleep_until(next_t + dt)
            time.sleep(min(0.5, 10 * dt))  # let the arm arrive
            reading = joints.latest()
            if reading is not None:
                rec.final_error = float(np.max(np.abs(reading.position[:n_arm] - traj.positions[-1][:n_arm])))
            rec.seconds = time.monotonic() - t0
            echo(
                f"replay: {name}: {rec.steps} steps in {rec.seconds:.1f} s, sent {rec.sent}, held {rec.held}, "
                f"suppressed {rec.suppressed}, clamped {rec.clamped}, final joint error {rec.final_error:.3f} rad"
                + (f", ABORTED: {rec.aborted}" if rec.aborted else "")
            )
            if rec.aborted:
                break
    finally:
        probe.close()
    return report


_WATCHDOG_FAULTS = (Fault.STALE_STATE, Fault.NO_STATE)


def _state_age(joints: MergedJointStates, probe) -> tuple[float, float] | None:
    """(age, threshold) of the stalest state topic, None while one has not spoken."""
    worst = joints.worst_age(probe.now())
    return None if worst is None else (worst[1], worst[2])


def _fresh(joints: MergedJointStates, probe) -> bool:
    age = _state_age(joints, probe)
    return age is not None and age[0] <= age[1]


def _tick(layer: SafetyLayer, target: np.ndarray, joints: MergedJointStates, cmd_idx: np.ndarray, probe, rec: EpisodeStream):
    reading = joints.latest()
    age = _state_age(joints, probe)
    if reading is None or age is None:
        out = layer.step(target, None, None)
    else:
        out = layer.step(target, reading.position[cmd_idx], age[0], age[1])
    if out.publish:
        if out.state.value == "hold":
            rec.held += 1
        else:
            rec.sent += 1
        if out.clamped:
            rec.clamped += 1
    else:
        rec.suppressed += 1
    return out


def _sleep_until(t: float) -> float:
    now = time.monotonic()
    if t > now:
        time.sleep(t - now)
        return t
    return now  # late: do not try to catch up with a burst
