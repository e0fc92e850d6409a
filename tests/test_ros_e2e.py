"""The ROS 2 bridge end to end over real rclpy/Fast DDS on loopback.

Every test gets a fresh ROS_DOMAIN_ID and localhost-only discovery, starts the nodes as
processes (as `skillstack deploy` does) and injects faults from a probe node. In every
test, every command the executor published is checked against the model's joint limits.
"""

from __future__ import annotations

import itertools
import os
import random
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from ros_bridge._env import child_env, ros_available

pytestmark = [
    pytest.mark.skipif(not ros_available(), reason="ROS 2 (rclpy) not installed: pip install 'skillstack[ros]'"),
    pytest.mark.timeout(90),
]

if ros_available():
    from sensor_msgs.msg import JointState
    from std_msgs.msg import Float64MultiArray
    from trajectory_msgs.msg import JointTrajectory

    from ros_bridge._ros import STATE_QOS, to_stamp
    from ros_bridge.launcher import NodeProcess, write_params_file
    from ros_bridge.probe import Probe

import sim_assets
from ros_bridge.safety import PANDA_JOINTS, JointLimits, TcpKinematics

MODEL = sim_assets.load_panda()
LIMITS = JointLimits.from_model(MODEL)
HOME = np.array(MODEL.numeric("panda_home_qpos").data)
KIN = TcpKinematics(MODEL)
GOAL = [0.45, 0.2, 0.3]
_DOMAINS = itertools.count(random.Random(os.getpid() ^ int(time.time())).randrange(100))


@pytest.fixture
def domain() -> int:
    """A fresh ROS_DOMAIN_ID (100..199) for this test."""
    return 100 + next(_DOMAINS) % 100


class Bridge:
    """Nodes of one test, their probe, and the recorded commands."""

    def __init__(self, domain: int, tmp: Path):
        self.domain = domain
        self.tmp = tmp
        self.nodes: dict[str, NodeProcess] = {}
        self.probe = Probe(domain_id=domain, name="test_probe")
        self.status = self.probe.record_status()
        self.commands = self.probe.record("/arm_controller/commands", Float64MultiArray)
        self.trajectories = self.probe.record("/arm_controller/joint_trajectory", JointTrajectory)
        self.states = self.probe.record("/joint_states", JointState, STATE_QOS)

    def start(self, node: str, **params) -> NodeProcess:
        f = write_params_file(self.tmp / f"{node}.yaml", {node: params})
        proc = NodeProcess(node, f, domain_id=self.domain, localhost_only=True, log_path=self.tmp / f"{node}.log")
        self.nodes[node] = proc.start()
        return proc

    def start_executor(self, subscribers: int, *, start: bool = True, timeout: float = 30.0, **params) -> NodeProcess:
        """Start skill_executor with autostart off, wait until DDS discovery has matched the
        probe and `subscribers` command readers (probe + sim_robot) and states flow, then
        call ~/start (Fast DDS discovery on a loaded machine can take a few seconds)."""
        proc = self.start("skill_executor", autostart=False, **params)
        cmd_rec = self.trajectories if params.get("interface") == "trajectory" else self.commands

        def ready() -> bool:
            st = self.status.last()
            return bool(
                st
                and st["command_subscribers"] >= subscribers
                and cmd_rec.publisher_count(self.probe) >= 1
                and (
                    not self.nodes.get("sim_robot")
                    or (st["state_age"] is not None and st["state_age"] < 0.1 and len(self.states) > 0)
                )
            )

        assert self.probe.wait_for(ready, timeout), f"nodes never matched; status {self.status.last()}\n{self.logs()}"
        if start:
            assert self.probe.call_trigger("/skill_executor/start").success
        return proc

    def wait_state(self, state: str, timeout: float) -> dict:
        ok = self.probe.wait_for(lambda: (self.status.last() or {}).get("state") == state, timeout)
        assert ok, f"executor never reached state {state!r}; last status {self.status.last()}\n{self.logs()}"
        return self.status.last()

    def wait_commands(self, n: int, timeout: float) -> None:
        ok = self.probe.wait_for(lambda: len(self.commands) >= n, timeout)
        assert ok, f"only {len(self.commands)} commands after {timeout} s; status {self.status.last()}\n{self.logs()}"

    def command_values(self) -> list[np.ndarray]:
        return [np.array(m.data) for m in self.commands.messages()]

    def logs(self) -> str:
        return "\n".join(f"--- {n} ---\n{p.log_text()[-3000:]}" for n, p in self.nodes.items())

    def assert_all_within_limits(self) -> None:
        targets = self.command_values() + [np.array(m.points[-1].positions) for m in self.trajectories.messages()]
        for t in targets:
            assert t.shape == (9,) and np.all(np.isfinite(t)), t
            assert np.all(t >= LIMITS.lower) and np.all(t <= LIMITS.upper), t

    def close(self) -> None:
        for proc in reversed(list(self.nodes.values())):
            proc.stop()
        self.probe.close()


@pytest.fixture
def bridge(domain: int, tmp_path: Path):
    b = Bridge(domain, tmp_path)
    try:
        yield b
        b.assert_all_within_limits()  # every test: no published target left the limits
    finally:
        b.close()


class FakeRobot:
    """Publishes JointState at `rate` Hz from a thread; the test edits what it sends."""

    def __init__(self, probe: Probe, rate: float = 100.0):
        self.pub = probe.publisher("/joint_states", JointState, 10)
        self.probe = probe
        self.names = list(PANDA_JOINTS)
        self.position = HOME.copy()
        self.velocity = np.zeros(9)
        self.stamp_offset = 0.0  # seconds added to the header stamp (negative = old)
        self.enabled = True
        self.period = 1.0 / rate
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def set(self, names: list[str], position: np.ndarray, velocity: np.ndarray) -> None:
        """Change what is published, atomically (names and arrays together)."""
        with self._lock:
            self.names, self.position, self.velocity = list(names), position, velocity

    def _run(self) -> None:
        while not self._stop.is_set():
            if self.enabled:
                msg = JointState()
                to_stamp(msg.header.stamp, self.probe.now() + self.stamp_offset)
                with self._lock:
                    msg.name = list(self.names)
                    msg.position = [float(x) for x in self.position]
                    msg.velocity = [float(x) for x in self.velocity]
                self.pub.publish(msg)
            time.sleep(self.period)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(2.0)


def silence(rec, seconds: float) -> int:
    """How many new messages `rec` got during the next `seconds`."""
    n0 = len(rec)
    time.sleep(seconds)
    return len(rec) - n0


def tcp_of_state(msg: JointState) -> np.ndarray:
    q = dict(zip(msg.name, msg.position))
    return KIN.tcp_position(np.array([q[n] for n in PANDA_JOINTS[:7]]))


# --------------------------------------------------------------------------- end to end


@pytest.mark.parametrize("interface", ["position", "trajectory"])
def test_reach_on_sim_robot_via_topics(bridge: Bridge, interface: str) -> None:
    bridge.start("sim_robot")
    bridge.start_executor(2, goal=GOAL, interface=interface)
    st = bridge.wait_state("done", 30)
    # No fault but "no state yet" at start-up (or a watchdog trip when this shared machine
    # stalls a process for > 100 ms, which is the watchdog doing its job).
    assert st["last_fault"] in ("", "no_state", "stale_state")
    # The simulated arm (not just the executor's estimate) is at the goal.
    assert np.linalg.norm(tcp_of_state(bridge.states.last()) - GOAL) < 0.05
    if interface == "position":
        assert len(bridge.commands) > 5 and len(bridge.trajectories) == 0
    else:
        assert len(bridge.trajectories) > 5 and len(bridge.commands) == 0
        msg = bridge.trajectories.last()
        assert list(msg.joint_names) == list(PANDA_JOINTS) and len(msg.points) == 1
        assert msg.points[0].time_from_start.nanosec == pytest.approx(40_000_000, abs=1000)
    # The sim received commands in order and they moved it: the first is a small step from home.
    first = bridge.command_values()[0] if interface == "position" else np.array(bridge.trajectories.messages()[0].points[0].positions)
    assert np.all(np.abs(first - HOME) <= LIMITS.velocity * 0.04 + 1e-3)


# --------------------------------------------------------------------------- fault injection


def test_stale_states_stop_commands_until_fresh_ones_return(bridge: Bridge) -> None:
    robot = FakeRobot(bridge.probe)
    bridge.start_executor(1, goal=GOAL, stop_on_success=False)
    try:
        bridge.wait_commands(5, 20)
        robot.stamp_offset = -0.3  # states keep coming, but 300 ms old
        time.sleep(0.2)
        assert silence(bridge.commands, 0.5) == 0
        st = bridge.status.last()
        assert st["state"] == "stale" and st["last_fault"] == "stale_state"
        robot.stamp_offset = 0.0
        n0 = len(bridge.commands)
        bridge.wait_commands(n0 + 3, 5)
        # Re-anchored at the measured joints: the first new command is one step from them.
        first = bridge.command_values()[n0]
        assert np.all(np.abs(first - HOME) <= LIMITS.velocity * 0.04 + 1e-9)
        robot.enabled = False  # states stop altogether
        time.sleep(0.2)
        assert silence(bridge.commands, 0.5) == 0
        bridge.wait_state("stale", 2)
    finally:
        robot.close()


# Tests whose fake robot runs in this (busy) test process use a lenient watchdog, so a
# stall of the shared machine does not trip it in the middle of what they check.
LENIENT_WATCHDOG = {"safety.stale_after_s": 0.5}


def test_nan_in_states_holds_the_last_safe_target(bridge: Bridge) -> None:
    robot = FakeRobot(bridge.probe)
    bridge.start_executor(1, goal=GOAL, stop_on_success=False, **LENIENT_WATCHDOG)
    try:
        bridge.wait_commands(5, 20)
        pos = HOME.copy()
        pos[3] = np.nan
        robot.position = pos
        time.sleep(0.2)
        n0 = len(bridge.commands)
        bridge.wait_commands(n0 + 3, 10)  # holding = re-sending, so a trajectory controller keeps still
        held = bridge.command_values()[n0:]
        for h in held:
            np.testing.assert_array_equal(h, held[0])
        st = bridge.status.last()
        assert st["state"] == "hold" and st["last_fault"] == "nonfinite_state"
        robot.position = HOME.copy()
        robot.velocity = np.full(9, np.inf)  # NaN/inf anywhere in the state holds too
        time.sleep(0.3)
        assert bridge.probe.wait_for(lambda: bridge.status.last()["fault_detail"] == "NaN/inf in joint velocities", 2)
        tail = bridge.command_values()[-3:]
        np.testing.assert_array_equal(tail[-1], held[0])
    finally:
        robot.close()


def test_wrong_or_missing_joint_names_never_move_the_robot(bridge: Bridge) -> None:
    robot = FakeRobot(bridge.probe)
    # Missing a joint, from the first message on.
    robot.set([n for n in PANDA_JOINTS if n != "panda_joint3"], np.delete(HOME, 2), np.zeros(8))
    bridge.start_executor(1, start=False, goal=GOAL, stop_on_success=False, **LENIENT_WATCHDOG)
    try:
        assert bridge.status.last()["state"] == "stopped"
        bridge.probe.call_trigger("/skill_executor/start")
        assert silence(bridge.commands, 1.0) == 0
        assert bridge.probe.wait_for(lambda: bridge.status.last()["rejected_states"] > 10, 10), bridge.status.last()
        st = bridge.status.last()
        assert "panda_joint3" in st["executor_fault"]
        assert st["state"] == "waiting"  # never had a valid state
        # Wrong names (a different robot's joints).
        robot.set([f"ur_joint{i}" for i in range(9)], HOME.copy(), np.zeros(9))
        assert silence(bridge.commands, 0.6) == 0
        st = bridge.status.last()
        assert st["state"] == "waiting" and "ur_joint0" in st["executor_fault"]
        # Shuffled order plus an extra joint: matched by name, same command as in order.
        order = [8, 2, 0, 5, 1, 7, 3, 6, 4]
        robot.set([PANDA_JOINTS[i] for i in order] + ["base_yaw"], np.append(HOME[order], 1.234), np.zeros(10))
        bridge.wait_commands(1, 5)
        shuffled_first = bridge.command_values()[0]
        bridge.probe.call_trigger("/skill_executor/stop")
        time.sleep(0.2)
        robot.set(list(PANDA_JOINTS), HOME.copy(), np.zeros(9))
        time.sleep(0.2)
        n0 = len(bridge.commands)
        bridge.probe.call_trigger("/skill_executor/start")
        bridge.wait_commands(n0 + 1, 5)
        np.testing.assert_allclose(bridge.command_values()[n0], shuffled_first, atol=1e-12)
    finally:
        robot.close()


def test_estop_mid_motion_latches_until_reset(bridge: Bridge) -> None:
    bridge.start("sim_robot")
    bridge.start_executor(2, goal=[0.4, -0.25, 0.35])
    bridge.wait_commands(8, 30)
    # Mid-motion: on a loaded machine the arm may still be accelerating after 8 commands, so wait for speed.
    deadline = time.monotonic() + 20
    while np.max(np.abs(bridge.states.last().velocity[:7])) <= 0.05:
        assert time.monotonic() < deadline, "the arm never reached 0.05 rad/s"
        time.sleep(0.005)
    assert bridge.status.last()["state"] == "running"
    resp = bridge.probe.call_trigger("/skill_executor/estop")
    assert resp.success
    time.sleep(0.1)  # commands already in flight arrive
    # The last command is the hold (a repeat of the last safe target); nothing follows it.
    values = bridge.command_values()
    np.testing.assert_array_equal(values[-1], values[-2])
    assert silence(bridge.commands, 0.8) == 0
    assert bridge.status.last()["state"] == "estop"
    # The arm stopped: joint velocities of sim_robot are near zero.
    assert np.max(np.abs(bridge.states.last().velocity[:7])) < 0.05
    refused = bridge.probe.call_trigger("/skill_executor/start")
    assert not refused.success and "reset" in refused.message
    assert silence(bridge.commands, 0.3) == 0
    assert bridge.probe.call_trigger("/skill_executor/reset").success
    assert bridge.wait_state("stopped", 2)
    assert bridge.probe.call_trigger("/skill_executor/start").success
    bridge.wait_state("done", 30)
    # The probe's own subscription matches the new sim_robot by discovery, which on a loaded
    # machine can lag the executor's: wait for its first state rather than race it.
    assert bridge.probe.wait_for(lambda: bridge.states.last() is not None, 20), "the probe never saw the new sim_robot"
    assert np.linalg.norm(tcp_of_state(bridge.states.last()) - [0.4, -0.25, 0.35]) < 0.05


FLOOD = textwrap.dedent(
    """
    import sys, time, numpy as np, rclpy
    from sensor_msgs.msg import JointState
    from ros_bridge._ros import to_stamp
    from ros_bridge.safety import PANDA_JOINTS
    rclpy.init()
    node = rclpy.create_node("flood")
    pub = node.create_publisher(JointState, "/joint_states", 10)
    rng = np.random.default_rng(0)
    seconds, rate, readers = float(sys.argv[1]), float(sys.argv[2]), int(sys.argv[3])
    deadline = time.monotonic() + 20
    while pub.get_subscription_count() < readers and time.monotonic() < deadline:
        time.sleep(0.02)  # DDS discovery: flood only once the executor listens
    assert pub.get_subscription_count() >= readers, "executor never matched"
    print("FLOODING", time.time(), flush=True)
    t0 = time.monotonic(); sent = 0
    while (now := time.monotonic()) - t0 < seconds:
        if sent >= (now - t0) * rate:
            time.sleep(0.0001)
            continue
        msg = JointState()
        to_stamp(msg.header.stamp, time.time())
        kind = sent % 4
        msg.name = list(PANDA_JOINTS) if kind != 3 else ["x%d" % i for i in range(9)]
        pos = rng.uniform(-10.0, 10.0, 9)
        if kind == 2:
            pos[rng.integers(9)] = np.nan
        msg.position = pos.tolist()
        pub.publish(msg)
        sent += 1
    print("SENT", sent, sent / (time.monotonic() - t0), time.time(), flush=True)
    rclpy.shutdown()
    """
)


def test_flood_of_10khz_joint_states_stays_safe_and_recovers(bridge: Bridge) -> None:
    """Garbage /joint_states (random positions, NaN, another robot's names) flooded at up to
    10 kHz beside sim_robot's valid ones. Asserted is what the bridge does, whatever rate
    the generator reaches on this machine (it is printed in failure messages, never asserted):
    every command stays within the limits and one velocity step of the previous one, the
    executor keeps running and counts the garbage as rejected, and after the flood the
    rejections stop and the skill brings the arm to the goal."""
    bridge.start("sim_robot")
    bridge.start_executor(2, goal=GOAL, stop_on_success=False)
    bridge.wait_commands(3, 30)
    before = bridge.status.last()
    env = child_env(domain_id=bridge.domain, localhost_only=True)
    flood = subprocess.Popen(
        [sys.executable, "-c", FLOOD, "4.0", "10000", "2"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        out, err = flood.communicate(timeout=60)
    finally:
        if flood.poll() is None:
            flood.kill()
    assert flood.returncode == 0, err[-2000:]
    lines = dict(line.split(" ", 1) for line in out.splitlines())
    t_start = float(lines["FLOODING"])
    sent, achieved, t_end = (float(x) for x in lines["SENT"].split())
    flood_info = f"flood: {sent:.0f} messages at {achieved:.0f} msg/s"
    assert sent > 0, flood_info
    # The executor survived and stayed responsive: its status kept coming during the flood
    # and it was still running (ticking) once the flood was over.
    assert bridge.nodes["skill_executor"].alive(), f"{flood_info}\n{bridge.logs()}"
    assert any(t_start <= t <= t_end for t, _ in bridge.status.snapshot()), f"no status during the flood; {flood_info}"
    assert bridge.probe.wait_for(lambda: bridge.status.snapshot()[-1][0] > t_end, 10), flood_info
    after = bridge.status.last()
    # The flood reached the executor and was refused: its rejection counter grew (a quarter
    # of the flood has another robot's joint names, half are implausible jumps); the policy
    # never failed and no state got past the safety layer (the fixture checks every command
    # against the limits; here each command moves one velocity step from the previous at
    # most, plus the arm's tracking lag when a stall of this loaded machine tripped the
    # watchdog and the next command re-anchored at the arm).
    assert after["rejected_states"] > before["rejected_states"], f"{flood_info}; status {after}"
    assert after["policy_errors"] == before["policy_errors"] == 0, after
    values = bridge.command_values()
    for a, b in zip(values, values[1:]):
        assert np.all(np.abs(b - a) <= LIMITS.velocity * 0.04 + 0.1), b - a
    # Recovery: the skill gets the arm to the goal, the executor is running with no fault
    # of its own, and with only sim_robot left on /joint_states no state is rejected any more.
    ok = bridge.probe.wait_for(lambda: np.linalg.norm(tcp_of_state(bridge.states.last()) - GOAL) < 0.03, 20)
    assert ok, f"arm did not recover to the goal; status {bridge.status.last()}; {flood_info}"
    settled = bridge.wait_state("running", 10)
    assert settled["executor_fault"] == "", settled

    # The transport may still hand over flood messages it had queued when the generator
    # exited (Fast DDS's shared-memory port on a loaded machine); the rejections must stop
    # once that queue is drained: the counter holds still over half a second.
    # Only a status published after the half second counts (a status stream that stalled
    # would otherwise look like a counter holding still).
    def rejections_stopped() -> bool:
        t0, first = bridge.status.snapshot()[-1]
        time.sleep(0.5)
        fresh = bridge.probe.wait_for(lambda: bridge.status.snapshot()[-1][0] > t0 + 0.5, 5)
        return fresh and bridge.status.last()["rejected_states"] == first["rejected_states"]

    assert any(rejections_stopped() for _ in range(30)), f"{bridge.status.last()}\n{bridge.logs()[-3000:]}"
    n0 = len(bridge.commands)
    bridge.wait_commands(n0 + 3, 10)  # still commanding the arm (holding it at the goal)
    # and still ticking: a status with more ticks arrives (statuses come at 10 Hz, on their own topic)
    assert after["ticks"] > before["ticks"], (before, after)
    assert bridge.probe.wait_for(lambda: bridge.status.last()["ticks"] > after["ticks"], 10), bridge.status.last()


def test_sim_robot_killed_and_restarted(bridge: Bridge) -> None:
    sim = bridge.start("sim_robot")
    bridge.start_executor(2, goal=[0.4, -0.25, 0.35])
    bridge.wait_commands(5, 30)
    sim.kill()
    time.sleep(0.3)  # watchdog: 100 ms
    assert silence(bridge.commands, 0.8) == 0
    assert bridge.wait_state("stale", 2)["last_fault"] == "stale_state"
    n0 = len(bridge.commands)
    bridge.states.clear()
    bridge.start("sim_robot")  # a fresh robot, back at home
    bridge.wait_commands(n0 + 1, 20)
    first = bridge.command_values()[n0]
    assert np.all(np.abs(first - HOME) <= LIMITS.velocity * 0.04 + 1e-3), first - HOME
    bridge.wait_state("done", 30)
    # The probe's own subscription matches the new sim_robot by discovery, which on a loaded
    # machine can lag the executor's: wait for its first state rather than race it.
    assert bridge.probe.wait_for(lambda: bridge.states.last() is not None, 20), "the probe never saw the new sim_robot"
    assert np.linalg.norm(tcp_of_state(bridge.states.last()) - [0.4, -0.25, 0.35]) < 0.05


# --------------------------------------------------------------------------- deploy command


def test_skillstack_deploy_default_runs_the_arm_to_done(domain: int, tmp_path: Path) -> None:
    env = child_env(domain_id=domain, localhost_only=True)
    proc = subprocess.run(
        [sys.executable, "-m", "skillstack", "deploy", "--duration", "40", "--goal", "0.5", "-0.1", "0.25", "--log-dir", str(tmp_path)],
        env=env, capture_output=True, text=True, timeout=80,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "finished (done)" in proc.stdout and "dist=" in proc.stdout
    assert "skill_executor" in (tmp_path / "skill_executor.log").read_text()


def test_skillstack_deploy_rejects_bad_params(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("skill_executor:\n  ros__parameters:\n    contrl_rate: 100\n")
    proc = subprocess.run(
        [sys.executable, "-m", "skillstack", "deploy", "--params", str(bad)],
        env=child_env(), capture_output=True, text=True, timeout=60,
    )
    assert proc.returncode == 2 and "unknown parameter 'contrl_rate'" in proc.stderr


# --------------------------------------------------------------------------- replay and benchmark


def test_replay_to_ros_streams_a_demo_through_the_safety_layer(bridge: Bridge, tmp_path: Path) -> None:
    from demos import DemoFile, joint_trajectory, record_demos

    demo = tmp_path / "reach.hdf5"
    record_demos("skillstack/PandaReach-v0", "expert", episodes=1, out=demo, progress=False, durable=False)
    with DemoFile(demo) as f:
        recorded = joint_trajectory(f.episode(0, images=False)).positions
    bridge.start("sim_robot")
    assert bridge.probe.wait_for(lambda: len(bridge.states) > 0, 20)
    proc = subprocess.run(
        [sys.executable, "-m", "skillstack", "replay", str(demo), "--to-ros"],
        env=child_env(domain_id=bridge.domain, localhost_only=True), capture_output=True, text=True, timeout=80,
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert "demo_0: 51 steps" in proc.stdout and "ABORTED" not in proc.stdout
    sent = int(proc.stdout.split(", sent ")[1].split(",")[0])
    assert sent >= len(recorded) - 1  # every recorded configuration went out (this probe may see fewer:
    # DDS discovery can match it to the replay process late; what it saw is limit-checked)
    last = bridge.states.last()
    q = np.array([dict(zip(last.name, last.position))[n] for n in PANDA_JOINTS])
    np.testing.assert_allclose(q[:7], recorded[-1][:7], atol=0.02)


def test_replay_aborts_without_a_robot(domain: int, tmp_path: Path) -> None:
    from demos import record_demos

    from ros_bridge.replay import stream_demo

    demo = tmp_path / "reach.hdf5"
    record_demos("skillstack/PandaReach-v0", "expert", episodes=1, out=demo, progress=False, durable=False)
    lines: list[str] = []
    report = stream_demo(demo, domain_id=domain, localhost_only=True, state_timeout=1.0, echo=lines.append)
    assert int(report) == 1 and not report.ok
    assert "no fresh /joint_states" in report.episodes[0].aborted and report.episodes[0].sent == 0


def test_replay_pauses_on_stale_states_and_resumes_without_skipping(domain: int, tmp_path: Path) -> None:
    """The robot's states stop for 0.5 s mid-replay (a driver hiccup, a busy machine): the
    watchdog suppresses the stream, and the replay resumes at the configuration it was about to
    send, so every recorded configuration goes out, in order, exactly once."""
    from demos import DemoFile, joint_trajectory, record_demos

    from ros_bridge.replay import stream_demo

    demo = tmp_path / "reach.hdf5"
    record_demos("skillstack/PandaReach-v0", "expert", episodes=1, out=demo, progress=False, durable=False)
    with DemoFile(demo) as f:
        recorded = joint_trajectory(f.episode(0, images=False)).positions
    silent = threading.Event()
    with Probe(domain_id=domain, name="fake_robot", localhost_only=True) as robot:
        # The robot: its joint states echo the last command, starting at the demo's first configuration.
        q = {"now": np.array(recorded[0], dtype=np.float64)}
        received: list[np.ndarray] = []

        def on_command(msg: Float64MultiArray) -> None:
            received.append(np.array(msg.data))
            q["now"] = np.array(msg.data)
            if len(received) == 20:
                silent.set()
                threading.Timer(0.5, silent.clear).start()

        robot.record("/arm_controller/commands", Float64MultiArray, callback=on_command)
        states = robot.publisher("/joint_states", JointState, STATE_QOS)
        stop = threading.Event()

        def publish() -> None:
            while not stop.is_set():
                if not silent.is_set():
                    msg = JointState(name=list(PANDA_JOINTS), position=[float(v) for v in q["now"]])
                    to_stamp(msg.header.stamp, robot.now())
                    states.publish(msg)
                time.sleep(0.005)

        thread = threading.Thread(target=publish, daemon=True)
        thread.start()
        try:
            report = stream_demo(demo, domain_id=domain, localhost_only=True, state_timeout=5.0, echo=lambda _: None)
        finally:
            stop.set()
            thread.join(5)
        ep = report.episodes[0]
        assert report.ok and not ep.aborted, ep
        assert ep.suppressed > 0  # the watchdog did hold the stream
        assert ep.sent == len(recorded) - 1 and ep.held == 0, ep  # already at the start: no settle commands
        assert robot.wait_for(lambda: len(received) == len(recorded) - 1, 5), len(received)
        np.testing.assert_allclose(np.array(received), np.array(recorded[1:]), atol=1e-9)  # in order, none skipped


def test_bench_ros_quick_run(domain: int) -> None:
    import argparse

    from bench import ros as bench_ros

    parser = argparse.ArgumentParser()
    bench_ros.add_arguments(parser)
    result = bench_ros.run(parser.parse_args(["--seconds", "2", "--domain-id", str(domain)]))
    # What the benchmark reports, not how fast this machine is (the figures are `skillstack bench ros`'s job).
    assert result["commands"] > 0 and result["matched_timing"]
    assert result["missed_deadlines"]["short_of_expected"] == max(0, result["expected_commands"] - result["commands"])
    for key in ("policy_tick", "state_to_command", "baseline_relay_state_to_command"):
        s = result[key]
        assert s["n"] > 0 and 0 < s["p50_ms"] <= s["p99_ms"] <= s["max_ms"] < float("inf"), (key, s)
    assert result["policy_tick"]["n"] == result["state_to_command"]["n"] == result["commands"]
    assert set(result["missed_deadlines"]) == {"executor", "short_of_expected", "gaps_over_2_periods", "late_ticks"}
    assert result["goal_met"] == (result["state_to_command"]["p99_ms"] <= 5.0 and result["missed_deadlines"]["executor"] == 0
                                  and result["missed_deadlines"]["short_of_expected"] <= 1)


def test_probe_destroys_recorders_and_action_servers_while_traffic_flows(domain: int) -> None:
    """Probe.destroy runs on the spin thread: recorders and action servers torn down while
    messages and goals arrive (the benchmark's teardown) leave the process alive, stop the
    recording, and a second destroy of the same recorder is a no-op."""
    from rclpy.action import ActionClient

    from ros_bridge.interfaces import action_types

    follow, _grip = action_types()
    with Probe(domain_id=domain, name="destroy_probe", executor="single") as probe, Probe(domain_id=domain, name="destroy_sender") as sender:
        pub = sender.publisher("/destroy_probe/data", Float64MultiArray)
        client = ActionClient(sender.node, follow, "/destroy_probe/follow")
        stop = threading.Event()

        def traffic() -> None:
            while not stop.is_set():
                pub.publish(Float64MultiArray(data=[1.0]))
                if client.server_is_ready():
                    client.send_goal_async(follow.Goal())
                time.sleep(0.002)

        thread = threading.Thread(target=traffic, daemon=True)
        thread.start()
        try:
            for _ in range(15):
                rec = probe.record("/destroy_probe/data", Float64MultiArray)
                goals, server = probe.record_action_goals("/destroy_probe/follow")
                assert probe.wait_for(lambda: len(rec) > 3 and len(goals) > 0, 10)
                probe.destroy(rec, server)
                probe.destroy(rec)  # already gone: nothing to do
                assert rec.subscription is None
                n = len(rec)
                time.sleep(0.05)
                assert len(rec) == n  # nothing recorded once destroyed
        finally:
            stop.set()
            thread.join(5)
        assert probe._thread.is_alive()


def test_library_skill_with_an_object_runs_through_the_bridge(bridge: Bridge, tmp_path: Path) -> None:
    """A real (random-weight) rl skill package for PandaPush: the executor takes the task
    from its manifest, observes the cube through its PoseStamped topic, and every command
    its untrained network causes stays within the limits."""
    from skill_library.testing import make_random_skill

    from ros_bridge.task import resolve_task

    pkg = tmp_path / "random_push"
    make_random_skill(pkg, name="random_push", env_id="skillstack/PandaPush-v0")
    assert resolve_task(str(pkg))[0] == "skillstack/PandaPush-v0"
    bridge.start("sim_robot", objects=["red"], object_positions=[0.5, 0.05, 0.02])
    bridge.start_executor(2, skill=str(pkg), goal=[0.6, -0.1, 0.02], stop_on_success=False)
    bridge.wait_commands(40, 30)
    st = bridge.status.last()
    assert st["skill"] == "random_push@0.1.0" and st["task"] == "skillstack/PandaPush-v0"
    assert st["executor_fault"] == "" and st["state"] in ("running", "stale")


def test_long_horizon_task_with_the_hierarchical_controller(bridge: Bridge, tmp_path: Path) -> None:
    """stack-two planned over the starter skills, executed on sim_robot through ROS 2."""
    from geometry_msgs.msg import PoseStamped
    from skill_library import SkillLibrary, build_starter_skills

    lib = tmp_path / "library"
    build_starter_skills(SkillLibrary(lib))
    red = bridge.probe.record("/objects/red/pose", PoseStamped, STATE_QOS)
    blue = bridge.probe.record("/objects/blue/pose", PoseStamped, STATE_QOS)
    bridge.start("sim_robot", objects=["red", "blue"], object_positions=[0.5, 0.12, 0.02, 0.5, -0.1, 0.02])
    bridge.start_executor(2, plan_task="stack-two", library_root=str(lib))
    st = bridge.wait_state("done", 60)
    assert st["skill"].startswith("plan:stack-two") and st["plan"]["decisions"], st
    # what came of each decision, in the status: the skill, its outcome and why (a plan that fails says why)
    outcomes = st["plan"]["outcomes"]
    assert [o["skill"] for o in outcomes] == st["plan"]["decisions"], st
    assert all(o["outcome"] in ("success", "failure", "pending") and isinstance(o["reason"], str) for o in outcomes), st
    assert any(o["outcome"] == "success" and o["reason"] == "effects reached" and o["steps"] > 0 for o in outcomes), st
    assert st["goal_reached"] is True, st  # the executor says the goal held when it ended
    time.sleep(0.3)
    r, b = red.last().pose.position, blue.last().pose.position
    assert abs(r.x - b.x) < 0.02 and abs(r.y - b.y) < 0.02 and 0.03 < r.z - b.z < 0.05  # red sits on blue


def test_sim_robot_latency_noise_and_drops(bridge: Bridge) -> None:
    """sim_robot's degraded-robot options: states dropped and noisy, commands applied late."""
    bridge.start("sim_robot", latency_s=0.4, noise_std=0.01, drop_rate=0.5, seed=3)
    assert bridge.probe.wait_for(lambda: len(bridge.states) > 20, 20)
    bridge.states.clear()
    assert bridge.probe.wait_for(lambda: len(bridge.states) >= 60, 30)
    items = bridge.states.snapshot()
    # About half are dropped: sim_robot's timer skips missed periods, so the stamps' span
    # bounds how many it published (200 Hz), whatever rate this machine let it reach.
    stamps = np.array([m.header.stamp.sec + m.header.stamp.nanosec * 1e-9 for _, m in items])
    published_at_most = (stamps[-1] - stamps[0]) * 200.0 + 2
    assert len(items) <= 0.8 * published_at_most, (len(items), published_at_most)
    q = np.array([m.position for _, m in items])
    assert 0.005 < float(np.std(q[:, 0])) < 0.02  # the arm is still: the spread is the injected noise
    pub = bridge.probe.publisher("/arm_controller/commands", Float64MultiArray)
    assert bridge.probe.wait_for_subscribers(pub, 1, 10)
    target = HOME.copy()
    target[0] += 0.2
    t_sent = time.time()
    for _ in range(10):  # some are dropped on purpose
        pub.publish(Float64MultiArray(data=target.tolist()))
        time.sleep(0.01)
    moved_at = None
    while time.time() - t_sent < 15.0 and moved_at is None:  # a safety net; the bound below is a lower one
        last = bridge.states.last()
        if last is not None and last.position[0] > HOME[0] + 0.1:
            moved_at = time.time()
        time.sleep(0.005)
    assert moved_at is not None and moved_at - t_sent > 0.35  # the 0.4 s command latency
