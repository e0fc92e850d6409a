"""Training runs: configs and overrides, resume equivalence after a kill, the train / eval /
plot commands end to end with skill export, shipped configs, and learning on Reach."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import yaml

from policies.training import (
    apply_overrides,
    displacement_coverage,
    list_checkpoints,
    load_config,
    read_eval_log,
    train,
)

CONFIGS = Path(__file__).resolve().parent.parent / "configs"
TINY = [
    "total_timesteps=300",
    "algo_kwargs.learning_starts=100",
    "algo_kwargs.batch_size=64",
    "algo_kwargs.policy_kwargs.net_arch=[32,32]",
    "eval.episodes=2",
    "eval.video=false",
    "export.enabled=false",
    "demonstrations.episodes=2",
]


def test_overrides_and_validation(tmp_path) -> None:
    cfg = apply_overrides({"a": {"b": 1}}, ["a.b=2", "a.c=[1, 2]", "d=text", "e.f.g=0.5"])
    assert cfg == {"a": {"b": 2, "c": [1, 2]}, "d": "text", "e": {"f": {"g": 0.5}}}
    with pytest.raises(ValueError, match="KEY=VALUE"):
        apply_overrides({}, ["seed"])
    cfg = load_config(CONFIGS / "reach.yaml", ["seed=3", "algo_kwargs.critic_layout=separate"])
    assert cfg["seed"] == 3 and cfg["algo_kwargs"]["critic_layout"] == "separate"
    assert cfg["checkpoint"]["keep"] == 2  # default filled in
    with pytest.raises(KeyError, match="unknown config keys"):
        load_config({"env": "x"})
    with pytest.raises(ValueError, match="algo"):
        load_config({"algo": "ppo"})
    with pytest.raises(ValueError, match="algo_kwargs may not set"):
        load_config({"algo_kwargs": {"seed": 1}})
    with pytest.raises(ValueError, match="HER"):
        load_config(CONFIGS / "push_skills.yaml", ["her={n_sampled_goal: 4}"])
    with pytest.raises(FileNotFoundError):
        load_config(tmp_path / "missing.yaml")


@pytest.mark.parametrize("name", ["reach.yaml", "push.yaml", "pick_and_lift.yaml", "push_skills.yaml"])
def test_shipped_configs_build(name: str) -> None:
    from policies.training import build_model, make_vec_env

    cfg = load_config(CONFIGS / name, ["n_envs=1", "vec_env=dummy"])
    venv = make_vec_env(cfg)
    try:
        model = build_model(cfg, venv)
        expected = len(cfg["algo_kwargs"]["reward_terms"]) + (1 if cfg["skill_discovery"] else 0)
        assert model.critic.n_terms == expected == len(model.reward_keys)
    finally:
        venv.close()


def test_displacement_coverage() -> None:
    d = np.array([[0.0, 0.0], [0.005, -0.004], [0.05, 0.0], [0.051, 0.002], [-0.03, 0.1]])
    assert displacement_coverage(d) == 2  # (0,0) excluded; two near-identical moves share a cell


def test_resume_after_kill_equals_uninterrupted_run(tmp_path) -> None:
    """Stop mid-episode after a checkpoint (as if killed), resume: identical weights."""
    from safetensors.torch import load_file

    ov = [*TINY, "checkpoint.freq=130", "eval.freq=130"]
    full = train(CONFIGS / "reach.yaml", overrides=ov, run_dir=tmp_path / "full", progress=False)
    part = train(CONFIGS / "reach.yaml", overrides=ov, run_dir=tmp_path / "part", progress=False, stop_after=130)
    assert [p.name for p in list_checkpoints(part)] == ["step_00000130"]
    assert not (part / "summary.json").exists()
    train(part, resume=True, progress=False)
    a = load_file(str(list_checkpoints(full)[-1] / "model.safetensors"))
    b = load_file(str(list_checkpoints(part)[-1] / "model.safetensors"))
    assert set(a) == set(b)
    for key in a:
        assert (a[key] == b[key]).all(), key
    # Evaluations after the resume match too (wall time aside).
    key = [(r["step"], r["success_rate"], r["returns"]) for r in read_eval_log(full)]
    assert key == [(r["step"], r["success_rate"], r["returns"]) for r in read_eval_log(part)]
    assert [r["step"] for r in read_eval_log(full)] == [130, 260, 300]


def test_cli_train_eval_plot_and_export(tmp_path, capsys) -> None:
    from skill_library.registry import SkillLibrary
    from skillstack.cli import main

    lib = tmp_path / "lib"
    run_dir = tmp_path / "run"
    rc = main([
        "train", str(CONFIGS / "reach.yaml"), "--run-dir", str(run_dir), "--no-progress", "--seed", "1",
        *[a for o in TINY if not o.startswith("export") for a in ("--set", o)],
        "--set", "eval.freq=150", "--set", "eval.video=final", "--set", f"export.library={lib}",
        "--set", "export.descriptors.grid=1", "--set", "export.descriptors.episodes_per_cell=1",
    ])
    assert rc == 0
    out = capsys.readouterr().out
    assert "run directory" in out and "final: success" in out and "reach@0.1.0" in out
    cfg = yaml.safe_load((run_dir / "config.yaml").read_text())
    assert cfg["seed"] == 1
    rows = read_eval_log(run_dir)
    assert [r["step"] for r in rows] == [150, 300]
    assert set(rows[-1]["returns"]) == {"task", "interaction", "safety"}
    assert (run_dir / "videos" / "eval_00000300.mp4").stat().st_size > 1000
    assert any((run_dir / "tb").rglob("events.out.tfevents.*"))
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["env_steps"] == 300 and summary["timing"]["demo_transitions"] == 100
    # The exported skill is in the library with provenance and descriptors.
    skill = SkillLibrary(lib).load("reach")
    m = skill.manifest
    assert m.provenance.seed == 1 and m.provenance.env_steps == 300
    assert m.provenance.config["algo"] == "multi_critic_sac"
    assert m.descriptors is not None and m.descriptors["totals"]["episodes"] >= 1

    assert main(["eval", str(run_dir), "--episodes", "2", "--json"]) == 0
    res_run = json.loads(capsys.readouterr().out)
    assert main(["eval", str(run_dir / "skills" / "reach"), "--episodes", "2", "--json"]) == 0
    res_skill = json.loads(capsys.readouterr().out)
    # The exported network acts like the run's policy.
    assert res_run["returns"] == pytest.approx(res_skill["returns"], rel=1e-4, abs=1e-4)
    assert main(["plot", str(run_dir), "--out", str(tmp_path / "curves.png")]) == 0
    assert (tmp_path / "curves.png").read_bytes()[:4] == b"\x89PNG"
    assert main(["eval", str(tmp_path / "nothing"), "--episodes", "1"]) == 2  # clear error, no traceback


def test_skill_discovery_run_exports_one_skill_per_z(tmp_path) -> None:
    from skill_library.publish import train_and_publish as train  # training, then the library publishes
    from skill_library.skill import load_skill

    run = train(
        CONFIGS / "push_skills.yaml",
        overrides=[*TINY[:-1], "eval.freq=0", "eval.episodes=4", "eval.coverage_skills=4", "export.enabled=true",
                   "export.skills=3", "export.add_to_library=false", "export.descriptors={}",
                   "skill_discovery.skill_dim=3", "algo=sac"],
        run_dir=tmp_path / "skills", progress=False,
    )
    summary = json.loads((run / "summary.json").read_text())
    assert [s["name"] for s in summary["skills"]] == ["push_skill_z0", "push_skill_z1", "push_skill_z2"]
    assert "coverage" in summary["final_eval"]
    skill = load_skill(summary["skills"][1]["path"])
    assert [k.name for k in skill.manifest.observation.keys] == ["achieved_goal", "desired_goal", "observation"]
    assert skill.manifest.provenance.eval["skill"] == [0.0, 1.0, 0.0]


@pytest.mark.slow
def test_reach_learns_clearly_above_random(tmp_path) -> None:
    """The shipped Reach config (two critics: goal + safety, HER), cut to 2500 steps."""
    run = train(
        CONFIGS / "reach.yaml",
        overrides=["total_timesteps=2500", "eval.freq=0", "eval.episodes=20", "eval.video=false",
                   "export.enabled=false", "checkpoint.freq=0"],
        run_dir=tmp_path / "reach", progress=False,
    )
    final = read_eval_log(run)[-1]
    # A random policy almost never ends within 5 cm of the goal (0-1 of these 20 episodes);
    # this run reaches 1.0 by 2500 steps on seeds 0-2 (0.6-1.0 by 2000).
    assert final["success_rate"] >= 0.5, final
    assert final["safety_cost"] < 5.0, final  # the safety critic keeps joint speeds in check
