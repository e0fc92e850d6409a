"""The environments of a training run: one env (``make_env``), the training VecEnv
(``make_vec_env``), and the wrapper that lets a checkpoint restore every env exactly."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import gymnasium as gym
import numpy as np

from policies.training.config import TrainConfig

__all__ = ["RunStateWrapper", "make_env", "make_vec_env", "obs_normalizer"]


class RunStateWrapper(gym.Wrapper):
    """Outermost wrapper of a training env: save/restore everything that makes the env's
    future differ (RNGs, simulator state, time-limit counter, skill), for exact resume."""

    def _find(self, cls: type) -> Any:
        env: Any = self.env
        while isinstance(env, gym.Wrapper):
            if isinstance(env, cls):
                return env
            env = env.env
        return None

    def get_run_state(self) -> dict[str, Any]:
        """JSON-able state of this env (plus ``sim_state`` as a float list)."""
        from gymnasium.wrappers import TimeLimit

        from policies.skill_discovery import SkillConditionedWrapper

        u = self.unwrapped
        state: dict[str, Any] = {"np_random": u.np_random.bit_generator.state}
        if hasattr(u, "get_state"):
            state["sim_state"] = np.asarray(u.get_state(), dtype=np.float64).tolist()
        tl = self._find(TimeLimit)
        if tl is not None:
            state["elapsed_steps"] = tl._elapsed_steps
        sk = self._find(SkillConditionedWrapper)
        if sk is not None:
            state["skill_rng"] = sk._rng.bit_generator.state
            state["skill"] = sk.skill.tolist()
        mon = self._find(_monitor_cls())
        if mon is not None:
            state["monitor_rewards"] = [float(r) for r in mon.rewards]
            state["monitor_needs_reset"] = bool(mon.needs_reset)
        return state

    def set_run_state(self, state: Mapping[str, Any]) -> None:
        """Restore a state from ``get_run_state``."""
        from gymnasium.wrappers import TimeLimit

        from policies.skill_discovery import SkillConditionedWrapper

        # A reset first puts every wrapper in its "episode running" state (order checks,
        # Monitor, time limit); everything it changed is then overwritten below.
        self.env.reset()
        u = self.unwrapped
        u.np_random.bit_generator.state = state["np_random"]
        if "sim_state" in state:
            u.set_state(np.asarray(state["sim_state"], dtype=np.float64))
        tl = self._find(TimeLimit)
        if tl is not None and "elapsed_steps" in state:
            tl._elapsed_steps = state["elapsed_steps"]
        sk = self._find(SkillConditionedWrapper)
        if sk is not None and "skill_rng" in state:
            sk._rng.bit_generator.state = state["skill_rng"]
            sk.skill = np.asarray(state["skill"], dtype=np.float32)
        mon = self._find(_monitor_cls())
        if mon is not None and "monitor_rewards" in state:
            mon.rewards = list(state["monitor_rewards"])
            mon.needs_reset = bool(state["monitor_needs_reset"])


def _monitor_cls() -> type:
    from stable_baselines3.common.monitor import Monitor

    return Monitor


def make_env(cfg: TrainConfig, render: bool = False, monitor: bool = True, seed: int | None = None) -> gym.Env:
    """One env of a run: ``envs.make`` (+ skill wrapper) (+ Monitor) + ``RunStateWrapper``."""
    import envs

    kwargs = cfg.env_make_kwargs
    if render:
        kwargs.update(render_mode="rgb_array", render_width=cfg.eval.video_width,
                      render_height=cfg.eval.video_height, camera=cfg.eval.camera)
    env: gym.Env = envs.make(cfg.env_id, **kwargs)
    if cfg.skill_discovery is not None:
        from policies.skill_discovery import SkillConditionedWrapper, make_prior

        env = SkillConditionedWrapper(env, make_prior(cfg.skill_discovery), skill_key=cfg.skill_key, seed=seed)
    if monitor:
        from stable_baselines3.common.monitor import Monitor

        env = Monitor(env, info_keywords=("is_success",))
    return RunStateWrapper(env)


def make_vec_env(cfg: TrainConfig) -> Any:
    """The training VecEnv (``n_envs`` copies, dummy or subprocess), seeded from the config."""
    from stable_baselines3.common.vec_env import DummyVecEnv, SubprocVecEnv

    fns = [(lambda i=i: make_env(cfg, seed=cfg.seed * 1000 + i)) for i in range(cfg.n_envs)]
    venv = SubprocVecEnv(fns, start_method="spawn") if cfg.vec_env == "subproc" else DummyVecEnv(fns)
    venv.seed(cfg.seed)
    if cfg.normalize is not None and cfg.normalize.obs:
        # Running mean/std of the observation (as rl-zoo does for the Fetch tasks): goals a
        # few centimetres apart become distinguishable inputs. The skill z is left as is.
        from gymnasium import spaces
        from stable_baselines3.common.vec_env import VecNormalize

        keys = None
        if isinstance(venv.observation_space, spaces.Dict):
            keys = [k for k in venv.observation_space.spaces if k != cfg.skill_key]
        venv = VecNormalize(venv, norm_obs=True, norm_reward=False, clip_obs=cfg.normalize.clip_obs,
                            norm_obs_keys=keys, gamma=float(cfg.algo_kwargs.get("gamma", 0.99)))
    return venv


def obs_normalizer(venv: Any) -> Callable[[Any], Any] | None:
    """The function that normalises one observation like training did (``None`` if the
    run does not normalise)."""
    from stable_baselines3.common.vec_env import VecNormalize

    return venv.normalize_obs if isinstance(venv, VecNormalize) else None
