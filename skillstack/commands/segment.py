"""`skillstack segment`: skill boundary detection on demonstration files or videos.

    skillstack segment INPUT [INPUT ...] --out segments.json [--plot OUT.png] [--model DIR]
    skillstack segment --train DEMOS.hdf5 [...] --model DIR            # train a segmenter first
    skillstack segment ... --to-library LIB                             # segments -> bc skills
"""

from __future__ import annotations

import argparse
import sys


def _csv(text: str) -> list[str]:
    return [t.strip() for t in text.split(",") if t.strip()]


def _ints(text: str) -> list[int]:
    try:
        return [int(t) for t in _csv(text)]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}") from None


def _tolerance(text: str) -> int | None:
    """'auto' (None: validation chooses) or a whole number of bins >= 0."""
    if text.strip().lower() == "auto":
        return None
    try:
        w = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected 'auto' or a whole number of bins >= 0, got {text!r}") from None
    if w < 0:
        raise argparse.ArgumentTypeError(f"bin tolerance must be >= 0, got {w}")
    return w


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the `segment` subcommand."""
    p = subparsers.add_parser(
        "segment",
        help="find skill boundaries in demonstrations (HDF5) or videos (mp4)",
        description=(
            "Skill boundary detection: a causal action predictor scores -log p(a_t | o_<=t); a step starts a "
            "new skill when its loss exceeds the mean since the last boundary by the gap (chosen on a "
            "validation split at training time). Gripper open/close events are added as boundaries "
            "(loss+info). Videos without actions are labelled by inverse dynamics first. Writes per episode "
            "the boundary frames and the (start, end, skill type) segments as JSON, and optionally a PNG "
            "of the loss curve with detected (and true, when known) boundaries."
        ),
    )
    p.add_argument("inputs", nargs="*", metavar="INPUT", help="demonstration HDF5 file(s) or mp4 video(s)")
    p.add_argument("--out", default=None, help="segments JSON to write (default: segments.json when INPUT given)")
    p.add_argument("--plot", default=None, help="PNG: loss curve with detected/true boundaries")
    p.add_argument("--plot-episodes", type=int, default=4, help="episodes drawn in the plot (default: 4)")
    p.add_argument("--model", default=None, help="segmenter folder (default: $SKILLSTACK_SEGMENTER or ~/.skillstack/segmenter)")
    p.add_argument("--episodes", type=_ints, default=None, help="only these demo indices of HDF5 inputs, e.g. 0,3,5")
    p.add_argument("--video-camera", default=None, help="camera name a video was taken with (default: the segmenter's only camera)")
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads (default: 1; more only helps on an idle machine)")
    t = p.add_argument_group("training (--train)")
    t.add_argument("--train", nargs="+", default=None, metavar="DEMOS", help="train a segmenter on these expert HDF5 files into --model")
    t.add_argument("--cameras", type=_csv, default=["front", "wrist"], help="cameras the predictor sees (default: front,wrist)")
    t.add_argument("--image-size", type=int, default=64, help="training resolution in pixels (default: 64)")
    t.add_argument("--epochs", type=int, default=20, help="predictor training epochs (default: 20)")
    t.add_argument("--val-fraction", type=float, default=0.2, help="episodes held out to choose the gap (default: 0.2); 30 or more per task steady that choice")
    t.add_argument("--no-events", action="store_true", help="loss only: do not add gripper open/close events")
    t.add_argument("--rule", choices=("auto", "paper", "two-sided"), default="auto",
                   help="boundary rule: 'paper' (a rise of the loss above the running mean), 'two-sided' (ours: a fall "
                        "below it also starts a skill), or 'auto' (default): the one scoring best on the validation split")
    t.add_argument("--two-sided", dest="rule", action="store_const", const="two-sided", help="same as --rule two-sided")
    t.add_argument("--bin-tolerance", type=_tolerance, default=None, metavar="auto|W",
                   help="score the action's bin +- W bins in the loss (ours; 0: the exact bin, as in the paper). "
                        "Default: auto, chosen on the validation split among 0, 1, 2; with --rule paper, 0")
    # the units of detector.GAP_UNITS, spelled out so that the CLI starts without numpy (a test keeps them equal)
    t.add_argument("--gap-unit", choices=("auto", "nats", "episode_std"), default="auto",
                   help="the gap's unit: 'nats' (as in the paper) or 'episode_std' (ours: the gap times the spread of the "
                        "episode's losses so far). Default: auto, chosen on the validation split for the two-sided rule; "
                        "the paper's rule stays in nats")
    t.add_argument("--accept-weak-rule", action="store_true",
                   help="keep the best rule even when it does not beat fixed-length cuts on validation (default: "
                        "training stops with the two figures; use for smoke runs only)")
    t.add_argument("--no-idm", action="store_true", help="skip the inverse-dynamics model (then videos cannot be segmented)")
    t.add_argument("--skill-types", type=int, default=None, help="number of skill types (default: chosen by silhouette)")
    t.add_argument("--predictor-members", type=int, default=1,
                   help="action predictors trained from consecutive seeds, scored by their mean loss (default: 1; "
                        "`bench sbd` measured no gain from 3 on fresh demos)")
    t.add_argument("--seed", type=int, default=0,
                   help="seed of the train/validation split and predictor training, and of the skills' BC fits with "
                        "--to-library (default: 0)")
    s = p.add_argument_group("skills")
    s.add_argument("--to-library", default=None, metavar="LIB",
                   help="fit a bc skill per (skill type, task) on the HDF5 inputs' segments and add it to this library")
    s.add_argument("--no-evaluate", action="store_true", help="with --to-library: skip descriptor evaluation")
    s.add_argument("--agree", type=float, default=0.9,
                   help="with --to-library: fraction of a type's runs a predicate must agree on to become a "
                        "precondition or effect (default: 0.9)")
    s.add_argument("--no-merge", action="store_true",
                   help="with --to-library: every segment is its own example (default: consecutive segments of "
                        "one type are one run)")
    s.add_argument("--no-chain", action="store_true",
                   help="with --to-library: keep a skill type whose runs agree on no effect as it is (default: join "
                        "its runs to the runs after them until an effect, so the planner can use them)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Train and/or segment; prints a table per episode and the segmentation speed."""
    from pathlib import Path

    from segmentation.api import default_model_dir, segment_files, train_segmenter
    from segmentation.metrics import evaluate_episodes
    from common.table import print_table

    if not args.inputs and not args.train:
        raise ValueError("give INPUT file(s) to segment, or --train DEMOS.hdf5 to train a segmenter")
    import torch

    torch.set_num_threads(max(1, args.threads))
    model_dir = Path(args.model) if args.model else default_model_dir()
    log = lambda msg: print(msg, file=sys.stderr, flush=True)  # noqa: E731
    if args.train:
        seg = train_segmenter(args.train, model_dir, cameras=args.cameras, image_size=args.image_size,
                              val_fraction=args.val_fraction, epochs=args.epochs, use_events=not args.no_events,
                              two_sided={"auto": None, "paper": False, "two-sided": True}[args.rule],
                              bin_tolerance=args.bin_tolerance, gap_unit=None if args.gap_unit == "auto" else args.gap_unit,
                              idm=not args.no_idm, skill_types=args.skill_types, seed=args.seed,
                              predictor_members=args.predictor_members, log=log,
                              beat_baseline=not args.accept_weak_rule)
        v = seg.meta["validation"]
        print(f"segmenter saved to {model_dir}: {seg.params.rule} rule, gap {seg.params.gap_text}, min_len {seg.params.min_len}, "
              f"bin tolerance {seg.params.bin_tolerance}, events {seg.params.use_events}; "
              f"validation F1@±5 {v['f1@5']:.3f}, F1@±2 {v['f1@2']:.3f} (cutting every "
              f"{v.get('baseline_fixed_length_every', float('nan')):.0f} steps: {v.get('baseline_fixed_length_f1@5', float('nan')):.3f}); "
              f"{seg.skill_types.k} skill types")
        if seg.video_params is not None:
            vv, vp = seg.meta["validation_video"], seg.video_params
            print(f"  video path (actions from inverse dynamics): {vp.rule} rule, "
                  f"gap {vp.gap_text}, min_len {vp.min_len}, bin tolerance {vp.bin_tolerance}; validation F1@±5 {vv['f1@5']:.3f}")
        if not args.inputs:
            return 0
    else:
        from segmentation.segmenter import Segmenter

        seg = Segmenter.load(model_dir)
    out = args.out or "segments.json"
    result = segment_files(seg, args.inputs, out=out, plot=args.plot, video_camera=args.video_camera,
                           episodes=args.episodes, plot_episodes=args.plot_episodes)
    rows = []
    for r in result.episodes:
        segs = " ".join(f"{s}-{e}:{k}" for s, e, k in r.segments)
        rows.append([r.name, r.length, len(r.boundaries), segs if len(segs) < 70 else segs[:67] + "...",
                     "-" if r.true_boundaries is None else len(r.true_boundaries)])
    print_table(["episode", "steps", "boundaries", "segments start-end:type", "true"], rows)
    known = [r for r in result.episodes if r.true_boundaries is not None]
    if known:
        import numpy as np

        phases = []
        for r in known:  # rebuild a phase id per step from the true boundaries (evaluation only)
            ph = np.zeros(r.length, dtype=int)
            for b in r.true_boundaries:
                ph[b:] += 1
            phases.append(ph)
        m = evaluate_episodes([r.boundaries for r in known], phases)
        print(f"against expert phases: F1@±2 {m['f1@2']:.3f}  F1@±5 {m['f1@5']:.3f}  "
              f"(P {m['precision@5']:.3f} R {m['recall@5']:.3f})  edit {m['edit']:.1f}")
    print(f"{result.frames} frames in {result.seconds:.2f} s: {result.frames_per_second:.0f} frames/s "
          f"at {seg.image_size}x{seg.image_size}, cameras {','.join(seg.cameras)}")
    print(f"segments written to {result.out}" + (f"; plot {result.plot}" if result.plot else ""))
    if args.to_library:
        from segmentation.dataset import load_hdf5_episodes
        from segmentation.skills import build_segment_skills

        eps = []
        for f in args.inputs:
            if Path(f).suffix.lower() != ".mp4":
                eps += load_hdf5_episodes(f, seg.cameras, seg.image_size, args.episodes, proprio=seg.uses_proprio)
        built = build_segment_skills(seg, eps, args.to_library, evaluate=not args.no_evaluate, agree=args.agree,
                                     merge=not args.no_merge, chain=not args.no_chain, seed=args.seed, log=log)
        print_table(["skill", "type", "runs" if not args.no_merge else "segments", "majority phase", "preconditions",
                     "effects", "success"],
                    [[b.ref, b.type_label, b.segments, b.majority_phase or "-", " & ".join(b.preconditions) or "-",
                      " & ".join(b.effects) or "-", "-" if b.success_rate is None else round(b.success_rate, 3)]
                     for b in built])
    return 0
