"""Objects in the hand: their pose carried on the TCP while a camera cannot see them.

A camera loses a cube the moment the hand closes on it (the fingers and the hand cover its
markers), so perceived poses stop while the arm lifts and carries it, and a pose older than
`safety.max_pose_age_s` holds the executor: the skill stalls with the cube in the air. A held
object moves with the hand, and the hand's pose comes from fresh joint states, so it is carried
on the TCP the way MoveIt attaches a grasped object to the end effector:

* **attach** when the gripper's opening is within `width_range` (closed on something, not on
  nothing) and the object's last pose is within `radius` of the TCP; the offset TCP -> object
  is fixed at that moment (the object is still: the arm is closing the fingers on it);
* **centre** the offset along the gripper's closing axis (`closing_axis`, in the TCP frame): a
  parallel gripper centres what it closes on between its fingers, so the cube ends where the TCP is
  along that axis, whatever the last image said. The fingers touch it at the start of the range
  and push it the rest of the way (5-6 mm in a traced stack-two); fixed there, the offset
  carried that push to the place, and red landed off blue's centre;
* **re-measure** the offset from the camera while carrying: a sighting of the held object (a pose
  stamped at least `settle_s` after the attach) against the TCP's pose at the image's time (the
  last 250 TCP poses are kept) gives the offset again, centred as above, and moves it halfway. A cube pivots and slides in the fingers
  (a traced stack-two: 4-8 mm along the hand's x by the place) and the attach-time offset knows
  nothing of it. A sighting that moves the offset by more than `max_correction` is taken as a wrong
  pose, not as the cube, and ignored;
* **carry** while the opening stays in the range: the object's pose is TCP x offset, stamped
  now (its age is the joint states'), velocities by finite difference;
* **release** when the opening leaves the range (opened: put down; closed fully: lost): the
  object stays where the hand left it, stamped at that moment, until a pose measured after it
  arrives. If none arrives within `max_pose_age_s` the executor holds as for any old pose.

Width-based grasp detection is what real parallel grippers offer (franka_gripper's grasp
epsilon, the Robotiq driver's object detection); no contact sensing is assumed.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from common.transforms import matrix_to_quat, pose_matrix
from ros_bridge.state import ObjectReading

__all__ = ["CarriedObjects", "CarryConfig"]


@dataclass(frozen=True)
class CarryConfig:
    """When an object counts as held (see the module docstring)."""

    width_range: tuple[float, float] = (0.03, 0.05)  # m: gripper opening closed on an object (a 4 cm cube: 0.04)
    radius: float = 0.03  # m: an object's last pose this close to the TCP when the fingers close on it
    closing_axis: tuple[float, float, float] | None = None  # the fingers' closing direction in the TCP frame (None: no centring)
    settle_s: float = 0.2  # s after the attach before a sighting re-measures the offset (the fingers still closing)
    max_correction: float = 0.02  # m: a sighting moving the offset further than this is ignored

    def __post_init__(self) -> None:
        lo, hi = (float(v) for v in self.width_range)
        if not (0.0 <= lo < hi and np.isfinite(hi)):
            raise ValueError(f"carry width_range must be [min, max] with 0 <= min < max, got {list(self.width_range)}")
        if not (self.radius > 0 and np.isfinite(self.radius)):
            raise ValueError(f"carry radius must be > 0 m, got {self.radius}")
        for name in ("settle_s", "max_correction"):
            if not (getattr(self, name) >= 0 and np.isfinite(getattr(self, name))):
                raise ValueError(f"carry {name} must be >= 0, got {getattr(self, name)}")
        if self.closing_axis is not None:
            a = np.asarray(self.closing_axis, dtype=np.float64)
            if a.shape != (3,) or not np.all(np.isfinite(a)) or not np.isclose(np.linalg.norm(a), 1.0, atol=1e-6):
                raise ValueError(f"carry closing_axis must be a unit 3-vector, got {self.closing_axis}")


class CarriedObjects:
    """Tracks which object the gripper holds and where the hand has put objects down (one
    executor's; call `update` once per control period with the measured state)."""

    def __init__(self, objects: tuple[str, ...] | list[str], config: CarryConfig | None = None):
        self.objects = tuple(objects)
        self.config = config or CarryConfig()
        self._offset: dict[str, np.ndarray] = {}  # held: T_tcp_object
        self._last: dict[str, ObjectReading] = {}  # held: the previous carried reading (velocities)
        self._released: dict[str, ObjectReading] = {}  # put down: where, stamped when
        self._measured_at: dict[str, float] = {}  # held: a sighting stamped after this re-measures the offset
        self._tcp_history: deque[tuple[float, np.ndarray]] = deque(maxlen=250)  # (stamp, T_tcp): the last 10 s at 25 Hz

    @property
    def held(self) -> list[str]:
        """Objects in the hand now."""
        return list(self._offset)

    @property
    def released(self) -> list[str]:
        """Objects put down and not measured since."""
        return list(self._released)

    def reset(self) -> None:
        """Forget every attachment (a new episode, or the executor stopped)."""
        self._offset.clear()
        self._last.clear()
        self._released.clear()
        self._measured_at.clear()
        self._tcp_history.clear()

    def update(self, now_s: float, T_tcp: np.ndarray, width: float, measured: Mapping[str, ObjectReading | None],
               sightings: Mapping[str, ObjectReading | None] | None = None) -> dict[str, ObjectReading]:
        """The poses to use instead of the measured ones at `now_s`: held objects on the TCP
        (`T_tcp`, 4x4 in the base frame) and objects put down, where the hand left them.
        `sightings`: the latest poses as measured, at their stamps (default `measured`), which
        re-measure a held object's offset (see the module docstring)."""
        self._tcp_history.append((float(now_s), np.array(T_tcp, dtype=np.float64)))
        lo, hi = self.config.width_range
        holding = bool(lo <= width <= hi)
        tcp = T_tcp[:3, 3]
        for name in list(self._offset):
            if not holding:  # opened (put down) or closed on nothing (lost): it stays where the hand left it
                r = self._carried(name, now_s, T_tcp)
                self._released[name] = ObjectReading(r.position, r.quat_wxyz, np.zeros(3), np.zeros(3), now_s, now_s)
                del self._offset[name], self._last[name], self._measured_at[name]
        for name, r in list(self._released.items()):
            m = measured.get(name)
            if m is not None and m.stamp_s > r.stamp_s:  # measured since it was put down: the measurement wins
                del self._released[name]
        if holding and not self._offset:
            best, best_d = None, self.config.radius
            for name in self.objects:
                r = self._released.get(name) or measured.get(name)
                d = np.inf if r is None else float(np.linalg.norm(r.position - tcp))
                if d <= best_d:
                    best, best_d = name, d
            if best is not None:
                r = self._released.pop(best, None) or measured[best]
                self._offset[best] = self._centred(np.linalg.solve(T_tcp, pose_matrix(r.position, r.quat_wxyz)))
                self._measured_at[best] = float(now_s) + self.config.settle_s  # sightings count from here
        for name in self._offset:
            self._remeasure(name, (sightings if sightings is not None else measured).get(name))
        out = {name: self._carried(name, now_s, T_tcp) for name in self._offset}
        out.update(self._released)
        return out

    def _centred(self, offset: np.ndarray) -> np.ndarray:
        """`offset` (T_tcp_object) with the object centred along the closing axis."""
        if self.config.closing_axis is not None:  # the fingers centre it along their closing axis
            a = np.asarray(self.config.closing_axis, dtype=np.float64)
            offset[:3, 3] -= (offset[:3, 3] @ a) * a
        return offset

    def _remeasure(self, name: str, seen: ObjectReading | None) -> None:
        """A sighting of held object `name` newer than the offset's source re-measures the offset,
        against the TCP's pose at the sighting's stamp."""
        if seen is None or not seen.stamp_s > self._measured_at[name]:
            return
        self._measured_at[name] = seen.stamp_s
        stamps = np.array([t for t, _ in self._tcp_history])
        i = int(np.argmin(np.abs(stamps - seen.stamp_s)))
        if abs(stamps[i] - seen.stamp_s) > 0.05:  # no TCP pose near the image's time: nothing to compare with
            return
        offset = self._centred(np.linalg.solve(self._tcp_history[i][1], pose_matrix(seen.position, seen.quat_wxyz)))
        old = self._offset[name]
        if np.linalg.norm(offset[:3, 3] - old[:3, 3]) <= self.config.max_correction:
            # Halfway: one sighting of a cube half hidden by the fingers is a few millimetres off.
            offset[:3, 3] = 0.5 * (offset[:3, 3] + old[:3, 3])
            self._offset[name] = offset

    def _carried(self, name: str, now_s: float, T_tcp: np.ndarray) -> ObjectReading:
        T = T_tcp @ self._offset[name]
        prev = self._last.get(name)
        dt = now_s - prev.stamp_s if prev is not None else 0.0
        linvel = (T[:3, 3] - prev.position) / dt if prev is not None and dt > 1e-4 else np.zeros(3)
        r = ObjectReading(T[:3, 3].copy(), matrix_to_quat(T[:3, :3]), linvel, np.zeros(3), now_s, now_s)
        self._last[name] = r
        return r
