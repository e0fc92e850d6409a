"""Save and load an action predictor, single or ensemble, by what the directory holds.

Kept apart from both model modules so neither imports the other: `action_predictor_model`
knows one model, `action_predictor_ensemble` builds on it, and this module dispatches.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from policies.action_predictor_ensemble import ENSEMBLE_TYPE, ActionPredictorEnsemble, load_ensemble, save_ensemble
from policies.action_predictor_model import ActionPredictor, load_single_predictor, read_predictor_meta, save_single_predictor

__all__ = ["save_action_predictor", "load_action_predictor"]


def save_action_predictor(model: ActionPredictor | ActionPredictorEnsemble, directory: str | os.PathLike[str],
                          extra: Mapping[str, Any] | None = None) -> Path:
    """Write `model` into `directory`: `config.json` + `weights.safetensors`, or one such folder per
    ensemble member with the ensemble's `config.json` written last (each file atomic)."""
    if isinstance(model, ActionPredictorEnsemble):
        return save_ensemble(model, directory, extra)
    if isinstance(model, ActionPredictor):
        return save_single_predictor(model, directory, extra)
    raise TypeError(f"save_action_predictor: expected an ActionPredictor or ensemble, got {type(model).__name__}")


def load_action_predictor(directory: str | os.PathLike[str]) -> tuple[ActionPredictor | ActionPredictorEnsemble, dict[str, Any]]:
    """Load what `save_action_predictor` wrote; returns (model in eval mode, the `config.json` dict)."""
    meta = read_predictor_meta(directory)
    if meta.get("type") == ENSEMBLE_TYPE:
        return load_ensemble(Path(directory), meta)
    return load_single_predictor(directory, meta)
