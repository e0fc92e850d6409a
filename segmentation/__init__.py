"""Skill boundary detection (SBD) in unsegmented demonstrations, and segments to skills.

Pipeline (see docs/segmentation.md):

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

from common.lazy import lazy_exports

_EXPORTS = {
    "SegEpisode": "segmentation.dataset",
    "load_episodes": "segmentation.dataset",
    "load_hdf5_episodes": "segmentation.dataset",
    "load_mp4_episode": "segmentation.dataset",
    "split_episodes": "segmentation.dataset",
    "true_boundaries": "segmentation.dataset",
    "gripper_events": "segmentation.dataset",
    "DetectorParams": "segmentation.detector",
    "detect_boundaries": "segmentation.detector",
    "detect_with_model": "segmentation.detector",
    "evaluate_episodes": "segmentation.metrics",
    "boundary_counts": "segmentation.metrics",
    "segment_counts": "segmentation.metrics",
    "edit_score": "segmentation.metrics",
    "segments_from_boundaries": "segmentation.metrics",
    "fixed_length_boundaries": "segmentation.baselines",
    "gripper_event_boundaries": "segmentation.baselines",
    "tune_fixed_length": "segmentation.baselines",
    "Segmenter": "segmentation.segmenter",
    "EpisodeSegments": "segmentation.segmenter",
    "fit_segmenter": "segmentation.segmenter",
    "tune_detector": "segmentation.segmenter",
    "NoRuleBeatsBaselineError": "segmentation.segmenter",
    "label_with_idm": "segmentation.segmenter",
    "SkillTypes": "segmentation.clustering",
    "fit_skill_types": "segmentation.clustering",
    "build_segment_skills": "segmentation.skills",
    "write_segments": "segmentation.io",
    "read_segments": "segmentation.io",
    "plot_segments": "segmentation.plots",
}

__all__ = sorted(_EXPORTS)


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, globals())
