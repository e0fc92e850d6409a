"""Skill boundary detection end to end on real recorded demos: fit, save/load, segment HDF5 and mp4, CLI, skills."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest
import torch

torch.set_num_threads(1)
CAM, SIZE = "wrist", 32
FIT_LOG: list[str] = []  # what `fitted`'s fit_segmenter logged


@pytest.fixture(scope="module")
def demos(tmp_path_factory):
    from demos import record_demos

    path = tmp_path_factory.mktemp("sbd") / "pp.hdf5"
    record_demos("skillstack/PandaPickPlace-v0", "expert", episodes=8, out=path, seed=0, cameras=[CAM],
                 image_size=SIZE, durable=False, progress=False)
    return path


@pytest.fixture(scope="module")
def fitted(demos, tmp_path_factory):
    from segmentation import fit_segmenter, load_hdf5_episodes

    eps = load_hdf5_episodes(demos, [CAM], SIZE)
    seg = fit_segmenter(eps[:6], eps[6:], cameras=(CAM,), image_size=SIZE, epochs=2, context=8, idm=True,
                        idm_epochs=1, skill_types=3, seed=0, predictor_members=2,  # the ensemble path throughout
                        log=FIT_LOG.append,
                        beat_baseline=False)  # plumbing, not quality: 2 epochs on 6 demos need not beat the chopper
    out = tmp_path_factory.mktemp("model") / "segmenter"
    seg.save(out)
    return seg, out, eps


def test_dataset_reads_frames_actions_phases(demos):
    from segmentation import load_hdf5_episodes

    eps = load_hdf5_episodes(demos, [CAM], SIZE, episodes=[0, 1])
    ep = eps[0]
    assert ep.images[CAM].shape == (ep.length, SIZE, SIZE, 3) and ep.images[CAM].dtype == np.uint8
    assert ep.actions.shape == (ep.length, 4) and ep.proprio.shape == (ep.length, 15)
    assert ep.phase_names[0] == "reach" and ep.true_boundaries and ep.true_boundaries[0] > 0
    assert ep.env_id == "skillstack/PandaPickPlace-v0" and ep.task == "PandaPickPlace"
    with pytest.raises(ValueError, match="no camera 'front'"):
        load_hdf5_episodes(demos, ["front"], SIZE)


def test_small_validation_is_named_per_task(fitted):
    from segmentation.segmenter import ADVISED_VAL_EPISODES_PER_TASK, small_validation_tasks

    _, _, eps = fitted
    assert small_validation_tasks(eps[6:]) == {"PandaPickPlace": 2}
    assert small_validation_tasks(eps[:1] * ADVISED_VAL_EPISODES_PER_TASK) == {}
    assert any("only 2 validation episodes of PandaPickPlace" in m for m in FIT_LOG)  # fit_segmenter says so


def test_fit_chooses_gap_on_validation_and_round_trips(fitted):
    from segmentation import Segmenter
    from segmentation.segmenter import DEFAULT_GAPS, DEFAULT_MIN_LENS, DEFAULT_STD_GAPS

    seg, out, eps = fitted
    grid = DEFAULT_GAPS if seg.params.gap_unit == "nats" else DEFAULT_STD_GAPS  # the two-sided rule searches both units
    assert seg.params.gap in grid and seg.params.min_len in DEFAULT_MIN_LENS and seg.params.use_events
    assert 0.0 <= seg.meta["validation"]["f1@5"] <= 1.0 and seg.skill_types.k == 3
    assert seg.meta["predictor_training"]["members"] == 2
    assert seg.video_params is not None and 0.0 <= seg.meta["validation_video"]["f1@5"] <= 1.0
    loaded = Segmenter.load(out)
    assert type(loaded.predictor) is type(seg.predictor) and len(loaded.predictor.members) == 2
    assert loaded.params == seg.params and loaded.video_params == seg.video_params
    a, b = seg.segment(eps[6]), loaded.segment(eps[6])
    assert a.boundaries == b.boundaries and np.allclose(a.losses, b.losses, atol=1e-5)
    assert [s[2] for s in a.segments] == [s[2] for s in b.segments]
    with pytest.raises(FileNotFoundError, match="--train"):
        Segmenter.load(out.parent / "nothing")


@pytest.mark.slow
def test_validation_chooses_the_rule_when_not_fixed(fitted):
    from segmentation import tune_detector

    seg, _, eps = fitted
    val = eps[6:]
    fixed = {two: tune_detector(seg.predictor, val, use_events=True, two_sided=two) for two in (False, True)}
    params, scores = tune_detector(seg.predictor, val, use_events=True, two_sided=None)
    assert scores["f1@5_plateau"] == max(s["f1@5_plateau"] for _, s in fixed.values())
    assert params == fixed[params.two_sided][0]


def test_validation_chooses_the_bin_tolerance_when_not_fixed(fitted):
    from segmentation import tune_detector
    from segmentation.segmenter import DEFAULT_BIN_TOLERANCES

    seg, _, eps = fitted
    val = eps[6:]
    kw = dict(use_events=True, two_sided=True, reset_memory=False)
    fixed = {w: tune_detector(seg.predictor, val, bin_tolerances=(w,), **kw) for w in DEFAULT_BIN_TOLERANCES}
    assert all(p.bin_tolerance == w for w, (p, _) in fixed.items())
    params, scores = tune_detector(seg.predictor, val, **kw)
    assert params.bin_tolerance in DEFAULT_BIN_TOLERANCES
    assert scores["f1@5_plateau"] == max(s["f1@5_plateau"] for _, s in fixed.values())
    assert params == fixed[params.bin_tolerance][0]
    with pytest.raises(ValueError, match="no bin tolerances"):
        tune_detector(seg.predictor, val, bin_tolerances=(), **kw)


def test_validation_chooses_the_gap_unit_of_the_two_sided_rule(fitted):
    from segmentation import tune_detector
    from segmentation.detector import GAP_UNITS

    seg, _, eps = fitted
    val = eps[6:]
    kw = dict(use_events=True, reset_memory=False, bin_tolerances=(1,))
    fixed = {u: tune_detector(seg.predictor, val, two_sided=True, gap_units=(u,), **kw) for u in GAP_UNITS}
    assert all(p.gap_unit == u for u, (p, _) in fixed.items())
    params, scores = tune_detector(seg.predictor, val, two_sided=True, **kw)  # gap_units None: both
    assert scores["f1@5_plateau"] == max(s["f1@5_plateau"] for _, s in fixed.values())
    assert params == fixed[params.gap_unit][0]
    assert tune_detector(seg.predictor, val, two_sided=False, **kw)[0].gap_unit == "nats"  # the paper's rule: nats
    with pytest.raises(ValueError, match="unknown gap unit"):
        tune_detector(seg.predictor, val, two_sided=True, gap_units=("furlongs",), **kw)


def test_validation_ranks_a_gap_with_its_neighbours(fitted):
    from segmentation import tune_detector
    from segmentation.segmenter import DEFAULT_GAPS

    seg, _, eps = fitted
    val = eps[6:]
    kw = dict(use_events=True, two_sided=True, reset_memory=False, gap_units=("nats",))

    def own_f1(p, gap):  # the validation F1@5 of p with another gap, nothing else searched
        return tune_detector(seg.predictor, val, gaps=(gap,), min_lens=(p.min_len,), idle_eps=(p.idle_eps,),
                             bin_tolerances=(p.bin_tolerance,), plateau=0, beat_baseline=False, **kw)[1]["f1@5"]

    def window_f1(p):
        i = DEFAULT_GAPS.index(p.gap)
        return sum(own_f1(p, g) for g in DEFAULT_GAPS[max(0, i - 1): i + 2]) / len(DEFAULT_GAPS[max(0, i - 1): i + 2])

    centre, s1 = tune_detector(seg.predictor, val, plateau=1, **kw)
    peak, s0 = tune_detector(seg.predictor, val, plateau=0, **kw)
    assert s1["f1@5_plateau"] == pytest.approx(window_f1(centre))  # what it is ranked by: the mean over gap - 0.25 .. gap + 0.25
    assert s1["f1@5"] == pytest.approx(own_f1(centre, centre.gap))  # the scores returned are its own
    assert s0["f1@5_plateau"] == s0["f1@5"] >= s1["f1@5"]  # plateau 0: the best single gap
    assert s1["f1@5_plateau"] >= window_f1(peak) - 1e-12  # the single best gap's neighbourhood scores no higher
    with pytest.raises(ValueError, match="plateau"):
        tune_detector(seg.predictor, val, plateau=-1, **kw)


def test_video_path_runs_its_own_rule_on_labelled_actions(fitted, tmp_path):
    from segmentation import DetectorParams, Segmenter, gripper_events, label_with_idm

    seg, out, eps = fitted
    ep = eps[7]
    events_only = DetectorParams(gap=1e6, use_events=True)  # no loss boundary can fire: only the events remain
    two = Segmenter(seg.predictor, seg.params, seg.idm, video_params=events_only)
    labelled = label_with_idm(ep, seg.idm)
    assert labelled.actions_inferred and ep.actions is not None and not ep.actions_inferred  # a copy
    video = two.segment(replace(ep, actions=None))
    assert video.actions_inferred and video.boundaries == gripper_events(labelled.actions)
    assert two.segment(ep).boundaries == seg.segment(ep).boundaries  # recorded actions keep the main rule
    # a folder saved before the video path had its own rule loads with none: the main rule runs on video
    doc = json.loads((out / "segmenter.json").read_text())
    old = tmp_path / "old"
    old.mkdir()
    for name in ("predictor", "idm"):
        (old / name).symlink_to(out / name)
    doc.pop("video_detector")
    doc["detector"].pop("bin_tolerance")  # nor a bin tolerance: the exact-bin loss, as it was scored then
    doc["detector"].pop("gap_unit"), doc["detector"].pop("std_prior")
    (old / "segmenter.json").write_text(json.dumps(doc))
    assert Segmenter.load(old).video_params is None and Segmenter.load(old).params.bin_tolerance == 0
    assert Segmenter.load(old).params.gap_unit == "nats"  # nor a gap unit: nats, as the gap was then
    doc["video_detector"] = {"gap": float("nan")}  # a corrupted rule names the file, not just the field
    (old / "segmenter.json").write_text(json.dumps(doc))
    with pytest.raises(ValueError, match="segmenter.json: bad detector parameters: gap must be finite"):
        Segmenter.load(old)


def test_segmentation_never_reads_phases_and_events_are_boundaries(fitted):
    seg, _, eps = fitted
    ep = eps[7]
    blind = replace(ep, phases=None, phase_names=None)
    a, b = seg.segment(ep), seg.segment(blind)
    assert a.boundaries == b.boundaries and b.true_boundaries is None
    assert set(a.events) <= set(a.boundaries)  # loss+info: every gripper event is a boundary
    spans = [(s, e) for s, e, _ in a.segments]
    assert spans[0][0] == 0 and spans[-1][1] == ep.length and all(x[1] == y[0] for x, y in zip(spans, spans[1:]))


def test_segment_files_hdf5_and_mp4_write_json_and_png(fitted, demos, tmp_path):
    from common.video import Mp4Writer
    from segmentation.api import segment_files
    from segmentation.io import read_segments

    seg, _, eps = fitted
    video = tmp_path / "demo.mp4"
    with Mp4Writer(video, 25.0) as w:
        for frame in eps[6].images[CAM]:
            w.write(frame)
    run = segment_files(seg, [demos, video], out=tmp_path / "s.json", plot=tmp_path / "s.png", episodes=[6, 7])
    doc = read_segments(tmp_path / "s.json")
    assert [e["name"] for e in doc["episodes"]] == ["pp.hdf5:demo_6", "pp.hdf5:demo_7", "demo.mp4"]
    vid = doc["episodes"][2]
    assert vid["actions_inferred"] is True and "true_boundaries" not in vid and vid["length"] == eps[6].length
    assert doc["episodes"][0]["true_boundaries"] == eps[6].true_boundaries
    assert run.frames == eps[6].length * 2 + eps[7].length and run.frames_per_second > 0
    assert (tmp_path / "s.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"format": "skillstack-segments", "episodes": [{"length": 5, "boundaries": [2], "segments": [{"start": 0, "end": 3}]}]}))
    with pytest.raises(ValueError, match="do not cover"):
        read_segments(bad)
    with pytest.raises(ValueError, match="OpenCV cannot open|readable frame"):
        (tmp_path / "junk.mp4").write_bytes(b"not a video")
        segment_files(seg, [tmp_path / "junk.mp4"])


def test_cli_segment_and_errors(fitted, demos, tmp_path, capsys):
    from skillstack.cli import main

    _, model, _ = fitted
    out, png = tmp_path / "seg.json", tmp_path / "seg.png"
    assert main(["segment", str(demos), "--episodes", "6,7", "--model", str(model), "--out", str(out), "--plot", str(png)]) == 0
    text = capsys.readouterr().out
    assert "frames/s" in text and "F1@±5" in text and out.exists() and png.exists()
    assert len(json.loads(out.read_text())["episodes"]) == 2
    assert main(["segment", str(demos), "--model", str(tmp_path / "none")]) == 2
    assert "no segmenter here" in capsys.readouterr().err
    assert main(["segment"]) == 2
    assert main(["segment", "--train", str(demos), "--model", str(tmp_path / "m0"), "--predictor-members", "0"]) == 2
    assert "predictor_members must be >= 1" in capsys.readouterr().err
    trained = tmp_path / "trained"
    assert main(["segment", "--train", str(demos), "--model", str(trained), "--cameras", CAM, "--image-size", str(SIZE),
                 "--epochs", "1", "--no-idm", "--skill-types", "2", "--rule", "paper", "--gap-unit", "episode_std",
                 "--accept-weak-rule"]) == 0  # one epoch on a few demos: the plumbing, not a rule that beats the chopper
    assert "segmenter saved" in (text := capsys.readouterr().out) and (trained / "segmenter.json").exists()
    assert "paper rule" in text and "video path" not in text  # --no-idm: no video rule
    assert "bin tolerance 0" in text  # the paper's rule keeps the paper's exact-bin loss unless told
    assert " sd (prior " in text  # --gap-unit episode_std: the gap in units of the episode's loss spread
    with pytest.raises(SystemExit):  # argparse rejects it before anything runs
        main(["segment", "--train", str(demos), "--model", str(trained), "--bin-tolerance", "-1"])
    assert "bin tolerance must be >= 0" in capsys.readouterr().err
    video = tmp_path / "v.mp4"
    from common.video import Mp4Writer

    with Mp4Writer(video, 25.0) as w:
        for _ in range(5):
            w.write(np.zeros((SIZE, SIZE, 3), np.uint8))
    assert main(["segment", str(video), "--model", str(trained), "--out", str(tmp_path / "v.json")]) == 2
    assert "no inverse-dynamics model" in capsys.readouterr().err


def test_segments_become_bc_skills_in_the_library(fitted, tmp_path):
    import envs
    from skill_library import SkillLibrary
    from segmentation.skills import build_segment_skills, infer_predicates

    pre, eff = infer_predicates([{"holding(red)": False, "gripper_open": True}] * 3,
                                [{"holding(red)": True, "gripper_open": False}] * 3)
    assert pre == ("gripper_open", "!holding(red)") and eff == ("!gripper_open", "holding(red)")
    seg, _, eps = fitted
    lib = SkillLibrary(tmp_path / "lib")
    built = build_segment_skills(seg, eps[:6], lib, min_segments=3, grid=1, episodes_per_cell=1, bc_epochs=5, agree=0.5)
    assert built, "expected at least one skill type with >= 3 segments"
    entries = {e.ref: e for e in lib.entries()}
    for b in built:
        assert b.ref in entries and entries[b.ref].kind == "bc" and "sbd" in entries[b.ref].tags
        assert b.chain[0] == b.skill_type and b.ref.split("@")[0].endswith("type" + "-".join(map(str, b.chain)))
        assert (b.success_rate is None) == (not b.effects)  # success = effects hold; none without effects
        assert b.success_rate is None or 0.0 <= b.success_rate <= 1.0
    assert any(b.success_rate is not None for b in built), "at least one type should have an effect to evaluate"
    env = envs.make("skillstack/PandaPickPlace-v0")
    skill = lib.load(built[0].ref).bind(env)
    obs, _ = env.reset(seed=0)
    action = skill(obs)
    assert action.shape == (4,) and np.all(np.abs(action) <= 1.0)


def test_runs_of_one_type_merge_and_implied_preconditions_chain_in_the_planner():
    """Merged runs, and no at_grasp next to holding in preconditions: reach -> grasp -> place plans."""
    from envs.predicates import parse
    from planning.planner import Operator, plan
    from planning.spec import normalise_literal
    from planning.symbolic import Domain, atom
    from segmentation.skills import chain_label, chain_runs, infer_predicates, merge_runs

    assert merge_runs([(0, 4, 2), (4, 9, 2), (9, 17, 4), (17, 21, 6), (21, 25, 6), (25, 50, 2)]) == [
        (0, 9, 2), (9, 17, 4), (17, 25, 6), (25, 50, 2)]
    assert merge_runs([]) == []
    # types without an effect (2, 6) run on into what follows until a type with one ends the chain
    assert chain_runs([(0, 5, 2), (5, 8, 6), (8, 12, 4), (12, 20, 5), (20, 30, 2)], {2, 6}) == [
        (0, 12, (2, 6, 4)), (12, 20, (5,)), (20, 30, (2,))]  # the last run has nothing to join: it stays
    assert chain_runs([(0, 5, 2), (5, 8, 6)], set()) == [(0, 5, (2,)), (5, 8, (6,))]
    assert chain_label((2, 6, 4)) == "2-6-4" and chain_label((5,)) == "5"  # as in the skill's name

    def row(open_, hold, grasp, table, at):
        return {"gripper_open": open_, "holding(red)": hold, "at_grasp(red)": grasp, "on_table(red)": table, "at(red)": at}

    start, at_cube, lifted, placed = row(1, 0, 0, 1, 0), row(1, 0, 1, 1, 0), row(0, 1, 1, 0, 0), row(0, 1, 1, 0, 1)
    types = {"reach": ([start] * 9, [at_cube] * 9 + [start]),  # 9 of 10 runs end at the cube: agree 0.9
             "grasp": ([at_cube] * 10, [lifted] * 10), "place": ([lifted] * 10, [placed] * 10)}
    inferred = {name: infer_predicates([{k: bool(v) for k, v in r.items()} for r in a],
                                       [{k: bool(v) for k, v in r.items()} for r in b]) for name, (a, b) in types.items()}
    assert inferred["reach"] == (("gripper_open", "!holding(red)", "on_table(red)"), ("at_grasp(red)",))
    assert inferred["place"] == (("holding(red)",), ("at(red)",))  # at_grasp(red) is implied by holding(red)
    lits = lambda xs: tuple(normalise_literal(lit) for x in xs for lit in parse(x))  # noqa: E731
    ops = [Operator(name, name, lits(pre), lits(eff), success=0.9) for name, (pre, eff) in inferred.items()]
    domain = Domain(("red",), {"goal": (0.5, 0.0, 0.1)}, {"goal": False}, {"goal": True})
    state = frozenset({atom("gripper_open"), atom("on_table", "red"), atom("in_reach", "red")})
    best = plan(state, lits(["at(red)"]), ops, domain)[0]
    assert best.labels == ["reach", "grasp", "place"]


def test_a_rule_that_does_not_beat_fixed_length_cuts_is_refused(fitted):
    """Validation may not choose a rule no better than cutting every k steps: with only a
    rule that never fires (a huge gap, no gripper events) to choose from, training stops
    with a message naming the baseline; the chosen rule's scores carry the baseline's."""
    from segmentation import NoRuleBeatsBaselineError, tune_detector

    seg, _, eps = fitted
    val = eps[6:]
    kw = dict(use_events=False, two_sided=True, reset_memory=False, gap_units=("nats",), min_lens=(8,), idle_eps=(0.0,),
              bin_tolerances=(0,))
    with pytest.raises(NoRuleBeatsBaselineError, match="fixed-length baseline.*cutting every"):
        tune_detector(seg.predictor, val, gaps=(1e6,), **kw)
    params, scores = tune_detector(seg.predictor, val, gaps=(1e6,), beat_baseline=False, **kw)
    assert scores["f1@5"] <= scores["baseline_fixed_length_f1@5"]  # what the refusal was about
    assert scores["baseline_fixed_length_every"] >= 2


def test_default_gap_range_cannot_chop_at_fixed_length() -> None:
    """A gap of 0 nats or less fires whenever the loss is not below its running mean: every
    allowed step. The default search starts above it."""
    from segmentation.segmenter import DEFAULT_GAPS, DEFAULT_STD_GAPS

    assert min(DEFAULT_GAPS) > 0 and min(DEFAULT_STD_GAPS) > 0


@pytest.mark.slow
def test_a_two_camera_segmenter_segments_a_plain_one_camera_video(tmp_path):
    """The default training (front and wrist cameras, inverse dynamics) also trains a one-camera
    segmenter on the first camera, saved inside the same folder, so a plain front-camera mp4 is
    segmented by the same segmenter that segments recorded demos."""
    from common.video import Mp4Writer
    from demos import record_demos
    from segmentation import Segmenter, fit_segmenter, load_hdf5_episodes
    from segmentation.api import segment_files

    path = tmp_path / "pp2.hdf5"
    record_demos("skillstack/PandaPickPlace-v0", "expert", episodes=6, out=path, seed=1, cameras=["front", "wrist"],
                 image_size=SIZE, durable=False, progress=False)
    eps = load_hdf5_episodes(path, ["front", "wrist"], SIZE)
    seg = fit_segmenter(eps[:4], eps[4:], cameras=("front", "wrist"), image_size=SIZE, epochs=1, context=8, idm=True,
                        idm_epochs=1, skill_types=2, seed=0, beat_baseline=False)
    assert seg.video_segmenter is not None and seg.video_segmenter.cameras == ("front",)
    seg.save(tmp_path / "seg")
    loaded = Segmenter.load(tmp_path / "seg")
    assert loaded.cameras == ("front", "wrist") and loaded.for_video()[1] == "front"
    video = tmp_path / "front.mp4"
    with Mp4Writer(video, 25.0) as w:
        for frame in eps[5].images["front"]:
            w.write(frame)
    run = segment_files(loaded, [video], out=tmp_path / "v.json")
    assert run.episodes[0].actions_inferred and run.episodes[0].length == eps[5].length
    with pytest.raises(ValueError, match="segmented as camera 'front'.*not 'wrist'"):
        segment_files(loaded, [video], video_camera="wrist")
    loaded.video_segmenter = None
    with pytest.raises(ValueError, match="has no one-camera segmenter for videos"):
        segment_files(loaded, [video])
