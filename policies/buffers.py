"""Replay buffers that keep K reward terms per transition, for multi-critic SAC.

A skillstack env reports its reward as named terms in ``info["reward_terms"]``
(e.g. ``task``, ``interaction``, ``safety``); the scalar reward SB3 sees is their
weighted sum. Multi-critic SAC learns one Q-value per term, so the buffer must keep
every term, not only the sum. The three classes here are drop-in subclasses of SB3's
``ReplayBuffer``, ``DictReplayBuffer`` and ``HerReplayBuffer``: they store an extra
``reward_terms`` array of shape ``(buffer_size, n_envs, K)`` and return it as an
additional field of the sampled batch.

Term order is fixed by ``reward_keys`` (given once, at construction). The special key
tuple ``("reward",)`` means "no named terms": the scalar reward is stored as the only
term, which makes the multi-critic algorithm usable on any Gymnasium env (K = 1).

HER: only the goal term (``goal_key``, default ``"task"``) depends on the desired
goal, so only it is relabelled, by calling the env's vectorised ``compute_reward`` on
the new goals with infos that carry no ``reward_terms`` (with such infos a skillstack
env returns the goal term alone, divided back by its weight here if the env applies
one). Every other term describes what physically happened in the transition and is
kept as observed.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple

import numpy as np
import torch as th
from gymnasium import spaces
from stable_baselines3.common.buffers import DictReplayBuffer, ReplayBuffer
from stable_baselines3.common.type_aliases import TensorDict
from stable_baselines3.common.vec_env import VecEnv, VecNormalize
from stable_baselines3.her.her_replay_buffer import HerReplayBuffer

SCALAR_REWARD_KEY = "reward"


class MultiRewardReplayBufferSamples(NamedTuple):
    """SB3's ``ReplayBufferSamples`` plus ``reward_terms`` of shape ``(batch, K)``."""

    observations: th.Tensor
    actions: th.Tensor
    next_observations: th.Tensor
    dones: th.Tensor
    rewards: th.Tensor
    discounts: th.Tensor | None = None
    reward_terms: th.Tensor | None = None


class MultiRewardDictReplayBufferSamples(NamedTuple):
    """SB3's ``DictReplayBufferSamples`` plus ``reward_terms`` of shape ``(batch, K)``."""

    observations: TensorDict
    actions: th.Tensor
    next_observations: TensorDict
    dones: th.Tensor
    rewards: th.Tensor
    discounts: th.Tensor | None = None
    reward_terms: th.Tensor | None = None


def _check_keys(reward_keys: Sequence[str]) -> tuple[str, ...]:
    keys = tuple(str(k) for k in reward_keys)
    if not keys:
        raise ValueError("reward_keys must name at least one reward term")
    if len(set(keys)) != len(keys):
        raise ValueError(f"reward_keys has duplicates: {keys}")
    return keys


def terms_from_infos(
    reward_keys: Sequence[str], infos: Sequence[dict[str, Any]], reward: np.ndarray
) -> np.ndarray:
    """Read the reward-term vector of each env from its info dict.

    Returns a float32 array ``(n_envs, K)`` in the order of ``reward_keys``. With the
    single key ``"reward"`` the scalar reward is used when the info has no such term.
    Raises ``KeyError`` naming the missing term, so a wrong ``reward_terms`` setting
    fails at the first step instead of silently training on zeros.
    """
    reward = np.asarray(reward, dtype=np.float32).reshape(-1)
    out = np.empty((len(infos), len(reward_keys)), dtype=np.float32)
    for i, info in enumerate(infos):
        terms = info.get("reward_terms")
        for k, key in enumerate(reward_keys):
            if terms is not None and key in terms:
                out[i, k] = float(terms[key])
            elif key == SCALAR_REWARD_KEY and len(reward_keys) == 1:
                out[i, k] = reward[i]
            else:
                have = sorted(terms) if terms is not None else "no info['reward_terms']"
                raise KeyError(f"reward term {key!r} missing from info['reward_terms'] (env reports: {have})")
    return out


class _RewardTermsStorage:
    """The K-term storage shared by the three buffers; listed before the SB3 base class."""

    reward_keys: tuple[str, ...]
    reward_terms: np.ndarray

    def _init_reward_terms(self, reward_keys: Sequence[str]) -> None:
        self.reward_keys = _check_keys(reward_keys)
        self.reward_terms = np.zeros((self.buffer_size, self.n_envs, len(self.reward_keys)), dtype=np.float32)

    @property
    def n_terms(self) -> int:
        """Number of reward terms K stored per transition."""
        return len(self.reward_keys)

    def add(self, obs: Any, next_obs: Any, action: np.ndarray, reward: np.ndarray, done: np.ndarray,
            infos: list[dict[str, Any]]) -> None:
        """Store one vectorised transition and its reward terms (read from ``infos``)."""
        # self.pos is the slot the base class's add is about to fill.
        self.reward_terms[self.pos] = terms_from_infos(self.reward_keys, infos, reward)
        super().add(obs, next_obs, action, reward, done, infos)  # type: ignore[misc]


class MultiRewardReplayBuffer(_RewardTermsStorage, ReplayBuffer):
    """``ReplayBuffer`` that also stores the K reward terms of every transition.

    :param reward_keys: names of the terms, in the order the critics use them.
    Other parameters are SB3's ``ReplayBuffer`` ones.
    """

    def __init__(
        self,
        buffer_size: int,
        observation_space: spaces.Space,
        action_space: spaces.Space,
        device: th.device | str = "auto",
        n_envs: int = 1,
        optimize_memory_usage: bool = False,
        handle_timeout_termination: bool = True,
        reward_keys: Sequence[str] = (SCALAR_REWARD_KEY,),
    ):
        super().__init__(
            buffer_size,
            observation_space,
            action_space,
            device=device,
            n_envs=n_envs,
            optimize_memory_usage=optimize_memory_usage,
            handle_timeout_termination=handle_timeout_termination,
        )
        self._init_reward_terms(reward_keys)

    def _get_samples(self, batch_inds: np.ndarray, env: VecNormalize | None = None) -> MultiRewardReplayBufferSamples:
        # Same env index draw as SB3, then the terms at the same (index, env) pairs.
        env_indices = np.random.randint(0, high=self.n_envs, size=(len(batch_inds),))
        if self.optimize_memory_usage:
            next_obs = self._normalize_obs(self.observations[(batch_inds + 1) % self.buffer_size, env_indices, :], env)
        else:
            next_obs = self._normalize_obs(self.next_observations[batch_inds, env_indices, :], env)
        dones = self.dones[batch_inds, env_indices] * (1 - self.timeouts[batch_inds, env_indices])
        return MultiRewardReplayBufferSamples(
            observations=self.to_torch(self._normalize_obs(self.observations[batch_inds, env_indices, :], env)),
            actions=self.to_torch(self.actions[batch_inds, env_indices, :]),
            next_observations=self.to_torch(next_obs),
            dones=self.to_torch(dones.reshape(-1, 1)),
            rewards=self.to_torch(self._normalize_reward(self.rewards[batch_inds, env_indices].reshape(-1, 1), env)),
            reward_terms=self.to_torch(self.reward_terms[batch_inds, env_indices]),
        )


class MultiRewardDictReplayBuffer(_RewardTermsStorage, DictReplayBuffer):
    """``DictReplayBuffer`` that also stores the K reward terms of every transition."""

    def __init__(
        self,
        buffer_size: int,
        observation_space: spaces.Dict,
        action_space: spaces.Space,
        device: th.device | str = "auto",
        n_envs: int = 1,
        optimize_memory_usage: bool = False,
        handle_timeout_termination: bool = True,
        reward_keys: Sequence[str] = (SCALAR_REWARD_KEY,),
    ):
        super().__init__(
            buffer_size,
            observation_space,
            action_space,
            device=device,
            n_envs=n_envs,
            optimize_memory_usage=optimize_memory_usage,
            handle_timeout_termination=handle_timeout_termination,
        )
        self._init_reward_terms(reward_keys)

    def _get_samples(  # type: ignore[override]
        self, batch_inds: np.ndarray, env: VecNormalize | None = None
    ) -> MultiRewardDictReplayBufferSamples:
        env_indices = np.random.randint(0, high=self.n_envs, size=(len(batch_inds),))
        obs_ = self._normalize_obs({k: o[batch_inds, env_indices, :] for k, o in self.observations.items()}, env)
        next_obs_ = self._normalize_obs({k: o[batch_inds, env_indices, :] for k, o in self.next_observations.items()}, env)
        assert isinstance(obs_, dict) and isinstance(next_obs_, dict)
        dones = self.dones[batch_inds, env_indices] * (1 - self.timeouts[batch_inds, env_indices])
        return MultiRewardDictReplayBufferSamples(
            observations={k: self.to_torch(o) for k, o in obs_.items()},
            actions=self.to_torch(self.actions[batch_inds, env_indices]),
            next_observations={k: self.to_torch(o) for k, o in next_obs_.items()},
            dones=self.to_torch(dones.reshape(-1, 1)),
            rewards=self.to_torch(self._normalize_reward(self.rewards[batch_inds, env_indices].reshape(-1, 1), env)),
            reward_terms=self.to_torch(self.reward_terms[batch_inds, env_indices]),
        )


class MultiRewardHerReplayBuffer(_RewardTermsStorage, HerReplayBuffer):
    """``HerReplayBuffer`` for K reward terms: HER relabels only the goal term.

    Virtual transitions get a new desired goal; the goal term (``goal_key``) is
    recomputed with the env's ``compute_reward(next_achieved_goal, new_goal, infos)``
    with infos that carry no ``reward_terms`` (or the stored infos with their
    ``reward_terms`` removed when ``copy_info_dict=True``), which a skillstack env
    answers with ``reward_weights[goal_key] * goal_term``; that weight is divided out
    (``goal_weight``: taken from the env's ``reward_weights`` unless given). All other
    terms stay as observed. The scalar ``rewards`` field of virtual samples is rebuilt
    as the observed scalar with the goal term's contribution swapped, so it stays the
    weighted sum of the (relabelled) terms.

    :param reward_keys: names of the terms, in critic order; must contain ``goal_key``
        unless no term depends on the goal (then HER only changes the observation).
    :param goal_key: the term that is a function of (achieved_goal, desired_goal).
    :param goal_weight: weight the env's ``compute_reward`` applies to the goal term
        (``None``: read ``reward_weights[goal_key]`` from the env, 1.0 if absent).
    Other parameters are SB3's ``HerReplayBuffer`` ones.
    """

    def __init__(
        self,
        buffer_size: int,
        observation_space: spaces.Dict,
        action_space: spaces.Space,
        env: VecEnv,
        device: th.device | str = "auto",
        n_envs: int = 1,
        optimize_memory_usage: bool = False,
        handle_timeout_termination: bool = True,
        n_sampled_goal: int = 4,
        goal_selection_strategy: Any = "future",
        copy_info_dict: bool = False,
        reward_keys: Sequence[str] = (SCALAR_REWARD_KEY,),
        goal_key: str = "task",
        goal_weight: float | None = None,
    ):
        super().__init__(
            buffer_size,
            observation_space,
            action_space,
            env,
            device=device,
            n_envs=n_envs,
            optimize_memory_usage=optimize_memory_usage,
            handle_timeout_termination=handle_timeout_termination,
            n_sampled_goal=n_sampled_goal,
            goal_selection_strategy=goal_selection_strategy,
            copy_info_dict=copy_info_dict,
        )
        self._init_reward_terms(reward_keys)
        # With no named terms the scalar reward is the goal reward, as in plain HER.
        if self.reward_keys == (SCALAR_REWARD_KEY,):
            goal_key = SCALAR_REWARD_KEY
            goal_weight = 1.0 if goal_weight is None else goal_weight
        self.goal_key = goal_key
        self.goal_index: int | None = self.reward_keys.index(goal_key) if goal_key in self.reward_keys else None
        self.goal_weight = goal_weight

    def _resolve_goal_weight(self) -> float:
        if self.goal_weight is None:
            weights = None
            if self.env is not None:
                try:
                    weights = self.env.get_attr("reward_weights", indices=[0])[0]
                except AttributeError:
                    weights = None
            self.goal_weight = float(weights.get(self.goal_key, 1.0)) if isinstance(weights, dict) else 1.0
        if self.goal_weight == 0.0:
            raise ValueError(f"goal term {self.goal_key!r} has weight 0: HER cannot recover it from compute_reward")
        return float(self.goal_weight)

    def sample(self, batch_size: int, env: VecNormalize | None = None) -> MultiRewardDictReplayBufferSamples:  # type: ignore[override]
        """Sample real and virtual (goal-relabelled) transitions with all K terms.

        Mirrors ``HerReplayBuffer.sample``: the first ``her_ratio * batch_size`` indices
        become virtual transitions, the rest are real.
        """
        is_valid = self.ep_length > 0
        if not np.any(is_valid):
            raise RuntimeError(
                "Unable to sample before the end of the first episode. Choose learning_starts "
                "greater than the episode length."
            )
        valid_indices = np.flatnonzero(is_valid)
        sampled_indices = np.random.choice(valid_indices, size=batch_size, replace=True)
        batch_indices, env_indices = np.unravel_index(sampled_indices, is_valid.shape)
        nb_virtual = int(self.her_ratio * batch_size)
        virtual_batch, real_batch = np.split(batch_indices, [nb_virtual])
        virtual_env, real_env = np.split(env_indices, [nb_virtual])

        real = self._get_real_samples(real_batch, real_env, env)
        virtual = self._get_virtual_samples(virtual_batch, virtual_env, env)
        real_terms = self.to_torch(self.reward_terms[real_batch, real_env])
        return MultiRewardDictReplayBufferSamples(
            observations={k: th.cat((real.observations[k], virtual.observations[k])) for k in virtual.observations},
            actions=th.cat((real.actions, virtual.actions)),
            next_observations={
                k: th.cat((real.next_observations[k], virtual.next_observations[k])) for k in virtual.next_observations
            },
            dones=th.cat((real.dones, virtual.dones)),
            rewards=th.cat((real.rewards, virtual.rewards)),
            reward_terms=th.cat((real_terms, virtual.reward_terms)),  # type: ignore[arg-type]
        )

    def _get_virtual_samples(  # type: ignore[override]
        self,
        batch_indices: np.ndarray,
        env_indices: np.ndarray,
        env: VecNormalize | None = None,
    ) -> MultiRewardDictReplayBufferSamples:
        obs = {key: o[batch_indices, env_indices, :] for key, o in self.observations.items()}
        next_obs = {key: o[batch_indices, env_indices, :] for key, o in self.next_observations.items()}
        if self.copy_info_dict:
            # Drop the stored terms so compute_reward returns the goal term only.
            infos = [
                {k: v for k, v in info.items() if k != "reward_terms"}
                for info in self.infos[batch_indices, env_indices]
            ]
        else:
            infos = [{} for _ in range(len(batch_indices))]
        new_goals = self._sample_goals(batch_indices, env_indices)
        obs["desired_goal"] = new_goals
        next_obs["desired_goal"] = new_goals

        terms = self.reward_terms[batch_indices, env_indices].copy()
        scalar = self.rewards[batch_indices, env_indices].astype(np.float32).copy()
        if self.goal_index is not None and len(batch_indices) > 0:
            assert self.env is not None, "MultiRewardHerReplayBuffer needs a VecEnv to compute goal rewards"
            weighted = self.env.env_method(
                "compute_reward", next_obs["achieved_goal"], obs["desired_goal"], infos, indices=[0]
            )[0]
            weighted = np.asarray(weighted, dtype=np.float32).reshape(-1)
            weight = self._resolve_goal_weight()
            new_goal_term = weighted / weight
            old_goal_term = terms[:, self.goal_index]
            scalar = scalar + weight * (new_goal_term - old_goal_term)
            terms[:, self.goal_index] = new_goal_term

        obs_n = self._normalize_obs(obs, env)
        next_obs_n = self._normalize_obs(next_obs, env)
        assert isinstance(obs_n, dict) and isinstance(next_obs_n, dict)
        dones = self.dones[batch_indices, env_indices] * (1 - self.timeouts[batch_indices, env_indices])
        return MultiRewardDictReplayBufferSamples(
            observations={k: self.to_torch(o) for k, o in obs_n.items()},
            actions=self.to_torch(self.actions[batch_indices, env_indices]),
            next_observations={k: self.to_torch(o) for k, o in next_obs_n.items()},
            dones=self.to_torch(dones.reshape(-1, 1)),
            rewards=self.to_torch(self._normalize_reward(scalar.reshape(-1, 1), env)),
            reward_terms=self.to_torch(terms),
        )


MULTI_REWARD_BUFFERS: tuple[type, ...] = (
    MultiRewardReplayBuffer,
    MultiRewardDictReplayBuffer,
    MultiRewardHerReplayBuffer,
)
