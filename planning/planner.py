"""Symbolic planner over skills: best-first search by preconditions and effects.

Each grounded skill is an `Operator` with preconditions and effects (literals over the
scene's objects) and descriptors: estimated success p, duration and safety cost. A plan's
cost is the sum over its steps of

    -log(max(p, p_min)) + duration_weight * duration_s + safety_weight * safety_cost + step_cost

so the cheapest plan is the one most likely to succeed, then the quickest and safest.
`plan()` keeps the operators relevant to the goal (backward reachability through
effects, their implications and preconditions), then for every applicable first step
runs A* over symbolic states (`symbolic.apply_effects`; heuristic: unmet goal literals
over the most one step meets, times the cheapest step) and returns those plans ranked,
at most `k`, within `cost_margin` of the best; plans with a detour (a step that can be
left out) are dropped. The distinct first steps are what a controller chooses among. An unreachable goal raises
`NoPlanError`, a ValueError whose message says which goal literals no skill achieves or
how far the search went.
"""

from __future__ import annotations

import heapq
import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from envs.predicates import Literal
from planning.symbolic import CompiledEffects, Domain, State, apply_effects, compile_effects, holds

__all__ = ["NoPlanError", "Operator", "Plan", "PlannerConfig", "is_minimal", "plan", "relevant"]


class NoPlanError(ValueError):
    """No sequence of the available skills reaches the goal from the given state."""


@dataclass(frozen=True)
class Operator:
    """A skill grounded on scene objects, as the planner sees it.

    label: unique readable name, e.g. ``place_red_on_blue(red=green,blue=red)``;
    skill_ref: the library skill (``name@version``); payload: whatever the executor needs
    to run it (not compared or hashed).
    """

    label: str
    skill_ref: str
    preconditions: tuple[Literal, ...]
    effects: tuple[Literal, ...]
    success: float = 0.5
    duration_s: float = 2.0
    safety_cost: float = 0.0
    kind: str = "scripted"
    payload: Any = field(default=None, compare=False, hash=False, repr=False)

    def applicable(self, state: State) -> bool:
        return holds(state, self.preconditions)

    def achieves(self, lit: Literal) -> bool:
        return lit in self.effects


@dataclass(frozen=True)
class PlannerConfig:
    """Search and ranking knobs (defaults suit a handful of cubes and a few dozen operators)."""

    k: int = 5
    max_depth: int = 10
    max_expansions: int = 20000
    duration_weight: float = 0.05  # cost per second of expected duration
    safety_weight: float = 0.1  # cost per unit of expected safety cost
    step_cost: float = 0.01
    p_min: float = 0.02
    minimal: bool = True  # drop plans that still reach the goal with a step left out (detours)
    cost_margin: float = 1.5  # alternatives cost at most this much more than the best plan (e^1.5 ~ 4.5x less likely)

    def cost(self, op: Operator) -> float:
        return (
            -math.log(max(min(op.success, 1.0), self.p_min))
            + self.duration_weight * max(op.duration_s, 0.0)
            + self.safety_weight * max(op.safety_cost, 0.0)
            + self.step_cost
        )


@dataclass(frozen=True)
class Plan:
    """A ranked sequence of operators; `success` is the product of their estimated success."""

    steps: tuple[Operator, ...]
    cost: float

    @property
    def success(self) -> float:
        return math.prod(op.success for op in self.steps) if self.steps else 1.0

    @property
    def duration_s(self) -> float:
        return sum(op.duration_s for op in self.steps)

    @property
    def labels(self) -> list[str]:
        return [op.label for op in self.steps]

    def __str__(self) -> str:
        return " -> ".join(self.labels) if self.steps else "(goal already holds)"


def _goal_text(goal: Sequence[Literal]) -> str:
    return " & ".join(str(g) for g in goal)


def _explain(state: State, goal: Sequence[Literal], operators: Sequence[Operator], expanded: int, cfg: PlannerConfig) -> str:
    unmet = [g for g in goal if not holds(state, [g])]
    orphans = [g for g in unmet if not any(op.achieves(g) for op in operators)]
    head = f"no plan reaches goal `{_goal_text(goal)}` from the current state"
    if not operators:
        return f"{head}: no skills to plan with"
    if orphans:
        return (
            f"{head}: no skill in the library achieves {', '.join(str(g) for g in orphans)} "
            f"(no grounded skill declares it as an effect; {len(operators)} grounded skills considered)"
        )
    return (
        f"{head}: every unmet literal ({', '.join(str(g) for g in unmet)}) is some skill's effect, but no "
        f"sequence of at most {cfg.max_depth} skills makes them hold together "
        f"(searched {expanded} states; check the skills' preconditions)"
    )


@dataclass(frozen=True)
class _Compiled:
    pre_pos: frozenset
    pre_neg: frozenset
    eff_pos: frozenset
    eff_neg: frozenset
    effects: CompiledEffects


def _compile(op: Operator, domain: Domain) -> _Compiled:
    pos = lambda lits: frozenset(Literal(x.name, x.args, False) for x in lits if not x.negated)  # noqa: E731
    neg = lambda lits: frozenset(Literal(x.name, x.args, False) for x in lits if x.negated)  # noqa: E731
    return _Compiled(pos(op.preconditions), neg(op.preconditions), pos(op.effects), neg(op.effects), compile_effects(op.effects, domain))


def relevant(operators: Sequence[Operator], goal: Sequence[Literal], domain: Domain) -> list[Operator]:
    """Operators that can contribute to the goal: they make true (or false) a goal literal,
    or a precondition of another relevant operator, directly or through implications."""
    wanted = {(Literal(g.name, g.args, False), g.negated) for g in goal}
    comp = {id(op): compile_effects(op.effects, domain) for op in operators}
    keep: dict[int, Operator] = {}
    changed = True
    while changed:
        changed = False
        for op in operators:
            if id(op) in keep:
                continue
            c = comp[id(op)]
            makes = {(a, False) for a in c.add} | {(a, True) for a in c.delete} | {(t, n) for _, t in c.conds for n in (False, True)}
            if makes & wanted:
                keep[id(op)] = op
                wanted |= {(Literal(x.name, x.args, False), x.negated) for x in op.preconditions}
                changed = True
    return [op for op in operators if id(op) in keep]


def _successor(c: _Compiled, s: State) -> State | None:
    """The state after an operator, or None when it is not applicable or would change nothing."""
    if not (c.pre_pos <= s) or (c.pre_neg & s):
        return None
    if c.eff_pos <= s and not (c.eff_neg & s):
        return None  # its effects already hold
    nxt = c.effects.apply(s)
    return None if nxt == s else nxt


def _valid(steps: Sequence[Operator], state: State, goal: Sequence[Literal], domain: Domain) -> bool:
    s = state
    for op in steps:
        if not op.applicable(s):
            return False
        s = apply_effects(s, op.effects, domain)
    return holds(s, goal)


def is_minimal(steps: Sequence[Operator], state: State, goal: Sequence[Literal], domain: Domain) -> bool:
    """True when no single step can be left out of the plan with the goal still reached."""
    return not any(_valid(steps[:i] + steps[i + 1 :], state, goal, domain) for i in range(len(steps)))


def plan(
    state: State,
    goal: Sequence[Literal],
    operators: Sequence[Operator],
    domain: Domain,
    config: PlannerConfig | None = None,
) -> list[Plan]:
    """Ranked candidate plans from `state` to `goal`: the cheapest plan through each
    applicable first step (A* over symbolic states after it), detours dropped, at most
    `config.k`, within `config.cost_margin` of the best.

    Returns ``[Plan(())]`` when the goal already holds; raises NoPlanError (with the
    reason) when no plan exists within the search limits.
    """
    cfg = config or PlannerConfig()
    goal = tuple(goal)
    if holds(state, goal):
        return [Plan((), 0.0)]
    ops = relevant(operators, goal, domain)
    comp = [(_compile(op, domain), op, cfg.cost(op)) for op in ops]
    op_effects = {id(op): c.effects for c, op, _ in comp}
    goal_pos = frozenset(Literal(g.name, g.args, False) for g in goal if not g.negated)
    goal_neg = frozenset(Literal(g.name, g.args, False) for g in goal if g.negated)
    # Admissible heuristic: unmet goal literals / most goal literals one step can meet, times the cheapest step.
    # (The same bound for the positive goal literals alone, and the max of the two.)
    per_op = max((len(c.effects.add & goal_pos) + len(c.effects.delete & goal_neg) for c, _, _ in comp), default=1) or 1
    per_op_pos = max((len(c.effects.add & goal_pos) for c, _, _ in comp), default=1) or 1
    min_cost = min((w for _, _, w in comp), default=0.0)

    def h(s: State) -> float:
        unmet_pos = len(goal_pos - s)
        unmet = unmet_pos + len(goal_neg & s)
        return min_cost * max(math.ceil(unmet / per_op), math.ceil(unmet_pos / per_op_pos))

    budget = [cfg.max_expansions]

    memo: dict[State, tuple[tuple[Operator, ...], float]] = {}  # exact cost-to-go of states on found plans

    def search(s0: State, depth: int) -> tuple[tuple[Operator, ...], float] | None:
        """A* (closed set) for the cheapest plan from s0 within `depth` steps.

        Suffixes of optimal plans are optimal, so states on a found plan remember their
        cost-to-go and later searches finish as soon as they reach one.
        """
        tie = itertools.count()
        frontier: list[tuple[float, float, int, State, tuple[Operator, ...], bool]] = [(h(s0), 0.0, next(tie), s0, (), False)]
        closed: set[State] = set()
        while frontier and budget[0] > 0:
            _f, cost, _, s, steps, done = heapq.heappop(frontier)
            if done:
                rest, rest_cost = memo[s]
                total = steps + rest
                if len(total) <= depth:
                    _remember(s0, total, cost + rest_cost)
                    return total, cost + rest_cost
                continue
            if goal_pos <= s and not (goal_neg & s):
                _remember(s0, steps, cost)
                return steps, cost
            if s in closed or len(steps) >= depth:
                continue
            closed.add(s)
            budget[0] -= 1
            if s in memo and s is not s0:
                rest, rest_cost = memo[s]
                heapq.heappush(frontier, (cost + rest_cost, cost, next(tie), s, steps, True))
                continue
            for c, op, w in comp:
                nxt = _successor(c, s)
                if nxt is not None and nxt not in closed:
                    g = cost + w
                    heapq.heappush(frontier, (g + h(nxt), g, next(tie), nxt, steps + (op,), False))
        return None

    def _remember(s0: State, steps: tuple[Operator, ...], total: float) -> None:
        s, acc = s0, 0.0
        for i, op in enumerate(steps):
            memo.setdefault(s, (steps[i:], total - acc))
            acc += cfg.cost(op)
            s = op_effects[id(op)].apply(s)

    # Best plan per distinct first step (the candidates a controller chooses among), ranked.
    found: list[Plan] = []
    for c, op, w in comp:
        nxt = _successor(c, state)
        if nxt is None:
            continue
        rest = search(nxt, cfg.max_depth - 1)
        if rest is None:
            continue
        steps = (op,) + rest[0]
        if cfg.minimal and not is_minimal(steps, state, goal, domain):
            continue
        found.append(Plan(steps, w + rest[1]))
    found.sort(key=lambda p: (p.cost, len(p.steps)))
    found = [p for p in found if p.cost <= found[0].cost + cfg.cost_margin][: cfg.k] if found else []
    expanded = cfg.max_expansions - budget[0]
    if not found:
        raise NoPlanError(_explain(state, goal, operators, expanded, cfg))
    return found
