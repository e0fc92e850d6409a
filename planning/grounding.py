"""Ground library skills on the objects of a scene, and run them there through a view.

A skill was made on one task (its manifest's env id): its preconditions and effects
name that task's cubes (``holding(red)``) and goal sites (``at(red)`` = ``at(red,goal)``),
and, if learned, its network reads that task's observation. A `Grounding` maps the
skill's cubes injectively onto the scene's cubes and each of its goal sites onto a target:

- a *free* goal site (``goal`` of Push/PickPlace/Reach) mentioned in the skill's literals
  is bound to a goal symbol of the planning problem: a goal site of the scene or a point
  the planner made (e.g. a staging point to push a cube into reach);
- a *derived* goal site (PandaStack's ``goal_red`` = one cube above blue) follows the cube
  it is defined by, so ``at(red,goal_red)`` reads ``on(red,blue)``;
- a free goal site no literal mentions is set 10 cm above the skill's first cube
  (somewhere harmless: e.g. a pick skill's carrying height follows it).

`ground_skill` enumerates the groundings and turns each into a planner `Operator` with
literals in scene terms and descriptors looked up at the current scene. `GroundedSkill`
runs one on the real env through a `view`: an object of the skill's own task class that
reads the real simulation under the renaming (cube positions, goal, a skill-shaped
observation for networks, a renamed `SceneState`), so scripted controllers and networks
run unchanged and a skill's own predicate expressions are checked exactly as authored.
"""

from __future__ import annotations

import importlib
import itertools
import math
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from envs.predicates import Literal, SceneState, parse
from planning.planner import Operator
from planning.spec import normalise_literal
from planning.symbolic import Domain, consistent

__all__ = [
    "DERIVED_GOALS",
    "GoalTarget",
    "GroundedSkill",
    "skills_obs_layout",
    "Grounding",
    "SkillGroundingError",
    "condition_estimate",
    "ground_skill",
    "skill_literals",
    "skill_task_class",
]

HOVER_HEIGHT = 0.10

# Task class name -> goal site -> (cube it is defined by, cubes up from it). Looked up along the MRO.
DERIVED_GOALS: dict[str, dict[str, tuple[str, int]]] = {
    "PandaStackEnv": {"goal_red": ("blue", 1), "goal_blue": ("blue", 0)},
    "PandaStackThreeEnv": {"goal_red": ("blue", 1), "goal_green": ("blue", 2), "goal_blue": ("blue", 0)},
}


class SkillGroundingError(ValueError):
    """A skill cannot be grounded (unknown task, unusable literals)."""


def skill_task_class(manifest: Any) -> type:
    """The task class a skill was made on, from its manifest's env id (via the Gymnasium registry)."""
    import gymnasium as gym

    import envs  # noqa: F401  (registers the ids)

    env_id = manifest.task.env_id
    try:
        entry = gym.spec(env_id).entry_point
    except gym.error.Error:
        raise SkillGroundingError(f"skill {manifest.ref}: task env {env_id!r} is not registered") from None
    if not isinstance(entry, str):
        return entry  # type: ignore[return-value]
    module, _, name = entry.partition(":")
    return getattr(importlib.import_module(module), name)


def _derived(task_cls: type) -> dict[str, tuple[str, int]]:
    for cls in task_cls.__mro__:
        if cls.__name__ in DERIVED_GOALS:
            return DERIVED_GOALS[cls.__name__]
    return {}


def skill_literals(manifest: Any) -> tuple[tuple[Literal, ...], tuple[Literal, ...]]:
    """(preconditions, effects) of a manifest as normalised literal tuples."""
    pre = tuple(normalise_literal(lit) for e in manifest.preconditions for lit in parse(e))
    eff = tuple(normalise_literal(lit) for e in manifest.effects for lit in parse(e))
    return pre, eff


@dataclass(frozen=True)
class GoalTarget:
    """Where one of the skill's goal sites points in the scene.

    kind "symbol": a goal symbol of the planning problem (`ref`);
    kind "derived": `levels` cubes above the (skill) cube `ref`;
    kind "hover": HOVER_HEIGHT above the (skill) cube `ref` where the skill starts.
    """

    kind: str
    ref: str
    levels: int = 0


@dataclass(frozen=True)
class Grounding:
    """Skill cube -> scene cube, and skill goal site -> target."""

    objects: tuple[tuple[str, str], ...]
    goals: tuple[tuple[str, GoalTarget], ...]

    @property
    def object_map(self) -> dict[str, str]:
        return dict(self.objects)

    def describe(self) -> str:
        parts = [f"{a}={b}" for a, b in self.objects if a != b]
        parts += [f"{g}={t.ref}" for g, t in self.goals if t.kind == "symbol" and g != t.ref]
        return ",".join(parts)

    def rename(self, lit: Literal) -> Literal | None:
        """The literal in scene terms (None when it has no symbolic counterpart)."""
        m = self.object_map
        if lit.name == "at":
            obj, site = lit.args
            target = dict(self.goals).get(site)
            if target is None:
                return None
            if target.kind == "symbol":
                return Literal("at", (m[obj], target.ref), lit.negated)
            if target.kind == "derived" and target.levels == 1:
                return Literal("on", (m[obj], m[target.ref]), lit.negated)
            return None
        try:
            return Literal(lit.name, tuple(m[a] for a in lit.args), lit.negated)
        except KeyError:
            return None

    def goal_positions(self, scene: SceneState, domain: Domain, hover: Mapping[str, np.ndarray] | None = None) -> dict[str, np.ndarray]:
        """Skill goal site -> position now (hover targets from `hover`, else from the current scene)."""
        m, h = self.object_map, scene.cube_half_size
        out = {}
        for site, t in self.goals:
            if t.kind == "symbol":
                out[site] = np.asarray(domain.goals[t.ref], float)
            elif t.kind == "derived":
                out[site] = scene.object(m[t.ref]) + np.array([0.0, 0.0, 2 * h * t.levels])
            elif hover and site in hover:
                out[site] = np.asarray(hover[site], float)
            else:  # above the skill's first cube (or the TCP, for a skill without cubes)
                anchor = scene.object(m[t.ref]) if t.ref else scene.tcp_pos
                out[site] = np.asarray(anchor, float) + [0.0, 0.0, HOVER_HEIGHT]
        return out

    def skill_scene(self, scene: SceneState, domain: Domain, hover: Mapping[str, np.ndarray] | None = None) -> SceneState:
        """The scene as the skill sees it: its own cube and goal names."""
        objects = {a: scene.object(b) for a, b in self.objects}
        return replace(scene, objects=objects, goals=self.goal_positions(scene, domain, hover))


def _groundings(task_cls: type, scene_objects: Sequence[str], domain: Domain, literals: Sequence[Literal]) -> list[Grounding]:
    skill_objs = tuple(getattr(task_cls, "objects", ()))
    sites = tuple(getattr(task_cls, "goal_sites", ()))
    derived = _derived(task_cls)
    mentioned = {lit.args[1] for lit in literals if lit.name == "at"}
    out = []
    for perm in itertools.permutations(scene_objects, len(skill_objs)):
        omap = tuple(zip(skill_objs, perm))
        choices: list[list[tuple[str, GoalTarget]]] = []
        for site in sites:
            if site in derived:
                obj, levels = derived[site]
                choices.append([(site, GoalTarget("derived", obj, levels))])
            elif site in mentioned:
                # A staging point made for one cube is only a target for that cube.
                subjects = {dict(omap)[lit.args[0]] for lit in literals if lit.name == "at" and lit.args[1] == site}
                syms = [g for g in domain.goals if not g.startswith("staging_") or g[len("staging_"):] in subjects]
                choices.append([(site, GoalTarget("symbol", g)) for g in syms])
            else:
                choices.append([(site, GoalTarget("hover", skill_objs[0] if skill_objs else ""))])
        for combo in itertools.product(*choices):
            out.append(Grounding(omap, tuple(combo)))
    return out


@dataclass
class GroundedSkill:
    """A library skill grounded on a scene: what the executor runs (an Operator's payload)."""

    skill: Any
    task_cls: type
    grounding: Grounding
    domain: Domain
    view: Any = field(default=None, repr=False)

    @property
    def label(self) -> str:
        g = self.grounding.describe()
        return f"{self.skill.name}({g})" if g else self.skill.name

    def skill_scene(self, scene: SceneState) -> SceneState:
        hover = self.view.hover if self.view is not None else None
        return self.grounding.skill_scene(scene, self.domain, hover)

    def preconditions_hold(self, scene: SceneState) -> bool:
        return self.skill.preconditions_hold(self.skill_scene(scene))

    def effects_hold(self, scene: SceneState) -> bool:
        return self.skill.effects_hold(self.skill_scene(scene))

    def start(self, env: Any, perceive: Callable[[], SceneState] | None = None) -> None:
        """Bind the skill to a fresh view of `env` and reset it (call before the first `act`).
        `perceive`: the scene the view reads (the controller's estimate); default the env's perceived scene."""
        self.view = make_view(env.unwrapped, self.task_cls, self.grounding, self.domain, perceive)
        self.skill.bind(self.view)
        self.skill.reset()

    def act(self, obs: Mapping[str, np.ndarray]) -> np.ndarray:
        """The skill's action for the real env's observation."""
        if self.view is None:
            raise RuntimeError(f"{self.label}: call start(env) first")
        return np.asarray(self.skill(self.view.skill_observation(obs)), dtype=np.float32)

    @property
    def done(self) -> bool:
        return bool(self.skill.done)


def skills_obs_layout(skills: Sequence[Any]) -> str:
    """The observation layout the learned skills read ("joint" without any); ValueError if they disagree."""
    layouts = {s.manifest.obs_layout for s in skills if s.kind in ("rl", "bc")}
    if len(layouts) > 1:
        raise ValueError(f"learned skills read different observation layouts {sorted(layouts)}; use one layout per run")
    return layouts.pop() if layouts else "joint"


def ground_skill(
    skill: Any,
    scene: SceneState,
    domain: Domain,
    *,
    prior_success: float = 0.5,
    default_phase_s: float = 1.2,
    default_duration_s: float = 2.0,
    condition: str = "nominal",
) -> list[Operator]:
    """Every consistent grounding of `skill` on the scene's cubes, as planner operators.

    Estimated success, duration and safety cost come from the skill's descriptors at the
    current scene (nearest grid cells); without descriptors: `prior_success`, and for a
    scripted skill `default_phase_s` per expert phase (else `default_duration_s`), no cost.
    `condition` is the one the robot is declared to run under (`envs.conditions`): other than
    nominal, the skill's figures measured under it (`descriptors["conditions"][name]`, from
    `skillstack skills evaluate --conditions`) are used instead, falling back to the nominal
    ones with a warning when the skill was never measured under it.
    A skill that declares no effects gives no operators (a planner cannot use it).
    """
    man = skill.manifest
    pre, eff = skill_literals(man)
    if not eff:
        return []
    task_cls = skill_task_class(man)
    ops = []
    for g in _groundings(task_cls, tuple(scene.objects), domain, pre + eff):
        spre = [g.rename(lit) for lit in pre]
        seff = [g.rename(lit) for lit in eff]
        if any(lit is None for lit in spre + seff):
            continue
        if not consistent(seff, domain):  # type: ignore[arg-type]
            continue
        sk_scene = g.skill_scene(scene, domain)
        success, duration, cost = prior_success, default_duration_s, 0.0
        if man.controller is not None and "phases" in man.controller.params:
            duration = default_phase_s * len(man.controller.params["phases"])
        if man.descriptors is not None:
            from skill_library.descriptors import lookup

            try:
                d = lookup(man.descriptors, sk_scene)
                success, duration, cost = d["success_rate"], d["mean_duration_s"], d["mean_safety_cost"]
            except Exception:  # descriptors over a variable this scene lacks: keep the priors
                pass
        if condition != "nominal":
            success, duration, cost = condition_estimate(skill, condition, (success, duration, cost))
        payload = GroundedSkill(skill, task_cls, g, domain)
        ops.append(
            Operator(
                label=payload.label, skill_ref=skill.ref, preconditions=tuple(spre), effects=tuple(seff),  # type: ignore[arg-type]
                success=float(success), duration_s=float(duration), safety_cost=float(cost), kind=skill.kind, payload=payload,
            )  # fmt: skip
        )
    return ops


def condition_estimate(skill: Any, condition: str, nominal: tuple[float, float, float]) -> tuple[float, float, float]:
    """(success, duration s, safety cost) of `skill` under a declared condition: its per-condition
    descriptor, or `nominal` with a RuntimeWarning (once per skill and condition) when it has none."""
    per = ((skill.manifest.descriptors or {}).get("conditions") or {}).get(condition)
    if per is None:
        key = (skill.ref, condition)
        if key not in _WARNED:
            _WARNED.add(key)
            warnings.warn(f"skill {skill.ref} has no descriptors under condition {condition!r}; planning with its nominal "
                          f"figures (measure: skillstack skills evaluate {skill.name} --conditions nominal,{condition})",
                          RuntimeWarning, stacklevel=3)
        return nominal
    return float(per["success_rate"]), float(per["mean_duration_s"]), float(per["mean_safety_cost"])


_WARNED: set[tuple[str, str]] = set()

# ----------------------------------------------------------------------------- views

_VIEW_CLASSES: dict[type, type] = {}


class _GroundedView:
    """Mixin placed before a task class: reads a real PandaEnv under a grounding (see module doc)."""

    def __init__(self, base: Any, task_cls: type, grounding: Grounding, domain: Domain,
                 perceive: Callable[[], SceneState] | None = None) -> None:
        from gymnasium import spaces

        self._base = base
        # Where the cubes are for the skill: the controller's estimate, else what the env perceives
        # (noisy under a condition; the measured scene on the robot), never the simulator's truth.
        self._estimate = perceive
        self._grounding = grounding
        self._domain = domain
        self._map = grounding.object_map
        self.task_cls = task_cls
        self.objects = tuple(getattr(task_cls, "objects", ()))
        self.goal_sites = tuple(getattr(task_cls, "goal_sites", ()))
        for attr in ("model", "data", "robot", "action_mode", "max_delta", "yaw", "control_dt", "cube_half_size", "goal_threshold",
                     "reward_type", "obs_layout", "ik_base"):
            setattr(self, attr, getattr(base, attr))
        self.action_space = base.action_space
        self.goal_offset = np.zeros(3)  # sub-goal shift added to every goal site (blending mode)
        scene = self._scene()
        self.hover = {  # fixed where the skill starts
            site: pos for site, pos in grounding.goal_positions(scene, domain).items() if dict(grounding.goals)[site].kind == "hover"
        }
        from envs.observation import robot_fields

        layout = base.observation_layout
        idx = list(range(sum(n for _, n in robot_fields(base.robot.n_arm, base.obs_layout))))  # the robot part, whatever the layout
        for o in self.objects:
            start = layout[f"{self._map[o]}_pos"].start
            idx += list(range(start, start + 16))
        self._obs_index = np.asarray(idx)
        goal_dim = 3 * len(self.goal_sites)
        box = lambda n: spaces.Box(-np.inf, np.inf, shape=(n,), dtype=np.float64)  # noqa: E731
        self.observation_space = spaces.Dict(
            {"observation": box(len(idx)), "achieved_goal": box(self._achieved_dim()), "desired_goal": box(goal_dim)}
        )

    def _achieved_dim(self) -> int:
        return int(np.asarray(self.task_cls._achieved_goal(self)).size)

    @property
    def unwrapped(self) -> Any:
        return self

    @property
    def goal(self) -> np.ndarray:  # type: ignore[override]
        pos = self._grounding.goal_positions(self._scene(), self._domain, self.hover)
        return np.concatenate([pos[s] + self.goal_offset for s in self.goal_sites]) if self.goal_sites else np.zeros(0)

    def _scene(self) -> SceneState:
        """The real scene as the skill reads it: the controller's estimate, else the env's perceived scene."""
        return self._estimate() if self._estimate is not None else self._base.perceived_scene_state()

    def object_pos(self, name: str) -> np.ndarray:
        if self._estimate is None:  # one cube, without building a scene (blending steps read it often)
            return self._base.perceived_object_pos(self._map[name])
        return np.array(self._estimate().objects[self._map[name]], dtype=np.float64)

    def object_view(self, name: str) -> np.ndarray:
        return self.object_pos(name)

    def objects_pos(self, names: tuple[str, ...]) -> np.ndarray:
        """The positions of (skill) cubes `names`, concatenated (what a task's achieved goal reads)."""
        return np.concatenate([self.object_pos(n) for n in names]) if names else np.zeros(0)

    def tcp_pos(self) -> np.ndarray:
        return self._base.tcp_pos()

    def gripper_width(self) -> float:
        return self._base.gripper_width()

    def tcp_yaw(self) -> float:
        return self._base.tcp_yaw()

    def scene_state(self) -> SceneState:
        return self._grounding.skill_scene(self._scene(), self._domain, self.hover)

    def skill_observation(self, obs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """The real env's observation rearranged into the skill's task layout."""
        vec = np.asarray(obs["observation"], dtype=np.float64)
        return {
            "observation": vec[self._obs_index],
            "achieved_goal": np.asarray(self.task_cls._achieved_goal(self), dtype=np.float64),
            "desired_goal": self.goal,
        }

    def close(self) -> None:  # the real env owns the renderers
        pass

    def __repr__(self) -> str:
        return f"<view of {type(self._base).__name__} as {self.task_cls.__name__} {self._grounding.describe() or 'identity'}>"


def make_view(base: Any, task_cls: type, grounding: Grounding, domain: Domain,
              perceive: Callable[[], SceneState] | None = None) -> Any:
    """A `task_cls` instance (without its own simulation) reading `base` under `grounding`, its cubes
    from `perceive()` (default: the env's perceived scene)."""
    cls = _VIEW_CLASSES.get(task_cls)
    if cls is None:
        cls = _VIEW_CLASSES[task_cls] = type(f"Grounded{task_cls.__name__}", (_GroundedView, task_cls), {})
    return cls(base, task_cls, grounding, domain, perceive)


def staging_points(scene: SceneState, radius: float = 0.62, min_separation: float = 0.08) -> dict[str, np.ndarray]:
    """For each cube on the table outside grasp reach, a point inside reach to push it to.

    On the ray from the base axis through the cube, at `radius`, table height; rotated in
    steps of 0.1 rad (alternating sides) while it lies within `min_separation` of another cube.
    """
    from envs.predicates import in_reach, on_table

    out = {}
    h = scene.cube_half_size
    for name, p in scene.objects.items():
        if in_reach(scene, name) or not on_table(scene, name):
            continue
        angle0 = math.atan2(p[1], p[0])
        for i in range(21):
            a = angle0 + (0.1 * ((i + 1) // 2) * (1 if i % 2 else -1))
            cand = np.array([radius * math.cos(a), radius * math.sin(a), h])
            if all(np.linalg.norm(cand[:2] - q[:2]) >= min_separation for o, q in scene.objects.items() if o != name):
                out[f"staging_{name}"] = cand
                break
    return out

