"""`skillstack train CONFIG.yaml [--set key=value ...]`: train a skill from a YAML config.

Thin layer over `skill_library.train_and_publish`: `policies.training.train` gives the run
folder the resolved config, TensorBoard logs, periodic evaluations (success rate, safety
cost, per-critic returns), an evaluation video and resumable checkpoints; at the end
`skill_library.publish_run` publishes the trained policy as skill package(s) in the run
folder and the skill library (`--set export.library=DIR`, else $SKILLSTACK_LIBRARY).
"""

from __future__ import annotations

import argparse
import shlex
import sys


def register(sub: argparse._SubParsersAction) -> None:
    """Add the `train` subcommand."""
    p = sub.add_parser(
        "train",
        help="train a skill with multi-critic SAC from a YAML config",
        description="Train from a YAML config (configs/*.yaml): vectorised envs, progress bar, TensorBoard logs, "
        "periodic evaluation with success rate and video, checkpoints, --resume, seeds; exports a skill package "
        "into the library at the end (one per skill z for skill discovery).",
    )
    p.add_argument("config", metavar="CONFIG", help="YAML config file, or a run directory with --resume")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a config entry, dotted keys, YAML values (repeatable), "
                   "e.g. --set total_timesteps=20000 --set algo_kwargs.critic_layout=separate; "
                   "an unknown key or a wrong type is an error naming the allowed keys")
    p.add_argument("--seed", type=int, default=None, help="shortcut for --set seed=N")
    p.add_argument("--run-dir", default=None, help="run directory (default runs/<experiment>/seed<N>-<time>)")
    p.add_argument("--resume", action="store_true",
                   help="continue the run in --run-dir (or CONFIG given as a run directory) from its latest checkpoint")
    p.add_argument("--library", default=None, metavar="DIR",
                   help="skill library to publish into (shortcut for --set export.library=DIR; "
                   "default $SKILLSTACK_LIBRARY or ~/.skillstack/skills)")
    p.add_argument("--init", default=None, metavar="SKILL",
                   help="fine-tune: start the policy from an RL skill, NAME[@VERSION] in --library (else "
                   "$SKILLSTACK_LIBRARY or ~/.skillstack/skills) or a package directory, verified first; e.g. "
                   "--init reach --set robot=ur5e trains a Panda skill on the UR5e (same task, layout and net_arch)")
    p.add_argument("--no-export", action="store_true", help="do not export skill packages at the end")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


def init_package(skill: str, library: str | None = None) -> str:
    """The verified package directory of `skill`: a package directory, or NAME[@VERSION] in the library."""
    from pathlib import Path

    from skill_library.package import verify_package
    from skill_library.registry import SkillLibrary

    if Path(skill).is_dir():
        verify_package(skill)
        return str(Path(skill).resolve())
    lib = SkillLibrary(library)
    lib.read(skill)  # signature, digest and every file hash, as loading it would check
    return str(Path(lib.resolve(skill).path).resolve())


def run(args: argparse.Namespace) -> int:
    """Run training; prints the run directory and the final evaluation."""
    import json
    from pathlib import Path

    from policies.training import SUMMARY_FILE
    from skill_library.publish import train_and_publish

    overrides = list(args.overrides)
    if args.seed is not None:
        overrides.append(f"seed={args.seed}")
    if args.library is not None:
        overrides.append(f"export.library={args.library}")
    if args.init is not None:
        overrides.append(f"init={init_package(args.init, args.library)}")
    run_dir = args.run_dir
    if args.resume and run_dir is None and Path(args.config).is_dir():
        run_dir = args.config
    out = train_and_publish(
        args.config, overrides=overrides, run_dir=run_dir, resume=args.resume, progress=not args.no_progress,
        export=False if args.no_export else None, command=" ".join(["skillstack", *map(shlex.quote, sys.argv[1:])]),
    )
    print(f"run directory: {out}")
    summary_path = Path(out) / SUMMARY_FILE
    if summary_path.is_file():
        summary = json.loads(summary_path.read_text())
        final = summary.get("final_eval") or {}
        line = f"final: success {final.get('success_rate', float('nan')):.2f}, safety cost/episode {final.get('safety_cost', float('nan')):.3f}"
        if "coverage" in final:
            line += f", coverage {final['coverage']} cells"
        print(line + f", {summary['env_steps']} env steps, {summary['timing']['train_s'] / 60:.1f} min training")
        for skill in summary.get("skills", []):
            print(f"skill: {skill['name']}@{skill['version']} -> {skill.get('library', skill['path'])}")
    return 0
