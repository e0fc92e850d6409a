"""The IK base under latency (`ik_base`, envs.in_flight): a step taken from where the arm will be when it lands."""

from __future__ import annotations

import numpy as np
import pytest

from envs.in_flight import InFlightCommands
from ros_bridge.params import ExecutorParams
from ros_bridge.state import JointReading
from ros_bridge.task import TaskModel


@pytest.fixture(scope="module")
def task() -> TaskModel:
    return TaskModel("skillstack/PandaReach-v0")


def _load(task: TaskModel, q: np.ndarray) -> None:
    task.load_state(JointReading(q, np.zeros_like(q), 0.0, 0.0), {})


def test_a_step_from_the_commanded_pose_lands_where_the_commands_add_up(task: TaskModel) -> None:
    n = len(task.robot.arm_qpos)
    measured = task.data.qpos[task._qadr].copy()
    _load(task, measured)
    step = np.zeros(task.action_dim)
    step[0] = 1.0  # +x at full speed
    first = task.targets_for_action(step)  # from the measured pose
    again = task.targets_for_action(step)  # the same measured pose: the same target (a stale re-send)
    np.testing.assert_array_equal(first, again)
    chained = task.targets_for_action(step, base=np.concatenate((first[:n], measured[n:])))
    tcp0 = task.tcp_pos()
    np.testing.assert_array_equal(task.data.qpos[task._qadr], measured)  # the loaded (measured) state is restored
    _load(task, np.concatenate((first[:n], measured[n:])))
    tcp1 = task.tcp_pos()
    _load(task, np.concatenate((chained[:n], measured[n:])))
    tcp2 = task.tcp_pos()
    # Each command moves the TCP one step further along +x: the second from where the first was sent.
    assert tcp1[0] - tcp0[0] > 0.005 and tcp2[0] - tcp1[0] > 0.005
    np.testing.assert_allclose(tcp2[0] - tcp1[0], tcp1[0] - tcp0[0], rtol=0.2)


def test_bad_ik_base_settings_are_refused_by_name() -> None:
    with pytest.raises(ValueError, match="ik_base must be"):
        ExecutorParams(ik_base="commanded")
    with pytest.raises(ValueError, match="ik_base_max_lead"):
        ExecutorParams(ik_base_max_lead=0.0)
    with pytest.raises(ValueError, match="ik_base_response"):
        ExecutorParams(ik_base_response=1.5)
    with pytest.raises(ValueError, match="response"):
        InFlightCommands(response=0.0)


def _arm_run(delay: int, ticks: int = 40, response: float = 0.7, hold_after: int | None = None,
             fixed: float | None = None) -> InFlightCommands:
    """A 2-joint arm following its targets `delay` ticks late, each period `response` of the way,
    driven by a ramp of commands; the executor's records fed as skill_executor feeds them."""
    f = InFlightCommands(response=fixed)
    q = np.zeros(2)
    sent: list[np.ndarray] = []
    for t in range(ticks):
        f.observe(q)
        c = np.array([0.01, -0.02]) * (min(t, hold_after) if hold_after is not None else t + 1)
        f.sent(c)
        sent.append(c)
        active = sent[t - delay] if t - delay >= 0 else np.zeros(2)
        q = q + response * (active - q)
    return f


def _rollout(q: np.ndarray, commands: list[np.ndarray], response: float) -> np.ndarray:
    q = q.copy()
    for c in commands:
        q += response * (c - q)
    return q


@pytest.mark.parametrize("delay, lag", [(0, 1), (1, 2), (2, 3), (3, 4)])
def test_the_lag_and_the_response_are_identified_and_the_base_is_where_the_arm_will_be(delay: int, lag: int) -> None:
    f = _arm_run(delay)
    assert f.lag == lag
    q = f._sent[-1] - [0.02, -0.04]  # the arm a little behind its last command
    inc = f.in_flight(q)
    if delay == 0:
        assert inc is None  # a position-controlled arm without latency: the measured joints are the base
        return
    assert f.response == pytest.approx(0.7, abs=0.02)  # the arm's share of the way per period
    # The arm follows the `delay` commands still ahead of the next one before that one lands.
    np.testing.assert_allclose(q + inc, _rollout(q, list(f._sent)[-delay:], f.response))


def test_the_lag_is_known_from_the_first_motion_before_the_fit_has_a_window() -> None:
    f = _arm_run(2, ticks=5)  # the arm first moves 3 ticks after the first command
    assert f.lag == 3


def test_a_still_arm_keeps_the_lag_and_a_reset_or_a_large_lead_drops_the_in_flight_part() -> None:
    f = _arm_run(2, ticks=80, hold_after=40)  # the arm comes to rest at the last command, then stays
    last = f._sent[-1].copy()
    assert f.lag == 3 and np.allclose(f.in_flight(last), 0)  # at rest on the last command: nothing left to follow
    f.sent(last + [0.0, 0.3])  # a jump past max_lead (0.25 rad): not stepped from
    assert f.in_flight(last) is None
    f.reset()
    assert f.lag == 1 and f.in_flight(last) is None


def test_a_fixed_response_of_one_steps_from_the_last_command_sent() -> None:
    """`ik_base_response` 1: the arm is taken to reach each target within the period (the base is the
    last command); 0 (the default) identifies it."""
    full = _arm_run(2, fixed=1.0)
    q = full._sent[-1] - [0.02, -0.04]
    assert full.response == 1.0
    np.testing.assert_allclose(full.in_flight(q), [0.02, -0.04])
