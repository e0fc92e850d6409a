"""Perception in the loop without ROS: an env whose object poses come from its own rendered camera.

`PerceivedPoseWrapper(env)` renders the camera after every reset and step, runs the marker detector,
filters the poses over time (`PoseFilter`: gate jumps, keep the last pose while an object is hidden),
and writes them into the observation: per object `pos`, `rel_pos` (to the TCP) and `quat` from
pixels, `linvel` / `angvel` as finite differences of the perceived poses over the control period,
and the object positions in `achieved_goal`. Rewards and `info["is_success"]` stay the true ones
(perception changes what the policy sees, not what happened); `info["true_observation"]`,
`info["true_object_positions"]` / `["true_object_quats"]` hold the truth (world frame),
`info["perceived_object_positions"]` / `["perceived_object_quats"]` the objects perceived so far,
`info["perception"]` what this frame saw and how old each pose is.

An object never seen since the reset has no perceived pose: its true one stays in the observation
and `info["perception"]["unseen"]` names it (at 640x480 the scene camera sees every cube at reset).
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import mujoco
import numpy as np

from perception.camera import CameraModel, _base_of, body_pose
from perception.detector import MarkerPoseEstimator, PoseFilter, rotation_to_quat
from perception.markers import MarkerSet
from perception.sim import SimCamera


class PerceivedPoseWrapper(gym.Wrapper):
    """Replace a skillstack env's true object poses in its observations with the marker detector's.

    camera: an MJCF camera ("scene", the fixed one, or "wrist"); width/height: its resolution
    (640x480 meets the accuracy goal; 320x240 renders ~4x faster and is ~2.5x less accurate,
    see docs/perception.md); camera_model: a calibrated model to use instead of the true one
    (e.g. `skillstack calibrate`'s result, so calibration error counts too); filter: the pose filter.
    """

    def __init__(self, env: gym.Env, camera: str = "scene", width: int = 640, height: int = 480,
                 marker_set: MarkerSet | None = None, camera_model: CameraModel | None = None,
                 filter: PoseFilter | None = None, shadows: bool = True):
        super().__init__(env)
        u = env.unwrapped
        for attr in ("objects", "model", "data", "observation_layout", "robot"):
            if not hasattr(u, attr):
                raise TypeError(f"PerceivedPoseWrapper needs a skillstack TabletopEnv; {type(u).__name__} has no {attr!r}")
        self.objects = tuple(u.objects)
        self.marker_set = marker_set or MarkerSet.load()
        unmarked = [o for o in self.objects if o not in self.marker_set.objects]
        if unmarked:
            raise ValueError(f"objects {unmarked} carry no markers in {self.marker_set.source}")
        self.sim_camera = SimCamera(u.model, u.data, camera, width, height, shadows=shadows)
        if camera_model is not None:
            self.sim_camera.camera.check_calibration_for(camera_model)
        self._fixed_model = camera_model
        self._moving = u.model.cam_bodyid[u.model.camera(camera).id] != 0  # a wrist camera moves with the arm
        self.estimator = MarkerPoseEstimator(self.marker_set, camera_model or self.sim_camera.camera)
        self.filter = filter or PoseFilter(alpha=1.0, max_speed=2.0)
        layout = u.observation_layout
        self._slices = {o: {f: layout[f"{o}_{f}"] for f in ("pos", "rel_pos", "quat", "linvel", "angvel")} for o in self.objects}
        self._tcp = layout["tcp_pos"]
        self._base_body = _base_of(u.model, None, None)[0]
        self._prev: dict[str, tuple[np.ndarray, np.ndarray]] = {}

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        obs, info = self.env.reset(seed=seed, options=options)
        self.filter.reset()
        self._prev.clear()
        return self._perceive(obs, info)

    def step(self, action: Any):
        obs, reward, terminated, truncated, info = self.env.step(action)
        obs, info = self._perceive(obs, info)
        return obs, reward, terminated, truncated, info

    def _perceive(self, obs: dict[str, np.ndarray], info: dict[str, Any]) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        u = self.env.unwrapped
        if self._moving and self._fixed_model is None:
            self.estimator.camera = self.sim_camera.camera_model()
        stamp = float(u.data.time)
        seen = self.estimator.estimate(self.sim_camera.render(), stamp, self.filter.priors(stamp))
        filtered = self.filter.update(seen, stamp)
        T_world_base = body_pose(u.model, u.data, self._base_body)
        vec = np.array(obs["observation"], dtype=np.float64, copy=True)
        achieved = np.array(obs["achieved_goal"], dtype=np.float64, copy=True)
        true_pos, perceived, perceived_quat = {}, {}, {}
        true_quat = {o: vec[self._slices[o]["quat"]].copy() for o in self.objects}
        dt = getattr(u, "control_dt", 0.04)
        for o in self.objects:
            s = self._slices[o]
            true_pos[o] = vec[s["pos"]].copy()
            p = filtered.get(o)
            if p is None:
                continue
            pos = T_world_base[:3, :3] @ p.position + T_world_base[:3, 3]
            quat = np.empty(4)
            mujoco.mju_mulQuat(quat, rotation_to_quat(T_world_base[:3, :3]), p.quat_wxyz)
            quat = quat if quat[0] >= 0 else -quat
            perceived[o], perceived_quat[o] = pos, quat
            vec[s["pos"]] = pos
            vec[s["rel_pos"]] = pos - vec[self._tcp]
            vec[s["quat"]] = quat
            prev = self._prev.get(o)
            linvel, angvel = np.zeros(3), np.zeros(3)
            if prev is not None:
                linvel = (pos - prev[0]) / dt
                mujoco.mju_subQuat(angvel, quat, prev[1])
                angvel /= dt
            vec[s["linvel"]], vec[s["angvel"]] = linvel, angvel
            self._prev[o] = (pos, quat)
            for i in range(0, achieved.size - 2, 3):  # the achieved goal of cube tasks is these positions
                if np.array_equal(np.asarray(obs["achieved_goal"])[i : i + 3], true_pos[o]):
                    achieved[i : i + 3] = pos
        info = {
            **info,
            "true_observation": np.asarray(obs["observation"], dtype=np.float64).copy(),
            "true_object_positions": true_pos,
            "true_object_quats": true_quat,
            "perceived_object_positions": perceived,
            "perceived_object_quats": perceived_quat,
            "perception": {
                "seen": sorted(seen),
                "ages": {o: p.age for o, p in filtered.items()},
                "unseen": [o for o in self.objects if o not in filtered],
                "n_markers": {o: p.n_markers for o, p in seen.items()},
            },
        }
        return {**obs, "observation": vec, "achieved_goal": achieved}, info

    def close(self) -> None:
        self.sim_camera.close()
        super().close()



def pose_record(info: dict[str, Any], objects: tuple[str, ...]) -> dict[str, np.ndarray]:
    """What a demonstration stores per step beside the (perceived) observation, from a wrapper's info:
    `true_observation` (the env's own vector), `object_poses_true` and `object_poses_perceived`
    ((n_objects, 7): world position then quat wxyz; NaN for an object not perceived yet) and
    `object_pose_age` ((n_objects,) seconds since the perceived pose's image; NaN when none)."""
    true = np.array([np.concatenate((info["true_object_positions"][o], info["true_object_quats"][o])) for o in objects])
    nan7 = np.full(7, np.nan)
    perceived = np.array([np.concatenate((info["perceived_object_positions"][o], info["perceived_object_quats"][o]))
                          if o in info["perceived_object_positions"] else nan7 for o in objects])
    ages = info["perception"]["ages"]
    age = np.array([ages.get(o, np.nan) for o in objects], dtype=np.float64)
    return {"true_observation": np.asarray(info["true_observation"], dtype=np.float64), "object_poses_true": true,
            "object_poses_perceived": perceived, "object_pose_age": age}
