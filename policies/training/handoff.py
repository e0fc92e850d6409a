"""What a finished run hands to the layer above: its policy as plain networks.

Training (layer 3) does no library I/O. ``load_trained_run(run_dir)`` rebuilds the run's
final policy from its latest checkpoint and returns it as ``ExportedActor`` networks (the
deterministic action path, observation keys with their normalisation statistics, action
bounds), one per skill z for skill discovery (z folded into the first layer, so the skill
runs on the plain env), with the names and evaluation the publisher records.
``skill_library.publish_run`` turns them into skill packages.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from policies.training.checkpoint import rebuild_run
from policies.training.config import TrainConfig
from policies.training.env_factory import obs_normalizer
from policies.training.run_files import SUMMARY_FILE, read_summary

__all__ = ["TrainedPolicy", "TrainedRun", "load_trained_run", "trained_policies"]


@dataclass
class TrainedPolicy:
    """One network a run trained: ``name`` (the skill name to publish it under), the
    exported actor (``policies.networks.ExportedActor``), the skill z it was folded with
    (``None`` without skill discovery) and the evaluation to record with it."""

    name: str
    network: Any
    skill: list[float] | None = None
    eval: dict[str, Any] = field(default_factory=dict)


@dataclass
class TrainedRun:
    """A finished run's hand-off: its folder, resolved config, env steps and policies."""

    run_dir: Path
    config: TrainConfig
    env_steps: int
    final_eval: dict[str, Any] | None
    policies: list[TrainedPolicy]


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


def trained_policies(model: Any, cfg: TrainConfig, vec_normalize: Any = None,
                     final_eval: dict[str, Any] | None = None) -> list[TrainedPolicy]:
    """The networks to publish from a trained ``model``: one, named ``export.name`` (default
    the experiment), or ``export.skills`` skills ``<name>_z<i>`` for skill discovery."""
    from policies.networks import export_sb3_actor

    name = str(cfg.export.name or cfg.experiment).replace("-", "_")
    if cfg.skill_discovery is None:
        return [TrainedPolicy(name, export_sb3_actor(model, vec_normalize=vec_normalize), None, dict(final_eval or {}))]
    from policies.skill_discovery import make_prior

    prior = make_prior(cfg.skill_discovery)
    n = min(cfg.export.skills, prior.skill_dim) if prior.kind == "discrete" else cfg.export.skills
    zs = prior.enumerate(n, seed=cfg.seed)
    out = []
    for i, z in enumerate(zs):
        skill = [float(x) for x in z]
        out.append(TrainedPolicy(f"{name}_z{i}", _fold_skill_actor(model, cfg.skill_key, z, vec_normalize), skill,
                                 {"skill": skill}))
    return out


def load_trained_run(run_dir: str | os.PathLike[str]) -> TrainedRun:
    """The policies of a finished run (its ``summary.json`` and latest checkpoint)."""
    run = Path(run_dir)
    if not (run / SUMMARY_FILE).is_file():
        raise FileNotFoundError(f"{run}: no {SUMMARY_FILE}; the run has not finished, nothing to hand over")
    summary = read_summary(run)
    model, cfg, venv = rebuild_run(run)
    try:
        vec_normalize = venv if obs_normalizer(venv) is not None else None
        policies = trained_policies(model, cfg, vec_normalize, summary.get("final_eval"))
    finally:
        venv.close()
    return TrainedRun(run, cfg, int(model.num_timesteps), summary.get("final_eval"), policies)
