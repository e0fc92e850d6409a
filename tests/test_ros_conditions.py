"""sim_robot under a named perturbation condition (issue 24), over real rclpy/Fast DDS on loopback.

sim_robot runs in this process (so a test reads the targets it applies and the true cube poses)
on a fresh ROS_DOMAIN_ID with localhost-only discovery; commands come from a probe node and the
published states are recorded by it, through DDS. Mirrors tests/test_envs_conditions.py: a latency
of k periods delays commands by exactly k control ticks, conditions reproduce under a seed,
object noise has the configured scale, drops drop about the configured fraction, dynamics are
the env's draw for the same seed.
"""

from __future__ import annotations

import itertools
import os
import random
import time
from pathlib import Path

import numpy as np
import pytest

import envs
from ros_bridge._env import ros_available
from ros_bridge.sim_conditions import resolve_condition

pytestmark = [
    pytest.mark.skipif(not ros_available(), reason="ROS 2 (rclpy) not installed: pip install 'skillstack[ros]'"),
    pytest.mark.timeout(60),
]

if ros_available():
    from geometry_msgs.msg import PoseStamped
    from sensor_msgs.msg import JointState
    from std_msgs.msg import Float64MultiArray

    from ros_bridge._ros import STATE_QOS
    from ros_bridge.probe import Probe
    from ros_bridge.sim_robot import SimRobot

_DOMAINS = itertools.count(random.Random(os.getpid() ^ int(time.time() * 3)).randrange(100))
OBJECTS = ["red", "blue"]
POSITIONS = [0.5, 0.12, 0.02, 0.5, -0.1, 0.02]


class InProcessSim:
    """sim_robot in this process on the probe's context, and the probe publishing commands to it."""

    def __init__(self, **params):
        from rclpy.parameter import Parameter

        self.probe = Probe(domain_id=100 + next(_DOMAINS) % 100, name="test_probe")
        overrides = [Parameter(k, value=v) for k, v in {"objects": OBJECTS, "object_positions": POSITIONS, **params}.items()]
        self.sim = SimRobot(context=self.probe.context, parameter_overrides=overrides)
        self.probe.executor.add_node(self.sim)
        self.states = self.probe.record("/joint_states", JointState, STATE_QOS)
        self.red = self.probe.record("/objects/red/pose", PoseStamped, STATE_QOS)
        self.pub = self.probe.publisher("/arm_controller/commands", Float64MultiArray)
        assert self.probe.wait_for_subscribers(self.pub, 1, 10)
        self.act = np.concatenate((self.sim.robot.arm_actuators, self.sim.robot.finger_actuators))
        # Handshake: hold commands until one is taken. Our side seeing the subscriber does not mean
        # sim_robot's side has matched our publisher yet; a loaded machine can take seconds.
        hold, ticks, deadline = self.sim.data.ctrl[self.act].copy(), self.sim.conditions.ticks, time.monotonic() + 30
        while True:
            self.pub.publish(Float64MultiArray(data=[float(v) for v in hold]))
            if self.probe.wait_for(lambda: self.sim.conditions.ticks > ticks, 2.0, poll=0.001):
                break
            assert time.monotonic() < deadline, "sim_robot never took a command"
        time.sleep(0.2)  # a retried hold still in flight lands now, not in the test
        self.sim.reset_scene(seed=0)  # the condition's queues start empty

    def send(self, q: np.ndarray, timeout: float = 5.0) -> None:
        """Publish one arm command and wait until sim_robot has taken it (one control tick)."""
        ticks = self.sim.conditions.ticks
        self.pub.publish(Float64MultiArray(data=[float(v) for v in q]))
        assert self.probe.wait_for(lambda: self.sim.conditions.ticks > ticks, timeout, poll=0.001), "command never arrived"
        with self.sim._physics:  # sim_robot handles a command under this lock: once we hold it, the tick is complete
            pass

    def close(self) -> None:
        self.sim.close()
        self.probe._stop.set()  # stop spinning before the node goes
        self.probe._thread.join(timeout=2.0)
        self.sim.destroy_node()
        self.probe.close()


@pytest.fixture
def sims():
    made: list[InProcessSim] = []

    def make(**params) -> InProcessSim:
        made.append(InProcessSim(**params))
        return made[-1]

    yield make
    for s in made:
        s.close()


def _targets(sim: InProcessSim, n: int, seed: int = 1) -> np.ndarray:
    """n distinct joint-target commands near home (9 values: arm then fingers)."""
    home = sim.sim.data.ctrl[sim.act].copy()
    return home + np.random.default_rng(seed).uniform(-0.05, 0.05, size=(n, home.size)) * np.r_[np.ones(7), 0.0, 0.0]


@pytest.mark.parametrize("name,k", [("latency40", 1), ("latency80", 2)])
def test_latency_of_k_periods_delays_commands_by_exactly_k_ticks(sims, name: str, k: int) -> None:
    """As in the envs (test_envs_conditions): the command sent at tick t is applied at tick t + k;
    the arm holds its targets while the queue fills."""
    s = sims(condition=name)
    hold = s.sim.data.ctrl[s.act].copy()
    sent = _targets(s, 8)
    for t, q in enumerate(sent):
        s.send(q)
        expect = hold if t < k else sent[t - k]
        np.testing.assert_allclose(s.sim.data.ctrl[s.act], expect, atol=1e-12, err_msg=f"tick {t}")
    s.sim.reset_scene(seed=0)  # a reset empties the queue: the next k commands hold again
    hold = s.sim.data.ctrl[s.act].copy()
    s.send(sent[0])
    np.testing.assert_allclose(s.sim.data.ctrl[s.act], hold, atol=1e-12)


def _tick_record(s: InProcessSim, seed: int, n: int, wait_s: float = 0.0) -> tuple[np.ndarray, list[bool], dict]:
    s.sim.reset_scene(seed=seed)
    time.sleep(wait_s)  # an executor slow to send its first command
    noise, stale = [], []
    for q in _targets(s, n):
        s.send(q)
        noise.append(s.sim.conditions.noise.copy())
        stale.append(s.sim.conditions.stale)
    return np.array(noise), stale, dict(s.sim.conditions.draw)


def test_conditions_are_deterministic_under_a_seed_and_dynamics_are_the_envs(sims) -> None:
    """realistic: the same seed gives the same noise, drops and dynamics, in another node too;
    another seed does not; the dynamics are exactly what env.reset(seed) draws."""
    a, b = sims(condition="realistic"), sims(condition="realistic")
    first = _tick_record(a, 7, 25)
    _tick_record(a, 8, 5)
    again, fresh, other = _tick_record(a, 7, 25), _tick_record(b, 7, 25), _tick_record(b, 9, 25)
    for rec in (again, fresh):
        np.testing.assert_allclose(rec[0], first[0], rtol=0, atol=1e-12)  # (true + noise) - true: rounding only
        assert rec[1] == first[1] and rec[2] == first[2]
    assert not np.array_equal(other[0], first[0]) and other[2] != first[2]
    env = envs.make("skillstack/PandaStackTwo-v0", **resolve_condition("realistic").env_kwargs())
    env.reset(seed=7)
    assert env.unwrapped.randomization_draw == first[2]
    cube = a.sim.model.geom("cube_red")
    assert cube.size[0] == pytest.approx(env.unwrapped.model.geom("cube_red").size[0])


def test_object_noise_on_published_poses_has_the_configured_scale(sims) -> None:
    """obs_noise1cm: the published red pose minus the true one has a 1 cm spread per coordinate,
    one fresh draw per tick; joint states stay noise-free."""
    s = sims(condition="obs_noise1cm")
    offsets = []
    hold = s.sim.data.ctrl[s.act].copy()
    for q in [hold] * 60:  # hold commands: the cube rests
        s.send(q)
        time.sleep(0.01)
        msg = s.red.last()
        p = msg.pose.position
        offsets.append(np.array([p.x, p.y, p.z]) - s.sim.data.qpos[s.sim._objects[0][1] : s.sim._objects[0][1] + 3])
    offsets = np.unique(np.round(np.array(offsets), 9), axis=0)
    assert len(offsets) >= 40  # fresh noise tick after tick
    assert 0.007 < float(np.std(offsets)) < 0.013, np.std(offsets)
    assert s.sim.conditions.stale is False and s.sim.conditions.channel.dropped == 0


def test_drops_repeat_the_last_state_about_the_configured_fraction(sims, tmp_path: Path) -> None:
    """A user condition from YAML (30 % drops): about 30 % of ticks re-publish the previous state
    (same stamp and values), seen by a subscriber through DDS."""
    f = tmp_path / "mine.yaml"
    f.write_text("conditions:\n  lossy:\n    drop_probability: 0.3\n")
    s = sims(condition=f"{f}:lossy")
    home = s.sim.data.ctrl[s.act].copy()
    s.states.clear()
    for _ in range(100):
        s.send(home)
        time.sleep(0.02)
    dropped = s.sim.conditions.channel.dropped
    assert 15 <= dropped <= 45, dropped  # 30 % of 100, binomial spread
    stamps = [m.header.stamp.sec + m.header.stamp.nanosec * 1e-9 for _, m in s.states.snapshot()]
    repeated = sum(1 for x, y in zip(stamps, stamps[1:]) if x == y)
    assert repeated > 0.1 * len(stamps), (repeated, len(stamps))  # whole periods of re-published states
    assert repeated < 0.6 * len(stamps), (repeated, len(stamps))


def test_a_seed_draws_the_same_noise_however_late_the_first_command_comes(sims) -> None:
    """No state-only tick before an episode's first command: waiting 0.3 s (7 periods) after the
    reset gives the same noise and drops, tick for tick, as sending at once."""
    s = sims(condition="realistic")
    at_once, late = _tick_record(s, 7, 10), _tick_record(s, 7, 10, wait_s=0.3)
    np.testing.assert_allclose(late[0], at_once[0], rtol=0, atol=1e-12)
    assert late[1] == at_once[1]


def test_bad_condition_names_are_refused_naming_the_valid_ones(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unknown condition.*realistic"):
        resolve_condition("latency999")
    f = tmp_path / "two.yaml"
    f.write_text("conditions:\n  a: {drop_probability: 0.2}\n  b: {action_latency_steps: 3}\n")
    with pytest.raises(ValueError, match="name one"):
        resolve_condition(str(f))
    assert resolve_condition(f"{f}:b").action_latency_steps == 3
    from ros_bridge.params import SimRobotParams

    with pytest.raises(ValueError, match="unknown condition"):
        SimRobotParams(condition="nope")


def test_deploy_takes_a_condition_for_sim_only() -> None:
    from ros_bridge.deploy import deploy

    with pytest.raises(ValueError, match="applied by sim_robot"):
        deploy(robot="real", condition="latency80", echo=lambda _m: None)
    with pytest.raises(ValueError, match="unknown condition"):
        deploy(robot="sim", condition="latency999", echo=lambda _m: None)


def test_bench_robustness_executor_settings_are_checked_before_any_episode() -> None:
    """`--executor-set KEY=VALUE`: typed as the node types them, and an unknown name or a value the
    node would refuse is refused by name up front (not after the env half of a long run)."""
    from bench.robustness import executor_overrides

    assert executor_overrides(["ik_base=in_flight", "ik_base_max_lead=0.1", "autostart=true"]) == {
        "ik_base": "in_flight", "ik_base_max_lead": 0.1, "autostart": True}
    assert executor_overrides([]) == {}
    with pytest.raises(ValueError, match="unknown skill_executor parameter.*ik_bsae"):
        executor_overrides(["ik_bsae=in_flight"])
    with pytest.raises(ValueError, match="ik_base must be"):
        executor_overrides(["ik_base=commanded"])
    with pytest.raises(ValueError, match="not KEY=VALUE"):
        executor_overrides(["ik_base"])


@pytest.mark.slow
@pytest.mark.timeout(240)
def test_bench_robustness_runs_both_paths_on_the_same_seeds(tmp_path: Path) -> None:
    """`skillstack bench robustness` on one skill: every ROS episode runs the env's full episode
    length in control ticks through skill_executor, and the Reach expert reaches under 80 ms on both paths."""
    import argparse

    from bench.robustness import run

    args = argparse.Namespace(skills="reach_goal", conditions="nominal,latency80", conditions_file=None, episodes=2,
                              seed=0, library=None, domain_id=100 + next(_DOMAINS) % 100, executor_set=[])
    out = run(args)
    assert [(r["item"], r["condition"]) for r in out["rows"]] == [("reach_goal", "nominal"), ("reach_goal", "latency80")]
    for r in out["rows"]:
        assert [e["ticks"] for e in r["ros_per_episode"]] == [50, 50] and all(e["reason"] == "ticks" for e in r["ros_per_episode"])
        assert r["env_successes"] == r["ros_successes"] == 2, r
    assert "| reach_goal | ROS - env | +0 | +0 |" in out["table"]
