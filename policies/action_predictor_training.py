"""Behaviour cloning of an `ActionPredictor` on unsegmented episodes (the training loop).

`train_action_predictor` draws random windows of episodes (`SequenceData`), inserts random
memory resets, and minimises the cross-entropy to Gaussian-smoothed bin targets under
random-shift augmentation; `mean_episode_loss` is its validation score. Kept apart from the
model (`policies.action_predictor_model`) so the model's file stays the forward pass, and
the ensemble trainer (`policies.action_predictor_ensemble`) builds on this loop.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from policies.action_predictor_model import ActionPredictor, ActionPredictorConfig

__all__ = ["SequenceData", "TrainStats", "mean_episode_loss", "train_action_predictor"]


@dataclass
class SequenceData:
    """One unsegmented episode for training: images per camera (T, H, W, 3) uint8, actions (T, A), proprio (T, P) or None."""

    images: dict[str, np.ndarray]
    actions: np.ndarray
    proprio: np.ndarray | None = None

    @property
    def length(self) -> int:
        return len(self.actions)


@dataclass
class TrainStats:
    """What training did: loss per epoch (train, and validation when given), seconds."""

    train_loss: list[float] = field(default_factory=list)
    val_loss: list[float] = field(default_factory=list)
    seconds: float = 0.0
    steps: int = 0


def _soft_targets(bins: torch.Tensor, n_bins: int, sigma: float) -> torch.Tensor:
    """Gaussian-smoothed one-hot targets (..., n_bins)."""
    if sigma <= 0:
        return F.one_hot(bins, n_bins).float()
    grid = torch.arange(n_bins, dtype=torch.float32)
    w = torch.exp(-0.5 * ((grid - bins[..., None].float()) / sigma) ** 2)
    return w / w.sum(-1, keepdim=True)


def train_action_predictor(
    episodes: Sequence[SequenceData],
    config: ActionPredictorConfig,
    *,
    epochs: int = 20,
    window: int | None = None,
    batch_windows: int = 16,
    lr: float = 3e-3,
    weight_decay: float = 1e-4,
    reset_prob: float = 0.04,
    augment_pad: int = 2,
    seed: int = 0,
    val_episodes: Sequence[SequenceData] = (),
    time_budget_s: float | None = None,
    log: Callable[[str], None] | None = None,
) -> tuple[ActionPredictor, TrainStats]:
    """Behaviour cloning of an `ActionPredictor` on unsegmented episodes.

    Each epoch draws about sum(T) / window random windows of `window` (default and at most
    `config.context`) steps (windows never cross episodes); step i of a window sees steps
    <= i, so every context length 1..K is trained. A memory reset is inserted at each step with probability
    `reset_prob`, and minimises the cross-entropy to Gaussian-smoothed bin targets at
    every step. AdamW with a cosine learning-rate schedule. `time_budget_s` stops early.
    """
    if not episodes:
        raise ValueError("train_action_predictor: no training episodes")
    window = int(window or config.context)
    if not 1 <= window <= config.context:
        raise ValueError(f"window must be in [1, context={config.context}], got {window}")
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    gen = torch.Generator().manual_seed(seed)
    model = ActionPredictor(config)
    for ep in episodes:
        model.check_inputs(ep.images, ep.proprio, ep.length)
    if config.proprio_dim:
        allp = np.concatenate([ep.proprio for ep in episodes if ep.proprio is not None], 0)
        model.proprio_mean.copy_(torch.as_tensor(allp.mean(0), dtype=torch.float32))
        model.proprio_std.copy_(torch.as_tensor(allp.std(0) + 1e-3, dtype=torch.float32))
    total = sum(ep.length for ep in episodes)
    per_epoch = max(1, math.ceil(total / window / batch_windows))
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=epochs * per_epoch, pct_start=0.1)
    lengths = np.array([ep.length for ep in episodes])
    probs = lengths / lengths.sum()
    stats = TrainStats()
    t0 = time.perf_counter()
    for epoch in range(epochs):
        model.train()
        running = 0.0
        for _ in range(per_epoch):
            imgs: dict[str, list[np.ndarray]] = {cam: [] for cam in config.cameras}
            acts, props, segs = [], [], []
            for e in rng.choice(len(episodes), size=batch_windows, p=probs):
                ep = episodes[int(e)]
                w = min(window, ep.length)
                s = int(rng.integers(0, ep.length - w + 1))
                for cam in config.cameras:
                    imgs[cam].append(_pad_to(ep.images[cam][s : s + w], window))
                acts.append(_pad_to(ep.actions[s : s + w], window))
                if config.proprio_dim:
                    props.append(_pad_to(ep.proprio[s : s + w], window))
                seg = np.cumsum(rng.random(window) < reset_prob)
                seg[w:] = -1 - np.arange(window - w)  # padding: isolated, masked from the loss
                segs.append(seg)
            b = len(acts)
            flat_imgs = {cam: np.concatenate(v, 0) for cam, v in imgs.items()}
            flat_prop = np.concatenate(props, 0) if props else None
            tokens = model.embed(flat_imgs, flat_prop, augment_pad=augment_pad, generator=gen).reshape(b, window, -1)
            seg_t = torch.as_tensor(np.stack(segs))
            lg = model.logits(tokens, seg_t)
            target = _soft_targets(model.bins(np.stack(acts)), config.n_bins, config.target_sigma)
            ce = -(target * torch.log_softmax(lg, -1)).sum(-1).sum(-1)  # (B, T)
            valid = (seg_t >= 0).float()
            loss = (ce * valid).sum() / valid.sum()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            sched.step()
            running += float(loss.detach())
            stats.steps += 1
        stats.train_loss.append(running / per_epoch)
        msg = f"epoch {epoch + 1}/{epochs} train {stats.train_loss[-1]:.3f}"
        if val_episodes:
            stats.val_loss.append(mean_episode_loss(model, val_episodes))
            msg += f" val nll {stats.val_loss[-1]:.3f}"
        if log:
            log(msg + f" ({time.perf_counter() - t0:.0f}s)")
        if time_budget_s is not None and time.perf_counter() - t0 > time_budget_s:
            if log:
                log(f"time budget {time_budget_s:.0f}s reached after epoch {epoch + 1}")
            break
    stats.seconds = time.perf_counter() - t0
    model.eval()
    return model, stats


def mean_episode_loss(model: ActionPredictor, episodes: Sequence[SequenceData]) -> float:
    """Mean -log p(a_t | o_<=t) per step over episodes (no resets)."""
    was = model.training
    model.eval()
    tot, n = 0.0, 0
    for ep in episodes:
        losses = model.episode_losses(ep.images, ep.actions, ep.proprio)
        tot += float(losses.sum())
        n += len(losses)
    model.train(was)
    return tot / max(n, 1)


def _pad_to(x: np.ndarray, n: int) -> np.ndarray:
    if len(x) >= n:
        return x[:n]
    pad = np.repeat(x[-1:], n - len(x), axis=0)
    return np.concatenate([x, pad], 0)
