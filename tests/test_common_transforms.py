"""common.transforms: quaternion <-> matrix round trips, the w >= 0 convention, products and
rotations that agree with the matrices, poses that compose, and bad input refused by name."""

from __future__ import annotations

import numpy as np
import pytest

from common.transforms import (
    matrix_to_quat,
    pose_matrix,
    quat_conjugate,
    quat_multiply,
    quat_rotate,
    quat_to_matrix,
    xyzw_to_wxyz,
)


def _random_quats(n: int, seed: int = 0) -> np.ndarray:
    q = np.random.default_rng(seed).normal(size=(n, 4))
    return q / np.linalg.norm(q, axis=1, keepdims=True)  # both signs of w


def test_quat_to_matrix_is_a_rotation_and_known_on_a_quarter_turn():
    """A quarter turn about z maps x onto y; every result is orthonormal with determinant 1."""
    s = np.sqrt(0.5)
    np.testing.assert_allclose(quat_to_matrix([s, 0.0, 0.0, s]), [[0, -1, 0], [1, 0, 0], [0, 0, 1]], atol=1e-15)
    for q in _random_quats(50):
        R = quat_to_matrix(q)
        np.testing.assert_allclose(R @ R.T, np.eye(3), atol=1e-12)
        assert np.linalg.det(R) == pytest.approx(1.0)


def test_matrix_quat_round_trips_on_random_rotations():
    """matrix -> quat -> matrix is the identity, and quat -> matrix -> quat up to the sign of q."""
    for q in _random_quats(200, seed=1):
        R = quat_to_matrix(q)
        back = matrix_to_quat(R)
        np.testing.assert_allclose(quat_to_matrix(back), R, atol=1e-12)
        np.testing.assert_allclose(back, q if q[0] >= 0 else -q, atol=1e-12)
        assert np.linalg.norm(back) == pytest.approx(1.0)


def test_matrix_to_quat_returns_w_non_negative():
    """q and -q are one rotation: the one with w >= 0 comes back, also for a half turn (w = 0)."""
    qs = _random_quats(200, seed=2)
    assert (qs[:, 0] < 0).any()
    assert all(matrix_to_quat(quat_to_matrix(q))[0] >= 0 for q in qs)
    half_turn = matrix_to_quat(np.diag([1.0, -1.0, -1.0]))
    np.testing.assert_allclose(np.abs(half_turn), [0, 1, 0, 0], atol=1e-15)


def test_quat_multiply_agrees_with_the_matrix_product():
    """R(a * b) = R(a) @ R(b): b first, then a."""
    qs = _random_quats(100, seed=3)
    for a, b in zip(qs[::2], qs[1::2]):
        np.testing.assert_allclose(quat_to_matrix(quat_multiply(a, b)), quat_to_matrix(a) @ quat_to_matrix(b), atol=1e-12)


def test_quat_rotate_agrees_with_the_matrix():
    """Rotating a vector by q is R(q) @ v; by the conjugate, R(q).T @ v."""
    rng = np.random.default_rng(4)
    for q in _random_quats(100, seed=4):
        v = rng.normal(size=3)
        np.testing.assert_allclose(quat_rotate(q, v), quat_to_matrix(q) @ v, atol=1e-12)
        np.testing.assert_allclose(quat_rotate(quat_conjugate(q), v), quat_to_matrix(q).T @ v, atol=1e-12)
    np.testing.assert_array_equal(quat_conjugate([0.5, 0.5, -0.5, 0.5]), [0.5, -0.5, 0.5, -0.5])


def test_pose_matrix_composes_like_the_poses():
    """T(p_a, q_a) @ T(p_b, q_b) = T(p_a + q_a p_b, q_a * q_b), and T maps a point as R p + t."""
    rng = np.random.default_rng(5)
    qa, qb = _random_quats(2, seed=5)
    pa, pb, x = rng.normal(size=(3, 3))
    Ta, Tb = pose_matrix(pa, qa), pose_matrix(pb, qb)
    np.testing.assert_array_equal(Ta[3], [0, 0, 0, 1])
    np.testing.assert_allclose((Ta @ np.append(x, 1.0))[:3], quat_to_matrix(qa) @ x + pa, atol=1e-12)
    np.testing.assert_allclose(Ta @ Tb, pose_matrix(pa + quat_rotate(qa, pb), quat_multiply(qa, qb)), atol=1e-12)


def test_xyzw_to_wxyz_reorders_and_normalises():
    """ROS order (x, y, z, w) -> (w, x, y, z), unit length unless asked not to."""
    np.testing.assert_array_equal(xyzw_to_wxyz([0.0, 0.0, 0.0, 1.0]), [1, 0, 0, 0])
    np.testing.assert_allclose(xyzw_to_wxyz([0.0, 0.0, 2.0, 2.0]), [np.sqrt(0.5), 0, 0, np.sqrt(0.5)])
    np.testing.assert_array_equal(xyzw_to_wxyz((1.0, 2.0, 3.0, 4.0), normalise=False), [4, 1, 2, 3])
    with pytest.raises(ValueError, match="quat_xyzw must not be zero"):
        xyzw_to_wxyz([0.0, 0.0, 0.0, 0.0])


@pytest.mark.parametrize(
    ("call", "name"),
    [
        (lambda: quat_to_matrix([1.0, 0.0, 0.0]), "quat_wxyz must have shape"),
        (lambda: matrix_to_quat(np.eye(4)), "R must have shape"),
        (lambda: matrix_to_quat(np.eye(3).ravel()), "R must have shape"),
        (lambda: pose_matrix([0.0, 0.0], [1.0, 0.0, 0.0, 0.0]), "position must have shape"),
        (lambda: quat_multiply([1.0, 0.0, 0.0, 0.0], [1.0, 0.0]), "b must have shape"),
        (lambda: quat_rotate([1.0, 0.0, 0.0, 0.0], [1.0, 2.0]), "v must have shape"),
        (lambda: xyzw_to_wxyz([[0.0, 0.0, 0.0, 1.0]]), "quat_xyzw must have shape"),
    ],
)
def test_bad_shapes_are_refused_by_name(call, name):
    """An argument of the wrong shape is a ValueError naming it, not a reshape or a MuJoCo binding error."""
    with pytest.raises(ValueError, match=name):
        call()


@pytest.mark.parametrize(
    ("call", "name"),
    [
        (lambda: quat_to_matrix([np.nan, 0.0, 0.0, 0.0]), "quat_wxyz must be finite"),
        (lambda: matrix_to_quat(np.diag([1.0, np.inf, 1.0])), "R must be finite"),
        (lambda: pose_matrix([0.0, np.nan, 0.0], [1.0, 0.0, 0.0, 0.0]), "position must be finite"),
        (lambda: quat_multiply([np.nan, 0.0, 0.0, 0.0], [1.0, 0.0, 0.0, 0.0]), "a must be finite"),
        (lambda: quat_conjugate([1.0, 0.0, np.inf, 0.0]), "quat_wxyz must be finite"),
        (lambda: quat_rotate([1.0, 0.0, 0.0, 0.0], [np.nan, 0.0, 0.0]), "v must be finite"),
        (lambda: xyzw_to_wxyz([0.0, 0.0, 0.0, np.nan]), "quat_xyzw must be finite"),
    ],
)
def test_nan_and_inf_are_refused_by_name(call, name):
    """NaN or inf anywhere is a ValueError naming the argument (MuJoCo would pass it through silently)."""
    with pytest.raises(ValueError, match=name):
        call()
