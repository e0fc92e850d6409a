"""Symbolic abstraction of a tabletop scene: ground atoms, effects with a small domain theory.

A symbolic state is the frozenset of ground atoms (positive `envs.predicates.Literal`s)
that hold: ``holding(red)``, ``on(red,blue)``, ``at(red,goal)``, ``gripper_open``,
``in_reach(red)``, ``on_table(red)``, ``at_grasp(red)``. Closed world: an atom not in the
set is false.

Skills declare only the effects they are about, so applying a skill's effects also
applies what the geometry of the table makes follow from them (`implied`):

- a cube that moves (placed by ``on``/``at``, or lifted) leaves nothing standing on it, and
  the one gripper holds no other cube (``holding``/``on``/``at`` of a cube);
- ``on(a,b)``: a is off the table, on nothing else, nothing else is on b, b is not on a,
  a's `at` atoms no longer hold, and a is in reach exactly when b is;
- ``holding(a)``: the gripper holds nothing else and is not open;
  ``holding(a) & !on_table(a)``: a was lifted: it is on nothing, at no goal;
- ``gripper_open``: the gripper holds nothing;
- ``on_table(a)``: a is on no cube;
- ``at(a,g)``: a is at no other goal, on no cube, and on the table / in reach exactly when
  the goal position g is (goal positions are known, so this is geometry, not guessing);
- ``at_grasp`` atoms are volatile: every skill moves the gripper, so they hold afterwards
  only when the skill declares them.

A declared effect always wins over an implied one; an effect list that contradicts its
own implications (e.g. ``at(red,goal) & on_table(red)`` for a goal in the air) is
inconsistent, and the planner drops that grounding (`consistent`).
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace

import numpy as np

from envs.predicates import PREDICATES, Literal, SceneState, in_reach

__all__ = [
    "CompiledEffects",
    "Domain",
    "State",
    "apply_effects",
    "atom",
    "compile_effects",
    "consistent",
    "holds",
    "implied",
    "scene_atoms",
]

State = frozenset  # frozenset[Literal], every literal positive


def atom(name: str, *args: str) -> Literal:
    """A positive ground atom."""
    return Literal(name, tuple(args), False)


def _pos(lit: Literal) -> Literal:
    return lit if not lit.negated else Literal(lit.name, lit.args, False)


@dataclass(frozen=True)
class Domain:
    """The objects and goal symbols of a planning problem, with each goal's geometry.

    goals: symbol -> position (scene goal sites plus planner-made points such as staging
    points); goal_on_table / goal_in_reach: what a cube at that position would satisfy.
    """

    objects: tuple[str, ...]
    goals: Mapping[str, tuple[float, float, float]] = field(default_factory=dict)
    goal_on_table: Mapping[str, bool] = field(default_factory=dict)
    goal_in_reach: Mapping[str, bool] = field(default_factory=dict)
    goal_threshold: float = 0.05

    @classmethod
    def from_scene(cls, scene: SceneState, extra_goals: Mapping[str, np.ndarray] | None = None) -> "Domain":
        goals = {k: tuple(float(x) for x in v) for k, v in scene.goals.items()}
        for k, v in (extra_goals or {}).items():
            goals[k] = tuple(float(x) for x in v)
        h = scene.cube_half_size
        on_table = {g: p[2] < h + 0.01 for g, p in goals.items()}
        reach = {}
        for g, p in goals.items():
            probe = replace(scene, objects={"_probe": np.asarray(p, float)})
            reach[g] = in_reach(probe, "_probe")
        return cls(tuple(scene.objects), goals, on_table, reach, float(scene.goal_threshold))

    def atoms(self) -> list[Literal]:
        """Every ground atom over this domain's objects and goals."""
        objs, out = self.objects, [atom("gripper_open")]
        for o in objs:
            out += [atom("holding", o), atom("at_grasp", o), atom("in_reach", o), atom("on_table", o)]
            out += [atom("at", o, g) for g in self.goals]
        out += [atom("on", a, b) for a, b in itertools.permutations(objs, 2)]
        return out


def scene_atoms(scene: SceneState, domain: Domain) -> State:
    """The symbolic state of a scene: the atoms of `domain` that hold in it."""
    goals = {**scene.goals, **{g: np.asarray(p, float) for g, p in domain.goals.items()}}
    s = replace(scene, goals=goals)
    return frozenset(a for a in domain.atoms() if PREDICATES[a.name](s, *a.args))


def holds(state: State, literals: Iterable[Literal]) -> bool:
    """Closed-world truth of a conjunction of literals in a symbolic state."""
    return all((_pos(lit) in state) != lit.negated for lit in literals)


def implied(effects: Sequence[Literal], domain: Domain) -> tuple[set[Literal], set[Literal], list[tuple[Literal, Literal]]]:
    """What the table's geometry makes follow from declared `effects`.

    Returns (atoms made true, atoms made false, conditionals): a conditional (c, t) means
    atom t holds afterwards exactly when c held before (a cube put on another is in reach
    when the one below is).
    """
    pos = [lit for lit in effects if not lit.negated]
    neg = {_pos(lit) for lit in effects if lit.negated}
    true: set[Literal] = set()
    false: set[Literal] = set()
    conds: list[tuple[Literal, Literal]] = []
    objs = domain.objects
    for a in pos:
        if a.name in ("holding", "on", "at"):  # one gripper: moving a cube means holding no other
            false |= {atom("holding", y) for y in objs if y != a.args[0]}
        if a.name == "holding":
            (x,) = a.args
            false.add(atom("gripper_open"))
            if atom("on_table", x) in neg:  # lifted: off what it stood on, and what stood on it fell
                false |= {atom("on", x, y) for y in objs if y != x}
                false |= {atom("on", y, x) for y in objs if y != x}
                false |= {atom("at", x, g) for g in domain.goals}
        elif a.name == "gripper_open":
            false |= {atom("holding", y) for y in objs}
        elif a.name == "on":
            x, y = a.args
            false.add(atom("on_table", x))
            false |= {atom("on", x, z) for z in objs if z not in (x, y)}
            false |= {atom("on", z, y) for z in objs if z not in (x, y)}
            false |= {atom("on", z, x) for z in objs if z != x}  # x moved: what stood on it fell
            false |= {atom("at", x, g) for g in domain.goals}
            conds.append((atom("in_reach", y), atom("in_reach", x)))
        elif a.name == "on_table":
            (x,) = a.args
            false |= {atom("on", x, y) for y in objs if y != x}
        elif a.name == "at":
            x, g = a.args
            false |= {atom("at", x, h) for h in domain.goals if h != g and _apart(domain, g, h)}
            false |= {atom("on", x, y) for y in objs if y != x}
            false |= {atom("on", y, x) for y in objs if y != x}
            if g in domain.goal_on_table:
                (true if domain.goal_on_table[g] else false).add(atom("on_table", x))
                (true if domain.goal_in_reach[g] else false).add(atom("in_reach", x))
    return true, false, conds


@dataclass(frozen=True)
class CompiledEffects:
    """Effects ready to apply fast: unconditional add/delete sets plus conditionals."""

    add: frozenset
    delete: frozenset
    conds: tuple[tuple[Literal, Literal], ...] = ()

    def apply(self, state: State) -> State:
        s = (state - self.delete) | self.add
        for c, t in self.conds:
            s = s | {t} if c in state else s - {t}
        return frozenset(s)


def compile_effects(effects: Sequence[Literal], domain: Domain) -> CompiledEffects:
    """Declared effects plus their implications (declared ones win), as add/delete sets."""
    pos = {lit for lit in effects if not lit.negated}
    neg = {_pos(lit) for lit in effects if lit.negated}
    true, false, conds = implied(effects, domain)
    volatile = {atom("at_grasp", o) for o in domain.objects}  # the gripper moved
    delete = neg | (false - pos) | (volatile - pos)
    add = pos | (true - neg)
    keep = tuple((c, t) for c, t in conds if t not in pos and t not in neg)
    return CompiledEffects(frozenset(add), frozenset(delete - add), keep)


def _apart(domain: Domain, g: str, h: str) -> bool:
    """Two goal symbols far enough apart that one cube cannot be at both."""
    if g not in domain.goals or h not in domain.goals:
        return True
    return float(np.linalg.norm(np.subtract(domain.goals[g], domain.goals[h]))) >= 2 * domain.goal_threshold


def consistent(effects: Sequence[Literal], domain: Domain) -> bool:
    """False when declared effects contradict each other or their geometric implications."""
    pos = {lit for lit in effects if not lit.negated}
    neg = {_pos(lit) for lit in effects if lit.negated}
    if pos & neg:
        return False
    true, false, _ = implied(effects, domain)
    return not (pos & false) and not (neg & true)


def apply_effects(state: State, effects: Sequence[Literal], domain: Domain) -> State:
    """The symbolic state after a skill with these declared effects succeeds."""
    return compile_effects(effects, domain).apply(state)
