"""Skill boundary detection: metrics, the boundary rule, baselines, clustering (pure numpy, fast)."""

from __future__ import annotations

import numpy as np
import pytest

from segmentation.baselines import fixed_length_boundaries, tune_fixed_length
from segmentation.clustering import SkillTypes, fit_skill_types, kmeans, silhouette
from segmentation.dataset import PROPRIO_DIM, gripper_events, split_episodes, true_boundaries
from segmentation.detector import DetectorParams, detect_boundaries
from segmentation.metrics import (
    boundary_counts,
    boundary_f1_interval,
    edit_score,
    evaluate_episodes,
    segment_counts,
    segments_from_boundaries,
)


def test_boundary_matching_is_one_to_one_within_tolerance():
    c = boundary_counts([10, 11, 30], [10, 20], tol=2)
    assert (c.tp, c.fp, c.fn) == (1, 2, 1)
    # a shifted detection may serve a neighbouring true boundary (maximum matching)
    c = boundary_counts([6, 9, 16], [9, 13, 16], tol=5)
    assert (c.tp, c.fp, c.fn) == (3, 0, 0) and c.f1 == 1.0
    c = boundary_counts([], [5], tol=5)
    assert c.recall == 0.0 and c.f1 == 0.0
    assert boundary_counts([], [], tol=2).f1 == 1.0
    with pytest.raises(ValueError, match="tolerance"):
        boundary_counts([1], [1], tol=-1)


def test_segments_and_segment_f1_iou():
    assert segments_from_boundaries([5, 0, 12, 99], 20) == [(0, 5), (5, 12), (12, 20)]
    true = [(0, 10), (10, 20)]
    assert segment_counts([(0, 10), (10, 20)], true, 0.5).f1 == 1.0
    over = segment_counts([(0, 4), (4, 10), (10, 20)], true, 0.5)
    assert (over.tp, over.fp, over.fn) == (2, 1, 0)  # (0,4): IoU 0.4 -> FP; (4,10): IoU 0.6 -> TP
    under = segment_counts([(0, 20)], true, 0.6)
    assert (under.tp, under.fp, under.fn) == (0, 1, 2)
    assert segment_counts([(0, 20)], true, 0.5).tp == 1  # IoU exactly 0.5 counts (>=)
    # a true segment is matched once: the second overlapping prediction is a false positive
    twice = segment_counts([(0, 9), (0, 10)], true, 0.5)
    assert (twice.tp, twice.fp, twice.fn) == (1, 1, 1)


def test_edit_score_penalises_split_segments():
    phases = np.array([0] * 5 + [1] * 5 + [2] * 5)
    assert edit_score(segments_from_boundaries([5, 10], 15), phases) == 100.0
    split = edit_score(segments_from_boundaries([3, 5, 10], 15), phases)
    assert split == pytest.approx(75.0)  # one insertion over 4 segments
    merged = edit_score(segments_from_boundaries([5], 15), phases)
    assert merged == pytest.approx(100 * (1 - 1 / 3))


def test_evaluate_episodes_keys_and_perfect_score():
    phases = [np.array([0] * 4 + [1] * 6 + [0] * 3)]
    r = evaluate_episodes([[4, 10]], phases)
    for k in ("f1@2", "f1@5", "precision@5", "recall@2", "seg_f1@0.10", "seg_f1@0.25", "seg_f1@0.50", "edit"):
        assert r[k] == pytest.approx(100.0 if k == "edit" else 1.0)
    assert r["n_true"] == 2 and r["n_pred"] == 2
    with pytest.raises(ValueError, match="predictions for"):
        evaluate_episodes([[1]], [])


def test_f1_interval_brackets_the_score_and_narrows_with_more_episodes():
    phases = np.array([0] * 10 + [1] * 10 + [2] * 10)  # true boundaries 10 and 20
    hit, miss = [10, 20], [10, 27]  # one episode kind finds both, the other one of two plus a false one
    few = ([hit, miss] * 5, [phases] * 10)
    many = ([hit, miss] * 50, [phases] * 100)
    f1 = evaluate_episodes(*few)["f1@5"]
    lo, hi = boundary_f1_interval(*few)
    assert lo < f1 < hi
    lo_m, hi_m = boundary_f1_interval(*many)
    assert lo_m <= f1 <= hi_m and hi_m - lo_m < (hi - lo) / 2
    assert boundary_f1_interval([hit] * 4, [phases] * 4) == (1.0, 1.0)  # every resample perfect
    assert boundary_f1_interval(*few, seed=3) == boundary_f1_interval(*few, seed=3)
    with pytest.raises(ValueError, match="predictions for"):
        boundary_f1_interval([hit], [phases, phases])


def test_rule_fires_on_gap_over_running_mean_and_resets():
    losses = [1.0, 1.0, 1.0, 9.0, 1.0, 1.0, 1.0, 1.0, 6.0, 1.0]
    d = detect_boundaries(losses, DetectorParams(gap=3.0, min_len=2))
    # t=3: 9 - mean(1,1,1,9)=9-3=6 > 3; reset list at 3 -> t=8: 6 - mean(9,1,1,1,1,6)=6-3.17 < 3: no
    assert d.boundaries == [3]
    d = detect_boundaries(losses, DetectorParams(gap=2.0, min_len=2))
    assert d.boundaries == [3, 8]
    # min_len blocks a boundary too soon after the previous one
    d = detect_boundaries([1, 9, 1, 9, 1], DetectorParams(gap=1.0, min_len=3))
    assert d.boundaries == [3]  # the peak at t=1 is only 1 step after the start
    d = detect_boundaries([1, 9, 1, 9, 1], DetectorParams(gap=1.0, min_len=1))
    assert d.boundaries == [1, 3]
    with pytest.raises(ValueError, match="NaN"):
        detect_boundaries([1.0, float("nan")], DetectorParams(gap=1.0))
    with pytest.raises(ValueError, match="min_len"):
        DetectorParams(gap=1.0, min_len=0)


def test_events_are_boundaries_and_snap_close_loss_boundaries():
    losses = [1.0] * 20
    losses[6] = 9.0
    p = DetectorParams(gap=3.0, min_len=4, use_events=True)
    d = detect_boundaries(losses, p, events=[8, 15])
    assert d.boundaries == [8, 15] and d.from_event == [True, True]  # loss peak at 6 snapped onto the event at 8
    d = detect_boundaries(losses, DetectorParams(gap=3.0, min_len=4, use_events=False), events=[8, 15])
    assert d.boundaries == [6] and d.from_event == [False]


def test_gripper_events_and_true_boundaries():
    a = np.zeros((8, 4))
    a[:, 3] = [1, 1, -1, -1, -1, 1, 1, 1]
    assert gripper_events(a) == [2, 5]
    assert true_boundaries([0, 0, 1, 1, 2, 0]) == [2, 4, 5]
    with pytest.raises(ValueError, match="actions must be"):
        gripper_events(np.zeros(4))


def test_proprio_dim_matches_observation_layout():
    from envs.observation import ROBOT_FIELDS

    assert PROPRIO_DIM == sum(n for _, n in ROBOT_FIELDS)


def test_split_is_seeded_and_disjoint():
    a, b, c = split_episodes(list(range(20)), [0.5, 0.25, 0.25], seed=3)
    assert sorted(a + b + c) == list(range(20)) and (len(a), len(b), len(c)) == (10, 5, 5)
    assert split_episodes(list(range(20)), [0.5, 0.5], seed=3)[0] == split_episodes(list(range(20)), [0.5, 0.5], seed=3)[0]
    with pytest.raises(ValueError, match="fractions"):
        split_episodes([1, 2], [0.8, 0.8])


def test_fixed_length_baseline_tuned_on_validation():
    assert fixed_length_boundaries(10, 3) == [3, 6, 9]
    phases = [np.repeat(np.arange(5), 7)]  # boundaries every 7 steps
    every, scores = tune_fixed_length([35], phases)
    assert every == 7 and scores["f1@2"] == 1.0
    with pytest.raises(ValueError):
        fixed_length_boundaries(10, 0)


def test_kmeans_finds_separated_clusters_and_skill_types_assign():
    rng = np.random.default_rng(0)
    x = np.concatenate([rng.normal(0, 0.1, (30, 3)), rng.normal(5, 0.1, (30, 3)), rng.normal([0, 5, 0], 0.1, (30, 3))])
    cent, labels, _ = kmeans(x, 3, seed=1)
    assert len(set(labels[:30])) == len(set(labels[30:60])) == len(set(labels[60:])) == 1
    assert len(set(labels)) == 3
    assert silhouette(x, labels) > 0.9
    st = fit_skill_types(x, None, seed=0)  # k by silhouette
    assert st.k == 3
    st2 = SkillTypes.from_dict(st.to_dict())
    assert (st2.assign(x) == st.assign(x)).all()
    with pytest.raises(ValueError, match="features"):
        st.assign(np.zeros((1, 5)))


def test_no_action_steps_are_dropped_before_scoring():
    from segmentation.detector import idle_steps

    acts = np.zeros((10, 4))
    acts[:6, 0] = 0.8  # moving, then holding still from t=6
    acts[:, 3] = 1.0
    acts[8, 3] = -1.0  # a gripper change is an action even without motion
    assert idle_steps(acts, 0.05).tolist() == [False] * 6 + [True, True, False, False]
    assert not idle_steps(acts, 0.0).any()
    losses = [1.0] * 10
    losses[7] = 9.0  # a loss peak while the robot holds still
    kept = detect_boundaries(losses, DetectorParams(gap=3.0, min_len=2), actions=acts)
    dropped = detect_boundaries(losses, DetectorParams(gap=3.0, min_len=2, idle_eps=0.05), actions=acts)
    assert kept.boundaries == [7] and dropped.boundaries == []
    with pytest.raises(ValueError, match="needs the actions"):
        detect_boundaries(losses, DetectorParams(gap=3.0, idle_eps=0.05))


def test_two_sided_rule_also_fires_on_a_fall_to_a_lower_loss_level():
    losses = [8.0] * 6 + [2.0] * 6  # the next skill is more predictable: the loss drops
    one = detect_boundaries(losses, DetectorParams(gap=3.0, min_len=2))
    two = detect_boundaries(losses, DetectorParams(gap=3.0, min_len=2, two_sided=True))
    assert one.boundaries == [] and two.boundaries == [6]


def test_gap_in_episode_std_is_the_gap_times_the_spread_of_the_losses_so_far():
    # t=5 after five losses of 1: spread sqrt((0 + 5 * 2**2) / (5 + 5)) = sqrt(2); gap 2 -> threshold 2.83;
    # the excess of x over the mean of the six is 5 (x - 1) / 6
    p = DetectorParams(gap=2.0, min_len=1, gap_unit="episode_std", std_prior=2.0)
    assert detect_boundaries([1.0] * 5 + [4.3], p).boundaries == []  # excess 2.75
    assert detect_boundaries([1.0] * 5 + [4.5], p).boundaries == [5]  # excess 2.92
    assert p.gap_text == "2 sd (prior 2 nats)" and DetectorParams(gap=1.5).gap_text == "1.5 nats"
    for bad in ({"gap_unit": "sd"}, {"gap_unit": "episode_std", "std_prior": 0.0}, {"std_prior": float("nan")}):
        with pytest.raises(ValueError, match="gap_unit|std_prior"):
            DetectorParams(gap=1.0, **bad)


def test_gap_in_episode_std_follows_the_loss_scale_where_a_gap_in_nats_does_not():
    rng = np.random.default_rng(0)
    losses = rng.normal(5.0, 0.4, 80)
    losses[40:] += 3.0  # the next skill is less predictable
    in_sd = DetectorParams(gap=3.0, min_len=3, two_sided=True, gap_unit="episode_std", std_prior=0.5)
    in_nats = DetectorParams(gap=1.5, min_len=3, two_sided=True)
    for scale in (1.0, 3.0):  # the same episode, its losses three times as spread (a noisier task)
        sd = detect_boundaries(losses * scale, DetectorParams(**{**in_sd.to_dict(), "std_prior": 0.5 * scale}))
        assert sd.boundaries == [40], scale
    assert detect_boundaries(losses, in_nats).boundaries == [40]
    assert len(detect_boundaries(losses * 3.0, in_nats).boundaries) > 1  # the noise alone crosses 1.5 nats


def test_segment_cli_offers_exactly_the_detectors_gap_units():
    from segmentation.detector import GAP_UNITS
    from skillstack.cli import build_parser

    parser = build_parser()
    segment = next(a for a in parser._actions if a.dest == "command").choices["segment"]
    gap_unit = next(a for a in segment._actions if a.dest == "gap_unit")
    assert tuple(gap_unit.choices) == ("auto", *GAP_UNITS)


def test_predictor_proprio_width_comes_from_the_episodes():
    """A segmenter trained with proprioception sizes its predictor from the episodes (14 for a
    UR5e file, 15 for a Panda one), and refuses a mix of widths or episodes without it."""
    import numpy as np
    import pytest

    from segmentation.dataset import SegEpisode
    from segmentation.segmenter import _proprio_dim

    def ep(width):
        return SegEpisode("e", {"front": np.zeros((3, 8, 8, 3), np.uint8)}, proprio=None if width is None else np.zeros((3, width)))

    assert _proprio_dim([ep(14), ep(14)]) == 14 and _proprio_dim([ep(15)]) == 15
    with pytest.raises(ValueError, match="one width"):
        _proprio_dim([ep(14), ep(15)])
    with pytest.raises(ValueError, match="every episode's proprioception"):
        _proprio_dim([ep(14), ep(None)])
