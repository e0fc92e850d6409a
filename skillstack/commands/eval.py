"""`skillstack eval RUN_OR_SKILL --episodes N [--video OUT] [--conditions A,B --plot PNG]`: success rate and safety cost.

RUN_OR_SKILL is a training run directory (its latest checkpoint is evaluated with the
deterministic policy), a skill package directory, or NAME[@VERSION] in the skill library.
Success follows the one rule of `skill_library.episodes` (the success test at the step the
episode ends), so a skill's figure here and in its descriptors mean the same thing.
`--conditions` prints success x condition for the same seeded episodes (`envs.conditions`).
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
    p.add_argument("--conditions", default=None, metavar="A,B,...",
                   help="evaluate under these named conditions (nominal, dynamics, latency40, latency80, obs_noise5mm, "
                   "obs_noise1cm, drops, realistic, or 'all'); prints success x condition")
    p.add_argument("--conditions-file", default=None, metavar="YAML", help="more conditions, defined in a YAML file")
    p.add_argument("--plot", default=None, metavar="OUT.png", help="with --conditions: a PNG of success per condition")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Evaluate and print the result."""
    import json
    from pathlib import Path

    from policies.training import CONFIG_FILE, eval_skills, evaluate_model, load_run_model

    if args.episodes < 1:
        raise ValueError("--episodes must be >= 1")
    if args.plot and not args.conditions:
        raise ValueError("--plot goes with --conditions")
    if args.conditions:
        return _run_conditions(args)
    target = Path(args.target)
    if target.is_dir() and (target / CONFIG_FILE).is_file():
        model, cfg, normalize = load_run_model(target)
        skills = eval_skills(cfg, args.episodes)
        res = evaluate_model(model, cfg, args.episodes, args.seed, args.video, skills, normalize)
        what = f"run {target} ({cfg.env_id}, step {model.num_timesteps})"
    else:
        from skill_library.episodes import evaluate_skill_target

        skill = _load_skill(args)
        res = evaluate_skill_target(skill, args.episodes, args.seed, env_id=args.env_id, video=args.video)
        what = f"skill {skill.ref} on {res['env_id']}"
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


def _load_skill(args: argparse.Namespace):
    from pathlib import Path

    from skill_library.skill import load_skill

    if Path(args.target).is_dir():
        return load_skill(args.target)
    from skill_library.registry import SkillLibrary

    return SkillLibrary(args.library).load(args.target)


def _run_conditions(args: argparse.Namespace) -> int:
    """Success x condition for the same seeded episodes; a table (or JSON), and a PNG with --plot."""
    import json
    from pathlib import Path

    from common.table import print_table
    from envs.conditions import load_conditions, parse_conditions
    from policies.training import CONFIG_FILE, load_run_model
    from skill_library.robustness import evaluate_conditions, plot_success, success_table

    names = list(load_conditions(args.conditions_file)) if args.conditions == "all" else args.conditions
    conds = parse_conditions(names, args.conditions_file)
    if args.video:
        raise ValueError("--video films one episode: run it without --conditions")
    target = Path(args.target)
    if target.is_dir() and (target / CONFIG_FILE).is_file():
        run = load_run_model(target)
        label = target.name
        res = evaluate_conditions(run, conds, args.episodes, args.seed)
    else:
        skill = _load_skill(args)
        label = skill.ref
        res = evaluate_conditions(skill, conds, args.episodes, args.seed, env_id=args.env_id)
    results = {label: res}
    if args.json:
        print(json.dumps(results, indent=2))
    else:
        print(f"{label}: {args.episodes} seeded episodes per condition (seeds {args.seed}..{args.seed + args.episodes - 1})")
        print_table(*success_table(results))
    if args.plot:
        print(f"plot written to {plot_success(results, args.plot)}")
    return 0
