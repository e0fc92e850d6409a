"""Latent-skill discovery for multi-critic SAC: skill priors, a skill-conditioning wrapper,
and two intrinsic rewards trained jointly with the policy.

A skill-conditioned policy pi(a | s, z) gets a skill z drawn from a prior at the start of
every episode (``SkillConditionedWrapper`` appends it to the observation). An intrinsic
reward makes different z lead to different states:

* DIAYN (Eysenbach et al., 2019): a discriminator q(z | s) learns to tell the skill from
  the state it reaches; the reward is log q(z | s') - log p(z). Discrete z (one-hot,
  categorical discriminator) or continuous z (standard normal prior, Gaussian
  discriminator with unit variance).
* METRA / LSD style (Park et al., 2022/2024): a representation phi(s) in R^d and the
  reward (phi(s') - phi(s))^T z, with phi trained to maximise that reward under the
  distance constraint ||phi(s') - phi(s)|| <= 1 per step (dual gradient descent on a
  Lagrange multiplier, METRA's temporal-distance form), so skills are pushed to travel
  far in the chosen state features, not just to be distinguishable.

``MultiCriticSAC(skill_discovery=...)`` adds the intrinsic reward as one more reward term
(``"diversity"``) with its own critic. With the env's interaction and safety terms this is
SLIM's three-critic set-up. The discriminator/representation reads only the state features
named by ``state_key``/``state_indices`` (e.g. the cube position), which is what makes the
skills about the object rather than about the arm.

Layer 3: uses torch and gymnasium; knows the env only through its observation space.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import gymnasium as gym
import numpy as np
import torch as th
from gymnasium import spaces
from torch import nn
from torch.nn import functional as F

SKILL_KEY = "skill"


@dataclass
class SkillDiscoveryConfig:
    """Configuration of the intrinsic skill-discovery reward (a plain, YAML-able dataclass).

    :param method: ``"diayn"`` or ``"metra"``.
    :param skill_dim: size of z (number of skills for a discrete prior).
    :param prior: ``"discrete"`` (uniform one-hot) or ``"continuous"`` (standard normal;
        METRA normalises it to the unit sphere).
    :param state_key: dict-observation key holding the state the discriminator sees
        (``None`` for a flat observation).
    :param state_indices: entries of that vector to use (``None``: all of it, except z for
        a flat observation).
    :param skill_key: dict-observation key where the wrapper stores z (flat observations:
        z is the last ``skill_dim`` entries).
    :param net_arch: hidden sizes of the discriminator / representation.
    :param learning_rate: Adam learning rate.
    :param reward_key: name of the reward term (and of its critic).
    :param reward_scale: multiplies the intrinsic reward.
    :param state_scale: multiplies the state features before the network (e.g. 10 turns
        metres into decimetres, so a few centimetres of motion is visible to it).
    :param metra_eps: slack of METRA's constraint min(eps, 1 - ||dphi||^2).
    :param dual_lr: learning rate of METRA's log-multiplier.
    """

    method: str = "diayn"
    skill_dim: int = 8
    prior: str = "discrete"
    state_key: str | None = "observation"
    state_indices: list[int] | None = None
    skill_key: str = SKILL_KEY
    net_arch: list[int] = field(default_factory=lambda: [256, 256])
    learning_rate: float = 3e-4
    reward_key: str = "diversity"
    reward_scale: float = 1.0
    state_scale: float = 1.0
    metra_eps: float = 1e-3
    dual_lr: float = 3e-4

    def __post_init__(self) -> None:
        if self.method not in ("diayn", "metra"):
            raise ValueError(f"skill discovery method must be 'diayn' or 'metra', got {self.method!r}")
        if self.prior not in ("discrete", "continuous"):
            raise ValueError(f"skill prior must be 'discrete' or 'continuous', got {self.prior!r}")
        if int(self.skill_dim) < 1 or (self.prior == "discrete" and int(self.skill_dim) < 2):
            raise ValueError(f"skill_dim must be >= 2 for a discrete prior (>= 1 continuous), got {self.skill_dim}")
        self.skill_dim = int(self.skill_dim)
        self.net_arch = [int(h) for h in self.net_arch]
        if self.state_indices is not None:
            self.state_indices = [int(i) for i in self.state_indices]

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> SkillDiscoveryConfig:
        """Build from a mapping; unknown keys raise ``KeyError`` naming the valid ones."""
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = set(data) - names
        if unknown:
            raise KeyError(f"unknown skill_discovery keys {sorted(unknown)}; valid: {sorted(names)}")
        return cls(**dict(data))


# ----------------------------------------------------------------------------------------
# Priors and the skill-conditioning wrapper
# ----------------------------------------------------------------------------------------


class SkillPrior:
    """p(z): uniform one-hot over ``skill_dim`` skills, or a standard normal in R^skill_dim.

    ``unit_norm=True`` (METRA, continuous) projects normal samples onto the unit sphere.
    """

    def __init__(self, kind: str, skill_dim: int, unit_norm: bool = False):
        if kind not in ("discrete", "continuous"):
            raise ValueError(f"prior must be 'discrete' or 'continuous', got {kind!r}")
        self.kind = kind
        self.skill_dim = int(skill_dim)
        self.unit_norm = bool(unit_norm)

    def sample(self, rng: np.random.Generator) -> np.ndarray:
        """One z as float32 ``(skill_dim,)``."""
        if self.kind == "discrete":
            return self.one_hot(int(rng.integers(self.skill_dim)))
        z = rng.standard_normal(self.skill_dim).astype(np.float32)
        if self.unit_norm:
            z /= max(float(np.linalg.norm(z)), 1e-8)
        return z

    def one_hot(self, index: int) -> np.ndarray:
        """The discrete skill ``index`` as a one-hot vector."""
        if not 0 <= index < self.skill_dim:
            raise ValueError(f"skill index {index} out of range [0, {self.skill_dim})")
        z = np.zeros(self.skill_dim, dtype=np.float32)
        z[index] = 1.0
        return z

    def enumerate(self, n: int, seed: int = 0) -> np.ndarray:
        """``n`` skills for evaluation/export: discrete cycles through the one-hots, continuous
        draws ``n`` samples from a seeded generator. Shape ``(n, skill_dim)``."""
        if self.kind == "discrete":
            return np.stack([self.one_hot(i % self.skill_dim) for i in range(n)])
        rng = np.random.default_rng(seed)
        return np.stack([self.sample(rng) for _ in range(n)])


class SkillConditionedWrapper(gym.Wrapper):
    """Append a per-episode skill z to the observation.

    Dict observations get a ``skill_key`` entry; flat Box observations get z concatenated
    at the end. z is drawn from ``prior`` at every reset, unless ``reset(options={"skill":
    z})`` fixes it (evaluation, export per skill). The current z is in ``info["skill"]``
    and ``wrapper.skill``.
    """

    def __init__(self, env: gym.Env, prior: SkillPrior, skill_key: str = SKILL_KEY, seed: int | None = None):
        super().__init__(env)
        self.prior = prior
        self.skill_key = skill_key
        self._rng = np.random.default_rng(seed)
        self.skill = np.zeros(prior.skill_dim, dtype=np.float32)
        low, high = (0.0, 1.0) if prior.kind == "discrete" else (-np.inf, np.inf)
        z_space = spaces.Box(low, high, shape=(prior.skill_dim,), dtype=np.float32)
        space = env.observation_space
        if isinstance(space, spaces.Dict):
            if skill_key in space.spaces:
                raise ValueError(f"observation already has a {skill_key!r} entry")
            self.observation_space = spaces.Dict({**space.spaces, skill_key: z_space})
        elif isinstance(space, spaces.Box) and len(space.shape) == 1:
            self.observation_space = spaces.Box(
                np.concatenate([np.broadcast_to(space.low, space.shape), z_space.low]).astype(np.float32),
                np.concatenate([np.broadcast_to(space.high, space.shape), z_space.high]).astype(np.float32),
                dtype=np.float32,
            )
        else:
            raise TypeError(f"SkillConditionedWrapper needs a Dict or 1-D Box observation, got {space}")

    def _augment(self, obs: Any) -> Any:
        if isinstance(obs, dict):
            return {**obs, self.skill_key: self.skill.copy()}
        return np.concatenate([np.asarray(obs, dtype=np.float32), self.skill]).astype(np.float32)

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[Any, dict[str, Any]]:
        """Reset the env and draw (or take from ``options["skill"]``) this episode's z."""
        if seed is not None:
            self._rng = np.random.default_rng(seed + 7919)
        options = dict(options or {})
        fixed = options.pop("skill", None)
        if fixed is not None:
            z = np.asarray(fixed, dtype=np.float32).reshape(-1)
            if z.shape != (self.prior.skill_dim,):
                raise ValueError(f"skill has shape {z.shape}, expected ({self.prior.skill_dim},)")
            self.skill = z.copy()
        else:
            self.skill = self.prior.sample(self._rng)
        obs, info = self.env.reset(seed=seed, options=options or None)
        info = {**info, "skill": self.skill.copy()}
        return self._augment(obs), info

    def step(self, action: Any) -> tuple[Any, float, bool, bool, dict[str, Any]]:
        """Step the env; the observation carries the episode's z."""
        obs, reward, terminated, truncated, info = self.env.step(action)
        return self._augment(obs), reward, terminated, truncated, info


# ----------------------------------------------------------------------------------------
# Intrinsic-reward models
# ----------------------------------------------------------------------------------------


def _mlp(in_dim: int, out_dim: int, net_arch: Sequence[int]) -> nn.Sequential:
    dims = [in_dim, *net_arch]
    layers: list[nn.Module] = []
    for a, b in zip(dims[:-1], dims[1:]):
        layers += [nn.Linear(a, b), nn.ReLU()]
    layers.append(nn.Linear(dims[-1], out_dim))
    return nn.Sequential(*layers)


class SkillModel(nn.Module):
    """Base class: reads (state features, z) from observations; subclasses give the reward.

    ``intrinsic_reward(obs, next_obs)`` -> ``(B,)`` and ``update(obs, next_obs)`` -> logs are
    what ``MultiCriticSAC`` calls, once per gradient step, on the replay batch.
    """

    def __init__(self, config: SkillDiscoveryConfig, observation_space: spaces.Space):
        super().__init__()
        self.config = config
        self.reward_key = config.reward_key
        self.is_dict = isinstance(observation_space, spaces.Dict)
        if self.is_dict:
            assert isinstance(observation_space, spaces.Dict)
            if config.skill_key not in observation_space.spaces:
                raise KeyError(
                    f"observation has no {config.skill_key!r} entry: wrap the env in SkillConditionedWrapper"
                )
            if config.state_key not in observation_space.spaces:
                raise KeyError(
                    f"state_key {config.state_key!r} not in observation keys {sorted(observation_space.spaces)}"
                )
            full = int(np.prod(observation_space.spaces[config.state_key].shape))  # type: ignore[arg-type]
        else:
            full = int(np.prod(observation_space.shape)) - config.skill_dim  # type: ignore[arg-type]
            if full <= 0:
                raise ValueError("flat observation is not larger than the skill: wrap the env in SkillConditionedWrapper")
        indices = config.state_indices if config.state_indices is not None else list(range(full))
        if not indices or min(indices) < 0 or max(indices) >= full:
            raise ValueError(f"state_indices {indices} out of range for a state of size {full}")
        self.register_buffer("state_index", th.as_tensor(indices, dtype=th.long), persistent=False)
        self.state_dim = len(indices)

    def state(self, obs: Any) -> th.Tensor:
        """The discriminator's state features, ``(B, state_dim)``."""
        x = obs[self.config.state_key] if self.is_dict else obs[:, : -self.config.skill_dim]
        x = x.reshape(x.shape[0], -1).float().index_select(1, self.state_index)
        return x * self.config.state_scale

    def skill(self, obs: Any) -> th.Tensor:
        """The episode's z, ``(B, skill_dim)``."""
        z = obs[self.config.skill_key] if self.is_dict else obs[:, -self.config.skill_dim :]
        return z.float()

    def intrinsic_reward(self, obs: Any, next_obs: Any) -> th.Tensor:  # pragma: no cover - abstract
        """The intrinsic reward of a batch of transitions, ``(B,)`` (no gradient needed)."""
        raise NotImplementedError

    def update(self, obs: Any, next_obs: Any) -> dict[str, float]:  # pragma: no cover - abstract
        """One optimisation step on a replay batch; returns scalar logs."""
        raise NotImplementedError


class DiaynDiscriminator(SkillModel):
    """DIAYN: q(z | s') and the reward log q(z | s') - log p(z)."""

    def __init__(self, config: SkillDiscoveryConfig, observation_space: spaces.Space):
        super().__init__(config, observation_space)
        self.net = _mlp(self.state_dim, config.skill_dim, config.net_arch)
        self.optimizer = th.optim.Adam(self.net.parameters(), lr=config.learning_rate)

    def log_q(self, state: th.Tensor, z: th.Tensor) -> th.Tensor:
        """log q(z | state), ``(B,)``."""
        out = self.net(state)
        if self.config.prior == "discrete":
            return (F.log_softmax(out, dim=-1) * z).sum(dim=-1)
        # Unit-variance Gaussian around the predicted mean.
        d = z.shape[-1]
        return -0.5 * ((z - out) ** 2).sum(dim=-1) - 0.5 * d * math.log(2 * math.pi)

    def log_p(self, z: th.Tensor) -> th.Tensor:
        """log p(z), ``(B,)``."""
        if self.config.prior == "discrete":
            return th.full(z.shape[:1], -math.log(self.config.skill_dim), device=z.device)
        d = z.shape[-1]
        return -0.5 * (z**2).sum(dim=-1) - 0.5 * d * math.log(2 * math.pi)

    def intrinsic_reward(self, obs: Any, next_obs: Any) -> th.Tensor:
        """r = scale * (log q(z | s') - log p(z)) for a batch, ``(B,)``."""
        z = self.skill(next_obs)
        return self.config.reward_scale * (self.log_q(self.state(next_obs), z) - self.log_p(z))

    def update(self, obs: Any, next_obs: Any) -> dict[str, float]:
        """One discriminator step (maximum likelihood of z given s'); returns loss/accuracy."""
        z = self.skill(next_obs)
        log_q = self.log_q(self.state(next_obs), z)
        loss = -log_q.mean()
        self.optimizer.zero_grad()
        loss.backward()
        self.optimizer.step()
        logs = {"discriminator_loss": float(loss.item())}
        if self.config.prior == "discrete":
            with th.no_grad():
                acc = (self.net(self.state(next_obs)).argmax(-1) == z.argmax(-1)).float().mean()
            logs["discriminator_accuracy"] = float(acc.item())
        return logs


class MetraRepresentation(SkillModel):
    """METRA/LSD: phi(s) with reward (phi(s') - phi(s))^T z under ||phi(s') - phi(s)|| <= 1.

    Discrete z are used zero-centred (z - 1/n), as METRA does; continuous z come unit-norm
    from the prior.
    """

    def __init__(self, config: SkillDiscoveryConfig, observation_space: spaces.Space):
        super().__init__(config, observation_space)
        self.phi = _mlp(self.state_dim, config.skill_dim, config.net_arch)
        self.log_lambda = nn.Parameter(th.zeros(()))
        self.optimizer = th.optim.Adam(
            [
                {"params": self.phi.parameters(), "lr": config.learning_rate},
                {"params": [self.log_lambda], "lr": config.dual_lr},
            ]
        )

    def _direction(self, z: th.Tensor) -> th.Tensor:
        if self.config.prior == "discrete":
            return z - 1.0 / self.config.skill_dim
        return z

    def intrinsic_reward(self, obs: Any, next_obs: Any) -> th.Tensor:
        """r = scale * (phi(s') - phi(s))^T z for a batch, ``(B,)``."""
        delta = self.phi(self.state(next_obs)) - self.phi(self.state(obs))
        return self.config.reward_scale * (delta * self._direction(self.skill(obs))).sum(dim=-1)

    def update(self, obs: Any, next_obs: Any) -> dict[str, float]:
        """One primal step on phi and one dual step on lambda; returns the logs."""
        delta = self.phi(self.state(next_obs)) - self.phi(self.state(obs))
        reward = (delta * self._direction(self.skill(obs))).sum(dim=-1)
        constraint = th.clamp(1.0 - (delta**2).sum(dim=-1), max=self.config.metra_eps)
        lam = self.log_lambda.exp()
        phi_loss = -(reward + lam.detach() * constraint).mean()
        dual_loss = (self.log_lambda.exp() * constraint.detach()).mean()
        self.optimizer.zero_grad()
        (phi_loss + dual_loss).backward()
        self.optimizer.step()
        return {
            "phi_loss": float(phi_loss.item()),
            "lambda": float(lam.item()),
            "phi_step_norm": float(delta.detach().norm(dim=-1).mean().item()),
        }


def build_skill_model(
    config: Mapping[str, Any] | SkillDiscoveryConfig, observation_space: spaces.Space, device: th.device | str = "cpu"
) -> SkillModel:
    """Build the DIAYN discriminator or METRA representation named by ``config.method``."""
    cfg = config if isinstance(config, SkillDiscoveryConfig) else SkillDiscoveryConfig.from_dict(config)
    cls = DiaynDiscriminator if cfg.method == "diayn" else MetraRepresentation
    return cls(cfg, observation_space).to(device)


def make_prior(config: Mapping[str, Any] | SkillDiscoveryConfig) -> SkillPrior:
    """The prior p(z) that matches a skill-discovery config (METRA continuous: unit norm)."""
    cfg = config if isinstance(config, SkillDiscoveryConfig) else SkillDiscoveryConfig.from_dict(config)
    return SkillPrior(cfg.prior, cfg.skill_dim, unit_norm=(cfg.method == "metra" and cfg.prior == "continuous"))


__all__ = [
    "SKILL_KEY",
    "DiaynDiscriminator",
    "MetraRepresentation",
    "SkillConditionedWrapper",
    "SkillDiscoveryConfig",
    "SkillModel",
    "SkillPrior",
    "build_skill_model",
    "make_prior",
]
