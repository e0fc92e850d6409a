"""`skillstack discover VIDEOS... --to-library LIB`: skills from video in one command (zoo.discover).

Segments every video with the default segmenter (actions labelled by its inverse dynamics),
clusters the segments into skill types, fits one behaviour-cloning skill per type and task,
publishes them into LIB with preconditions and effects, and reports segments per video, the
skill types with an example clip each, and each skill's own success.
"""

from __future__ import annotations

import argparse
import sys


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("discover", help="videos -> segments -> skill types -> behaviour-cloned skills in a library",
                       description="Discover skills in videos: an mp4, or a recorded demo file read as video (its "
                       "recorded actions are ignored; inverse dynamics labels them from the frames). Demo files also "
                       "carry the states the skills are fitted on and their predicates read from; a plain mp4 is "
                       "segmented and typed only.")
    p.add_argument("videos", nargs="+", metavar="VIDEO", help="mp4 videos and/or recorded demo .hdf5 files")
    p.add_argument("--to-library", required=True, metavar="LIB", help="skill library to publish the skills into")
    p.add_argument("--segmenter", default=None,
                   help="segmenter folder (default: $SKILLSTACK_SEGMENTER or ~/.skillstack/segmenter; `zoo install`)")
    p.add_argument("--report", default=None, metavar="DIR",
                   help="report folder: discover.json and one clip per skill type (default: LIB/../discover-report)")
    p.add_argument("--tasks", default="", help="comma-separated tasks to compose with the library's learned skills "
                   "afterwards, e.g. pick-place (default: none)")
    p.add_argument("--episodes", type=int, default=10, help="episodes per composed task (default: 10)")
    p.add_argument("--bc-epochs", type=int, default=150, help="behaviour-cloning epochs per skill (default: 150)")
    p.add_argument("--min-segments", type=int, default=10,
                   help="runs a skill type needs in a task to become a skill (default: 10)")
    p.add_argument("--no-evaluate", action="store_true", help="skip each skill's own success (descriptors)")
    p.add_argument("--keep-types", action="store_true", help="keep the segmenter's skill types (default: cluster these videos)")
    p.add_argument("--seed", type=int, default=0, help="seed (default: 0)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from common.table import print_table
    from zoo.discover import discover

    import torch

    torch.set_num_threads(1)
    tasks = [t.strip() for t in args.tasks.split(",") if t.strip()]
    report = discover(args.videos, args.to_library, segmenter=args.segmenter, report_dir=args.report, seed=args.seed,
                      bc_epochs=args.bc_epochs, evaluate=not args.no_evaluate, recluster=not args.keep_types,
                      composed_tasks=tasks, composed_episodes=args.episodes, min_segments=args.min_segments,
                      log=lambda msg: print(msg, file=sys.stderr, flush=True))
    print_table(["video", "frames", "segments", "types"],
                [[v["name"], v["frames"], v["segments"], " ".join(map(str, v["types"]))[:60]] for v in report.videos])
    print_table(["skill type", "segments", "mean length", "example clip"],
                [[t["type"], t["segments"], t["mean_length"], t["clip"] or "-"] for t in report.types])
    print_table(["skill", "types", "task", "runs", "preconditions", "effects", "own success"],
                [[s["ref"], s["types"], s["task"], s["runs"], " & ".join(s["preconditions"]) or "-",
                  " & ".join(s["effects"]) or "-", "-" if s["success"] is None else f"{s['success']:.0%}"]
                 for s in report.skills])
    for task, rate in report.composed.items():
        print(f"{task} composed from the library's learned skills: {rate:.0%} of {args.episodes}")
    for note in report.notes:
        print(f"note: {note}")
    print(f"{len(report.skills)} skill(s) published into {args.to_library}; report {report.report}")
    return 0
