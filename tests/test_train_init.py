"""Fine-tuning a published RL skill on another robot: `skillstack train --init SKILL --set robot=ur5e`."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import yaml

from policies.training import load_config
from policies.training.env_factory import make_vec_env
from policies.training.init_policy import InitPolicyError, init_from_package
from policies.training.model import build_model

CONFIGS = Path(__file__).resolve().parent.parent / "configs"
TINY = ["total_timesteps=200", "algo_kwargs.learning_starts=100", "algo_kwargs.batch_size=64",
        "algo_kwargs.policy_kwargs.net_arch=[32,32]", "eval.episodes=2", "eval.freq=0", "eval.video=false",
        "export.descriptors.grid=1", "export.descriptors.episodes_per_cell=1"]


@pytest.fixture(scope="module")
def panda_reach(tmp_path_factory) -> Path:
    """A tiny Reach skill trained on the Panda, published into a library."""
    from skillstack.cli import main

    root = tmp_path_factory.mktemp("init")
    args = ["train", str(CONFIGS / "reach.yaml"), "--run-dir", str(root / "run"), "--no-progress", "--library", str(root / "lib")]
    assert main([*args, *[a for o in TINY for a in ("--set", o)]]) == 0
    return root / "lib"


def test_init_starts_the_actor_as_the_skill_acts_on_the_other_robot(panda_reach: Path) -> None:
    from skill_library.registry import SkillLibrary

    lib = SkillLibrary(panda_reach)
    skill = lib.load("reach")
    cfg = load_config(CONFIGS / "reach.yaml", overrides=[*TINY, "robot=ur5e", f"init={lib.resolve('reach').path}"])
    venv = make_vec_env(cfg)
    try:
        assert venv.get_attr("unwrapped")[0].robot.name == "ur5e"
        model = build_model(cfg, venv)
        before = model.predict(venv.normalize_obs(venv.reset()), deterministic=True)[0]
        info = init_from_package(model, venv, cfg.init)
        assert info["skill"] == "reach@0.1.0" and info["obs_statistics"]
        venv.training = False  # compare on the skill's statistics (training would update them with each step)
        rng = np.random.default_rng(0)
        for _ in range(5):
            raw = venv.get_original_obs()
            ours = model.predict(venv.normalize_obs(raw), deterministic=True)[0][0]
            theirs = skill({k: v[0] for k, v in raw.items()})
            np.testing.assert_allclose(ours, theirs, atol=1e-5)
            venv.step(rng.uniform(-1, 1, (1, 4)).astype(np.float32))
        assert not np.allclose(before[0], ours)  # the weights really changed
    finally:
        venv.close()


def test_train_init_fine_tunes_on_the_ur5e_and_publishes(panda_reach: Path, tmp_path: Path, capsys) -> None:
    from skill_library.registry import SkillLibrary
    from skillstack.cli import main

    args = ["train", str(CONFIGS / "reach.yaml"), "--run-dir", str(tmp_path / "ft"), "--no-progress",
            "--init", "reach", "--library", str(panda_reach), "--set", "robot=ur5e", "--set", "export.name=reach_ur5e"]
    assert main([*args, *[a for o in TINY for a in ("--set", o)]]) == 0
    cfg = yaml.safe_load((tmp_path / "ft" / "config.yaml").read_text())
    assert cfg["robot"] == "ur5e" and cfg["init"].endswith("reach/0.1.0")
    m = SkillLibrary(panda_reach).manifest("reach_ur5e")
    assert m.embodiment.robot == "skillstack/ur5e-v1"
    assert "reach_ur5e@0.1.0" in capsys.readouterr().out


def test_init_refuses_a_network_that_does_not_fit(panda_reach: Path, capsys) -> None:
    from skill_library.registry import SkillLibrary

    pkg = SkillLibrary(panda_reach).resolve("reach").path
    cfg = load_config(CONFIGS / "reach.yaml", overrides=[*TINY, "algo_kwargs.policy_kwargs.net_arch=[64,64]"])
    venv = make_vec_env(cfg)
    try:
        with pytest.raises(InitPolicyError, match="do not fit the run's actor"):
            init_from_package(build_model(cfg, venv), venv, pkg)
    finally:
        venv.close()
    from skillstack.cli import main

    assert main(["train", str(CONFIGS / "reach.yaml"), "--init", "nope", "--library", str(panda_reach)]) == 2
    assert "no skill 'nope'" in capsys.readouterr().err
