"""Group segments into skill types: k-means on the action predictor's segment embeddings.

A segment's embedding is the mean of the predictor's transformer features over its steps
(computed with the memory reset at the segment start, as during detection), standardised
per feature. k-means++ initialisation, Lloyd iterations, best of `restarts` runs (seeded).
`choose_k` picks the number of skill types by the silhouette score.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["SkillTypes", "choose_k", "fit_skill_types", "kmeans", "silhouette"]


def kmeans(x: np.ndarray, k: int, *, seed: int = 0, iters: int = 100, restarts: int = 8) -> tuple[np.ndarray, np.ndarray, float]:
    """k-means++ / Lloyd; returns (centroids (k, D), labels (N,), inertia). Best of `restarts`."""
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 2 or len(x) == 0:
        raise ValueError(f"kmeans needs a non-empty (N, D) array, got {x.shape}")
    if not 1 <= k <= len(x):
        raise ValueError(f"k must be in [1, {len(x)}] (number of points), got {k}")
    rng = np.random.default_rng(seed)
    best: tuple[np.ndarray, np.ndarray, float] | None = None
    for _ in range(restarts):
        c = [x[rng.integers(len(x))]]
        for _ in range(1, k):
            d2 = np.min(((x[:, None] - np.array(c)[None]) ** 2).sum(-1), axis=1)
            p = d2 / d2.sum() if d2.sum() > 0 else np.full(len(x), 1 / len(x))
            c.append(x[rng.choice(len(x), p=p)])
        cent = np.array(c)
        labels = np.zeros(len(x), dtype=int)
        for _ in range(iters):
            d = ((x[:, None] - cent[None]) ** 2).sum(-1)
            new = d.argmin(1)
            if _ > 0 and np.array_equal(new, labels):
                break
            labels = new
            for j in range(k):
                if np.any(labels == j):
                    cent[j] = x[labels == j].mean(0)
        inertia = float(((x - cent[labels]) ** 2).sum())
        if best is None or inertia < best[2]:
            best = (cent.copy(), labels.copy(), inertia)
    assert best is not None
    return best


def silhouette(x: np.ndarray, labels: np.ndarray) -> float:
    """Mean silhouette coefficient (Euclidean); 0 when there is a single cluster."""
    x = np.asarray(x, dtype=np.float64)
    labels = np.asarray(labels)
    ks = np.unique(labels)
    if len(ks) < 2:
        return 0.0
    sq = (x**2).sum(1)
    d = np.sqrt(np.maximum(sq[:, None] + sq[None] - 2.0 * x @ x.T, 0.0))
    s = np.zeros(len(x))
    for i in range(len(x)):
        same = labels == labels[i]
        n_same = same.sum() - 1
        if n_same == 0:
            continue
        a = d[i, same].sum() / n_same
        b = min(d[i, labels == k].mean() for k in ks if k != labels[i])
        s[i] = (b - a) / max(a, b) if max(a, b) > 0 else 0.0
    return float(s.mean())


@dataclass
class SkillTypes:
    """Fitted skill types: standardisation and centroids in embedding space."""

    mean: np.ndarray
    std: np.ndarray
    centroids: np.ndarray

    @property
    def k(self) -> int:
        return int(len(self.centroids))

    def assign(self, embeddings: np.ndarray) -> np.ndarray:
        """Skill type (nearest centroid) of each embedding (N, D)."""
        e = np.atleast_2d(np.asarray(embeddings, dtype=np.float64))
        if e.shape[1] != self.centroids.shape[1]:
            raise ValueError(f"embeddings have {e.shape[1]} features, the skill types {self.centroids.shape[1]}")
        z = (e - self.mean) / self.std
        return ((z[:, None] - self.centroids[None]) ** 2).sum(-1).argmin(1)

    def to_dict(self) -> dict[str, Any]:
        return {"mean": self.mean.tolist(), "std": self.std.tolist(), "centroids": self.centroids.tolist()}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "SkillTypes":
        return cls(np.asarray(d["mean"], float), np.asarray(d["std"], float), np.asarray(d["centroids"], float))


def choose_k(x: np.ndarray, ks: Sequence[int] = range(2, 9), seed: int = 0) -> int:
    """The k of highest silhouette score among `ks` (k < number of points)."""
    x = np.asarray(x, dtype=np.float64)
    best_k, best_s = min(ks), -2.0
    for k in ks:
        if k >= len(x):
            break
        _, labels, _ = kmeans(x, k, seed=seed)
        s = silhouette(x, labels)
        if s > best_s:
            best_k, best_s = k, s
    return best_k


def fit_skill_types(embeddings: np.ndarray, k: int | None = None, seed: int = 0) -> SkillTypes:
    """Standardise segment embeddings and cluster them (k chosen by silhouette when None)."""
    e = np.asarray(embeddings, dtype=np.float64)
    if e.ndim != 2 or len(e) < 2:
        raise ValueError(f"need at least 2 segment embeddings (N, D), got {e.shape}")
    mean = e.mean(0)
    std = e.std(0) + 1e-6
    z = (e - mean) / std
    if k is None:
        k = choose_k(z, seed=seed)
    cent, _, _ = kmeans(z, min(int(k), len(z)), seed=seed)
    return SkillTypes(mean, std, cent)
