"""`skillstack replay`: play demonstrations back by states or actions (robomimic semantics)."""

from __future__ import annotations

import argparse
import sys


def _episodes(text: str) -> list[int]:
    try:
        return [int(t) for t in text.split(",") if t.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"--episodes takes comma-separated indices like 0,3,5, got {text!r}") from None


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the `replay` subcommand."""
    p = subparsers.add_parser(
        "replay",
        help="replay demonstrations (states or open-loop actions), check divergence, render video",
        description=(
            "states mode resets to every stored state (and renders it); actions mode replays the "
            "actions open loop from the first state and reports, per episode, the largest state "
            "divergence from the recording, warning at the first step over --threshold."
        ),
    )
    p.add_argument("file", help="demonstration HDF5 file")
    p.add_argument("--mode", choices=("states", "actions"), default="states", help="playback mode (default: states)")
    p.add_argument("--episodes", type=_episodes, default=None, help="comma-separated demo indices (default: all)")
    p.add_argument("--video", default=None, metavar="OUT.mp4", help="write the playback to this mp4")
    p.add_argument("--camera", default="front", help="camera for --video (default: front)")
    p.add_argument("--threshold", type=float, default=1e-6, help="divergence warning threshold (default: 1e-6)")
    p.add_argument("--env", default=None, help="fail unless the file holds demos for this env id")
    p.add_argument(
        "--to-ros", action="store_true", help="stream the demos to the robot through ros_bridge's safety layer (needs ROS 2)"
    )
    p.add_argument(
        "--profile", default=None,
        help="with --to-ros: robot profile (fr3, ur, panda_sim or a YAML path; default: the demo's own, else the executor's)",
    )  # fmt: skip
    p.add_argument("--params", default=None, help="with --to-ros: ROS parameter file whose skill_executor safety block applies")
    p.add_argument("--listeners", type=int, default=1, metavar="N",
                   help="with --to-ros: wait for N readers of the arm's command topic before streaming "
                        "(the controller plus a recorder that must hear it all; default 1)")  # fmt: skip
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Replay; exit 1 when any episode diverged beyond the threshold."""
    import warnings

    if args.to_ros:
        try:
            from ros_bridge.replay import stream_demo
        except ImportError as exc:
            raise ValueError(f"--to-ros needs ros_bridge.replay.stream_demo, which cannot be imported: {exc}") from None
        return int(stream_demo(args.file, episodes=args.episodes, profile=args.profile, params_file=args.params,
                               listeners=args.listeners) or 0)

    from demos import ReplayDivergenceWarning, replay

    def show(message, category, filename, lineno, file=None, line=None):
        print(f"warning: {message}", file=sys.stderr)

    with warnings.catch_warnings():
        warnings.simplefilter("always", ReplayDivergenceWarning)
        warnings.showwarning = show
        result = replay(
            args.file,
            mode=args.mode,
            episodes=args.episodes,
            video=args.video,
            camera=args.camera,
            threshold=args.threshold,
            expected_env=args.env,
        )
    label = "max state divergence" if args.mode == "actions" else "max obs mismatch"
    print(f"{'episode':<12}{'steps':>7}  {label:>22}  first step > {args.threshold:g}")
    for e in result.episodes:
        first = "-" if e.first_exceeded_step is None else str(e.first_exceeded_step)
        div = "n/a" if e.max_divergence != e.max_divergence else f"{e.max_divergence:.3g}"
        print(f"{e.name:<12}{e.steps:>7}  {div:>22}  {first}")
    print(
        f"{len(result.episodes)} episodes, {result.steps} steps in {result.seconds:.2f} s "
        f"({result.steps_per_second:.0f} steps/s); max divergence {result.max_divergence:.3g}"
    )
    if result.video is not None:
        print(f"video: {result.video} ({result.frames} frames)")
    return 0 if result.ok else 1
