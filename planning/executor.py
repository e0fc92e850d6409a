"""The hierarchical controller: plan over skills, run them with monitoring, re-plan, adapt online.

One episode, decision by decision (a receding horizon, as the table-tennis agent decided
per ball):

1. abstract the real scene into a symbolic state (`symbolic.scene_atoms`) over its cubes,
   its goal sites and a staging point per cube out of grasp reach;
2. ground every skill on the scene (`grounding.ground_skill`) and search for the `k`
   cheapest plans (`planner.plan`); the candidates are the distinct first steps of those
   plans, each scored by its plan's estimated success;
3. choose with the gradient bandit: softmax((estimated success + preference) / T),
   sampled (online) or greedy (`explore=False`);
4. run the chosen skill until its effects hold (success; a scripted skill may first
   finish its script, a few steps at most) or it fails: its time budget
   (a multiple of its expected duration) runs out, a scripted skill finishes without the
   effects, a cube it held leaves the gripper ("lost grasp"), or a goal literal that
   held when it started stays broken for a few steps ("knocked over");
5. log the decision (skill, grounding, estimated success, preference, probability, plan,
   outcome, reason, steps, safety cost), update the bandit with r = 1 or 0, and go back
   to 1. A skill that reaches its effects but leaves the scene in a symbolic state seen
   before in the episode (since the last failure or disturbance) made no progress and
   counts as a failure. A decision made after a failure is a re-plan; past
   `replan_budget` re-plans, or when no plan exists, the controller stops acting (it
   holds still). Between skills, an empty gripper still around a cube is lifted clear
   of it (a transition, not a skill), unless the skill just run declared `at_grasp` of
   that cube: it put the gripper there for the next skill (a reach before a grasp).

The controller decides on its own estimate of the scene (`scene_estimate.SceneEstimator`: the
cubes over the last ticks of *perceived* positions, as a robot perceives them), never on the
simulator's truth; a goal it has seen hold counts as held until it is seen broken for
`goal_broken_steps` steps in a row. When the goal holds the robot holds still until the episode
ends; success is the env's own `info["is_success"]` at the last step, the measure a flat policy
is scored by too.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import Any

import numpy as np

from envs.predicates import Literal, SceneState, holding, parse
from planning.bandit import GradientBandit
from skill_library.errors import SkillLibraryError
from planning.grounding import GroundedSkill, SkillGroundingError, ground_skill, staging_points
from planning.planner import NoPlanError, Operator, Plan, PlannerConfig, plan
from planning.scene_estimate import SceneEstimator, SceneEstimatorConfig
from planning.symbolic import Domain, apply_effects, compile_effects, holds, scene_atoms

__all__ = ["ControllerConfig", "Decision", "EpisodeResult", "HierarchicalController", "load_library_skills", "summarize"]

LEARNED_KINDS = ("rl", "bc")


@dataclass(frozen=True)
class ControllerConfig:
    """Execution and adaptation knobs."""

    planner: PlannerConfig = field(default_factory=PlannerConfig)
    replan_budget: int = 3  # re-plans (decisions after a failed skill) allowed per episode
    budget_factor: float = 2.5  # a skill's time budget = factor x its expected duration
    min_budget_steps: int = 40
    max_budget_steps: int = 200
    max_decisions: int = 30
    explore: bool = True  # sample from the bandit's softmax (else greedy)
    adapt: bool = True  # update preferences from outcomes
    prior_success: float = 0.5
    condition: str = "nominal"  # the envs.conditions condition the robot runs under: skills are ranked by its descriptors
    lost_grasp_distance: float = 0.06  # m from TCP to a cube that was held
    broken_steps: int = 3  # consecutive steps a protected goal literal may be false before the skill is aborted
    goal_broken_steps: int = 10  # consecutive steps a goal seen to hold must be seen broken before acting again
    settle_steps: int = 10  # steps a finished skill's effects may take to be seen (the cube settles, the estimate follows)
    confirm_steps: int = 2  # consecutive steps the effects must hold (the skill keeps acting meanwhile)
    finish_steps: int = 15  # a scripted skill whose effects hold may run this many more steps to finish its script
    clear_height: float = 0.06  # transition: lift the empty gripper this far above a cube it is around
    clear_steps: int = 10
    # After a skill (and the transition) the arm is held still until the TCP moves less than rest_speed
    # (m) a step, at most rest_steps, so the next skill starts from rest. A skill's belief finds the robot's latency from its first command's
    # onset, which a hand still moving from the last skill hides (traced: stack-three under latency80).
    rest_steps: int = 8
    rest_speed: float = 0.002
    # The cubes the controller decides on: an estimate over the last ticks of perceived positions.
    scene_estimator: SceneEstimatorConfig = field(default_factory=SceneEstimatorConfig)


@dataclass
class Decision:
    """One skill choice and what came of it."""

    index: int
    env_step: int
    skill: str
    label: str
    kind: str
    estimated_success: float
    plan_success: float
    preference: float
    probability: float
    candidates: int
    plan: list[str]
    replan: bool
    outcome: str = "pending"  # success | failure
    reason: str = ""
    steps: int = 0
    safety_cost: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class EpisodeResult:
    """Outcome of one episode of the hierarchical controller."""

    success: bool
    goal_holds: bool
    steps: int
    skills: int
    replans: int
    safety_cost: float
    decisions: list[Decision]
    stop_reason: str = ""
    frames: list[np.ndarray] = field(default_factory=list, repr=False)

    def to_dict(self) -> dict[str, Any]:
        return {
            "success": self.success, "goal_holds": self.goal_holds, "steps": self.steps, "skills": self.skills,
            "replans": self.replans, "safety_cost": self.safety_cost, "stop_reason": self.stop_reason,
            "decisions": [d.to_dict() for d in self.decisions],
        }  # fmt: skip


def load_library_skills(library: Any, kinds: str = "all") -> list[Any]:
    """Latest version of every skill in a SkillLibrary, filtered by kind.

    kinds: "all", "learned" (rl/bc only: scripted skills are refused) or "scripted".
    Raises ValueError when nothing is left (naming what was refused).
    """
    if kinds not in ("all", "learned", "scripted"):
        raise ValueError(f"kinds must be 'all', 'learned' or 'scripted', got {kinds!r}")
    entries = library.search(latest_only=True)
    if kinds == "learned":
        keep = [e for e in entries if e.kind in LEARNED_KINDS]
    elif kinds == "scripted":
        keep = [e for e in entries if e.kind == "scripted"]
    else:
        keep = list(entries)
    if not keep:
        refused = len(entries) - len(keep)
        what = {"learned": "learned (rl/bc)", "scripted": "scripted", "all": ""}[kinds]
        raise ValueError(
            f"library {library.root} has no {what + ' ' if what else ''}skills"
            + (f" ({refused} other skill(s) refused)" if refused else "")
            + ("; train some, or run without --learned-only to use scripted skills" if kinds == "learned" else "")
        )
    return [library.load(e.ref) for e in keep]


def _hold_action(env: Any, scene: SceneState) -> np.ndarray:
    """Stay put: gripper kept closed on a held cube, otherwise kept at its width (mapped by the env's robot description)."""
    u = env.unwrapped
    a = np.zeros(env.action_space.shape, dtype=np.float32)
    if any(holding(scene, o) for o in scene.objects):
        a[-1] = -1.0
    else:
        a[-1] = float(np.clip(u.robot.gripper_action(u.gripper_width()), -1.0, 1.0))
    return a


def _with_goals(scene: SceneState, domain: Domain) -> SceneState:
    return replace(scene, goals={**scene.goals, **{g: np.asarray(p, float) for g, p in domain.goals.items()}})


class HierarchicalController:
    """Plans over, runs and adapts to a set of skills (see module docstring)."""

    def __init__(
        self,
        skills: Sequence[Any],
        config: ControllerConfig | None = None,
        bandit: GradientBandit | None = None,
        seed: int | None = 0,
        action_hook: Callable[[Decision, GroundedSkill, Mapping[str, np.ndarray], np.ndarray], np.ndarray] | None = None,
    ) -> None:
        """`action_hook(decision, grounded_skill, obs, action)`, when given, sees every action a skill
        chooses and returns the action to execute (distillation records and perturbs them through it)."""
        if not skills:
            raise ValueError("the controller needs at least one skill")
        self.skills = list(skills)
        self.config = config or ControllerConfig()
        self.bandit = bandit or GradientBandit()
        self.rng = np.random.default_rng(seed)
        self.action_hook = action_hook
        self._unusable: set[str] = set()
        self.scene_estimate: SceneEstimator | None = None  # the running episode's (read by ros_bridge's goal test)

    @property
    def kinds(self) -> dict[str, int]:
        """How many skills of each kind the controller holds."""
        out: dict[str, int] = {}
        for s in self.skills:
            out[s.kind] = out.get(s.kind, 0) + 1
        return out

    # ------------------------------------------------------------------ planning
    def operators(self, scene: SceneState, domain: Domain) -> list[Operator]:
        """Every grounding of every skill on `scene`."""
        ops: list[Operator] = []
        for s in self.skills:
            try:
                ops += ground_skill(s, scene, domain, prior_success=self.config.prior_success, condition=self.config.condition)
            except SkillGroundingError as exc:
                if s.ref not in self._unusable:
                    warnings.warn(f"skill {s.ref} left out of planning: {exc}", RuntimeWarning, stacklevel=2)
                    self._unusable.add(s.ref)
        return ops

    def plans(self, scene: SceneState, goal: Sequence[Literal], domain: Domain | None = None) -> list[Plan]:
        """Ranked plans from `scene` to `goal` (NoPlanError when there is none)."""
        domain = domain or Domain.from_scene(scene, staging_points(scene))
        _check_goal(goal, domain)
        state = scene_atoms(scene, domain)
        return plan(state, goal, self.operators(scene, domain), domain, self.config.planner)

    # ------------------------------------------------------------------ episodes
    def run_episode(
        self,
        env: Any,
        goal: Sequence[Literal],
        seed: int | None = None,
        camera: str | None = None,
        width: int = 320,
        height: int = 240,
        step_callback: Callable[[Any, int, Decision], None] | None = None,
    ) -> EpisodeResult:
        """Run one episode towards `goal` (literals over the env's cubes and goal sites).

        `step_callback(env, env_step, decision)` is called after every env step taken by
        a skill (tests inject failures through it). With `camera`, frames are rendered.
        """
        cfg = self.config
        obs, info = env.reset(seed=seed)
        u = env.unwrapped
        max_steps = int(env.spec.max_episode_steps) if getattr(env, "spec", None) and env.spec.max_episode_steps else 10**9
        # What the controller decides on: its estimate from the perceived scene (noisy under a
        # condition, measured on the robot), updated once per step; the env's truth only scores.
        estimator = self.scene_estimate = SceneEstimator(cfg.scene_estimator)
        scene0 = estimator.update(u.perceived_scene_state())
        domain = Domain.from_scene(scene0, staging_points(scene0))
        _check_goal(goal, domain)
        frames = [u.render_camera(camera, width, height)] if camera else []
        ep = {"steps": 0, "cost": 0.0, "obs": obs, "info": info, "done": False, "tcp_moved": 0.0}

        def step(action: np.ndarray) -> None:
            o, _r, term, trunc, inf = env.step(action)
            ep["obs"], ep["info"] = o, inf
            ep["steps"] += 1
            ep["cost"] += float(inf.get("safety_cost", 0.0))
            ep["done"] = bool(term or trunc or ep["steps"] >= max_steps)
            before = estimator.scene.tcp_pos
            ep["tcp_moved"] = float(np.linalg.norm(estimator.update(u.perceived_scene_state()).tcp_pos - before))
            if camera:
                frames.append(u.render_camera(camera, width, height))

        decisions: list[Decision] = []
        seen: set[frozenset] = set()
        expected: frozenset | None = None
        failures = replans = 0
        after_failure = False
        stop_reason = ""
        reached = False  # the goal was seen to hold: hold still unless it stays broken for goal_broken_steps
        goal_broken = 0
        while not ep["done"]:
            scene = estimator.scene
            state = scene_atoms(scene, domain)
            if holds(state, goal):
                reached, goal_broken = True, 0
                step(_hold_action(env, scene))
                continue
            if reached:
                goal_broken += 1
                if goal_broken < cfg.goal_broken_steps:
                    step(_hold_action(env, scene))
                    continue
                reached = False
            if expected is not None and state != expected:
                seen.clear()  # disturbed (or an effect the skill did not declare): earlier states may recur legitimately
            seen.add(state)
            if stop_reason:
                step(_hold_action(env, scene))
                continue
            if failures > cfg.replan_budget:
                stop_reason = f"re-plan budget ({cfg.replan_budget}) exhausted"
                continue
            if len(decisions) >= cfg.max_decisions:
                stop_reason = f"decision limit ({cfg.max_decisions}) reached"
                continue
            try:
                plans = plan(state, goal, self.operators(scene, domain), domain, cfg.planner)
            except NoPlanError as exc:
                stop_reason = str(exc)
                continue
            firsts: dict[str, Plan] = {}
            for p in plans:  # best plan per distinct first step, in rank order
                firsts.setdefault(p.steps[0].label, p)
            cands = list(firsts.values())
            keys = [p.steps[0].skill_ref for p in cands]
            estimates = [p.success for p in cands]
            idx, pi = self.bandit.choose(keys, estimates, self.rng if cfg.explore else None)
            chosen = cands[idx]
            op = chosen.steps[0]
            if after_failure:
                replans += 1
            d = Decision(
                index=len(decisions), env_step=ep["steps"], skill=op.skill_ref, label=op.label, kind=op.kind,
                estimated_success=op.success, plan_success=chosen.success, preference=self.bandit.preference(op.skill_ref),
                probability=float(pi[idx]), candidates=len(cands), plan=chosen.labels, replan=after_failure,
            )  # fmt: skip
            decisions.append(d)
            ok = self._execute(env, op, goal, domain, d, ep, step, step_callback, max_steps, estimator)
            # A skill that reached `at_grasp(x)` left the open gripper around x on purpose (a reach before a grasp).
            around = {lit.args[0] for lit in op.effects if lit.name == "at_grasp" and not lit.negated} if ok else set()
            self._clear_gripper(env, ep, step, estimator, keep=around)
            self._come_to_rest(env, ep, step, estimator)
            after = scene_atoms(estimator.scene, domain)
            if ok and after in seen:
                ok, d.outcome, d.reason = False, "failure", "no progress: the scene is back in an earlier symbolic state"
            expected = apply_effects(state, op.effects, domain) if ok else None
            if not ok:
                seen.clear()
            if cfg.adapt:
                self.bandit.update(keys, pi, idx, 1.0 if ok else 0.0)
            if ok:
                after_failure = False
            else:
                failures += 1
                after_failure = True
        final = u.scene_state()
        goal_holds = holds(scene_atoms(final, domain), goal)
        return EpisodeResult(
            success=bool(ep["info"].get("is_success", 0.0)) if _is_env_goal(u, goal) else goal_holds,
            goal_holds=goal_holds,
            steps=ep["steps"],
            skills=len(decisions),
            replans=replans,
            safety_cost=float(ep["cost"]),
            decisions=decisions,
            stop_reason=stop_reason,
            frames=frames,
        )

    def _clear_gripper(self, env: Any, ep: dict[str, Any], step: Callable[[np.ndarray], None], estimator: SceneEstimator,
                       keep: Collection[str] = ()) -> None:
        """Transition between skills: an empty gripper still around a cube (other than those in `keep`) moves straight up.

        (The table-tennis skills all started from one pose so that switching was safe; here
        the next skill starts clear of the cube the last one let go of.)
        """
        cfg = self.config
        for _ in range(cfg.clear_steps):
            if ep["done"]:
                return
            scene = estimator.scene
            if any(holding(scene, o) for o in scene.objects):
                return
            tcp = scene.tcp_pos
            near = [p for o, p in scene.objects.items()
                    if o not in keep and np.linalg.norm(p[:2] - tcp[:2]) < 0.05 and tcp[2] < p[2] + cfg.clear_height]  # fmt: skip
            if not near:
                return
            a = _hold_action(env, scene)  # gripper as it is: opening next to a cube would shove it
            a[2] = 0.6
            step(a)

    def _come_to_rest(self, env: Any, ep: dict[str, Any], step: Callable[[np.ndarray], None], estimator: SceneEstimator) -> None:
        """Hold still until the TCP is seen at rest (or `rest_steps` have passed): the next skill starts from rest."""
        cfg = self.config
        for _ in range(cfg.rest_steps):
            if ep["done"] or ep["tcp_moved"] < cfg.rest_speed:
                return
            step(_hold_action(env, estimator.scene))

    def _budget(self, op: Operator, env: Any) -> int:
        cfg = self.config
        dt = float(getattr(env.unwrapped, "control_dt", 0.04))
        steps = math.ceil(cfg.budget_factor * max(op.duration_s, 0.0) / dt)
        return int(min(max(steps, cfg.min_budget_steps), cfg.max_budget_steps))

    def _execute(
        self,
        env: Any,
        op: Operator,
        goal: Sequence[Literal],
        domain: Domain,
        d: Decision,
        ep: dict[str, Any],
        step: Callable[[np.ndarray], None],
        callback: Callable[[Any, int, Decision], None] | None,
        max_steps: int,
        estimator: SceneEstimator,
    ) -> bool:
        """Run one grounded skill with monitoring; fills d.outcome/reason/steps/safety_cost."""
        cfg = self.config
        gs: GroundedSkill = op.payload
        start_steps, start_cost = ep["steps"], ep["cost"]

        def finish(ok: bool, reason: str) -> bool:
            d.outcome, d.reason = ("success" if ok else "failure"), reason
            d.steps, d.safety_cost = ep["steps"] - start_steps, ep["cost"] - start_cost
            return ok

        scene = estimator.scene
        if not gs.preconditions_hold(scene):
            return finish(False, "preconditions do not hold in the scene")
        try:
            gs.start(env, perceive=lambda: estimator.scene)
        except SkillLibraryError as exc:  # e.g. a skill for another action mode or robot
            return finish(False, f"cannot run here: {exc}")
        if gs.effects_hold(scene):
            return finish(True, "effects already hold")
        touched = {Literal(lit.name, lit.args, False) for lit in op.effects}
        g_scene = _with_goals(scene, domain)
        protected = [g for g in goal if Literal(g.name, g.args, False) not in touched and g.holds(g_scene)]
        held = {o for o in scene.objects if holding(scene, o)}
        # Cubes the skill lets go of by implication (it needs the one gripper for another cube); a
        # declared !holding(x) is a release at the end, so losing x on the way is still a failure.
        released = {lit.args[0] for lit in op.effects if lit.name == "holding" and lit.negated}
        may_drop = {a.args[0] for a in compile_effects(op.effects, domain).delete if a.name == "holding"} - released
        broken = confirmed = settling = 0
        scripted = op.kind == "scripted"
        budget = min(self._budget(op, env), max_steps - ep["steps"])
        for _ in range(budget):
            if gs.done and not confirmed:  # finished: the scene settles and the estimate follows before judging
                settling += 1
                if settling > cfg.settle_steps:
                    return finish(False, "skill finished without reaching its effects")
                action = _hold_action(env, scene)
            else:
                action = gs.act(ep["obs"])
                if self.action_hook is not None:
                    action = self.action_hook(d, gs, ep["obs"], action)
            step(action)
            if callback is not None:
                callback(env, ep["steps"], d)
            scene = estimator.scene
            confirmed = confirmed + 1 if gs.effects_hold(scene) else 0
            # A scripted skill finishes its own script (e.g. a pick lifts to carrying height) unless that takes long.
            if confirmed >= cfg.confirm_steps and (not scripted or gs.done or confirmed >= cfg.confirm_steps + cfg.finish_steps):
                return finish(True, "effects reached")
            g_scene = _with_goals(scene, domain)
            bad = [str(g) for g in protected if not g.holds(g_scene)]
            broken = broken + 1 if bad else 0
            if broken >= cfg.broken_steps:
                return finish(False, f"knocked over: {', '.join(bad)} no longer holds")
            for o in scene.objects:
                if holding(scene, o):
                    held.add(o)
                elif o in held and o not in may_drop and np.linalg.norm(scene.object(o) - scene.tcp_pos) > cfg.lost_grasp_distance:
                    return finish(False, f"lost grasp of {o}")
            if ep["done"]:
                return finish(False, "episode ended")
        return finish(False, f"time budget ({budget} steps) ran out")


def _check_goal(goal: Sequence[Literal], domain: Domain) -> None:
    if not goal:
        raise ValueError("empty goal")
    for lit in goal:
        objs = lit.args[:1] if lit.name == "at" else lit.args
        unknown = [o for o in objs if o not in domain.objects]
        if unknown:
            raise ValueError(f"goal literal {lit} names cube(s) {unknown} not in the scene; cubes: {list(domain.objects)}")
        if lit.name == "at" and lit.args[1] not in domain.goals:
            raise ValueError(f"goal literal {lit} names goal {lit.args[1]!r}; the scene has goals {sorted(domain.goals)}")


def _is_env_goal(env: Any, goal: Sequence[Literal]) -> bool:
    """Whether `goal` is the env's own task goal. Why: the env's `is_success` judges its own goal
    only; an episode run towards another goal (`run-task --goal`) succeeds when that goal holds
    at the step the episode ends (the one success rule)."""
    expr = getattr(env, "goal_expression", "")
    return bool(expr) and set(parse(expr)) == set(goal)


def summarize(results: Sequence[EpisodeResult]) -> dict[str, float]:
    """Success rate, mean skills per episode, mean re-plans, mean safety cost, mean steps."""
    n = len(results)
    if n == 0:
        raise ValueError("no episodes to summarise")
    return {
        "episodes": n,
        "success_rate": sum(r.success for r in results) / n,
        "goal_holds_rate": sum(r.goal_holds for r in results) / n,
        "mean_skills": float(np.mean([r.skills for r in results])),
        "mean_replans": float(np.mean([r.replans for r in results])),
        "mean_safety_cost": float(np.mean([r.safety_cost for r in results])),
        "mean_steps": float(np.mean([r.steps for r in results])),
        "skill_failures": int(sum(d.outcome == "failure" for r in results for d in r.decisions)),
    }
