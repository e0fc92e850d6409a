"""`skillstack import-bag`: convert ROS 2 bags (MCAP or sqlite3) to the demonstration HDF5 layout."""

from __future__ import annotations

import argparse


def _mapping(text: str) -> dict[str, str]:
    out = {}
    for item in text.split(","):
        if not item.strip():
            continue
        key, sep, value = item.partition("=")
        if not sep or not key.strip() or not value.strip():
            raise argparse.ArgumentTypeError(f"expected NAME=VALUE pairs separated by commas, got {item!r}")
        out[key.strip()] = value.strip()
    return out


def _topics(text: str) -> dict[str, str] | list[str]:
    items = [t.strip() for t in text.split(",") if t.strip()]
    if all("=" in t for t in items):
        return _mapping(text)
    if any("=" in t for t in items):
        raise argparse.ArgumentTypeError("--image-topics: give either all TOPIC=CAMERA pairs or plain topics")
    return items


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the `import-bag` subcommand."""
    p = subparsers.add_parser(
        "import-bag",
        help="import ROS 2 bags (joint states, object poses, images) as demonstrations",
        description=(
            "Read joint states (every topic of a robot profile, merged by name: --profile fr3; or one "
            "/joint_states topic), object poses (/objects/<name>/pose, tf frames object_<name>) and "
            "Image/CompressedImage topics from ROS 2 bags with the pure-Python rosbags library, "
            "resample onto the control ticks and write the demonstration HDF5 layout (one demo per bag; "
            "no simulator states). Nothing is written unless every bag imports."
        ),
    )
    p.add_argument("bags", nargs="+", metavar="BAG", help="rosbag2 folder, or a .mcap / .db3 file")
    p.add_argument("--out", required=True, help="output HDF5 file")
    p.add_argument("--env", default=None, help="skillstack env id the motion belongs to (default: real/panda)")
    p.add_argument(
        "--profile", default=None,
        help="robot profile (fr3, ur, panda_sim or a YAML path): joint-state topics, joint names, base frame",
    )  # fmt: skip
    p.add_argument("--rate", type=float, default=None, help="resampling rate in Hz (default: 25, the control rate)")
    p.add_argument(
        "--joint-topic", default=None,
        help="one JointState topic carrying every joint (default: the profile's topics, else /joint_states)",
    )  # fmt: skip
    p.add_argument(
        "--image-topics",
        type=_topics,
        default=None,
        help="comma-separated Image topics, optionally TOPIC=CAMERA (default: every Image topic)",
    )
    p.add_argument("--image-size", type=int, default=None, help="resize camera frames to this square size (default: as recorded)")
    p.add_argument(
        "--pose-topics",
        type=_topics,
        default=None,
        help="comma-separated PoseStamped topics, optionally TOPIC=OBJECT (default: every /objects/<name>/pose)",
    )
    p.add_argument(
        "--tf-frames", type=_mapping, default=None,
        help="FRAME=OBJECT,... tf frames that are objects (default: frames named object_<name>)",
    )  # fmt: skip
    p.add_argument(
        "--joint-map", type=_mapping, default=None, help="BAG_JOINT=PANDA_JOINT,... for other joint names (`skillstack robots` lists the Panda's)"
    )
    p.add_argument("--overwrite", action="store_true", help="replace OUT if it exists")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Import and print what was written."""
    from demos import import_bag

    result = import_bag(
        args.bags,
        args.out,
        env_id=args.env,
        profile=args.profile,
        rate=args.rate,
        joint_topic=args.joint_topic,
        image_topics=args.image_topics,
        image_size=args.image_size,
        pose_topics=args.pose_topics,
        tf_frames=args.tf_frames,
        joint_map=args.joint_map,
        overwrite=args.overwrite,
    )
    cams = ", ".join(result.cameras) or "none"
    objects = ", ".join(result.objects) or "none"
    print(f"wrote {len(result.demos)} demos ({sum(result.samples)} samples; cameras: {cams}; objects: {objects}) to {result.path}")
    return 0
