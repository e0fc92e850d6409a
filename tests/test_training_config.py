"""Training configuration: typed dataclasses from YAML with --set overrides, clear errors for unknown keys
and wrong types, and the resolved config saved with the run and read back unchanged."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from policies.training import (
    ConfigTypeError,
    EvalConfig,
    HerConfig,
    TrainConfig,
    UnknownConfigKeyError,
    load_config,
    save_config,
)

CONFIGS = Path(__file__).resolve().parent.parent / "configs"


def _write(tmp_path: Path, data: dict) -> Path:
    path = tmp_path / "exp.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def test_yaml_becomes_typed_sections_with_defaults() -> None:
    cfg = load_config(CONFIGS / "reach.yaml")
    assert isinstance(cfg, TrainConfig)
    assert cfg.her == HerConfig(n_sampled_goal=4, goal_selection_strategy="future")
    assert isinstance(cfg.eval, EvalConfig) and cfg.eval.freq == 1000 and cfg.eval.video == "final"
    assert cfg.checkpoint.keep == 2 and cfg.export.descriptors.grid == 2  # defaults the file does not state
    assert cfg.algo_kwargs["critic_layout"] == "shared"  # the algorithm's own arguments stay a mapping


def test_unknown_key_names_the_key_and_the_allowed_keys(tmp_path) -> None:
    with pytest.raises(UnknownConfigKeyError) as info:
        load_config(_write(tmp_path, {"total_timestep": 100}))
    msg = str(info.value)
    assert "'total_timestep'" in msg and "total_timesteps" in msg and "allowed at the top level" in msg
    with pytest.raises(KeyError, match=r"unknown config keys \['eval\.frq'\]; allowed under 'eval': \['camera'"):
        load_config(CONFIGS / "reach.yaml", ["eval.frq=5"])
    with pytest.raises(KeyError, match=r"'skill_discovery\.skil_dim'.*'skill_dim'"):
        load_config(CONFIGS / "push_skills.yaml", ["skill_discovery.skil_dim=4"])


def test_wrong_type_names_the_key_and_the_expected_type(tmp_path) -> None:
    with pytest.raises(ConfigTypeError, match=r"'eval\.episodes': expected int, got str 'many'"):
        load_config(_write(tmp_path, {"eval": {"episodes": "many"}}))
    with pytest.raises(ValueError, match=r"'seed': expected int, got bool True"):
        load_config({"seed": True})
    with pytest.raises(ValueError, match=r"'vec_env': expected one of 'dummy', 'subproc'"):
        load_config(CONFIGS / "reach.yaml", ["vec_env=threads"])
    with pytest.raises(ValueError, match=r"'eval': expected a mapping \(EvalConfig\)"):
        load_config({"eval": 5})
    with pytest.raises(ValueError, match=r"'checkpoint\.freq': must be >= 0"):
        load_config(CONFIGS / "reach.yaml", ["checkpoint.freq=-1"])
    with pytest.raises(ValueError, match="not KEY=VALUE"):
        load_config(CONFIGS / "reach.yaml", ["eval..freq=1"])


def test_overrides_parse_yaml_except_for_text_fields() -> None:
    cfg = load_config(CONFIGS / "reach.yaml", [
        "total_timesteps=300", "algo_kwargs.policy_kwargs.net_arch=[32,32]", "normalize.clip_obs=1e-3",
        "export.version=1.10", "export.name=007", "export.library=null", "eval.video=false",
    ])
    assert cfg.total_timesteps == 300 and cfg.algo_kwargs["policy_kwargs"]["net_arch"] == [32, 32]
    assert cfg.normalize.clip_obs == pytest.approx(1e-3)  # PyYAML reads 1e-3 as text; a float field takes it
    assert cfg.export.version == "1.10" and cfg.export.name == "007"  # not 1.1 and 7
    assert cfg.export.library is None and cfg.eval.video is False


def test_optional_sections_switch_off_with_null_or_empty_mapping() -> None:
    assert load_config(CONFIGS / "reach.yaml", ["her=null"]).her is None
    assert load_config(CONFIGS / "reach.yaml", ["her={}"]).her is None
    assert load_config(CONFIGS / "reach.yaml", ["export.descriptors={}"]).export.descriptors is None
    assert load_config(CONFIGS / "reach.yaml", ["normalize=null"]).normalize is None
    turned_on = load_config({"her": None}, ["her.n_sampled_goal=2"]).her
    assert turned_on == HerConfig(n_sampled_goal=2)


def test_resolved_config_saved_with_the_run_reads_back_equal(tmp_path) -> None:
    cfg = load_config(CONFIGS / "push_skills.yaml", ["seed=4", "export.effects=['at(red)']"])
    save_config(cfg, tmp_path / "run" / "config.yaml")
    assert load_config(tmp_path / "run") == cfg  # a run folder reads as its config
    saved = yaml.safe_load((tmp_path / "run" / "config.yaml").read_text())
    assert saved["seed"] == 4 and saved["skill_discovery"]["skill_dim"] == 8 and saved["her"] is None
    assert load_config(cfg, ["seed=5"]).seed == 5 and cfg.seed == 4  # a config is never changed in place


def test_constructing_a_config_in_python_checks_values_too() -> None:
    with pytest.raises(ConfigTypeError, match="total_timesteps"):
        TrainConfig(total_timesteps=0)
    with pytest.raises(ConfigTypeError, match="do not use HER"):
        load_config(CONFIGS / "push_skills.yaml", ["her.n_sampled_goal=4"])


def test_cli_train_reports_a_bad_key_without_training(tmp_path, capsys) -> None:
    from skillstack.cli import main

    rc = main(["train", str(CONFIGS / "reach.yaml"), "--run-dir", str(tmp_path / "run"), "--set", "eval.epsiodes=3"])
    assert rc == 2
    err = capsys.readouterr().err
    assert "skillstack train: error: unknown config keys ['eval.epsiodes']" in err and "'episodes'" in err
    assert not (tmp_path / "run").exists()
