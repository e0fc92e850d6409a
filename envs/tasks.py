"""The tabletop task family: small classes over the shared TabletopEnv (any robot).

Each task says which cubes it uses, how it samples the cubes and the goal, what its
achieved goal is, and what its interaction (shaping) term measures.
"""

from __future__ import annotations

import math

import numpy as np

from envs.base import TabletopEnv, per_goal_distances  # noqa: F401  per_goal_distances: its old home, kept importable


def _dist(a: np.ndarray, b: np.ndarray) -> float:
    """Euclidean distance of two 3-vectors (np.linalg.norm, even `d @ d`, costs more than the maths;
    `d.dot(d)` is the same BLAS dot as `d @ d`)."""
    d = a - b
    return math.sqrt(d.dot(d))


# Where cubes and table goals are sampled (world x, y, metres): in front of the base.
OBJECT_LOW = np.array([0.45, -0.18])
OBJECT_HIGH = np.array([0.67, 0.18])


def _sample_xy(rng: np.random.Generator, avoid: list[np.ndarray], min_dist: float) -> np.ndarray:
    """Uniform x-y in the object region, at least `min_dist` from every point in `avoid`."""
    for _ in range(1000):
        xy = rng.uniform(OBJECT_LOW, OBJECT_HIGH)
        if all(np.linalg.norm(xy - a[:2]) >= min_dist for a in avoid):
            return xy
    raise RuntimeError("could not place objects apart; region too small")


class PandaReachEnv(TabletopEnv):
    """Move the TCP to a target point in the air above the table."""

    objects = ()
    goal_sites = ("goal",)

    def _sample_scene(self, rng: np.random.Generator) -> None:
        self.goal = np.array(
            [rng.uniform(0.35, 0.65), rng.uniform(-0.2, 0.2), rng.uniform(0.05, 0.35)],
        )

    def _achieved_goal(self) -> np.ndarray:
        return self.robot.views(self.data).tcp_pos.copy()  # tcp_pos() without its extra call

    def _interaction(self) -> float:
        # Reach has no object: shape by distance from TCP to the target.
        return -_dist(self.robot.views(self.data).tcp_pos, self.goal)


class PandaPushEnv(TabletopEnv):
    """Push the red cube across the table to a goal on the table (gripper stays useful closed)."""

    objects = ("red",)
    goal_sites = ("goal",)

    def _sample_scene(self, rng: np.random.Generator) -> None:
        cube = np.append(_sample_xy(rng, [], 0.0), self.table_height_of(0))
        self.set_object_pos("red", cube)
        self.goal = np.append(_sample_xy(rng, [cube], 0.1), self.table_height_of(0))

    def _achieved_goal(self) -> np.ndarray:
        return self.object_pos("red")

    def _interaction(self) -> float:
        return -_dist(self.robot.views(self.data).tcp_pos, self.object_view("red"))


class PandaPickPlaceEnv(PandaPushEnv):
    """Pick up the red cube and place it at a goal on the table or (half the time) in the air."""

    def _sample_scene(self, rng: np.random.Generator) -> None:
        super()._sample_scene(rng)
        if rng.uniform() < 0.5:
            self.goal[2] += rng.uniform(0.02, 0.2)


class PandaStackEnv(TabletopEnv):
    """Stack the red cube on the blue one; blue must stay where it started.

    Goal (6-D): [red target = blue start + one cube up, blue start]; achieved: [red, blue].
    """

    objects = ("red", "blue")
    goal_sites = ("goal_red", "goal_blue")
    goal_threshold = 0.02  # tighter than Fetch's 5 cm: a cube is 4 cm wide
    goal_blocks = 2  # goal_distances: one distance per cube

    def _goal_dim(self) -> int:
        return 6

    def _sample_scene(self, rng: np.random.Generator) -> None:
        blue = np.append(_sample_xy(rng, [], 0.0), self.table_height_of(0))
        red = np.append(_sample_xy(rng, [blue], 0.1), self.table_height_of(0))
        self.set_object_pos("blue", blue)
        self.set_object_pos("red", red)
        self.goal = np.concatenate((blue + [0.0, 0.0, 2 * self.cube_half_size], blue))

    def _achieved_goal(self) -> np.ndarray:
        return self.objects_pos(("red", "blue"))

    def _interaction(self) -> float:
        return -_dist(self.robot.views(self.data).tcp_pos, self.object_view("red"))


TASKS: dict[str, type[TabletopEnv]] = {
    "PandaReach": PandaReachEnv,
    "PandaPush": PandaPushEnv,
    "PandaPickPlace": PandaPickPlaceEnv,
    "PandaStack": PandaStackEnv,
}
