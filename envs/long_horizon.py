"""Long-horizon tabletop tasks: several skills in sequence (for the hierarchical controller).

Each task is a small class over the shared TabletopEnv, like the primitive tasks in
`envs/tasks.py`, with the same GoalEnv conventions (geometric achieved/desired goals,
vectorised `compute_reward`, `info["is_success"]`). Each also states its goal as a
conjunction of `envs.predicates` literals in `goal_expression`, which is what a symbolic
planner is handed; `info["is_success"]` stays the geometric measure every policy (flat or
hierarchical) is scored by.

| task name        | class                  | cubes              | goal                                        |
|------------------|------------------------|--------------------|---------------------------------------------|
| `pick-place`     | PandaPickPlaceLongEnv  | red                | red at a goal on the table or in the air    |
| `stack-two`      | PandaStackTwoEnv       | red, blue          | red on blue, blue where it started          |
| `stack-three`    | PandaStackThreeEnv     | red, green, blue   | red on blue, green on red, blue unmoved     |
| `push-then-pick` | PandaPushThenPickEnv   | red                | red held at a goal in the air; it starts    |
|                  |                        |                    | outside grasp reach (`in_reach` is false)   |

Grasp reach is the `envs.predicates.in_reach` region (0.25-0.72 m from the base axis):
every pick skill declares it as a precondition. In push-then-pick the cube starts 0.73-0.75 m
out, which a push from behind can still get at (the TCP reaches ~0.80 m at table height),
so a plan over skills must push it in first. A flat policy is free to try a grasp out there.
"""

from __future__ import annotations

import numpy as np

from envs.registry import LONG_HORIZON_STEPS, NAMESPACE
from envs.tasks import OBJECT_HIGH, OBJECT_LOW, PandaPickPlaceEnv, PandaStackEnv, _dist, _sample_xy

__all__ = [
    "LONG_HORIZON_TASKS",
    "LongHorizonTask",
    "PandaPickPlaceLongEnv",
    "PandaPushThenPickEnv",
    "PandaStackThreeEnv",
    "PandaStackTwoEnv",
]


def _sample_apart(rng: np.random.Generator, apart: list[tuple[np.ndarray, float]]) -> np.ndarray:
    """Uniform x-y in the object region, at least the given distance from each given point."""
    for _ in range(1000):
        xy = rng.uniform(OBJECT_LOW, OBJECT_HIGH)
        if all(np.linalg.norm(xy - p[:2]) >= d for p, d in apart):
            return xy
    raise RuntimeError("could not place objects apart; region too small")


class LongHorizonTask:
    """Mixin naming a long-horizon task and its symbolic goal."""

    task_name: str = ""
    goal_expression: str = ""


class PandaPickPlaceLongEnv(LongHorizonTask, PandaPickPlaceEnv):
    """Pick the red cube and place it at a goal (table or air): reach, grasp, lift, carry, place."""

    task_name = "pick-place"
    goal_expression = "at(red)"


class PandaStackTwoEnv(LongHorizonTask, PandaStackEnv):
    """Stack red on blue and let go; blue must stay where it started (6-D goal as PandaStack)."""

    task_name = "stack-two"
    goal_expression = "on(red,blue) & !holding(red)"


class PandaStackThreeEnv(LongHorizonTask, PandaStackEnv):
    """Build a three-cube tower: red on blue, then green on red; blue stays put.

    Goal (9-D): [red target = blue start + 1 cube, green target = blue start + 2 cubes, blue start];
    achieved: [red, green, blue].
    """

    task_name = "stack-three"
    goal_expression = "on(red,blue) & on(green,red) & !holding(green)"
    objects = ("red", "green", "blue")
    goal_sites = ("goal_red", "goal_green", "goal_blue")
    goal_blocks = 3  # goal_distances: one distance per cube

    def _goal_dim(self) -> int:
        return 9

    def _sample_scene(self, rng: np.random.Generator) -> None:
        blue = np.append(_sample_xy(rng, [], 0.0), self.table_height_of(0))
        red = np.append(_sample_xy(rng, [blue], 0.1), self.table_height_of(0))
        # Green is picked beside the finished red-on-blue tower: keep it 15 cm from blue so a top grasp
        # there clears the tower with the Panda hand (about 20 cm long along the finger axis).
        green = np.append(_sample_apart(rng, [(blue, 0.15), (red, 0.1)]), self.table_height_of(0))
        for name, pos in (("blue", blue), ("red", red), ("green", green)):
            self.set_object_pos(name, pos)
        up = np.array([0.0, 0.0, 2 * self.cube_half_size])
        self.goal = np.concatenate((blue + up, blue + 2 * up, blue))

    def _achieved_goal(self) -> np.ndarray:
        return self.objects_pos(("red", "green", "blue"))

    def _interaction(self) -> float:
        # Shape towards the first cube of the tower that is not yet in place.
        for name, target in (("red", self.goal[0:3]), ("green", self.goal[3:6])):
            if _dist(self.object_view(name), target) >= self.goal_threshold:
                return -_dist(self.robot.views(self.data).tcp_pos, self.object_view(name))
        return 0.0


class PandaPushThenPickEnv(LongHorizonTask, PandaPickPlaceEnv):
    """The red cube starts outside grasp reach; bring it to a goal in the air (push it in, then pick)."""

    task_name = "push-then-pick"
    goal_expression = "at(red)"
    START_RADIUS = (0.73, 0.75)  # metres from the base axis: just past in_reach's 0.72
    START_ANGLE = 0.35  # radians either side of straight ahead

    def _sample_scene(self, rng: np.random.Generator) -> None:
        r = rng.uniform(*self.START_RADIUS)
        a = rng.uniform(-self.START_ANGLE, self.START_ANGLE)
        cube = np.array([r * np.cos(a), r * np.sin(a), self.table_height_of(0)])
        self.set_object_pos("red", cube)
        goal_xy = _sample_xy(rng, [cube], 0.1)
        self.goal = np.array([goal_xy[0], goal_xy[1], self.table_height_of(0) + rng.uniform(0.05, 0.15)])


# task name -> (sparse-reward Gymnasium id, class, max episode steps); ids with "Dense" before "-v0" also exist.
LONG_HORIZON_TASKS: dict[str, tuple[str, type, int]] = {
    cls.task_name: (f"{NAMESPACE}/{name}-v0", cls, LONG_HORIZON_STEPS[name])
    for name, cls in (
        ("PandaPickPlaceLong", PandaPickPlaceLongEnv),
        ("PandaStackTwo", PandaStackTwoEnv),
        ("PandaStackThree", PandaStackThreeEnv),
        ("PandaPushThenPick", PandaPushThenPickEnv),
    )
}
