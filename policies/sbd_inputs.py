"""How the skill-boundary-detection models turn episode data into tensors and back.

Shared by the action predictor (`policies.action_predictor_model`) and the inverse-dynamics
model (`policies.inverse_dynamics`): actions to per-dimension bins and bins to action
values, uint8 camera frames to normalised float tensors, random-shift image augmentation,
and boundaries to per-step segment ids. Plain functions over numpy and torch with no model
state, kept apart so both models (and their tests) use one definition of each.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F

__all__ = [
    "augment_shift",
    "bin_centres",
    "discretize_actions",
    "images_to_tensor",
    "segment_ids_from_boundaries",
]


def discretize_actions(actions: np.ndarray | torch.Tensor, low: Sequence[float], high: Sequence[float], n_bins: int) -> torch.Tensor:
    """Continuous actions (..., A) -> bin indices (..., A) int64; bins are uniform over [low, high], centres at the ends."""
    a = torch.as_tensor(np.asarray(actions, dtype=np.float32)) if not isinstance(actions, torch.Tensor) else actions.float()
    lo = torch.as_tensor(low, dtype=torch.float32)
    hi = torch.as_tensor(high, dtype=torch.float32)
    u = (a.clamp(min=lo, max=hi) - lo) / (hi - lo)
    return torch.round(u * (n_bins - 1)).long().clamp_(0, n_bins - 1)


def bin_centres(low: Sequence[float], high: Sequence[float], n_bins: int) -> torch.Tensor:
    """(A, n_bins) bin centre values."""
    lo = torch.as_tensor(low, dtype=torch.float32)[:, None]
    hi = torch.as_tensor(high, dtype=torch.float32)[:, None]
    return lo + (hi - lo) * torch.linspace(0.0, 1.0, n_bins)[None, :]


def images_to_tensor(images: np.ndarray | torch.Tensor) -> torch.Tensor:
    """uint8 (N, H, W, 3) -> float32 (N, 3, H, W) in [-0.5, 0.5]."""
    x = torch.as_tensor(images)
    if x.dtype != torch.uint8 or x.ndim != 4 or x.shape[-1] != 3:
        raise ValueError(f"images must be uint8 (N, H, W, 3), got {x.dtype} {tuple(x.shape)}")
    return x.permute(0, 3, 1, 2).float().div_(255.0).sub_(0.5)


def augment_shift(x: torch.Tensor, pad: int, generator: torch.Generator | None = None) -> torch.Tensor:
    """Random-shift augmentation (DrQ): replicate-pad by `pad` and crop back, one shift per image."""
    if pad <= 0:
        return x
    n, c, h, w = x.shape
    padded = F.pad(x, (pad, pad, pad, pad), mode="replicate")
    dx = torch.randint(0, 2 * pad + 1, (n,), generator=generator)
    dy = torch.randint(0, 2 * pad + 1, (n,), generator=generator)
    rows = (dy[:, None] + torch.arange(h)[None, :])  # (n, h)
    cols = (dx[:, None] + torch.arange(w)[None, :])  # (n, w)
    idx_n = torch.arange(n)[:, None, None]
    out = padded.permute(0, 2, 3, 1)[idx_n, rows[:, :, None], cols[:, None, :]]  # (n, h, w, c)
    return out.permute(0, 3, 1, 2).contiguous()


def segment_ids_from_boundaries(length: int, boundaries: Sequence[int]) -> torch.Tensor:
    """Segment id per step (0 before the first boundary, +1 at each boundary index)."""
    ids = torch.zeros(length, dtype=torch.long)
    for b in boundaries:
        if 0 < int(b) < length:
            ids[int(b):] += 1
    return ids
