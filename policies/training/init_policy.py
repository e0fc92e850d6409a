"""Start a run's actor from a published skill package: fine-tuning instead of training from scratch.

A skill package (`manifest.json` + `weights.safetensors`, written by `skill_library.publish_run`
from `policies.networks.export_sb3_actor`) holds the deterministic action path of a SAC actor,
`tanh(mu(latent_pi(x)))`, as an `mlp` network, plus the observation statistics it was trained
with. `init_from_package` copies those layers into the new model's actor and the statistics into
the run's `VecNormalize`, so on the first step the run acts as the skill does; the critics, the
log-std head and the entropy coefficient start fresh. The package is read as data (JSON and
safetensors); the CLI resolves a library reference and verifies the package before it gets here.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["InitPolicyError", "init_from_package"]


class InitPolicyError(ValueError):
    """The package cannot start this run (wrong kind, network shape, observation keys or sizes)."""


def init_from_package(model: Any, venv: Any, package: str | Path) -> dict[str, Any]:
    """Copy the package's policy network into `model`'s actor (and its observation statistics into
    `venv`'s VecNormalize); returns what was loaded (for the run's summary). InitPolicyError names
    the mismatch when the package's network or observations do not fit the run."""
    import torch
    from safetensors.torch import load_file
    from torch import nn

    pkg = Path(package)
    manifest_path, weights_path = pkg / "manifest.json", pkg / "weights.safetensors"
    if not manifest_path.is_file() or not weights_path.is_file():
        raise InitPolicyError(f"{pkg}: not a skill package (needs manifest.json and weights.safetensors)")
    manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    net = manifest.get("network", {})
    if manifest.get("kind") != "rl" or net.get("type") != "mlp" or net.get("output_activation") != "tanh":
        raise InitPolicyError(f"{pkg}: {manifest.get('name')!r} is a {manifest.get('kind')!r} skill with a "
                              f"{net.get('type')!r} network; --init takes an RL skill's tanh MLP policy")
    actor = model.policy.actor
    layers = [m for m in actor.latent_pi.modules() if isinstance(m, nn.Linear)] + [actor.mu]
    shapes = [(int(lin.out_features), int(lin.in_features)) for lin in layers]
    weights = load_file(str(weights_path))
    want = [tuple(weights[f"layers.{i}.weight"].shape) for i in range(len(weights) // 2)]
    if want != shapes:
        raise InitPolicyError(f"{pkg}: the skill's layers {want} do not fit the run's actor {shapes} "
                              "(set algo_kwargs.policy_kwargs.net_arch to the skill's hidden sizes, "
                              f"{net.get('hidden')}, and the same observation layout)")
    _check_observations(manifest, venv, pkg)
    with torch.no_grad():
        for i, lin in enumerate(layers):
            lin.weight.copy_(weights[f"layers.{i}.weight"])
            lin.bias.copy_(weights[f"layers.{i}.bias"])
    loaded_stats = _load_obs_statistics(manifest, venv)
    return {"package": str(pkg), "skill": f"{manifest.get('name')}@{manifest.get('version')}",
            "trained_on": manifest.get("embodiment", {}).get("robot"), "obs_statistics": loaded_stats}


def _check_observations(manifest: dict[str, Any], venv: Any, pkg: Path) -> None:
    """The package's observation keys and sizes must be the run's (same layout and task)."""
    from gymnasium import spaces

    space = venv.observation_space
    run = ({k: tuple(s.shape) for k, s in space.spaces.items()} if isinstance(space, spaces.Dict)
           else {"observation": tuple(space.shape)})
    skill = {k["name"]: tuple(k["shape"]) for k in manifest.get("observation", {}).get("keys", [])}
    if skill != {k: v for k, v in run.items() if k in skill} or set(skill) != set(run):
        raise InitPolicyError(f"{pkg}: the skill reads observations {skill}, the run's env gives {run} "
                              "(same task and obs_layout needed)")


def _load_obs_statistics(manifest: dict[str, Any], venv: Any) -> bool:
    """Set the run's VecNormalize mean/var to the skill's (std^2 - eps), so its inputs mean the same."""
    from stable_baselines3.common.vec_env import VecNormalize

    keys = manifest.get("observation", {}).get("keys", [])
    if not isinstance(venv, VecNormalize) or not venv.norm_obs or not any("mean" in k for k in keys):
        return False
    eps = float(venv.epsilon)
    for k in keys:
        if "mean" not in k:
            continue
        rms = venv.obs_rms[k["name"]] if isinstance(venv.obs_rms, dict) else venv.obs_rms
        rms.mean = np.asarray(k["mean"], dtype=np.float64)
        rms.var = np.maximum(np.asarray(k["std"], dtype=np.float64) ** 2 - eps, 0.0)
        rms.count = 1e4  # weight of the skill's statistics against the new robot's running ones
    return True
