"""Objects the robot hides from its own camera: their last pose is kept, within a bound.

A fixed camera loses a cube whenever the arm passes between the two: while the hand grasps one
cube 14 cm from another, the forearm can cover the other's markers for seconds. The perception
node then publishes that cube's last pose with the stamp of the image it was last seen in, the
pose passes `safety.max_pose_age_s`, and the executor holds, as it must for a pose nobody can
vouch for. But a held arm goes on hiding the cube, so the hold never ends (the perceived
stack-two failures of docs/ros2.md). A cube hidden *by the robot itself*, and not touched by it,
has no cause to have moved in a static scene; one that vanished from an open view has.

The test, on the task's scratch scene loaded with the measured joints: rays from the camera's
optical centre (the profile camera's extrinsic calibration, in the base frame) to the object's
centre and the corners of its box drawn in towards the centre, at its last pose. The object is
**hidden by the robot** when the robot's own geometry (any body of its kinematic tree, or an
object in the hand) is the first thing at least `min_blocked_fraction` of those rays meet before
the object, and none of the robot's collision geometry is within `contact_margin` of the object
(an arm that touches a cube may be moving it). MuJoCo's `mj_ray` and `mj_geomDistance` do the
geometry: the same meshes the camera renders.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import mujoco
import numpy as np

__all__ = ["OcclusionConfig", "SelfOcclusion"]


@dataclass(frozen=True)
class OcclusionConfig:
    """When an object counts as hidden by the robot (see the module docstring)."""

    min_blocked_fraction: float = 0.5  # of the sample rays whose first hit is the robot
    contact_margin: float = 0.005  # m: robot collision geometry this close to the object: not kept
    corner_scale: float = 0.8  # corners drawn in towards the centre (a ray to a corner must not graze an edge)

    def __post_init__(self) -> None:
        if not 0.0 < self.min_blocked_fraction <= 1.0:
            raise ValueError(f"min_blocked_fraction must be in (0, 1], got {self.min_blocked_fraction}")
        if not (self.contact_margin >= 0 and np.isfinite(self.contact_margin)):
            raise ValueError(f"contact_margin must be >= 0 m, got {self.contact_margin}")
        if not 0.0 <= self.corner_scale <= 1.0:
            raise ValueError(f"corner_scale must be in [0, 1], got {self.corner_scale}")


class SelfOcclusion:
    """Tells whether the robot hides an object from one fixed camera, on a scratch MuJoCo scene.

    `model`, `data`: the scratch scene (world frame = the robot's base frame, as object poses
    are loaded into it), filled by the caller with the measured state before each query;
    `camera_position`: the camera's optical centre in that frame; `robot_body`: any body of the
    robot (its whole kinematic tree counts as the robot); `robot_geoms`: its collision geoms.
    """

    def __init__(self, model: mujoco.MjModel, data: mujoco.MjData, camera_position: np.ndarray, robot_body: int,
                 robot_geoms: Iterable[int], config: OcclusionConfig | None = None):
        self.model, self.data = model, data
        self.camera = np.asarray(camera_position, dtype=np.float64).reshape(3)
        if not np.all(np.isfinite(self.camera)):
            raise ValueError(f"camera position must be finite, got {self.camera.tolist()}")
        self.config = config or OcclusionConfig()
        root = model.body_rootid[robot_body]
        self._robot_bodies = frozenset(int(b) for b in range(model.nbody) if model.body_rootid[b] == root and b != 0)
        self._robot_geoms = tuple(int(g) for g in robot_geoms)
        self._geomid = np.zeros(1, dtype=np.int32)

    def _object_body(self, name: str) -> int:
        body = mujoco.mj_name2id(self.model, mujoco.mjtObj.mjOBJ_BODY, f"cube_{name}")
        if body < 0:
            raise KeyError(f"no object {name!r} in the scene")
        return body

    def _geoms_of(self, body: int) -> list[int]:
        start, n = self.model.body_geomadr[body], self.model.body_geomnum[body]
        return list(range(start, start + n))

    def _sample_points(self, body: int) -> np.ndarray:
        """The object's centre and its box's corners, drawn in, in the world frame."""
        geoms = [g for g in self._geoms_of(body) if self.model.geom_type[g] == mujoco.mjtGeom.mjGEOM_BOX]
        centre = self.data.xpos[body]
        if not geoms:
            return centre[None, :].copy()
        g = geoms[0]
        half = self.model.geom_size[g] * self.config.corner_scale
        signs = np.array([[x, y, z] for x in (-1, 1) for y in (-1, 1) for z in (-1, 1)], dtype=np.float64)
        corners = self.data.geom_xpos[g] + (signs * half) @ self.data.geom_xmat[g].reshape(3, 3).T
        return np.vstack([centre[None, :], corners])

    def blocked_fraction(self, name: str, held: Iterable[str] = ()) -> float:
        """Share of the sample rays from the camera to object `name` whose first hit is the robot
        (or an object in `held`)."""
        body = self._object_body(name)
        occluders = self._robot_bodies | {self._object_body(h) for h in held}
        points = self._sample_points(body)
        blocked = 0
        for p in points:
            vec = p - self.camera
            x = mujoco.mj_ray(self.model, self.data, self.camera, vec, None, 1, body, self._geomid)
            g = int(self._geomid[0])
            if 0 <= x < 1.0 and g >= 0 and int(self.model.geom_bodyid[g]) in occluders:
                blocked += 1
        return blocked / len(points)

    def touching(self, name: str) -> bool:
        """True when robot collision geometry is within `contact_margin` of object `name`."""
        margin = self.config.contact_margin
        for og in self._geoms_of(self._object_body(name)):
            if not (self.model.geom_contype[og] or self.model.geom_conaffinity[og]):
                continue
            for rg in self._robot_geoms:
                if mujoco.mj_geomDistance(self.model, self.data, rg, og, margin, None) < margin:
                    return True
        return False

    def hidden_by_robot(self, name: str, held: Iterable[str] = ()) -> bool:
        """True when the robot (or what it holds) hides object `name` from the camera and does
        not touch it: its last pose may be kept (see the module docstring)."""
        held = tuple(h for h in held if h != name)
        return self.blocked_fraction(name, held) >= self.config.min_blocked_fraction and not self.touching(name)
