"""Poses in a bag: quaternion arithmetic on arrays, interpolation onto the demo's ticks, TF chains.

Object poses come from geometry_msgs/PoseStamped topics (in their header's frame) or from
tf2 transforms (/tf, /tf_static). `TfTree` keeps every parent -> child transform as a time
series (a static one as a constant) and resolves a frame into the base frame along its chain
of parents, each link interpolated at the query times. Positions are interpolated linearly,
orientations by spherical linear interpolation (quaternions w, x, y, z, kept in one hemisphere
from sample to sample). Times outside a series hold its first or last value.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from demos.errors import BagImportError

__all__ = ["TfTree", "angular_velocity_local", "interp_pose", "quat_mul", "quat_rotate"]


def quat_mul(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Hamilton product of quaternions (..., 4), w first."""
    w1, x1, y1, z1 = np.moveaxis(np.asarray(a, dtype=np.float64), -1, 0)
    w2, x2, y2, z2 = np.moveaxis(np.asarray(b, dtype=np.float64), -1, 0)
    return np.stack([
        w1 * w2 - x1 * x2 - y1 * y2 - z1 * z2,
        w1 * x2 + x1 * w2 + y1 * z2 - z1 * y2,
        w1 * y2 - x1 * z2 + y1 * w2 + z1 * x2,
        w1 * z2 + x1 * y2 - y1 * x2 + z1 * w2,
    ], axis=-1)  # fmt: skip


def quat_conj(q: np.ndarray) -> np.ndarray:
    """Conjugate (the inverse of a unit quaternion)."""
    return np.asarray(q, dtype=np.float64) * np.array([1.0, -1.0, -1.0, -1.0])


def quat_rotate(q: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Rotate vectors (..., 3) by unit quaternions (..., 4)."""
    v4 = np.concatenate((np.zeros(np.shape(v)[:-1] + (1,)), v), axis=-1)
    return quat_mul(quat_mul(q, v4), quat_conj(q))[..., 1:]


def _hemisphere(q: np.ndarray) -> np.ndarray:
    """The same rotations with each quaternion on the side of its predecessor (q and -q are one rotation)."""
    q = np.array(q, dtype=np.float64)
    flips = np.concatenate(([False], np.sum(q[1:] * q[:-1], axis=1) < 0))
    sign = np.where(np.logical_xor.accumulate(flips), -1.0, 1.0)
    return q * sign[:, None]


def interp_pose(times: np.ndarray, pos: np.ndarray, quat: np.ndarray, grid: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Pose series (times (N,), pos (N, 3), quat (N, 4) wxyz) at `grid` times: linear / slerp, held at the ends."""
    t = np.asarray(times, dtype=np.float64)
    grid = np.asarray(grid, dtype=np.float64)
    p = np.stack([np.interp(grid, t, pos[:, i]) for i in range(3)], axis=1)
    q = _hemisphere(np.asarray(quat, dtype=np.float64) / np.linalg.norm(quat, axis=1, keepdims=True))
    if len(t) == 1:
        return p, np.repeat(q, len(grid), axis=0)
    i = np.clip(np.searchsorted(t, grid, side="right") - 1, 0, len(t) - 2)
    u = np.clip((grid - t[i]) / (t[i + 1] - t[i]), 0.0, 1.0)[:, None]
    q0, q1 = q[i], q[i + 1]
    cos = np.clip(np.sum(q0 * q1, axis=1, keepdims=True), -1.0, 1.0)
    theta = np.arccos(cos)
    sin = np.sin(theta)
    small = sin < 1e-9
    w0 = np.where(small, 1.0 - u, np.sin((1.0 - u) * theta) / np.where(small, 1.0, sin))
    w1 = np.where(small, u, np.sin(u * theta) / np.where(small, 1.0, sin))
    out = w0 * q0 + w1 * q1
    return p, out / np.linalg.norm(out, axis=1, keepdims=True)


def angular_velocity_local(quat: np.ndarray, times: np.ndarray) -> np.ndarray:
    """Angular velocity (N, 3) in the body's own frame (MuJoCo's free-joint convention), by forward differences."""
    q = _hemisphere(quat)
    out = np.zeros((len(q), 3))
    if len(q) < 2:
        return out
    rel = quat_mul(quat_conj(q[:-1]), q[1:])
    rel *= np.where(rel[:, :1] < 0, -1.0, 1.0)
    vec = rel[:, 1:]
    norm = np.linalg.norm(vec, axis=1, keepdims=True)
    angle = 2.0 * np.arctan2(norm, rel[:, :1])
    axis = np.divide(vec, norm, out=np.zeros_like(vec), where=norm > 1e-12)
    out[:-1] = axis * angle / np.diff(np.asarray(times, dtype=np.float64))[:, None]
    out[-1] = out[-2]
    return out


@dataclass
class _Link:
    parent: str
    times: list[float]
    pos: list[np.ndarray]
    quat: list[np.ndarray]
    static: bool


class TfTree:
    """tf2 transforms of a bag, each child's pose in its parent over time (see the module docstring)."""

    def __init__(self) -> None:
        self.links: dict[str, _Link] = {}

    def add(self, parent: str, child: str, t: float, pos: np.ndarray, quat_wxyz: np.ndarray, static: bool, where: str) -> None:
        """One transform parent -> child at time t (seconds); a child keeps one parent."""
        parent, child = parent.lstrip("/"), child.lstrip("/")
        link = self.links.get(child)
        if link is None:
            link = self.links[child] = _Link(parent, [], [], [], static)
        elif link.parent != parent:
            raise BagImportError(f"{where}: frame {child!r} has two parents in the bag ({link.parent!r} and {parent!r})")
        if static:  # a latched static transform: the last one stands for all time
            link.times, link.pos, link.quat, link.static = [0.0], [pos], [quat_wxyz], True
            return
        link.times.append(t)
        link.pos.append(pos)
        link.quat.append(quat_wxyz)

    def frames(self) -> list[str]:
        """Every child frame with a known parent."""
        return sorted(self.links)

    def chain(self, frame: str, base: str, where: str) -> list[str]:
        """Frames from `frame` up to (not including) `base`; BagImportError when the chain breaks."""
        frame, base = frame.lstrip("/"), base.lstrip("/")
        out: list[str] = []
        f = frame
        while f != base:
            if f in out or f not in self.links:
                known = ", ".join(f"{l.parent}->{c}" for c, l in sorted(self.links.items())) or "none"
                raise BagImportError(
                    f"{where}: no transform chain from frame {frame!r} to the base frame {base!r} "
                    f"(it stops at {f!r}; transforms in the bag: {known})"
                )
            out.append(f)
            f = self.links[f].parent
        return out

    def lookup(self, frame: str, base: str, grid: np.ndarray, where: str) -> tuple[np.ndarray, np.ndarray]:
        """Pose of `frame` in `base` at `grid` times (position (N, 3), quaternion (N, 4) wxyz)."""
        n = len(grid)
        pos, quat = np.zeros((n, 3)), np.tile([1.0, 0.0, 0.0, 0.0], (n, 1))
        for child in self.chain(frame, base, where):  # compose from the frame upwards: T_parent_x = T_parent_child T_child_x
            link = self.links[child]
            order = np.argsort(link.times, kind="stable")
            t = np.asarray(link.times)[order]
            keep = np.concatenate(([True], np.diff(t) > 0))
            lp, lq = interp_pose(t[keep], np.asarray(link.pos)[order][keep], np.asarray(link.quat)[order][keep], grid)
            pos = lp + quat_rotate(lq, pos)
            quat = quat_mul(lq, quat)
        return pos, quat
