"""Hierarchical control over library skills (layer 4): plan, execute with monitoring, adapt, blend.

    from skill_library import SkillLibrary
    from planning import HierarchicalController, load_library_skills, resolve_task
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

from common.lazy import lazy_exports

_EXPORTS = {
    "TaskSpec": "planning.spec",
    "parse_goal": "planning.spec",
    "resolve_task": "planning.spec",
    "task_names": "planning.spec",
    "Domain": "planning.symbolic",
    "scene_atoms": "planning.symbolic",
    "apply_effects": "planning.symbolic",
    "NoPlanError": "planning.planner",
    "Operator": "planning.planner",
    "Plan": "planning.planner",
    "PlannerConfig": "planning.planner",
    "plan": "planning.planner",
    "GroundedSkill": "planning.grounding",
    "Grounding": "planning.grounding",
    "ground_skill": "planning.grounding",
    "staging_points": "planning.grounding",
    "ControllerConfig": "planning.executor",
    "Decision": "planning.executor",
    "EpisodeResult": "planning.executor",
    "HierarchicalController": "planning.executor",
    "load_library_skills": "planning.executor",
    "summarize": "planning.executor",
    "GradientBandit": "planning.bandit",
    "PreferenceStore": "planning.bandit",
    "BlendConfig": "planning.blend",
    "BlendEnv": "planning.blend",
    "BlenderPolicy": "planning.blend",
    "load_blender": "planning.blend",
    "save_blender": "planning.blend",
    "DistillConfig": "planning.distill",
    "collect_skill_demos": "planning.distill",
    "distill_skills": "planning.distill",
    "evaluate_blender": "planning.blend",
    "train_blender": "planning.blend",
    "run_task": "planning.run",
}

__all__ = sorted(_EXPORTS)


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, globals())
