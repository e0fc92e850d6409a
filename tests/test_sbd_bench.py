"""`skillstack bench sbd` plumbing on a tiny run: several held-out tasks, each scored on its own; the final hold."""

from __future__ import annotations

import argparse

import numpy as np
import pytest
import torch

torch.set_num_threads(1)
CAM, SIZE = "wrist", 32
PP, PUSH, STACK = "skillstack/PandaPickPlace-v0", "skillstack/PandaPush-v0", "skillstack/PandaStack-v0"


def test_heldout_list_parsing():
    from bench.sbd import DEFAULT_HELDOUT, _parse_heldout

    assert _parse_heldout(DEFAULT_HELDOUT, [PP, PUSH]) == [STACK, "skillstack/PandaPushThenPick-v0", "skillstack/PandaStackThree-v0"]
    assert _parse_heldout("", [PP]) == []
    assert _parse_heldout(f" {STACK}, {PUSH},{STACK}", [PP]) == [STACK, PUSH]  # order kept, repeats dropped
    with pytest.raises(ValueError, match="also in --train-tasks"):
        _parse_heldout(f"{STACK},{PP}", [PP])


def test_per_task_rows_come_from_the_split_asked_for():
    from bench.sbd import _per_task_rows

    def scores(f1):
        keys = ("precision@5", "recall@5", "f1@2", "f1@5", "seg_f1@0.10", "seg_f1@0.25", "seg_f1@0.50", "edit")
        return {k: f1 for k in keys}

    variants = {"loss": {"test": {"per_task": {"PandaPush": scores(0.25)}}, "extra_test": {"per_task": {"PandaPush": scores(0.75)}}},
                "baseline: fixed length": {"test": {"per_task": {"PandaPush": scores(0.5)}}}}
    assert _per_task_rows(variants, "test") == [["loss | Push", *[0.25] * 7, 0.2]]  # only the variants broken down by task
    assert _per_task_rows(variants, "extra_test") == [["loss | Push", *[0.75] * 7, 0.8]]  # edit: one decimal


def test_negative_extra_episode_counts_are_refused_before_any_work(tmp_path):
    from bench import sbd

    parser = argparse.ArgumentParser()
    sbd.add_arguments(parser)
    for flag in ("--extra-val-episodes", "--extra-test-episodes"):
        args = parser.parse_args([flag, "-1", "--data-dir", str(tmp_path / "data")])
        with pytest.raises(ValueError, match="must be >= 0"):
            sbd.run(args)
    assert not (tmp_path / "data").exists()  # nothing recorded


def test_final_hold_counts_only_boundaries_after_the_robot_stops():
    from bench.sbd import _hold_boundaries, _hold_start
    from segmentation.dataset import SegEpisode

    acts = np.zeros((20, 4), dtype=np.float32)
    acts[:8, 0] = 0.5  # moves until step 7, then holds still to the end
    phases = np.array([0] * 5 + [1] * 15)
    ep = SegEpisode("e", {CAM: np.zeros((20, 4, 4, 3), np.uint8)}, actions=acts, phases=phases)
    assert _hold_start(ep, 0.05) == 8
    assert _hold_boundaries([[5, 8, 12]], [ep], 0.05) == 2.0  # 5 is the true change, 8 and 12 are in the hold
    late = SegEpisode("l", ep.images, actions=acts, phases=np.array([0] * 12 + [1] * 8))
    assert _hold_start(late, 0.05) == 13  # a phase change inside the stillness: the hold starts after it


@pytest.mark.slow
def test_bench_scores_each_heldout_task(tmp_path, capsys):
    from bench import sbd
    from demos import record_demos

    files = []
    for env, n in ((PP, 7), (STACK, 1), (PUSH, 2)):
        path = tmp_path / f"{env.split('/')[-1]}.hdf5"
        record_demos(env, "expert", episodes=n, out=path, seed=0, cameras=[CAM], image_size=SIZE, durable=False, progress=False)
        files.append(str(path))
    parser = argparse.ArgumentParser()
    sbd.add_arguments(parser)
    args = parser.parse_args(["--train-tasks", PP, "--heldout-task", f"{STACK},{PUSH}", "--demos", ",".join(files),
                              "--cameras", CAM, "--image-size", str(SIZE), "--context", "4", "--epochs", "1",
                              "--idm-epochs", "1", "--skills", "0", "--skill-types", "2", "--model-out", "",
                              "--plot", "", "--data-dir", str(tmp_path / "data"), "--extra-test-episodes", "2",
                              "--extra-val-episodes", "1"])
    res = sbd.run(args)
    assert res["data"]["heldout_task"] == STACK and res["data"]["heldout_tasks"] == [STACK, PUSH]
    assert res["data"]["heldout_episodes_per_task"] == {STACK: 1, PUSH: 2}
    for name, v in res["variants"].items():
        if "mp4" in name:
            continue  # real mp4 files are made of the test split only
        assert set(v["heldout_tasks"]) == {STACK, PUSH}, name
        assert v["heldout_task"] == v["heldout_tasks"][STACK], name  # the single-task key: the first held-out task
        assert all(0.0 <= r["f1@5"] <= 1.0 and r["hold_boundaries"] >= 0 for r in v["heldout_tasks"].values())
    assert res["variants"]["baseline: gripper events only"]["heldout_tasks"][STACK]["hold_boundaries"] == 0
    for name, v in res["variants"].items():  # every test score carries its bootstrap interval
        if "mp4" in name:
            continue
        lo, hi = v["test"]["f1@5_ci95"]
        assert lo - 1e-9 <= v["test"]["f1@5"] <= hi + 1e-9, name
    # --extra-test-episodes: fresh episodes of the training task, scored with the same parameters
    assert res["data"]["extra_test_episodes"] == 2
    assert all("extra_test" in v for k, v in res["variants"].items() if "IDM" not in k and "mp4" not in k)
    # --extra-val-episodes: fresh episodes added to the split's validation episodes (7 episodes: 5 / 1 / 1)
    assert res["data"]["extra_val_episodes"] == 1
    assert (res["data"]["train_episodes"], res["data"]["val_episodes"], res["data"]["test_episodes"]) == (5, 2, 1)
    # three predictors by default, and member 0 alone scored in the same run for comparison
    assert res["predictor"]["members"] == 3 and len(res["predictor"]["train_loss"]) == 3
    assert {"loss+info, one predictor", "loss+info, two-sided, one predictor"} <= set(res["variants"])
    # the paper's rules keep its exact-bin loss; ours chooses a bin tolerance, and the exact-bin row measures it
    assert all(res["variants"][k]["params"]["bin_tolerance"] == 0
               for k in ("loss", "loss+info", "loss+info, one predictor", "loss+info, two-sided, exact-bin loss"))
    assert res["variants"]["loss+info, two-sided (ours)"]["params"]["bin_tolerance"] in (0, 1, 2)
    # gaps are ranked with their neighbours; the best-single-gap row measures what that adds
    single_gap = res["variants"]["loss+info, two-sided, best single gap"]["validation"]
    assert single_gap["f1@5_plateau"] == single_gap["f1@5"]
    # the saved segmenter's rule: the better of loss+info and two-sided on validation
    rules = {k: res["variants"][k]["validation"]["f1@5_plateau"] for k in ("loss+info", "loss+info, two-sided (ours)")}
    assert res["chosen_rule"] in rules and rules[res["chosen_rule"]] == max(rules.values())
    # the video path: the recorded-action rule on labelled actions, and its own rule tuned on them
    video = res["variants"]["IDM actions, own gap (video path)"]
    assert "validation" in video and "extra_test" in video and 0.0 <= video["test"]["f1@5"] <= 1.0
    assert res["variants"]["loss+info, IDM actions, recorded-action gap"]["params"] == res["variants"]["loss+info"]["params"]
    assert "IDM actions, mp4 video" in res["variants"]  # one camera: real mp4 files too
    out = capsys.readouterr().out
    assert "task held out from predictor training: PandaStack-v0" in out
    assert "task held out from predictor training: PandaPush-v0" in out
    assert "held-out tasks, boundary F1@±5" in out
    assert "F1@5 95% CI" in out
    assert "independent test episodes: 2 fresh episodes" in out


def test_demo_cache_is_recorded_again_when_the_code_changed(tmp_path):
    """A cached file is reused only while a fresh recording of its first episode matches it."""
    import h5py

    from bench.sbd import _record
    from demos import DemoFile

    path = _record(PUSH, 2, 3, [CAM], 16, tmp_path, log=lambda m: None)
    stamp = path.stat().st_mtime_ns
    assert _record(PUSH, 2, 3, [CAM], 16, tmp_path, log=lambda m: None) == path
    assert path.stat().st_mtime_ns == stamp  # current: reused as is

    with DemoFile(path) as f:
        recorded = f.episode(0, images=False).actions.copy()
    with h5py.File(path, "r+") as f:  # as if an older expert had acted differently
        f["data/demo_0/actions"][3] += 0.25
    said: list[str] = []
    _record(PUSH, 2, 3, [CAM], 16, tmp_path, log=said.append)
    assert any("recorded by other code" in m for m in said)
    with DemoFile(path) as f:
        assert len(f) == 2
        assert np.array_equal(f.episode(0, images=False).actions, recorded)  # recorded again by today's expert
