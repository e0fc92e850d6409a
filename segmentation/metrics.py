"""Segmentation metrics: boundary precision/recall/F1 within a tolerance, segment F1@IoU, edit score.

- Boundary P/R/F1 @±tol: a detected boundary is a true positive when it is matched to a
  true boundary at most `tol` steps away; matching is one-to-one and maximal (each true
  boundary in time order takes the earliest unmatched detection in its window, which is
  optimal for points on a line). Counts are summed over episodes (micro average).
- Segment F1@τ (MS-TCN's `f_score`): every predicted segment, in order, is matched to the
  true segment of highest IoU; it is a true positive when IoU >= τ and that true segment
  is not matched yet. Boundary detection predicts no class, so this is class-agnostic:
  it scores where segments start and end, and over- and under-segmentation both cost.
- Edit score (MS-TCN's normalised Levenshtein, 0-100) between the sequence of true phase
  labels and the sequence of predicted segments, each labelled with the majority true
  phase of its frames. Adjacent predicted segments are *not* merged, so a split segment
  costs an insertion.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

__all__ = [
    "PRF",
    "boundary_counts",
    "boundary_f1_interval",
    "edit_score",
    "evaluate_episodes",
    "prf",
    "segment_counts",
    "segments_from_boundaries",
]


@dataclass
class PRF:
    """True positives, false positives, false negatives and the derived scores."""

    tp: int = 0
    fp: int = 0
    fn: int = 0

    def __iadd__(self, other: "PRF") -> "PRF":
        self.tp += other.tp
        self.fp += other.fp
        self.fn += other.fn
        return self

    @property
    def precision(self) -> float:
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else (1.0 if self.fn == 0 else 0.0)

    @property
    def recall(self) -> float:
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else 1.0

    @property
    def f1(self) -> float:
        p, r = self.precision, self.recall
        return 2 * p * r / (p + r) if p + r else 0.0

    def as_dict(self) -> dict[str, float]:
        return {"precision": self.precision, "recall": self.recall, "f1": self.f1, "tp": self.tp, "fp": self.fp, "fn": self.fn}


def prf(tp: int, fp: int, fn: int) -> PRF:
    """Construct a PRF."""
    return PRF(tp, fp, fn)


def boundary_counts(pred: Iterable[int], true: Iterable[int], tol: int) -> PRF:
    """One-to-one matching of predicted to true boundaries within ±tol steps (see module docstring)."""
    if tol < 0:
        raise ValueError(f"tolerance must be >= 0, got {tol}")
    p = sorted(int(x) for x in pred)
    ts = sorted(int(x) for x in true)
    used = [False] * len(p)
    tp = 0
    for t in ts:
        for i, b in enumerate(p):
            if not used[i] and abs(b - t) <= tol:
                used[i] = True
                tp += 1
                break
    return PRF(tp, len(p) - tp, len(ts) - tp)


def segments_from_boundaries(boundaries: Iterable[int], length: int) -> list[tuple[int, int]]:
    """[(start, end)) segments covering 0..length, cut at the boundaries (out-of-range ones ignored)."""
    cuts = sorted({int(b) for b in boundaries if 0 < int(b) < length})
    edges = [0, *cuts, length]
    return [(a, b) for a, b in zip(edges[:-1], edges[1:])]


def segment_counts(pred: Sequence[tuple[int, int]], true: Sequence[tuple[int, int]], iou: float) -> PRF:
    """Class-agnostic MS-TCN segment F1 counts at IoU threshold `iou`."""
    if not true:
        return PRF(0, len(pred), 0)
    ts = np.array([s for s, _ in true], dtype=float)
    te = np.array([e for _, e in true], dtype=float)
    hit = np.zeros(len(true), dtype=bool)
    tp = fp = 0
    for s, e in pred:
        inter = np.minimum(te, e) - np.maximum(ts, s)
        union = np.maximum(te, e) - np.minimum(ts, s)
        ious = np.clip(inter, 0, None) / union
        j = int(np.argmax(ious))
        if ious[j] >= iou and not hit[j]:
            tp += 1
            hit[j] = True
        else:
            fp += 1
    return PRF(tp, fp, len(true) - int(hit.sum()))


def _levenshtein(a: Sequence[int], b: Sequence[int]) -> int:
    d = np.arange(len(b) + 1)
    for i, x in enumerate(a, 1):
        prev, d[0] = d[0], i
        for j, y in enumerate(b, 1):
            prev, d[j] = d[j], min(d[j] + 1, d[j - 1] + 1, prev + (x != y))
    return int(d[-1])


def edit_score(pred_segments: Sequence[tuple[int, int]], phases: Sequence[int] | np.ndarray) -> float:
    """MS-TCN edit score (0-100); predicted segments labelled by their majority true phase."""
    ph = np.asarray(phases)
    true_seq = [int(ph[s]) for s, _ in segments_from_boundaries(_changes(ph), len(ph))]
    pred_seq = [int(np.bincount(ph[s:e]).argmax()) for s, e in pred_segments]
    n = max(len(true_seq), len(pred_seq))
    return (1.0 - _levenshtein(pred_seq, true_seq) / n) * 100.0 if n else 100.0


def _changes(ph: np.ndarray) -> list[int]:
    return [int(t) for t in np.nonzero(ph[1:] != ph[:-1])[0] + 1]


def evaluate_episodes(
    predictions: Sequence[Sequence[int]],
    phases: Sequence[np.ndarray],
    tolerances: Sequence[int] = (2, 5),
    ious: Sequence[float] = (0.10, 0.25, 0.50),
) -> dict[str, float]:
    """All metrics over episodes: boundary P/R/F1@±tol, segment F1@IoU and mean edit score.

    `predictions[i]` are the detected boundaries of episode i, `phases[i]` its true phase per step.
    Keys: precision@2, recall@2, f1@2, ..., seg_f1@0.10, ..., edit, n_true, n_pred.
    """
    if len(predictions) != len(phases):
        raise ValueError(f"{len(predictions)} predictions for {len(phases)} episodes")
    out: dict[str, float] = {}
    for tol in tolerances:
        c = PRF()
        for pred, ph in zip(predictions, phases):
            c += boundary_counts(pred, _changes(np.asarray(ph)), tol)
        out[f"precision@{tol}"], out[f"recall@{tol}"], out[f"f1@{tol}"] = c.precision, c.recall, c.f1
    for thr in ious:
        c = PRF()
        for pred, ph in zip(predictions, phases):
            n = len(ph)
            c += segment_counts(segments_from_boundaries(pred, n), segments_from_boundaries(_changes(np.asarray(ph)), n), thr)
        out[f"seg_f1@{thr:.2f}"] = c.f1
    edits = [edit_score(segments_from_boundaries(pred, len(ph)), ph) for pred, ph in zip(predictions, phases)]
    out["edit"] = float(np.mean(edits)) if edits else 0.0
    out["n_true"] = float(sum(len(_changes(np.asarray(ph))) for ph in phases))
    out["n_pred"] = float(sum(len(p) for p in predictions))
    return out


def boundary_f1_interval(
    predictions: Sequence[Sequence[int]],
    phases: Sequence[np.ndarray],
    tol: int = 5,
    level: float = 0.95,
    resamples: int = 2000,
    seed: int = 0,
) -> tuple[float, float]:
    """Bootstrap interval of the micro boundary F1@±tol, resampling whole episodes with replacement.

    Why: a test split of a few dozen episodes holds about a hundred boundaries, so F1 moves by
    several points with the draw of episodes; the interval says how far a figure can be trusted.
    """
    if len(predictions) != len(phases):
        raise ValueError(f"{len(predictions)} predictions for {len(phases)} episodes")
    if not 0 < level < 1:
        raise ValueError(f"level must be in (0, 1), got {level}")
    if not predictions:
        return (0.0, 0.0)
    counts = np.array([[c.tp, c.fp, c.fn] for c in (boundary_counts(p, _changes(np.asarray(ph)), tol)
                                                     for p, ph in zip(predictions, phases))], dtype=float)
    rng = np.random.default_rng(seed)
    tp, fp, fn = counts[rng.integers(0, len(counts), (int(resamples), len(counts)))].sum(axis=1).T
    denom = 2 * tp + fp + fn
    f1 = np.divide(2 * tp, denom, out=np.ones_like(tp), where=denom > 0)  # nothing to find, nothing found: perfect
    lo, hi = np.quantile(f1, [(1 - level) / 2, (1 + level) / 2])
    return (float(lo), float(hi))
