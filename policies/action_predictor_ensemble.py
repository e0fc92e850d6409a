"""Several action predictors, trained from different seeds, scored as one.

Why: the SBD rule reads the *rise* of one predictor's loss. A single predictor also rises
where it happens to be unsure (its own seed's quirks), and those rises differ from seed to
seed, while the rises at real skill switches are shared. Averaging the members' losses
-log p_i(a_t | o_<=t) keeps the shared rises and damps the idiosyncratic ones, so the
boundary rule sees fewer spurious peaks (deep-ensemble style; measured in `bench sbd`).

`ActionPredictorEnsemble` has the inference API the detector and segmenter use
(`config`, `check_inputs`, `embed`, `step_logits`, `step_features`, `nll`,
`episode_losses`, `predict_actions`): tokens are ``(T, M, d_model)`` (every member's own
tokens), logits ``(M, n, action_dim, n_bins)``, and `nll` is the members' mean.

On disk (``save_ensemble`` / ``load_ensemble``, also reached through
`policies.action_predictor_store.save_action_predictor` / `load_action_predictor`): a directory
with ``config.json`` (``type: action_predictor_ensemble``, the member count) and one
action-predictor directory per member, ``member_0``, ``member_1``, ...
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from common.atomic import atomic_write_bytes
from policies.action_predictor_model import (
    CONFIG_FILE,
    WEIGHTS_FILE,
    ActionPredictor,
    ActionPredictorConfig,
    EpisodeScoring,
    load_single_predictor,
    remove_member_dirs,
    save_single_predictor,
)
from policies.action_predictor_training import SequenceData, TrainStats, train_action_predictor

__all__ = ["ActionPredictorEnsemble", "train_action_predictor_ensemble", "save_ensemble", "load_ensemble", "ENSEMBLE_TYPE"]

ENSEMBLE_TYPE = "action_predictor_ensemble"
# What members must agree on to be scored together (the rest, e.g. widths, may differ).
_SHARED_FIELDS = ("cameras", "image_size", "action_dim", "action_low", "action_high", "n_bins", "context", "proprio_dim")


class ActionPredictorEnsemble(nn.Module, EpisodeScoring):
    """M action predictors evaluated on the same episode; the loss is the members' mean NLL."""

    def __init__(self, members: Sequence[ActionPredictor]) -> None:
        super().__init__()
        if len(members) < 1:
            raise ValueError("an ensemble needs at least one member")
        first = members[0].config
        for i, m in enumerate(members[1:], 1):
            bad = [f for f in _SHARED_FIELDS if getattr(m.config, f) != getattr(first, f)]
            if bad:
                raise ValueError(f"ensemble member {i} differs from member 0 in {bad}")
        self.members = nn.ModuleList(members)

    @property
    def config(self) -> ActionPredictorConfig:
        """Member 0's config (the members share cameras, resolution, context and action bins)."""
        return self.members[0].config

    def check_inputs(self, images: Mapping[str, Any], proprio: Any | None, steps: int | None = None) -> int:
        """Validate one episode's inputs; returns T (see `ActionPredictor.check_inputs`)."""
        return self.members[0].check_inputs(images, proprio, steps)

    def embed(self, images: Mapping[str, Any], proprio: Any | None = None, batch: int = 512) -> torch.Tensor:
        """Tokens (T, M, d_model): each member's own tokens for the episode."""
        return torch.stack([m.embed(images, proprio, batch=batch) for m in self.members], dim=1)

    def _member_tokens(self, tokens: torch.Tensor) -> list[torch.Tensor]:
        if tokens.ndim != 3 or tokens.shape[1] != len(self.members):
            raise ValueError(f"ensemble tokens must be (T, {len(self.members)}, d), got {tuple(tokens.shape)}")
        return [tokens[:, i] for i in range(len(self.members))]

    def step_logits(self, tokens: torch.Tensor, boundaries: Sequence[int] = (), steps: Sequence[int] | None = None) -> torch.Tensor:
        """Logits (M, n, action_dim, n_bins) at `steps`, memory reset at `boundaries`."""
        return torch.stack([m.step_logits(t, boundaries, steps) for m, t in zip(self.members, self._member_tokens(tokens))])

    def step_features(self, tokens: torch.Tensor, boundaries: Sequence[int] = (), steps: Sequence[int] | None = None) -> torch.Tensor:
        """Features (n, M * d_model): the members' features side by side (segment embeddings)."""
        return torch.cat([m.step_features(t, boundaries, steps) for m, t in zip(self.members, self._member_tokens(tokens))], dim=-1)

    def nll(self, logits: torch.Tensor, actions: Any, tolerance: int = 0) -> torch.Tensor:
        """Mean over members of -log p_i(a_t | o_<=t), nats per step (n,) (`tolerance`: see `ActionPredictor.nll`)."""
        if logits.ndim != 4 or logits.shape[0] != len(self.members):
            raise ValueError(f"ensemble logits must be ({len(self.members)}, n, A, bins), got {tuple(logits.shape)}")
        return torch.stack([m.nll(lg, actions, tolerance) for m, lg in zip(self.members, logits)]).mean(0)

    def action_probs(self, logits: torch.Tensor) -> torch.Tensor:
        """The members' mean per-bin probabilities (n, action_dim, n_bins) (`predict_actions` uses them)."""
        return torch.softmax(logits, dim=-1).mean(0)


def train_action_predictor_ensemble(
    data: Sequence[SequenceData],
    config: ActionPredictorConfig,
    members: int,
    *,
    seed: int = 0,
    log: Callable[[str], None] | None = None,
    **train_kwargs: Any,
) -> tuple[ActionPredictor | ActionPredictorEnsemble, list[TrainStats]]:
    """Train `members` predictors on the same data from seeds seed, seed + 1, ...

    `members == 1` returns a plain `ActionPredictor` (no ensemble wrapper). Other keyword
    arguments go to `train_action_predictor` (epochs, time budget, ...).
    """
    if int(members) < 1:
        raise ValueError(f"members must be >= 1, got {members}")
    models, stats = [], []
    for i in range(int(members)):
        member_log = (lambda msg, i=i: log(f"member {i + 1}/{members}: {msg}")) if (log and members > 1) else log
        model, st = train_action_predictor(data, config, seed=seed + i, log=member_log, **train_kwargs)
        models.append(model)
        stats.append(st)
    if len(models) == 1:
        return models[0], stats
    return ActionPredictorEnsemble(models), stats


def save_ensemble(model: ActionPredictorEnsemble, directory: str | os.PathLike[str], extra: Mapping[str, Any] | None = None) -> Path:
    """Write one action-predictor directory per member, then ``config.json`` (written last, atomically),
    then remove what an earlier model saved in the same directory left behind."""
    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    for i, m in enumerate(model.members):
        save_single_predictor(m, d / f"member_{i}")
    meta = {"type": ENSEMBLE_TYPE, "members": len(model.members), **(dict(extra) if extra else {})}
    atomic_write_bytes(d / CONFIG_FILE, json.dumps(meta, indent=2, sort_keys=True).encode())
    # Leftovers of an earlier model saved here: a single predictor's weights, surplus members.
    (d / WEIGHTS_FILE).unlink(missing_ok=True)
    remove_member_dirs(d, keep=len(model.members))
    return d


def load_ensemble(directory: str | os.PathLike[str], meta: Mapping[str, Any]) -> tuple[ActionPredictorEnsemble, dict[str, Any]]:
    """Load an ensemble directory whose ``config.json`` (already parsed: `meta`) names its members."""
    d = Path(directory)
    n = meta.get("members")
    if not isinstance(n, int) or n < 1:
        raise ValueError(f"{d / CONFIG_FILE}: 'members' must be a positive integer, got {n!r}")
    members = []
    for i in range(n):
        m, _ = load_single_predictor(d / f"member_{i}")  # refuses a nested ensemble
        members.append(m)
    model = ActionPredictorEnsemble(members)
    model.eval()
    return model, dict(meta)
