"""Symbolic state predicates over a tabletop scene, for planners and skill manifests.

A predicate is a named boolean function of a `SceneState` snapshot. Expressions are
conjunctions of literals, e.g. ``"on(red,blue) & !holding(red) & gripper_open"``.
The same snapshot can be built from a simulator (`TabletopEnv.scene_state()`) or from a
robot's joint states and object poses, so a plan checks the same facts on both.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from sim_assets import CUBE_HALF_SIZE, DEFAULT_ROBOT, load_robot

# Horizontal reach of the default robot's gripper pointing down over the table (from the base
# axis, metres): a scene state from an env carries its own robot's (`SceneState.grasp_reach`).
REACH_MIN_RADIUS, REACH_MAX_RADIUS = load_robot(DEFAULT_ROBOT).grasp_reach
GRIPPER_OPEN_WIDTH = 0.06  # wide enough to pass over a cube with room on both sides


@dataclass
class SceneState:
    """What predicates may look at: robot TCP, gripper, cube and goal positions."""

    tcp_pos: np.ndarray
    tcp_mat: np.ndarray
    gripper_width: float
    objects: dict[str, np.ndarray]
    goals: dict[str, np.ndarray] = field(default_factory=dict)
    cube_half_size: float = CUBE_HALF_SIZE
    goal_threshold: float = 0.05
    grasp_reach: tuple[float, float] = (REACH_MIN_RADIUS, REACH_MAX_RADIUS)  # the robot's (robot description)

    def object(self, name: str) -> np.ndarray:
        try:
            return self.objects[name]
        except KeyError:
            raise ValueError(f"unknown object {name!r}; scene has {sorted(self.objects)}") from None

    def goal(self, name: str) -> np.ndarray:
        try:
            return self.goals[name]
        except KeyError:
            raise ValueError(f"unknown goal {name!r}; scene has {sorted(self.goals)}") from None


def at_grasp(s: SceneState, obj: str) -> bool:
    """The cube sits between the fingers (open or closed): the gripper is in grasp pose around it."""
    h = s.cube_half_size
    rel = s.tcp_mat.T @ (s.object(obj) - s.tcp_pos)
    return bool(abs(rel[0]) < h + 0.012 and abs(rel[1]) < h + 0.01 and abs(rel[2]) < 0.03)


def holding(s: SceneState, obj: str) -> bool:
    """The cube sits between the fingers and the gripper is closed on it."""
    between = at_grasp(s, obj)
    h = s.cube_half_size
    closed_on = 2 * h - 0.012 < s.gripper_width < 2 * h + 0.008
    return bool(between and closed_on)


def on(s: SceneState, top: str, bottom: str) -> bool:
    """`top` rests on `bottom`: centred within half a cube, one cube height above."""
    h = s.cube_half_size
    a, b = s.object(top), s.object(bottom)
    return bool(np.linalg.norm(a[:2] - b[:2]) < h and 1.5 * h < a[2] - b[2] < 2.5 * h)


def at(s: SceneState, obj: str, goal: str = "goal") -> bool:
    """The cube is within the goal threshold of a goal position."""
    return bool(np.linalg.norm(s.object(obj) - s.goal(goal)) < s.goal_threshold)


def gripper_open(s: SceneState) -> bool:
    return bool(s.gripper_width > GRIPPER_OPEN_WIDTH)


def in_reach(s: SceneState, obj: str) -> bool:
    """The cube lies where the robot's downward-pointing gripper can grasp it (its `grasp_reach`)."""
    p = s.object(obj)
    r = float(np.hypot(p[0], p[1]))
    return bool(s.grasp_reach[0] <= r <= s.grasp_reach[1] and p[0] > 0.15)


def on_table(s: SceneState, obj: str) -> bool:
    """The cube rests on the table top (not lifted, not stacked)."""
    return bool(s.object(obj)[2] < s.cube_half_size + 0.01)


PREDICATES: dict[str, Callable[..., bool]] = {
    "holding": holding,
    "at_grasp": at_grasp,
    "on": on,
    "at": at,
    "gripper_open": gripper_open,
    "in_reach": in_reach,
    "on_table": on_table,
}
_ARITY = {"holding": (1,), "at_grasp": (1,), "on": (2,), "at": (1, 2), "gripper_open": (0,), "in_reach": (1,), "on_table": (1,)}


@dataclass(frozen=True)
class Literal:
    """One possibly negated predicate application, e.g. `!holding(red)`."""

    name: str
    args: tuple[str, ...] = ()
    negated: bool = False

    def __str__(self) -> str:
        core = f"{self.name}({','.join(self.args)})" if self.args else self.name
        return ("!" if self.negated else "") + core

    def holds(self, state: SceneState) -> bool:
        return PREDICATES[self.name](state, *self.args) != self.negated


_LITERAL = re.compile(r"^\s*(!|not\s+)?\s*([a-z_][a-z0-9_]*)\s*(?:\(([^()]*)\))?\s*$")


def parse(expr: str) -> list[Literal]:
    """Parse a conjunction like ``"on(red,blue) & !holding(red)"`` into literals.

    Raises ValueError naming the bad part and listing the known predicates.
    """
    if not isinstance(expr, str) or not expr.strip():
        raise ValueError("empty predicate expression")
    out = []
    for part in re.split(r"&|\band\b", expr):
        m = _LITERAL.match(part)
        if not m:
            raise ValueError(f"cannot parse predicate {part.strip()!r} in {expr!r}; expected name(arg,...)")
        neg, name, args = m.groups()
        if name not in PREDICATES:
            raise ValueError(f"unknown predicate {name!r}; known: {sorted(PREDICATES)}")
        arg_t = tuple(a.strip() for a in args.split(",")) if args and args.strip() else ()
        if len(arg_t) not in _ARITY[name]:
            raise ValueError(f"predicate {name!r} takes {_ARITY[name]} argument(s), got {len(arg_t)} in {part.strip()!r}")
        out.append(Literal(name, arg_t, bool(neg)))
    return out


def evaluate(expr: str | list[Literal], state: SceneState) -> bool:
    """True when every literal of the conjunction holds in `state`."""
    literals = parse(expr) if isinstance(expr, str) else expr
    return all(lit.holds(state) for lit in literals)
