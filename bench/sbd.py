"""Benchmark: skill boundary detection (SBD) against expert phases, baselines, held-out tasks, speed.

One run:

1. records expert demonstrations with camera frames (cached in `--data-dir`) for the
   training tasks and for one or more tasks held out from predictor training
   (`--heldout-task A,B,...`: each is scored on its own);
2. splits the training tasks' episodes into train / validation / test (episode level), and adds
   `--extra-val-episodes` freshly recorded episodes per training task to validation (a choice among
   ~6,000 rule candidates on 15 episodes per task was noisy: see docs/segmentation.md);
3. trains the causal action predictor by behaviour cloning on the train split only
   (`--predictor-members` of them from consecutive seeds, scored by their mean loss; the
   `one predictor` rows are member 0 alone, tuned and scored the same way);
4. chooses the gap and minimum segment length of each variant by grid search on the
   validation split (phase labels are read there to score candidates, never by the
   detector), and scores held-out test episodes and each held-out task:
   - `loss`       : the SBD rule on -log p(a_t | o_<=t) (whether to reset the memory at
                    boundaries, as the paper does, is chosen on validation too);
   - `loss+info`  : plus gripper open/close events (the paper's best variant);
   - `loss+info, always reset` / `never reset`: ablations;
   - `loss+info, two-sided (ours)`: |loss_t - mean| > gap, i.e. a fall to a more predictable
     skill is a boundary too, and the loss's bin tolerance chosen on validation among 0, 1, 2
     (deviations from the paper, reported separately); `two-sided, exact-bin loss` fixes the
     tolerance at 0, so what the tolerance adds is measured in the same run. The paper's
     rules (`loss`, `loss+info` and their ablations) keep its exact-bin loss;
   - our rule's gap is searched in nats and in units of the episode's loss spread (see
     `detector`); `two-sided, gap in nats` searches nats only, so what the unit adds is measured
     in the same run;
   - every rule's gap is ranked by its validation F1 averaged with the neighbouring gaps' (the
     centre of a plateau, `tune_detector(plateau=1)`); `two-sided, best single gap` ranks by the
     gap's own score (`plateau=0`), so what that adds is measured in the same run;
   - baselines `fixed-length` (length tuned on validation) and `gripper events only`;
   - the video path, actions hidden and labelled by inverse dynamics: `loss+info, IDM actions,
     recorded-action gap` keeps the rule tuned on recorded actions; `IDM actions, own gap (video
     path)` tunes its own (rule included) on validation episodes with labelled actions, as
     `fit_segmenter` does; for a single-camera predictor also real mp4 files (encode, decode, segment);
5. saves the segmenter (`--model-out`) with the rule that scored best on validation, loss+info or
   two-sided (`chosen_rule` in the JSON), and the video path's own rule; measures segmentation
   speed (frames/s, at the training resolution, `--threads` torch threads);
6. clusters segments into skill types, fits one BC skill per (type, task), a type with no
   common effect chained to the runs after it (`build_segment_skills`), adds them to a
   library and reports each skill's own success (`evaluate_skill` descriptors).

Metrics: boundary precision/recall/F1 within ±2 and ±5 steps, segment F1@{0.10,0.25,0.50}
IoU (class-agnostic) and edit score (see `segmentation.metrics`). True
boundaries are the recorded expert phase changes. Held-out tasks also report `hold_boundaries`:
detected boundaries per episode inside the final hold (after the last phase change, once the
robot has stopped for good: long-horizon experts finish early and hold still to the time limit),
all of them spurious.

JSON: per variant `heldout_task` (the first held-out task, as before) and `heldout_tasks`
({env id: scores}); `data.heldout_tasks` lists them.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

DEFAULT_TRAIN_TASKS = "skillstack/PandaPickPlace-v0,skillstack/PandaPush-v0"
DEFAULT_HELDOUT = "skillstack/PandaStack-v0,skillstack/PandaPushThenPick-v0,skillstack/PandaStackThree-v0"
# the variants whose scores the tables break down by task
PER_TASK_VARIANTS = ("loss", "loss+info", "loss+info, two-sided (ours)", "loss+info, two-sided, exact-bin loss",
                     "loss+info, two-sided, gap in nats", "loss+info, two-sided, best single gap",
                     "loss+info, two-sided, one predictor")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of `skillstack bench sbd`."""
    parser.add_argument("--train-tasks", default=DEFAULT_TRAIN_TASKS, help=f"comma-separated env ids the predictor trains on (default: {DEFAULT_TRAIN_TASKS})")
    parser.add_argument("--heldout-task", default=DEFAULT_HELDOUT, help="comma-separated env ids held out from predictor "
                        f"training, each scored separately (default: {DEFAULT_HELDOUT}; '' for none)")
    parser.add_argument("--episodes", type=int, default=100, help="expert episodes per training task (default: 100)")
    parser.add_argument("--heldout-episodes", type=int, default=30, help="episodes of each held-out task (default: 30)")
    parser.add_argument("--extra-test-episodes", type=int, default=150,
                        help="also record N fresh episodes per training task (seeds seed+50000, +51000, ...) and score every "
                             "variant on them: a larger test set than the split's 15 per task, for a tighter interval "
                             "(default: 150; 0: the split's alone)")
    parser.add_argument("--extra-val-episodes", type=int, default=15,
                        help="also record N fresh episodes per training task (seeds seed+60000, +61000, ...) into the validation "
                             "split: the rule is chosen among ~6,000 candidates, and the split's 15 per task left that choice "
                             "noisy (default: 15, so 30 per task; 0: the split's alone)")
    parser.add_argument("--split", default="0.7,0.15,0.15", help="train,val,test fractions of training-task episodes")
    parser.add_argument("--cameras", default="front,wrist", help="cameras the predictor sees (default: front,wrist)")
    parser.add_argument("--image-size", type=int, default=64, help="training resolution (default: 64)")
    parser.add_argument("--context", type=int, default=16, help="predictor context K in steps (default: 16)")
    parser.add_argument("--epochs", type=int, default=30, help="predictor training epochs (default: 30)")
    parser.add_argument("--n-bins", type=int, default=21, help="action bins per dimension (default: 21)")
    parser.add_argument("--target-sigma", type=float, default=0.75, help="label smoothing over bins, in bins (default: 0.75)")
    parser.add_argument("--predictor-members", type=int, default=3,
                        help="action predictors (seeds seed, seed+1, ...) whose mean loss is scored (default: 3; 1 = one predictor)")
    parser.add_argument("--proprio", action="store_true", help="predictor also sees proprioception (then no video path)")
    parser.add_argument("--idm-epochs", type=int, default=8, help="inverse-dynamics training epochs (default: 8; 0 skips)")
    parser.add_argument("--skills", type=int, default=1, help="1: build and evaluate BC skills per skill type (default), 0: skip")
    parser.add_argument("--skill-types", type=int, default=None, help="number of skill types (default: silhouette)")
    parser.add_argument("--library", default=None, help="library for the BC skills (default: a temporary one)")
    parser.add_argument("--data-dir", default="runs/sbd/data", help="recorded demos are cached here (default: runs/sbd/data)")
    parser.add_argument("--demos", default=None, help="use these expert HDF5 files (comma-separated, with the cameras) instead of recording")
    parser.add_argument("--model-out", default="runs/sbd/segmenter", help="save the segmenter (the rule best on validation) here ('' to skip)")
    parser.add_argument("--plot", default="bench/results/sbd.png", help="PNG of a few test and held-out episodes ('' to skip)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads for training (default: 1); speed is measured at 1 and 2")
    parser.add_argument("--seed", type=int, default=0)


def _record(env_id: str, episodes: int, seed: int, cameras: list[str], size: int, data_dir: Path,
            log: Callable[[str], None] = print) -> Path:
    """The demo file for (task, episodes, seed, cameras, size): from the cache when it is whole and
    current, else recorded (again)."""
    from demos import DemoFile, record_demos

    name = env_id.split("/")[-1].replace("-v0", "")
    path = data_dir / f"{name}_{episodes}ep_s{seed}_{size}px_{'-'.join(cameras)}.hdf5"
    if path.exists():
        try:
            with DemoFile(path, expected_env=env_id) as f:
                whole = len(f) == episodes
            if whole and _cache_is_current(path, env_id, seed, cameras, size):
                return path
            log(f"{path.name}: {'recorded by other code (its first episode differs from a fresh one)' if whole else 'incomplete'}; recording again")
        except Exception:  # noqa: BLE001 - a broken cache file is simply re-recorded
            pass
    record_demos(env_id, "expert", episodes=episodes, out=path, seed=seed, cameras=cameras, image_size=size,
                 overwrite=True, durable=False, progress=False)
    return path


def _cache_is_current(path: Path, env_id: str, seed: int, cameras: list[str], size: int) -> bool:
    """Whether a fresh recording of episode 0 reproduces the cached one (actions and simulator states).

    Why: the cache key names the task, seed and cameras, not the code. A change to an expert, an
    env or MuJoCo since the file was written would otherwise mix old behaviour into the training
    and test data without notice. Recording one episode costs about a second.
    """
    from demos import DemoFile, record_demos

    with tempfile.TemporaryDirectory(dir=path.parent) as tmp:
        fresh_path = Path(tmp) / "episode0.hdf5"
        record_demos(env_id, "expert", episodes=1, out=fresh_path, seed=seed, cameras=cameras, image_size=size,
                     durable=False, progress=False)
        with DemoFile(fresh_path) as fresh, DemoFile(path) as cached:
            a, b = fresh.episode(0, images=False), cached.episode(0, images=False)
            return (a.actions.shape == b.actions.shape and np.allclose(a.actions, b.actions, atol=1e-6)
                    and a.states is not None and b.states is not None and a.states.shape == b.states.shape
                    and np.allclose(a.states, b.states, atol=1e-6))


def _given_demos(spec: str, tasks: list[str]) -> dict[str, Path]:
    """Map each needed env id to one of the given demo files (env read from the file)."""
    from demos import DemoFile

    found: dict[str, Path] = {}
    for p in (Path(x.strip()) for x in spec.split(",") if x.strip()):
        with DemoFile(p) as f:
            found.setdefault(f.env_id, p)
    missing = [t for t in tasks if t not in found]
    if missing:
        raise ValueError(f"--demos has no file for {missing}; it has {sorted(found)}")
    return {t: found[t] for t in tasks}


def _parse_heldout(spec: str, train_tasks: list[str]) -> list[str]:
    """Comma-separated held-out env ids, in order, without repeats; none may be a training task."""
    tasks = list(dict.fromkeys(t.strip() for t in spec.split(",") if t.strip()))
    overlap = [t for t in tasks if t in train_tasks]
    if overlap:
        raise ValueError(f"--heldout-task {overlap} also in --train-tasks: a held-out task must be unseen by the predictor")
    return tasks


def _hold_start(e: Any, eps: float) -> int:
    """First step of an episode's final hold: after its last phase change, from where the robot
    issues no action (`idle_steps` at `eps`) to the end. The length when it never holds still."""
    from segmentation.detector import idle_steps

    moving = np.nonzero(~idle_steps(e.actions, eps))[0]
    last_change = e.true_boundaries[-1] if e.true_boundaries else 0
    return max(int(moving[-1]) + 1 if len(moving) else 0, last_change + 1)


def _hold_boundaries(preds: list[list[int]], eps: list, idle_eps: float) -> float:
    """Detected boundaries per episode inside the final hold (all spurious: no phase changes there)."""
    if not eps:
        return 0.0
    return float(np.mean([sum(b >= _hold_start(e, idle_eps) for b in p) for p, e in zip(preds, eps)]))


def _fmt_row(name: str, r: dict[str, float]) -> list[Any]:
    return [name, round(r["precision@5"], 3), round(r["recall@5"], 3), round(r["f1@2"], 3), round(r["f1@5"], 3),
            round(r["seg_f1@0.10"], 3), round(r["seg_f1@0.25"], 3), round(r["seg_f1@0.50"], 3), round(r["edit"], 1)]


def _per_task_rows(variants: dict[str, Any], split: str) -> list[list[Any]]:
    """Table rows of `split`'s per-task scores ("test" or "extra_test") for the variants in PER_TASK_VARIANTS."""
    return [[f"{k} | {t.replace('Panda', '')}", *_fmt_row(k, r)[1:]] for k, v in variants.items() if k in PER_TASK_VARIANTS
            for t, r in v.get(split, {}).get("per_task", {}).items()]


def _fmt_interval(ci: Any) -> str:
    return "-" if ci is None else f"{ci[0]:.3f}-{ci[1]:.3f}"


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Run the benchmark; prints tables, returns the JSON-able result."""
    import torch

    from policies.action_predictor import ActionPredictorConfig, SequenceData
    from policies.action_predictor_ensemble import train_action_predictor_ensemble
    from segmentation.baselines import fixed_length_boundaries, tune_fixed_length
    from segmentation.clustering import fit_skill_types
    from segmentation.dataset import gripper_events, load_hdf5_episodes, split_episodes
    from segmentation.detector import DetectorParams
    from segmentation.metrics import boundary_f1_interval, evaluate_episodes
    from segmentation.segmenter import (
        DEFAULT_BIN_TOLERANCES,
        DEFAULT_IDLE_EPS,
        NoRuleBeatsBaselineError,
        Segmenter,
        label_with_idm,
        tune_detector,
    )
    from common.table import print_table

    torch.set_num_threads(max(1, int(args.threads)))
    t_start = time.perf_counter()
    cameras = [c.strip() for c in args.cameras.split(",") if c.strip()]
    train_tasks = [t.strip() for t in args.train_tasks.split(",") if t.strip()]
    heldouts = _parse_heldout(args.heldout_task, train_tasks)
    heldout = heldouts[0] if heldouts else None  # the first keeps the single-task JSON keys
    fractions = [float(x) for x in args.split.split(",")]
    if len(fractions) != 3:
        raise ValueError(f"--split needs three fractions train,val,test, got {args.split!r}")
    if args.extra_val_episodes < 0 or args.extra_test_episodes < 0:
        raise ValueError(f"--extra-val-episodes and --extra-test-episodes must be >= 0, got {args.extra_val_episodes} and "
                         f"{args.extra_test_episodes}")
    data_dir = Path(args.data_dir)
    data_dir.mkdir(parents=True, exist_ok=True)
    log = lambda msg: print(f"[sbd {time.perf_counter() - t_start:6.0f}s] {msg}", flush=True)  # noqa: E731

    # 1-2. data
    t0 = time.perf_counter()
    if args.demos:
        files = _given_demos(args.demos, train_tasks + heldouts)
    else:
        files = {t: _record(t, args.episodes, args.seed + 1000 * i, cameras, args.image_size, data_dir, log) for i, t in enumerate(train_tasks)}
        for i, t in enumerate(heldouts):  # the first keeps seed + 9000 (and its cache file)
            files[t] = _record(t, args.heldout_episodes, args.seed + 9000 + 1000 * i, cameras, args.image_size, data_dir, log)
    record_s = time.perf_counter() - t0
    log(f"demos ready in {record_s:.0f}s: {', '.join(p.name for p in files.values())}")
    train, val, test = [], [], []
    for i, t in enumerate(train_tasks):
        eps = load_hdf5_episodes(files[t], cameras, args.image_size, proprio=args.proprio)
        a, b, c = split_episodes(eps, fractions, seed=args.seed + i)
        train += a
        val += b
        test += c
    helds = {t: load_hdf5_episodes(files[t], cameras, args.image_size, proprio=args.proprio) for t in heldouts}

    def fresh_episodes(per_task: int, seed_offset: int) -> list:
        """`per_task` newly recorded episodes of each training task (seeds seed + seed_offset + 1000 i)."""
        out: list = []
        for i, t in enumerate(train_tasks if per_task > 0 else []):
            path = _record(t, per_task, args.seed + seed_offset + 1000 * i, cameras, args.image_size, data_dir, log)
            out += load_hdf5_episodes(path, cameras, args.image_size, proprio=args.proprio)
        return out

    extra_test = fresh_episodes(args.extra_test_episodes, 50000)
    extra_val = fresh_episodes(args.extra_val_episodes, 60000)
    val += extra_val
    held = helds[heldout] if heldout else []
    if not train or not val or not test:
        raise ValueError(f"too few episodes for the split: train {len(train)}, val {len(val)}, test {len(test)}")

    # 3. predictor
    a_dim = int(train[0].actions.shape[1])
    cfg = ActionPredictorConfig(cameras=tuple(cameras), image_size=args.image_size, action_dim=a_dim,
                                action_low=(-1.0,) * a_dim, action_high=(1.0,) * a_dim, context=args.context,
                                proprio_dim=int(train[0].proprio.shape[1]) if args.proprio else 0, n_bins=args.n_bins, target_sigma=args.target_sigma)
    data = [SequenceData(e.images, e.actions, e.proprio if args.proprio else None) for e in train]
    members = int(args.predictor_members)  # < 1 is refused by train_action_predictor_ensemble
    log(f"training {members} action predictor(s) on {len(train)} episodes ({sum(e.length for e in train)} steps)")
    predictor, stats = train_action_predictor_ensemble(
        data, cfg, members, epochs=args.epochs, seed=args.seed,
        log=lambda m: log(m) if any(k in m for k in ("epoch 1/", f"epoch {args.epochs}/", "budget")) else None)
    train_seconds = sum(st.seconds for st in stats)

    # 4. variants
    hold_eps = max(DEFAULT_IDLE_EPS)  # "no action" for the final-hold diagnostic: the looser tuned threshold

    video_copies: dict[int, Any] = {}  # episode id -> its copy with IDM-labelled actions, labelled once

    def as_video(e: Any) -> Any:
        if id(e) not in video_copies:
            video_copies[id(e)] = label_with_idm(e, idm)
        return video_copies[id(e)]

    def score(params: DetectorParams, eps: list, model: Any = None, video: bool = False) -> dict[str, Any]:
        """Scores of `params` on `eps`; `video`: on the actions inverse dynamics labels (phases, holds from `eps`)."""
        seg = Segmenter(predictor if model is None else model, params)
        preds = [seg.detect(as_video(e) if video else e)[0].boundaries for e in eps]
        out: dict[str, Any] = evaluate_episodes(preds, [e.phases for e in eps])
        out["f1@5_ci95"] = boundary_f1_interval(preds, [e.phases for e in eps])
        out["hold_boundaries"] = _hold_boundaries(preds, eps, hold_eps)
        tasks = sorted({e.task for e in eps})
        if len(tasks) > 1:  # per-task breakdown
            out["per_task"] = {t: evaluate_episodes([p for p, e in zip(preds, eps) if e.task == t],
                                                    [e.phases for e in eps if e.task == t]) for t in tasks}
        return out

    def score_fixed(preds_of: Any, eps: list) -> dict[str, Any]:
        preds = [preds_of(e) for e in eps]
        return {**evaluate_episodes(preds, [e.phases for e in eps]), "f1@5_ci95": boundary_f1_interval(preds, [e.phases for e in eps]),
                "hold_boundaries": _hold_boundaries(preds, eps, hold_eps)}

    def score_held(fn: Any) -> dict[str, Any]:
        """`heldout_task` (the first held-out task; kept for older readers) and `heldout_tasks` (each)."""
        per = {t: fn(eps) for t, eps in helds.items()}
        return {"heldout_task": per[heldout] if heldout else None, "heldout_tasks": per}

    results: dict[str, Any] = {"variants": {}}
    tuned: dict[str, DetectorParams] = {}
    exact, tolerant = (0,), DEFAULT_BIN_TOLERANCES  # the paper's exact-bin loss; ours: validation chooses
    # (name, tune_detector options, the predictor when not the ensemble); reset_memory None: validation chooses
    paper = dict(use_events=True, reset_memory=None, two_sided=False, bin_tolerances=exact)
    ours = dict(use_events=True, reset_memory=None, two_sided=True, bin_tolerances=tolerant)  # both gap units
    variants: list[tuple[str, dict[str, Any], Any]] = [
        ("loss", {**paper, "use_events": False}, None), ("loss+info", paper, None),
        ("loss+info, always reset", {**paper, "reset_memory": True}, None),
        ("loss+info, never reset", {**paper, "reset_memory": False}, None),
        ("loss+info, two-sided (ours)", ours, None),
        ("loss+info, two-sided, exact-bin loss", {**ours, "bin_tolerances": exact}, None),
        ("loss+info, two-sided, gap in nats", {**ours, "gap_units": ("nats",)}, None),
        ("loss+info, two-sided, best single gap", {**ours, "plateau": 0}, None)]
    if members > 1:  # the same rules on member 0 alone: what the ensemble adds, measured in this run
        single = predictor.members[0]
        variants += [("loss+info, one predictor", paper, single), ("loss+info, two-sided, one predictor", ours, single)]
    for name, options, model in variants:
        # Ablation rows report what each rule scores, even below the fixed-length row printed beside them.
        params, vscores = tune_detector(predictor if model is None else model, val, beat_baseline=False, **options)
        tuned[name] = params
        results["variants"][name] = {"params": params.to_dict(), "validation": vscores, "test": score(params, test, model=model),
                                     **score_held(lambda eps, params=params, model=model: score(params, eps, model=model))}
        if extra_test:
            results["variants"][name]["extra_test"] = score(params, extra_test, model=model)
        log(f"{name}: gap {params.gap_text} min_len {params.min_len} bin tolerance {params.bin_tolerance} "
            f"-> test F1@5 {results['variants'][name]['test']['f1@5']:.3f}")
    every, fv = tune_fixed_length([e.length for e in val], [e.phases for e in val])
    results["variants"]["baseline: fixed length"] = {
        "params": {"every": every}, "validation": fv,
        "test": score_fixed(lambda e: fixed_length_boundaries(e.length, every), test),
        **score_held(lambda eps: score_fixed(lambda e: fixed_length_boundaries(e.length, every), eps)),
    }
    results["variants"]["baseline: gripper events only"] = {
        "params": {}, "validation": evaluate_episodes([gripper_events(e.actions) for e in val], [e.phases for e in val]),
        "test": score_fixed(lambda e: gripper_events(e.actions), test),
        **score_held(lambda eps: score_fixed(lambda e: gripper_events(e.actions), eps)),
    }
    if extra_test:
        results["variants"]["baseline: fixed length"]["extra_test"] = score_fixed(lambda e: fixed_length_boundaries(e.length, every), extra_test)
        results["variants"]["baseline: gripper events only"]["extra_test"] = score_fixed(lambda e: gripper_events(e.actions), extra_test)

    # the segmenter saved, timed and clustered: the paper's loss+info or our two-sided rule, whichever
    # scores better on validation (as `fit_segmenter` chooses; a tie keeps the paper's)
    rule_names = ("loss+info", "loss+info, two-sided (ours)")
    best_name = max(rule_names, key=lambda k: results["variants"][k]["validation"]["f1@5_plateau"])  # what tuning ranks by
    best = tuned[best_name]
    results["chosen_rule"] = best_name
    video_params = None

    # inverse dynamics: the video path
    idm = None
    if args.idm_epochs > 0:
        from policies.inverse_dynamics import InverseDynamicsConfig, train_inverse_dynamics

        icfg = InverseDynamicsConfig(cameras=tuple(cameras), image_size=args.image_size, action_dim=a_dim,
                                     action_low=(-1.0,) * a_dim, action_high=(1.0,) * a_dim)
        log("training inverse dynamics")
        idm = train_inverse_dynamics([(e.images, e.actions) for e in train], icfg, epochs=args.idm_epochs, seed=args.seed)
        labelled = [as_video(e).actions for e in test]
        mae = float(np.mean([np.abs(lab[:-1] - e.actions[:-1]).mean() for lab, e in zip(labelled, test)]))
        grip = float(np.mean([np.mean(np.sign(lab[:-1, -1]) == np.sign(e.actions[:-1, -1])) for lab, e in zip(labelled, test)]))
        results["idm"] = {"action_mae": mae, "gripper_sign_accuracy": grip}
        if not args.proprio:
            # labelled actions are noisier than recorded ones: the rule tuned on recorded actions, as
            # the paper would run it, against the video path's own rule tuned on labelled validation actions
            recorded = tuned["loss+info"]
            results["variants"]["loss+info, IDM actions, recorded-action gap"] = {
                "params": recorded.to_dict(), "test": score(recorded, test, video=True),
                **score_held(lambda eps: score(recorded, eps, video=True)),
            }
            video_options = dict(use_events=True, reset_memory=None, two_sided=None, idm=idm)
            try:  # what training would ship: refused when no rule beats fixed-length cuts
                video_params, vscores = tune_detector(predictor, val, **video_options)
                refused = ""
            except NoRuleBeatsBaselineError as exc:
                refused = str(exc)
                log(f"video path refused by training: {refused}")
                video_params, vscores = tune_detector(predictor, val, beat_baseline=False, **video_options)
            results["variants"]["IDM actions, own gap (video path)"] = {
                "refused_by_training": refused,
                "params": video_params.to_dict(), "validation": vscores, "test": score(video_params, test, video=True),
                **score_held(lambda eps: score(video_params, eps, video=True)),
            }
            if extra_test:
                results["variants"]["IDM actions, own gap (video path)"]["extra_test"] = score(video_params, extra_test, video=True)
            log(f"video path: gap {video_params.gap_text} min_len {video_params.min_len} two-sided {video_params.two_sided} -> "
                f"test F1@5 {results['variants']['IDM actions, own gap (video path)']['test']['f1@5']:.3f}")
            if len(cameras) == 1:
                results["variants"]["IDM actions, mp4 video"] = {"params": video_params.to_dict(),
                                                                 "test": _mp4_scores(predictor, video_params, idm, test, cameras[0])}

    # 5. speed: whole segmentation (frames -> tokens -> loss -> rule with resets -> typed segments), best of 3
    seg = Segmenter(predictor, best, idm, video_params=video_params)
    results["speed"] = {"resolution": f"{args.image_size}x{args.image_size}", "cameras": cameras, "frames": sum(e.length for e in test)}
    for threads in (1, 2):
        torch.set_num_threads(threads)
        secs = float("inf")
        for _ in range(3):
            t0 = time.perf_counter()
            for e in test:
                seg.segment(e)
            secs = min(secs, time.perf_counter() - t0)
        results["speed"][f"frames_per_second_{threads}_threads"] = results["speed"]["frames"] / secs
    torch.set_num_threads(max(1, int(args.threads)))

    # 6. skill types and skills
    embs, labels = [], []
    for e in train:
        det, tokens, _ = seg.detect(e)
        embs.append(seg.segment_embeddings(tokens, det.boundaries))
        for s, t_end in zip([0, *det.boundaries], [*det.boundaries, e.length]):
            labels.append(e.phase_names[int(np.bincount(e.phases[s:t_end]).argmax())])
    seg.skill_types = fit_skill_types(np.concatenate(embs), args.skill_types, seed=args.seed)
    assign = seg.skill_types.assign(np.concatenate(embs))
    purity = sum(max(np.sum((assign == k) & (np.array(labels) == p)) for p in set(labels)) for k in set(assign.tolist())) / len(labels)
    results["skill_types"] = {"k": seg.skill_types.k, "purity": float(purity), "segments": len(labels),
                              "majority_phase": {int(k): max(set(np.array(labels)[assign == k]), key=list(np.array(labels)[assign == k]).count)
                                                 for k in sorted(set(assign.tolist()))}}
    seg.meta.update({"validation": results["variants"][best_name]["validation"], "train_tasks": train_tasks, "seed": args.seed})
    if video_params is not None:
        seg.meta["validation_video"] = results["variants"]["IDM actions, own gap (video path)"]["validation"]
    if args.model_out:
        seg.save(args.model_out)
        results["model"] = str(args.model_out)
    if args.skills:
        from segmentation.skills import build_segment_skills

        with tempfile.TemporaryDirectory(prefix="sbd-lib-") as tmp:
            lib_path = args.library or tmp
            built = build_segment_skills(seg, train, lib_path, seed=args.seed)
            results["skills"] = [{"ref": b.ref, "skill_type": b.skill_type, "chain": list(b.chain), "env_id": b.env_id, "segments": b.segments,
                                  "majority_phase": b.majority_phase, "preconditions": list(b.preconditions),
                                  "effects": list(b.effects), "success_rate": b.success_rate} for b in built]
    if args.plot:
        from segmentation.plots import plot_segments

        firsts = [eps[0] for eps in helds.values() if eps][:3]  # one episode per held-out task
        shown = test[:4 - max(1, len(firsts))] + firsts
        res = [seg.segment(e) for e in shown]
        names = [[e.phase_names[int(e.phases[s])] for s in [0, *r.true_boundaries]] for e, r in zip(shown, res)]
        results["plot"] = str(plot_segments(res, args.plot, max_episodes=4, gap=best.gap_text, phase_names=names,
                                            title=f"SBD {best_name} on held-out episodes"))

    results["data"] = {"train_tasks": train_tasks, "heldout_task": heldout, "heldout_tasks": heldouts, "train_episodes": len(train),
                       "val_episodes": len(val), "extra_val_episodes": len(extra_val), "test_episodes": len(test),
                       "extra_test_episodes": len(extra_test), "heldout_episodes": len(held),
                       "heldout_episodes_per_task": {t: len(eps) for t, eps in helds.items()},
                       "cameras": cameras, "image_size": args.image_size, "record_seconds": record_s}
    results["predictor"] = {"config": cfg.to_dict(), "members": members, "epochs": len(stats[0].train_loss),
                            "train_loss": [st.train_loss[-1] for st in stats], "train_seconds": train_seconds}
    results["seconds"] = time.perf_counter() - t_start

    # tables
    print()
    heads = ["variant", "P@5", "R@5", "F1@2", "F1@5", "segF1@.10", "segF1@.25", "segF1@.50", "edit"]
    print(f"held-out episodes of the training tasks ({', '.join(t.split('/')[-1] for t in train_tasks)}; {len(test)} episodes)")
    print_table([*heads, "F1@5 95% CI"], [[*_fmt_row(k, v["test"]), _fmt_interval(v["test"].get("f1@5_ci95"))]
                                          for k, v in results["variants"].items()])
    if extra_test:
        print(f"independent test episodes: {len(extra_test)} fresh episodes of the training tasks (--extra-test-episodes "
              f"{args.extra_test_episodes} each), same predictors and parameters")
        print_table([*heads, "F1@5 95% CI"], [[*_fmt_row(k, v["extra_test"]), _fmt_interval(v["extra_test"].get("f1@5_ci95"))]
                                              for k, v in results["variants"].items() if "extra_test" in v])
    for split, label in (("test", f"the split's {len(test)} test episodes"), ("extra_test", f"the {len(extra_test)} fresh episodes")):
        per_task = _per_task_rows(results["variants"], split)
        if per_task:
            print(f"per task, {label}:")
            print_table(heads, per_task)
    for t, eps in helds.items():
        if not eps:
            continue
        print(f"\ntask held out from predictor training: {t.split('/')[-1]} ({len(eps)} episodes, "
              f"{np.mean([e.length for e in eps]):.0f} steps, {np.mean([len(e.true_boundaries) for e in eps]):.1f} phase changes each; "
              f"hold: boundaries per episode in the final hold, all spurious)")
        print_table([*heads, "hold"], [[*_fmt_row(k, v["heldout_tasks"][t]), round(v["heldout_tasks"][t]["hold_boundaries"], 2)]
                                       for k, v in results["variants"].items() if v.get("heldout_tasks", {}).get(t)])
    if len(helds) > 1:
        names = [t.split("/")[-1].replace("Panda", "").replace("-v0", "") for t in helds]
        print("\nheld-out tasks, boundary F1@±5:")
        print_table(["variant", *names], [[k, *(round(v["heldout_tasks"][t]["f1@5"], 3) for t in helds)]
                                          for k, v in results["variants"].items() if v.get("heldout_tasks")])
    print("\nchosen on validation: " + "; ".join(
        f"{k}: gap {DetectorParams(**v['params']).gap_text} min_len {v['params']['min_len']} idle_eps {v['params']['idle_eps']} "
        f"reset {'yes' if v['params']['reset_memory'] else 'no'}" + (" two-sided" if v["params"]["two_sided"] else "")
        + (f" bin tolerance {v['params']['bin_tolerance']}" if v["params"].get("bin_tolerance") else "")
        for k, v in results["variants"].items() if "validation" in v and "gap" in v["params"])
          + f"; fixed length {every}")
    print(f"segmenter (speed, skill types, skills{', saved' if args.model_out else ''}): {best_name}, the better rule on validation")
    sp = results["speed"]
    print(f"segmentation speed at {sp['resolution']} ({','.join(cameras)}): {sp['frames_per_second_1_threads']:.0f} frames/s "
          f"with 1 torch thread, {sp['frames_per_second_2_threads']:.0f} with 2 (machine shared with other work)")
    if "idm" in results:
        print(f"inverse dynamics on test: action MAE {results['idm']['action_mae']:.3f}, gripper sign accuracy "
              f"{results['idm']['gripper_sign_accuracy']:.3f}")
    st = results["skill_types"]
    print(f"skill types: k={st['k']}, purity vs expert phases {st['purity']:.3f} over {st['segments']} training segments")
    if results.get("skills"):
        print_table(["skill", "task", "segments", "majority phase", "preconditions", "effects", "success"],
                    [[s["ref"], s["env_id"].split("/")[-1], s["segments"], s["majority_phase"] or "-", " & ".join(s["preconditions"]) or "-",
                      " & ".join(s["effects"]) or "-", "-" if s["success_rate"] is None else round(s["success_rate"], 3)]
                     for s in results["skills"]])
    print(f"total {results['seconds']:.0f}s (recording {record_s:.0f}s, predictor training {train_seconds:.0f}s)")
    return results


def _mp4_scores(predictor: Any, params: Any, idm: Any, eps: list, camera: str) -> dict[str, float]:
    """Encode each episode's frames as mp4, read them back and segment (IDM actions)."""
    from common.video import Mp4Writer
    from segmentation.dataset import load_mp4_episode
    from segmentation.metrics import evaluate_episodes
    from segmentation.segmenter import Segmenter

    seg = Segmenter(predictor, params, idm)
    preds = []
    with tempfile.TemporaryDirectory(prefix="sbd-mp4-") as tmp:
        for i, e in enumerate(eps):
            path = Path(tmp) / f"ep{i}.mp4"
            with Mp4Writer(path, 25.0) as w:
                for frame in e.images[camera]:
                    w.write(frame)
            preds.append(seg.segment(load_mp4_episode(path, camera, predictor.config.image_size)).boundaries)
    return evaluate_episodes(preds, [e.phases for e in eps])
