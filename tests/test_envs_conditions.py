"""Named perturbation conditions (envs/conditions.py): data, exact latency, noise, drops, determinism."""

from __future__ import annotations

import numpy as np
import pytest

import envs
from envs.conditions import Condition, ConditionWrapper, load_conditions, make_condition_env, parse_conditions
from envs.observation import refresh_kinematics

PP = "skillstack/PandaPickPlace-v0"


def _actions(n: int, seed: int = 1) -> np.ndarray:
    return np.random.default_rng(seed).uniform(-1, 1, size=(n, 4))


def test_shipped_conditions_are_the_issue_s():
    c = load_conditions()
    assert {"nominal", "dynamics", "latency40", "latency80", "obs_noise5mm", "obs_noise1cm", "drops", "realistic"} <= set(c)
    assert c["nominal"].is_nominal
    assert c["latency40"].action_latency_steps == 1 and c["latency80"].action_latency_steps == 2
    assert c["obs_noise5mm"].object_noise_std == 0.005 and c["obs_noise1cm"].object_noise_std == 0.01
    assert c["drops"].drop_probability == 0.1
    r = c["realistic"]
    assert (r.dynamics, r.action_latency_steps, r.object_noise_std, r.drop_probability) == (c["dynamics"].dynamics, 2, 0.01, 0.1)
    assert r.dynamics.friction_scale == (0.7, 1.3) and r.dynamics.observation_noise_std == 0.0


def test_user_conditions_from_yaml_and_clear_errors(tmp_path):
    f = tmp_path / "mine.yaml"
    f.write_text("conditions:\n  slow_heavy:\n    action_latency_steps: 3\n    dynamics: {object_mass_scale: [1.5, 2.0]}\n")
    (slow,) = parse_conditions("slow_heavy", f)
    assert slow.action_latency_steps == 3 and slow.dynamics.object_mass_scale == (1.5, 2.0)
    with pytest.raises(ValueError, match="unknown condition.*valid"):
        parse_conditions("nominal,latency999")
    f.write_text("conditions:\n  nominal: {action_latency_steps: 1}\n")
    with pytest.raises(ValueError, match="redefines shipped"):
        load_conditions(f)
    with pytest.raises(ValueError, match="unknown field"):
        Condition.from_dict("x", {"latency": 2})
    with pytest.raises(ValueError, match="action_latency_steps"):
        Condition.from_dict("x", {"action_latency_steps": -1})
    with pytest.raises(ValueError, match="noise and latency are the condition"):
        Condition.from_dict("x", {"dynamics": {"observation_noise_std": 0.01}})


def _arm_targets(u) -> np.ndarray:
    return u.data.ctrl[u.robot.arm_actuators].copy()


@pytest.mark.parametrize("k", [1, 2, 3])
def test_latency_of_k_periods_applies_the_joint_targets_computed_now_exactly_k_ticks_later(k):
    """A robot's latency: the IK runs when the command is sent, on the joints measured then; the
    targets reach the arm k ticks later, the arm keeping its targets meanwhile."""
    env = make_condition_env(PP, Condition("lat", action_latency_steps=k), ik_base="measured")
    ref = envs.make(PP, ik_base="measured")
    u, r = env.unwrapped, ref.unwrapped
    env.reset(seed=3)
    ref.reset(seed=3)
    start = _arm_targets(u)
    sent, applied = [], []
    for a in _actions(12):
        r.set_state(u.get_state())  # the joints measured when this command is sent
        sent.append(r.command(a)[: u.robot.n_arm])
        env.step(a)
        applied.append(_arm_targets(u))
    for t in range(12):
        np.testing.assert_array_equal(applied[t], start if t < k else sent[t - k])
    assert not np.array_equal(sent[0], start)  # the commands do move the arm


def _x_per_tick(cond: str, ik_base: str, ticks: int = 12) -> float:
    """The TCP's speed along +x over the last 4 of `ticks` ticks of one steady +x command."""
    env = make_condition_env("skillstack/PandaReach-v0", cond, ik_base=ik_base)
    env.reset(seed=0)
    u, xs = env.unwrapped, []
    for _ in range(ticks):
        env.step(np.array([0.5, 0.0, 0.0, 1.0]))
        xs.append(float(u.tcp_pos()[0]))
    return (xs[-1] - xs[-5]) / 4


def test_under_latency_the_in_flight_base_keeps_the_arm_s_speed_and_the_measured_one_stalls():
    """Stepping from the measured joints, each command re-sends where the arm was k ticks ago plus one
    step; stepping from where the arm will be when the command lands (envs.in_flight), the steps add up."""
    nominal = _x_per_tick("nominal", "measured")
    assert nominal > 0.01
    assert _x_per_tick("latency80", "in_flight") > 0.8 * nominal
    assert _x_per_tick("latency80", "measured") < 0.6 * nominal
    assert _x_per_tick("nominal", "in_flight") == nominal  # no latency: nothing in flight, the same targets


def test_after_a_lost_state_message_the_command_is_computed_from_the_joints_last_received():
    env = make_condition_env(PP, Condition("half_lost", drop_probability=0.5), ik_base="measured")
    ref = envs.make(PP, ik_base="measured")
    env.reset(seed=0)  # the first observation is never dropped
    u, r = env.unwrapped, ref.unwrapped
    received = u.data.qpos[u.robot.arm_qpos_ix].copy()
    stale_commands = 0
    for a in _actions(30, 4):
        lost = u.measured_arm is not None
        if lost:  # the command must be the one the IK makes from the joints last received
            np.testing.assert_array_equal(u.measured_arm, received)
            r.set_state(u.get_state())
            r.data.qpos[r.robot.arm_qpos_ix] = received
            refresh_kinematics(r.model, r.data)
            expect = r.command(a)[: r.robot.n_arm]
        dropped = env.channel.dropped
        env.step(a)
        if lost:
            stale_commands += 1
            np.testing.assert_allclose(_arm_targets(u), expect, atol=1e-12)
        if env.channel.dropped == dropped:  # a fresh message: these joints are the controller's now
            received = u.data.qpos[u.robot.arm_qpos_ix].copy()
            assert u.measured_arm is None
    assert stale_commands >= 5


def test_condition_is_deterministic_under_a_seed_and_restored_on_reset():
    def episode(env, seed):
        obs, _ = env.reset(seed=seed)
        out = [obs["observation"]]
        for a in _actions(15):
            obs, *_ = env.step(a)
            out.append(obs["observation"])
        return np.array(out), env.unwrapped.randomization_draw

    a = make_condition_env(PP, "realistic")
    b = make_condition_env(PP, "realistic")
    first, draw = episode(a, 7)
    episode(a, 8)  # leaves actions queued, a stale observation and other dynamics behind
    again, draw_again = episode(a, 7)
    fresh, _ = episode(b, 7)
    np.testing.assert_array_equal(first, again)
    np.testing.assert_array_equal(first, fresh)
    assert draw == draw_again
    other, _ = episode(b, 9)
    assert not np.array_equal(first, other)
    # Reset empties the latency queue: the first two steps after a reset keep the arm's targets.
    env = make_condition_env(PP, "realistic")
    env.reset(seed=1)
    for a in _actions(5):
        env.step(a)
    env.reset(seed=1)
    u = env.unwrapped
    start = _arm_targets(u)
    env.step(_actions(1, 5)[0])
    np.testing.assert_array_equal(_arm_targets(u), start)


def test_object_noise_moves_observed_positions_consistently_and_leaves_truth_alone():
    env = make_condition_env(PP, "obs_noise1cm")
    u = env.unwrapped
    lay = u.observation_layout
    errs = []
    env.reset(seed=0)
    for a in _actions(200):
        obs, _, _, _, info = env.step(a * 0.1)
        true = u.object_pos("red")
        seen = obs["observation"][lay["red_pos"]]
        errs.append(seen - true)
        np.testing.assert_allclose(obs["observation"][lay["red_rel_pos"]], seen - u.tcp_pos(), atol=1e-12)
        np.testing.assert_array_equal(obs["achieved_goal"], seen)  # perceived the same way
        np.testing.assert_array_equal(obs["observation"][lay["tcp_pos"]], u.tcp_pos())  # robot state untouched
        assert info["is_success"] == float(u.is_success())  # success is judged on the true state
    std = float(np.std(errs))
    assert 0.008 < std < 0.012


def test_drops_repeat_the_previous_observation_about_one_tick_in_ten():
    env = make_condition_env(PP, "drops")
    obs, _ = env.reset(seed=0)
    repeats = 0
    for a in _actions(600, 2):
        new, *_ = env.step(a * 0.3)
        if np.array_equal(new["observation"], obs["observation"]):
            repeats += 1
            assert not np.array_equal(new["observation"], env.unwrapped.observe()["observation"])
        obs = new
    assert repeats == env.channel.dropped
    assert 30 <= repeats <= 90  # 10 % of 600, binomial spread


def test_dynamics_need_the_env_made_for_them_and_bad_actions_are_refused_at_once():
    cond = load_conditions()["dynamics"]
    with pytest.raises(ValueError, match="env_kwargs"):
        ConditionWrapper(envs.make(PP), cond)
    env = make_condition_env(PP, "latency80")
    env.reset(seed=0)
    with pytest.raises(ValueError, match="NaN"):
        env.step(np.array([np.nan, 0, 0, 0]))
