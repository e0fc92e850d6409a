"""Resumable checkpoints without pickle, and a run's policy rebuilt from its latest one.

A checkpoint directory ``checkpoints/step_N/`` holds everything that makes a resumed run
identical to an uninterrupted one: ``model.safetensors`` (every state dict SB3 would save,
optimizer tensors, the torch RNG), ``replay.npz`` (the replay buffer, the last observation,
VecNormalize statistics, numpy's RNG) and ``state.json`` (counters, optimizer
hyper-parameters, each env's state, the other RNGs). Tensors load from safetensors, arrays
from ``np.load(allow_pickle=False)``, the rest from JSON.
"""

from __future__ import annotations

import copy
import json
import os
import random
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from common.atomic import atomic_path, atomic_write_json, staged_dir
from policies.training.config import CONFIG_FILE, TrainConfig, load_config
from policies.training.env_factory import make_vec_env, obs_normalizer
from policies.training.model import build_model
from policies.training.run_files import CHECKPOINT_DIR, json_default

__all__ = ["list_checkpoints", "load_checkpoint", "load_run_model", "rebuild_run", "save_checkpoint"]


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


def _last_obs_arrays(model: Any, arrays: dict[str, np.ndarray]) -> None:
    """The learner's pending observation (and its unnormalised copy) into ``arrays``."""
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


def save_checkpoint(model: Any, venv: Any, path: str | os.PathLike[str], extra: Mapping[str, Any] | None = None) -> Path:
    """Write a resumable checkpoint directory atomically (staged beside it, then swapped in).

    ``model.safetensors``: every state dict SB3 would save (policy, optimizers, entropy
    coefficient, value scales, skill model) and the torch RNG; ``replay.npz``: the replay
    buffer, the last observation, numpy's global RNG; ``state.json``: counters, optimizer
    hyper-parameters, env states, the other RNGs.
    """
    import torch
    from safetensors.torch import save_file

    out = Path(path)
    with staged_dir(out) as tmp:
        tensors: dict[str, Any] = {}
        meta: dict[str, Any] = {"format": "skillstack-checkpoint", "format_version": 1, "optimizers": {}}
        for name, obj in _state_dict_holders(model):
            if isinstance(obj, torch.optim.Optimizer):
                meta["optimizers"][name] = _flatten_optimizer(f"opt:{name}", obj.state_dict(), tensors)
            else:
                for key, value in obj.state_dict().items():
                    tensors[f"sd:{name}/{key}"] = value.detach().cpu().contiguous()
        for name in model._get_torch_save_params()[1]:
            tensors[f"var:{name}"] = _getattr_path(model, name).detach().cpu().reshape(-1).contiguous()
        tensors["rng:torch"] = torch.get_rng_state()
        with atomic_path(tmp / "model.safetensors", suffix=".safetensors") as f:
            save_file(tensors, str(f))

        arrays = {f"rb:{k}": v for k, v in _rb_arrays(model.replay_buffer).items()}
        _last_obs_arrays(model, arrays)
        vn_meta = _save_vecnormalize(venv, arrays)
        np_state = np.random.get_state()
        arrays["rng:numpy_keys"] = np.asarray(np_state[1])
        with atomic_path(tmp / "replay.npz", suffix=".npz") as f:
            np.savez(f, **arrays)

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
        atomic_write_json(tmp / "state.json", meta, indent=None, default=json_default)
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
    for name, obj in _state_dict_holders(model):
        if isinstance(obj, torch.optim.Optimizer):
            obj.load_state_dict(_unflatten_optimizer(meta["optimizers"][name], tensors))
        else:
            prefix = f"sd:{name}/"
            obj.load_state_dict({k[len(prefix):]: v for k, v in tensors.items() if k.startswith(prefix)})
    for name in model._get_torch_save_params()[1]:
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


def _state_dict_holders(model: Any) -> list[tuple[str, Any]]:
    """The (name, module or optimizer) pairs whose state dicts SB3 saves (absent ones skipped)."""
    pairs = [(name, _getattr_path(model, name)) for name in model._get_torch_save_params()[0]]
    return [(name, obj) for name, obj in pairs if obj is not None]


def _getattr_path(obj: Any, dotted: str) -> Any:
    for part in dotted.split("."):
        obj = getattr(obj, part, None)
        if obj is None:
            return None
    return obj


def list_checkpoints(run_dir: str | os.PathLike[str]) -> list[Path]:
    """A run's complete checkpoints, oldest first."""
    root = Path(run_dir) / CHECKPOINT_DIR
    if not root.is_dir():
        return []
    found = [p for p in root.iterdir() if p.is_dir() and p.name.startswith("step_") and (p / "state.json").is_file()]
    return sorted(found, key=lambda p: int(p.name.split("_")[1]))


def rebuild_run(run_dir: str | os.PathLike[str]) -> tuple[Any, TrainConfig, Any]:
    """A run's policy rebuilt from its config and latest checkpoint, for acting (a
    one-transition buffer, no learning): ``(model, config, venv)``. ``venv`` is the run's
    one-env VecEnv with the checkpoint's VecNormalize statistics (frozen); close it when done.
    """
    from dataclasses import replace

    cfg = load_config(Path(run_dir) / CONFIG_FILE)
    cks = list_checkpoints(run_dir)
    if not cks:
        raise FileNotFoundError(f"{run_dir}: no checkpoint to load")
    cfg_one = replace(cfg, n_envs=1, vec_env="dummy", her=None,
                      algo_kwargs={**cfg.algo_kwargs, "buffer_size": 1, "learning_starts": 0})
    venv = make_vec_env(cfg_one)
    model = build_model(cfg_one, venv)
    _load_policy_only(model, cks[-1])
    meta = json.loads((cks[-1] / "state.json").read_text())
    model.num_timesteps = int(meta["num_timesteps"])
    with np.load(cks[-1] / "replay.npz", allow_pickle=False) as data:
        arrays = {k: data[k] for k in data.files if k.startswith("vecnorm")}
    _load_vecnormalize(venv, meta.get("vec_normalize"), arrays)
    if obs_normalizer(venv) is not None:
        venv.training = False
    return model, cfg, venv


def load_run_model(run_dir: str | os.PathLike[str]) -> tuple[Any, TrainConfig, Callable[[Any], Any] | None]:
    """Rebuild a run's policy from its config and latest checkpoint (for ``skillstack eval``).

    Returns the model (policy weights loaded, ``num_timesteps`` set), the config, and the
    observation normaliser the policy expects (``None`` when the run does not normalise).
    """
    model, cfg, venv = rebuild_run(run_dir)
    return model, cfg, obs_normalizer(venv)


def _load_policy_only(model: Any, path: Path) -> None:
    from safetensors.torch import load_file

    tensors = load_file(str(path / "model.safetensors"))
    prefix = "sd:policy/"
    model.policy.load_state_dict({k[len(prefix):]: v for k, v in tensors.items() if k.startswith(prefix)})
