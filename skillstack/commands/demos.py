"""`skillstack demos export|import`: demonstrations to and from other dataset formats (LeRobotDataset v3.0).

    skillstack demos export FILE.hdf5 --format lerobot OUT/ [--annotate phases|gripper|segmenter[:DIR]|none]
    skillstack demos import DIR --format lerobot OUT.hdf5 [--env ID]

A thin layer over `demos.lerobot.export_lerobot` / `import_lerobot`; `--annotate` chooses where
the per-frame subtask labels come from (the segmentation layer's detectors, or the expert's
phase labels stored in the file).
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

FORMATS = ("lerobot",)
GRIPPER_NAMES = ("gripper closed", "gripper open")  # the action's last dim: -1 closed .. +1 open


def _ints(text: str) -> list[int]:
    try:
        return [int(t) for t in text.split(",") if t.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}") from None


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add `demos` with its `export` and `import` subcommands."""
    p = subparsers.add_parser(
        "demos",
        help="export/import demonstrations as LeRobotDataset v3.0 folders (parquet + mp4)",
        description="Convert demonstration HDF5 files to and from other dataset formats (LeRobotDataset v3.0).",
    )
    sub = p.add_subparsers(dest="demos_command", metavar="SUBCOMMAND")
    e = sub.add_parser(
        "export",
        help="write demos as a LeRobotDataset v3.0 folder",
        description=(
            "Write a LeRobotDataset v3.0 folder (meta/info.json, stats, tasks, subtasks, episodes; parquet data "
            "chunks; one H.264 mp4 stream per camera) from a demonstration HDF5 file. Skill boundaries become the "
            "per-frame subtask_index column and meta/subtasks.parquet."
        ),
    )
    e.add_argument("input", metavar="FILE.hdf5", help="demonstration file")
    e.add_argument("out", metavar="OUT", help="dataset folder to write")
    e.add_argument("--format", choices=FORMATS, default="lerobot", help="output format (default: lerobot)")
    e.add_argument(
        "--annotate",
        default="auto",
        help="subtask labels: 'phases' (the expert's phase labels in the file), 'gripper' (segmentation's "
             "gripper-event detector: no model needed), 'segmenter[:DIR]' (a trained segmenter; default folder "
             "$SKILLSTACK_SEGMENTER or ~/.skillstack/segmenter), 'none', or 'auto' (default: phases when the file "
             "has them, else none)",
    )
    e.add_argument("--task", default=None, help="natural-language task of every episode (default: the env id)")
    e.add_argument("--episodes", type=_ints, default=None, help="only these demo indices, e.g. 0,3,5")
    e.add_argument("--crf", type=int, default=10, help="constant quality: 0 (best) .. 51 for H.264, .. 63 for AV1 (default: 10)")
    e.add_argument("--codec", choices=("libx264", "libsvtav1"), default="libx264",
                   help="video encoder: libx264 (H.264, default) or libsvtav1 (AV1, LeRobot's default: smaller files)")
    e.add_argument("--pix-fmt", choices=("yuv420p", "yuv444p"), default="yuv420p",
                   help="video pixel format: yuv420p (default, LeRobot's and every player's) or yuv444p (no chroma "
                        "subsampling: about 8 dB closer to the frames at the same size, not playable in browsers)")
    e.add_argument("--robot-type", default=None, help="info.json robot_type (default: none)")
    e.add_argument("--overwrite", action="store_true", help="replace OUT if it exists")
    e.set_defaults(func=run_export)
    i = sub.add_parser(
        "import",
        help="read a local LeRobotDataset v3.0 folder into a demonstration HDF5",
        description=(
            "Read a local LeRobotDataset v3.0 folder (no network) into the demonstration HDF5 layout with camera "
            "frames: observation.state (+ environment_state) -> obs/observation, videos -> obs/<cam>_image, "
            "subtask_index -> phases. Our own exports come back exactly (frames within the codec's loss)."
        ),
    )
    i.add_argument("input", metavar="DIR", help="dataset folder (with meta/info.json)")
    i.add_argument("out", metavar="OUT.hdf5", help="demonstration file to write")
    i.add_argument("--format", choices=FORMATS, default="lerobot", help="input format (default: lerobot)")
    i.add_argument("--env", default=None, help="env id to record in the file (default: the export's, else lerobot/<robot_type>)")
    i.add_argument("--episodes", type=_ints, default=None, help="only these episode indices")
    i.add_argument("--overwrite", action="store_true", help="replace OUT.hdf5 if it exists")
    i.set_defaults(func=run_import)
    p.set_defaults(func=lambda args: (p.print_help(), 2)[1])


def subtask_spans(path: str | Path, annotate: str, episodes: list[int] | None = None) -> tuple[dict[str, Any], list[str] | None]:
    """Subtask spans per demo name for `--annotate` (see its help), and the names' order when fixed."""
    from demos import DemoFile
    from demos.lerobot import phase_subtasks

    how, _, arg = annotate.partition(":")
    if how == "none":
        return {}, None
    if how in ("auto", "phases"):
        spans, names = phase_subtasks(path)
        if how == "phases" and not spans:
            raise ValueError(f"{path}: has no phase labels; use --annotate gripper or segmenter")
        return spans, names
    with DemoFile(path) as f:
        demo_names = f.demo_names if episodes is None else [f.demo_name(i) for i in episodes]
    if how == "gripper":
        from segmentation import gripper_event_boundaries

        spans = {}
        with DemoFile(path) as f:
            for name in demo_names:
                actions = f.episode(name, images=False).actions
                cuts = [0, *gripper_event_boundaries(actions), len(actions)]
                spans[name] = [(a, b, GRIPPER_NAMES[int(actions[a, -1] > 0)]) for a, b in zip(cuts[:-1], cuts[1:])]
        return spans, list(GRIPPER_NAMES)
    if how == "segmenter":
        from segmentation import Segmenter, load_hdf5_episodes
        from segmentation.api import default_model_dir

        seg = Segmenter.load(arg or default_model_dir())
        indices = [int(n.removeprefix("demo_")) for n in demo_names]
        eps = load_hdf5_episodes(path, seg.cameras, seg.image_size, indices, proprio=seg.uses_proprio)
        spans = {}
        for name, ep in zip(demo_names, eps):
            res = seg.segment(ep)
            spans[name] = [(s, e, "segment" if k < 0 else f"skill type {k}") for s, e, k in res.segments]
        return spans, None
    raise ValueError(f"--annotate must be phases, gripper, segmenter[:DIR], none or auto, got {annotate!r}")


def run_export(args: argparse.Namespace) -> int:
    """Export and print what was written."""
    from demos.lerobot import VideoSettings, export_lerobot

    spans, names = subtask_spans(args.input, args.annotate, args.episodes)
    res = export_lerobot(args.input, args.out, task=args.task, subtasks=spans or None, subtask_names=names if spans else None,
                         episodes=args.episodes, video=VideoSettings(codec=args.codec, crf=args.crf, pix_fmt=args.pix_fmt), robot_type=args.robot_type,
                         overwrite=args.overwrite)
    subs = f"{len(res.subtasks)} subtasks ({args.annotate})" if res.subtasks else "no subtasks"
    print(f"wrote {res.episodes} episodes ({res.frames} frames, {len(res.video_keys)} video streams, {subs}) "
          f"to {res.path}: {res.bytes / 1e6:.2f} MB, {res.frames_per_second:.0f} frames/s")
    return 0


def run_import(args: argparse.Namespace) -> int:
    """Import and print what was written."""
    from demos.lerobot import import_lerobot

    res = import_lerobot(args.input, args.out, env_id=args.env, episodes=args.episodes, overwrite=args.overwrite)
    cams = ", ".join(res.cameras) or "none"
    print(f"wrote {res.episodes} demos ({res.frames} samples; cameras: {cams}; env {res.env_id}) to {res.path}: "
          f"{res.frames_per_second:.0f} frames/s")
    return 0
