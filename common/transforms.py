"""Rotations and poses: unit quaternions (w, x, y, z), rotation matrices and 4x4 transforms.

The one home for the conversions perception, the ROS bridge and the demo importer share, so a
pose means the same in each. The arithmetic is MuJoCo's (`mju_*`, the simulator's own
convention: Hamilton product, scalar first), not written again here. ROS messages carry
quaternions as (x, y, z, w): `xyzw_to_wxyz` turns them round.

Every function takes array-likes and refuses an argument of the wrong shape or with NaN / inf
with a ValueError that names it. Quaternions are not renormalised (callers pass unit ones);
rotation matrices are not checked for orthonormality.
"""

from __future__ import annotations

import mujoco
import numpy as np
from numpy.typing import ArrayLike

__all__ = [
    "matrix_to_quat",
    "pose_matrix",
    "quat_conjugate",
    "quat_multiply",
    "quat_rotate",
    "quat_to_matrix",
    "xyzw_to_wxyz",
]


def _checked(value: ArrayLike, shape: tuple[int, ...], name: str) -> np.ndarray:
    """`value` as a contiguous float64 array of `shape` (what the mju_* bindings take), or ValueError naming it."""
    a = np.ascontiguousarray(value, dtype=np.float64)
    if a.shape != shape:
        raise ValueError(f"{name} must have shape {shape}, got {a.shape}")
    if not np.isfinite(a).all():
        raise ValueError(f"{name} must be finite, got {a.tolist()}")
    return a


def quat_to_matrix(quat_wxyz: ArrayLike) -> np.ndarray:
    """Rotation matrix (3, 3) of a unit quaternion (w, x, y, z)."""
    R = np.empty(9)
    mujoco.mju_quat2Mat(R, _checked(quat_wxyz, (4,), "quat_wxyz"))
    return R.reshape(3, 3)


def matrix_to_quat(R: ArrayLike) -> np.ndarray:
    """Unit quaternion (w, x, y, z) of a rotation matrix (3, 3), w >= 0 (q and -q are one rotation: one is chosen)."""
    q = np.empty(4)
    mujoco.mju_mat2Quat(q, _checked(R, (3, 3), "R").reshape(9))
    return q if q[0] >= 0 else -q


def pose_matrix(position: ArrayLike, quat_wxyz: ArrayLike) -> np.ndarray:
    """4x4 homogeneous transform of a pose (position (3,), unit quaternion (w, x, y, z))."""
    T = np.eye(4)
    T[:3, :3] = quat_to_matrix(quat_wxyz)
    T[:3, 3] = _checked(position, (3,), "position")
    return T


def quat_multiply(a: ArrayLike, b: ArrayLike) -> np.ndarray:
    """Hamilton product a * b (rotate by b, then by a), quaternions (w, x, y, z)."""
    out = np.empty(4)
    mujoco.mju_mulQuat(out, _checked(a, (4,), "a"), _checked(b, (4,), "b"))
    return out


def quat_conjugate(quat_wxyz: ArrayLike) -> np.ndarray:
    """Conjugate (w, -x, -y, -z): the inverse rotation of a unit quaternion."""
    out = np.empty(4)
    mujoco.mju_negQuat(out, _checked(quat_wxyz, (4,), "quat_wxyz"))
    return out


def quat_rotate(quat_wxyz: ArrayLike, v: ArrayLike) -> np.ndarray:
    """A vector (3,) rotated by a unit quaternion (w, x, y, z)."""
    out = np.empty(3)
    mujoco.mju_rotVecQuat(out, _checked(v, (3,), "v"), _checked(quat_wxyz, (4,), "quat_wxyz"))
    return out


def xyzw_to_wxyz(quat_xyzw: ArrayLike, normalise: bool = True) -> np.ndarray:
    """A ROS quaternion (x, y, z, w) as (w, x, y, z), scaled to unit length unless `normalise` is False."""
    x, y, z, w = _checked(quat_xyzw, (4,), "quat_xyzw")
    q = np.array([w, x, y, z])
    if not normalise:
        return q
    norm = np.linalg.norm(q)
    if not norm > 0:
        raise ValueError("quat_xyzw must not be zero (it is no rotation)")
    return q / norm
