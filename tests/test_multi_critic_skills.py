"""Skill discovery: priors, the skill-conditioning wrapper, DIAYN and METRA models, joint
training with MultiCriticSAC, and per-skill export with z folded into the network."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import torch as th
from gymnasium import spaces

from policies.multi_critic_sac import MultiCriticSAC
from policies.skill_discovery import (
    SkillConditionedWrapper,
    SkillDiscoveryConfig,
    SkillPrior,
    build_skill_model,
    make_prior,
)

th.set_num_threads(1)


class PointEnv(gym.Env):
    """A point on the plane moved by the action (0.1 per step), 20-step episodes; terms:
    'safety' = -|a|^2 / 10 (small, so diversity dominates)."""

    def __init__(self, dict_obs: bool = False) -> None:
        self.dict_obs = dict_obs
        box = spaces.Box(-np.inf, np.inf, (2,), np.float32)
        self.observation_space = spaces.Dict({"observation": box}) if dict_obs else box
        self.action_space = spaces.Box(-1, 1, (2,), np.float32)
        self.reward_weights = {"safety": 1.0}

    def _obs(self):
        return {"observation": self.x.copy()} if self.dict_obs else self.x.copy()

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.x = np.zeros(2, np.float32)
        self.t = 0
        return self._obs(), {}

    def step(self, action):
        a = np.clip(np.asarray(action, np.float32), -1, 1)
        self.x = self.x + 0.1 * a
        self.t += 1
        terms = {"safety": -float(a @ a) / 10}
        return self._obs(), terms["safety"], False, self.t >= 20, {"reward_terms": terms}


def test_priors() -> None:
    rng = np.random.default_rng(0)
    disc = SkillPrior("discrete", 4)
    zs = np.stack([disc.sample(rng) for _ in range(400)])
    assert set(zs.sum(axis=1)) == {1.0} and set(np.unique(zs)) == {0.0, 1.0}
    assert np.all(np.bincount(zs.argmax(1), minlength=4) > 60)  # all four drawn
    np.testing.assert_array_equal(disc.enumerate(6), np.stack([disc.one_hot(i % 4) for i in range(6)]))
    cont = SkillPrior("continuous", 3, unit_norm=True)
    zc = np.stack([cont.sample(rng) for _ in range(50)])
    np.testing.assert_allclose(np.linalg.norm(zc, axis=1), 1.0, rtol=1e-5)
    with pytest.raises(ValueError):
        SkillPrior("gaussian", 3)
    with pytest.raises(ValueError, match="out of range"):
        disc.one_hot(4)


@pytest.mark.parametrize("dict_obs", [True, False])
def test_wrapper_appends_a_per_episode_skill(dict_obs: bool) -> None:
    env = SkillConditionedWrapper(PointEnv(dict_obs), SkillPrior("discrete", 5), seed=0)
    obs, info = env.reset(seed=1)
    z = info["skill"]
    if dict_obs:
        assert set(obs) == {"observation", "skill"} and env.observation_space["skill"].shape == (5,)
        got = obs["skill"]
    else:
        assert obs.shape == (7,) and env.observation_space.shape == (7,)
        got = obs[-5:]
    np.testing.assert_array_equal(got, z)
    assert env.observation_space.contains(obs)
    # z stays for the episode, changes between episodes, and can be fixed.
    for _ in range(3):
        step_obs = env.step(env.action_space.sample())[0]
        np.testing.assert_array_equal(step_obs["skill"] if dict_obs else step_obs[-5:], z)
    drawn = {int(env.reset()[1]["skill"].argmax()) for _ in range(30)}
    assert len(drawn) == 5
    fixed = np.eye(5, dtype=np.float32)[3]
    np.testing.assert_array_equal(env.reset(options={"skill": fixed})[1]["skill"], fixed)
    with pytest.raises(ValueError, match="shape"):
        env.reset(options={"skill": np.ones(2)})
    # Seeding makes the skill sequence reproducible.
    a = [int(env.reset(seed=5)[1]["skill"].argmax())] + [int(env.reset()[1]["skill"].argmax()) for _ in range(5)]
    b = [int(env.reset(seed=5)[1]["skill"].argmax())] + [int(env.reset()[1]["skill"].argmax()) for _ in range(5)]
    assert a == b


def test_config_validation() -> None:
    with pytest.raises(ValueError, match="method"):
        SkillDiscoveryConfig(method="vic")
    with pytest.raises(KeyError, match="unknown skill_discovery keys"):
        SkillDiscoveryConfig.from_dict({"skills": 4})
    env = SkillConditionedWrapper(PointEnv(True), SkillPrior("discrete", 4))
    with pytest.raises(KeyError, match="state_key"):
        build_skill_model({"skill_dim": 4, "state_key": "cube"}, env.observation_space)
    with pytest.raises(KeyError, match="SkillConditionedWrapper"):
        build_skill_model({"skill_dim": 4}, PointEnv(True).observation_space)


def test_diayn_discriminator_learns_and_rewards_distinguishable_states() -> None:
    th.manual_seed(0)
    env = SkillConditionedWrapper(PointEnv(True), SkillPrior("discrete", 4))
    model = build_skill_model({"skill_dim": 4, "net_arch": [32], "learning_rate": 3e-3}, env.observation_space)
    # Skill k puts the state near direction k: perfectly distinguishable.
    dirs = th.tensor([[1.0, 0], [0, 1.0], [-1.0, 0], [0, -1.0]])
    idx = th.randint(0, 4, (256,))
    z = th.eye(4)[idx]
    nxt = {"observation": dirs[idx] + 0.1 * th.randn(256, 2), "skill": z}
    r0 = model.intrinsic_reward(nxt, nxt).mean().item()
    for _ in range(300):
        logs = model.update(nxt, nxt)
    assert logs["discriminator_accuracy"] > 0.95
    r1 = model.intrinsic_reward(nxt, nxt)
    assert r1.shape == (256,)
    # log q(z|s) - log p(z) -> log 4 for distinguishable skills (from ~0 at the start).
    assert abs(r0) < 0.5 and r1.mean().item() > np.log(4) - 0.2
    # Indistinguishable states: the reward stays near 0 (q ~ p).
    same = {"observation": th.zeros(256, 2), "skill": z}
    assert abs(model.intrinsic_reward(same, same).mean().item()) < 0.3


def test_metra_representation_respects_distance_constraint() -> None:
    th.manual_seed(0)
    env = SkillConditionedWrapper(PointEnv(False), SkillPrior("continuous", 2, unit_norm=True))
    model = build_skill_model(
        {"method": "metra", "prior": "continuous", "skill_dim": 2, "state_key": None, "net_arch": [32],
         "learning_rate": 1e-3, "dual_lr": 1e-2},
        env.observation_space,
    )
    # Transitions that move 0.1 along z: the best phi stretches them to length ~1.
    z = th.nn.functional.normalize(th.randn(512, 2), dim=1)
    s = th.randn(512, 2)
    obs = th.cat([s, z], dim=1)
    nxt = th.cat([s + 0.1 * z, z], dim=1)
    for _ in range(1500):
        logs = model.update(obs, nxt)
    reward = model.intrinsic_reward(obs, nxt)
    assert reward.mean().item() > 0.5  # phi grew along the skill directions...
    assert logs["phi_step_norm"] < 1.2  # ...but not past the unit step constraint
    assert logs["lambda"] > 0


@pytest.mark.slow
def test_joint_training_with_multi_critic_sac_gives_diverse_skills() -> None:
    env = SkillConditionedWrapper(PointEnv(True), make_prior({"skill_dim": 4}), seed=0)
    model = MultiCriticSAC(
        "MultiInputPolicy", env, learning_starts=400, batch_size=128, learning_rate=1e-3, gamma=0.9, seed=0,
        policy_kwargs=dict(net_arch=[64, 64]),
        skill_discovery={"skill_dim": 4, "net_arch": [64], "learning_rate": 1e-3, "state_scale": 2.0},
    )
    assert model.reward_keys == ["safety", "diversity"]
    assert model.critic.n_terms == 2
    model.learn(2500)
    finals = []
    for k in range(4):
        obs, _ = env.reset(options={"skill": np.eye(4, dtype=np.float32)[k]})
        for _ in range(20):
            obs, *_ = env.step(model.predict(obs, deterministic=True)[0])
        finals.append(obs["observation"].copy())
    finals = np.array(finals)
    # Skills end in different places (pairwise distance well above what noise gives).
    dists = np.linalg.norm(finals[:, None] - finals[None], axis=-1)[np.triu_indices(4, 1)]
    assert np.median(dists) > 0.5, finals
    # The discriminator tells the skills apart from where they end.
    with th.no_grad():
        logits = model.skill_model.net(th.as_tensor(finals) * 2.0)
    assert (logits.argmax(1).numpy() == np.arange(4)).mean() >= 0.75


def test_fold_skill_into_exported_actor_matches_policy() -> None:
    from policies.networks import load_network
    from policies.training.handoff import _fold_skill_actor

    env = SkillConditionedWrapper(PointEnv(True), make_prior({"skill_dim": 3}), seed=0)
    model = MultiCriticSAC("MultiInputPolicy", env, policy_kwargs=dict(net_arch=[16]), skill_discovery={"skill_dim": 3}, seed=0)
    z = np.eye(3, dtype=np.float32)[2]
    ex = _fold_skill_actor(model, "skill", z)
    assert [k for k, _ in ex.observation_keys] == ["observation"]
    net = load_network(ex.arch, ex.state_dict)
    x = np.random.default_rng(0).normal(size=(5, 2)).astype(np.float32)
    expected = model.predict({"observation": x, "skill": np.tile(z, (5, 1))}, deterministic=True)[0]
    with th.no_grad():
        got = net(th.as_tensor(x)).numpy()
    np.testing.assert_allclose(got, expected, atol=1e-5)
