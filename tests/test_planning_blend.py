"""SkillBlender-style blending: weight arithmetic, a blend that selects one skill solves the task, SB3 training runs."""

import numpy as np
import pytest

import envs
from skill_library import SkillLibrary, build_starter_skills
from planning import BlendConfig, BlendEnv, evaluate_blender, load_library_skills, resolve_task, train_blender
from planning.blend import load_blender, save_blender, select_blend_skills


@pytest.fixture(scope="module")
def skills(tmp_path_factory):
    lib = SkillLibrary(tmp_path_factory.mktemp("blend") / "lib")
    build_starter_skills(lib, ["pick_red", "place_red_on_blue", "stack_red_on_blue"])
    return load_library_skills(lib, "scripted")


def test_blend_weights_are_a_softmax_over_skills_per_action_dimension(skills):
    task = resolve_task("stack-two")
    env = envs.make(task.env_id)
    labels = select_blend_skills(skills, env, task.goal)
    assert labels[0] == "stack_red_on_blue" and set(labels) <= {"stack_red_on_blue", "pick_red", "place_red_on_blue"}
    benv = BlendEnv(env.unwrapped, skills, labels, logit_scale=10.0)
    k, d = benv.k, benv.d
    assert benv.action_space.shape == (k * d + 3 * k,)
    obs, _ = benv.reset(seed=0)
    assert obs.shape == benv.observation_space.shape
    logits = -np.ones((k, d))
    logits[0] = 1.0  # all weight on the whole-task skill, every dimension
    action = np.concatenate([logits.ravel(), np.zeros(3 * k)])
    info = {}
    for _ in range(env.spec.max_episode_steps):
        obs, _r, _t, _tr, info = benv.step(action)
    w = benv.last_weights
    np.testing.assert_allclose(w.sum(axis=0), 1.0)
    assert np.all(w[0] > 0.99) and info["is_success"] == 1.0
    uniform = benv.blend(np.zeros(k * d + 3 * k))
    assert uniform.shape == (d,) and np.allclose(benv.last_weights, 1.0 / k)


def test_train_and_evaluate_a_blender_briefly(skills):
    task = resolve_task("stack-two")
    cfg = BlendConfig(total_steps=200, learning_starts=100, hidden=(16, 16))
    model, labels, info = train_blender(skills, task.env_id, task.goal, cfg)
    assert info["steps"] == 200 and info["env_id"] == "skillstack/PandaStackTwoDense-v0" and info["skills"] == labels
    ev = evaluate_blender(model, skills, labels, task.env_id, episodes=1, config=cfg)
    assert 0.0 <= ev["success_rate"] <= 1.0 and set(ev["mean_weights"]) == set(labels)
    assert all(len(v) == 4 for v in ev["mean_weights"].values())
    with pytest.raises(ValueError, match="algo must be"):
        train_blender(skills, task.env_id, task.goal, BlendConfig(algo="dqn"))


def test_a_saved_blender_reloads_and_acts_exactly_as_trained(skills, tmp_path):
    task = resolve_task("stack-two")
    cfg = BlendConfig(total_steps=150, learning_starts=100, hidden=(16, 16), seed=2)
    model, labels, _ = train_blender(skills, task.env_id, task.goal, cfg)
    out = save_blender(model, labels, skills, task.env_id, cfg, tmp_path / "blender")
    assert sorted(p.name for p in out.iterdir()) == ["actor.safetensors", "blender.json"]
    with pytest.raises(FileExistsError):
        save_blender(model, labels, skills, task.env_id, cfg, out)
    loaded = load_blender(out, skills)
    assert loaded.labels == labels and loaded.config == cfg and loaded.env_id == task.env_id
    obs = np.random.default_rng(0).normal(size=(5,) + model.observation_space.shape).astype(np.float32)
    np.testing.assert_allclose(loaded.predict(obs)[0], model.predict(obs, deterministic=True)[0], atol=1e-5)
    a = evaluate_blender(model, skills, labels, task.env_id, episodes=1, config=cfg)
    b = evaluate_blender(loaded, skills, labels, task.env_id, episodes=1, config=cfg)
    assert a["mean_weights"] == b["mean_weights"] and a["success_rate"] == b["success_rate"]
    # the skills it blends must be the versions it was trained with; damaged files are named
    with pytest.raises(ValueError, match="trained with"):
        load_blender(out, skills[:1])
    (out / "actor.safetensors").write_bytes(b"garbage")
    with pytest.raises(ValueError, match="damaged blender"):
        load_blender(out, skills)
    with pytest.raises(ValueError, match="not a saved blender"):
        load_blender(tmp_path / "nowhere", skills)


def test_run_task_cli_saves_then_reuses_a_blender(skills, tmp_path, capsys):
    from skillstack.cli import main

    lib = tmp_path / "lib"
    build_starter_skills(SkillLibrary(lib), ["stack_red_on_blue"])
    common = ["run-task", "stack-two", "--library", str(lib), "--mode", "blend", "--episodes", "1", "--no-adapt"]
    assert main(common + ["--blend-steps", "120", "--save-blender", str(tmp_path / "b")]) == 0
    assert "blending policy saved to" in capsys.readouterr().out
    assert main(common + ["--blender", str(tmp_path / "b"), "--json", str(tmp_path / "r.json")]) == 0
    assert "training the blending policy" not in capsys.readouterr().out
    import json

    report = json.loads((tmp_path / "r.json").read_text())
    assert report["training"]["loaded"] == str(tmp_path / "b")
    assert main(["run-task", "stack-two", "--library", str(lib), "--blender", str(tmp_path / "b")]) == 2
