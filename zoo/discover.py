"""Videos to library skills in one call: segment, cluster into skill types, behaviour-clone per type, publish.

    from zoo.discover import discover
    report = discover(["pp.hdf5", "clip.mp4"], "my_library")    # what `skillstack discover` runs

The input is video alone: an mp4, or a recorded demo file whose camera frames are read and whose
recorded actions are thrown away: the segmenter's inverse-dynamics model labels every action
from the frames (`segmentation.label_with_idm`). A demo file still carries the simulator states
and low-dimensional observations of each frame; those are what a skill is fitted on (the
policy's input) and what its preconditions and effects are read from. A plain mp4 has neither,
so it is segmented, typed and clipped, but teaches no skill (the report says so).

Steps: (1) segment every episode with the default segmenter (its video rule); (2) cluster the
segments' embeddings into skill types (`segmentation.fit_skill_types`, k by silhouette) over
these videos; (3) one example clip per skill type; (4) `segmentation.build_segment_skills`:
behaviour cloning per skill type and task, preconditions and effects from the segments' start
and end states, descriptors (each skill's own success), published into the library;
(5) optionally the composed tasks' success with the library's learned skills.
"""

from __future__ import annotations

import copy
import json
import os
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["DiscoverReport", "discover", "load_video_episodes", "run_learned"]

CLIP_SCALE = 4  # the segmenter's frames are small (64 px): clips are upscaled to be watchable
MIN_SEGMENTS_TO_RECLUSTER = 8


@dataclass
class DiscoverReport:
    """What `discover` found and built (also written as `discover.json` in the report folder)."""

    videos: list[dict[str, Any]] = field(default_factory=list)  # per episode: name, source, frames, segments, skill types
    skill_types: int = 0
    types: list[dict[str, Any]] = field(default_factory=list)  # per type: segments, mean length, example clip
    skills: list[dict[str, Any]] = field(default_factory=list)  # per skill: ref, type, task, runs, predicates, success
    composed: dict[str, float] = field(default_factory=dict)  # task -> success with the library's learned skills
    notes: list[str] = field(default_factory=list)
    report: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def load_video_episodes(path: str | os.PathLike[str], segmenter: Any) -> list[Any]:
    """Episodes of one input as video: an mp4 (one episode), or a demo file's camera frames with their
    recorded actions replaced by the segmenter's inverse-dynamics labels."""
    from segmentation import label_with_idm, load_hdf5_episodes, load_mp4_episode

    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"{p}: no such file")
    if len(segmenter.cameras) != 1:
        raise ValueError(f"this segmenter reads cameras {list(segmenter.cameras)}; discovery from video needs a one-camera segmenter")
    if segmenter.idm is None:
        raise ValueError("this segmenter has no inverse-dynamics model: it cannot label the actions of a video")
    if p.suffix.lower() == ".mp4":
        return [load_mp4_episode(p, segmenter.cameras[0], segmenter.image_size)]
    return [label_with_idm(ep, segmenter.idm) for ep in load_hdf5_episodes(p, segmenter.cameras, segmenter.image_size)]


def run_learned(task: str, library: Any, episodes: int, seed: int = 10_000) -> float:
    """Success rate of `task` composed from the library's learned skills only (0 when no plan exists)."""
    from planning import run_task

    try:
        return round(float(run_task(task, library=library, kinds="learned", episodes=episodes, seed=seed,
                                    adapt=False)["summary"]["success_rate"]), 3)
    except ValueError:  # no learned skill can plan the task
        return 0.0


def _load_segmenter(segmenter: Any, verify: bool) -> Any:
    from segmentation import Segmenter
    from segmentation.api import default_model_dir

    if segmenter is not None and not isinstance(segmenter, (str, os.PathLike)):
        return segmenter
    folder = Path(segmenter) if segmenter is not None else default_model_dir()
    if verify and (folder / "signature.json").is_file():
        from zoo.signing import verify_tree

        verify_tree(folder, project_only=False)
    return Segmenter.load(folder)


def _write_clip(ep: Any, start: int, end: int, path: Path) -> str:
    import cv2

    from common.video import write_mp4

    frames = next(iter(ep.images.values()))[start:end]
    big = [cv2.resize(np.asarray(f), None, fx=CLIP_SCALE, fy=CLIP_SCALE, interpolation=cv2.INTER_NEAREST) for f in frames]
    return str(write_mp4(big, path, fps=10.0))


def discover(
    inputs: Sequence[str | os.PathLike[str]],
    library: Any,
    *,
    segmenter: Any = None,
    report_dir: str | os.PathLike[str] | None = None,
    seed: int = 0,
    bc_epochs: int = 150,
    evaluate: bool = True,
    grid: int = 2,
    episodes_per_cell: int = 2,
    min_segments: int = 10,
    recluster: bool = True,
    clips: bool = True,
    composed_tasks: Sequence[str] = (),
    composed_episodes: int = 10,
    progress: bool = True,
    log: Callable[[str], None] | None = None,
    verify_segmenter: bool = True,
) -> DiscoverReport:
    """Discover skills in `inputs` (mp4 videos and/or demo files read as video) and publish them into `library`.

    `segmenter`: a `Segmenter`, its folder, or None for the default one ($SKILLSTACK_SEGMENTER,
    else ~/.skillstack/segmenter: `skillstack zoo install` puts the zoo's there); a folder that
    carries a zoo signature is verified first. `recluster`: fit the skill types on these videos'
    segments (else keep the segmenter's). `report_dir` (default: next to the library, `discover-report/`)
    gets `discover.json` and, with `clips`, one example mp4 per skill type. `composed_tasks`: tasks
    (e.g. "pick-place") run with the library's learned skills afterwards. Returns the report.
    """
    from tqdm import tqdm

    from segmentation import fit_skill_types
    from segmentation.skills import build_segment_skills

    if not inputs:
        raise ValueError("nothing to discover from: give mp4 videos or recorded demo files")
    seg = copy.copy(_load_segmenter(segmenter, verify_segmenter))
    lib_path = Path(library if isinstance(library, (str, os.PathLike)) else library.root)
    out = Path(report_dir) if report_dir is not None else lib_path.parent / "discover-report"
    out.mkdir(parents=True, exist_ok=True)
    say = log or (lambda msg: None)
    report = DiscoverReport()
    steps = ["read"] * len(inputs) + ["segment", "cluster", "clips", "skills", *(["compose"] * len(composed_tasks))]
    bar = tqdm(total=len(steps), desc="discover", unit="step", disable=not progress)
    episodes: list[tuple[str, Any]] = []
    for path in inputs:
        bar.set_postfix_str(Path(path).name)
        episodes += [(str(path), ep) for ep in load_video_episodes(path, seg)]
        bar.update()
    # 1-2: segment, then cluster these videos' segments into skill types
    detections = []
    for _, ep in episodes:
        det, tokens, _ = seg.detect(ep)
        detections.append(seg.segment_embeddings(tokens, det.boundaries))
    bar.update()
    n_segments = sum(len(d) for d in detections)
    if recluster and n_segments >= MIN_SEGMENTS_TO_RECLUSTER:
        seg.skill_types = fit_skill_types(np.concatenate(detections, 0), None, seed=seed)
    elif recluster:
        report.notes.append(f"{n_segments} segments are too few to cluster: the segmenter's own skill types are used")
    if seg.skill_types is None:
        raise ValueError("the segmenter has no skill types and the videos hold too few segments to cluster")
    report.skill_types = int(seg.skill_types.k)
    results = [seg.segment(ep) for _, ep in episodes]
    bar.update()
    for (src, ep), res in zip(episodes, results):
        report.videos.append({"name": ep.name, "source": src, "frames": int(ep.length), "segments": len(res.segments),
                              "types": [int(k) for _, _, k in res.segments], "teaches_skills": ep.states is not None})
    # 3: one example clip per skill type (its longest segment)
    for k in range(report.skill_types):
        found = [(e - s, i, s, e) for i, r in enumerate(results) for s, e, t in r.segments if t == k]
        entry: dict[str, Any] = {"type": k, "segments": len(found),
                                 "mean_length": round(float(np.mean([f[0] for f in found])), 1) if found else 0.0, "clip": None}
        if clips and found:
            _, i, s, e = max(found)
            entry["clip"] = _write_clip(episodes[i][1], s, e, out / f"type{k}.mp4")
        report.types.append(entry)
    bar.update()
    # 4: behaviour cloning per skill type, predicates from the segments' states, published
    with_states = [ep for _, ep in episodes if ep.states is not None]
    if len(with_states) < len(episodes):
        report.notes.append(f"{len(episodes) - len(with_states)} episode(s) are plain videos with no simulator states: "
                            "segmented and typed, but no skill is fitted on them")
    built = build_segment_skills(seg, with_states, library, min_segments=min_segments, evaluate=evaluate, grid=grid,
                                 episodes_per_cell=episodes_per_cell, bc_epochs=bc_epochs, seed=seed, log=say) if with_states else []
    report.skills = [{"ref": b.ref, "types": b.type_label, "task": b.env_id, "runs": b.segments,
                      "preconditions": list(b.preconditions), "effects": list(b.effects),
                      "success": None if b.success_rate is None else round(float(b.success_rate), 3)} for b in built]
    bar.update()
    for task in composed_tasks:
        report.composed[task] = run_learned(task, library, composed_episodes)
        bar.update()
    bar.close()
    from common.atomic import atomic_write_bytes

    path = out / "discover.json"
    atomic_write_bytes(path, json.dumps(report.to_dict(), indent=1).encode())
    report.report = str(path)
    return report
