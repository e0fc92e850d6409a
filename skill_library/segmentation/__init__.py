"""Skill boundary detection (SBD) in unsegmented demonstrations, and segments to skills.

Pipeline (see README "Skill boundary detection"):

1. `dataset`: episodes from demonstration HDF5 files (frames, actions, proprioception,
   phase labels for evaluation only) or plain mp4 videos.
2. `policies.action_predictor`: causal, unconditional action predictor trained by
   behaviour cloning; loss_t = -log p(a_t | o_<=t). `policies.inverse_dynamics` labels the
   actions of a video.
3. `detector`: boundary when loss_t - mean(losses since the last boundary) > gap, memory
   reset, minimum segment length, optional gripper open/close events (loss+info).
4. `segmenter`: `fit_segmenter` (train, choose the gap on a validation split, cluster
   skill types) and `Segmenter` (segment an episode; save/load a folder).
5. `metrics` / `baselines`: boundary P/R/F1 @±2/±5, segment F1@IoU, edit score; fixed-length
   and gripper-event-only baselines.
6. `skills`: one BC skill per (skill type, task) into the skill library; `io` (segments.json)
   and `plots` (loss curve PNG).

Public names are imported lazily.
"""

from __future__ import annotations

from skill_library._lazy import lazy_exports

_EXPORTS = {
    "SegEpisode": "skill_library.segmentation.dataset",
    "load_episodes": "skill_library.segmentation.dataset",
    "load_hdf5_episodes": "skill_library.segmentation.dataset",
    "load_mp4_episode": "skill_library.segmentation.dataset",
    "split_episodes": "skill_library.segmentation.dataset",
    "true_boundaries": "skill_library.segmentation.dataset",
    "gripper_events": "skill_library.segmentation.dataset",
    "DetectorParams": "skill_library.segmentation.detector",
    "detect_boundaries": "skill_library.segmentation.detector",
    "detect_with_model": "skill_library.segmentation.detector",
    "evaluate_episodes": "skill_library.segmentation.metrics",
    "boundary_counts": "skill_library.segmentation.metrics",
    "segment_counts": "skill_library.segmentation.metrics",
    "edit_score": "skill_library.segmentation.metrics",
    "segments_from_boundaries": "skill_library.segmentation.metrics",
    "fixed_length_boundaries": "skill_library.segmentation.baselines",
    "gripper_event_boundaries": "skill_library.segmentation.baselines",
    "tune_fixed_length": "skill_library.segmentation.baselines",
    "Segmenter": "skill_library.segmentation.segmenter",
    "EpisodeSegments": "skill_library.segmentation.segmenter",
    "fit_segmenter": "skill_library.segmentation.segmenter",
    "tune_detector": "skill_library.segmentation.segmenter",
    "label_with_idm": "skill_library.segmentation.segmenter",
    "SkillTypes": "skill_library.segmentation.clustering",
    "fit_skill_types": "skill_library.segmentation.clustering",
    "build_segment_skills": "skill_library.segmentation.skills",
    "write_segments": "skill_library.segmentation.io",
    "read_segments": "skill_library.segmentation.io",
    "plot_segments": "skill_library.segmentation.plots",
}

__all__ = sorted(_EXPORTS)


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, globals())
