"""Behaviour cloning of a low-dimensional policy, exportable as a `bc` skill network.

`train_bc(obs, actions)` fits an `mlp` (architecture as data, `policies.networks`) with a
tanh output to actions scaled to [-1, 1], on standardised observations. The result carries
the arch, the state dict and the observation mean/std: exactly what
`skill_library.authoring.save_network_skill(kind="bc", ...)` packages, and what a loaded
`NetworkSkill` reproduces (normalise, network, map the unit output to the action bounds).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn

from policies.networks import build_network, validate_arch

__all__ = ["BCPolicy", "train_bc"]


@dataclass
class BCPolicy:
    """A trained BC network: `arch` + `state_dict`, observation normalisation, action bounds."""

    arch: dict[str, Any]
    state_dict: dict[str, torch.Tensor]
    obs_mean: np.ndarray
    obs_std: np.ndarray
    action_low: np.ndarray
    action_high: np.ndarray
    train_loss: list[float] = field(default_factory=list)
    seconds: float = 0.0
    _net: nn.Module | None = field(default=None, init=False, repr=False, compare=False)

    def predict(self, obs: np.ndarray) -> np.ndarray:
        """Actions (N, A) in the action bounds for observations (N, D) (or one (D,) -> (A,))."""
        x = np.asarray(obs, dtype=np.float32)
        single = x.ndim == 1
        x = np.atleast_2d(x)
        if x.shape[1] != self.arch["in_dim"]:
            raise ValueError(f"observation has {x.shape[1]} values, the policy takes {self.arch['in_dim']}")
        if self._net is None:  # built once: rebuilding per call dominated a rollout's cost
            self._net = build_network(self.arch)
            self._net.load_state_dict(self.state_dict)
            self._net.eval()
        with torch.no_grad():
            y = self._net(torch.from_numpy((x - self.obs_mean) / self.obs_std).float()).numpy()
        a = self.action_low + (y + 1.0) * 0.5 * (self.action_high - self.action_low)
        return a[0] if single else a


def train_bc(
    obs: np.ndarray,
    actions: np.ndarray,
    *,
    action_low: Sequence[float] | None = None,
    action_high: Sequence[float] | None = None,
    hidden: Sequence[int] = (256, 256),
    epochs: int = 200,
    batch: int = 256,
    lr: float = 1e-3,
    seed: int = 0,
    min_std: float = 1e-3,
    log: Callable[[str], None] | None = None,
) -> BCPolicy:
    """Fit an MLP policy obs (N, D) -> actions (N, A) by mean-squared error on the [-1, 1]-scaled action.

    Raises ValueError for mismatched lengths, empty data or non-finite values.
    """
    x = np.asarray(obs, dtype=np.float32)
    y = np.asarray(actions, dtype=np.float32)
    if x.ndim != 2 or y.ndim != 2:
        raise ValueError(f"obs and actions must be 2-D, got {x.shape} and {y.shape}")
    if len(x) != len(y) or len(x) == 0:
        raise ValueError(f"need the same number (> 0) of observations and actions, got {len(x)} and {len(y)}")
    if not (np.all(np.isfinite(x)) and np.all(np.isfinite(y))):
        raise ValueError("obs or actions contain NaN or inf")
    lo = np.asarray(action_low if action_low is not None else -np.ones(y.shape[1]), dtype=np.float32)
    hi = np.asarray(action_high if action_high is not None else np.ones(y.shape[1]), dtype=np.float32)
    if lo.shape != (y.shape[1],) or hi.shape != (y.shape[1],) or np.any(hi <= lo):
        raise ValueError("action_low/action_high must have one value per action dimension, high > low")
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    mean = x.mean(0)
    std = np.maximum(x.std(0), min_std).astype(np.float32)
    xn = torch.from_numpy((x - mean) / std)
    yn = torch.from_numpy(np.clip(2.0 * (y - lo) / (hi - lo) - 1.0, -1.0, 1.0))
    arch = validate_arch({"type": "mlp", "in_dim": int(x.shape[1]), "out_dim": int(y.shape[1]), "hidden": [int(h) for h in hidden],
                          "activation": "relu", "output_activation": "tanh"})
    net = build_network(arch)
    opt = torch.optim.Adam(net.parameters(), lr=lr)
    per_epoch = max(1, math.ceil(len(x) / batch))
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=epochs * per_epoch)
    losses = []
    t0 = time.perf_counter()
    for epoch in range(epochs):
        order = torch.from_numpy(rng.permutation(len(x)))
        run = 0.0
        for k in range(per_epoch):
            idx = order[k * batch : (k + 1) * batch]
            loss = nn.functional.mse_loss(net(xn[idx]), yn[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            run += float(loss.detach())
        losses.append(run / per_epoch)
        if log and (epoch + 1) % max(1, epochs // 5) == 0:
            log(f"bc epoch {epoch + 1}/{epochs} mse {losses[-1]:.4f}")
    state = {k: v.detach().clone().contiguous() for k, v in net.state_dict().items()}
    return BCPolicy(arch, state, mean.astype(np.float32), std, lo, hi, losses, time.perf_counter() - t0)
