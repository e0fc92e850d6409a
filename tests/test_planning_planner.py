"""Symbolic planning over skills: search, ranking, domain theory, unreachable goals, task specs."""

import numpy as np
import pytest

from envs.predicates import Literal
from planning.planner import NoPlanError, Operator, PlannerConfig, is_minimal, plan
from planning.spec import parse_goal, resolve_task
from planning.symbolic import Domain, apply_effects, atom, consistent, holds

CUBES = ("red", "green", "blue")
DOMAIN = Domain(
    objects=CUBES,
    goals={"table_goal": (0.5, 0.0, 0.02), "air_goal": (0.5, 0.1, 0.15)},
    goal_on_table={"table_goal": True, "air_goal": False},
    goal_in_reach={"table_goal": True, "air_goal": True},
)
START = frozenset({atom("gripper_open")} | {atom(p, c) for c in CUBES for p in ("on_table", "in_reach")})


def lits(expr):
    return parse_goal(expr)


def op(label, pre, eff, success=0.8, duration=1.0, ref=None):
    return Operator(label, ref or label.split("(")[0] + "@1.0.0", lits(pre) if pre else (), lits(eff), success, duration)


def pick_place_ops():
    ops = []
    for x in CUBES:
        ops.append(op(f"pick({x})", f"in_reach({x}) & !holding({x})", f"holding({x}) & !on_table({x})"))
        for y in CUBES:
            if y != x:
                ops.append(op(f"place({x},{y})", f"holding({x})", f"on({x},{y}) & !holding({x}) & gripper_open"))
    return ops


def test_stack_three_plan_builds_the_tower_bottom_up():
    goal = lits("on(red,blue) & on(green,red)")
    plans = plan(START, goal, pick_place_ops(), DOMAIN)
    assert plans[0].labels == ["pick(red)", "place(red,blue)", "pick(green)", "place(green,red)"]
    assert plans[0].success == pytest.approx(0.8**4)
    # Every returned plan really reaches the goal and has no detour.
    for p in plans:
        s = START
        for step in p.steps:
            assert step.applicable(s)
            s = apply_effects(s, step.effects, DOMAIN)
        assert holds(s, goal) and is_minimal(p.steps, START, goal, DOMAIN)


def test_green_first_is_not_a_plan_because_lifting_red_topples_green():
    s = START
    for label in ["pick(green)", "place(green,red)", "pick(red)", "place(red,blue)"]:
        step = next(o for o in pick_place_ops() if o.label == label)
        s = apply_effects(s, step.effects, DOMAIN)
    assert atom("on", "red", "blue") in s and atom("on", "green", "red") not in s


def test_plans_are_ranked_by_estimated_success_then_duration():
    goal = lits("at(red,table_goal)")
    risky = op("push_fast(red)", "on_table(red)", "at(red,table_goal) & on_table(red)", success=0.3, duration=1.0)
    safe = op("pick_place(red)", "in_reach(red)", "at(red,table_goal)", success=0.9, duration=3.0)
    plans = plan(START, goal, [risky, safe], DOMAIN)
    assert [p.labels for p in plans] == [["pick_place(red)"], ["push_fast(red)"]]
    # Same success: the shorter skill wins.
    quick = op("pick_place_quick(red)", "in_reach(red)", "at(red,table_goal)", success=0.9, duration=1.0)
    assert plan(START, goal, [safe, quick], DOMAIN)[0].labels == ["pick_place_quick(red)"]
    # A single-candidate config returns one plan; a tight margin drops much worse alternatives.
    assert len(plan(START, goal, [risky, safe], DOMAIN, PlannerConfig(k=1))) == 1
    assert len(plan(START, goal, [risky, safe], DOMAIN, PlannerConfig(cost_margin=0.5))) == 1


def test_detours_are_not_offered():
    goal = lits("holding(red) & !on_table(red)")
    wiggle = op("wiggle(red)", "!holding(red)", "at_grasp(red)")
    plans = plan(START, goal, pick_place_ops() + [wiggle], DOMAIN)
    assert [p.labels for p in plans] == [["pick(red)"]]


def test_geometry_makes_inconsistent_groundings_and_implied_facts():
    # A push keeps the cube on the table, so it cannot put it at a goal in the air.
    assert consistent(lits("at(red,table_goal) & on_table(red)"), DOMAIN)
    assert not consistent(lits("at(red,air_goal) & on_table(red)"), DOMAIN)
    assert not consistent(lits("holding(red) & gripper_open"), DOMAIN)
    s = apply_effects(START, lits("at(red,air_goal)"), DOMAIN)
    assert atom("on_table", "red") not in s and atom("in_reach", "red") in s
    # One gripper: picking green lets go of red.
    s = apply_effects(START, lits("holding(red)"), DOMAIN)
    s = apply_effects(s, lits("holding(green) & !on_table(green)"), DOMAIN)
    assert atom("holding", "red") not in s and atom("gripper_open") not in s


def test_goal_that_already_holds_is_an_empty_plan():
    plans = plan(START, lits("on_table(red) & gripper_open"), pick_place_ops(), DOMAIN)
    assert len(plans) == 1 and plans[0].steps == () and str(plans[0]) == "(goal already holds)"


def test_unreachable_goals_say_no_plan_and_why():
    ops = pick_place_ops()
    with pytest.raises(NoPlanError, match=r"no plan reaches goal `on\(red,blue\) & on\(blue,red\)`.*no sequence of at most"):
        plan(START, lits("on(red,blue) & on(blue,red)"), ops, DOMAIN)
    with pytest.raises(NoPlanError, match=r"no skill in the library achieves at\(red,air_goal\)"):
        plan(START, lits("on(red,blue) & at(red,air_goal)"), ops, DOMAIN)
    with pytest.raises(NoPlanError, match="no skills to plan with"):
        plan(START, lits("on(red,blue)"), [], DOMAIN)
    # Preconditions that can never hold: nothing picks a cube out of reach.
    far = START - {atom("in_reach", "red")}
    with pytest.raises(NoPlanError, match="no plan reaches goal"):
        plan(far, lits("on(red,blue)"), ops, DOMAIN)
    assert issubclass(NoPlanError, ValueError)


def test_planning_stays_fast_with_many_groundings():
    ops = pick_place_ops() + [
        op(f"noise{i}({c})", f"on_table({c})", f"at({c},table_goal) & on_table({c})", success=0.5) for i in range(5) for c in CUBES
    ]
    # Fast in search effort, not wall time: the irrelevant groundings are pruned and the plan
    # is found within 100 expanded states (the default budget is 20,000; 8 suffice today).
    plans = plan(START, lits("on(red,blue) & on(green,red) & !holding(green)"), ops, DOMAIN, PlannerConfig(max_expansions=100))
    assert plans[0].labels == ["pick(red)", "place(red,blue)", "pick(green)", "place(green,red)"]


def test_goal_strings_yaml_specs_and_task_names(tmp_path):
    assert parse_goal("at(red)") == (Literal("at", ("red", "goal")),)
    assert parse_goal(["on(red,blue)", "!holding(red)"]) == (Literal("on", ("red", "blue")), Literal("holding", ("red",), True))
    with pytest.raises(ValueError, match="unknown predicate 'stacked'"):
        parse_goal("stacked(red)")
    spec = resolve_task("stack-three")
    assert spec.env_id == "skillstack/PandaStackThree-v0" and spec.objects() == {"red", "green", "blue"}
    y = tmp_path / "tower.yaml"
    y.write_text("env: skillstack/PandaStackThree-v0\ngoal:\n  - on(red,blue)\n  - on(green,red)\n")
    spec = resolve_task(y)
    assert spec.name == "tower" and spec.goal_expression == "on(red,blue) & on(green,red)"
    bad = tmp_path / "bad.yaml"
    bad.write_text("goal: on(red,blue)\nrobot: panda\n")
    with pytest.raises(ValueError, match="unknown key"):
        resolve_task(bad)
    with pytest.raises(ValueError, match="unknown task 'juggle'"):
        resolve_task("juggle")
    with pytest.raises(ValueError, match="has no goal expression"):
        resolve_task("skillstack/PandaPush-v0")
    assert resolve_task("skillstack/PandaPush-v0", goal="at(red)").goal == (Literal("at", ("red", "goal")),)
    assert np.isclose(DOMAIN.goal_threshold, 0.05)
