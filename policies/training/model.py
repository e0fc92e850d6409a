"""The model a training config describes: ``MultiCriticSAC``, or SB3's ``SAC`` as the naive
weighted-sum baseline, with the replay buffer HER and the reward terms need."""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import asdict
from typing import Any

from policies.training.config import TrainConfig

__all__ = ["build_model"]

# MultiCriticSAC arguments that SB3's SAC does not take (dropped for the naive baseline).
_MULTI_CRITIC_ONLY = ("reward_terms", "critic_weights", "critic_layout", "normalize_critics", "scale_decay",
                      "scale_eps", "entropy_backup", "goal_term", "sum_terms")


def build_model(cfg: TrainConfig, venv: Any, tensorboard_log: str | None = None) -> Any:
    """Construct the (untrained) model a config describes, on ``venv``."""
    import torch
    from gymnasium import spaces
    from stable_baselines3 import SAC
    from stable_baselines3.her.her_replay_buffer import HerReplayBuffer

    from policies.buffers import MultiRewardDictReplayBuffer, MultiRewardHerReplayBuffer
    from policies.multi_critic_sac import MultiCriticSAC

    if cfg.torch_threads:
        torch.set_num_threads(cfg.torch_threads)
    kwargs = copy.deepcopy(cfg.algo_kwargs)
    policy = kwargs.pop("policy", "MultiInputPolicy" if isinstance(venv.observation_space, spaces.Dict) else "MlpPolicy")
    if cfg.her is not None:
        kwargs["replay_buffer_class"] = HerReplayBuffer
        kwargs["replay_buffer_kwargs"] = {**asdict(cfg.her), **kwargs.get("replay_buffer_kwargs", {})}
    common = dict(env=venv, seed=cfg.seed, device=cfg.device, tensorboard_log=tensorboard_log, verbose=0)
    if cfg.algo == "sac" and cfg.skill_discovery is None:
        # Naive baseline: SB3's SAC on the scalar (weighted-sum) reward. The K-term buffers
        # keep that scalar right under HER relabelling (all terms, goal term relabelled).
        keys = _env_reward_keys(venv)
        if cfg.her is not None:
            kwargs["replay_buffer_class"] = MultiRewardHerReplayBuffer
        elif isinstance(venv.observation_space, spaces.Dict):
            kwargs["replay_buffer_class"] = MultiRewardDictReplayBuffer
        else:
            from policies.buffers import MultiRewardReplayBuffer

            kwargs["replay_buffer_class"] = MultiRewardReplayBuffer
        kwargs["replay_buffer_kwargs"] = {**kwargs.get("replay_buffer_kwargs", {}), "reward_keys": tuple(keys)}
        for key in _MULTI_CRITIC_ONLY:
            kwargs.pop(key, None)
        return SAC(policy, **common, **kwargs)
    if cfg.algo == "sac":
        kwargs["sum_terms"] = True
    return MultiCriticSAC(policy, skill_discovery=cfg.skill_discovery, **common, **kwargs)


def _env_reward_keys(venv: Any) -> list[str]:
    try:
        weights = venv.get_attr("reward_weights", indices=[0])[0]
    except AttributeError:
        return ["reward"]
    return list(weights) if isinstance(weights, Mapping) else ["reward"]
