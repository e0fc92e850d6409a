"""The hierarchical controller in MuJoCo: end-to-end runs, monitoring, re-planning, learned/scripted kept apart."""

import json

import mujoco
import numpy as np
import pytest

import envs
from envs.predicates import holding, on
from common.video import read_mp4
from skill_library import SkillLibrary, attach_descriptors, build_starter_skills, evaluate_skill
from planning import (
    ControllerConfig,
    HierarchicalController,
    load_library_skills,
    resolve_task,
    run_task,
)
from planning.grounding import ground_skill, staging_points
from planning.symbolic import Domain
from skill_library.testing import make_random_skill
from skillstack.cli import main


@pytest.fixture(scope="module")
def lib_path(tmp_path_factory):
    path = tmp_path_factory.mktemp("planning") / "lib"
    build_starter_skills(SkillLibrary(path))
    return path


@pytest.fixture(scope="module")
def scripted(lib_path):
    return load_library_skills(SkillLibrary(lib_path), "scripted")


def controller(skills, **kw):
    return HierarchicalController(skills, ControllerConfig(explore=False, **kw))


def test_stack_two_end_to_end_with_scripted_skills(scripted):
    task = resolve_task("stack-two")
    env = envs.make(task.env_id)
    ctrl = controller(scripted)
    for seed in (0, 1):
        r = ctrl.run_episode(env, task.goal, seed=seed)
        assert r.success and r.goal_holds and r.replans == 0 and r.steps == 150
        d = r.decisions[0]
        assert d.outcome == "success" and d.reason == "effects reached" and d.kind == "scripted"
        assert 0 < d.estimated_success <= 1 and 0 < d.probability <= 1 and d.plan[0] == d.label and d.steps > 0
    assert ctrl.bandit.updates == sum(1 for _ in range(2))  # one decision per episode, each updated the bandit


def test_under_1cm_object_noise_the_controller_decides_on_its_estimate_and_keeps_a_reached_goal(scripted):
    """Under `obs_noise1cm` the controller reads the perceived (noisy) scene, as on a robot. Single
    readings of the finished stack break `on(red,blue)` about every other tick; the controller's
    estimate does not: the stack is decided once, and nothing is decided after the goal held."""
    from envs.conditions import make_condition_env

    task = resolve_task("stack-two")
    env = make_condition_env(task.env_id, "obs_noise1cm")
    hold = np.zeros(env.action_space.shape, dtype=np.float32)
    for seed in (0, 1):
        ctrl = controller(scripted)
        r = ctrl.run_episode(env, task.goal, seed=seed)
        assert r.success and r.goal_holds, r.decisions
        assert [d.label for d in r.decisions] == ["stack_red_on_blue"], [(d.label, d.reason) for d in r.decisions]
        assert on(ctrl.scene_estimate.scene, "red", "blue")
        # The same finished stack, read one tick at a time as the controller's input arrives:
        flicker = 0
        for _ in range(30):
            env.step(hold)
            flicker += not on(env.unwrapped.perceived_scene_state(), "red", "blue")
        assert flicker >= 3, flicker
        assert on(env.unwrapped.scene_state(), "red", "blue")  # the stack itself stood
    env.close()


def test_stack_three_and_push_then_pick_compose_several_skills(scripted):
    task = resolve_task("stack-three")
    r = controller(scripted).run_episode(envs.make(task.env_id), task.goal, seed=0)
    labels = [d.label for d in r.decisions]
    assert r.success and len(labels) >= 3 and all(d.outcome == "success" for d in r.decisions)
    assert labels[-1] == "place_red_on_blue(red=green,blue=red)"  # the red-cube skill re-grounded on green and red
    task = resolve_task("push-then-pick")
    r = controller(scripted).run_episode(envs.make(task.env_id), task.goal, seed=1)
    assert r.success and r.decisions[0].label == "push_red(goal=staging_red)"
    assert r.decisions[1].label == "pick_place_red"


def _knock_red_out_of_gripper(env, step, decision):
    u = env.unwrapped
    s = u.scene_state()
    if not getattr(env, "_knocked", False) and holding(s, "red") and s.objects["red"][2] > 0.07:
        p = s.objects["red"]
        u.set_object_pos("red", np.array([p[0], p[1] + (0.1 if p[1] < 0 else -0.1), u.cube_half_size]))
        mujoco.mj_forward(u.model, u.data)
        env._knocked = True


def test_replans_after_the_cube_is_knocked_out_of_the_gripper(scripted):
    task = resolve_task("stack-two")
    env = envs.make(task.env_id)
    r = controller(scripted).run_episode(env, task.goal, seed=2, step_callback=_knock_red_out_of_gripper)
    assert env._knocked
    first, last = r.decisions[0], r.decisions[-1]
    assert first.outcome == "failure" and first.reason == "lost grasp of red"
    # The next decision is a re-plan; the stack is reached within the re-plan budget (in this seed the
    # first re-plan's grasp slips too: the arm comes to rest before it and starts from above the cube).
    assert r.decisions[1].replan and 1 <= r.replans <= 3
    assert last.outcome == "success" and last.replan and r.success


def test_a_toppled_tower_stops_the_running_skill(scripted):
    task = resolve_task("stack-three")
    env = envs.make(task.env_id)
    count = {"n": 0}

    def knock(env, step, d):
        u = env.unwrapped
        s = u.scene_state()
        if d.label.endswith("(red=green)") and on(s, "red", "blue") and count["n"] == 0:
            b = s.objects["blue"]
            u.set_object_pos("red", np.array([b[0], b[1] + (0.1 if b[1] < 0 else -0.1), u.cube_half_size]))
            mujoco.mj_forward(u.model, u.data)
            count["n"] += 1

    r = controller(scripted).run_episode(env, task.goal, seed=0, step_callback=knock)
    reasons = [d.reason for d in r.decisions]
    assert count["n"] == 1 and "knocked over: on(red,blue) no longer holds" in reasons
    assert r.replans >= 1 and r.success


def test_replan_budget_and_unreachable_goals_stop_the_controller(scripted):
    task = resolve_task("stack-two")
    env = envs.make(task.env_id)

    def always_knock(env, step, d):
        env._knocked = False
        _knock_red_out_of_gripper(env, step, d)

    r = controller(scripted, replan_budget=1).run_episode(env, task.goal, seed=0, step_callback=always_knock)
    assert not r.success and r.replans == 1 and r.stop_reason == "re-plan budget (1) exhausted"
    assert [d.outcome for d in r.decisions] == ["failure", "failure"]
    r = controller(scripted).run_episode(env, resolve_task("stack-two", goal="on(red,blue) & on(blue,red)").goal, seed=0)
    assert not r.success and r.skills == 0 and r.stop_reason.startswith("no plan reaches goal")
    with pytest.raises(ValueError, match=r"names cube\(s\) \['green'\] not in the scene"):
        controller(scripted).run_episode(env, resolve_task("stack-two", goal="on(green,red)").goal, seed=0)


def test_learned_only_refuses_scripted_skills(lib_path, scripted, capsys):
    with pytest.raises(ValueError, match=r"no learned \(rl/bc\) skills \(12 other skill\(s\) refused\)"):
        load_library_skills(SkillLibrary(lib_path), "learned")
    with pytest.raises(ValueError, match="learned-only run refuses scripted skills"):
        run_task("stack-two", skills=scripted, kinds="learned", episodes=1, adapt=False)
    assert main(["run-task", "stack-two", "--library", str(lib_path), "--learned-only"]) == 2
    assert "no learned (rl/bc) skills" in capsys.readouterr().err


def test_learned_skills_are_grounded_through_a_view(tmp_path):
    lib = SkillLibrary(tmp_path / "lib")
    make_random_skill(tmp_path / "pkg", name="push_net", effects=("at(red) & on_table(red)",), preconditions=("on_table(red)",))
    lib.add(tmp_path / "pkg")
    # Descriptors (a tiny grid evaluation) feed the planner's estimates of every grounding.
    desc = evaluate_skill(lib.load("push_net"), grid=2, episodes_per_cell=1, max_steps=3)
    lib.update_manifest("push_net", attach_descriptors(lib.manifest("push_net"), desc))
    skills = load_library_skills(lib, "learned")
    env = envs.make("skillstack/PandaStackThree-v0")
    obs, _ = env.reset(seed=0)
    scene = env.unwrapped.scene_state()
    domain = Domain.from_scene(scene, staging_points(scene))
    ops = ground_skill(skills[0], scene, domain)
    # One grounding per cube x goal site on the table: goal_red/goal_green float above blue, and a push
    # (effect on_table) cannot put a cube there, so those groundings are inconsistent and dropped.
    assert {op.label for op in ops} == {"push_net(goal=goal_blue)", "push_net(red=green,goal=goal_blue)", "push_net(red=blue,goal=goal_blue)"}
    assert {op.kind for op in ops} == {"rl"}
    for o in ops:
        assert o.success == 0.0 and o.duration_s == pytest.approx(3 * 0.04)  # a random net never arrives in 3 steps
    gs = next(op for op in ops if op.label == "push_net(red=green,goal=goal_blue)").payload
    gs.start(env)
    view_obs = gs.view.skill_observation(obs)
    u = env.unwrapped
    np.testing.assert_array_equal(view_obs["observation"][15:18], u.object_pos("green"))
    np.testing.assert_allclose(view_obs["desired_goal"], scene.goals["goal_blue"])
    a = gs.act(obs)
    assert a.shape == (4,) and np.all(np.abs(a) <= 1.0)
    rep = run_task("pick-place", skills=skills, kinds="learned", episodes=1, adapt=False)
    assert rep["skill_kinds"] == "learned" and rep["skills"] == [{"ref": "push_net@0.1.0", "kind": "rl"}]
    assert set(rep["summary"]) >= {"success_rate", "mean_skills", "mean_replans", "mean_safety_cost"}


def test_run_task_cli_prints_writes_json_video_and_preferences(lib_path, tmp_path, capsys):
    out, video, prefs = tmp_path / "r.json", tmp_path / "ep.mp4", tmp_path / "prefs"
    rc = main(["run-task", "pick-place", "--library", str(lib_path), "--episodes", "2", "--json", str(out),
               "--video", str(video), "--preferences", str(prefs), "-v"])  # fmt: skip
    text = capsys.readouterr().out
    assert rc == 0 and "success rate" in text and "figures below are for scripted skills" in text
    assert "-> success (effects reached" in text  # -v prints every decision
    report = json.loads(out.read_text())
    assert report["summary"]["success_rate"] == 1.0 and report["skill_kinds"] == "scripted"
    assert len(report["results"]) == 2 and report["results"][0]["decisions"][0]["outcome"] == "success"
    assert read_mp4(video).shape[0] == 101  # reset frame + 100 steps
    saved = json.loads((prefs / "skillstack_panda-v1" / "pick-place.json").read_text())
    assert saved["updates"] == sum(len(r["decisions"]) for r in report["results"])


def test_an_episode_towards_another_goal_succeeds_when_that_goal_holds(scripted):
    """`run-task --goal` judges the goal it was given, not the env's own: on the stack-two
    scene, the goal `on(blue,red)` (the env wants red on blue) is reached and counted as success."""
    env = envs.make(resolve_task("stack-two").env_id)
    r = controller(scripted).run_episode(env, resolve_task("stack-two", goal="on(blue,red) & !holding(blue)").goal, seed=0)
    assert r.goal_holds and r.success
    r = controller(scripted).run_episode(env, resolve_task("stack-two").goal, seed=0)
    assert r.success == r.goal_holds  # the env's own goal: its is_success, which agrees
