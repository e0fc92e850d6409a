"""Inverse dynamics: label the action a_t from frames o_t and o_{t+1}, so videos without actions can be segmented.

`InverseDynamicsModel` stacks two consecutive RGB frames per camera (6 channels), runs a
small strided CNN, pools it two ways (spatial-softmax keypoints for *where* things are,
global average pooling for *what* is seen) and predicts each action dimension as a
distribution over `n_bins` bins (like the action predictor). `label_actions` returns the
expected action per step (bin centres weighted by probability), so the predictor's loss
-log p(a_t | o_<=t) can be computed on a plain video.

A step whose two frames hardly differ is labelled "no motion" (motion components 0, the
gripper command as the step before): a network asked about a still hand on a scene it was
not trained on (a tower of cubes) still answers some motion, and those invented motions put
spurious boundaries into every hold. The threshold (`still_threshold`, mean absolute change
per pixel on the 0-255 scale) is calibrated on the training demos: the 1st percentile of the
change over transitions whose recorded action moves, so at most 1 % of real motion is
silenced.

Trained on recorded demonstrations (frames + actions); saved as safetensors + JSON.
"""

from __future__ import annotations

import json
import math
import os
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from common.atomic import atomic_write_bytes
from policies.action_predictor import (
    KeypointEncoder,
    augment_shift,
    bin_centres,
    discretize_actions,
    images_to_tensor,
)

__all__ = [
    "IDLE_EPS",
    "InverseDynamicsConfig",
    "InverseDynamicsModel",
    "calibrate_still_threshold",
    "frame_change",
    "load_inverse_dynamics",
    "save_inverse_dynamics",
    "train_inverse_dynamics",
]

CONFIG_FILE = "config.json"
WEIGHTS_FILE = "weights.safetensors"
IDLE_EPS = 0.05  # a recorded action with every motion component below this moves nothing


def frame_change(frames: Mapping[str, Any], cameras: Sequence[str]) -> np.ndarray:
    """Mean absolute change per pixel (0-255) from frame t to t+1, over the given cameras: (T-1,)."""
    per_cam = [np.abs(np.diff(np.asarray(frames[c], dtype=np.int16), axis=0)).mean(axis=(1, 2, 3)) for c in cameras]
    return np.mean(per_cam, axis=0)


def calibrate_still_threshold(episodes: Sequence[tuple[Mapping[str, np.ndarray], np.ndarray]],
                              cameras: Sequence[str], moving_quantile: float = 0.01) -> float:
    """The frame change below which a step counts as still: `moving_quantile` of the change over
    transitions whose recorded action moves (a motion component >= `IDLE_EPS`; the last
    dimension is the gripper). 0 (off) when the demos never hold still or never move."""
    moving, still = [], 0
    for frames, actions in episodes:
        a = np.asarray(actions, dtype=np.float64)[:-1]
        moves = np.abs(a[:, :-1]).max(axis=1) >= IDLE_EPS
        change = frame_change(frames, cameras)
        moving.append(change[moves])
        still += int((~moves).sum())
    moving_all = np.concatenate(moving) if moving else np.zeros(0)
    if still == 0 or len(moving_all) == 0:
        return 0.0
    return float(np.quantile(moving_all, moving_quantile))


@dataclass
class InverseDynamicsConfig:
    """Inputs and sizes of an `InverseDynamicsModel` (JSON-able)."""

    cameras: tuple[str, ...] = ("front",)
    image_size: int = 64
    action_dim: int = 4
    action_low: tuple[float, ...] = (-1.0, -1.0, -1.0, -1.0)
    action_high: tuple[float, ...] = (1.0, 1.0, 1.0, 1.0)
    n_bins: int = 21
    conv_channels: tuple[int, ...] = (32, 32, 64)
    keypoints: int = 32
    hidden: int = 256
    still_threshold: float = 0.0  # frames changing less than this: no motion (0: off, as in older models)

    def __post_init__(self) -> None:
        self.still_threshold = float(self.still_threshold)
        if not (math.isfinite(self.still_threshold) and self.still_threshold >= 0):
            raise ValueError(f"InverseDynamicsConfig.still_threshold must be >= 0, got {self.still_threshold}")
        self.cameras = tuple(str(c) for c in self.cameras)
        self.action_low = tuple(float(x) for x in self.action_low)
        self.action_high = tuple(float(x) for x in self.action_high)
        self.conv_channels = tuple(int(c) for c in self.conv_channels)
        if not self.cameras:
            raise ValueError("InverseDynamicsConfig.cameras: at least one camera is needed")
        if len(self.action_low) != self.action_dim or len(self.action_high) != self.action_dim:
            raise ValueError(f"InverseDynamicsConfig: action_low/high need {self.action_dim} values")
        if self.n_bins < 2 or self.image_size < 16 or len(self.conv_channels) < 2:
            raise ValueError("InverseDynamicsConfig: n_bins >= 2, image_size >= 16 and >= 2 conv layers are required")

    def to_dict(self) -> dict[str, Any]:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "InverseDynamicsConfig":
        extra = sorted(set(d) - set(cls.__dataclass_fields__))
        if extra:
            raise ValueError(f"InverseDynamicsConfig: unknown field(s) {extra}")
        return cls(**dict(d))


class InverseDynamicsModel(nn.Module):
    """p(a_t | o_t, o_{t+1}) per action dimension over bins (see module docstring)."""

    def __init__(self, config: InverseDynamicsConfig) -> None:
        super().__init__()
        self.config = config
        c = config
        # One encoder per camera over frames t and t+1 stacked (6 channels).
        self.encoders = nn.ModuleDict({cam: KeypointEncoder(c.conv_channels, c.keypoints, in_channels=6) for cam in c.cameras})
        in_dim = sum(e.out_dim for e in self.encoders.values())
        self.head = nn.Sequential(
            nn.Linear(in_dim, c.hidden), nn.ReLU(), nn.Linear(c.hidden, c.hidden), nn.ReLU(),
            nn.Linear(c.hidden, c.action_dim * c.n_bins),
        )  # fmt: skip

    def check_frames(self, frames: Mapping[str, Any]) -> int:
        """Validate per-camera frames (T, S, S, 3) uint8; returns T (>= 2)."""
        c = self.config
        missing = [cam for cam in c.cameras if cam not in frames]
        if missing:
            raise ValueError(f"inverse dynamics needs camera(s) {missing}; got {sorted(frames)}")
        t = None
        for cam in c.cameras:
            shape = tuple(np.shape(frames[cam]))
            if len(shape) != 4 or shape[1:] != (c.image_size, c.image_size, 3):
                raise ValueError(f"camera {cam!r}: frames must be (T, {c.image_size}, {c.image_size}, 3) uint8, got {shape}")
            if t is not None and shape[0] != t:
                raise ValueError(f"camera {cam!r} has {shape[0]} frames, another camera has {t}")
            t = shape[0]
        if t is None or t < 2:
            raise ValueError(f"inverse dynamics needs at least 2 frames, got {t}")
        return int(t)

    def pair_logits(self, frames: Mapping[str, torch.Tensor], augment_pad: int = 0,
                    generator: torch.Generator | None = None) -> torch.Tensor:
        """Logits (T-1, action_dim, n_bins) for float frames (T, 3, S, S) per camera."""
        feats = []
        for cam in self.config.cameras:
            x = frames[cam]
            pair = torch.cat([x[:-1], x[1:]], 1)
            if augment_pad:
                pair = augment_shift(pair, augment_pad, generator)
            feats.append(self.encoders[cam](pair))
        out = self.head(torch.cat(feats, -1))
        return out.reshape(-1, self.config.action_dim, self.config.n_bins)

    @torch.no_grad()
    def label_actions(self, frames: Mapping[str, Any], batch: int = 512) -> np.ndarray:
        """Expected action per step (T, action_dim) for T frames; the last step repeats the label before it.

        Steps whose frames change less than `config.still_threshold` get no motion (the
        gripper command, the last dimension, is carried over from the step before).
        """
        t = self.check_frames(frames)
        c = self.config
        centres = bin_centres(c.action_low, c.action_high, c.n_bins)
        out = []
        for i in range(0, t - 1, batch):
            sl = {cam: images_to_tensor(np.asarray(frames[cam][i : i + batch + 1])) for cam in c.cameras}
            p = torch.softmax(self.pair_logits(sl), -1)
            out.append((p * centres).sum(-1))
        a = torch.cat(out, 0).numpy()
        if c.still_threshold > 0:
            still = frame_change(frames, c.cameras) < c.still_threshold
            for i in np.nonzero(still)[0]:
                a[i, :-1] = 0.0
                if i > 0:
                    a[i, -1] = a[i - 1, -1]
        return np.concatenate([a, a[-1:]], 0).astype(np.float32)


def train_inverse_dynamics(
    episodes: Sequence[tuple[Mapping[str, np.ndarray], np.ndarray]],
    config: InverseDynamicsConfig,
    *,
    epochs: int = 10,
    batch: int = 256,
    lr: float = 2e-3,
    augment_pad: int = 2,
    seed: int = 0,
    time_budget_s: float | None = None,
    log: Callable[[str], None] | None = None,
) -> InverseDynamicsModel:
    """Train on (frames per camera (T, S, S, 3), actions (T, A)) episodes: pairs (o_t, o_{t+1}) -> a_t.

    Cross-entropy on bins with Gaussian-smoothed targets (sigma 0.75 bins), AdamW + one-cycle
    schedule. The returned model's `config.still_threshold` is calibrated on the same episodes
    (`calibrate_still_threshold`; `config` itself is not modified).
    """
    if not episodes:
        raise ValueError("train_inverse_dynamics: no episodes")
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    gen = torch.Generator().manual_seed(seed)
    model = InverseDynamicsModel(config)
    index = []  # (episode, t) for every transition
    for e, (frames, actions) in enumerate(episodes):
        t = model.check_frames(frames)
        if len(actions) != t:
            raise ValueError(f"episode {e}: {len(actions)} actions for {t} frames")
        index += [(e, i) for i in range(t - 1)]
    index_arr = np.array(index)
    per_epoch = max(1, math.ceil(len(index_arr) / batch))
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=epochs * per_epoch, pct_start=0.1)
    grid = torch.arange(config.n_bins, dtype=torch.float32)
    t0 = time.perf_counter()
    model.train()
    for epoch in range(epochs):
        order = rng.permutation(len(index_arr))
        running = 0.0
        for k in range(per_epoch):
            sel = index_arr[order[k * batch : (k + 1) * batch]]
            if len(sel) == 0:
                continue
            feats = []
            for cam in config.cameras:
                a = np.stack([episodes[e][0][cam][i] for e, i in sel])
                b = np.stack([episodes[e][0][cam][i + 1] for e, i in sel])
                pair = torch.cat([images_to_tensor(a), images_to_tensor(b)], 1)
                feats.append(model.encoders[cam](augment_shift(pair, augment_pad, gen)))
            logits = model.head(torch.cat(feats, -1)).reshape(len(sel), config.action_dim, config.n_bins)
            acts = np.stack([episodes[e][1][i] for e, i in sel])
            bins = discretize_actions(acts, config.action_low, config.action_high, config.n_bins)
            w = torch.exp(-0.5 * ((grid - bins[..., None].float()) / 0.75) ** 2)
            target = w / w.sum(-1, keepdim=True)
            loss = -(target * torch.log_softmax(logits, -1)).sum(-1).sum(-1).mean()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            running += float(loss.detach())
        if log:
            log(f"idm epoch {epoch + 1}/{epochs} loss {running / per_epoch:.3f} ({time.perf_counter() - t0:.0f}s)")
        if time_budget_s is not None and time.perf_counter() - t0 > time_budget_s:
            break
    model.eval()
    model.config = replace(config, still_threshold=calibrate_still_threshold(episodes, config.cameras))
    if log:
        log(f"idm still threshold {model.config.still_threshold:.3f} (mean change per pixel, 0-255)")
    return model


def save_inverse_dynamics(model: InverseDynamicsModel, directory: str | os.PathLike[str]) -> Path:
    """Write config.json + weights.safetensors (atomic per file)."""
    from safetensors.torch import save

    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(d / WEIGHTS_FILE, save({k: v.detach().contiguous() for k, v in model.state_dict().items()}))
    meta = {"type": "inverse_dynamics", "config": model.config.to_dict()}
    atomic_write_bytes(d / CONFIG_FILE, json.dumps(meta, indent=2, sort_keys=True).encode())
    return d


def load_inverse_dynamics(directory: str | os.PathLike[str]) -> InverseDynamicsModel:
    """Load a model written by `save_inverse_dynamics` (eval mode); clear errors for missing/bad files."""
    from safetensors.torch import load

    d = Path(directory)
    for p in (d / CONFIG_FILE, d / WEIGHTS_FILE):
        if not p.is_file():
            raise FileNotFoundError(f"{p}: missing (not an inverse-dynamics directory?)")
    try:
        meta = json.loads((d / CONFIG_FILE).read_text())
    except ValueError as exc:
        raise ValueError(f"{d / CONFIG_FILE}: not valid JSON: {exc}") from None
    if not isinstance(meta, dict) or meta.get("type") != "inverse_dynamics":
        raise ValueError(f"{d / CONFIG_FILE}: not an inverse-dynamics config")
    model = InverseDynamicsModel(InverseDynamicsConfig.from_dict(meta["config"]))
    try:
        tensors = load((d / WEIGHTS_FILE).read_bytes())
    except Exception as exc:
        raise ValueError(f"{d / WEIGHTS_FILE}: not a readable safetensors file: {exc}") from None
    expected = model.state_dict()
    # Models saved before the encoder was shared with the action predictor named its keypoint layer `kp`.
    tensors = {(k.replace(".kp.", ".to_keypoints.") if k not in expected else k): v for k, v in tensors.items()}
    bad = sorted(set(expected) ^ set(tensors)) or [k for k in expected if tuple(expected[k].shape) != tuple(tensors[k].shape)]
    if bad:
        raise ValueError(f"{d / WEIGHTS_FILE}: weights do not match the config (first mismatches: {bad[:5]})")
    model.load_state_dict(tensors)
    model.eval()
    return model
