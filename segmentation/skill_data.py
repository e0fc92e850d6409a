"""Training data for skills discovered in video: corrective augmentation and object-relative inputs.

A discovered skill is fitted by behaviour cloning on a few dozen runs of clean expert motion, with
actions labelled by inverse dynamics. In closed loop its own small errors take it off those runs,
where it has never seen a label. Without a teacher to ask (no DAgger, no DART), the demonstration
itself says what to do from a nearby state: the env's end-effector action moves the TCP target to
`tcp + max_delta * a`, so from a TCP displaced by `d` the action that commands the same target is
`a - d / max_delta` (`corrective_copies`). Each copy shifts the observation's TCP position by `d`
and every object's TCP-relative position by `-d` (their absolute positions, the goal and the
gripper stay), and relabels the translation; the gripper command is unchanged.

`absolute_inputs_off` names the inputs that tie a skill to one arm's configuration (joint angles): they are held
at zero while fitting and given an enormous spread in the saved normalisation, so the network reads
them as zero at run time too, and only the TCP, gripper, cubes (absolute and relative to the TCP)
and goal sites steer it. Cubes are renamed by the planner's grounding (`planning.grounding`), so a
skill found on red and blue runs on whichever cubes the plan binds.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

__all__ = ["IGNORED_FIELDS", "absolute_inputs_off", "corrective_copies", "ignored_columns", "silence_columns"]

# Observation fields a discovered skill does not read (see `absolute_inputs_off`).
IGNORED_FIELDS = ("joint_pos",)
IGNORED_STD = 1e9  # a saved spread this large makes any run-time value read as ~0


def corrective_copies(
    obs: np.ndarray,
    actions: np.ndarray,
    layout: Mapping[str, slice],
    *,
    copies: int,
    sigma: float,
    max_delta: float,
    seed: int = 0,
) -> tuple[np.ndarray, np.ndarray]:
    """`obs` (N, D) and `actions` (N, A) with `copies` displaced copies appended (see the module docstring).

    `layout` maps observation field names to slices of `obs` (the env's `obs_builder.layout`; it needs
    `tcp_pos` and may have `<cube>_rel_pos`). The TCP is displaced by N(0, sigma) metres per axis;
    translation labels are clipped to the action bounds [-1, 1]. `copies=0` returns the inputs.
    """
    x = np.asarray(obs, dtype=np.float64)
    y = np.asarray(actions, dtype=np.float64)
    if x.ndim != 2 or y.ndim != 2 or len(x) != len(y):
        raise ValueError(f"obs and actions must be (N, D) and (N, A) with the same N, got {x.shape} and {y.shape}")
    if copies < 0 or sigma < 0 or not np.isfinite(sigma) or max_delta <= 0:
        raise ValueError(f"need copies >= 0, a finite sigma >= 0 and max_delta > 0, got {copies}, {sigma}, {max_delta}")
    if "tcp_pos" not in layout:
        raise ValueError("the observation layout has no tcp_pos: cannot displace the TCP")
    if copies == 0:
        return x, y
    rel = [s for name, s in layout.items() if name.endswith("_rel_pos")]
    rng = np.random.default_rng(seed)
    xs, ys = [x], [y]
    for _ in range(copies):
        d = rng.normal(0.0, sigma, size=(len(x), 3))
        xc, yc = x.copy(), y.copy()
        xc[:, layout["tcp_pos"]] += d
        for s in rel:
            xc[:, s] -= d
        yc[:, :3] = np.clip(yc[:, :3] - d / max_delta, -1.0, 1.0)
        xs.append(xc)
        ys.append(yc)
    return np.concatenate(xs), np.concatenate(ys)


def ignored_columns(layout: Mapping[str, slice], fields: Sequence[str] = IGNORED_FIELDS) -> np.ndarray:
    """Column indices of the named observation fields present in `layout`."""
    return np.array([i for f in fields if f in layout for i in range(layout[f].start, layout[f].stop)], dtype=int)


def absolute_inputs_off(obs: np.ndarray, columns: np.ndarray) -> np.ndarray:
    """A copy of `obs` with `columns` held at zero (fit on this, then `silence_columns` the policy)."""
    x = np.array(obs, dtype=np.float64, copy=True)
    x[:, columns] = 0.0
    return x


def silence_columns(obs_mean: np.ndarray, obs_std: np.ndarray, columns: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Normalisation that maps any value of `columns` to ~0, as they were while fitting."""
    mean, std = np.array(obs_mean, copy=True), np.array(obs_std, copy=True)
    mean[columns] = 0.0
    std[columns] = IGNORED_STD
    return mean, std
