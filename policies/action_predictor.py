"""Causal action-prediction model for skill boundary detection (SBD).

An unconditional behaviour-cloning model: no task, goal or phase input. At step t it
sees the camera frames (and optionally the robot's proprioception) of at most the last
`context` steps o_{t-K+1..t} and outputs a distribution over the action a_t, discretised
per dimension into `n_bins` bins, so that

    loss_t = -log p(a_t | o_<=t) = sum_d -log p_d(bin_d(a_t) | o_<=t)      (nats)

is defined. Skill boundary detection watches this loss (see
`segmentation.detector`).

Architecture (all sizes are fields of `ActionPredictorConfig`):

- per camera a small CNN (strided convolutions) ending in a spatial softmax that turns
  each of `keypoints` feature maps into an expected (x, y) image position, plus the
  globally averaged last feature maps;
- the keypoints of all cameras (plus proprioception, when used) are projected to one
  token per step;
- a causal transformer over the tokens: query t attends to keys t-K+1..t of the same
  *segment* only (a relative-position bias per head and distance), so after a detected
  boundary the "memory" is reset just by starting a new segment, as in the SBD paper;
- a linear head with `action_dim x n_bins` logits.

Training (`train_action_predictor`) is behaviour cloning on unsegmented episodes: random
windows, random segment resets inside them (so the model also knows short contexts),
cross-entropy against Gaussian-smoothed bin targets, random-shift image augmentation.

Weights are saved as safetensors with the config as JSON (`save_single_predictor` /
`load_single_predictor`; `policies.action_predictor_store` dispatches single or ensemble):
nothing on the load path unpickles.

This module is the action predictor's public import path; the code lives in
`action_predictor_model` (config, model, one model's files), `action_predictor_training`
(the training loop), `sbd_layers` (camera encoder, attention block) and `sbd_inputs`
(action bins, frame tensors, augmentation, segment ids), all re-exported here.
"""

from __future__ import annotations

from policies.action_predictor_model import (
    CONFIG_FILE,
    WEIGHTS_FILE,
    ActionPredictor,
    ActionPredictorConfig,
    EpisodeScoring,
    load_single_predictor,
    read_predictor_meta,
    remove_member_dirs,
    save_single_predictor,
)
from policies.action_predictor_training import SequenceData, TrainStats, mean_episode_loss, train_action_predictor
from policies.sbd_inputs import augment_shift, bin_centres, discretize_actions, images_to_tensor, segment_ids_from_boundaries
from policies.sbd_layers import KeypointEncoder, SpatialSoftmax

__all__ = [
    "CONFIG_FILE",
    "WEIGHTS_FILE",
    "ActionPredictor",
    "ActionPredictorConfig",
    "EpisodeScoring",
    "KeypointEncoder",
    "SequenceData",
    "SpatialSoftmax",
    "TrainStats",
    "augment_shift",
    "bin_centres",
    "discretize_actions",
    "images_to_tensor",
    "load_single_predictor",
    "mean_episode_loss",
    "read_predictor_meta",
    "remove_member_dirs",
    "save_single_predictor",
    "segment_ids_from_boundaries",
    "train_action_predictor",
]
