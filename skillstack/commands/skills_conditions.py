"""`skillstack skills evaluate NAME --conditions A,B [--plot PNG]`: descriptors under named conditions.

Runs the descriptor grid under each condition (`envs.conditions`), prints success x condition,
and stores per-condition success, duration and safety cost in the manifest
(`descriptors["conditions"]`; the nominal grid stays the one the planner looks up).
"""

from __future__ import annotations

import argparse


def evaluate_conditions_command(args: argparse.Namespace, lib, grid) -> int:
    """The `--conditions` branch of `skills evaluate` (`grid` already parsed from --grid)."""
    from common.table import print_table
    from envs.conditions import load_conditions, parse_conditions
    from skill_library.robustness import condition_descriptors, plot_success, success_table, with_condition_descriptors

    if args.workers:
        raise ValueError("--conditions runs in this process; drop --workers")
    names = list(load_conditions(args.conditions_file)) if args.conditions == "all" else args.conditions
    conds = parse_conditions(names, args.conditions_file)
    entry = lib.resolve(args.ref)
    skill = lib.load(entry.ref)
    nominal, per = condition_descriptors(
        skill, conds, grid=grid, episodes_per_cell=args.episodes_per_cell, seed=args.seed,
        env_id=args.env_id, max_steps=args.max_steps,
    )  # fmt: skip
    results = {entry.ref: per}
    print_table(*success_table(results))
    if args.plot:
        print(f"plot written to {plot_success(results, args.plot)}")
    if args.dry_run:
        print("dry run: manifest unchanged")
        return 0
    lib.update_manifest(entry.ref, with_condition_descriptors(skill.manifest, nominal, per))
    print(f"per-condition descriptors stored in {entry.path / 'manifest.json'}")
    return 0
