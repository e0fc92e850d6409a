"""`skillstack record`: roll a policy out in an env and write demonstrations (HDF5)."""

from __future__ import annotations

import argparse
import json


def _csv(text: str) -> list[str]:
    return [t.strip() for t in text.split(",") if t.strip()]


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the `record` subcommand."""
    p = subparsers.add_parser(
        "record",
        help="record demonstrations of a policy into a robomimic-compatible HDF5 file",
        description=(
            "Roll out a policy (scripted expert, random, or a library skill) and write each finished "
            "episode to a robomimic-compatible HDF5 file. Writes are crash-safe: an interrupted "
            "recording keeps every completed episode."
        ),
    )
    p.add_argument("--env", required=True, help="env id, e.g. skillstack/PandaPickPlace-v0")
    p.add_argument("--policy", default="expert", help="expert | random | skill:NAME (default: expert)")
    p.add_argument("--episodes", type=int, default=10, help="number of episodes (default: 10)")
    p.add_argument("--out", required=True, help="output HDF5 file")
    p.add_argument("--seed", type=int, default=0, help="episode i is reset with seed S+i (default: 0)")
    p.add_argument("--cameras", type=_csv, default=[], help="comma-separated cameras to store as obs/<cam>_image")
    p.add_argument("--image-size", type=int, default=84, help="square camera frame size in pixels (default: 84)")
    p.add_argument("--video", action="store_true", help="also write <stem>_videos/demo_N.mp4 per episode")
    p.add_argument("--video-camera", default=None, help="camera for --video (default: first of --cameras, or front)")
    p.add_argument("--max-steps", type=int, default=None, help="cut episodes after this many steps")
    p.add_argument("--env-kwargs", type=json.loads, default=None, help='JSON env kwargs, e.g. \'{"yaw": true}\'')
    p.add_argument("--library", default=None, help="skill library for skill:NAME (default: $SKILLSTACK_LIBRARY)")
    p.add_argument("--overwrite", action="store_true", help="replace OUT if it exists")
    p.add_argument(
        "--no-fsync", action="store_true", help="skip fsync per episode (still safe if killed, not on power loss)"
    )
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--perception", nargs="?", const="scene", default=None, metavar="CAMERA",
                   help="run the policy on object poses from the camera's markers (default camera: scene, 640x480) "
                        "and store both true and perceived poses (obs/object_poses_true, obs/object_poses_perceived)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Record and print a one-line summary."""
    from demos import record_demos

    result = record_demos(
        args.env,
        policy=args.policy,
        episodes=args.episodes,
        out=args.out,
        seed=args.seed,
        cameras=args.cameras,
        image_size=args.image_size,
        video=args.video,
        video_camera=args.video_camera,
        env_kwargs=args.env_kwargs,
        overwrite=args.overwrite,
        max_steps=args.max_steps,
        library=args.library,
        durable=not args.no_fsync,
        progress=not args.no_progress,
        perception={"camera": args.perception} if args.perception else False,
    )
    print(
        f"wrote {result.episodes} demos ({result.steps} steps, success {result.success_rate:.0%}) "
        f"to {result.path} in {result.seconds:.1f} s ({result.steps_per_second:.0f} steps/s)"
    )
    if result.videos:
        print(f"videos: {result.videos[0].parent}/ ({len(result.videos)} files)")
    return 0
