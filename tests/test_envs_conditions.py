"""Named perturbation conditions (envs/conditions.py): data, exact latency, noise, drops, determinism."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest

import envs
from envs.conditions import Condition, ConditionWrapper, load_conditions, make_condition_env, parse_conditions

PP = "skillstack/PandaPickPlace-v0"


class _AppliedActions(gym.Wrapper):
    """Records the actions that actually reach the env (inside the condition wrapper)."""

    def __init__(self, env):
        super().__init__(env)
        self.applied: list[np.ndarray] = []

    def step(self, action):
        self.applied.append(np.array(action, copy=True))
        return self.env.step(action)


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


@pytest.mark.parametrize("k", [1, 2, 3])
def test_latency_of_k_periods_delays_actions_by_exactly_k(k):
    cond = Condition("lat", action_latency_steps=k)
    rec = _AppliedActions(envs.make(PP))
    env = ConditionWrapper(rec, cond)
    ref = envs.make(PP)
    obs, _ = env.reset(seed=3)
    ref_obs, _ = ref.reset(seed=3)
    sent = _actions(12)
    for t, a in enumerate(sent):
        # The reference env gets, by hand, what a k-period delay should apply: hold while the queue fills.
        expect = ref.unwrapped._hold_action() if t < k else sent[t - k]
        obs, *_ = env.step(a)
        ref_obs, *_ = ref.step(expect)
        np.testing.assert_array_equal(rec.applied[-1], expect)
        np.testing.assert_array_equal(obs["observation"], ref_obs["observation"])


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
    # Reset empties the latency queue: the first two steps after a reset apply the hold action.
    rec = _AppliedActions(envs.make(PP, **load_conditions()["realistic"].env_kwargs()))
    env = ConditionWrapper(rec, load_conditions()["realistic"])
    env.reset(seed=1)
    for a in _actions(5):
        env.step(a)
    env.reset(seed=1)
    hold = rec.unwrapped._hold_action()
    env.step(_actions(1, 5)[0])
    np.testing.assert_array_equal(rec.applied[-1], hold)


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
