"""The action predictor itself: its config, the model, whole-episode scoring, and one model's files.

`ActionPredictor` embeds camera frames (and proprioception) into one token per step and
runs a causal transformer that resets its memory at segment boundaries, giving
-log p(a_t | o_<=t) per step (the overview is in `policies.action_predictor`).
`EpisodeScoring` is the whole-episode API it shares with `ActionPredictorEnsemble`.
`save_single_predictor` / `load_single_predictor` write and read one model as
`config.json` + `weights.safetensors`. Training lives in `policies.action_predictor_training`
and the layers in `policies.sbd_layers`, so this file reads as the model's forward pass.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from common.atomic import atomic_write_bytes
from policies.sbd_inputs import augment_shift, bin_centres, discretize_actions, images_to_tensor, segment_ids_from_boundaries
from policies.sbd_layers import KeypointEncoder, TransformerBlock

__all__ = [
    "CONFIG_FILE",
    "WEIGHTS_FILE",
    "ActionPredictor",
    "ActionPredictorConfig",
    "EpisodeScoring",
    "load_single_predictor",
    "read_predictor_meta",
    "remove_member_dirs",
    "save_single_predictor",
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
        self.blocks = nn.ModuleList(TransformerBlock(c.d_model, c.n_heads) for _ in range(c.n_layers))
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
