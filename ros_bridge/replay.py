"""Stream a recorded demonstration to the robot through the safety layer.

`stream_demo` is what `skillstack replay FILE --to-ros` runs. For each chosen demo it
reads the Panda's joint positions at the control rate (`demos.joint_trajectory`:
the same for simulated and real-robot recordings), waits for fresh /joint_states, moves
the arm to the demo's first configuration, then sends each recorded configuration as
the joint target of its control period, in ros2_control's conventions (Float64MultiArray
on /<controller>/commands, or JointTrajectory on /<controller>/joint_trajectory). Every
target passes through the very `SafetyLayer` the skill executor uses: joint and
velocity limits, the workspace box, the stale-state watchdog and the NaN guard.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ros_bridge.params import DEFAULT_PARAMS_FILE, node_params
from ros_bridge.safety import PANDA_JOINTS, JointLimits, SafetyConfig, SafetyLayer, TcpKinematics
from ros_bridge.state import JointStateCache

__all__ = ["EpisodeStream", "ReplayReport", "stream_demo"]


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

    @property
    def ok(self) -> bool:
        """True when every demo was streamed to the end."""
        return all(not e.aborted for e in self.episodes)

    def __int__(self) -> int:
        return 0 if self.ok else 1


def stream_demo(
    path: str | Path,
    episodes: Sequence[int] | None = None,
    *,
    controller: str = "arm_controller",
    interface: str = "position",
    joint_states_topic: str = "/joint_states",
    rate_hz: float | None = None,
    safety: SafetyConfig | None = None,
    params_file: str | Path | None = None,
    domain_id: int | None = None,
    localhost_only: bool | None = None,
    settle_tolerance: float = 0.02,
    settle_timeout: float = 5.0,
    state_timeout: float = 10.0,
    echo: Callable[[str], None] = print,
) -> ReplayReport:
    """Stream the joint motion of demos in `path` (all, or the given indices) to a robot.

    controller/interface: where to publish (see module docstring). rate_hz: streaming
    rate (default the demo's own). safety: limits to apply (default: the `safety` block of
    `params_file`'s skill_executor, else the defaults). domain_id / localhost_only: ROS
    discovery for this process (default: the environment). settle_*: how closely and how
    long to wait at the first configuration before streaming. state_timeout: how long to
    wait for /joint_states (and how long states may stay stale mid-stream) before aborting.
    """
    from demos import DemoFile, joint_trajectory

    if interface not in ("position", "trajectory"):
        raise ValueError(f"interface must be 'position' or 'trajectory', got {interface!r}")
    path = Path(path)
    if safety is None:
        safety = node_params(params_file or DEFAULT_PARAMS_FILE, "skill_executor").safety
    with DemoFile(path) as demos:
        names = [demos.demo_name(i) for i in episodes] if episodes else list(demos.demo_names)
        trajectories = [(n, joint_trajectory(demos.episode(n, images=False))) for n in names]

    from ros_bridge._ros import COMMAND_QOS, STATE_QOS, stamp_s
    from ros_bridge.probe import Probe
    from builtin_interfaces.msg import Duration
    from sensor_msgs.msg import JointState
    from std_msgs.msg import Float64MultiArray
    from trajectory_msgs.msg import JointTrajectory, JointTrajectoryPoint

    model_limits = JointLimits.from_model(_robot_model(), PANDA_JOINTS)
    cache = JointStateCache(PANDA_JOINTS)
    report = ReplayReport(path)
    probe = Probe(domain_id=domain_id, name="skillstack_replay", localhost_only=bool(localhost_only))
    try:
        probe.node.create_subscription(
            JointState,
            joint_states_topic,
            lambda m: cache.update(m.name, m.position, m.velocity, stamp_s(m.header.stamp), probe.now()),
            STATE_QOS,
        )
        ctrl = controller.strip("/")
        if interface == "position":
            pub = probe.publisher(f"/{ctrl}/commands", Float64MultiArray, COMMAND_QOS)
        else:
            pub = probe.publisher(f"/{ctrl}/joint_trajectory", JointTrajectory, COMMAND_QOS)
        echo(f"replay: {len(trajectories)} demo(s) from {path} -> {pub.topic_name} ({interface})")

        for name, traj in trajectories:
            dt = 1.0 / rate_hz if rate_hz else traj.dt
            layer = SafetyLayer(model_limits, _with_period(safety, dt), TcpKinematics() if safety.workspace_enabled else None,
                                on_fault=lambda f, d: echo(f"replay: safety: {f.value}: {d}"))

            def send(target: np.ndarray, dt: float = dt) -> None:
                if interface == "position":
                    pub.publish(Float64MultiArray(data=target.tolist()))
                else:
                    sec = int(dt)
                    pt = JointTrajectoryPoint(positions=target.tolist(), time_from_start=Duration(sec=sec, nanosec=int((dt - sec) * 1e9)))
                    pub.publish(JointTrajectory(joint_names=list(PANDA_JOINTS), points=[pt]))

            rec = EpisodeStream(name, steps=len(traj.positions))
            report.episodes.append(rec)
            if not probe.wait_for(lambda: _fresh(cache, probe, safety.stale_after_s), state_timeout):
                rec.aborted = f"no fresh {joint_states_topic} within {state_timeout:.0f} s"
            elif not probe.wait_for(lambda: pub.get_subscription_count() >= 1, state_timeout):
                rec.aborted = f"no controller subscribed to {pub.topic_name} within {state_timeout:.0f} s"
            if rec.aborted:
                echo(f"replay: {name}: {rec.aborted}")
                break
            t0 = time.monotonic()
            # 1. Move to the first recorded configuration, rate-limited by the safety layer.
            start = traj.positions[0]
            deadline = time.monotonic() + settle_timeout
            next_t = time.monotonic()
            while time.monotonic() < deadline:
                reading = cache.latest()
                if reading is not None and np.max(np.abs(reading.position - start)) <= settle_tolerance:
                    break
                _tick(layer, start, cache, probe, send, rec)
                next_t = _sleep_until(next_t + dt)
            # 2. Stream the recorded configurations, one per control period.
            stale_since = None
            for target in traj.positions[1:]:
                out = _tick(layer, target, cache, probe, send, rec)
                if not out.publish and out.fault is not None:
                    stale_since = stale_since or time.monotonic()
                    if time.monotonic() - stale_since > state_timeout:
                        rec.aborted = f"robot states stale for {state_timeout:.0f} s ({out.fault.value})"
                        break
                else:
                    stale_since = None
                next_t = _sleep_until(next_t + dt)
            time.sleep(min(0.5, 10 * dt))  # let the arm arrive
            reading = cache.latest()
            if reading is not None:
                rec.final_error = float(np.max(np.abs(reading.position - traj.positions[-1])))
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


def _robot_model():
    import sim_assets

    return sim_assets.load_panda()


def _with_period(cfg: SafetyConfig, dt: float) -> SafetyConfig:
    import dataclasses

    return dataclasses.replace(cfg, period_s=dt)


def _fresh(cache: JointStateCache, probe, stale_after: float) -> bool:
    r = cache.latest()
    return r is not None and probe.now() - r.stamp_s <= stale_after


def _tick(layer: SafetyLayer, target: np.ndarray, cache: JointStateCache, probe, send, rec: EpisodeStream):
    reading = cache.latest()
    if reading is None:
        out = layer.step(target, None, None)
    else:
        out = layer.step(target, reading.position, probe.now() - reading.stamp_s)
    if out.publish:
        send(out.target)
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
