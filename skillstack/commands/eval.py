"""`skillstack eval RUN_OR_SKILL --episodes N [--video OUT]`: success rate and safety cost.

RUN_OR_SKILL is a training run directory (its latest checkpoint is evaluated with the
deterministic policy), a skill package directory, or NAME[@VERSION] in the skill library.
"""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    """Add the `eval` subcommand."""
    p = sub.add_parser(
        "eval",
        help="evaluate a training run or a skill: success rate and safety cost",
        description="Roll out a run's policy (latest checkpoint) or a skill (package directory or library "
        "NAME[@VERSION]) deterministically; report success rate, mean safety cost per episode and per-term returns.",
    )
    p.add_argument("target", metavar="RUN_OR_SKILL", help="run directory, skill package directory, or NAME[@VERSION]")
    p.add_argument("--episodes", type=int, default=20, help="episodes (default 20)")
    p.add_argument("--seed", type=int, default=100_000, help="first episode seed (default 100000)")
    p.add_argument("--video", default=None, metavar="OUT.mp4", help="record the first episode to this mp4")
    p.add_argument("--env-id", default=None, help="env id for a skill (default: the skill's task env)")
    p.add_argument("--library", default=None, help="skill library (default: $SKILLSTACK_LIBRARY or ~/.skillstack/skills)")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Evaluate and print the result."""
    import json
    from pathlib import Path

    from policies.training import CONFIG_FILE, eval_skills, evaluate_model, load_run_model, run_episodes

    if args.episodes < 1:
        raise ValueError("--episodes must be >= 1")
    target = Path(args.target)
    if target.is_dir() and (target / CONFIG_FILE).is_file():
        model, cfg, normalize = load_run_model(target)
        skills = eval_skills(cfg, args.episodes)
        res = evaluate_model(model, cfg, args.episodes, args.seed, args.video, skills, normalize)
        what = f"run {target} ({cfg.env_id}, step {model.num_timesteps})"
    else:
        import envs
        from skill_library.skill import load_skill

        if target.is_dir():
            skill = load_skill(target)
        else:
            from skill_library.registry import SkillLibrary

            skill = SkillLibrary(args.library).load(args.target)
        env_id = args.env_id or skill.manifest.task.env_id
        kwargs = dict(skill.manifest.task.env_kwargs)
        if args.video:
            kwargs.update(render_mode="rgb_array", render_width=320, render_height=240)
        env = envs.make(env_id, **kwargs)
        skill.bind(env)

        def policy(obs):
            return skill(obs, deterministic=True)

        try:
            res = run_episodes(policy, env, args.episodes, args.seed, args.video)
        finally:
            env.close()
        what = f"skill {skill.ref} on {env_id}"
    if args.json:
        print(json.dumps(res, indent=2))
        return 0
    print(f"{what}: {res['episodes']} episodes")
    print(f"  success rate          {res['success_rate']:.3f}")
    print(f"  safety cost / episode {res['safety_cost']:.3f}")
    for k, v in res.get("returns", {}).items():
        print(f"  return[{k}]{'':<{max(1, 12 - len(k))}}{v:.3f}")
    if "coverage" in res:
        print(f"  coverage (2 cm cells) {res['coverage']}")
    if res.get("video"):
        print(f"  video                 {res['video']}")
    return 0
