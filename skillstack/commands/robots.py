"""`skillstack robots`: list the robot descriptions (sim_assets/robots/) and their env ids."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "robots",
        help="list the robots (descriptions, limits, gripper, env ids)",
        description="List the shipped robot descriptions: arm joints and limits, base frame, TCP, gripper "
        "(kind, joints, width range, width-to-joint map), cameras and the env ids that run each robot. "
        "Any env takes robot=NAME (or a description YAML path).",
    )
    p.add_argument("--json", action="store_true", help="print every description in full as JSON")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import json

    import envs
    from common.table import print_table
    from sim_assets import load_robot, robot_names

    robots = []
    for name in robot_names():
        info = load_robot(name).to_dict()
        info["env_ids"] = [i for i in envs.ROBOT_ENV_IDS[name] + envs.ROBOT_LONG_HORIZON_IDS[name] if "Dense" not in i]
        robots.append(info)
    if args.json:
        print(json.dumps(robots, indent=2))
        return 0
    rows = [
        [
            r["name"],
            r["title"],
            f"{len(r['arm']['joints'])}: {r['arm']['joints'][0]} .. {r['arm']['joints'][-1]}",
            f"{r['gripper']['kind']} {r['gripper']['width_range'][0]:g}-{r['gripper']['width_range'][1]:g} m",
            r["base_frame"],
            ",".join(c["name"] for c in r["cameras"]) or "-",
            f"skillstack/{r['env_prefix']}<Task>-v0 ({len(r['env_ids'])} tasks)",
        ]
        for r in robots
    ]
    print_table(["robot", "description", "arm joints", "gripper", "base frame", "cameras", "env ids"], rows)
    return 0
