"""Torch layers of the skill-boundary-detection models: the camera encoder and the attention block.

`KeypointEncoder` (a small strided CNN ending in `SpatialSoftmax` keypoints plus pooled
features) encodes each camera frame for both the action predictor and the inverse-dynamics
model; `TransformerBlock` is the pre-LN block the action predictor stacks over its per-step
tokens. They are building blocks without a training rule or file format, kept apart from
the models that assemble them.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["KeypointEncoder", "SpatialSoftmax", "TransformerBlock"]


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


class TransformerBlock(nn.Module):
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
