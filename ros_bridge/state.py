"""Latest robot and object state as received from ROS, matched by name (pure numpy, no rclpy).

`JointStateCache` accepts sensor_msgs/JointState content (names in any order, extra
joints ignored) and keeps the most recent complete reading of the joints it was built
for. A message that lacks one of those joints, names one twice, or has mismatched array
lengths is rejected whole (the reason is kept for the status topic), so the watchdog
sees no fresh state and the safety layer stops sending: a robot publishing the wrong
names never moves. `PoseCache` does the same for object poses, estimating velocities
by finite differences (PoseStamped has none), and says how old each pose is (`ages`): the
executor holds on a pose older than its threshold, as it does on stale joint states.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np

__all__ = ["JointReading", "JointStateCache", "ObjectReading", "PoseCache", "quat_angular_velocity"]


@dataclass(frozen=True)
class JointReading:
    """One accepted joint state: positions/velocities in the cache's joint order."""

    position: np.ndarray
    velocity: np.ndarray
    stamp_s: float  # header stamp (seconds, ROS time)
    received_s: float  # local receipt time (same clock as the caller's `now`)


@dataclass(frozen=True)
class ObjectReading:
    """One object pose with finite-difference velocities (world frame)."""

    position: np.ndarray  # (3,)
    quat_wxyz: np.ndarray  # (4,) unit, w >= 0
    linvel: np.ndarray  # (3,)
    angvel: np.ndarray  # (3,)
    stamp_s: float
    received_s: float

    def at_rest(self) -> "ObjectReading":
        """The same pose with zero velocities (an object taken to be still)."""
        return replace(self, linvel=np.zeros(3), angvel=np.zeros(3))


class JointStateCache:
    """Most recent complete joint state for a fixed list of joint names (thread-safe)."""

    def __init__(
        self,
        names: Sequence[str],
        max_velocity: Sequence[float] | None = None,
        jump_slack: float = 0.05,
        max_gap_s: float = 0.5,
        reanchor_after: int = 5,
    ):
        """names: the joints to keep, in the order readings are returned.
        max_velocity: per-joint speed limits; when given, a reading whose joints moved
        further than 1.5 x limit x elapsed time + `jump_slack` since the last accepted one
        with finite positions is rejected as implausible (a bogus or confused publisher on
        /joint_states).
        max_gap_s: the elapsed time in that bound is capped here, so a stall of this process
        (a queue of messages handled late) cannot widen the bound enough to let garbage in.
        reanchor_after: a robot that really moved during a long gap (restarted, moved by
        hand) is taken back once this many consecutive rejected readings agree with each
        other; a garbage publisher's random readings never do."""
        if not names:
            raise ValueError("JointStateCache needs at least one joint name")
        if len(set(names)) != len(names):
            raise ValueError(f"duplicate joint names in {list(names)}")
        self.names = tuple(names)
        self.max_velocity = None if max_velocity is None else np.asarray(max_velocity, dtype=np.float64)
        if self.max_velocity is not None and self.max_velocity.shape != (len(self.names),):
            raise ValueError(f"max_velocity needs {len(self.names)} values, got {self.max_velocity.shape}")
        self.jump_slack = float(jump_slack)
        self.max_gap_s = float(max_gap_s)
        self.reanchor_after = int(reanchor_after)
        # Consecutive rejected readings that agree with each other (the re-anchor candidate).
        self._candidate: JointReading | None = None
        self._candidate_count = 0
        self._index_cache: dict[tuple[str, ...], np.ndarray | str] = {}
        self._lock = threading.Lock()
        self._latest: JointReading | None = None
        self._prev: JointReading | None = None
        # The plausibility check's reference: the last accepted reading with finite positions.
        # A NaN reading in between must not let the next finite one (say, garbage) through.
        self._last_finite: JointReading | None = None
        self.accepted = 0
        self.rejected = 0
        self.last_error = ""

    def _indices(self, names: tuple[str, ...]) -> np.ndarray | str:
        """Positions of our joints inside a message's name list, or an error string."""
        hit = self._index_cache.get(names)
        if hit is not None:
            return hit
        if len(set(names)) != len(names):
            result: np.ndarray | str = f"duplicate joint names in message: {list(names)}"
        else:
            where = {n: i for i, n in enumerate(names)}
            missing = [n for n in self.names if n not in where]
            if missing:
                result = f"joint state lacks {missing} (got {list(names)})"
            else:
                result = np.array([where[n] for n in self.names], dtype=np.int64)
        if len(self._index_cache) < 64:  # bounded: a flood of random names cannot grow it
            self._index_cache[names] = result
        return result

    def update(
        self,
        names: Sequence[str],
        position: Sequence[float],
        velocity: Sequence[float] | None,
        stamp_s: float,
        received_s: float,
    ) -> str | None:
        """Store a message's reading; returns None when accepted, else why it was rejected.

        NaN/inf values are accepted here on purpose: the safety layer sees them and holds
        (a robot reporting NaN is a fault to report, not a message to drop silently).
        """
        idx = self._indices(tuple(names))
        if isinstance(idx, str):
            return self._reject(idx)
        pos = np.asarray(position, dtype=np.float64)
        if pos.shape != (len(names),):
            return self._reject(f"joint state has {pos.size} positions for {len(names)} names")
        vel_all = np.asarray(velocity if velocity is not None else (), dtype=np.float64)
        if vel_all.size == 0:
            vel = None
        elif vel_all.shape == (len(names),):
            vel = vel_all[idx]
        else:
            return self._reject(f"joint state has {vel_all.size} velocities for {len(names)} names")
        q = pos[idx]
        with self._lock:
            prev, ref = self._latest, self._last_finite
            finite = bool(np.all(np.isfinite(q)))
            if self.max_velocity is not None and ref is not None and finite:
                jump, bound, dt = self._jump(q, stamp_s, received_s, ref)
                if np.any(jump > bound):
                    if self._confirmed(q, stamp_s, received_s):
                        prev = None  # re-anchored: no finite difference across the jump
                    else:
                        worst = int(np.argmax(jump - bound))
                        self.rejected += 1
                        self.last_error = (
                            f"implausible joint state: {self.names[worst]} jumped {jump[worst]:.3f} in {dt * 1e3:.1f} ms"
                        )
                        return self.last_error
            self._candidate, self._candidate_count = None, 0
            if vel is None:
                # Finite difference when the robot does not report velocities.
                dt = stamp_s - prev.stamp_s if prev is not None else 0.0
                vel = (q - prev.position) / dt if prev is not None and 1e-4 < dt < 0.5 else np.zeros_like(q)
            self._prev = prev
            self._latest = JointReading(q, vel, float(stamp_s), float(received_s))
            if finite:
                self._last_finite = self._latest
            self.accepted += 1
        return None

    def _jump(
        self, q: np.ndarray, stamp_s: float, received_s: float, ref: JointReading
    ) -> tuple[np.ndarray, np.ndarray, float]:
        """Per-joint jump from `ref`, the bound it must stay within, and the elapsed time used."""
        dt = min(max(stamp_s - ref.stamp_s, received_s - ref.received_s, 0.0), self.max_gap_s)
        assert self.max_velocity is not None
        return np.abs(q - ref.position), 1.5 * self.max_velocity * dt + self.jump_slack, dt

    def _confirmed(self, q: np.ndarray, stamp_s: float, received_s: float) -> bool:
        """Count a rejected reading towards a re-anchor; True once enough agree in a row."""
        reading = JointReading(q, np.zeros_like(q), float(stamp_s), float(received_s))
        cand = self._candidate
        if cand is not None:
            jump, bound, _ = self._jump(q, stamp_s, received_s, cand)
            if np.all(jump <= bound):
                self._candidate, self._candidate_count = reading, self._candidate_count + 1
                return self._candidate_count >= self.reanchor_after
        self._candidate, self._candidate_count = reading, 1
        return self.reanchor_after <= 1

    def _reject(self, why: str) -> str:
        with self._lock:
            self.rejected += 1
            self.last_error = why
        return why

    def latest(self) -> JointReading | None:
        """The most recent accepted reading, or None."""
        with self._lock:
            return self._latest

    def clear(self) -> None:
        """Forget all readings (e.g. after the robot restarted)."""
        with self._lock:
            self._latest = self._prev = self._last_finite = None
            self._candidate, self._candidate_count = None, 0


def quat_angular_velocity(q0: np.ndarray, q1: np.ndarray, dt: float) -> np.ndarray:
    """World-frame angular velocity taking unit quaternion q0 to q1 (wxyz) in dt seconds."""
    w0, v0 = q0[0], -q0[1:]  # conjugate of q0
    w1, v1 = q1[0], q1[1:]
    # dq = q1 * conj(q0)
    w = w1 * w0 - v1 @ v0
    v = w1 * v0 + w0 * v1 + np.cross(v1, v0)
    if w < 0:
        w, v = -w, -v
    s = np.linalg.norm(v)
    angle = 2.0 * np.arctan2(s, w)
    axis = v / s if s > 1e-12 else np.zeros(3)
    return axis * angle / dt


class PoseCache:
    """Most recent pose per object name, with finite-difference velocities (thread-safe)."""

    def __init__(self, objects: Sequence[str]):
        self.objects = tuple(objects)
        self._lock = threading.Lock()
        self._latest: dict[str, ObjectReading] = {}
        self.rejected = 0
        self.last_error = ""

    def update(self, name: str, position: Sequence[float], quat_wxyz: Sequence[float], stamp_s: float, received_s: float) -> str | None:
        """Store a pose; returns None when accepted, else the reason it was rejected."""
        if name not in self.objects:
            return self._reject(f"unknown object {name!r}")
        p = np.asarray(position, dtype=np.float64).reshape(3)
        q = np.asarray(quat_wxyz, dtype=np.float64).reshape(4)
        norm = float(np.linalg.norm(q))
        if not (np.all(np.isfinite(p)) and np.isfinite(norm) and norm > 1e-6):
            return self._reject(f"non-finite or zero pose for object {name!r}")
        q = q / norm
        if q[0] < 0:
            q = -q
        with self._lock:
            prev = self._latest.get(name)
            if prev is not None and stamp_s == prev.stamp_s and np.array_equal(p, prev.position):
                return None  # the same pose again (an unseen object's last one): nothing new, velocities kept
            dt = stamp_s - prev.stamp_s if prev is not None else 0.0
            if prev is not None and 1e-4 < dt < 0.5:
                lin = (p - prev.position) / dt
                ang = quat_angular_velocity(prev.quat_wxyz, q, dt)
            else:
                lin = np.zeros(3)
                ang = np.zeros(3)
            self._latest[name] = ObjectReading(p, q, lin, ang, float(stamp_s), float(received_s))
        return None

    def _reject(self, why: str) -> str:
        with self._lock:
            self.rejected += 1
            self.last_error = why
        return why

    def latest(self, name: str) -> ObjectReading | None:
        """Most recent pose of `name`, or None."""
        with self._lock:
            return self._latest.get(name)

    def predicted(self, name: str, now_s: float, max_dt: float) -> ObjectReading | None:
        """The latest pose of `name` carried forward to `now_s` at its finite-difference velocity
        (at most `max_dt` seconds ahead): a pose stamped with its image's time, 0.1-0.3 s old, is
        where the object was, not where it is while the arm carries it."""
        r = self.latest(name)
        if r is None:
            return None
        dt = min(max(now_s - r.stamp_s, 0.0), max_dt)
        return ObjectReading(r.position + r.linvel * dt, r.quat_wxyz, r.linvel, r.angvel, r.stamp_s, r.received_s)

    def missing(self) -> list[str]:
        """Objects with no pose yet."""
        with self._lock:
            return [o for o in self.objects if o not in self._latest]

    def ages(self, now_s: float, stamp_source: str = "header") -> dict[str, float]:
        """Age in seconds of each object's latest pose at `now_s` (objects with none are left
        out), from its header stamp (the image's time, for a perceived pose) or its receipt time."""
        if stamp_source not in ("header", "receipt"):
            raise ValueError(f"stamp_source must be 'header' or 'receipt', got {stamp_source!r}")
        with self._lock:
            return {
                name: now_s - (r.stamp_s if stamp_source == "header" else r.received_s) for name, r in self._latest.items()
            }
