"""File-level entry points used by `skillstack segment`: train a segmenter from demo files, segment files.

    from segmentation.api import train_segmenter, segment_files
    seg = train_segmenter(["pp.hdf5", "stack.hdf5"], "runs/segmenter")
    result = segment_files(seg, ["held_out.hdf5", "demo_0.mp4"], out="segments.json", plot="segments.png")
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from segmentation.dataset import SegEpisode, load_hdf5_episodes, load_mp4_episode, split_episodes

__all__ = ["SegmentRun", "default_model_dir", "segment_files", "train_segmenter"]


def default_model_dir() -> Path:
    """$SKILLSTACK_SEGMENTER, else ~/.skillstack/segmenter."""
    env = os.environ.get("SKILLSTACK_SEGMENTER")
    return Path(env) if env else Path.home() / ".skillstack" / "segmenter"


def train_segmenter(
    demo_files: Sequence[str | Path],
    model_dir: str | Path,
    *,
    cameras: Sequence[str] = ("front", "wrist"),
    image_size: int = 64,
    val_fraction: float = 0.2,
    epochs: int = 20,
    use_events: bool = True,
    two_sided: bool | None = None,
    bin_tolerance: int | None = None,
    gap_unit: str | None = None,
    idm: bool = True,
    proprio: bool = False,
    skill_types: int | None = None,
    seed: int = 0,
    predictor_members: int = 1,
    log: Callable[[str], None] | None = None,
    beat_baseline: bool = True,
) -> Any:
    """Train on expert demo files (episodes split train/validation by `val_fraction`) and save to `model_dir`.

    `predictor_members` > 1 trains that many action predictors from consecutive seeds and
    scores their mean loss (`bench sbd` measures what that buys: on freshly recorded demos, no more than one).
    `two_sided` None lets validation choose the rule, `bin_tolerance` None the loss's bin tolerance,
    `gap_unit` None the gap's unit (see `fit_segmenter`). `beat_baseline` False keeps a rule
    no better than fixed-length cuts instead of stopping (for smoke runs only)."""
    from segmentation.segmenter import fit_segmenter

    if not demo_files:
        raise ValueError("no demonstration files to train on")
    if int(predictor_members) < 1:
        raise ValueError(f"predictor_members must be >= 1, got {predictor_members}")
    if not 0.0 < val_fraction < 1.0:
        raise ValueError(f"val_fraction must be in (0, 1), got {val_fraction}")
    episodes: list[SegEpisode] = []
    for f in demo_files:
        if Path(f).suffix.lower() == ".mp4":
            raise ValueError(f"{f}: training needs demonstration HDF5 files with actions and phase labels, not video")
        episodes += load_hdf5_episodes(f, cameras, image_size, proprio=proprio)
    val, train = split_episodes(episodes, [val_fraction, 1.0 - val_fraction], seed=seed)
    if not val or not train:
        raise ValueError(f"{len(episodes)} episode(s) are too few to split into training and validation")
    seg = fit_segmenter(train, val, cameras=cameras, image_size=image_size, proprio=proprio, use_events=use_events,
                        two_sided=two_sided, bin_tolerance=bin_tolerance, gap_unit=gap_unit, epochs=epochs, idm=idm,
                        skill_types=skill_types, seed=seed, predictor_members=predictor_members, log=log,
                        beat_baseline=beat_baseline)
    seg.meta["train_files"] = [str(f) for f in demo_files]
    seg.save(model_dir)
    return seg


@dataclass
class SegmentRun:
    """What `segment_files` produced: per-episode results, frames segmented, seconds, where files went."""

    episodes: list[Any]
    frames: int
    seconds: float
    out: Path | None
    plot: Path | None

    @property
    def frames_per_second(self) -> float:
        return self.frames / self.seconds if self.seconds > 0 else 0.0


def segment_files(
    segmenter: Any,
    inputs: Sequence[str | Path],
    *,
    out: str | Path | None = None,
    plot: str | Path | None = None,
    video_camera: str | None = None,
    episodes: Sequence[int] | None = None,
    plot_episodes: int = 4,
) -> SegmentRun:
    """Segment HDF5 demo files (all or `episodes`) and/or mp4 videos; write segments.json and a PNG plot.

    Videos are segmented by the segmenter's one-camera segmenter (itself when it has one
    camera, else its `video_segmenter`, see `Segmenter.for_video`), read as that camera
    (`video_camera` names it when needed); their actions are labelled by its
    inverse-dynamics model first.
    """
    from segmentation.io import write_segments
    from segmentation.plots import plot_segments

    if not inputs:
        raise ValueError("nothing to segment: give an HDF5 demo file or an mp4 video")
    results: list[Any] = []
    phase_names: list[Any] = []
    frames = 0
    seconds = 0.0
    for path in inputs:
        p = Path(path)
        seg = segmenter
        if p.suffix.lower() == ".mp4":
            try:
                seg, cam = segmenter.for_video(video_camera)
            except ValueError as exc:
                raise ValueError(f"{p}: {exc}") from None
            eps = [load_mp4_episode(p, cam, seg.image_size)]
        else:
            eps = load_hdf5_episodes(p, segmenter.cameras, segmenter.image_size, episodes, proprio=segmenter.uses_proprio)
        for ep in eps:
            t0 = time.perf_counter()
            res = seg.segment(ep)
            seconds += time.perf_counter() - t0
            frames += ep.length
            results.append(res)
            phase_names.append(
                [ep.phase_names[int(ep.phases[s])] for s in [0, *res.true_boundaries]]
                if ep.phases is not None and ep.phase_names and res.true_boundaries is not None else None
            )
    video = segmenter.video_params
    meta = {"sources": [str(p) for p in inputs], "detector": segmenter.params.to_dict(),
            "video_detector": None if video is None else video.to_dict(), "cameras": list(segmenter.cameras),
            "image_size": segmenter.image_size, "skill_types": None if segmenter.skill_types is None else segmenter.skill_types.k}
    out_path = write_segments(out, results, meta) if out else None
    plot_path = None
    if plot:
        # the title names a gap only when one applies to every episode drawn (video has its own)
        gaps = {segmenter.params_for(r).gap_text for r in results[:plot_episodes]}
        plot_path = plot_segments(results, plot, max_episodes=plot_episodes, gap=gaps.pop() if len(gaps) == 1 else None,
                                  title=", ".join(Path(p).name for p in inputs), phase_names=phase_names)
    return SegmentRun(results, frames, seconds, Path(out_path) if out_path else None, plot_path)
