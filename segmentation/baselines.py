"""Baselines for boundary detection: fixed-length segments and gripper events only.

Both see what the detector sees (actions; never phase labels). The fixed length is
chosen on the validation split like the detector's gap.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from segmentation.dataset import gripper_events
from segmentation.metrics import evaluate_episodes

__all__ = ["fixed_length_boundaries", "gripper_event_boundaries", "tune_fixed_length"]


def fixed_length_boundaries(length: int, every: int) -> list[int]:
    """Boundaries every `every` steps: every, 2*every, ... < length."""
    if every < 1:
        raise ValueError(f"segment length must be >= 1, got {every}")
    return list(range(every, length, every))


def gripper_event_boundaries(actions: np.ndarray) -> list[int]:
    """Boundaries at gripper open/close command changes only."""
    return gripper_events(actions)


def tune_fixed_length(lengths: Sequence[int], phases: Sequence[np.ndarray], candidates: Sequence[int] = range(2, 41),
                      metric: str = "f1@5") -> tuple[int, dict[str, float]]:
    """Segment length of best `metric` on validation episodes (given their lengths and phase labels)."""
    best: tuple[tuple[float, float], int, dict[str, float]] | None = None
    for every in candidates:
        r = evaluate_episodes([fixed_length_boundaries(n, every) for n in lengths], phases)
        key = (r[metric], r["f1@2"])
        if best is None or key > best[0]:
            best = (key, int(every), r)
    assert best is not None
    return best[1], best[2]
