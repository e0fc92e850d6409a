"""Causal action-prediction model for skill boundary detection (SBD).

An unconditional behaviour-cloning model: no task, goal or phase input. At step t it
sees the camera frames (and optionally the robot's proprioception) of at most the last
`context` steps o_{t-K+1..t} and outputs a distribution over the action a_t, discretised
per dimension into `n_bins` bins, so that

    loss_t = -log p(a_t | o_<=t) = sum_d -log p_d(bin_d(a_t) | o_<=t)      (nats)

is defined. Skill boundary detection watches this loss (see
`segmentation.detector`).

Architecture (all sizes are fields of `ActionPredictorConfig`):

- per camera a small CNN (strided convolutions) ending in a spatial softmax that turns
  each of `keypoints` feature maps into an expected (x, y) image position, plus the
  globally averaged last feature maps;
- the keypoints of all cameras (plus proprioception, when used) are projected to one
  token per step;
- a causal transformer over the tokens: query t attends to keys t-K+1..t of the same
  *segment* only (a relative-position bias per head and distance), so after a detected
  boundary the "memory" is reset just by starting a new segment, as in the SBD paper;
- a linear head with `action_dim x n_bins` logits.

Training (`train_action_predictor`) is behaviour cloning on unsegmented episodes: random
windows, random segment resets inside them (so the model also knows short contexts),
cross-entropy against Gaussian-smoothed bin targets, random-shift image augmentation.

Weights are saved as safetensors with the config as JSON (`save` / `load`): nothing on the
load path unpickles.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

__all__ = [
    "ActionPredictor",
    "ActionPredictorConfig",
    "EpisodeScoring",
    "SequenceData",
    "TrainStats",
    "atomic_write_bytes",
    "augment_shift",
    "discretize_actions",
    "images_to_tensor",
    "load_single_predictor",
    "read_predictor_meta",
    "save_single_predictor",
    "segment_ids_from_boundaries",
    "train_action_predictor",
]

CONFIG_FILE = "config.json"
WEIGHTS_FILE = "weights.safetensors"


@dataclass
class ActionPredictorConfig:
    """Sizes and inputs of an `ActionPredictor` (JSON-able; saved next to the weights)."""

    cameras: tuple[str, ...] = ("front", "wrist")
    image_size: int = 64
    action_dim: int = 4
    action_low: tuple[float, ...] = (-1.0, -1.0, -1.0, -1.0)
    action_high: tuple[float, ...] = (1.0, 1.0, 1.0, 1.0)
    n_bins: int = 21
    context: int = 16
    proprio_dim: int = 0
    conv_channels: tuple[int, ...] = (16, 32, 32)
    keypoints: int = 16
    d_model: int = 64
    n_layers: int = 2
    n_heads: int = 4
    target_sigma: float = 0.75  # Gaussian label smoothing over neighbouring bins (in bins)

    def __post_init__(self) -> None:
        self.cameras = tuple(str(c) for c in self.cameras)
        self.action_low = tuple(float(x) for x in self.action_low)
        self.action_high = tuple(float(x) for x in self.action_high)
        self.conv_channels = tuple(int(c) for c in self.conv_channels)
        if not self.cameras:
            raise ValueError("ActionPredictorConfig.cameras: at least one camera is needed")
        if len(self.action_low) != self.action_dim or len(self.action_high) != self.action_dim:
            raise ValueError(
                f"ActionPredictorConfig: action_low/high need {self.action_dim} values, "
                f"got {len(self.action_low)}/{len(self.action_high)}"
            )
        if any(h <= lo for lo, h in zip(self.action_low, self.action_high)):
            raise ValueError("ActionPredictorConfig: action_high must exceed action_low in every dimension")
        for name in ("image_size", "n_bins", "context", "keypoints", "d_model", "n_layers", "n_heads"):
            if int(getattr(self, name)) < (2 if name == "n_bins" else 1):
                raise ValueError(f"ActionPredictorConfig.{name} must be positive, got {getattr(self, name)}")
        if self.d_model % self.n_heads:
            raise ValueError(f"ActionPredictorConfig: d_model {self.d_model} is not divisible by n_heads {self.n_heads}")
        if self.image_size < 16:
            raise ValueError(f"ActionPredictorConfig.image_size must be >= 16, got {self.image_size}")

    def to_dict(self) -> dict[str, Any]:
        """JSON-able dict (tuples as lists)."""
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "ActionPredictorConfig":
        """Inverse of `to_dict`; unknown fields raise ValueError naming them."""
        known = set(cls.__dataclass_fields__)
        extra = sorted(set(d) - known)
        if extra:
            raise ValueError(f"ActionPredictorConfig: unknown field(s) {extra}")
        return cls(**dict(d))


# ----------------------------------------------------------------------------- helpers


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


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes) -> None:
    """Write `data` to `path` through a temporary file in the same folder and an atomic rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


# ----------------------------------------------------------------------------- modules


class SpatialSoftmax(nn.Module):
    """Feature maps (N, C, H, W) -> expected (x, y) per channel in [-1, 1], (N, 2C); learned temperature."""

    def __init__(self) -> None:
        super().__init__()
        self.log_temperature = nn.Parameter(torch.zeros(()))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, c, h, w = x.shape
        p = torch.softmax(x.reshape(n, c, h * w) / self.log_temperature.exp(), dim=-1).reshape(n, c, h, w)
        ys = torch.linspace(-1.0, 1.0, h, device=x.device, dtype=x.dtype)
        xs = torch.linspace(-1.0, 1.0, w, device=x.device, dtype=x.dtype)
        ex = (p.sum(dim=2) * xs).sum(dim=-1)
        ey = (p.sum(dim=3) * ys).sum(dim=-1)
        return torch.cat([ex, ey], dim=-1)


class KeypointEncoder(nn.Module):
    """Small strided CNN; spatial-softmax keypoints (where) + global average pooling (what).

    (N, 3, H, W) -> (N, 2 * keypoints + last conv channels).
    """

    def __init__(self, channels: Sequence[int], keypoints: int, in_channels: int = 3) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        c_in = in_channels
        for i, c in enumerate(channels):
            k, s = (5, 2) if i == 0 else ((3, 2) if i == 1 else (3, 1))
            layers += [nn.Conv2d(c_in, c, k, stride=s), nn.ReLU(inplace=True)]
            c_in = c
        self.conv = nn.Sequential(*layers)
        self.to_keypoints = nn.Conv2d(c_in, keypoints, 1)
        self.softmax = SpatialSoftmax()
        self.out_dim = 2 * keypoints + c_in

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.conv(x)
        return torch.cat([self.softmax(self.to_keypoints(h)), h.mean(dim=(2, 3))], -1)


class _Block(nn.Module):
    """Pre-LN transformer block with an additive attention bias."""

    def __init__(self, d: int, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.ln1 = nn.LayerNorm(d)
        self.qkv = nn.Linear(d, 3 * d)
        self.proj = nn.Linear(d, d)
        self.ln2 = nn.LayerNorm(d)
        self.mlp = nn.Sequential(nn.Linear(d, 4 * d), nn.GELU(), nn.Linear(4 * d, d))

    def forward(self, x: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
        b, t, d = x.shape
        q, k, v = self.qkv(self.ln1(x)).reshape(b, t, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        y = F.scaled_dot_product_attention(q, k, v, attn_mask=bias)
        x = x + self.proj(y.transpose(1, 2).reshape(b, t, d))
        return x + self.mlp(self.ln2(x))


class EpisodeScoring:
    """Whole-episode scoring over the inference API (`check_inputs`, `embed`, `step_logits`,
    `nll`, `config`), shared by `ActionPredictor` and `ActionPredictorEnsemble`."""

    def action_probs(self, logits: torch.Tensor) -> torch.Tensor:
        """Per-bin probabilities (n, action_dim, n_bins) from `step_logits` output."""
        return torch.softmax(logits, dim=-1)

    @torch.no_grad()
    def episode_losses(self, images: Mapping[str, Any], actions: Any, proprio: Any | None = None,
                       boundaries: Sequence[int] = (), tolerance: int = 0) -> np.ndarray:
        """Per-step loss (T,) of one episode, with memory resets at `boundaries` (`tolerance`: see `nll`)."""
        self.check_inputs(images, proprio, len(actions))  # type: ignore[attr-defined]
        tokens = self.embed(images, proprio)  # type: ignore[attr-defined]
        logits = self.step_logits(tokens, boundaries)  # type: ignore[attr-defined]
        return self.nll(logits, actions, tolerance).numpy().astype(np.float64)  # type: ignore[attr-defined]

    @torch.no_grad()
    def predict_actions(self, images: Mapping[str, Any], proprio: Any | None = None) -> np.ndarray:
        """Most likely action per step (T, action_dim), bin centres (BC use)."""
        self.check_inputs(images, proprio)  # type: ignore[attr-defined]
        probs = self.action_probs(self.step_logits(self.embed(images, proprio)))  # type: ignore[attr-defined]
        c = self.config  # type: ignore[attr-defined]
        centres = bin_centres(c.action_low, c.action_high, c.n_bins)
        return centres.gather(1, probs.argmax(-1).T).T.numpy()


class ActionPredictor(nn.Module, EpisodeScoring):
    """Causal, unconditional action predictor (see module docstring).

    Main entry points:
    - `embed(images, proprio)`: per-step tokens (T, d_model) for one episode (batched CNN);
    - `features(windows, segment_ids)` / `logits(...)`: transformer outputs / action logits
      (B, W, ...) for windows of W <= context tokens (training);
    - `step_features(tokens, boundaries)` / `step_logits(...)`: per step t of an episode, on
      its own window o_{s..t}, s = max(t - K + 1, last boundary) (inference; the features
      are the "embeddings" used to cluster segments into skill types);
    - `nll(logits, actions)`: -log p(a_t | o_<=t) per step, in nats, summed over dimensions;
    - `episode_losses(images, proprio, actions, boundaries)`: all of the above for one episode.
    """

    def __init__(self, config: ActionPredictorConfig) -> None:
        super().__init__()
        self.config = config
        c = config
        self.encoders = nn.ModuleDict({cam: KeypointEncoder(c.conv_channels, c.keypoints) for cam in c.cameras})
        in_dim = sum(e.out_dim for e in self.encoders.values()) + c.proprio_dim
        self.token = nn.Sequential(nn.Linear(in_dim, c.d_model), nn.LayerNorm(c.d_model))
        self.rel_bias = nn.Parameter(torch.zeros(c.n_layers, c.n_heads, c.context))
        self.blocks = nn.ModuleList(_Block(c.d_model, c.n_heads) for _ in range(c.n_layers))
        self.ln_out = nn.LayerNorm(c.d_model)
        self.head = nn.Linear(c.d_model, c.action_dim * c.n_bins)
        self.register_buffer("proprio_mean", torch.zeros(max(c.proprio_dim, 1)))
        self.register_buffer("proprio_std", torch.ones(max(c.proprio_dim, 1)))

    # -- inputs -------------------------------------------------------------------------
    def check_inputs(self, images: Mapping[str, Any], proprio: Any | None, steps: int | None = None) -> int:
        """Validate one episode's inputs; returns T. Raises ValueError naming the bad input."""
        c = self.config
        missing = [cam for cam in c.cameras if cam not in images]
        if missing:
            raise ValueError(f"action predictor needs camera(s) {missing}; got {sorted(images)}")
        t = None
        for cam in c.cameras:
            arr = images[cam]
            shape = tuple(arr.shape)
            if len(shape) != 4 or shape[1:] != (c.image_size, c.image_size, 3):
                raise ValueError(
                    f"camera {cam!r}: images must be (T, {c.image_size}, {c.image_size}, 3) uint8, got {shape}"
                )
            if t is None:
                t = shape[0]
            elif shape[0] != t:
                raise ValueError(f"camera {cam!r} has {shape[0]} frames, another camera has {t}")
        assert t is not None
        if c.proprio_dim:
            if proprio is None:
                raise ValueError(f"action predictor needs proprioception ({c.proprio_dim} values per step)")
            if tuple(np.shape(proprio)) != (t, c.proprio_dim):
                raise ValueError(f"proprio must be ({t}, {c.proprio_dim}), got {tuple(np.shape(proprio))}")
        if steps is not None and steps != t:
            raise ValueError(f"{steps} actions for {t} frames")
        return int(t)

    def embed(self, images: Mapping[str, Any], proprio: Any | None = None, augment_pad: int = 0,
              generator: torch.Generator | None = None, batch: int = 512) -> torch.Tensor:
        """Tokens (T, d_model) for T steps: images[cam] uint8 (T, H, W, 3) (or float (T, 3, H, W)), proprio (T, P)."""
        parts = []
        for cam in self.config.cameras:
            x = images[cam]
            chunks = []
            for i in range(0, len(x), batch):
                xi = x[i : i + batch]
                xi = images_to_tensor(xi) if (not isinstance(xi, torch.Tensor) or xi.dtype == torch.uint8) else xi
                if augment_pad:
                    xi = augment_shift(xi, augment_pad, generator)
                chunks.append(self.encoders[cam](xi))
            parts.append(torch.cat(chunks, 0))
        if self.config.proprio_dim:
            p = torch.as_tensor(np.asarray(proprio, dtype=np.float32)) if not isinstance(proprio, torch.Tensor) else proprio.float()
            parts.append((p - self.proprio_mean) / self.proprio_std)
        return self.token(torch.cat(parts, -1))

    def attention_bias(self, segment_ids: torch.Tensor) -> torch.Tensor:
        """(B, n_layers, n_heads, W, W) additive bias: causal, same segment only, relative-position bias.

        Used on windows of at most `context` tokens, so the model's whole receptive field
        (all layers) is the window: loss_t depends on o_{t-K+1..t} only.
        """
        b, w = segment_ids.shape
        k = self.config.context
        if w > k:
            raise ValueError(f"window of {w} steps is longer than the model's context {k}")
        i = torch.arange(w)
        dist = i[:, None] - i[None, :]  # query - key
        allowed = (dist >= 0)[None] & (segment_ids[:, :, None] == segment_ids[:, None, :])  # (B, W, W)
        rel = self.rel_bias[:, :, dist.clamp(0, k - 1)]  # (L, H, W, W)
        return rel[None] + torch.where(allowed, 0.0, float("-inf"))[:, None, None]

    def features(self, tokens: torch.Tensor, segment_ids: torch.Tensor | None = None) -> torch.Tensor:
        """Transformer outputs (B, W, d_model) for windows of tokens (B, W, d_model), W <= context.

        Position i of a window sees positions <= i of the same segment id (a reset starts a new id).
        """
        if tokens.ndim == 2:
            tokens = tokens[None]
        b, w, _ = tokens.shape
        if segment_ids is None:
            segment_ids = torch.zeros(b, w, dtype=torch.long)
        elif segment_ids.ndim == 1:
            segment_ids = segment_ids[None].expand(b, w)
        bias = self.attention_bias(segment_ids)
        x = tokens
        for li, block in enumerate(self.blocks):
            x = block(x, bias[:, li])
        return self.ln_out(x)

    def logits(self, tokens: torch.Tensor, segment_ids: torch.Tensor | None = None) -> torch.Tensor:
        """Action logits (B, W, action_dim, n_bins) for windows (see `features`)."""
        f = self.features(tokens, segment_ids)
        return self.head(f).reshape(*f.shape[:2], self.config.action_dim, self.config.n_bins)

    def step_features(self, tokens: torch.Tensor, boundaries: Sequence[int] = (), steps: Sequence[int] | None = None) -> torch.Tensor:
        """Features (n, d_model) at `steps` (default all) of one episode's tokens (T, d_model).

        Step t is computed on its own window o_{s..t}, s = max(t - K + 1, last boundary <= t):
        a boundary resets the memory.
        """
        n, d = tokens.shape
        k = self.config.context
        idx = torch.arange(n) if steps is None else torch.as_tensor(list(steps), dtype=torch.long)
        if len(idx) == 0:
            return tokens.new_zeros(0, d)
        seg = segment_ids_from_boundaries(n, boundaries)
        offs = torch.arange(-k + 1, 1)  # window positions relative to t, right-aligned
        src = idx[:, None] + offs[None, :]  # (n, K)
        valid = src >= 0
        src_c = src.clamp(min=0)
        valid &= seg[src_c] == seg[idx][:, None]
        win = tokens[src_c]  # (n, K, d)
        # invalid positions get their own negative ids: never attended by the last (valid) position
        ids = torch.where(valid, torch.zeros_like(src), -1 - torch.arange(k)[None, :].expand_as(src))
        return self.features(win, ids)[:, -1]

    def step_logits(self, tokens: torch.Tensor, boundaries: Sequence[int] = (), steps: Sequence[int] | None = None) -> torch.Tensor:
        """Action logits (n, action_dim, n_bins) at `steps` with memory resets at `boundaries`."""
        f = self.step_features(tokens, boundaries, steps)
        return self.head(f).reshape(len(f), self.config.action_dim, self.config.n_bins)

    def bins(self, actions: Any) -> torch.Tensor:
        """Bin index per action dimension (..., action_dim)."""
        c = self.config
        return discretize_actions(actions, c.action_low, c.action_high, c.n_bins)

    def nll(self, logits: torch.Tensor, actions: Any, tolerance: int = 0) -> torch.Tensor:
        """-log p(a_t | o_<=t) in nats per step (..., T), summed over action dimensions.

        `tolerance` w > 0 scores the probability of the action's bin or one of its w
        neighbours on either side, -log P(|bin - bin(a_t)| <= w), per dimension. Why: the
        predictor is trained on targets smoothed over neighbouring bins, so the mass it puts
        on the exact bin swings with where in its bin an action falls; that noise buries
        small loss changes at skill switches (see `segmentation.detector`).
        """
        target = self.bins(actions)
        logp = torch.log_softmax(logits, dim=-1)
        if tolerance < 0:
            raise ValueError(f"tolerance must be >= 0 bins, got {tolerance}")
        if tolerance == 0:
            return -logp.gather(-1, target[..., None]).squeeze(-1).sum(-1)
        grid = torch.arange(logp.shape[-1], device=logp.device)
        near = (grid - target[..., None]).abs() <= int(tolerance)
        return -torch.logsumexp(logp.masked_fill(~near, float("-inf")), dim=-1).sum(-1)


# ----------------------------------------------------------------------------- training


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


# ----------------------------------------------------------------------------- save / load


def save_single_predictor(model: ActionPredictor, directory: str | os.PathLike[str], extra: Mapping[str, Any] | None = None) -> Path:
    """Write one `ActionPredictor` as `config.json` (config + `extra`) and `weights.safetensors` (atomic per file).

    Use `policies.action_predictor_store.save_action_predictor` for a model that may be an ensemble."""
    from safetensors.torch import save

    if not isinstance(model, ActionPredictor):
        raise TypeError(f"save_single_predictor: expected an ActionPredictor, got {type(model).__name__}")
    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    tensors = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    atomic_write_bytes(d / WEIGHTS_FILE, save(tensors))
    meta = {"type": "action_predictor", "config": model.config.to_dict(), **(dict(extra) if extra else {})}
    atomic_write_bytes(d / CONFIG_FILE, json.dumps(meta, indent=2, sort_keys=True).encode())
    remove_member_dirs(d, keep=0)
    return d


def remove_member_dirs(directory: Path, keep: int) -> None:
    """Delete ``member_i`` folders with i >= `keep`: what an earlier, larger ensemble saved here left behind.

    Called after the new ``config.json`` is in place, so a crash before it leaves the old,
    still consistent model, and a crash after it only leaves files nothing reads.
    """
    for sub in directory.glob("member_*"):
        suffix = sub.name[len("member_"):]
        if sub.is_dir() and suffix.isdigit() and int(suffix) >= keep:
            shutil.rmtree(sub)


def read_predictor_meta(directory: str | os.PathLike[str]) -> dict[str, Any]:
    """The `config.json` of a saved action predictor (single or ensemble), with clear errors."""
    cfg_path = Path(directory) / CONFIG_FILE
    if not cfg_path.is_file():
        raise FileNotFoundError(f"{cfg_path}: missing (not an action-predictor directory?)")
    try:
        meta = json.loads(cfg_path.read_text())
    except ValueError as exc:
        raise ValueError(f"{cfg_path}: not valid JSON: {exc}") from None
    if not isinstance(meta, dict):
        raise ValueError(f"{cfg_path}: not an action-predictor config (not a JSON object)")
    return meta


def load_single_predictor(directory: str | os.PathLike[str], meta: dict[str, Any] | None = None) -> tuple[ActionPredictor, dict[str, Any]]:
    """Load one `ActionPredictor` written by `save_single_predictor`; returns (model in eval mode, config dict)."""
    from safetensors.torch import load

    d = Path(directory)
    cfg_path, w_path = d / CONFIG_FILE, d / WEIGHTS_FILE
    meta = read_predictor_meta(d) if meta is None else meta
    if not w_path.is_file():
        raise FileNotFoundError(f"{w_path}: missing (not an action-predictor directory?)")
    if meta.get("type") != "action_predictor":
        raise ValueError(f"{cfg_path}: not an action-predictor config (type != 'action_predictor')")
    model = ActionPredictor(ActionPredictorConfig.from_dict(meta["config"]))
    try:
        tensors = load(w_path.read_bytes())
    except Exception as exc:  # safetensors raises its own error types
        raise ValueError(f"{w_path}: not a readable safetensors file: {exc}") from None
    expected = model.state_dict()
    bad = sorted(set(expected) ^ set(tensors)) or [k for k in expected if tuple(expected[k].shape) != tuple(tensors[k].shape)]
    if bad:
        raise ValueError(f"{w_path}: weights do not match the config (first mismatches: {bad[:5]})")
    model.load_state_dict(tensors)
    model.eval()
    return model, meta
