"""Objects the robot hides from its own camera: their last pose is kept, within a bound.

A fixed camera loses a cube whenever the arm passes between the two: while the hand grasps one
cube 14 cm from another, the forearm can cover the other's markers for seconds. The perception
node then publishes that cube's last pose with the stamp of the image it was last seen in, the
pose passes `safety.max_pose_age_s`, and the executor holds, as it must for a pose nobody can
vouch for. But a held arm goes on hiding the cube, so the hold never ends (the perceived
stack-two failures of docs/ros2.md). A cube hidden *by the robot itself*, and not touched by it,
has no cause to have moved in a static scene; one that vanished from an open view has.

The test, on the task's scratch scene loaded with the measured joints: the faces of the object's
box that face the camera (its optical centre from the profile camera's extrinsic calibration, in
the base frame) at no more than `max_view_angle_deg`, the faces whose markers a detector could
read; on each, its centre and four points towards its corners; a ray from the camera to each point.
A face is covered by the robot when the robot's own geometry (any body of its kinematic tree, or
an object in the hand) is the first thing some ray meets before the face (a marker needs all four
corners in view: covering part of a face hides it). The object is **hidden by the robot** when the
robot covers at least one such face and at most `faces_left_in_view` (1) stay uncovered (one lone
marker seen at a slant often gives no pose at all: IPPE's ambiguity), and none of the
robot's collision geometry is within `contact_margin` of the object (an arm that touches a cube
may be moving it). A face blocked by anything else (another cube on the table) is not the robot's
doing. MuJoCo's `mj_ray` and `mj_geomDistance` do the geometry: the same meshes the camera renders.
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

    max_view_angle_deg: float = 75.0  # faces seen more obliquely than this show no readable marker: not counted
    contact_margin: float = 0.005  # m: robot collision geometry this close to the object: not kept
    face_scale: float = 0.7  # the points on a face, towards its corners (a share of the half-edge)
    faces_left_in_view: int = 1  # readable faces the robot may leave uncovered and still hide the object

    def __post_init__(self) -> None:
        if not 0.0 < self.max_view_angle_deg < 90.0:
            raise ValueError(f"max_view_angle_deg must be in (0, 90), got {self.max_view_angle_deg}")
        if not (self.contact_margin >= 0 and np.isfinite(self.contact_margin)):
            raise ValueError(f"contact_margin must be >= 0 m, got {self.contact_margin}")
        if self.faces_left_in_view < 0:
            raise ValueError(f"faces_left_in_view must be >= 0, got {self.faces_left_in_view}")
        if not 0.0 <= self.face_scale < 1.0:
            raise ValueError(f"face_scale must be in [0, 1), got {self.face_scale}")


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

    def _faces(self, body: int) -> list[np.ndarray]:
        """Points (5, 3) on each face of the object's box that the camera sees at a readable angle
        (world frame, 1 mm outside the face)."""
        geoms = [g for g in self._geoms_of(body) if self.model.geom_type[g] == mujoco.mjtGeom.mjGEOM_BOX]
        if not geoms:
            return [self.data.xpos[body][None, :].copy()]
        g = max(geoms, key=lambda i: float(np.prod(self.model.geom_size[i])))  # the cube, not a marker's plate
        c, R, h = self.data.geom_xpos[g], self.data.geom_xmat[g].reshape(3, 3), self.model.geom_size[g]
        min_cos = np.cos(np.radians(self.config.max_view_angle_deg))
        k = self.config.face_scale
        faces = []
        for i in range(3):
            j, l = (i + 1) % 3, (i + 2) % 3
            for sign in (-1.0, 1.0):
                n = sign * R[:, i]
                centre = c + sign * h[i] * R[:, i]
                to_cam = self.camera - centre
                if n @ to_cam < min_cos * np.linalg.norm(to_cam):
                    continue  # facing away, or too oblique to read
                offsets = [(0.0, 0.0), (k, k), (k, -k), (-k, k), (-k, -k)]
                faces.append(np.array([centre + 1e-3 * n + a * h[j] * R[:, j] + b * h[l] * R[:, l] for a, b in offsets]))
        return faces

    def _blocked(self, point: np.ndarray, body: int, occluders: frozenset[int]) -> bool:
        """True when the first thing on the ray camera -> `point` is one of `occluders`' bodies."""
        x = mujoco.mj_ray(self.model, self.data, self.camera, point - self.camera, None, 1, body, self._geomid)
        g = int(self._geomid[0])
        return 0 <= x < 1.0 and g >= 0 and int(self.model.geom_bodyid[g]) in occluders

    def hidden_faces(self, name: str, held: Iterable[str] = ()) -> tuple[int, int]:
        """(faces the robot or an object in `held` covers in part, faces the camera could read) of
        object `name`."""
        body = self._object_body(name)
        occluders = self._robot_bodies | {self._object_body(h) for h in held}
        faces = self._faces(body)
        return sum(any(self._blocked(p, body, occluders) for p in face) for face in faces), len(faces)

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
        """True when the robot (or what it holds) covers all but `faces_left_in_view` of the faces
        of object `name` the camera could read, at least one, and does not touch it: its last pose
        may be kept (see the module docstring)."""
        held = tuple(h for h in held if h != name)
        covered, readable = self.hidden_faces(name, held)
        return covered >= max(1, readable - self.config.faces_left_in_view) and not self.touching(name)
