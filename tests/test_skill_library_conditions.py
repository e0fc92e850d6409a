"""One success rule for eval and descriptors; evaluation under named conditions (issue 24)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from envs.conditions import make_condition_env, parse_conditions
from skill_library.descriptors import evaluate_skill
from skill_library.episodes import evaluate_episodes, evaluate_skill_target
from skill_library.registry import SkillLibrary
from skill_library.skill import load_skill
from skill_library.starter import build_starter_skills
from skill_library.testing import make_random_skill
from skillstack.cli import main


@pytest.fixture(scope="module")
def lib(tmp_path_factory) -> SkillLibrary:
    lib = SkillLibrary(tmp_path_factory.mktemp("lib"))
    build_starter_skills(lib, names=["pick_place_red", "push_red"])
    return lib


def _replay(skill, states, max_steps, condition="nominal"):
    env = make_condition_env(skill.manifest.task.env_id, condition, max_episode_steps=1_000_000)
    skill.bind(env)
    try:
        return evaluate_episodes(skill, env, states=states, max_steps=max_steps)
    finally:
        env.close()


def test_eval_and_descriptors_agree_on_the_same_episodes(tmp_path, lib):
    # A learned skill without effects (success: is_success at the final step) and a scripted one with effects.
    make_random_skill(tmp_path / "reach", name="rand_reach", env_id="skillstack/PandaReach-v0", seed=3)
    for skill in (load_skill(tmp_path / "reach"), lib.load("pick_place_red")):
        episodes: list[dict] = []
        d = evaluate_skill(skill, grid=2, episodes_per_cell=2, seed=1, episodes_out=episodes)
        replayed = _replay(skill, [e["state"] for e in episodes], d["max_steps"])
        assert [r.success for r in replayed] == [e["success"] for e in episodes]
        assert [r.steps for r in replayed] == [e["steps"] for e in episodes]
        assert sum(r.success for r in replayed) == d["totals"]["successes"]
        if not skill.manifest.effects:  # no early stop at a passing success: every episode runs to the end
            assert all(e["steps"] == d["max_steps"] for e in episodes)


def test_eval_of_a_skill_uses_the_same_episodes_as_its_replay(lib):
    skill = lib.load("push_red")
    res = evaluate_skill_target(skill, 4, 50)
    env = make_condition_env(skill.manifest.task.env_id, "nominal", max_episode_steps=1_000_000)
    skill.bind(env)
    again = evaluate_episodes(skill, env, seeds=[50, 51, 52, 53], max_steps=50)
    assert res["successes"] == sum(r.success for r in again) and res["episodes"] == 4
    assert res["safety_cost"] == pytest.approx(float(np.mean([r.safety_cost for r in again])))


def test_descriptors_under_a_condition_are_seeded_and_name_it(lib):
    skill = lib.load("push_red")
    (cond,) = parse_conditions("latency80")
    a = evaluate_skill(skill, grid=1, episodes_per_cell=3, seed=2, condition=cond)
    b = evaluate_skill(skill, grid=1, episodes_per_cell=3, seed=2, condition=cond)
    assert a["condition"] == "latency80"
    assert a["cells"] == b["cells"]


def test_cli_eval_and_skills_evaluate_under_conditions(lib, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("SKILLSTACK_LIBRARY", str(lib.root))
    png = tmp_path / "succ.png"
    assert main(["eval", "pick_place_red", "--episodes", "3", "--conditions", "nominal,latency80", "--plot", str(png)]) == 0
    out = capsys.readouterr().out
    assert "nominal" in out and "latency80" in out and "3/3 (100%)" in out
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert main(["eval", "pick_place_red", "--episodes", "1", "--conditions", "nominal,bogus"]) == 2
    assert "unknown condition" in capsys.readouterr().err
    assert main(["skills", "evaluate", "push_red", "--grid", "1", "--episodes-per-cell", "2",
                 "--conditions", "nominal,drops"]) == 0
    assert "drops" in capsys.readouterr().out
    stored = lib.load("push_red").manifest.descriptors
    assert set(stored["conditions"]) == {"nominal", "drops"}
    for c in stored["conditions"].values():
        assert {"success_rate", "mean_duration_s", "mean_safety_cost", "episodes"} <= set(c)
    assert stored["conditions"]["drops"]["condition"]["drop_probability"] == 0.1
    assert main(["eval", "pick_place_red", "--episodes", "2", "--conditions", "nominal", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["pick_place_red@0.1.0"]["nominal"]["episodes"] == 2
