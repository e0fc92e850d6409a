"""Hierarchical control over library skills (layer 4): plan, execute with monitoring, adapt, blend.

    from skill_library import SkillLibrary
    from skill_library.planning import HierarchicalController, load_library_skills, resolve_task
    import envs

    task = resolve_task("stack-three")                 # goal: on(red,blue) & on(green,red) & !holding(green)
    ctrl = HierarchicalController(load_library_skills(SkillLibrary(), kinds="learned"))
    result = ctrl.run_episode(envs.make(task.env_id), task.goal, seed=0)
    print(result.success, [(d.label, d.outcome, d.reason) for d in result.decisions])

Modules: `spec` (goal strings / YAML, named tasks), `symbolic` (atoms, effects, domain
theory), `planner` (best-first search, ranked plans, NoPlanError), `grounding` (skills on
scene cubes, views), `executor` (the controller: monitoring, re-planning, decision log),
`bandit` (gradient-bandit preferences, persisted per robot and scene), `blend`
(SkillBlender-style blending of frozen skills by a high-level SB3 policy, saved and
reloaded without pickle), `distill` (learned bc skills from the controller's
demonstrations with scripted skills), `run`
(`run_task`, what `skillstack run-task` calls).
"""

from __future__ import annotations

from skill_library._lazy import lazy_exports

_EXPORTS = {
    "TaskSpec": "skill_library.planning.spec",
    "parse_goal": "skill_library.planning.spec",
    "resolve_task": "skill_library.planning.spec",
    "task_names": "skill_library.planning.spec",
    "Domain": "skill_library.planning.symbolic",
    "scene_atoms": "skill_library.planning.symbolic",
    "apply_effects": "skill_library.planning.symbolic",
    "NoPlanError": "skill_library.planning.planner",
    "Operator": "skill_library.planning.planner",
    "Plan": "skill_library.planning.planner",
    "PlannerConfig": "skill_library.planning.planner",
    "plan": "skill_library.planning.planner",
    "GroundedSkill": "skill_library.planning.grounding",
    "Grounding": "skill_library.planning.grounding",
    "ground_skill": "skill_library.planning.grounding",
    "staging_points": "skill_library.planning.grounding",
    "ControllerConfig": "skill_library.planning.executor",
    "Decision": "skill_library.planning.executor",
    "EpisodeResult": "skill_library.planning.executor",
    "HierarchicalController": "skill_library.planning.executor",
    "load_library_skills": "skill_library.planning.executor",
    "summarize": "skill_library.planning.executor",
    "GradientBandit": "skill_library.planning.bandit",
    "PreferenceStore": "skill_library.planning.bandit",
    "BlendConfig": "skill_library.planning.blend",
    "BlendEnv": "skill_library.planning.blend",
    "BlenderPolicy": "skill_library.planning.blend",
    "load_blender": "skill_library.planning.blend",
    "save_blender": "skill_library.planning.blend",
    "DistillConfig": "skill_library.planning.distill",
    "collect_skill_demos": "skill_library.planning.distill",
    "distill_skills": "skill_library.planning.distill",
    "evaluate_blender": "skill_library.planning.blend",
    "train_blender": "skill_library.planning.blend",
    "run_task": "skill_library.planning.run",
}

__all__ = sorted(_EXPORTS)


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, globals())
