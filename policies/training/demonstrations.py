"""Seed a run's replay buffer with scripted-expert episodes (``envs.experts``) before learning."""

from __future__ import annotations

import copy
import math
from typing import Any

import numpy as np

from policies.training.config import TrainConfig
from policies.training.env_factory import make_env

__all__ = ["seed_with_demonstrations"]


def seed_with_demonstrations(model: Any, cfg: TrainConfig, episodes: int, seed: int) -> int:
    """Add ``episodes`` scripted-expert episodes (``envs.experts``) to the replay buffer.

    Runs ``n_envs`` local envs in lockstep so the transitions have the buffer's shape; the
    env stack matches training (skill wrapper included). Returns transitions added.
    """
    from stable_baselines3.common.vec_env import DummyVecEnv

    from envs.experts import make_expert

    n = cfg.n_envs
    venv = DummyVecEnv([(lambda i=i: make_env(cfg, seed=seed + i)) for i in range(n)])
    venv.seed(seed)
    experts = [make_expert(e) for e in venv.envs]
    rb = model.replay_buffer
    added = 0
    obs = venv.reset()
    for ex in experts:
        ex.reset()
    for _ in range(math.ceil(episodes / n)):
        done = np.zeros(n, dtype=bool)
        while not done.all():
            actions = np.stack([
                ex.act({k: v[i] for k, v in obs.items()} if isinstance(obs, dict) else obs[i])
                for i, ex in enumerate(experts)
            ]).astype(np.float32)
            actions = np.clip(actions, -1.0, 1.0)
            new_obs, rewards, dones, infos = venv.step(actions)
            rb.add(obs, _with_terminal_observations(new_obs, dones, infos), actions, rewards, dones, infos)
            added += n
            for i, d in enumerate(dones):
                if d:
                    experts[i].reset()
            done |= dones
            obs = new_obs
    venv.close()
    return added


def _with_terminal_observations(new_obs: Any, dones: np.ndarray, infos: list[dict[str, Any]]) -> Any:
    """The next observations to store: an env that just ended reports its last observation in
    ``terminal_observation`` (the VecEnv already reset it)."""
    next_obs = copy.deepcopy(new_obs)
    for i, d in enumerate(dones):
        if d and infos[i].get("terminal_observation") is not None:
            if isinstance(next_obs, dict):
                for key in next_obs:
                    next_obs[key][i] = infos[i]["terminal_observation"][key]
            else:
                next_obs[i] = infos[i]["terminal_observation"]
    return next_obs
