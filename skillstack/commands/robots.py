"""`skillstack robots`: list the robot descriptions (sim_assets/robots/), their env ids, and the ROS 2 driver
profiles (ros_bridge/config/profiles/) with the description each binds to."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "robots",
        help="list the robots (descriptions, limits, gripper, env ids) and the ROS 2 driver profiles",
        description="List the shipped robot descriptions: arm joints and limits, base frame, TCP, gripper "
        "(kind, joints, width range, width-to-joint map), cameras and the env ids that run each robot; then the "
        "ROS 2 driver profiles (deploy --profile NAME) with the description each one binds to. "
        "Any env takes robot=NAME (or a description YAML path).",
    )
    p.add_argument("--json", action="store_true", help="print every description in full as JSON, each with its "
                   "ROS 2 driver profiles under ros_profiles")
    p.set_defaults(func=run)


def robot_listing() -> list[dict]:
    """Every shipped robot description as a dict, with its env ids and the ROS 2 driver profiles bound to it.

    A profile binds to the description its `robot` key names; one that names a description outside
    the shipped robots (a YAML path) is listed under a robot entry of its own, so none goes missing.
    """
    import envs
    from ros_bridge.profile import load_profile, profile_names  # pure Python: imports no rclpy
    from sim_assets import load_robot, robot_names

    robots = {}
    for name in robot_names():
        info = load_robot(name).to_dict()
        info["env_ids"] = [i for i in envs.ROBOT_ENV_IDS[name] + envs.ROBOT_LONG_HORIZON_IDS[name] if "Dense" not in i]
        info["ros_profiles"] = []
        robots[name] = info
    for profile in map(load_profile, profile_names()):
        bound = profile.description.name
        if bound not in robots:
            robots[bound] = {**profile.description.to_dict(), "env_ids": [], "ros_profiles": []}
        robots[bound]["ros_profiles"].append(profile.to_dict())
    return list(robots.values())


def run(args: argparse.Namespace) -> int:
    import json

    from common.table import print_table

    robots = robot_listing()
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
            f"skillstack/{r['env_prefix']}<Task>-v0 ({len(r['env_ids'])} tasks)" if r["env_ids"] else "-",
        ]
        for r in robots
    ]
    print_table(["robot", "description", "arm joints", "gripper", "base frame", "cameras", "env ids"], rows)
    profiles = [(r["name"], p) for r in robots for p in r["ros_profiles"]]
    print()
    print_table(
        ["ROS 2 profile", "robot", "driver", "base frame", "joint states", "arm command", "gripper command"],
        [
            [
                p["name"],
                robot,
                p["driver"],
                p["base_frame"],
                ", ".join(f"{s['topic']} @{s['rate_hz']:g} Hz" for s in p["joint_states"]),
                f"{p['arm']['controller']} ({p['arm']['interface']})",
                p["gripper"]["interface"] + (f" {p['gripper']['action']}" if p["gripper"]["action"] else ""),
            ]
            for robot, p in profiles
        ],
    )
    return 0
