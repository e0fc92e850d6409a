"""K-term replay buffers: terms stored in key order, aligned with their transitions, and HER
relabelling only the goal term (synthetic GoalEnv with known terms, and a real Panda env)."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
from gymnasium import spaces
from stable_baselines3.common.vec_env import DummyVecEnv

from policies.buffers import (
    MultiRewardDictReplayBuffer,
    MultiRewardHerReplayBuffer,
    MultiRewardReplayBuffer,
    terms_from_infos,
)

KEYS = ("task", "interaction", "safety")
WEIGHTS = {"task": 2.0, "interaction": 0.5, "safety": 1.0}


class GoalTermsEnv(gym.Env):
    """1-D GoalEnv: the position moves by the action; terms are known functions.

    task = -|achieved - desired| (goal term); interaction = -step index (depends on time
    only, so a relabelled transition must keep it); safety = -|action|. The action
    carries a transition id in its second entry so samples can be traced back.
    """

    def __init__(self) -> None:
        self.observation_space = spaces.Dict(
            {
                "observation": spaces.Box(-10, 10, (1,), np.float64),
                "achieved_goal": spaces.Box(-10, 10, (1,), np.float64),
                "desired_goal": spaces.Box(-10, 10, (1,), np.float64),
            }
        )
        self.action_space = spaces.Box(-1, 1, (2,), np.float32)
        self.reward_weights = dict(WEIGHTS)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.pos, self.t = 0.0, 0
        self.goal = float(self.np_random.uniform(-3, 3))
        return self._obs(), {}

    def _obs(self):
        return {
            "observation": np.array([self.pos]),
            "achieved_goal": np.array([self.pos]),
            "desired_goal": np.array([self.goal]),
        }

    def task_term(self, achieved, desired):
        return -np.abs(np.asarray(achieved) - np.asarray(desired)).sum(axis=-1)

    def compute_reward(self, achieved, desired, info):
        # Like envs.PandaEnv: weighted goal term; other terms only if info carries them.
        return self.reward_weights["task"] * self.task_term(achieved, desired)

    def step(self, action):
        self.pos += float(action[0])
        self.t += 1
        terms = {
            "task": float(self.task_term([self.pos], [self.goal])),
            "interaction": -float(self.t),
            "safety": -abs(float(action[0])),
        }
        reward = sum(self.reward_weights[k] * v for k, v in terms.items())
        return self._obs(), reward, False, self.t >= 5, {"reward_terms": terms}


def _fill(buffer, venv, n_steps: int, rng: np.random.Generator) -> dict[int, dict[str, float]]:
    """Roll out random actions; return transition id -> stored terms."""
    obs = venv.reset()
    stored: dict[int, dict[str, float]] = {}
    for i in range(n_steps):
        action = np.array([[rng.uniform(-1, 1), float(i)]], dtype=np.float32)
        next_obs, reward, done, infos = venv.step(action)
        real_next = {k: v.copy() for k, v in next_obs.items()}
        if done[0]:
            for k in real_next:
                real_next[k][0] = infos[0]["terminal_observation"][k]
        buffer.add(obs, real_next, action, reward, done, infos)
        stored[i] = dict(infos[0]["reward_terms"])
        obs = next_obs
    return stored


def test_terms_from_infos_order_and_missing_key() -> None:
    infos = [{"reward_terms": {"safety": -1.0, "task": 3.0, "interaction": 0.5}}]
    out = terms_from_infos(KEYS, infos, np.array([0.0]))
    np.testing.assert_allclose(out, [[3.0, 0.5, -1.0]])
    # The scalar reward is the single term "reward" when the env reports no terms.
    np.testing.assert_allclose(terms_from_infos(("reward",), [{}], np.array([4.5])), [[4.5]])
    with pytest.raises(KeyError, match="'contact'"):
        terms_from_infos(("task", "contact"), infos, np.array([0.0]))


def test_flat_buffer_keeps_terms_aligned_with_transitions() -> None:
    obs_space = spaces.Box(-np.inf, np.inf, (1,), np.float32)
    act_space = spaces.Box(-1, 1, (1,), np.float32)
    buf = MultiRewardReplayBuffer(64, obs_space, act_space, device="cpu", n_envs=2, reward_keys=KEYS)
    for i in range(20):
        infos = [{"reward_terms": {"task": float(i + 100 * e), "interaction": -float(i), "safety": 0.5 * e}} for e in range(2)]
        obs = np.array([[i], [i + 100]], dtype=np.float32)
        buf.add(obs, obs + 1, np.zeros((2, 1), np.float32), np.array([i, i + 100.0]), np.zeros(2), infos)
    sample = buf.sample(128)
    assert sample.reward_terms.shape == (128, 3)
    obs = sample.observations[:, 0].numpy()
    terms = sample.reward_terms.numpy()
    # The transition is identified by its observation; its terms must be its own.
    env_idx = (obs >= 100).astype(np.float32)
    step = obs - 100 * env_idx
    np.testing.assert_allclose(terms[:, 0], obs)
    np.testing.assert_allclose(terms[:, 1], -step)
    np.testing.assert_allclose(terms[:, 2], 0.5 * env_idx)
    np.testing.assert_allclose(sample.rewards[:, 0].numpy(), obs)


def test_dict_buffer_stores_terms() -> None:
    venv = DummyVecEnv([GoalTermsEnv])
    buf = MultiRewardDictReplayBuffer(100, venv.observation_space, venv.action_space, device="cpu", reward_keys=KEYS)
    stored = _fill(buf, venv, 30, np.random.default_rng(0))
    sample = buf.sample(64)
    ids = sample.actions[:, 1].numpy().astype(int)
    expected = np.array([[stored[i][k] for k in KEYS] for i in ids])
    np.testing.assert_allclose(sample.reward_terms.numpy(), expected, rtol=1e-6)


def test_her_relabels_only_the_goal_term() -> None:
    np.random.seed(0)
    venv = DummyVecEnv([GoalTermsEnv])
    buf = MultiRewardHerReplayBuffer(
        200, venv.observation_space, venv.action_space, env=venv, device="cpu", reward_keys=KEYS, n_sampled_goal=4
    )
    stored = _fill(buf, venv, 50, np.random.default_rng(1))
    sample = buf.sample(400)
    n_real = 400 - int(buf.her_ratio * 400)  # samples come real first, then virtual
    ids = sample.actions[:, 1].numpy().astype(int)
    terms = sample.reward_terms.numpy()
    next_ag = sample.next_observations["achieved_goal"][:, 0].numpy()
    desired = sample.observations["desired_goal"][:, 0].numpy()
    # Goal term equals the (unweighted) goal reward for the goal in the sample: for real
    # samples the episode goal, for virtual ones the relabelled goal.
    np.testing.assert_allclose(terms[:, 0], -np.abs(next_ag - desired), atol=1e-5)
    # Relabelling really happened for virtual samples (some goals are new)...
    orig_task = np.array([stored[i]["task"] for i in ids])
    assert np.mean(np.abs(terms[:n_real, 0] - orig_task[:n_real])) < 1e-5
    assert np.mean(np.abs(terms[n_real:, 0] - orig_task[n_real:]) > 1e-4) > 0.5
    # ...while the other terms are exactly as observed for that transition.
    for k, key in enumerate(KEYS[1:], start=1):
        np.testing.assert_allclose(terms[:, k], [stored[i][key] for i in ids], rtol=1e-6)
    # The scalar stays the weighted sum of the (relabelled) terms.
    w = np.array([WEIGHTS[k] for k in KEYS])
    np.testing.assert_allclose(sample.rewards[:, 0].numpy(), terms @ w, atol=1e-4)
    assert buf.goal_weight == WEIGHTS["task"]


def test_her_with_panda_reach_matches_env_terms() -> None:
    import envs

    np.random.seed(0)
    venv = DummyVecEnv([lambda: envs.make("skillstack/PandaReach-v0", reward_weights={"task": 2.0})])
    buf = MultiRewardHerReplayBuffer(
        300, venv.observation_space, venv.action_space, env=venv, device="cpu", reward_keys=KEYS
    )
    rng = np.random.default_rng(0)
    obs = venv.reset()
    for _ in range(120):
        action = rng.uniform(-1, 1, (1, 4)).astype(np.float32)
        next_obs, reward, done, infos = venv.step(action)
        real_next = {k: v.copy() for k, v in next_obs.items()}
        if done[0]:
            for k in real_next:
                real_next[k][0] = infos[0]["terminal_observation"][k]
        buf.add(obs, real_next, action, reward, done, infos)
        obs = next_obs
    sample = buf.sample(256)
    env = venv.envs[0].unwrapped
    ag = sample.next_observations["achieved_goal"].numpy().astype(np.float64)
    dg = sample.observations["desired_goal"].numpy().astype(np.float64)
    np.testing.assert_allclose(sample.reward_terms[:, 0].numpy(), env._task_term(ag, dg), atol=1e-6)
    assert set(np.unique(sample.reward_terms[:, 0].numpy())) <= {-1.0, 0.0}
    w = np.array([env.reward_weights[k] for k in KEYS], dtype=np.float32)
    np.testing.assert_allclose(sample.rewards[:, 0].numpy(), sample.reward_terms.numpy() @ w, atol=1e-4)
