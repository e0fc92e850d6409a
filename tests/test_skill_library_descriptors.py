"""Descriptors (grid evaluation, split/merge determinism, lookup), starter skills, and the CLI."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

import envs
from skill_library.descriptors import attach_descriptors, evaluate_skill, lookup, make_grid, merge_descriptors
from skill_library.errors import SkillLibraryError, SkillSetupError
from skill_library.package import read_package, rewrite_manifest
from skill_library.registry import SkillLibrary
from skill_library.skill import load_skill
from skill_library.starter import STARTER_SKILLS, build_starter_skills
from skill_library.testing import make_random_skill
from skillstack.cli import main


@pytest.fixture(scope="module")
def net_pkg(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("d") / "pkg"
    make_random_skill(out, name="rand_push", version="1.0.0", seed=5, effects=("at(red)",))
    return out


def _strip_date(d: dict) -> dict:
    return {k: v for k, v in d.items() if k != "date"}


def test_evaluation_is_deterministic_and_splittable(net_pkg):
    skill = load_skill(net_pkg)
    kw = dict(grid=(2, 2), episodes_per_cell=2, seed=11, max_steps=8)
    full = evaluate_skill(skill, **kw)
    assert _strip_date(evaluate_skill(load_skill(net_pkg), **kw)) == _strip_date(full)
    parts = [evaluate_skill(skill, cells=[3, 1], **kw), evaluate_skill(skill, cells=range(0, 4, 2), **kw)]
    assert _strip_date(merge_descriptors(parts)) == _strip_date(full)
    assert [c["index"] for c in full["cells"]] == [[0, 0], [0, 1], [1, 0], [1, 1]]
    assert full["totals"]["episodes"] == 8 and full["variable"] == "object_xy:red"
    assert all(c["mean_duration_s"] == pytest.approx(8 * 0.04) or c["successes"] > 0 for c in full["cells"])
    assert all(c["mean_safety_cost"] >= 0 for c in full["cells"])
    different = evaluate_skill(skill, **{**kw, "seed": 12})
    assert [c["center"] for c in different["cells"]] == [c["center"] for c in full["cells"]]
    with pytest.raises(SkillLibraryError, match="cannot merge descriptors: seed differs"):
        merge_descriptors([full, different])
    with pytest.raises(SkillLibraryError, match="outside the grid"):
        evaluate_skill(skill, cells=[4], **kw)


def test_descriptors_stored_in_manifest_with_hashes_kept(net_pkg, tmp_path):
    pkg = tmp_path / "pkg"
    shutil.copytree(net_pkg, pkg)
    skill = load_skill(pkg)
    before = read_package(pkg).manifest
    desc = evaluate_skill(skill, grid=1, episodes_per_cell=1, seed=0, max_steps=3)
    rewrite_manifest(pkg, attach_descriptors(skill.manifest, desc))
    after = read_package(pkg).manifest  # verifies hashes and the new digest
    assert after.descriptors["totals"] == desc["totals"] and after.files == before.files
    assert after.source_digest != before.source_digest
    assert sorted(p.name for p in pkg.iterdir()) == ["manifest.json", "signature.json", "weights.safetensors"]
    # through the library: the index summary follows
    lib = SkillLibrary(tmp_path / "lib")
    lib.add(net_pkg)
    lib.update_manifest("rand_push", attach_descriptors(lib.manifest("rand_push"), desc))
    assert lib.resolve("rand_push").success_rate == desc["totals"]["success_rate"]
    assert lib.load("rand_push").manifest.descriptors["cells"] == desc["cells"]


def test_lookup_by_nearest_cells_from_any_state_form():
    env = envs.make("skillstack/PandaPush-v0")
    grid = make_grid(env, (2, 2))
    rates = {(0, 0): 1.0, (0, 1): 0.5, (1, 0): 0.0, (1, 1): 0.25}
    cells = []
    for flat in range(4):
        idx, centre = grid.cell(flat)
        cells.append({"index": list(idx), "center": centre.tolist(), "episodes": 4, "successes": int(4 * rates[idx]),
                      "success_rate": rates[idx], "mean_duration_s": 1.0 + flat, "mean_safety_cost": 0.0})  # fmt: skip
    desc = {"variable": "object_xy:red", "axes": [list(a) for a in grid.axes], "cells": cells,
            "obs_source": {"key": "observation", "start": env.unwrapped.observation_layout["red_pos"].start}}  # fmt: skip
    c10 = np.array(cells[2]["center"])
    assert lookup(desc, c10, k=1)["success_rate"] == 0.0 and lookup(desc, c10, k=1)["distance"] == 0.0
    near_00 = np.array(cells[0]["center"]) + [0.01, 0.0]
    assert lookup(desc, near_00, k=1)["success_rate"] == 1.0
    blended = lookup(desc, near_00, k=4)["success_rate"]
    assert 0.5 < blended < 1.0  # dominated by the nearest cell, pulled down by the others
    # the same answer from a SceneState, an observation dict and a flat observation vector
    obs, _ = env.reset(seed=0)
    u = env.unwrapped
    u.set_object_pos("red", np.array([*near_00, 0.02]))
    obs, _ = env.reset(options={"state": u.get_state()})
    for state in (u.scene_state(), obs, obs["observation"]):
        assert lookup(desc, state, k=4)["success_rate"] == pytest.approx(blended)
    with pytest.raises(SkillLibraryError, match="cannot read object_xy:red"):
        lookup(desc, np.zeros(5))


def test_estimate_success_needs_descriptors(net_pkg):
    skill = load_skill(net_pkg)
    with pytest.raises(SkillLibraryError, match="has no descriptors; run `skillstack skills evaluate rand_push`"):
        skill.estimate_success(np.zeros(2))
    assert skill.estimate_success(np.zeros(2), default=0.3) == 0.3


def test_starter_skills_are_scripted_and_work(tmp_path):
    lib = SkillLibrary(tmp_path / "lib")
    added = build_starter_skills(lib, ["grasp_red", "reach_goal", "push_red"], evaluate=True, grid=2, episodes_per_cell=1)
    assert added == ["grasp_red@0.1.0", "reach_goal@0.1.0", "push_red@0.1.0"]
    assert build_starter_skills(lib, ["grasp_red"]) == []  # already there
    for e in lib.entries():
        assert e.kind == "scripted" and "starter" in e.tags and "not learned" in e.description
        assert not lib.load(e.ref).is_learned
    grasp = lib.load("grasp_red")
    assert grasp.manifest.effects == ("holding(red)",) and grasp.manifest.descriptors["totals"]["success_rate"] >= 0.75
    env = envs.make("skillstack/PandaPickPlace-v0")
    obs, _ = env.reset(seed=4)
    assert 0.0 <= grasp.estimate_success(env.unwrapped.scene_state()) <= 1.0
    assert lib.resolve("reach_goal").success_rate is not None
    names = [s.name for s in STARTER_SKILLS]
    assert len(names) == len(set(names)) and {"reach_red", "lift_red", "place_red", "release_red"} <= set(names)
    with pytest.raises(SkillLibraryError, match="unknown starter skill"):
        build_starter_skills(lib, ["fly"])


def test_cli_round_trip(net_pkg, tmp_path, capsys):
    lib = ["skills", "--library", str(tmp_path / "lib")]
    assert main([*lib, "add", str(net_pkg)]) == 0
    assert main([*lib, "list", "--json"]) == 0
    listed = json.loads(capsys.readouterr().out.split("\n", 1)[1])
    assert [e["name"] for e in listed] == ["rand_push"] and listed[0]["kind"] == "rl"
    assert main([*lib, "show", "rand_push@1.0.0", "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["network"]["hidden"] == [16, 16] and shown["files"]["weights.safetensors"]
    assert main([*lib, "list", "--predicate", "at(red)"]) == 0
    assert "rand_push" in capsys.readouterr().out
    assert main([*lib, "evaluate", "rand_push", "--grid", "1", "--episodes-per-cell", "1", "--max-steps", "2"]) == 0
    assert main([*lib, "show", "rand_push"]) == 0
    out = capsys.readouterr().out
    assert "descriptors    object_xy:red grid 1x1" in out and "[rl: learned]" in out
    assert main([*lib, "export", "rand_push", str(tmp_path / "out")]) == 0
    assert main([*lib, "verify", str(tmp_path / "out")]) == 0
    w = tmp_path / "out" / "weights.safetensors"
    w.write_bytes(w.read_bytes()[:-1] + b"\x00")
    capsys.readouterr()
    assert main([*lib, "verify", str(tmp_path / "out")]) == 2
    assert "weights.safetensors" in capsys.readouterr().err
    assert main([*lib, "remove", "rand_push@1.0.0"]) == 0
    assert main([*lib, "list"]) == 0
    assert "no skills in" in capsys.readouterr().out


def test_setup_budget_bounds_the_expert_that_reaches_preconditions(tmp_path):
    """A skill that starts late in a task needs the expert's setup to run long enough; too short a budget is a clear error."""
    lib = SkillLibrary(tmp_path / "lib")
    build_starter_skills(lib, ["place_red"], evaluate=False)
    place = lib.load("place_red")
    assert "holding(red)" in place.manifest.preconditions  # reached only after reach and grasp
    with pytest.raises(SkillSetupError, match="no valid initial state"):
        evaluate_skill(place, grid=1, episodes_per_cell=1, setup_steps=2)
    assert evaluate_skill(place, grid=1, episodes_per_cell=1, setup_steps=400)["totals"]["episodes"] == 1
