"""The simulator as a camera: render a named MuJoCo camera as a robot's camera would see the scene
(no goal markers or other helper sites), its `CameraModel`, and ground-truth object poses to compare with.
"""

from __future__ import annotations

import mujoco
import numpy as np

from perception.camera import CameraModel, _base_of, body_pose, invert
from perception.detector import rotation_to_quat


class SimCamera:
    """Renders camera `camera` of (model, data) at width x height, as pixels only: sites (goal
    spheres, TCP markers) are not drawn, because no real camera sees them."""

    def __init__(self, model: mujoco.MjModel, data: mujoco.MjData, camera: str, width: int, height: int,
                 shadows: bool = True):
        self.model, self.data = model, data
        self.camera_name = camera
        self.width, self.height = int(width), int(height)
        self.camera = CameraModel.from_mujoco(model, data, camera, width, height)  # raises for an unknown camera
        self._renderer = mujoco.Renderer(model, height=self.height, width=self.width)
        self._option = mujoco.MjvOption()
        self._option.sitegroup[:] = 0
        self._shadows = bool(shadows)

    def render(self) -> np.ndarray:
        """The camera's image at data's current state, uint8 (H, W, 3) RGB."""
        self._renderer.update_scene(self.data, camera=self.camera_name, scene_option=self._option)
        self._renderer.scene.flags[mujoco.mjtRndFlag.mjRND_SHADOW] = self._shadows
        return self._renderer.render()

    def camera_model(self) -> CameraModel:
        """The camera's model at the current state (a wrist camera's extrinsic moves with the arm)."""
        return CameraModel.from_mujoco(self.model, self.data, self.camera_name, self.width, self.height)

    def close(self) -> None:
        """Free the renderer's GL context."""
        self._renderer.close()


def true_object_poses(model: mujoco.MjModel, data: mujoco.MjData, objects: tuple[str, ...] | list[str],
                      base_body: str | None = None) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Ground truth for evaluation: object name -> (position (3,), quat wxyz (4,)) in the robot base frame,
    read from the cube bodies `cube_<name>` (never from pixels)."""
    base_body, _ = _base_of(model, base_body, None)
    T_base_world = invert(body_pose(model, data, base_body))
    out = {}
    for name in objects:
        T = T_base_world @ body_pose(model, data, f"cube_{name}")
        out[name] = (T[:3, 3].copy(), rotation_to_quat(T[:3, :3]))
    return out


def quat_angle_deg(q1: np.ndarray, q2: np.ndarray) -> float:
    """Angle (degrees) of the rotation between two unit quaternions (w, x, y, z)."""
    d = abs(float(np.dot(q1, q2)))
    return float(np.degrees(2.0 * np.arccos(min(1.0, d))))
