"""`Segmenter`: the action predictor + tuned boundary rule (+ inverse dynamics, + skill types), saved as one folder.

```
segmenter/
  segmenter.json        detector parameters (gap chosen on a validation split), the video
                        path's own parameters (chosen on validation actions labelled by
                        inverse dynamics), validation scores, skill-type centroids, training summary
  predictor/            config.json + weights.safetensors  (policies.action_predictor), or for
                        an ensemble config.json + member_0/, member_1/, ... of that form
  idm/                  config.json + weights.safetensors  (policies.inverse_dynamics), optional
  video/                a one-camera segmenter of the same form, for plain videos (optional;
                        what a multi-camera segmenter segments an mp4 with)
```

`fit_segmenter` trains the predictor by behaviour cloning on unsegmented training
episodes, chooses the gap and the minimum segment length by grid search on validation
episodes (phase labels are read there, and only there, to score candidate parameters),
optionally trains inverse dynamics, and clusters the training segments into skill types.
`Segmenter.segment(episode)` never reads phase labels.
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from segmentation.baselines import tune_fixed_length
from segmentation.dataset import SegEpisode, gripper_events
from segmentation.detector import GAP_UNITS, Detection, DetectorParams, detect_boundaries, detect_with_model
from segmentation.metrics import evaluate_episodes, segments_from_boundaries

__all__ = [
    "ADVISED_VAL_EPISODES_PER_TASK",
    "DEFAULT_BIN_TOLERANCES",
    "DEFAULT_GAPS",
    "NoRuleBeatsBaselineError",
    "DEFAULT_MIN_LENS",
    "DEFAULT_PLATEAU",
    "DEFAULT_STD_GAPS",
    "DEFAULT_STD_PRIORS",
    "EpisodeSegments",
    "Segmenter",
    "fit_segmenter",
    "label_with_idm",
    "small_validation_tasks",
    "tune_detector",
]

SEGMENTER_FILE = "segmenter.json"
# Gaps in nats start above 0: a gap <= 0 fires whenever the loss is not below its running mean,
# i.e. at nearly every step `min_len` allows, a fixed-length chopper in disguise (the video path
# chose -2.25 nats before this range was closed).
DEFAULT_GAPS: tuple[float, ...] = tuple(float(g) for g in np.round(np.arange(0.25, 15.01, 0.25), 2))
DEFAULT_MIN_LENS: tuple[int, ...] = (1, 2, 3, 4, 5, 6, 8)
DEFAULT_IDLE_EPS: tuple[float, ...] = (0.0, 0.05)
DEFAULT_BIN_TOLERANCES: tuple[int, ...] = (0, 1, 2)
# fewer validation episodes of a task than this and the rule's choice is noisy (bench sbd; docs/segmentation.md, "Validation size")
ADVISED_VAL_EPISODES_PER_TASK = 30
DEFAULT_PLATEAU = 1  # neighbouring gaps on each side averaged into a candidate's validation score (tune_detector)
# gaps in units of the episode's loss spread ("episode_std"), and that spread's priors (nats)
DEFAULT_STD_GAPS: tuple[float, ...] = tuple(float(g) for g in np.round(np.arange(0.25, 3.001, 0.125), 3))
DEFAULT_STD_PRIORS: tuple[float, ...] = (0.5, 1.0, 2.0)


@dataclass
class EpisodeSegments:
    """Segmentation of one episode: boundaries, (start, end, skill_type) segments (end exclusive), loss curve."""

    name: str
    length: int
    boundaries: list[int]
    segments: list[tuple[int, int, int]]
    losses: np.ndarray
    from_event: list[bool] = field(default_factory=list)
    true_boundaries: list[int] | None = None
    actions_inferred: bool = False
    events: list[int] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        """JSON-able dict as stored in segments.json."""
        out: dict[str, Any] = {
            "name": self.name,
            "length": self.length,
            "boundaries": [int(b) for b in self.boundaries],
            "segments": [{"start": int(s), "end": int(e), "skill_type": int(k)} for s, e, k in self.segments],
            "boundary_sources": ["event" if ev else "loss" for ev in self.from_event],
            "gripper_events": [int(e) for e in self.events],
            "actions_inferred": bool(self.actions_inferred),
            "loss": [round(float(x), 4) for x in self.losses],
        }
        if self.true_boundaries is not None:
            out["true_boundaries"] = [int(b) for b in self.true_boundaries]
        return out


class Segmenter:
    """Boundary detection with a trained action predictor (see module docstring)."""

    def __init__(self, predictor: Any, params: DetectorParams, idm: Any = None, skill_types: Any = None,
                 meta: dict[str, Any] | None = None, video_params: DetectorParams | None = None) -> None:
        self.predictor = predictor
        self.params = params
        self.idm = idm
        self.skill_types = skill_types
        self.meta: dict[str, Any] = dict(meta or {})
        self.video_params = video_params
        # One-camera companion for plain videos when this segmenter's predictor sees several
        # cameras (a video is one stream): `for_video` picks it.
        self.video_segmenter: Segmenter | None = None

    def for_video(self, camera: str | None = None) -> tuple["Segmenter", str]:
        """(segmenter, camera) that segments a plain one-camera video, shot by `camera` (default:
        the camera the one-camera segmenter was trained on): this one when it sees one camera,
        else its `video_segmenter`. ValueError says what is missing."""
        cand = self if len(self.cameras) == 1 else self.video_segmenter
        if cand is None:
            raise ValueError(
                f"a video is one camera stream, but this segmenter's predictor uses cameras {list(self.cameras)} and it "
                "has no one-camera segmenter for videos; train with inverse dynamics (the default: a one-camera "
                "segmenter on the first camera comes with it) or with --cameras CAM")
        if camera is not None and camera != cand.cameras[0]:
            raise ValueError(f"videos are segmented as camera {cand.cameras[0]!r} by this segmenter, not {camera!r}")
        if cand.idm is None:
            raise ValueError("this segmenter has no inverse-dynamics model to label a video's actions (trained with --no-idm)")
        return cand, cand.cameras[0]

    def params_for(self, ep: SegEpisode | EpisodeSegments) -> DetectorParams:
        """The rule for an episode (or its segmentation): `video_params` when its actions were labelled
        by inverse dynamics (and the segmenter has them), else `params`."""
        return self.video_params if ep.actions_inferred and self.video_params is not None else self.params

    # -- properties ------------------------------------------------------------------------
    @property
    def cameras(self) -> tuple[str, ...]:
        return tuple(self.predictor.config.cameras)

    @property
    def image_size(self) -> int:
        return int(self.predictor.config.image_size)

    @property
    def uses_proprio(self) -> bool:
        return bool(self.predictor.config.proprio_dim)

    # -- per episode --------------------------------------------------------------------------
    def prepare(self, ep: SegEpisode) -> tuple[Any, np.ndarray, list[int]]:
        """(tokens, actions, gripper events) for an episode; labels actions by inverse dynamics when it has none."""
        import torch

        if ep.actions is None:
            if self.idm is None:
                raise ValueError(f"{ep.name}: no actions and this segmenter has no inverse-dynamics model to label them")
            ep.actions = self.idm.label_actions(ep.images)
            ep.actions_inferred = True
        prop = ep.proprio if self.uses_proprio else None
        if self.uses_proprio and prop is None:
            raise ValueError(
                f"{ep.name}: this segmenter's predictor uses proprioception, which a video does not have; "
                "use a segmenter trained without it (fit_segmenter(..., proprio=False))"
            )
        self.predictor.check_inputs(ep.images, prop, len(ep.actions))
        with torch.no_grad():
            tokens = self.predictor.embed(ep.images, prop)
        return tokens, np.asarray(ep.actions, dtype=np.float32), gripper_events(ep.actions)

    def detect(self, ep: SegEpisode, params: DetectorParams | None = None) -> tuple[Detection, Any, list[int]]:
        """Run the rule on one episode; returns (detection, tokens, events)."""
        tokens, actions, events = self.prepare(ep)
        det = detect_with_model(self.predictor, tokens, actions, params or self.params_for(ep), events)
        return det, tokens, events

    def segment_embeddings(self, tokens: Any, boundaries: Sequence[int]) -> np.ndarray:
        """Mean predictor feature per segment (n_segments, d_model), memory reset at each boundary."""
        import torch

        n = int(tokens.shape[0])
        with torch.no_grad():
            f = self.predictor.step_features(tokens, boundaries).numpy()
        return np.stack([f[s:e].mean(0) for s, e in segments_from_boundaries(boundaries, n)])

    def segment(self, ep: SegEpisode) -> EpisodeSegments:
        """Boundaries, typed segments and the loss curve of one episode (phases are not read)."""
        det, tokens, events = self.detect(ep)
        spans = segments_from_boundaries(det.boundaries, ep.length)
        if self.skill_types is not None:
            types = self.skill_types.assign(self.segment_embeddings(tokens, det.boundaries)).tolist()
        else:
            types = [-1] * len(spans)
        return EpisodeSegments(
            name=ep.name,
            length=ep.length,
            boundaries=list(det.boundaries),
            segments=[(s, e, int(k)) for (s, e), k in zip(spans, types)],
            losses=det.losses,
            from_event=list(det.from_event),
            true_boundaries=ep.true_boundaries,
            actions_inferred=ep.actions_inferred,
            events=events,
        )

    # -- persistence --------------------------------------------------------------------------
    def save(self, directory: str | Path) -> Path:
        """Write the segmenter folder (atomic per file)."""
        from common.atomic import atomic_write_bytes
        from policies.action_predictor_store import save_action_predictor

        d = Path(directory)
        save_action_predictor(self.predictor, d / "predictor")
        if self.idm is not None:
            from policies.inverse_dynamics import save_inverse_dynamics

            save_inverse_dynamics(self.idm, d / "idm")
        doc = {
            "format": "skillstack-segmenter",
            "version": 1,
            "detector": self.params.to_dict(),
            "video_detector": None if self.video_params is None else self.video_params.to_dict(),
            "skill_types": None if self.skill_types is None else self.skill_types.to_dict(),
            "has_idm": self.idm is not None,
            "meta": self.meta,
        }
        if self.video_segmenter is not None:
            self.video_segmenter.save(d / "video")
            doc["video_segmenter"] = "video"
        atomic_write_bytes(d / SEGMENTER_FILE, json.dumps(doc, indent=1, default=_json_default).encode())
        return d

    @classmethod
    def load(cls, directory: str | Path) -> "Segmenter":
        """Load a folder written by `save`; FileNotFoundError / ValueError name the missing or bad file."""
        from policies.action_predictor_store import load_action_predictor

        from segmentation.clustering import SkillTypes

        d = Path(directory)
        path = d / SEGMENTER_FILE
        if not path.is_file():
            raise FileNotFoundError(
                f"{path}: no segmenter here; train one with `skillstack segment --train DEMOS.hdf5 --model {d}`"
            )
        try:
            doc = json.loads(path.read_text())
        except ValueError as exc:
            raise ValueError(f"{path}: not valid JSON: {exc}") from None
        if not isinstance(doc, dict) or doc.get("format") != "skillstack-segmenter":
            raise ValueError(f"{path}: not a skillstack segmenter file")
        predictor, _ = load_action_predictor(d / "predictor")
        idm = None
        if doc.get("has_idm"):
            from policies.inverse_dynamics import load_inverse_dynamics

            idm = load_inverse_dynamics(d / "idm")
        st = doc.get("skill_types")
        video = doc.get("video_detector")  # absent in folders written before the video path had its own gap
        try:
            params = DetectorParams(**doc["detector"])
            video_params = DetectorParams(**video) if video else None
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"{path}: bad detector parameters: {exc}") from None
        seg = cls(predictor, params, idm, SkillTypes.from_dict(st) if st else None, doc.get("meta"), video_params)
        if doc.get("video_segmenter"):
            seg.video_segmenter = cls.load(d / str(doc["video_segmenter"]))
        return seg


def _proprio_dim(episodes: Sequence[SegEpisode]) -> int:
    """The proprioception width the episodes carry (it depends on the robot: 15 Panda, 14 UR5e, 17 tcp)."""
    widths = {None if ep.proprio is None else int(np.asarray(ep.proprio).shape[1]) for ep in episodes}
    if None in widths or len(widths) != 1:
        raise ValueError(f"proprio=True needs every episode's proprioception, of one width; got widths {sorted(map(str, widths))}")
    return widths.pop()


def _json_default(o: Any) -> Any:
    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    raise TypeError(f"not JSON-serialisable: {type(o).__name__}")


# ------------------------------------------------------------------------------ tuning


def tune_detector(
    predictor: Any,
    episodes: Sequence[SegEpisode],
    *,
    use_events: bool,
    reset_memory: bool | None = True,
    gaps: Sequence[float] = DEFAULT_GAPS,
    min_lens: Sequence[int] = DEFAULT_MIN_LENS,
    idle_eps: Sequence[float] = DEFAULT_IDLE_EPS,
    two_sided: bool | None = False,
    bin_tolerances: Sequence[int] = DEFAULT_BIN_TOLERANCES,
    plateau: int = DEFAULT_PLATEAU,
    gap_units: Sequence[str] | None = None,
    std_gaps: Sequence[float] = DEFAULT_STD_GAPS,
    std_priors: Sequence[float] = DEFAULT_STD_PRIORS,
    idm: Any = None,
    metric: str = "f1@5",
    tie_metric: str = "f1@2",
    beat_baseline: bool = True,
) -> tuple[DetectorParams, dict[str, float]]:
    """Grid search of (gap, min_len, idle_eps, bin_tolerance, gap unit) on validation episodes (which must carry phase labels).

    `gap_units` are the units the gap is searched in (see `detector`): "nats" over `gaps` and
    "episode_std" over `std_gaps` x `std_priors`. None: the paper's one-sided rule keeps
    nats, our two-sided rule searches both.

    A candidate is ranked by its `metric` averaged with that of the `plateau` neighbouring
    gaps on each side (same other parameters; fewer at the grid's ends), ties broken by its
    own `tie_metric`, then the larger gap. Why: a gap at the centre of a plateau of good
    validation scores holds up on new episodes better than a lone peak, which is partly the
    validation split's noise (six trainings of `bench sbd`, gap in nats: 0.897 against 0.893 on
    average on fresh episodes, up to +0.026, down 0.018 in one; see docs/segmentation.md).
    `plateau=0` ranks by the candidate's own score alone. The returned scores are the chosen
    candidate's own, plus `f"{metric}_plateau"`, the averaged score it was ranked by.

    Candidates are ranked without memory resets first (cheap, exact loss re-use); the best 10
    are then re-scored with resets (their neighbouring gaps too) when `reset_memory` is True.
    `reset_memory=None` lets validation choose: the best with and the best without resets
    compete. `two_sided=None` likewise lets the paper's one-sided rule and our two-sided rule
    compete. `bin_tolerances=(0,)` keeps the paper's exact-bin loss.

    `idm` tunes for the video path: the validation actions are replaced by the ones the
    inverse-dynamics model labels from the frames, as a video without actions would be
    segmented. Why: labelled actions are noisier than recorded ones, so their losses sit on
    another scale; the gap chosen on recorded actions missed half the boundaries on them.

    `beat_baseline`: only a rule whose own validation `metric` beats the fixed-length chopper
    (its segment length tuned on the same episodes, `baselines.tune_fixed_length`) may be
    chosen; when none does, `NoRuleBeatsBaselineError` stops the training with both figures.
    Why: a rule no better than cutting every k steps detects nothing; shipping it would hide
    that. The baseline's figures are returned as `baseline_fixed_length_<metric>` and
    `baseline_fixed_length_every`.
    """
    import torch

    if not episodes:
        raise ValueError("tune_detector: no validation episodes")
    if any(ep.phases is None for ep in episodes):
        raise ValueError("tune_detector: validation episodes need phase labels (expert demonstrations)")
    if int(plateau) < 0:
        raise ValueError(f"tune_detector: plateau must be >= 0 neighbouring gaps, got {plateau}")
    if idm is not None:
        episodes = [label_with_idm(ep, idm) for ep in episodes]
    tolerances = sorted({int(w) for w in bin_tolerances})
    if not tolerances:
        raise ValueError("tune_detector: no bin tolerances to try")
    gap_grids = {"nats": sorted({float(g) for g in gaps}), "episode_std": sorted({float(g) for g in std_gaps})}
    units = None if gap_units is None else list(dict.fromkeys(gap_units))
    for unit in units or []:
        if unit not in GAP_UNITS:
            raise ValueError(f"tune_detector: unknown gap unit {unit!r}; known: {', '.join(GAP_UNITS)}")
        if not gap_grids[unit]:
            raise ValueError(f"tune_detector: no gaps to try in {unit}")
    if units == []:
        raise ValueError("tune_detector: no gap units to try")
    seg = Segmenter(predictor, DetectorParams(0.0))
    prepared = []
    for ep in episodes:
        tokens, actions, events = seg.prepare(ep)
        with torch.no_grad():
            logits = predictor.step_logits(tokens)
            base = {w: predictor.nll(logits, actions, w).numpy().astype(np.float64) for w in tolerances}
        prepared.append((tokens, actions, events, base))
    phases = [ep.phases for ep in episodes]
    scored: dict[DetectorParams, dict[str, float]] = {}

    def score(p: DetectorParams) -> dict[str, float]:
        if p not in scored:
            preds = []
            for tokens, actions, events, base in prepared:
                losses = base[p.bin_tolerance]
                if p.reset_memory:
                    preds.append(detect_with_model(predictor, tokens, actions, p, events, base_losses=losses).boundaries)
                else:
                    preds.append(detect_boundaries(losses, p, events, actions).boundaries)
            scored[p] = evaluate_episodes(preds, phases)
        return scored[p]

    def rank_key(p: DetectorParams) -> tuple[float, float, float]:
        grid = gap_grids[p.gap_unit]
        i = grid.index(p.gap)
        window = grid[max(0, i - int(plateau)): i + int(plateau) + 1]
        smoothed = float(np.mean([score(dataclasses.replace(p, gap=g))[metric] for g in window]))
        return (smoothed, score(p)[tie_metric], p.gap)

    def candidates(two: bool) -> list[DetectorParams]:
        out = []
        for unit in units or (GAP_UNITS if two else ("nats",)):
            for prior in (std_priors if unit == "episode_std" else (1.0,)):
                out += [DetectorParams(g, int(ml), use_events, False, float(eps), two, w, unit, float(prior))
                        for w in tolerances for eps in idle_eps for ml in min_lens for g in gap_grids[unit]]
        if not out:
            raise ValueError("tune_detector: nothing to search (empty min_lens, idle_eps or std_priors)")
        return out

    every, fixed = tune_fixed_length([len(ep.phases) for ep in episodes], phases, metric=metric)
    floor = fixed[metric] if beat_baseline else -np.inf

    def beats(p: DetectorParams) -> bool:
        return score(p)[metric] > floor

    best: tuple[Any, DetectorParams] | None = None
    for two in ((False, True) if two_sided is None else (bool(two_sided),)):
        ranked = sorted(((rank_key(p), p) for p in candidates(two) if beats(p)), key=lambda x: x[0], reverse=True)
        if reset_memory is None or reset_memory:
            rescored = [(rank_key(p2), p2) for _, p in ranked[:10] for p2 in [dataclasses.replace(p, reset_memory=True)]]
            ranked = [r for r in rescored if beats(r[1])] + (ranked[:10] if reset_memory is None else [])
            if not ranked and reset_memory:  # resets were asked for and none of the best 10 beats the chopper with them
                continue
            ranked.sort(key=lambda x: x[0], reverse=True)
        if ranked and (best is None or ranked[0][0][:2] > best[0][:2]):  # gaps of the two rules are not comparable: a tie keeps the paper's
            best = ranked[0]
    if best is None:
        path = "video path (actions from inverse dynamics)" if idm is not None else "action path"
        raise NoRuleBeatsBaselineError(
            f"tune_detector: no boundary rule beats the fixed-length baseline on the {len(episodes)} validation episodes "
            f"({path}): cutting every {every} steps scores {metric} {fixed[metric]:.3f}, and no rule searched scored more. "
            f"The predictor does not separate skills yet: train it longer or on more demonstrations, or check the "
            f"validation episodes' phase labels.")
    (smoothed, _, _), params = best
    baseline = {f"baseline_fixed_length_{metric}": float(fixed[metric]), "baseline_fixed_length_every": float(every)}
    return params, {**score(params), f"{metric}_plateau": smoothed, **baseline}


class NoRuleBeatsBaselineError(ValueError):
    """Raised when validation finds no boundary rule better than fixed-length segments."""


def label_with_idm(ep: SegEpisode, idm: Any) -> SegEpisode:
    """A copy of `ep` whose actions are labelled from its frames by inverse dynamics (as for a video)."""
    return dataclasses.replace(ep, actions=np.asarray(idm.label_actions(ep.images), dtype=np.float32), actions_inferred=True)


def small_validation_tasks(val: Sequence[SegEpisode]) -> dict[str, int]:
    """{task: validation episodes} for the tasks with fewer than ADVISED_VAL_EPISODES_PER_TASK of them."""
    counts = Counter(ep.task for ep in val)
    return {t: n for t, n in sorted(counts.items()) if n < ADVISED_VAL_EPISODES_PER_TASK}


def fit_segmenter(
    train: Sequence[SegEpisode],
    val: Sequence[SegEpisode],
    *,
    cameras: Sequence[str] = ("front", "wrist"),
    image_size: int = 64,
    proprio: bool = False,
    use_events: bool = True,
    reset_memory: bool | None = None,
    two_sided: bool | None = None,
    bin_tolerance: int | None = None,
    gap_unit: str | None = None,
    epochs: int = 20,
    context: int = 16,
    idm: bool = True,
    idm_epochs: int = 8,
    skill_types: int | None = None,
    seed: int = 0,
    time_budget_s: float | None = None,
    log: Callable[[str], None] | None = None,
    predictor: Any = None,
    predictor_members: int = 1,
    beat_baseline: bool = True,
    video_camera: str | None = "auto",
) -> Segmenter:
    """Train the predictor (and inverse dynamics), tune the rule on `val`, cluster training segments into skill types.

    `predictor` skips training and reuses a trained one. `skill_types` is the number of skill
    types (None: chosen by silhouette). `reset_memory=None` lets validation decide whether the
    memory is reset at boundaries; `two_sided=None` lets it choose between the paper's
    one-sided rule and our two-sided one (see `detector`), True or False fixes the rule.
    `bin_tolerance=None` lets validation choose the loss's bin tolerance among
    `DEFAULT_BIN_TOLERANCES`, except with the paper's rule fixed (`two_sided=False`), which keeps
    the paper's exact-bin loss (0) unless a tolerance is given. `gap_unit=None` lets validation
    measure the two-sided rule's gap in nats or in the episode's loss spread ("nats" or
    "episode_std" fixes it; the paper's rule is searched in nats unless told).
    With inverse dynamics, the video path gets its own parameters, tuned the same way on
    the validation episodes with their actions labelled from the frames.
    `predictor_members` > 1 trains that many predictors from seeds seed, seed + 1, ... and
    scores their mean loss (`policies.action_predictor_ensemble`): fewer spurious peaks.
    `beat_baseline` (default on): training stops with `NoRuleBeatsBaselineError` when no rule,
    for either path, beats fixed-length segments on validation (see `tune_detector`).
    `video_camera`: with several cameras and inverse dynamics, a one-camera segmenter on this
    camera ("auto": the first) is trained too and kept as `video_segmenter`, so one segmenter
    folder serves recorded demos and plain videos; None skips it. A time budget is split
    evenly between the two.
    """
    from policies.action_predictor import ActionPredictorConfig, SequenceData
    from policies.action_predictor_ensemble import train_action_predictor_ensemble

    from segmentation.clustering import fit_skill_types

    if not train:
        raise ValueError("fit_segmenter: no training episodes")
    cam = (cameras[0] if video_camera == "auto" else video_camera) if idm and len(cameras) > 1 else None
    if cam is not None and cam not in cameras:
        raise ValueError(f"fit_segmenter: video_camera {cam!r} is not one of the cameras {list(cameras)}")
    if cam is not None and time_budget_s is not None:
        time_budget_s = time_budget_s / 2  # half for this segmenter, half for the one-camera one
    if not val:
        raise ValueError("fit_segmenter: no validation episodes (the gap is chosen on them)")
    for ep in list(train) + list(val):
        if ep.actions is None:
            raise ValueError(f"{ep.name}: training and validation episodes need recorded actions")
    t0 = time.perf_counter()
    meta: dict[str, Any] = {"train_episodes": len(train), "val_episodes": len(val), "seed": seed,
                            "train_tasks": sorted({ep.task for ep in train})}
    if predictor is None:
        a_dim = int(train[0].actions.shape[1])
        cfg = ActionPredictorConfig(cameras=tuple(cameras), image_size=image_size, action_dim=a_dim,
                                    action_low=(-1.0,) * a_dim, action_high=(1.0,) * a_dim, context=context,
                                    proprio_dim=_proprio_dim(train) if proprio else 0)
        data = [SequenceData(ep.images, ep.actions, ep.proprio if proprio else None) for ep in train]
        budget = None if time_budget_s is None else time_budget_s / max(1, int(predictor_members))  # split among members
        predictor, stats = train_action_predictor_ensemble(data, cfg, predictor_members, epochs=epochs, seed=seed,
                                                           time_budget_s=budget, log=log)
        meta["predictor_training"] = {"members": len(stats), "epochs": [len(st.train_loss) for st in stats],
                                      "final_loss": [st.train_loss[-1] for st in stats],
                                      "seconds": sum(st.seconds for st in stats)}
    if bin_tolerance is None:
        tolerances = (0,) if two_sided is False else DEFAULT_BIN_TOLERANCES
    else:
        tolerances = (int(bin_tolerance),)
    units = None if gap_unit is None else (gap_unit,)
    params, scores = tune_detector(predictor, val, use_events=use_events, reset_memory=reset_memory, two_sided=two_sided,
                                   bin_tolerances=tolerances, gap_units=units, beat_baseline=beat_baseline)
    meta["validation"] = scores
    if log:
        log(f"tuned on {len(val)} validation episodes: gap {params.gap_text} min_len {params.min_len} "
            f"bin tolerance {params.bin_tolerance} f1@5 {scores['f1@5']:.3f} (with its neighbouring gaps {scores['f1@5_plateau']:.3f})")
        few = small_validation_tasks(val)
        if few:
            log(f"note: only {', '.join(f'{n} validation episodes of {t}' for t, n in few.items())}; the rule is chosen among "
                f"thousands of candidates and with 15 per task that choice was noisy (docs/segmentation.md, 'Validation size'): "
                f"{ADVISED_VAL_EPISODES_PER_TASK} or more per task, from more demos or a larger validation fraction, steady it")
    model_idm = None
    if idm:
        from policies.inverse_dynamics import InverseDynamicsConfig, train_inverse_dynamics

        a_dim = int(train[0].actions.shape[1])
        icfg = InverseDynamicsConfig(cameras=tuple(predictor.config.cameras), image_size=predictor.config.image_size,
                                     action_dim=a_dim, action_low=(-1.0,) * a_dim, action_high=(1.0,) * a_dim)
        model_idm = train_inverse_dynamics([(ep.images, ep.actions) for ep in train], icfg, epochs=idm_epochs, seed=seed, log=log)
    video_params = None
    if model_idm is not None and not proprio:  # a video has no proprioception: no video path then
        video_params, vscores = tune_detector(predictor, val, use_events=use_events, reset_memory=reset_memory,
                                              two_sided=two_sided, bin_tolerances=tolerances, gap_units=units, idm=model_idm,
                                              beat_baseline=beat_baseline)
        meta["validation_video"] = vscores
        if log:
            log(f"video path (actions from inverse dynamics): gap {video_params.gap_text} min_len {video_params.min_len} "
                f"f1@5 {vscores['f1@5']:.3f}")
    seg = Segmenter(predictor, params, model_idm, None, meta, video_params)
    embs = []
    for ep in train:
        det, tokens, _ = seg.detect(ep)
        embs.append(seg.segment_embeddings(tokens, det.boundaries))
    seg.skill_types = fit_skill_types(np.concatenate(embs, 0), skill_types, seed=seed)
    meta["skill_types"] = seg.skill_types.k
    if cam is not None:
        if log:
            log(f"training the one-camera ({cam}) segmenter that plain videos are segmented with")
        one = [dataclasses.replace(ep, images={cam: ep.images[cam]}) for ep in (*train, *val)]
        seg.video_segmenter = fit_segmenter(
            one[: len(train)], one[len(train):], cameras=(cam,), image_size=image_size, proprio=False, use_events=use_events,
            reset_memory=reset_memory, two_sided=two_sided, bin_tolerance=bin_tolerance, gap_unit=gap_unit, epochs=epochs,
            context=context, idm=True, idm_epochs=idm_epochs, skill_types=skill_types, seed=seed, time_budget_s=time_budget_s,
            log=log, predictor_members=predictor_members, beat_baseline=beat_baseline, video_camera=None)
        meta["video_segmenter"] = {"camera": cam, "validation": seg.video_segmenter.meta.get("validation"),
                                   "validation_video": seg.video_segmenter.meta.get("validation_video")}
    meta["fit_seconds"] = time.perf_counter() - t0
    return seg
