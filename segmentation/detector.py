"""The SBD boundary rule, on the action predictor's loss, with memory resets and the "info" signal.

Rule (Open-World Skill Discovery from Unsegmented Demonstrations, 2025): with
loss_t = -log p(a_t | o_<=t), step t starts a new skill when

    loss_t - mean(loss_s .. loss_t) > gap        (s: the last boundary, step t included)

and t - s >= min_len. After a boundary the predictor's memory is reset (its context starts
at the boundary) and the loss list restarts. The loss+info variant adds the gripper
open/close events as boundaries: an event is always a boundary, and a loss boundary fewer
than `min_len` steps before an event is moved onto the event (events are exact, loss peaks
may lead them by a step).

The loss may be read with a bin tolerance w (`DetectorParams.bin_tolerance`, ours, not the
paper's): loss_t = -log P(each action dimension within w bins of a_t's bin). The predictor is
trained on targets smoothed over neighbouring bins, so the mass on the exact bin swings with
where in its bin an action falls; within +-1 bin that noise is gone, and the smaller changes
at predictable switches stand out (measured in docs/segmentation.md). Validation chooses w.

The gap may be measured in units of the loss's spread (`DetectorParams.gap_unit="episode_std"`,
ours): the threshold at step t is gap * sd_t, where sd_t is the standard deviation of the
losses the rule has scored so far in the episode, shrunk towards `std_prior` (nats) as if
that prior had been seen for `STD_PRIOR_STEPS` steps (so the first steps have a scale).
Why: one gap in nats is a compromise between tasks and episodes whose losses are noisier or
quieter (on Push the paper's rule fires too often where on PickPlace it misses); a gap in
units of the episode's own spread adapts, causally. Validation chooses the unit.

`detect_boundaries` applies the rule to a fixed loss sequence (no memory reset);
`detect_with_model` runs it with the model and resets, recomputing only the K - 1 steps
a reset affects.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

__all__ = ["GAP_UNITS", "STD_PRIOR_STEPS", "DetectorParams", "Detection", "detect_boundaries", "detect_with_model", "idle_steps"]

GAP_UNITS = ("nats", "episode_std")
STD_PRIOR_STEPS = 5  # the weight of `std_prior`, in steps, in the running spread of an "episode_std" gap


@dataclass(frozen=True)
class DetectorParams:
    """Boundary rule parameters: gap, minimum segment length (steps), events on/off,
    memory reset on/off, the no-action threshold `idle_eps` (0: every step is scored),
    `two_sided` (also falls of the loss below the mean; not in the paper), `bin_tolerance`
    (the loss scores the action's bin +- this many bins; 0: the exact bin, as in the paper),
    `gap_unit` ("nats", as in the paper, or "episode_std": the gap times the spread of the
    episode's losses so far; not in the paper) and `std_prior` (nats; that spread's prior)."""

    gap: float
    min_len: int = 2
    use_events: bool = False
    reset_memory: bool = True
    idle_eps: float = 0.0
    two_sided: bool = False
    bin_tolerance: int = 0
    gap_unit: str = "nats"
    std_prior: float = 1.0

    def __post_init__(self) -> None:
        if not np.isfinite(self.gap):
            raise ValueError(f"gap must be finite, got {self.gap}")
        if int(self.min_len) < 1:
            raise ValueError(f"min_len must be >= 1, got {self.min_len}")
        if not (np.isfinite(self.idle_eps) and self.idle_eps >= 0):
            raise ValueError(f"idle_eps must be >= 0, got {self.idle_eps}")
        if isinstance(self.bin_tolerance, bool) or not isinstance(self.bin_tolerance, (int, np.integer)) or self.bin_tolerance < 0:
            raise ValueError(f"bin_tolerance must be a whole number of bins >= 0, got {self.bin_tolerance!r}")
        if self.gap_unit not in GAP_UNITS:
            raise ValueError(f"gap_unit must be one of {', '.join(GAP_UNITS)}, got {self.gap_unit!r}")
        if not (np.isfinite(self.std_prior) and self.std_prior > 0):
            raise ValueError(f"std_prior must be > 0 nats, got {self.std_prior}")

    @property
    def rule(self) -> str:
        """The rule's name as the CLI spells it: "two-sided" (ours) or "paper" (a rise only)."""
        return "two-sided" if self.two_sided else "paper"

    @property
    def gap_text(self) -> str:
        """The gap with its unit, for logs and tables: "2 nats" or "1.125 sd (prior 2 nats)"."""
        if self.gap_unit == "episode_std":
            return f"{self.gap:g} sd (prior {self.std_prior:g} nats)"
        return f"{self.gap:g} nats"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Detection:
    """Boundaries found in one episode, the loss curve seen by the rule, and which boundaries were events."""

    boundaries: list[int]
    losses: np.ndarray
    from_event: list[bool]


def idle_steps(actions: Any, eps: float, gripper_dim: int = -1) -> np.ndarray:
    """Boolean (T,): no action at step t (all motion components |a| < eps, gripper command as at t-1)."""
    a = np.asarray(actions, dtype=np.float64)
    if a.ndim != 2:
        raise ValueError(f"actions must be (T, A), got {a.shape}")
    if eps <= 0:
        return np.zeros(len(a), dtype=bool)
    g = a[:, gripper_dim] > 0
    same = np.concatenate([[True], g[1:] == g[:-1]])
    motion = np.delete(a, gripper_dim % a.shape[1], axis=1)
    return (np.abs(motion).max(axis=1) < eps) & same


class _Rule:
    """Incremental state of the rule: running sum since the last boundary (and the episode's spread)."""

    def __init__(self, params: DetectorParams, events: Sequence[int], idle: np.ndarray | None = None):
        self.p = params
        self.idle = idle
        self.events = set(int(e) for e in events) if params.use_events else set()
        self.boundaries: list[int] = []
        self.kinds: list[bool] = []
        self.start = 0
        self.total = 0.0
        self.count = 0
        self.seen, self.seen_mean, self.seen_m2 = 0, 0.0, 0.0  # Welford: the losses scored so far in the episode

    def restart(self, t: int) -> None:
        self.start, self.total, self.count = t, 0.0, 0

    def step(self, t: int, loss: float) -> bool:
        """Feed loss_t; returns True if t became a boundary (the caller then resets memory)."""
        p = self.p
        if t in self.events:
            if self.boundaries and not self.kinds[-1] and t - self.boundaries[-1] < p.min_len:
                self.boundaries[-1] = t  # snap the loss boundary onto the exact event
                self.kinds[-1] = True
            elif t > 0:
                self.boundaries.append(t)
                self.kinds.append(True)
            self.restart(t)
            return True
        if self.idle is not None and self.idle[t]:
            return False  # no action: not scored (and the memory is not reset)
        self.total += loss
        self.count += 1
        excess = loss - self.total / self.count
        if p.two_sided:
            excess = abs(excess)
        threshold = p.gap
        if p.gap_unit == "episode_std":
            threshold = p.gap * self.spread()
            self.seen += 1  # after the threshold: the spread is of the losses before t
            delta = loss - self.seen_mean
            self.seen_mean += delta / self.seen
            self.seen_m2 += delta * (loss - self.seen_mean)
        if t > 0 and t - self.start >= p.min_len and excess > threshold:
            self.boundaries.append(t)
            self.kinds.append(False)
            self.restart(t)
            return True
        return False

    def spread(self) -> float:
        """Standard deviation of the losses scored so far, shrunk towards `std_prior` (weight STD_PRIOR_STEPS)."""
        return math.sqrt((self.seen_m2 + STD_PRIOR_STEPS * self.p.std_prior ** 2) / (self.seen + STD_PRIOR_STEPS))


def detect_boundaries(losses: Sequence[float] | np.ndarray, params: DetectorParams, events: Sequence[int] = (),
                      actions: Any = None) -> Detection:
    """Apply the rule to a fixed loss sequence (memory resets are not modelled: use `detect_with_model`).

    After a boundary at b the loss list restarts with loss_b. `actions` (T, A) are needed
    only to drop no-action steps when `params.idle_eps > 0`. The losses must be read with
    `params.bin_tolerance` (`model.episode_losses(..., tolerance=params.bin_tolerance)`).
    """
    x = np.asarray(losses, dtype=np.float64)
    if x.ndim != 1:
        raise ValueError(f"losses must be 1-D, got shape {x.shape}")
    if not np.all(np.isfinite(x)):
        raise ValueError("losses contain NaN or inf")
    idle = None
    if params.idle_eps > 0:
        if actions is None:
            raise ValueError("idle_eps > 0 needs the actions to find no-action steps")
        idle = idle_steps(actions, params.idle_eps)
    rule = _Rule(params, events, idle)
    for t in range(len(x)):
        if rule.step(t, float(x[t])):
            rule.total, rule.count = float(x[t]), 1
    return Detection(rule.boundaries, x.copy(), rule.kinds)


def detect_with_model(model: Any, tokens: Any, actions: Any, params: DetectorParams, events: Sequence[int] = (),
                      base_losses: np.ndarray | None = None) -> Detection:
    """Run the rule with the action predictor, resetting its memory at each boundary.

    `tokens` are `model.embed(...)` outputs (T, d) for the episode, `actions` (T, A).
    `base_losses` (the losses without any reset, read with `params.bin_tolerance`) may be
    passed to skip the first pass.
    A reset at b changes the losses of steps b .. b + K - 1 only (the model sees at most
    K steps), so only those are recomputed. The returned losses are the ones the rule saw.
    """
    import torch

    n = int(tokens.shape[0])
    k = int(model.config.context)
    with torch.no_grad():
        if base_losses is None:
            base_losses = model.nll(model.step_logits(tokens), actions, params.bin_tolerance).numpy().astype(np.float64)
        losses = np.array(base_losses, dtype=np.float64, copy=True)
        if not params.reset_memory:
            return detect_boundaries(losses, params, events, actions)
        acts = np.asarray(actions)
        rule = _Rule(params, events, idle_steps(acts, params.idle_eps) if params.idle_eps > 0 else None)
        t = 0
        while t < n:
            if rule.step(t, float(losses[t])):
                end = min(n, t + k)
                lg = model.step_logits(tokens, [t], steps=range(t, end))
                losses[t:end] = model.nll(lg, acts[t:end], params.bin_tolerance).numpy()
                rule.total, rule.count = float(losses[t]), 1
            t += 1
    return Detection(rule.boundaries, losses, rule.kinds)
