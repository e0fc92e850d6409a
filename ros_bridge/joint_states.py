"""Joint states from several topics merged by name into one reading (pure numpy, no rclpy).

A real arm's driver and its gripper's often publish separately and at different rates
(franka_ros2: the arm on /franka/joint_states at 1 kHz, the gripper on
/fr3_gripper/joint_states at 50 Hz), with joint names of their own.
`MergedJointStates` keeps one `state.JointStateCache` per topic (its joints, its
plausibility check), translates the driver's names to the robot description's, and
assembles one reading in the description's order once every topic has spoken. Its
watchdog judges each topic by its own threshold (derived from the topic's rate by the
robot profile), so a 30 Hz topic is not declared stale after three messages.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from ros_bridge.state import JointReading, JointStateCache

__all__ = ["MergedJointStates", "StateTopic"]


@dataclass(frozen=True)
class StateTopic:
    """One joint-state topic: the description joints it carries and when it counts as stale."""

    topic: str
    joints: tuple[str, ...]
    stale_after_s: float


class MergedJointStates:
    """The newest reading of every topic, merged by name (thread-safe per topic)."""

    def __init__(
        self,
        names: Sequence[str],
        topics: Sequence[StateTopic],
        max_velocity: Sequence[float] | None = None,
        aliases: Mapping[str, str] | None = None,
    ):
        """names: the merged joints, in the order readings are returned (description names).
        topics: where they come from; together they carry each joint exactly once.
        max_velocity: per joint of `names`, for each topic's implausible-jump check.
        aliases: driver joint name -> description name (errors report the driver's names)."""
        if not topics:
            raise ValueError("MergedJointStates needs at least one topic")
        self.names = tuple(names)
        carried = [j for t in topics for j in t.joints]
        if sorted(carried) != sorted(self.names):
            raise ValueError(f"the topics must carry each of {list(self.names)} exactly once; they carry {carried}")
        self.topics = tuple(topics)
        vmax = None if max_velocity is None else dict(zip(self.names, np.asarray(max_velocity, dtype=np.float64)))
        self.caches = tuple(JointStateCache(t.joints, None if vmax is None else [vmax[j] for j in t.joints]) for t in topics)
        index = {n: i for i, n in enumerate(self.names)}
        self._slots = tuple(np.array([index[j] for j in t.joints], dtype=np.int64) for t in topics)
        self._aliases = {k: v for k, v in (aliases or {}).items() if k != v}
        display = {v: k for k, v in self._aliases.items()}
        self._display = re.compile(r"\b(" + "|".join(map(re.escape, sorted(display, key=len, reverse=True))) + r")\b") if display else None
        self._display_map = display
        self._renamed: dict[tuple[str, ...], tuple[str, ...]] = {}

    def _translate(self, names: Sequence[str]) -> tuple[str, ...]:
        key = tuple(names)
        if not self._aliases:
            return key
        hit = self._renamed.get(key)
        if hit is None:
            hit = tuple(self._aliases.get(n, n) for n in key)
            if len(self._renamed) < 64:  # bounded: a flood of random names cannot grow it
                self._renamed[key] = hit
        return hit

    def _driver_words(self, text: str) -> str:
        if self._display is None:
            return text
        return self._display.sub(lambda m: self._display_map[m.group(0)], text)

    @property
    def accepted(self) -> int:
        """Messages accepted over all topics."""
        return sum(c.accepted for c in self.caches)

    @property
    def rejected(self) -> int:
        """Messages rejected over all topics."""
        return sum(c.rejected for c in self.caches)

    def update(
        self,
        topic: int,
        names: Sequence[str],
        position: Sequence[float],
        velocity: Sequence[float] | None,
        stamp_s: float,
        received_s: float,
    ) -> str | None:
        """Store a message of topic number `topic`; None when accepted, else why it was rejected."""
        err = self.caches[topic].update(self._translate(names), position, velocity, stamp_s, received_s)
        if err is None:
            return None
        if len(self.topics) > 1:
            err = f"{self.topics[topic].topic}: {err}"
        head, got, tail = err.partition(" (got ")  # the message's own names stay as they came
        return self._driver_words(head) + got + tail

    @property
    def last_error(self) -> str:
        """Why the most recent rejected message was rejected ('' when none was)."""
        return next((c.last_error for c in self.caches if c.last_error), "")

    def latest(self) -> JointReading | None:
        """The merged reading once every topic has one (stamped like the first topic's), or None."""
        readings = [c.latest() for c in self.caches]
        if any(r is None for r in readings):
            return None
        if len(readings) == 1:
            return readings[0]
        pos = np.empty(len(self.names))
        vel = np.empty(len(self.names))
        for slots, r in zip(self._slots, readings):
            pos[slots] = r.position
            vel[slots] = r.velocity
        first = readings[0]
        return JointReading(pos, vel, first.stamp_s, first.received_s)

    def missing(self) -> list[str]:
        """Topics with no accepted reading yet."""
        return [t.topic for t, c in zip(self.topics, self.caches) if c.latest() is None]

    def worst_age(self, now: float, use_header: bool = True) -> tuple[str, float, float] | None:
        """(topic, age, threshold) of the topic whose age is the largest fraction of its own
        threshold, or None while some topic has no reading. Ages from header stamps or receipt."""
        worst: tuple[str, float, float] | None = None
        worst_ratio = -np.inf
        for t, c in zip(self.topics, self.caches):
            r = c.latest()
            if r is None:
                return None
            age = now - (r.stamp_s if use_header else r.received_s)
            ratio = age / t.stale_after_s
            ratio = np.inf if np.isnan(ratio) else ratio  # a NaN stamp is the stalest of all
            if worst is None or ratio > worst_ratio:
                worst, worst_ratio = (t.topic, age, t.stale_after_s), ratio
        return worst

    def clear(self) -> None:
        """Forget all readings (e.g. after the robot restarted)."""
        for c in self.caches:
            c.clear()
