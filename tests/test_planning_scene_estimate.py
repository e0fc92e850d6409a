"""The controller's scene estimate (planning.scene_estimate) and the perceived scene it reads."""

from __future__ import annotations

import tempfile

import numpy as np
import pytest

from envs.predicates import SceneState, on
from planning.scene_estimate import SceneEstimator, SceneEstimatorConfig

H = 0.02


def _scene(objects: dict[str, np.ndarray], tcp=(0.4, 0.0, 0.3), width: float = 0.08) -> SceneState:
    return SceneState(tcp_pos=np.asarray(tcp, float), tcp_mat=np.diag([1.0, -1.0, -1.0]), gripper_width=width,
                      objects={k: np.asarray(v, float) for k, v in objects.items()}, cube_half_size=H)


def test_exact_readings_of_a_still_or_steadily_moving_cube_are_returned_exactly():
    est = SceneEstimator()
    for k in range(25):
        pushed = np.array([0.5 + 0.004 * k, 0.1, H])  # 10 cm/s, as a push moves a cube
        out = est.update(_scene({"still": np.array([0.6, -0.1, H]), "pushed": pushed}))
        np.testing.assert_allclose(out.objects["still"], [0.6, -0.1, H], atol=1e-12)
        if k >= 2:  # a line needs three readings to be told from noise
            np.testing.assert_allclose(out.objects["pushed"], pushed, atol=1e-9)


def test_a_noisy_still_cube_is_estimated_several_times_better_than_one_reading():
    rng = np.random.default_rng(0)
    est, true, errs = SceneEstimator(), np.array([0.55, 0.05, H]), []
    for _ in range(300):
        out = est.update(_scene({"red": true + rng.normal(0.0, 0.01, 3)}))
        errs.append(out.objects["red"] - true)
    rms = float(np.sqrt(np.mean(np.square(errs[30:]))))
    assert rms < 0.35 * 0.01, rms  # the window's mean: about 0.01 / sqrt(25) per axis, a few moving-line picks aside


def test_a_stacked_cube_stays_on_under_1cm_noise_where_single_readings_flicker():
    rng = np.random.default_rng(1)
    blue, red = np.array([0.5, 0.0, H]), np.array([0.5, 0.0, 3 * H])
    est, raw_on, est_on = SceneEstimator(), 0, 0
    for t in range(200):
        seen = _scene({"red": red + rng.normal(0, 0.01, 3), "blue": blue + rng.normal(0, 0.01, 3)})
        raw_on += on(seen, "red", "blue")
        estimated = est.update(seen)
        est_on += t >= 10 and on(estimated, "red", "blue")
    assert raw_on < 0.7 * 200  # a single reading says "not on" about every other tick
    assert est_on > 0.9 * 190, est_on


def test_a_held_cube_is_tracked_in_the_hand_frame_and_does_not_lag_the_carrying_arm():
    rng = np.random.default_rng(2)
    est, errs = SceneEstimator(), []
    for k in range(60):
        tcp = np.array([0.4 + 0.01 * k, 0.0, 0.1 + 0.005 * k])  # 25 cm/s, lifting
        cube = tcp + np.array([0.0, 0.0, -0.003])
        out = est.update(_scene({"red": cube + rng.normal(0, 0.01, 3)}, tcp=tcp, width=2 * H - 0.002))
        errs.append(np.linalg.norm(out.objects["red"] - cube))
    assert np.mean(errs[15:]) < 0.008, np.mean(errs[15:])  # a world-frame mean would trail by ~5 cm


def test_a_knocked_cube_is_seen_where_it_landed_at_once():
    est = SceneEstimator()
    for _ in range(15):
        est.update(_scene({"red": [0.5, 0.0, H]}))
    out = est.update(_scene({"red": [0.5, 0.12, H]}))
    np.testing.assert_allclose(out.objects["red"], [0.5, 0.12, H])


def test_bad_readings_and_settings_are_refused():
    est = SceneEstimator()
    with pytest.raises(ValueError, match="not finite"):
        est.update(_scene({"red": [np.nan, 0.0, H]}))
    with pytest.raises(ValueError, match="window"):
        SceneEstimatorConfig(window=0)
    with pytest.raises(ValueError, match="jump"):
        SceneEstimatorConfig(jump=0.0)


def test_the_env_under_noise_perceives_the_cubes_as_observed_and_scores_the_truth():
    import envs  # noqa: F401
    from envs.conditions import make_condition_env

    env = make_condition_env("skillstack/PandaStackTwo-v0", "obs_noise1cm")
    try:
        obs, _ = env.reset(seed=3)
        u = env.unwrapped
        layout = u.observation_layout
        for _ in range(3):
            seen = u.perceived_scene_state()
            for o in u.objects:
                np.testing.assert_allclose(seen.objects[o], obs["observation"][layout[f"{o}_pos"]])
                assert not np.allclose(seen.objects[o], u.object_pos(o))  # the noisy reading, not the truth
                np.testing.assert_allclose(u.scene_state().objects[o], u.object_pos(o))
            obs, *_ = env.step(np.zeros(env.action_space.shape, dtype=np.float32))
    finally:
        env.close()
    plain = envs.make("skillstack/PandaStackTwo-v0")
    plain.reset(seed=3)
    u = plain.unwrapped
    assert all(np.array_equal(u.perceived_scene_state().objects[o], u.object_pos(o)) for o in u.objects)
    plain.close()


def test_a_grounded_skill_reads_the_cubes_the_controller_perceives_not_the_simulator_s():
    from envs.conditions import make_condition_env
    from planning.grounding import ground_skill, staging_points
    from planning.symbolic import Domain
    from skill_library.skill import load_skill
    from skill_library.starter import write_starter_packages

    with tempfile.TemporaryDirectory() as tmp:
        (path,) = write_starter_packages(tmp, ["pick_red"])
        skill = load_skill(path)
        env = make_condition_env("skillstack/PandaStackTwo-v0", "obs_noise1cm")
        env.reset(seed=0)
        u = env.unwrapped
        scene = u.perceived_scene_state()
        domain = Domain.from_scene(scene, staging_points(scene))
        (op,) = [o for o in ground_skill(skill, scene, domain) if o.label == "pick_red"]
        gs = op.payload
        gs.start(env)  # default: the env's perceived scene
        np.testing.assert_allclose(gs.view.object_pos("red"), u.perceived_object_pos("red"))
        assert not np.allclose(gs.view.object_pos("red"), u.object_pos("red"))
        est = SceneEstimator()
        estimated = est.update(u.perceived_scene_state())
        gs.start(env, perceive=lambda: est.scene)  # the controller's estimate
        np.testing.assert_allclose(gs.view.object_pos("red"), estimated.objects["red"])
        env.close()
