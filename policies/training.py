"""Training runs from YAML configs: ``train(config) -> run_dir``.

One config file per experiment (rl-zoo3 style, see ``configs/*.yaml``), overridable with
``key.sub=value`` strings. A run folder holds everything a user keeps::

    <run_dir>/config.yaml          the resolved configuration
    <run_dir>/tb/                  TensorBoard logs (SB3 logger; per-critic values, scales, losses)
    <run_dir>/eval.jsonl           one line per evaluation: success, safety cost, per-term returns
    <run_dir>/videos/              evaluation videos (mp4)
    <run_dir>/checkpoints/step_N/  resumable checkpoints (safetensors + JSON + npz, no pickle)
    <run_dir>/skills/              exported skill packages (also added to the skill library)
    <run_dir>/summary.json         final evaluation, timings, exported skills

Resume (``train(..., resume=True)``) after the process was killed continues from the
latest checkpoint and gives the same result as an uninterrupted run: a checkpoint holds
the model and optimizer tensors, the replay buffer, every RNG (numpy, torch, python, each
env's, the skill wrapper's, the action space's), each env's simulator state and step
count, and SB3's counters; training always advances in the same chunks (evaluation and
checkpoint boundaries), resumed or not. Nothing here unpickles: tensors load from
safetensors, arrays from ``np.load(allow_pickle=False)``, the rest from JSON.

Algorithms: ``multi_critic_sac`` (``MultiCriticSAC``) or ``sac`` (the naive baseline:
SB3's SAC on the scalar weighted-sum reward; with HER it uses the K-term HER buffer so
the relabelled scalar stays the weighted sum of all terms). With ``skill_discovery`` the
env is wrapped in ``SkillConditionedWrapper`` and the naive baseline is
``MultiCriticSAC(sum_terms=True)``.
"""

from __future__ import annotations

import copy
import json
import math
import os
import random
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import yaml

from policies.cpu_allocator import keep_freed_memory

CONFIG_FILE = "config.yaml"
EVAL_FILE = "eval.jsonl"
SUMMARY_FILE = "summary.json"
CHECKPOINT_DIR = "checkpoints"
ALGOS = ("multi_critic_sac", "sac")
COVERAGE_CELL = 0.02  # metres: the 2 cm cells for cube-displacement coverage

DEFAULT_CONFIG: dict[str, Any] = {
    "experiment": "run",
    "env_id": "skillstack/PandaReach-v0",
    "env_kwargs": {},
    "algo": "multi_critic_sac",
    "seed": 0,
    "total_timesteps": 10_000,
    "n_envs": 1,
    "vec_env": "dummy",
    "torch_threads": 1,
    "device": "cpu",
    "her": None,
    "normalize": {"obs": True, "clip_obs": 10.0},
    "algo_kwargs": {},
    "skill_discovery": None,
    "demonstrations": {"episodes": 0, "seed": 12345},
    "eval": {"freq": 2000, "episodes": 20, "seed": 100_000, "video": "final", "video_width": 320,
             "video_height": 240, "camera": "front", "coverage_skills": 64},
    "checkpoint": {"freq": 2000, "keep": 2},
    "export": {"enabled": True, "name": None, "version": "0.1.0", "library": None, "skills": 8,
               "add_to_library": True, "descriptors": {"grid": 2, "episodes_per_cell": 2},
               "effects": [], "preconditions": [], "description": ""},
    "runs_dir": "runs",
    "log_interval": 10,
}


# =========================================================================================
# Configuration
# =========================================================================================


def _deep_merge(base: Mapping[str, Any], extra: Mapping[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(dict(base))
    for key, value in extra.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = _deep_merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def apply_overrides(config: Mapping[str, Any], overrides: Sequence[str]) -> dict[str, Any]:
    """Apply ``a.b.c=value`` strings (value parsed as YAML) to a copy of ``config``.

    Raises ``ValueError`` for a malformed override.
    """
    out = copy.deepcopy(dict(config))
    for item in overrides:
        key, sep, raw = item.partition("=")
        if not sep or not key.strip():
            raise ValueError(f"override {item!r} is not KEY=VALUE (e.g. total_timesteps=5000)")
        try:
            value = yaml.safe_load(raw) if raw.strip() else None
        except yaml.YAMLError as exc:
            raise ValueError(f"override {item!r}: value is not valid YAML ({exc})") from None
        node = out
        parts = key.strip().split(".")
        for part in parts[:-1]:
            if not isinstance(node.get(part), dict):
                node[part] = {}
            node = node[part]
        node[parts[-1]] = value
    return out


def load_config(source: str | os.PathLike[str] | Mapping[str, Any], overrides: Sequence[str] = ()) -> dict[str, Any]:
    """Read a YAML config (or take a mapping), fill defaults, apply overrides, validate.

    Why defaults here: a config file states only what the experiment changes.
    """
    if isinstance(source, Mapping):
        raw: Any = dict(source)
    else:
        path = Path(source)
        if path.is_dir():
            path = path / CONFIG_FILE
        if not path.is_file():
            raise FileNotFoundError(f"config {path} does not exist")
        raw = yaml.safe_load(path.read_text())
        if not isinstance(raw, dict):
            raise ValueError(f"config {path}: expected a mapping at the top level")
    unknown = set(raw) - set(DEFAULT_CONFIG)
    if unknown:
        raise KeyError(f"unknown config keys {sorted(unknown)}; valid: {sorted(DEFAULT_CONFIG)}")
    cfg = _deep_merge(DEFAULT_CONFIG, raw)
    cfg = apply_overrides(cfg, overrides)
    unknown = set(cfg) - set(DEFAULT_CONFIG)
    if unknown:
        raise KeyError(f"unknown config keys {sorted(unknown)}; valid: {sorted(DEFAULT_CONFIG)}")
    _validate(cfg)
    return cfg


def _validate(cfg: dict[str, Any]) -> None:
    if cfg["algo"] not in ALGOS:
        raise ValueError(f"algo must be one of {ALGOS}, got {cfg['algo']!r}")
    if cfg["vec_env"] not in ("dummy", "subproc"):
        raise ValueError(f"vec_env must be 'dummy' or 'subproc', got {cfg['vec_env']!r}")
    for key in ("total_timesteps", "n_envs"):
        if not isinstance(cfg[key], int) or cfg[key] < 1:
            raise ValueError(f"{key} must be a positive integer, got {cfg[key]!r}")
    if not isinstance(cfg["seed"], int) or cfg["seed"] < 0:
        raise ValueError(f"seed must be a non-negative integer, got {cfg['seed']!r}")
    for section in ("eval", "checkpoint"):
        freq = cfg[section].get("freq")
        if not isinstance(freq, int) or freq < 0:
            raise ValueError(f"{section}.freq must be a non-negative integer (0 = only at the end), got {freq!r}")
    if cfg["skill_discovery"] is not None:
        from policies.skill_discovery import SkillDiscoveryConfig

        SkillDiscoveryConfig.from_dict(cfg["skill_discovery"])  # raises on bad keys/values
        if cfg["her"]:
            raise ValueError("skill discovery runs do not use HER (set her: null)")
    if not isinstance(cfg["algo_kwargs"], dict):
        raise ValueError("algo_kwargs must be a mapping of constructor arguments")
    reserved = {"env", "policy", "seed", "replay_buffer_class", "tensorboard_log", "device", "skill_discovery"}
    bad = reserved & set(cfg["algo_kwargs"])
    if bad:
        raise ValueError(f"algo_kwargs may not set {sorted(bad)}: they come from the config's own keys")


# =========================================================================================
# Environments
# =========================================================================================


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


def make_env(cfg: Mapping[str, Any], render: bool = False, monitor: bool = True, seed: int | None = None) -> gym.Env:
    """One env of a run: ``envs.make`` (+ skill wrapper) (+ Monitor) + ``RunStateWrapper``."""
    import envs

    kwargs = dict(cfg.get("env_kwargs") or {})
    if render:
        kwargs.update(render_mode="rgb_array", render_width=int(cfg["eval"]["video_width"]),
                      render_height=int(cfg["eval"]["video_height"]), camera=cfg["eval"]["camera"])
    env: gym.Env = envs.make(cfg["env_id"], **kwargs)
    if cfg.get("skill_discovery"):
        from policies.skill_discovery import SkillConditionedWrapper, make_prior

        sd = cfg["skill_discovery"]
        env = SkillConditionedWrapper(env, make_prior(sd), skill_key=sd.get("skill_key", "skill"), seed=seed)
    if monitor:
        from stable_baselines3.common.monitor import Monitor

        env = Monitor(env, info_keywords=("is_success",))
    return RunStateWrapper(env)


def make_vec_env(cfg: Mapping[str, Any]) -> Any:
    """The training VecEnv (``n_envs`` copies, dummy or subprocess), seeded from the config."""
    from stable_baselines3.common.vec_env import DummyVecEnv, SubprocVecEnv

    seed = int(cfg["seed"])
    fns = [(lambda i=i: make_env(cfg, seed=seed * 1000 + i)) for i in range(int(cfg["n_envs"]))]
    venv = SubprocVecEnv(fns, start_method="spawn") if cfg["vec_env"] == "subproc" else DummyVecEnv(fns)
    venv.seed(seed)
    norm = cfg.get("normalize") or {}
    if norm.get("obs"):
        # Running mean/std of the observation (as rl-zoo does for the Fetch tasks): goals a
        # few centimetres apart become distinguishable inputs. The skill z is left as is.
        from gymnasium import spaces
        from stable_baselines3.common.vec_env import VecNormalize

        keys = None
        if isinstance(venv.observation_space, spaces.Dict):
            skip = {(cfg.get("skill_discovery") or {}).get("skill_key", "skill")}
            keys = [k for k in venv.observation_space.spaces if k not in skip]
        venv = VecNormalize(venv, norm_obs=True, norm_reward=False, clip_obs=float(norm.get("clip_obs", 10.0)),
                            norm_obs_keys=keys, gamma=float(cfg["algo_kwargs"].get("gamma", 0.99)))
    return venv


def obs_normalizer(venv: Any) -> Callable[[Any], Any] | None:
    """The function that normalises one observation like training did (``None`` if the
    run does not normalise)."""
    from stable_baselines3.common.vec_env import VecNormalize

    return venv.normalize_obs if isinstance(venv, VecNormalize) else None


# =========================================================================================
# Model
# =========================================================================================


def build_model(cfg: Mapping[str, Any], venv: Any, tensorboard_log: str | None = None) -> Any:
    """Construct the (untrained) model a config describes, on ``venv``."""
    import torch
    from gymnasium import spaces
    from stable_baselines3 import SAC
    from stable_baselines3.her.her_replay_buffer import HerReplayBuffer

    from policies.buffers import MultiRewardDictReplayBuffer, MultiRewardHerReplayBuffer
    from policies.multi_critic_sac import MultiCriticSAC

    if cfg.get("torch_threads"):
        torch.set_num_threads(int(cfg["torch_threads"]))
    kwargs = copy.deepcopy(dict(cfg["algo_kwargs"]))
    policy = kwargs.pop("policy", "MultiInputPolicy" if isinstance(venv.observation_space, spaces.Dict) else "MlpPolicy")
    her = cfg.get("her")
    if her:
        kwargs["replay_buffer_class"] = HerReplayBuffer
        kwargs["replay_buffer_kwargs"] = {**dict(her), **kwargs.get("replay_buffer_kwargs", {})}
    common = dict(env=venv, seed=int(cfg["seed"]), device=cfg.get("device", "cpu"), tensorboard_log=tensorboard_log,
                  verbose=0)
    if cfg["algo"] == "sac" and not cfg.get("skill_discovery"):
        # Naive baseline: SB3's SAC on the scalar (weighted-sum) reward. The K-term buffers
        # keep that scalar right under HER relabelling (all terms, goal term relabelled).
        keys = _env_reward_keys(venv)
        if her:
            kwargs["replay_buffer_class"] = MultiRewardHerReplayBuffer
        elif isinstance(venv.observation_space, spaces.Dict):
            kwargs["replay_buffer_class"] = MultiRewardDictReplayBuffer
        else:
            from policies.buffers import MultiRewardReplayBuffer

            kwargs["replay_buffer_class"] = MultiRewardReplayBuffer
        kwargs["replay_buffer_kwargs"] = {**kwargs.get("replay_buffer_kwargs", {}), "reward_keys": tuple(keys)}
        for key in ("reward_terms", "critic_weights", "critic_layout", "normalize_critics", "scale_decay",
                    "scale_eps", "entropy_backup", "goal_term", "sum_terms"):
            kwargs.pop(key, None)
        return SAC(policy, **common, **kwargs)
    if cfg["algo"] == "sac":
        kwargs["sum_terms"] = True
    return MultiCriticSAC(policy, skill_discovery=cfg.get("skill_discovery"), **common, **kwargs)


def _env_reward_keys(venv: Any) -> list[str]:
    try:
        weights = venv.get_attr("reward_weights", indices=[0])[0]
    except AttributeError:
        return ["reward"]
    return list(weights) if isinstance(weights, Mapping) else ["reward"]


# =========================================================================================
# Checkpoints (no pickle)
# =========================================================================================


def _flatten_optimizer(prefix: str, state: Mapping[str, Any], tensors: dict[str, Any]) -> dict[str, Any]:
    """Put an optimizer state_dict's tensors into ``tensors``; return the JSON part."""
    import torch

    meta: dict[str, Any] = {"param_groups": state["param_groups"], "state": {}}
    for pid, pstate in state["state"].items():
        entry = {}
        for name, value in pstate.items():
            if isinstance(value, torch.Tensor):
                tensors[f"{prefix}/state/{pid}/{name}"] = value.detach().cpu().contiguous()
                entry[name] = {"tensor": f"{prefix}/state/{pid}/{name}"}
            else:
                entry[name] = {"value": value}
        meta["state"][str(pid)] = entry
    return meta


def _unflatten_optimizer(meta: Mapping[str, Any], tensors: Mapping[str, Any]) -> dict[str, Any]:
    state: dict[int, dict[str, Any]] = {}
    for pid, entry in meta["state"].items():
        state[int(pid)] = {
            name: (tensors[v["tensor"]].clone() if "tensor" in v else v["value"]) for name, v in entry.items()
        }
    return {"state": state, "param_groups": copy.deepcopy(meta["param_groups"])}


def _rb_arrays(rb: Any) -> dict[str, np.ndarray]:
    arrays: dict[str, np.ndarray] = {}
    for name in ("actions", "rewards", "dones", "timeouts", "reward_terms", "ep_start", "ep_length", "_current_ep_start"):
        if hasattr(rb, name):
            arrays[name] = np.asarray(getattr(rb, name))
    for name in ("observations", "next_observations"):
        value = getattr(rb, name, None)
        if isinstance(value, dict):
            for key, arr in value.items():
                arrays[f"{name}/{key}"] = arr
        elif value is not None:
            arrays[name] = value
    if getattr(rb, "copy_info_dict", False):
        raise ValueError("checkpoints do not support copy_info_dict=True (infos are arbitrary objects)")
    return arrays


def _restore_rb(rb: Any, arrays: Mapping[str, np.ndarray]) -> None:
    for name, arr in arrays.items():
        if "/" in name:
            group, key = name.split("/", 1)
            getattr(rb, group)[key][...] = arr
        else:
            target = getattr(rb, name)
            if isinstance(target, np.ndarray):
                target[...] = arr
            else:  # pragma: no cover - defensive
                setattr(rb, name, arr.copy())


def save_checkpoint(model: Any, venv: Any, path: str | os.PathLike[str], extra: Mapping[str, Any] | None = None) -> Path:
    """Write a resumable checkpoint directory atomically (temp dir + rename).

    ``model.safetensors``: every state dict SB3 would save (policy, optimizers, entropy
    coefficient, value scales, skill model) and the torch RNG; ``replay.npz``: the replay
    buffer, the last observation, numpy's global RNG; ``state.json``: counters, optimizer
    hyper-parameters, env states, the other RNGs.
    """
    import torch
    from safetensors.torch import save_file

    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        tensors: dict[str, Any] = {}
        meta: dict[str, Any] = {"format": "skillstack-checkpoint", "format_version": 1, "optimizers": {}}
        state_dicts, variables = model._get_torch_save_params()
        for name in state_dicts:
            obj = _getattr_path(model, name)
            if obj is None:
                continue
            if isinstance(obj, torch.optim.Optimizer):
                meta["optimizers"][name] = _flatten_optimizer(f"opt:{name}", obj.state_dict(), tensors)
            else:
                for key, value in obj.state_dict().items():
                    tensors[f"sd:{name}/{key}"] = value.detach().cpu().contiguous()
        for name in variables:
            tensors[f"var:{name}"] = _getattr_path(model, name).detach().cpu().reshape(-1).contiguous()
        tensors["rng:torch"] = torch.get_rng_state()
        save_file(tensors, str(tmp / "model.safetensors"))

        arrays = {f"rb:{k}": v for k, v in _rb_arrays(model.replay_buffer).items()}
        last = model._last_obs
        if isinstance(last, dict):
            for key, arr in last.items():
                arrays[f"last_obs/{key}"] = np.asarray(arr)
        elif last is not None:
            arrays["last_obs"] = np.asarray(last)
        if model._last_episode_starts is not None:
            arrays["last_episode_starts"] = np.asarray(model._last_episode_starts)
        if model._last_original_obs is not None:
            last_o = model._last_original_obs
            for key, arr in (last_o.items() if isinstance(last_o, dict) else [("", last_o)]):
                arrays[f"last_original_obs/{key}" if key else "last_original_obs"] = np.asarray(arr)
        vn_meta = _save_vecnormalize(venv, arrays)
        np_state = np.random.get_state()
        arrays["rng:numpy_keys"] = np.asarray(np_state[1])
        np.savez(tmp / "replay.npz", **arrays)

        rb = model.replay_buffer
        py_state = random.getstate()
        meta.update(
            num_timesteps=int(model.num_timesteps),
            n_updates=int(model._n_updates),
            episode_num=int(model._episode_num),
            rb_pos=int(rb.pos),
            rb_full=bool(rb.full),
            rng_numpy=[np_state[0], int(np_state[2]), int(np_state[3]), float(np_state[4])],
            rng_python=[py_state[0], list(py_state[1]), py_state[2]],
            rng_action_space=model.action_space.np_random.bit_generator.state,
            ep_info_buffer=list(model.ep_info_buffer or []),
            ep_success_buffer=[bool(x) for x in (model.ep_success_buffer or [])],
            envs=venv.env_method("get_run_state"),
            vec_normalize=vn_meta,
            extra=dict(extra or {}),
        )
        (tmp / "state.json").write_text(json.dumps(meta, default=_json_default))
        for f in tmp.iterdir():
            with open(f, "rb") as fh:
                os.fsync(fh.fileno())
        if out.exists():
            shutil.rmtree(out)
        os.replace(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out


def load_checkpoint(model: Any, venv: Any | None, path: str | os.PathLike[str], restore_rng: bool = True) -> dict[str, Any]:
    """Restore a checkpoint written by ``save_checkpoint`` into a freshly built ``model``
    (and its ``venv``'s env states when given). Returns the checkpoint's JSON metadata."""
    import torch
    from collections import deque

    from safetensors.torch import load_file

    src = Path(path)
    meta = json.loads((src / "state.json").read_text())
    if meta.get("format") != "skillstack-checkpoint":
        raise ValueError(f"{src}: not a skillstack checkpoint")
    tensors = load_file(str(src / "model.safetensors"))
    state_dicts, variables = model._get_torch_save_params()
    for name in state_dicts:
        obj = _getattr_path(model, name)
        if obj is None:
            continue
        if isinstance(obj, torch.optim.Optimizer):
            obj.load_state_dict(_unflatten_optimizer(meta["optimizers"][name], tensors))
        else:
            prefix = f"sd:{name}/"
            sd = {k[len(prefix):]: v for k, v in tensors.items() if k.startswith(prefix)}
            obj.load_state_dict(sd)
    for name in variables:
        with torch.no_grad():
            target = _getattr_path(model, name)
            target.copy_(tensors[f"var:{name}"].reshape(target.shape))

    with np.load(src / "replay.npz", allow_pickle=False) as data:
        arrays = {k: data[k] for k in data.files}
    _restore_rb(model.replay_buffer, {k[3:]: v for k, v in arrays.items() if k.startswith("rb:")})
    model.replay_buffer.pos = int(meta["rb_pos"])
    model.replay_buffer.full = bool(meta["rb_full"])
    last_keys = [k for k in arrays if k.startswith("last_obs/")]
    if last_keys:
        model._last_obs = {k.split("/", 1)[1]: arrays[k] for k in last_keys}
    elif "last_obs" in arrays:
        model._last_obs = arrays["last_obs"]
    if "last_episode_starts" in arrays:
        model._last_episode_starts = arrays["last_episode_starts"]
    orig_keys = [k for k in arrays if k.startswith("last_original_obs/")]
    if orig_keys:
        model._last_original_obs = {k.split("/", 1)[1]: arrays[k] for k in orig_keys}
    elif "last_original_obs" in arrays:
        model._last_original_obs = arrays["last_original_obs"]
    if venv is not None:
        _load_vecnormalize(venv, meta.get("vec_normalize"), arrays)
    model.num_timesteps = int(meta["num_timesteps"])
    model._n_updates = int(meta["n_updates"])
    model._episode_num = int(meta["episode_num"])
    model.ep_info_buffer = deque(meta["ep_info_buffer"], maxlen=model._stats_window_size)
    model.ep_success_buffer = deque(meta["ep_success_buffer"], maxlen=model._stats_window_size)
    if restore_rng:
        name, pos, has_gauss, cached = meta["rng_numpy"]
        np.random.set_state((name, arrays["rng:numpy_keys"], int(pos), int(has_gauss), float(cached)))
        v, internal, gauss = meta["rng_python"]
        random.setstate((v, tuple(internal), gauss))
        torch.set_rng_state(tensors["rng:torch"])
        model.action_space.np_random.bit_generator.state = meta["rng_action_space"]
    if venv is not None:
        for i, env_state in enumerate(meta["envs"]):
            venv.env_method("set_run_state", env_state, indices=[i])
    return meta


def _save_vecnormalize(venv: Any, arrays: dict[str, np.ndarray]) -> dict[str, Any] | None:
    """Put a VecNormalize's statistics into ``arrays``; return the JSON part (or None)."""
    from stable_baselines3.common.vec_env import VecNormalize

    if not isinstance(venv, VecNormalize):
        return None
    meta: dict[str, Any] = {"training": bool(venv.training), "counts": {}}
    rms = venv.obs_rms if isinstance(venv.obs_rms, dict) else {"": venv.obs_rms}
    for key, r in rms.items():
        arrays[f"vecnorm/{key}/mean"] = np.asarray(r.mean)
        arrays[f"vecnorm/{key}/var"] = np.asarray(r.var)
        meta["counts"][key] = float(r.count)
    arrays["vecnorm_ret/mean"] = np.asarray(venv.ret_rms.mean)
    arrays["vecnorm_ret/var"] = np.asarray(venv.ret_rms.var)
    meta["ret_count"] = float(venv.ret_rms.count)
    arrays["vecnorm_returns"] = np.asarray(venv.returns)
    old = getattr(venv, "old_obs", None)
    if isinstance(old, dict):
        for key, arr in old.items():
            arrays[f"vecnorm_old_obs/{key}"] = np.asarray(arr)
    elif old is not None and np.ndim(old):
        arrays["vecnorm_old_obs"] = np.asarray(old)
    return meta


def _load_vecnormalize(venv: Any, meta: Mapping[str, Any] | None, arrays: Mapping[str, np.ndarray]) -> None:
    """Restore what ``_save_vecnormalize`` stored into ``venv`` (a VecNormalize)."""
    from stable_baselines3.common.vec_env import VecNormalize

    if not isinstance(venv, VecNormalize) or meta is None:
        return
    rms = venv.obs_rms if isinstance(venv.obs_rms, dict) else {"": venv.obs_rms}
    for key, r in rms.items():
        r.mean = arrays[f"vecnorm/{key}/mean"].copy()
        r.var = arrays[f"vecnorm/{key}/var"].copy()
        r.count = float(meta["counts"][key])
    venv.ret_rms.mean = arrays["vecnorm_ret/mean"].copy()
    venv.ret_rms.var = arrays["vecnorm_ret/var"].copy()
    venv.ret_rms.count = float(meta["ret_count"])
    venv.returns = arrays["vecnorm_returns"].copy()
    old = {k.split("/", 1)[1]: v.copy() for k, v in arrays.items() if k.startswith("vecnorm_old_obs/")}
    if old:
        venv.old_obs = old
    elif "vecnorm_old_obs" in arrays:
        venv.old_obs = arrays["vecnorm_old_obs"].copy()
    venv.training = bool(meta["training"])


def _getattr_path(obj: Any, dotted: str) -> Any:
    for part in dotted.split("."):
        obj = getattr(obj, part, None)
        if obj is None:
            return None
    return obj


def _json_default(value: Any) -> Any:
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (np.floating,)):
        return float(value)
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, (set, tuple)):
        return list(value)
    raise TypeError(f"cannot serialise {type(value).__name__} to JSON")


def list_checkpoints(run_dir: str | os.PathLike[str]) -> list[Path]:
    """A run's complete checkpoints, oldest first."""
    root = Path(run_dir) / CHECKPOINT_DIR
    if not root.is_dir():
        return []
    found = [p for p in root.iterdir() if p.is_dir() and p.name.startswith("step_") and (p / "state.json").is_file()]
    return sorted(found, key=lambda p: int(p.name.split("_")[1]))


# =========================================================================================
# Demonstrations, evaluation, export
# =========================================================================================


def seed_with_demonstrations(model: Any, cfg: Mapping[str, Any], episodes: int, seed: int) -> int:
    """Add ``episodes`` scripted-expert episodes (``envs.experts``) to the replay buffer.

    Runs ``n_envs`` local envs in lockstep so the transitions have the buffer's shape; the
    env stack matches training (skill wrapper included). Returns transitions added.
    """
    from stable_baselines3.common.vec_env import DummyVecEnv

    from envs.experts import make_expert

    n = int(cfg["n_envs"])
    venv = DummyVecEnv([(lambda i=i: make_env(cfg, seed=seed + i)) for i in range(n)])
    venv.seed(seed)
    experts = [make_expert(e) for e in venv.envs]
    rb = model.replay_buffer
    added = 0
    obs = venv.reset()
    for ex in experts:
        ex.reset()
    rounds = math.ceil(episodes / n)
    for _ in range(rounds):
        done = np.zeros(n, dtype=bool)
        while not done.all():
            actions = np.stack([
                ex.act({k: v[i] for k, v in obs.items()} if isinstance(obs, dict) else obs[i])
                for i, ex in enumerate(experts)
            ]).astype(np.float32)
            actions = np.clip(actions, -1.0, 1.0)
            new_obs, rewards, dones, infos = venv.step(actions)
            next_obs = copy.deepcopy(new_obs)
            for i, d in enumerate(dones):
                if d and infos[i].get("terminal_observation") is not None:
                    if isinstance(next_obs, dict):
                        for key in next_obs:
                            next_obs[key][i] = infos[i]["terminal_observation"][key]
                    else:
                        next_obs[i] = infos[i]["terminal_observation"]
            rb.add(obs, next_obs, actions, rewards, dones, infos)
            added += n
            for i, d in enumerate(dones):
                if d:
                    experts[i].reset()
            done |= dones
            obs = new_obs
    venv.close()
    return added


def evaluate_model(
    model: Any,
    cfg: Mapping[str, Any],
    episodes: int,
    seed: int,
    video_path: str | os.PathLike[str] | None = None,
    skills: np.ndarray | None = None,
    normalize: Callable[[Any], Any] | None = None,
) -> dict[str, Any]:
    """Deterministic evaluation: success rate, safety cost per episode, per-term returns.

    With skill discovery, episode i runs skill ``skills[i % len(skills)]`` and the result
    also has the cube-displacement coverage (distinct 2 cm cells of the final minus the
    initial cube x-y, the no-displacement cell excluded). The first episode is recorded
    to ``video_path`` when given. ``normalize`` maps a raw observation to the policy's
    input (the training ``VecNormalize``'s ``normalize_obs``).
    """
    env = make_env(cfg, render=video_path is not None, monitor=False)
    norm = normalize or (lambda o: o)
    try:
        return run_episodes(lambda o: model.predict(norm(o), deterministic=True)[0], env, episodes, seed, video_path,
                            skills)
    finally:
        env.close()


def run_episodes(
    policy: Callable[[Any], np.ndarray],
    env: gym.Env,
    episodes: int,
    seed: int,
    video_path: str | os.PathLike[str] | None = None,
    skills: np.ndarray | None = None,
) -> dict[str, Any]:
    """Roll ``policy`` out for ``episodes`` episodes on ``env`` (seeds ``seed + i``) and
    summarise success, safety cost and per-term returns (see ``evaluate_model``)."""
    successes, costs, lengths = [], [], []
    returns: dict[str, list[float]] = {}
    displacements = []
    frames: list[np.ndarray] = []
    u = env.unwrapped
    objects = tuple(getattr(u, "objects", ()))
    for ep in range(episodes):
        options = {"skill": skills[ep % len(skills)]} if skills is not None else None
        obs, _ = env.reset(seed=seed + ep, options=options)
        start = u.object_pos(objects[0])[:2].copy() if objects else None
        record = video_path is not None and ep == 0
        if record:
            frames.append(env.render())
        term_sum: dict[str, float] = {}
        cost, info, steps, done = 0.0, {}, 0, False
        while not done:
            obs, _, terminated, truncated, info = env.step(policy(obs))
            steps += 1
            cost += float(info.get("safety_cost", 0.0))
            for k, v in info.get("reward_terms", {}).items():
                term_sum[k] = term_sum.get(k, 0.0) + float(v)
            if record:
                frames.append(env.render())
            done = terminated or truncated
        successes.append(float(info.get("is_success", 0.0)))
        costs.append(cost)
        lengths.append(steps)
        for k, v in term_sum.items():
            returns.setdefault(k, []).append(v)
        if start is not None:
            displacements.append(u.object_pos(objects[0])[:2] - start)
    out: dict[str, Any] = {
        "episodes": episodes,
        "success_rate": float(np.mean(successes)) if successes else 0.0,
        "safety_cost": float(np.mean(costs)) if costs else 0.0,
        "episode_length": float(np.mean(lengths)) if lengths else 0.0,
        "returns": {k: float(np.mean(v)) for k, v in returns.items()},
    }
    if displacements:
        out["coverage"] = displacement_coverage(np.asarray(displacements))
        out["mean_displacement"] = float(np.mean(np.linalg.norm(displacements, axis=1)))
    if video_path is not None and frames:
        from envs.video import write_mp4

        write_mp4(frames, video_path, fps=1.0 / float(getattr(u, "control_dt", 0.04)))
        out["video"] = str(video_path)
    return out


def displacement_coverage(displacements: np.ndarray, cell: float = COVERAGE_CELL) -> int:
    """Distinct ``cell``-sized x-y cells reached by displacements (centred cells; the cell
    around zero, i.e. "did not move the cube", is not counted)."""
    cells = {tuple(c) for c in np.floor(np.asarray(displacements)[:, :2] / cell + 0.5).astype(int).tolist()}
    cells.discard((0, 0))
    return len(cells)


def eval_skills(cfg: Mapping[str, Any], n: int) -> np.ndarray | None:
    """The skills an evaluation cycles through (``None`` without skill discovery)."""
    if not cfg.get("skill_discovery"):
        return None
    from policies.skill_discovery import make_prior

    return make_prior(cfg["skill_discovery"]).enumerate(n, seed=int(cfg["eval"]["seed"]))


def _fold_skill_actor(model: Any, skill_key: str, z: np.ndarray, vec_normalize: Any = None) -> Any:
    """Export the actor with the skill z folded into the first layer's bias (z fixed).

    z must not be normalised (``make_vec_env`` leaves the skill key out of VecNormalize).
    """
    import torch

    from policies.networks import export_sb3_actor

    ex = export_sb3_actor(model, vec_normalize=vec_normalize)
    offset, found = 0, None
    for key, shape in ex.observation_keys:
        size = int(np.prod(shape))
        if key == skill_key:
            found = (offset, size)
        offset += size
    if found is None:
        raise ValueError(f"actor has no {skill_key!r} input to fold")
    start, size = found
    w = ex.state_dict["layers.0.weight"]
    zt = torch.as_tensor(np.asarray(z, dtype=np.float32))
    ex.state_dict["layers.0.bias"] = (ex.state_dict["layers.0.bias"] + w[:, start : start + size] @ zt).contiguous()
    ex.state_dict["layers.0.weight"] = torch.cat([w[:, :start], w[:, start + size :]], dim=1).contiguous()
    ex.observation_keys = [(k, s) for k, s in ex.observation_keys if k != skill_key]
    ex.arch = {**ex.arch, "in_dim": int(ex.arch["in_dim"]) - size}
    return ex


def _save_exported(ex: Any, out_dir: Path, env: gym.Env, **kwargs: Any) -> Any:
    from skill_library.authoring import action_spec_from_env, save_network_skill
    from skill_library.manifest import ActionSpec, ObservationKey, ObservationSpec

    spaces_ = env.observation_space.spaces
    def stat(table: Any, key: str) -> tuple[float, ...] | None:
        return None if not table or key not in table else tuple(float(x) for x in np.ravel(table[key]))

    keys = [ObservationKey(k, s, str(np.dtype(spaces_[k].dtype)), stat(ex.obs_mean, k), stat(ex.obs_std, k))
            for k, s in ex.observation_keys]
    base = action_spec_from_env(env)
    action = ActionSpec(
        shape=(len(ex.action_low),), dtype=base.dtype,
        low=tuple(float(x) for x in ex.action_low), high=tuple(float(x) for x in ex.action_high),
        names=base.names, network_output="unit", noise_std=base.noise_std,
    )
    return save_network_skill(out_dir, kind="rl", env=env, arch=ex.arch, state_dict=ex.state_dict,
                              observation=ObservationSpec(tuple(keys), ex.obs_clip), action=action, **kwargs)


def export_skills(model: Any, cfg: Mapping[str, Any], run_dir: str | os.PathLike[str],
                  final_eval: Mapping[str, Any] | None = None, command: str | None = None,
                  vec_normalize: Any = None) -> list[dict[str, Any]]:
    """Package the trained policy as skill(s) with provenance and evaluated descriptors.

    One package, or one per skill z for skill discovery (z folded into the network so the
    skill runs on the plain env). Packages go to ``<run_dir>/skills/`` and, unless
    ``export.add_to_library`` is false, into the skill library (``export.library`` or
    ``$SKILLSTACK_LIBRARY``). Returns one record per package.
    """
    import envs
    from skill_library.authoring import new_provenance
    from skill_library.descriptors import attach_descriptors, evaluate_skill
    from skill_library.package import rewrite_manifest
    from skill_library.registry import SkillLibrary
    from skill_library.skill import load_skill

    exp = cfg["export"]
    name = str(exp.get("name") or cfg["experiment"]).replace("-", "_")
    version = str(exp.get("version", "0.1.0"))
    env = envs.make(cfg["env_id"], **dict(cfg.get("env_kwargs") or {}))
    out_root = Path(run_dir) / "skills"
    records = []
    sd = cfg.get("skill_discovery")
    if sd:
        from policies.skill_discovery import make_prior

        prior = make_prior(sd)
        n = int(exp.get("skills", 8))
        zs = prior.enumerate(min(n, prior.skill_dim) if prior.kind == "discrete" else n, seed=int(cfg["seed"]))
        items = [(f"{name}_z{i}", z) for i, z in enumerate(zs)]
    else:
        items = [(name, None)]
    common_prov = dict(command=command, config=_jsonable(cfg), seed=int(cfg["seed"]), env_steps=int(model.num_timesteps))
    for skill_name, z in items:
        if z is None:
            from policies.networks import export_sb3_actor

            ex = export_sb3_actor(model, vec_normalize=vec_normalize)
        else:
            ex = _fold_skill_actor(model, sd.get("skill_key", "skill"), z, vec_normalize)
        eval_info = dict(final_eval or {})
        if z is not None:
            eval_info = {"skill": [float(x) for x in z]}
        pkg = out_root / skill_name
        manifest = _save_exported(
            ex, pkg, env, name=skill_name, version=version,
            description=str(exp.get("description") or f"{cfg['algo']} policy trained by skillstack ({cfg['experiment']})"),
            tags=("rl", cfg["algo"]) + (("skill_discovery",) if z is not None else ()),
            preconditions=tuple(exp.get("preconditions") or ()), effects=tuple(exp.get("effects") or ()),
            provenance=new_provenance(eval=_jsonable(eval_info), **common_prov), overwrite=True,
        )
        desc_cfg = exp.get("descriptors") or {}
        if desc_cfg:
            skill = load_skill(pkg)
            desc = evaluate_skill(skill, grid=desc_cfg.get("grid", 2),
                                  episodes_per_cell=int(desc_cfg.get("episodes_per_cell", 2)), seed=int(cfg["seed"]))
            manifest = rewrite_manifest(pkg, attach_descriptors(manifest, desc))
        record = {"name": skill_name, "version": version, "path": str(pkg)}
        if exp.get("add_to_library", True):
            entry = SkillLibrary(exp.get("library")).add(pkg, force=True)
            record["library"] = str(entry.path)
        records.append(record)
    env.close()
    return records


def _jsonable(value: Any) -> Any:
    return json.loads(json.dumps(value, default=_json_default))


# =========================================================================================
# The training loop
# =========================================================================================


class _ProgressCallback:
    """SB3 callback factory: a tqdm bar over env steps (kept across learn() chunks)."""

    def __init__(self, total: int, initial: int, enabled: bool) -> None:
        self.bar = None
        if enabled:
            from tqdm import tqdm

            self.bar = tqdm(total=total, initial=initial, unit="step", dynamic_ncols=True, file=sys.stderr)

    def make(self, total_timesteps: int) -> Any:
        """A fresh SB3 callback for one learn() chunk of a run of ``total_timesteps``."""
        from stable_baselines3.common.callbacks import BaseCallback

        outer = self

        class _CB(BaseCallback):
            def _on_training_start(self) -> None:
                # Progress (learning-rate schedules) against the run's total, not the chunk's.
                self.model._total_timesteps = total_timesteps

            def _on_step(self) -> bool:
                if outer.bar is not None:
                    outer.bar.update(self.model.n_envs)
                return True

        return _CB()

    def postfix(self, **kw: Any) -> None:
        """Show values (last evaluation) next to the bar."""
        if self.bar is not None:
            self.bar.set_postfix(**kw)

    def close(self) -> None:
        """Close the bar."""
        if self.bar is not None:
            self.bar.close()


def _freq(cfg: Mapping[str, Any], section: str) -> int:
    """A section's frequency in env steps, rounded down to whole vectorised steps (0 = off)."""
    freq, n = int(cfg[section]["freq"]), int(cfg["n_envs"])
    return max(n, freq - freq % n) if freq > 0 else 0


def _boundaries(cfg: Mapping[str, Any]) -> list[int]:
    """Env-step counts where training pauses (evaluation, checkpoint, the end). A fresh and
    a resumed run advance through the same boundaries, which keeps them identical."""
    total = int(cfg["total_timesteps"])
    points = {total}
    for section in ("eval", "checkpoint"):
        freq = _freq(cfg, section)
        if freq > 0:
            points.update(range(freq, total, freq))
    return sorted(points)


def _write_json_atomic(path: Path, payload: Any) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    with os.fdopen(fd, "w") as fh:
        json.dump(payload, fh, indent=2, default=_json_default)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def _append_jsonl(path: Path, row: Mapping[str, Any]) -> None:
    with open(path, "a") as fh:
        fh.write(json.dumps(row, default=_json_default) + "\n")
        fh.flush()
        os.fsync(fh.fileno())


def default_run_dir(cfg: Mapping[str, Any]) -> Path:
    """``<runs_dir>/<experiment>/seed<seed>-<YYYYmmdd-HHMMSS>``."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    return Path(cfg["runs_dir"]) / str(cfg["experiment"]) / f"seed{cfg['seed']}-{stamp}"


def train(
    config: str | os.PathLike[str] | Mapping[str, Any],
    overrides: Sequence[str] = (),
    run_dir: str | os.PathLike[str] | None = None,
    resume: bool = False,
    progress: bool = True,
    export: bool | None = None,
    command: str | None = None,
    stop_after: int | None = None,
) -> Path:
    """Train the experiment a config describes; returns the run directory.

    :param config: YAML path, run directory (its ``config.yaml``) or mapping.
    :param overrides: ``key.sub=value`` strings applied on top.
    :param run_dir: where the run lives (default ``default_run_dir``).
    :param resume: continue from the latest checkpoint in ``run_dir`` (its saved config
        wins over ``config``; overrides still apply).
    :param progress: show a progress bar.
    :param export: override ``export.enabled``.
    :param command: command line recorded in the skills' provenance.
    :param stop_after: stop (without final evaluation/export) once this many env steps
        are done, as if the process had been killed there (tests, staged runs).
    """
    import torch

    if resume:
        if run_dir is None:
            src = Path(config) if not isinstance(config, Mapping) else None
            if src is None or not (src / CONFIG_FILE).is_file():
                raise ValueError("resume needs the run directory (pass run_dir or a run directory as config)")
            run_dir = src
        saved = Path(run_dir) / CONFIG_FILE
        if not saved.is_file():
            raise FileNotFoundError(f"{run_dir}: no {CONFIG_FILE}; nothing to resume")
        cfg = load_config(saved, overrides)
    else:
        cfg = load_config(config, overrides)
    out = Path(run_dir) if run_dir is not None else default_run_dir(cfg)
    out.mkdir(parents=True, exist_ok=True)
    (out / "videos").mkdir(exist_ok=True)
    cfg_path = out / CONFIG_FILE
    if not resume or not cfg_path.exists():
        tmp = cfg_path.with_suffix(".tmp")
        tmp.write_text(yaml.safe_dump(cfg, sort_keys=False))
        os.replace(tmp, cfg_path)

    if cfg.get("torch_threads"):
        torch.set_num_threads(int(cfg["torch_threads"]))
    keep_freed_memory()  # no page-faulting of activations every update (see policies.cpu_allocator)
    seed = int(cfg["seed"])
    venv = make_vec_env(cfg)
    tb = str(out / "tb") if _have_tensorboard() else None
    model = build_model(cfg, venv, tensorboard_log=tb)
    checkpoints = list_checkpoints(out) if resume else []
    timing = {"train_s": 0.0, "eval_s": 0.0, "demo_s": 0.0}
    if checkpoints:
        meta = load_checkpoint(model, venv, checkpoints[-1])
        timing.update(meta.get("extra", {}).get("timing", {}))
    else:
        if resume:
            print(f"{out}: no checkpoint yet; starting from scratch", file=sys.stderr)
            (out / EVAL_FILE).unlink(missing_ok=True)
        model.set_random_seed(seed)
        demo = cfg.get("demonstrations") or {}
        if int(demo.get("episodes", 0)) > 0:
            t0 = time.perf_counter()
            n_demo = seed_with_demonstrations(model, cfg, int(demo["episodes"]), int(demo.get("seed", 12345)) + seed)
            timing["demo_s"] = time.perf_counter() - t0
            timing["demo_transitions"] = n_demo
        # Reset the env here (not inside learn) so that a fresh run and a resumed run
        # reach their first learn() chunk in the same state.
        model._last_obs = venv.reset()
        model._last_episode_starts = np.ones((venv.num_envs,), dtype=bool)
        if obs_normalizer(venv) is not None:
            model._last_original_obs = venv.get_original_obs()
    total = int(cfg["total_timesteps"])
    bar = _ProgressCallback(total, int(model.num_timesteps), progress)
    eval_cfg, ck_cfg = cfg["eval"], cfg["checkpoint"]
    skills = eval_skills(cfg, int(eval_cfg.get("coverage_skills", 64)))
    last_eval: dict[str, Any] | None = None
    try:
        for boundary in _boundaries(cfg):
            if boundary <= model.num_timesteps:
                continue
            if stop_after is not None and model.num_timesteps >= stop_after:
                return out
            t0 = time.perf_counter()
            model.learn(boundary - model.num_timesteps, callback=bar.make(total), reset_num_timesteps=False,
                        log_interval=int(cfg.get("log_interval", 10)), tb_log_name="run", progress_bar=False)
            timing["train_s"] += time.perf_counter() - t0
            step = int(model.num_timesteps)
            eval_freq, ck_freq = _freq(cfg, "eval"), _freq(cfg, "checkpoint")
            if (eval_freq and step % eval_freq == 0) or step >= total:
                t0 = time.perf_counter()
                want_video = eval_cfg.get("video") is True or (eval_cfg.get("video") == "final" and step >= total)
                video = out / "videos" / f"eval_{step:08d}.mp4" if want_video else None
                n_eval = int(eval_cfg["episodes"]) if skills is None else max(int(eval_cfg["episodes"]), len(skills))
                res = evaluate_model(model, cfg, n_eval, int(eval_cfg["seed"]), video, skills, obs_normalizer(venv))
                timing["eval_s"] += time.perf_counter() - t0
                row = {"step": step, "wall_s": timing["train_s"] + timing["demo_s"], **res}
                _append_jsonl(out / EVAL_FILE, row)
                _record_eval(model, res)
                last_eval = row
                bar.postfix(success=f"{res['success_rate']:.2f}", cost=f"{res['safety_cost']:.2f}")
            if (ck_freq and step % ck_freq == 0) or step >= total:
                save_checkpoint(model, venv, out / CHECKPOINT_DIR / f"step_{step:08d}", extra={"timing": timing})
                for old in list_checkpoints(out)[: -max(1, int(ck_cfg.get("keep", 2)))]:
                    shutil.rmtree(old, ignore_errors=True)
            model.logger.close()  # learn() opens a fresh logger (same TensorBoard folder) per chunk
        if stop_after is not None and model.num_timesteps >= stop_after and model.num_timesteps < total:
            return out
        summary: dict[str, Any] = {
            "experiment": cfg["experiment"], "algo": cfg["algo"], "seed": seed, "env_id": cfg["env_id"],
            "env_steps": int(model.num_timesteps), "final_eval": last_eval, "timing": timing,
            "steps_to_success": _steps_to(out / EVAL_FILE, 0.95),
        }
        do_export = cfg["export"].get("enabled", True) if export is None else export
        if do_export:
            vn = venv if obs_normalizer(venv) is not None else None
            summary["skills"] = export_skills(model, cfg, out, final_eval=last_eval, command=command, vec_normalize=vn)
        _write_json_atomic(out / SUMMARY_FILE, summary)
    finally:
        bar.close()
        venv.close()
    return out


def _record_eval(model: Any, res: Mapping[str, Any]) -> None:
    model.logger.record("eval/success_rate", res["success_rate"])
    model.logger.record("eval/safety_cost", res["safety_cost"])
    for k, v in res.get("returns", {}).items():
        model.logger.record(f"eval/return_{k}", v)
    if "coverage" in res:
        model.logger.record("eval/coverage", res["coverage"])
    model.logger.dump(model.num_timesteps)


def _have_tensorboard() -> bool:
    try:
        import tensorboard  # noqa: F401
    except ImportError:
        return False
    return True


def read_eval_log(run_dir: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """The evaluation rows of a run (``eval.jsonl``), oldest first."""
    path = Path(run_dir) / EVAL_FILE
    if not path.is_file():
        raise FileNotFoundError(f"{run_dir}: no {EVAL_FILE} (has the run evaluated yet?)")
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _steps_to(eval_path: Path, threshold: float) -> int | None:
    if not eval_path.is_file():
        return None
    for line in eval_path.read_text().splitlines():
        row = json.loads(line)
        if row.get("success_rate", 0.0) >= threshold:
            return int(row["step"])
    return None


def load_run_model(run_dir: str | os.PathLike[str]) -> tuple[Any, dict[str, Any], Callable[[Any], Any] | None]:
    """Rebuild a run's policy from its config and latest checkpoint (for ``skillstack eval``).

    Returns the model (policy weights loaded, ``num_timesteps`` set), the config, and the
    observation normaliser the policy expects (``None`` when the run does not normalise).
    """
    cfg = load_config(Path(run_dir) / CONFIG_FILE)
    cks = list_checkpoints(run_dir)
    if not cks:
        raise FileNotFoundError(f"{run_dir}: no checkpoint to load")
    cfg_one = {**cfg, "n_envs": 1, "vec_env": "dummy", "her": None,
               "algo_kwargs": {**cfg["algo_kwargs"], "buffer_size": 1, "learning_starts": 0}}
    venv = make_vec_env(cfg_one)
    model = build_model(cfg_one, venv)
    _load_policy_only(model, cks[-1])
    meta = json.loads((cks[-1] / "state.json").read_text())
    model.num_timesteps = int(meta["num_timesteps"])
    with np.load(cks[-1] / "replay.npz", allow_pickle=False) as data:
        arrays = {k: data[k] for k in data.files if k.startswith("vecnorm")}
    _load_vecnormalize(venv, meta.get("vec_normalize"), arrays)
    normalize = obs_normalizer(venv)
    if normalize is not None:
        venv.training = False
    return model, cfg, normalize


def _load_policy_only(model: Any, path: Path) -> None:
    from safetensors.torch import load_file

    tensors = load_file(str(path / "model.safetensors"))
    sd = {k[len("sd:policy/"):]: v for k, v in tensors.items() if k.startswith("sd:policy/")}
    model.policy.load_state_dict(sd)


# =========================================================================================
# Learning curves
# =========================================================================================


def plot_runs(
    runs: Sequence[str | os.PathLike[str]], out: str | os.PathLike[str], labels: Sequence[str] | None = None
) -> Path:
    """Plot the evaluation curves of runs to a PNG (written atomically); returns its path.

    Panels: success rate; the episodic return of every reward term (each critic's
    return); safety cost per episode; coverage when the runs discover skills.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if labels is not None and len(labels) != len(runs):
        raise ValueError(f"{len(labels)} labels for {len(runs)} runs")
    data = [(labels[i] if labels else Path(r).name, read_eval_log(r)) for i, r in enumerate(runs)]
    terms = sorted({k for _, rows in data for row in rows for k in row.get("returns", {})})
    has_cov = any("coverage" in row for _, rows in data for row in rows)
    panels = ["success_rate", *[f"return:{t}" for t in terms], "safety_cost"] + (["coverage"] if has_cov else [])
    cols = min(3, len(panels))
    nrows = math.ceil(len(panels) / cols)
    fig, axes = plt.subplots(nrows, cols, figsize=(4.5 * cols, 3.2 * nrows), squeeze=False)
    for ax, panel in zip(axes.flat, panels):
        for label, rows in data:
            steps = [r["step"] for r in rows]
            if panel.startswith("return:"):
                ys = [r.get("returns", {}).get(panel[7:], float("nan")) for r in rows]
                ax.set_title(f"return of term '{panel[7:]}' (its critic)")
            else:
                ys = [r.get(panel, float("nan")) for r in rows]
                ax.set_title({"success_rate": "success rate", "safety_cost": "safety cost / episode",
                              "coverage": "cube-displacement coverage (2 cm cells)"}[panel])
            ax.plot(steps, ys, marker="o", ms=3, label=label)
        ax.set_xlabel("env steps")
        ax.grid(alpha=0.3)
    for ax in list(axes.flat)[len(panels):]:
        ax.axis("off")
    axes.flat[0].legend(fontsize=7)
    fig.tight_layout()
    path = Path(out)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}.", suffix=".png")
    os.close(fd)
    try:
        fig.savefig(tmp, dpi=100)
        os.replace(tmp, path)
    finally:
        plt.close(fig)
        if os.path.exists(tmp):
            os.unlink(tmp)
    return path


# =========================================================================================
# Learning benchmark (used by bench/training.py --suite learning)
# =========================================================================================

CONFIG_DIR = Path(__file__).resolve().parent.parent / "configs"


LEARNING_PLANS: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    ("reach", "reach.yaml", ()),
    ("push", "push.yaml", ()),
    ("skills_slim_shared", "push_skills.yaml", ("algo_kwargs.critic_layout=shared",)),
    ("skills_slim_separate", "push_skills.yaml", ("algo_kwargs.critic_layout=separate",)),
    ("skills_naive_sum", "push_skills.yaml", ("algo=sac",)),
)


def learning_benchmark(seeds: int = 3, scale: float = 1.0, threads: int | None = 1,
                       runs_dir: str | os.PathLike[str] | None = None, only: Sequence[str] | None = None,
                       overrides: Sequence[str] = ()) -> dict[str, Any]:
    """Run the shipped configs over seeds and summarise learning (success, steps, minutes,
    coverage, safety cost). ``scale`` multiplies the step budgets (quick looks); ``only``
    picks experiments by label (see ``LEARNING_PLANS``); ``overrides`` apply to every run."""
    root = Path(runs_dir) if runs_dir else Path(tempfile.mkdtemp(prefix="skillstack-learning-"))
    plans = [p for p in LEARNING_PLANS if only is None or p[0] in only]
    if not plans:
        raise ValueError(f"no learning experiment matches {only}; labels: {[p[0] for p in LEARNING_PLANS]}")
    runs: dict[str, list[dict[str, Any]]] = {}
    for label, cfg_name, extra in plans:
        base = load_config(CONFIG_DIR / cfg_name)
        for s in range(seeds):
            ov = [*extra, f"seed={s}", f"total_timesteps={max(200, int(base['total_timesteps'] * scale))}",
                  "export.enabled=false", "eval.video=false", *overrides]
            if threads:
                ov.append(f"torch_threads={threads}")
            t0 = time.perf_counter()
            run = train(CONFIG_DIR / cfg_name, overrides=ov, run_dir=root / label / f"seed{s}", progress=False)
            wall = time.perf_counter() - t0
            summary = json.loads((run / SUMMARY_FILE).read_text())
            rows = read_eval_log(run)
            final = summary.get("final_eval") or {}
            runs.setdefault(label, []).append({
                "seed": s, "wall_min": wall / 60.0, "steps": summary["env_steps"],
                "success": final.get("success_rate"), "safety_cost": final.get("safety_cost"),
                "coverage": final.get("coverage"), "steps_to_95": summary.get("steps_to_success"),
                "curve": [(r["step"], r["success_rate"]) for r in rows],
            })
    summary_table = {}
    print(f"\n{'experiment':<24}{'seeds':>6}{'success':>9}{'steps':>8}{'min':>7}{'coverage':>10}{'cost/ep':>9}")
    for label, rs in runs.items():
        def mean(key: str) -> float | None:
            vals = [r[key] for r in rs if r.get(key) is not None]
            return float(np.mean(vals)) if vals else None
        summary_table[label] = {"success_mean": mean("success"), "wall_min_mean": mean("wall_min"),
                                "coverage_mean": mean("coverage"), "safety_cost_mean": mean("safety_cost"),
                                "steps": rs[0]["steps"]}
        row = summary_table[label]
        fmt = lambda v, f: (f.format(v) if v is not None else "-")  # noqa: E731
        print(f"{label:<24}{len(rs):>6}{fmt(row['success_mean'], '{:.2f}'):>9}{row['steps']:>8}"
              f"{fmt(row['wall_min_mean'], '{:.1f}'):>7}{fmt(row['coverage_mean'], '{:.1f}'):>10}"
              f"{fmt(row['safety_cost_mean'], '{:.2f}'):>9}")
    return {"runs": runs, "summary": summary_table, "runs_dir": str(root)}


__all__ = [
    "DEFAULT_CONFIG",
    "RunStateWrapper",
    "apply_overrides",
    "build_model",
    "default_run_dir",
    "displacement_coverage",
    "evaluate_model",
    "export_skills",
    "learning_benchmark",
    "list_checkpoints",
    "load_checkpoint",
    "load_config",
    "load_run_model",
    "make_env",
    "make_vec_env",
    "obs_normalizer",
    "plot_runs",
    "read_eval_log",
    "run_episodes",
    "save_checkpoint",
    "seed_with_demonstrations",
    "train",
]
