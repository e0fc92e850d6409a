"""Segments to skills: one behaviour-cloning policy per (skill type, task), added to the library as `bc` skills.

For every skill type found by clustering (`Segmenter.skill_types`) and every task whose
training episodes contain enough segments of that type, a BC policy (`policies.bc`) is
fitted on the low-dimensional observations (`observation`, `desired_goal`) and actions of
those segments' steps. Consecutive segments of one type in an episode are one execution of
that skill (`merge_runs`): the detector often splits a phase (reach: above the cube, then
down) into two segments that clustering then puts in the same type, and a half-run ends in
no common predicate state. Preconditions and effects are read off the data: a predicate
literal (holding, at_grasp, on, at, gripper_open, on_table over the scene's cubes) is a
precondition when it holds at >= `agree` of the runs' first states, and an effect when it
holds (or fails) at >= `agree` of their end states and the opposite at >= `agree` of their
first states. A run [s, e) ends in the state its last action leads to: `states[e]` (the
state recorded before the next run's first action; the last recorded state for a run that
ends the episode). A precondition implied by another (holding(x) implies at_grasp(x)) is
left out, as in the hand-written skills: the planner treats at_grasp as volatile (a skill
that does not declare it drops it), so a redundant at_grasp(x) next to holding(x) would make
a skill unusable after a grasp. A skill with effects is evaluated with `evaluate_skill`
(descriptors: success = effects hold, per grid cell; the task's expert sets up the
preconditions); one without gets no success figure (the env's task success would not
measure it). Then it is added to the library.

Chaining (`chain=True`): a type whose runs end in no common state has no effect, so the
planner cannot use it: PickPlace's "above the cube" reach, or a vertical move with the
gripper open that is a descent onto the cube in one episode and the release back-off in
another. Such a run is joined with the run that follows it (repeatedly, while the last type
still has no effect), and the chain (e.g. types 1-6-4: reach, descend, grasp) becomes one
skill whose effects are read off the chain's end, as for a type. Types with effects stay
skills of their own.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from segmentation.dataset import SegEpisode

__all__ = ["SegmentSkill", "build_segment_skills", "chain_label", "chain_runs", "group_by_effect", "infer_predicates", "merge_runs"]

OBS_KEYS = ("observation", "desired_goal")

# A precondition literal -> the literals it implies by the predicates' definitions (envs.predicates:
# holding = at_grasp and the gripper closed on the cube); implied ones are left out of preconditions.
IMPLIES = {"holding": ("at_grasp",)}
# Predicates a run may change and set back that are still its effects (see `infer_predicates`'s `flipped`).
RESTORED = ("holding",)


@dataclass
class SegmentSkill:
    """One skill made from segments: its library ref, type, task, data size, predicates and own success.

    `segments` counts the examples it was fitted on: runs of one type when built with `merge`.
    `chain` lists the skill types it runs through, `(skill_type,)` unless chained.
    """

    ref: str
    skill_type: int
    env_id: str
    segments: int
    steps: int
    preconditions: tuple[str, ...]
    effects: tuple[str, ...]
    success_rate: float | None
    majority_phase: str | None
    bc_mse: float
    chain: tuple[int, ...] = ()

    @property
    def type_label(self) -> str:
        """The skill type, or the chained types joined by "-" (as in the skill's name)."""
        return chain_label(self.chain or (self.skill_type,))


def chain_label(types: Sequence[int]) -> str:
    """Name of a chain of skill types: "1-6-4"; a single type is just its number."""
    return "-".join(str(int(t)) for t in types)


def _literals(scene: Any) -> dict[str, bool]:
    from envs.predicates import PREDICATES

    objs = sorted(scene.objects)
    out = {"gripper_open": PREDICATES["gripper_open"](scene)}
    for o in objs:
        for name in ("holding", "at_grasp", "on_table"):
            out[f"{name}({o})"] = PREDICATES[name](scene, o)
        if "goal" in scene.goals:
            out[f"at({o})"] = PREDICATES["at"](scene, o)
        for b in objs:
            if b != o:
                out[f"on({o},{b})"] = PREDICATES["on"](scene, o, b)
    return out


def infer_predicates(
    starts: Sequence[dict[str, bool]],
    ends: Sequence[dict[str, bool]],
    agree: float = 0.9,
    *,
    flipped: Sequence[dict[str, bool]] | None = None,
    moved_only: bool = False,
) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(preconditions, effects) as literal strings from predicate values at segment starts and ends.

    Preconditions list the literals that agree at the starts (negated ones only for holding/on;
    none implied by another precondition, see `IMPLIES`); effects, the literals that agree at the
    ends with the opposite value at the starts. `flipped` (per run: literal -> whether it took the
    other value at some step inside the run) adds the `RESTORED` literals a run changes and sets back
    (a stack run grasps the cube and lets go of it): `!holding(red)` then is an effect, the release
    at the end, so the planner does not take the grasp on the way for a broken goal. `moved_only`
    keeps only the preconditions about the cubes the effects name first (the cube it moves) and the
    gripper: the other cubes' layout where the runs started (blue on the table) is the demonstrations'
    scene, not what the skill needs, and would keep it from grounding on green over a tower.
    """
    if not 0.5 <= agree <= 1.0:
        raise ValueError(f"agree must be in [0.5, 1], got {agree}")

    def consistent(rows: Sequence[dict[str, bool]]) -> dict[str, bool]:
        if not rows:
            return {}
        out = {}
        for k in rows[0]:
            frac = float(np.mean([r[k] for r in rows]))
            if frac >= agree:
                out[k] = True
            elif frac <= 1 - agree:
                out[k] = False
        return out

    pre, post = consistent(starts), consistent(ends)
    lit = lambda k, v: k if v else f"!{k}"  # noqa: E731
    implied = {f"{q}{k[k.index('('):]}" for k, v in pre.items() if v and k.split("(")[0] in IMPLIES
               for q in IMPLIES[k.split("(")[0]]}  # fmt: skip
    pre_l = tuple(lit(k, v) for k, v in sorted(pre.items())
                  if (v or k.startswith(("holding", "on("))) and not (v and k in implied))  # fmt: skip
    changed = {k for k, v in post.items() if pre.get(k) != v and k in pre}
    if flipped:
        changed |= {k for k, v in post.items() if pre.get(k) == v and k.split("(")[0] in RESTORED
                    and float(np.mean([bool(f.get(k, False)) for f in flipped])) >= agree}  # fmt: skip
    eff_l = tuple(lit(k, v) for k, v in sorted(post.items()) if k in changed)
    if moved_only and eff_l:
        moved = {_first_arg(e) for e in eff_l} - {None}
        pre_l = tuple(p for p in pre_l if _first_arg(p) is None or _first_arg(p) in moved)
    return pre_l, eff_l


def _first_arg(literal: str) -> str | None:
    """The first object a literal string names ("!on(red,blue)" -> "red"); None for gripper_open."""
    if "(" not in literal:
        return None
    return literal[literal.index("(") + 1 :].rstrip(")").split(",")[0]


def merge_runs(segments: Sequence[tuple[int, int, int]]) -> list[tuple[int, int, int]]:
    """(start, end, type) segments with each run of consecutive same-type segments joined into one."""
    out: list[tuple[int, int, int]] = []
    for s, e, k in segments:
        if out and out[-1][2] == k and out[-1][1] == s:
            out[-1] = (out[-1][0], e, k)
        else:
            out.append((s, e, k))
    return out


def chain_runs(runs: Sequence[tuple[int, int, int]], open_types: set[int]) -> list[tuple[int, int, tuple[int, ...]]]:
    """(start, end, types) runs: a run whose type is in `open_types` (types with no effect) is joined
    with the runs after it until a run whose type is not open ends the chain (or the episode does)."""
    out: list[tuple[int, int, tuple[int, ...]]] = []
    i = 0
    while i < len(runs):
        s, e, k = runs[i]
        chain = (int(k),)
        while chain[-1] in open_types and i + 1 < len(runs):
            i += 1
            e = runs[i][1]
            chain += (int(runs[i][2]),)
        out.append((s, e, chain))
        i += 1
    return out


def group_by_effect(
    groups: dict[tuple[tuple[int, ...], str], list[Any]], run_effects: Callable[[Any, int, int], tuple[str, ...]]
) -> dict[tuple[tuple[int, ...], str], list[Any]]:
    """Runs regrouped by (own effects, task): chains of different types that reach the same effects are one skill.

    The detector cuts one behaviour at slightly different places in different episodes, so chaining
    yields several type sequences (1-0-1, 1-0-2-1, ...) for one pick-and-stack, each with too few runs
    to fit. Each run's own effects (`run_effects(ep, start, end)`) are its signature; a group is keyed
    by the type sequence most of its runs went through (ties: the first seen). Runs with no effect of
    their own keep their type-sequence group.
    """
    by_sig: dict[tuple[tuple[str, ...], str], list[tuple[tuple[int, ...], Any]]] = {}
    out: dict[tuple[tuple[int, ...], str], list[Any]] = {}
    for (types, env_id), runs in groups.items():
        for ep, s, e in runs:
            sig = tuple(run_effects(ep, s, e))
            if sig:
                by_sig.setdefault((sig, env_id), []).append((types, (ep, s, e)))
            else:
                out.setdefault((types, env_id), []).append((ep, s, e))
    for (_, env_id), members in by_sig.items():
        labels = [t for t, _ in members]
        key = (max(dict.fromkeys(labels), key=labels.count), env_id)
        while key in out:  # another effect's runs went through the same types mostly: keep both apart
            key = (key[0] + (-1,), env_id)
        out[key] = [r for _, r in members]
    return out


def build_segment_skills(
    segmenter: Any,
    episodes: Sequence[SegEpisode],
    library: Any,
    *,
    min_segments: int = 10,
    version: str = "0.1.0",
    evaluate: bool = True,
    grid: int = 2,
    episodes_per_cell: int = 2,
    bc_epochs: int = 150,
    agree: float = 0.9,
    merge: bool = True,
    chain: bool = True,
    seed: int = 0,
    log: Callable[[str], None] | None = None,
    bc_batch: int = 64,
    augment_copies: int = 0,
    augment_sigma: float = 0.01,
    ignore_joints: bool = True,
    restored: bool = True,
    by_effect: bool = True,
    moved_only: bool = True,
) -> list[SegmentSkill]:
    """Segment `episodes` (with recorded states and low-dim observations), fit one BC skill per (type, task), add to `library`.

    `library` is a `SkillLibrary` or its path. Episodes without simulator states are skipped
    (predicates need them). `agree` is the fraction of runs a predicate must agree on to become a
    precondition or effect. `merge` joins consecutive segments of one type into one run (`merge_runs`;
    False: every segment is its own example). `chain` joins a run of a type without effects to the
    runs after it (`chain_runs`, see the module docstring). `bc_batch` is the BC minibatch (small: a
    type's runs are a few thousand steps). `augment_copies` displaced copies of every step with
    corrective labels (`segmentation.skill_data.corrective_copies`, TCP shifted by N(0, `augment_sigma`)
    m) are meant to teach the skill to return to its runs; off by default: 4 copies at 1-2 cm took
    stack-two from 70 % to 20 % (docs/segmentation.md, "Discovered skills that compose"); `ignore_joints` fits and runs it without the arm's joint
    angles (`absolute_inputs_off`). `restored` declares a cube a run grasps and lets go of as released
    (`!holding(x)`, see `infer_predicates`). `by_effect` pools the runs (chained or not) that reach
    the same effects whatever types they went through (`group_by_effect`); `moved_only` keeps only
    preconditions about the cube a skill moves (`infer_predicates`). Returns what was built; phase names, when recorded, only label the report.
    """
    import envs
    from policies.bc import train_bc
    from segmentation.skill_data import absolute_inputs_off, corrective_copies, ignored_columns, silence_columns

    from skill_library.authoring import new_provenance, observation_spec_from_flat_stats, task_from_env
    from skill_library.errors import SkillSetupError
    from skill_library.publish import DescriptorSettings, publish_skill
    from skill_library.registry import SkillLibrary

    if segmenter.skill_types is None:
        raise ValueError("the segmenter has no skill types (fit_segmenter clusters them)")
    lib = library if isinstance(library, SkillLibrary) else SkillLibrary(library)
    episode_runs: list[tuple[SegEpisode, list[tuple[int, int, int]]]] = []
    for ep in episodes:
        if ep.states is None or ep.env_id is None or any(k not in ep.low_dim for k in OBS_KEYS):
            continue
        found = segmenter.segment(ep).segments
        episode_runs.append((ep, merge_runs(found) if merge else list(found)))
    env_cache: dict[str, Any] = {}
    literal_cache: dict[tuple[int, int], dict[str, bool]] = {}

    def env_for(env_id: str) -> Any:
        if env_id not in env_cache:
            env_cache[env_id] = envs.make(env_id)
            env_cache[env_id].reset(seed=seed)
        return env_cache[env_id]

    def literals_at(ep: SegEpisode, t: int) -> dict[str, bool]:
        """Predicate literals in recorded state t of `ep` (a run's end [s, e) is state e: after its last action)."""
        t = min(t, ep.length - 1)
        key = (id(ep), t)
        if key not in literal_cache:
            u = env_for(str(ep.env_id)).unwrapped
            u.set_state(ep.states[t])
            literal_cache[key] = _literals(u.scene_state())
        return literal_cache[key]

    def group(open_types: dict[str, set[int]]) -> dict[tuple[tuple[int, ...], str], list[tuple[SegEpisode, int, int]]]:
        out: dict[tuple[tuple[int, ...], str], list[tuple[SegEpisode, int, int]]] = {}
        for ep, runs in episode_runs:
            for s, e, types in chain_runs(runs, open_types.get(ep.env_id, set())):
                if e - s >= 2:
                    out.setdefault((types, ep.env_id), []).append((ep, s, e))
        return out

    def flipped_in(ep: SegEpisode, s: int, e: int) -> dict[str, bool]:
        """Per literal: whether it took the other value than at the run's start at some step inside it (every 2nd step)."""
        first = literals_at(ep, s)
        out = dict.fromkeys(first, False)
        for t in range(s + 1, e, 2):
            for k, v in literals_at(ep, t).items():
                out[k] = out[k] or v != first[k]
        return out

    def predicates(segs: Sequence[tuple[SegEpisode, int, int]]) -> tuple[tuple[str, ...], tuple[str, ...]]:
        return infer_predicates([literals_at(ep, s) for ep, s, _ in segs], [literals_at(ep, e) for ep, _, e in segs], agree,
                                flipped=[flipped_in(ep, s, e) for ep, s, e in segs] if restored else None,
                                moved_only=moved_only)  # fmt: skip

    groups = group({})
    if chain:  # types (with enough runs) whose runs agree on no effect are joined to what follows
        open_types: dict[str, set[int]] = {}
        for (types, env_id), segs in groups.items():
            if len(segs) >= min_segments and not predicates(segs)[1]:
                open_types.setdefault(env_id, set()).add(types[0])
        groups = group(open_types)
    if by_effect:
        groups = group_by_effect(groups, lambda ep, s, e: predicates([(ep, s, e)])[1])
    built: list[SegmentSkill] = []
    with tempfile.TemporaryDirectory(prefix="skillstack-sbd-skills-") as tmp:
        for (types, env_id), segs in sorted(groups.items()):
            if len(segs) < min_segments:
                continue
            env = env_for(env_id)
            k = types[0]
            xs, ys, phase_votes = [], [], []
            for ep, s, e in segs:
                xs.append(np.concatenate([ep.low_dim[key][s:e] for key in OBS_KEYS], 1))
                ys.append(ep.actions[s:e])
                if ep.phases is not None and ep.phase_names:
                    phase_votes += [ep.phase_names[int(p)] for p in ep.phases[s:e]]
            pre, eff = predicates(segs)
            x, y = np.concatenate(xs), np.concatenate(ys)
            layout = env.unwrapped.obs_builder.layout
            x, y = corrective_copies(x, y, layout, copies=augment_copies, sigma=augment_sigma,
                                     max_delta=env.unwrapped.max_delta, seed=seed)  # fmt: skip
            off = ignored_columns(layout) if ignore_joints else np.zeros(0, dtype=int)
            policy = train_bc(absolute_inputs_off(x, off), y, epochs=bc_epochs, batch=bc_batch, seed=seed,
                              action_low=env.action_space.low, action_high=env.action_space.high)  # fmt: skip
            policy.obs_mean, policy.obs_std = silence_columns(policy.obs_mean, policy.obs_std, off)
            family = task_from_env(env).family
            label = chain_label(types)
            name = f"sbd_{family}_type{label}"
            lens = [e - s for _, s, e in segs]
            majority = max(set(phase_votes), key=phase_votes.count) if phase_votes else None
            path = Path(tmp) / name
            settings = None  # a skill with no consistent effect has no success test of its own
            if evaluate and eff:
                max_steps = int(max(10, 2 * np.percentile(lens, 90)))
                # the expert sets up the preconditions: as far into the task as the runs start, with room to spare
                setup_steps = int(4 * max_steps + 2 * max(s for _, s, _ in segs))
                settings = DescriptorSettings(grid, episodes_per_cell, seed, max_steps=max_steps, setup_steps=setup_steps)
            try:
                published = publish_skill(
                    path, name=name, version=version, kind="bc", env=env, arch=policy.arch, state_dict=policy.state_dict,
                    observation=observation_spec_from_flat_stats(env, OBS_KEYS, policy.obs_mean, policy.obs_std),
                    description=(f"Skill type{'s' if len(types) > 1 else ''} {label} discovered by skill boundary detection in "
                                 f"{env_id} demonstrations ({len(segs)} {'chained runs' if len(types) > 1 else 'segments'}, "
                                 f"median {int(np.median(lens))} steps); behaviour cloning."),
                    tags=("sbd", "bc", family), preconditions=pre, effects=eff,
                    provenance=new_provenance(command="segmentation.build_segment_skills",
                                              config={"skill_type": k, "chain": list(types), "segments": len(segs), "bc_epochs": bc_epochs,
                                                      "bc_batch": bc_batch, "augment_copies": augment_copies,
                                                      "augment_sigma": augment_sigma, "ignore_joints": ignore_joints, "restored": restored, "by_effect": by_effect, "moved_only": moved_only,
                                                      "agree": agree, "merge_runs": merge, "chain_runs": chain}, seed=seed),
                    descriptors=settings, library=lib,
                )  # fmt: skip
            except SkillSetupError as exc:
                # not added: the planner would choose a skill with effects but no measured success blind
                if log:
                    log(f"{name}: not added, its preconditions {list(pre)} could not be set up to evaluate it ({exc})")
                continue
            ref, success = published.ref, published.success_rate
            built.append(SegmentSkill(ref, int(k), env_id, len(segs), int(sum(lens)), pre, eff, success, majority,
                                      float(policy.train_loss[-1]), types))
            if log:
                log(f"{ref}: {len(segs)} segments, pre {list(pre)}, effects {list(eff)}, success {success}")
    for env in env_cache.values():
        env.close()
    return built
