"""Starter skills: the scripted experts' phases packaged as `scripted` skills.

They make the library usable before any training: a hierarchical controller can plan
over reach / grasp / lift / carry / place / release / push from day one. They are
kind ``scripted`` (tagged ``starter`` and ``scripted``) and run the reviewed controllers
of `skill_library.scripted`, which close the loop on the observation the env returns (after
any `envs.conditions` latency, noise or dropped messages, as on a robot); they are never
presented as learned skills.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from skill_library.errors import SkillLibraryError

__all__ = ["STARTER_SKILLS", "STARTER_VERSION", "StarterSkill", "build_starter_skills", "write_starter_packages"]

STARTER_VERSION = "0.1.0"


@dataclass(frozen=True)
class StarterSkill:
    """One starter skill: a contiguous phase group of a task's scripted expert, with its predicates."""

    name: str
    env_id: str
    task: str
    phases: tuple[str, ...]
    preconditions: tuple[str, ...]
    effects: tuple[str, ...]
    description: str


_PP = ("skillstack/PandaPickPlace-v0", "PandaPickPlace")
_ST = ("skillstack/PandaStack-v0", "PandaStack")
STARTER_SKILLS: tuple[StarterSkill, ...] = (
    StarterSkill("reach_goal", "skillstack/PandaReach-v0", "PandaReach", ("reach",), (), (),
                 "Move the gripper to the goal point."),
    StarterSkill("reach_red", *_PP, ("reach",), ("on_table(red) & in_reach(red) & gripper_open",),
                 ("at_grasp(red) & gripper_open",),
                 "Move the open gripper above and then around the red cube."),
    StarterSkill("grasp_red", *_PP, ("grasp",), ("at_grasp(red) & !holding(red)",), ("holding(red)",),
                 "Close the gripper on the red cube (the gripper must already surround it)."),
    StarterSkill("lift_red", *_PP, ("lift",), ("holding(red)",), ("holding(red) & !on_table(red)",),
                 "Lift the held red cube off the table to carrying height."),
    StarterSkill("carry_red", *_PP, ("carry",), ("holding(red)",), (),
                 "Carry the held red cube above the goal."),
    StarterSkill("place_red", *_PP, ("place",), ("holding(red)",), ("at(red)",),
                 "Lower the held red cube onto the goal."),
    StarterSkill("release_red", *_PP, ("release",), ("holding(red)",), ("gripper_open & !holding(red)",),
                 "Open the gripper and back off upwards."),
    StarterSkill("pick_red", *_PP, ("reach", "grasp", "lift"), ("in_reach(red) & !holding(red)",),
                 ("holding(red) & !on_table(red)",),
                 "Reach the red cube, grasp it and lift it to carrying height (from the table or a stack)."),
    StarterSkill("pick_place_red", *_PP, ("reach", "grasp", "lift", "carry", "place", "release"),
                 ("on_table(red) & in_reach(red)",), ("at(red)",),
                 "Pick the red cube up and place it at the goal (whole script)."),
    StarterSkill("push_red", "skillstack/PandaPush-v0", "PandaPush", ("reach", "push"),
                 ("on_table(red)",), ("at(red) & on_table(red)",),
                 "Get behind the red cube and push it along the table to the goal."),
    StarterSkill("place_red_on_blue", *_ST, ("carry", "place", "release"), ("holding(red)",),
                 ("on(red,blue) & !holding(red)",),
                 "Carry the held red cube over the blue cube, set it down on top and release."),
    StarterSkill("stack_red_on_blue", *_ST, ("reach", "grasp", "lift", "carry", "place", "release"),
                 ("on_table(red) & on_table(blue)",), ("on(red,blue) & !holding(red)",),
                 "Pick the red cube up and stack it on the blue cube (whole script)."),
)  # fmt: skip


def _by_name(names: list[str] | None) -> list[StarterSkill]:
    if names is None:
        return list(STARTER_SKILLS)
    known = {s.name: s for s in STARTER_SKILLS}
    unknown = [n for n in names if n not in known]
    if unknown:
        raise SkillLibraryError(f"unknown starter skill(s) {unknown}; valid: {sorted(known)}")
    return [known[n] for n in names]


def write_starter_packages(out_dir: str | os.PathLike[str], names: list[str] | None = None) -> list[Path]:
    """Write the starter skill packages under `out_dir/<name>/`; returns their paths."""
    import envs
    from skill_library.authoring import new_provenance, save_scripted_skill

    out = Path(out_dir)
    paths = []
    envs_by_id: dict[str, Any] = {}
    for s in _by_name(names):
        env = envs_by_id.get(s.env_id) or envs_by_id.setdefault(s.env_id, envs.make(s.env_id))
        from skill_library.authoring import task_from_env

        family = task_from_env(env).family
        save_scripted_skill(
            out / s.name,
            name=s.name,
            version=STARTER_VERSION,
            env=env,
            controller="expert_phases",
            params={"task": s.task, "phases": list(s.phases), "object": "red"} if s.task != "PandaReach" else {"task": s.task, "phases": list(s.phases)},
            description=f"{s.description} Scripted controller (expert phases {', '.join(s.phases)} of the {s.task} expert) closing the loop on what it observes; not learned.",
            tags=("starter", "scripted", family),
            preconditions=s.preconditions,
            effects=s.effects,
            provenance=new_provenance(command="skillstack skills install-starter", config={"phases": list(s.phases), "task": s.task}),
            overwrite=True,
        )
        paths.append(out / s.name)
    for env in envs_by_id.values():
        env.close()
    return paths


def build_starter_skills(
    library: Any,
    names: list[str] | None = None,
    *,
    force: bool = False,
    evaluate: bool = False,
    grid: int = 4,
    episodes_per_cell: int = 2,
    seed: int = 0,
) -> list[str]:
    """Package the starter skills and add them to `library` (a SkillLibrary or its path).

    Versions already installed are skipped unless `force`. With `evaluate`, each skill's
    descriptors are computed on a `grid` x `grid` grid before it is added. Returns the
    refs added.
    """
    from skill_library.descriptors import attach_descriptors, evaluate_skill
    from skill_library.package import rewrite_manifest
    from skill_library.registry import SkillLibrary
    from skill_library.skill import load_skill

    lib = library if isinstance(library, SkillLibrary) else SkillLibrary(library)
    todo = [s for s in _by_name(names) if force or STARTER_VERSION not in lib.versions(s.name)]
    added = []
    with tempfile.TemporaryDirectory(prefix="skillstack-starter-") as tmp:
        for path in write_starter_packages(tmp, [s.name for s in todo]):
            if evaluate:
                skill = load_skill(path)
                desc = evaluate_skill(skill, grid=grid, episodes_per_cell=episodes_per_cell, seed=seed)
                rewrite_manifest(path, attach_descriptors(skill.manifest, desc))
            added.append(lib.add(path, force=force).ref)
    return added
