"""The controller's estimate of where the cubes are, from perceived positions over time.

A robot's controller sees each cube through perception: a fresh position each control tick
with its own error (1 cm under the `obs_noise1cm` and `realistic` conditions), or the last one
again when a message is lost. The symbolic abstraction is much finer than that error: `on(a,b)`
wants the height difference within +-1 cm and `on_table` a height within 1 cm of the table, so a
planner deciding on single readings sees a stacked cube fall off about every other tick, and
undoes a goal it has reached. `SceneEstimator` keeps, per cube, the readings of the last
`window` ticks and estimates from them, without knowing the noise level:

- the cube the gripper holds (judged where it was estimated; of several in the grasp box, the
  nearest to the TCP) is read in the hand's frame (its
  offset from the TCP stays put while the arm carries it), any other cube in the world frame;
  each reading is kept with the TCP of its tick, so a grasp or a release changes the frame
  without losing the readings (the ticks around either are slow);
- a reading more than `jump` from the estimate starts afresh (the cube was knocked over, or
  slipped): what the controller must see at once;
- a still cube is the mean of its longest still run of recent readings, up to the window
  (1 s: the error shrinks with the square root of the run's length), so a cube that has just
  come to rest is averaged from then on; a moving one (a pushed cube), the end of a
  least-squares line through its last `moving_window` readings. Still means a net motion along
  the line through the readings of less than `motion_sigmas` standard errors (or less than
  1 mm). Exact readings of a still or a steadily moving cube are returned exactly.

The TCP and the gripper come from the measured joints and are taken as they are.
Both paths feed the same estimator: the env's perceived scene (`TabletopEnv.perceived_scene_state`,
noisy under a condition) and the robot's measured scene (ros_bridge.task), so a plan reads the
same thing in simulation and through ROS 2.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np

from envs.predicates import SceneState, holding

__all__ = ["SceneEstimator", "SceneEstimatorConfig"]

MIN_MOTION = 1e-3  # m: a net motion below this is still, whatever the noise (exact readings have none)
SHORTER_RUNS = (16, 12, 8, 5)  # run lengths (ticks) tried after the whole window, longest first


@dataclass(frozen=True)
class SceneEstimatorConfig:
    """How many ticks of readings a cube's estimate uses, and when it starts afresh."""

    window: int = 25  # ticks of readings a still cube's estimate averages (1 s at 25 Hz)
    moving_window: int = 8  # ticks a moving cube's line goes through (lag and noise of a pushed cube)
    jump: float = 0.05  # metres from the estimate: start afresh
    motion_sigmas: float = 3.0  # net motion over the window, in standard errors, that counts as moving

    def __post_init__(self) -> None:
        if self.window < 1 or not 1 <= self.moving_window <= self.window:
            raise ValueError(f"window must be >= 1 tick and moving_window in 1..window, got {self.window}, {self.moving_window}")
        if not self.jump > 0 or not self.motion_sigmas > 0:
            raise ValueError(f"jump and motion_sigmas must be > 0, got {self.jump}, {self.motion_sigmas}")


class _Track:
    """One cube's last readings, each with the TCP position of its tick (so either frame can be read)."""

    def __init__(self, window: int) -> None:
        self.frame = "world"
        self.readings: deque[tuple[np.ndarray, np.ndarray]] = deque(maxlen=window)
        self.estimate: np.ndarray | None = None  # the latest estimate, in `frame`

    def predicted(self, tcp: np.ndarray) -> np.ndarray | None:
        """Where the cube is expected now (a held one moved with the hand since the last tick)."""
        if self.estimate is None:
            return None
        return self.estimate + tcp if self.frame == "hand" else self.estimate

    def in_frame(self, frame: str) -> list[np.ndarray]:
        """The readings in `frame` (world, or relative to the TCP of each reading's tick)."""
        return [p - tcp if frame == "hand" else p for p, tcp in self.readings]


def _line(x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Least-squares line through readings `x` (n x 3, n >= 3): (its end, net motion, standard error of it)."""
    n = len(x)
    t = np.arange(n, dtype=np.float64) - (n - 1) / 2.0
    sxx = float(t @ t)
    mean = x.mean(axis=0)
    slope = (t @ (x - mean)) / sxx  # per axis
    resid = x - mean - np.outer(t, slope)
    sigma = np.sqrt((resid**2).sum(axis=0) / (n - 2))
    return mean + slope * t[-1], np.abs(slope) * (n - 1), sigma / np.sqrt(sxx) * (n - 1)


def _still(x: np.ndarray, motion_sigmas: float) -> bool:
    """Whether readings `x` show no motion: the line through them moves less than `motion_sigmas`
    standard errors (or less than MIN_MOTION) along every axis."""
    if len(x) < 3:
        return True
    _, net, se = _line(x)
    return not np.any((net > motion_sigmas * se) & (net > MIN_MOTION))


def _estimate(readings: Sequence[np.ndarray], config: SceneEstimatorConfig) -> np.ndarray:
    """The mean of the longest still run of recent readings (a cube that has come to rest is
    averaged from then on), or the end of the line through the last `moving_window` readings
    of a cube that is moving now."""
    x = np.asarray(readings)
    if (x == x[-1]).all():  # exact readings of a still cube (a nominal scene): nothing to fit
        return x[-1].copy()
    n = len(x)
    for m in (n, *(m for m in SHORTER_RUNS if m < n)):
        if _still(x[-m:], config.motion_sigmas):
            return x[-m:].mean(axis=0)
    recent = x[-config.moving_window :]
    return _line(recent)[0] if len(recent) >= 3 else recent[-1]


class SceneEstimator:
    """Filters the cubes of successive perceived scenes (see module docstring)."""

    def __init__(self, config: SceneEstimatorConfig | None = None) -> None:
        self.config = config or SceneEstimatorConfig()
        self._tracks: dict[str, _Track] = {}
        self.scene: SceneState | None = None  # the latest estimate

    def update(self, perceived: SceneState) -> SceneState:
        """Add one tick's perceived scene; return (and keep as `scene`) the estimated one."""
        cfg = self.config
        tcp = np.asarray(perceived.tcp_pos, dtype=np.float64)
        expected: dict[str, np.ndarray] = {}
        for name, pos in perceived.objects.items():
            pos = np.asarray(pos, dtype=np.float64)
            if not np.all(np.isfinite(pos)):
                raise ValueError(f"perceived position of {name!r} is not finite: {pos}")
            track = self._tracks.setdefault(name, _Track(cfg.window))
            guess = track.predicted(tcp)
            if guess is not None and np.linalg.norm(pos - guess) > cfg.jump:
                track.readings.clear()  # and the cube is where it is seen now, held or not
                guess = None
            # Judged from where the cube is expected (one noisy reading would flip it now and then).
            expected[name] = pos if guess is None else guess
        # One hand holds one cube: of the cubes a closed gripper is around, the nearest (a cube placed
        # on a tower has the one under it a cube's height below the fingers, within the grasp box).
        judged = replace(perceived, objects=expected)
        held = [o for o in expected if holding(judged, o)]
        held_cube = min(held, key=lambda o: float(np.linalg.norm(expected[o] - tcp))) if held else None
        out: dict[str, np.ndarray] = {}
        for name, pos in perceived.objects.items():
            track = self._tracks[name]
            track.frame = "hand" if name == held_cube else "world"
            track.readings.append((np.asarray(pos, dtype=np.float64), tcp))
            track.estimate = _estimate(track.in_frame(track.frame), cfg)
            out[name] = track.predicted(tcp).copy()
        for gone in set(self._tracks) - set(perceived.objects):
            del self._tracks[gone]
        self.scene = replace(perceived, objects=out)
        return self.scene
