"""MultiCriticSAC: critic layouts, each critic learning its own known term, K = 1 equal to
SB3's SAC, save/load, configuration errors."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import torch as th
from gymnasium import spaces
from stable_baselines3 import SAC
from stable_baselines3.common.logger import Logger

from policies.multi_critic_sac import EnsembleMLP, MultiCriticSAC, MultiTermCritic, RunningScale

th.set_num_threads(1)


class BanditTerms(gym.Env):
    """One-step episodes (terminated): the true Q_k(s, a) is r_k(s, a)."""

    observation_space = spaces.Box(-1, 1, (2,), np.float32)
    action_space = spaces.Box(-1, 1, (2,), np.float32)

    def __init__(self) -> None:
        self.reward_weights = {"task": 1.0, "interaction": 0.5, "safety": 1.0}

    @staticmethod
    def terms(s: np.ndarray, a: np.ndarray) -> dict[str, np.ndarray]:
        return {
            "task": -((a[..., 0] - s[..., 0]) ** 2),
            "interaction": 5.0 * a[..., 1] * s[..., 1],
            "safety": -2.0 + 0.0 * s[..., 0],
        }

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.s = self.np_random.uniform(-1, 1, 2).astype(np.float32)
        return self.s.copy(), {}

    def step(self, action):
        terms = {k: float(v) for k, v in self.terms(self.s, np.asarray(action)).items()}
        reward = sum(self.reward_weights[k] * v for k, v in terms.items())
        return self.s.copy(), reward, True, False, {"reward_terms": terms}


class ValueTerms(gym.Env):
    """Never terminates (10-step time limit = truncation): next states are i.i.d. uniform
    and independent of the action, so with gamma the true values are
    Q_pos(s, a) = s_0 (E[s_0'] = 0) and Q_const = c / (1 - gamma)."""

    observation_space = spaces.Box(-1, 1, (2,), np.float32)
    action_space = spaces.Box(-1, 1, (1,), np.float32)
    C = 0.5

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.t = 0
        self.s = self.np_random.uniform(-1, 1, 2).astype(np.float32)
        return self.s.copy(), {}

    def step(self, action):
        terms = {"pos": float(self.s[0]), "const": self.C}
        self.s = self.np_random.uniform(-1, 1, 2).astype(np.float32)
        self.t += 1
        return self.s.copy(), sum(terms.values()), False, self.t >= 10, {"reward_terms": terms}


# ---------------------------------------------------------------- critic layouts


@pytest.mark.parametrize("arch", [[32, 16], [8], []])
def test_ensemble_equals_python_loop_reference(arch: list[int]) -> None:
    th.manual_seed(0)
    ens = EnsembleMLP(5, 7, 3, arch)
    members = [ens.member(i) for i in range(5)]
    x = th.randn(11, 7, requires_grad=True)
    out = ens(x)
    ref = th.stack([m(x) for m in members])
    assert out.shape == (5, 11, 3)
    th.testing.assert_close(out, ref, rtol=1e-5, atol=1e-6)
    # Gradients w.r.t. the input match too (the actor update backpropagates through it).
    g_ens = th.autograd.grad(out.square().sum(), x)[0]
    g_ref = th.autograd.grad(ref.square().sum(), x)[0]
    th.testing.assert_close(g_ens, g_ref, rtol=1e-5, atol=1e-6)
    # load_members is the inverse of member().
    other = EnsembleMLP(5, 7, 3, arch)
    other.load_members(members)
    th.testing.assert_close(other(x), out)


def test_ensemble_members_initialised_like_linear() -> None:
    th.manual_seed(0)
    ens = EnsembleMLP(64, 100, 1, [50])
    w = ens.first_weight.detach()
    assert w.abs().max() <= 1 / np.sqrt(100) + 1e-6
    assert abs(w.std().item() - (1 / np.sqrt(100)) / np.sqrt(3)) < 0.005
    # Members differ (independent initialisation).
    assert not th.allclose(ens.member(0)[0].weight, ens.member(1)[0].weight)


def _critic(layout: str, n_terms: int = 3) -> MultiTermCritic:
    from stable_baselines3.common.torch_layers import FlattenExtractor

    obs_space = spaces.Box(-1, 1, (6,), np.float32)
    return MultiTermCritic(
        obs_space, spaces.Box(-1, 1, (2,), np.float32), [16, 16], FlattenExtractor(obs_space), 6,
        n_critics=2, share_features_extractor=False, n_terms=n_terms, layout=layout,
    )


@pytest.mark.parametrize("layout", ["shared", "separate", "separate_loop"])
def test_critic_shapes(layout: str) -> None:
    critic = _critic(layout)
    obs, act = th.randn(9, 6), th.rand(9, 2)
    q = critic.q_values(obs, act)
    assert q.shape == (2, 9, 3)
    twins = critic(obs, act)
    assert len(twins) == 2 and all(t.shape == (9, 3) for t in twins)
    th.testing.assert_close(critic.q1_forward(obs, act), q[0])


def test_separate_ensemble_critic_equals_loop_critic() -> None:
    th.manual_seed(0)
    ens, loop = _critic("separate", 4), _critic("separate_loop", 4)
    loop.q_net = th.nn.ModuleList([ens.q_net.member(i) for i in range(8)])
    obs, act = th.randn(13, 6), th.rand(13, 2) * 2 - 1
    q_ens, q_loop = ens.q_values(obs, act), loop.q_values(obs, act)
    th.testing.assert_close(q_ens, q_loop, rtol=1e-5, atol=1e-6)
    # Member c*K + k is twin c of term k.
    x = th.cat([obs, act], dim=1)
    th.testing.assert_close(q_ens[1, :, 2], loop.q_net[1 * 4 + 2](x)[:, 0], rtol=1e-5, atol=1e-6)


def test_shared_layout_costs_one_torso_per_twin() -> None:
    shared, separate = _critic("shared", 3), _critic("separate", 3)
    n_shared = sum(p.numel() for p in shared.parameters())
    n_sep = sum(p.numel() for p in separate.parameters())
    # Shared: 2 torsos with 3-wide heads; separate: 6 full networks.
    assert n_shared == 2 * ((8 * 16 + 16) + (16 * 16 + 16) + (16 * 3 + 3))
    assert n_sep == 6 * ((8 * 16 + 16) + (16 * 16 + 16) + (16 + 1))


def test_running_scale() -> None:
    s = RunningScale(2, decay=0.9, eps=1.0)
    th.testing.assert_close(s.value(), th.ones(2))
    s.update(th.tensor([10.0, 0.01]))
    th.testing.assert_close(s.value(), th.tensor([10.0, 1.0]))  # bias-corrected, clamped at eps
    for _ in range(200):
        s.update(th.tensor([4.0, 3.0]))
    th.testing.assert_close(s.value(), th.tensor([4.0, 3.0]), rtol=1e-3, atol=1e-3)


# ---------------------------------------------------------------- learning known terms


@pytest.mark.parametrize("layout", ["shared", "separate"])
@pytest.mark.slow
def test_each_critic_learns_its_own_term(layout: str) -> None:
    model = MultiCriticSAC(
        "MlpPolicy", BanditTerms(), critic_layout=layout, learning_starts=256, batch_size=128,
        learning_rate=1e-3, policy_kwargs=dict(net_arch=[64, 64]), seed=0,
    )
    assert model.reward_keys == ["task", "interaction", "safety"]
    model.learn(2500)
    rng = np.random.default_rng(1)
    s = rng.uniform(-1, 1, (500, 2)).astype(np.float32)
    a = rng.uniform(-1, 1, (500, 2)).astype(np.float32)
    q = model.predict_q(s, a)
    true = BanditTerms.terms(s, a)
    for key, tol in (("task", 0.12), ("interaction", 0.25), ("safety", 0.05)):
        err = np.mean(np.abs(q[key] - true[key]))
        assert err < tol, f"{layout}: critic {key} mean error {err:.3f}"
    # Each critic tracks its own term, not another one's (interaction varies most).
    assert np.corrcoef(q["interaction"], true["interaction"])[0, 1] > 0.97
    assert np.corrcoef(q["task"], true["task"])[0, 1] > 0.9
    # The running scales follow |Q_k| (safety is -2 everywhere).
    scale = model.value_scale.value().numpy()
    assert abs(scale[2] - 2.0) < 0.2


@pytest.mark.slow
def test_each_critic_bootstraps_its_own_term() -> None:
    gamma = 0.8
    model2 = MultiCriticSAC(
        "MlpPolicy", ValueTerms(), reward_terms=["pos", "const"], gamma=gamma, learning_starts=256, batch_size=128,
        learning_rate=1e-3, policy_kwargs=dict(net_arch=[64, 64]), seed=0,
    )
    model2.learn(3000)
    rng = np.random.default_rng(2)
    s = rng.uniform(-1, 1, (300, 2)).astype(np.float32)
    a = rng.uniform(-1, 1, (300, 1)).astype(np.float32)
    q = model2.predict_q(s, a)
    # Truncation (time limit) must bootstrap: Q_const is c / (1 - gamma), not less.
    assert abs(np.mean(q["const"]) - ValueTerms.C / (1 - gamma)) < 0.25
    assert np.mean(np.abs(q["pos"] - s[:, 0])) < 0.2


def test_k1_update_equals_sb3_sac() -> None:
    """With one term and the entropy bonus in its target, the update is SB3's SAC update."""
    kwargs = dict(learning_starts=0, batch_size=64, policy_kwargs=dict(net_arch=[32, 32]), seed=3, buffer_size=500)
    ref = SAC("MlpPolicy", ValueTerms(), **kwargs)
    ours = MultiCriticSAC("MlpPolicy", ValueTerms(), entropy_backup="reward", **kwargs)
    assert ours.reward_keys == ["reward"]
    ours.actor.load_state_dict(ref.actor.state_dict())
    for mine, theirs in ((ours.critic, ref.critic), (ours.critic_target, ref.critic_target)):
        mine.q_net.load_members([theirs.qf0, theirs.qf1])
    ours.actor.optimizer.load_state_dict(ref.actor.optimizer.state_dict())
    # Identical replay data.
    rng = np.random.default_rng(0)
    for buf in (ref.replay_buffer, ours.replay_buffer):
        buf.reset()
    for i in range(200):
        obs = rng.uniform(-1, 1, (1, 2)).astype(np.float32)
        nxt = rng.uniform(-1, 1, (1, 2)).astype(np.float32)
        act = rng.uniform(-1, 1, (1, 1)).astype(np.float32)
        rew = rng.normal(size=1).astype(np.float32)
        done = np.array([float(i % 17 == 0)])
        infos = [{"TimeLimit.truncated": bool(i % 23 == 0)}]
        for buf in (ref.replay_buffer, ours.replay_buffer):
            buf.add(obs, nxt, act, rew, done, infos)
    for model in (ref, ours):
        model.set_logger(Logger(folder=None, output_formats=[]))
        np.random.seed(11)
        th.manual_seed(11)
        model.train(gradient_steps=5, batch_size=64)
    for p_ref, p_ours in zip(ref.actor.parameters(), ours.actor.parameters()):
        th.testing.assert_close(p_ours, p_ref, rtol=1e-4, atol=1e-5)
    q_ref = th.stack(ref.critic(th.zeros(4, 2), th.zeros(4, 1)))[..., 0]
    q_ours = ours.critic.q_values(th.zeros(4, 2), th.zeros(4, 1))[..., 0]
    th.testing.assert_close(q_ours, q_ref, rtol=1e-4, atol=1e-5)
    th.testing.assert_close(ours.log_ent_coef, ref.log_ent_coef)


# ---------------------------------------------------------------- save/load and errors


@pytest.mark.parametrize("layout", ["shared", "separate"])
def test_save_load_round_trip(tmp_path, layout: str) -> None:
    model = MultiCriticSAC(
        "MlpPolicy", BanditTerms(), critic_layout=layout, learning_starts=64, batch_size=32,
        policy_kwargs=dict(net_arch=[16]), critic_weights={"interaction": 2.0}, seed=0,
    )
    model.learn(200)
    path = tmp_path / "model.zip"
    model.save(path)
    loaded = MultiCriticSAC.load(path, env=BanditTerms())
    assert loaded.reward_keys == model.reward_keys
    assert loaded.critic_weight_values == [1.0, 2.0, 1.0]
    assert loaded.critic_layout == layout
    obs = np.random.default_rng(0).uniform(-1, 1, (8, 2)).astype(np.float32)
    act = np.zeros((8, 2), np.float32)
    np.testing.assert_allclose(loaded.predict(obs, deterministic=True)[0], model.predict(obs, deterministic=True)[0])
    for key in model.reward_keys:
        np.testing.assert_allclose(loaded.predict_q(obs, act)[key], model.predict_q(obs, act)[key], rtol=1e-6)
    th.testing.assert_close(loaded.value_scale.value(), model.value_scale.value())
    loaded.learn(64)  # and it keeps training


def test_configuration_errors() -> None:
    with pytest.raises(ValueError, match="critic_layout"):
        MultiCriticSAC("MlpPolicy", BanditTerms(), critic_layout="tree")
    with pytest.raises(KeyError, match="unknown terms"):
        MultiCriticSAC("MlpPolicy", BanditTerms(), critic_weights={"speed": 1.0})
    with pytest.raises(ValueError, match="entries"):
        MultiCriticSAC("MlpPolicy", BanditTerms(), critic_weights=[1.0, 2.0])
    with pytest.raises(KeyError, match="entropy_backup"):
        MultiCriticSAC("MlpPolicy", BanditTerms(), entropy_backup="comfort")
    from stable_baselines3.common.buffers import ReplayBuffer

    with pytest.raises(ValueError, match="does not store reward terms"):
        MultiCriticSAC("MlpPolicy", BanditTerms(), replay_buffer_class=ReplayBuffer)
    # A term the env does not report fails at the first stored step, naming it.
    model = MultiCriticSAC("MlpPolicy", BanditTerms(), reward_terms=["task", "grasp"], learning_starts=10)
    with pytest.raises(KeyError, match="'grasp'"):
        model.learn(5)
