"""Skills that cross embodiments: a skill on the "tcp" layout runs on any robot, a "joint"-layout
skill only on the same arm joints; manifests record the layout and the robots a skill was checked on."""

import json

import numpy as np
import pytest
import yaml

import envs
from skill_library.errors import SkillLibraryError
from skill_library.manifest import Manifest
from skill_library.skill import load_skill
from skill_library.testing import make_random_skill


def test_layout_names_agree_across_layers():
    from envs.observation import OBS_LAYOUTS
    from policies.training.config import OBS_LAYOUTS as CONFIG_LAYOUTS
    from skill_library.manifest import OBS_LAYOUTS as MANIFEST_LAYOUTS

    assert set(OBS_LAYOUTS) == set(CONFIG_LAYOUTS) == set(MANIFEST_LAYOUTS)


def test_tcp_skill_binds_on_both_arms_and_records_its_layout(tmp_path):
    man = make_random_skill(tmp_path / "s", env=envs.make("skillstack/PandaPush-v0", obs_layout="tcp"))
    assert man.embodiment.obs_layout == "tcp" and man.obs_layout == "tcp"
    skill = load_skill(tmp_path / "s")
    for robot in ("panda", "ur5e"):
        env = envs.make("skillstack/PandaPush-v0", robot=robot, obs_layout="tcp")
        skill.bind(env)
        obs, _ = env.reset(seed=0)
        assert env.action_space.contains(skill(obs))
    with pytest.raises(SkillLibraryError, match="reads the 'tcp' observation layout; env gives 'joint'"):
        skill.bind(envs.make("skillstack/PandaPush-v0", robot="ur5e"))


def test_joint_skill_refuses_another_arm(tmp_path):
    man = make_random_skill(tmp_path / "s")  # the joint layout on the Panda
    assert man.obs_layout == "joint"
    skill = load_skill(tmp_path / "s")
    skill.bind(envs.make("skillstack/PandaPush-v0"))
    with pytest.raises(SkillLibraryError, match=r"is for arm joints \['panda_joint1'.*env has \['shoulder_pan_joint'"):
        skill.bind(envs.make("skillstack/PandaPush-v0", robot="ur5e"))


def test_scripted_skill_reads_the_simulator_on_any_robot_and_layout(tmp_path):
    from skill_library.registry import SkillLibrary
    from skill_library.starter import build_starter_skills

    lib = SkillLibrary(tmp_path / "lib")
    build_starter_skills(lib, ["pick_red"])
    skill = lib.load("pick_red")
    assert skill.manifest.embodiment.obs_layout is None  # scripted: no layout recorded
    env = envs.make("skillstack/PandaPickPlace-v0", robot="ur5e", obs_layout="tcp")
    skill.bind(env)
    obs, _ = env.reset(seed=0)
    skill.reset()
    assert env.action_space.contains(skill(obs))


def test_manifest_without_layout_fields_keeps_its_bytes_and_reads_the_task_layout(tmp_path):
    man = make_random_skill(tmp_path / "s")
    d = json.loads((tmp_path / "s" / "manifest.json").read_text())
    d["embodiment"].pop("obs_layout")  # a manifest written before the field
    d["task"]["env_kwargs"] = {"obs_layout": "tcp"}
    d.pop("manifest_digest")
    old = Manifest.from_dict(d, check_digest=False)
    assert old.embodiment.obs_layout is None and old.obs_layout == "tcp"
    assert "obs_layout" not in old.to_dict()["embodiment"] and "checked_on" not in old.to_dict()["embodiment"]
    assert man.to_dict()["embodiment"]["obs_layout"] == "joint"


def test_checked_on_records_round_trip_and_bad_ones_are_refused(tmp_path):
    from skill_library.embodiments import check_record, with_check
    from skill_library.errors import SkillPackageError

    man = make_random_skill(tmp_path / "s", env=envs.make("skillstack/PandaPush-v0", obs_layout="tcp"))
    desc = {"env_id": "skillstack/PandaPush-v0", "env_kwargs": {"obs_layout": "tcp", "robot": "ur5e"},
            "totals": {"episodes": 50, "success_rate": 0.96}}  # fmt: skip
    rec = check_record(desc)
    assert rec == {"robot": "skillstack/ur5e-v1", "env_id": "skillstack/UR5ePush-v0", "episodes": 50, "success_rate": 0.96}
    twice = with_check(with_check(man, {**rec, "success_rate": 0.5}), rec)  # the newer record for the same robot wins
    back = Manifest.from_dict(twice.to_dict())
    assert back.embodiment.checked_on == (rec,)
    bad = twice.to_dict(with_digest=False)
    bad["embodiment"]["checked_on"][0]["success_rate"] = 1.5
    with pytest.raises(SkillPackageError, match=r"embodiment.checked_on\[0\].success_rate"):
        Manifest.from_dict(bad, check_digest=False)
    bad["embodiment"]["obs_layout"] = "joints"
    with pytest.raises(SkillPackageError, match="embodiment.obs_layout"):
        Manifest.from_dict(bad, check_digest=False)


def test_training_config_defaults_to_tcp_and_old_runs_keep_joint(tmp_path):
    from policies.training.config import TrainConfig, load_config, save_config

    cfg = load_config("configs/reach.yaml")
    assert cfg.obs_layout == "tcp" and cfg.env_make_kwargs["obs_layout"] == "tcp"
    moved = load_config("configs/reach.yaml", ["env_kwargs.obs_layout=joint"])
    assert moved.obs_layout == "joint" and "obs_layout" not in moved.env_kwargs
    save_config(cfg, tmp_path / "config.yaml")
    old = yaml.safe_load((tmp_path / "config.yaml").read_text())
    old.pop("obs_layout")  # a run saved before the key existed trained on the joint layout
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(old))
    assert load_config(tmp_path).obs_layout == "joint"
    with pytest.raises(ValueError, match="obs_layout"):
        TrainConfig(obs_layout="joints")  # type: ignore[arg-type]


def test_hold_action_keeps_the_ur5e_gripper_at_its_width():
    import mujoco

    from planning.executor import _hold_action

    env = envs.make("skillstack/PandaPickPlace-v0", robot="ur5e", obs_layout="tcp")
    env.reset(seed=0)
    u = env.unwrapped
    u.data.qpos[u.robot.finger_qpos] = u.robot.gripper_targets(0.04)
    mujoco.mj_forward(u.model, u.data)
    assert u.gripper_width() == pytest.approx(0.04)
    assert _hold_action(env, u.scene_state())[-1] == pytest.approx(2 * 0.04 / 0.085 - 1)  # the UR5e opens to 85 mm, not the Panda's 80


@pytest.mark.slow
def test_panda_trained_skill_succeeds_on_the_ur5e(tmp_path):
    """A tiny multi-critic SAC Reach trained on the Panda (tcp layout, seeded) runs unchanged on the UR5e."""
    from skill_library.publish import train_and_publish
    from skill_library.registry import SkillLibrary

    overrides = ["total_timesteps=3000", "eval.freq=3000", "eval.episodes=5", "eval.video=false", "checkpoint.freq=3000",
                 "export.descriptors.grid=2", "export.descriptors.episodes_per_cell=2", f"export.library={tmp_path / 'lib'}"]  # fmt: skip
    train_and_publish("configs/reach.yaml", overrides, run_dir=tmp_path / "run", progress=False)
    skill = SkillLibrary(tmp_path / "lib").load("reach")
    assert skill.manifest.embodiment.robot == "skillstack/panda-v1" and skill.manifest.obs_layout == "tcp"
    (home,) = skill.manifest.embodiment.checked_on  # the descriptors evaluation at publish, on the Panda
    assert home["robot"] == "skillstack/panda-v1" and home["episodes"] == 8
    ur5e = envs.make("skillstack/PandaReach-v0", robot="ur5e", obs_layout="tcp")
    skill.bind(ur5e)
    successes = 0
    for ep in range(10):
        obs, _ = ur5e.reset(seed=1000 + ep)
        for _ in range(ur5e.spec.max_episode_steps):
            obs, _r, _term, _trunc, info = ur5e.step(skill(obs))
        successes += bool(info["is_success"])
    assert successes >= 9
