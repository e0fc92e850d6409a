"""The planner ranks skills by their descriptors for the condition the robot is declared to run under (issue 24)."""

import warnings

import numpy as np
import pytest

import envs
from planning.grounding import ground_skill
from planning.symbolic import Domain


@pytest.fixture(scope="module")
def pick_red_with_conditions(tmp_path_factory):
    from skill_library.descriptors import evaluate_skill
    from skill_library.package import rewrite_manifest
    from skill_library.robustness import with_condition_descriptors
    from skill_library.skill import load_skill
    from skill_library.starter import write_starter_packages

    (path,) = write_starter_packages(tmp_path_factory.mktemp("pkg"), ["pick_red"])
    skill = load_skill(path)
    nominal = evaluate_skill(skill, grid=1, episodes_per_cell=1, seed=0)
    # Figures of the shape `skills evaluate --conditions` stores, chosen apart from the nominal ones.
    per = {"realistic": {"episodes": 4, "successes": 1, "success_rate": 0.25, "mean_duration_s": 3.5, "mean_safety_cost": 0.5}}
    rewrite_manifest(path, with_condition_descriptors(skill.manifest, nominal, per))
    return load_skill(path)


def _scene():
    env = envs.make("skillstack/PandaPickPlace-v0")
    env.reset(seed=0)
    scene = env.unwrapped.scene_state()
    env.close()
    return scene, Domain.from_scene(scene)


def test_declared_condition_selects_its_descriptor(pick_red_with_conditions):
    scene, domain = _scene()
    (nominal,) = ground_skill(pick_red_with_conditions, scene, domain)
    (realistic,) = ground_skill(pick_red_with_conditions, scene, domain, condition="realistic")
    assert (realistic.success, realistic.duration_s, realistic.safety_cost) == (0.25, 3.5, 0.5)
    assert nominal.success != 0.25


def test_unmeasured_condition_falls_back_to_nominal_with_a_warning(pick_red_with_conditions):
    scene, domain = _scene()
    (nominal,) = ground_skill(pick_red_with_conditions, scene, domain)
    with pytest.warns(RuntimeWarning, match="no descriptors under condition 'latency40'"):
        (late,) = ground_skill(pick_red_with_conditions, scene, domain, condition="latency40")
    assert np.isclose(late.success, nominal.success) and np.isclose(late.duration_s, nominal.duration_s)


def test_controller_config_carries_the_condition_to_grounding(pick_red_with_conditions):
    from planning.executor import ControllerConfig, HierarchicalController

    scene, domain = _scene()
    ctrl = HierarchicalController([pick_red_with_conditions], ControllerConfig(condition="realistic"))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ops = ctrl.operators(scene, domain)
    assert [op.success for op in ops] == [0.25]


@pytest.mark.slow
def test_run_task_runs_the_env_under_the_declared_condition(tmp_path):
    # Stack-two with the scripted starter skills at 80 ms of latency: the report names the condition
    # and the observing scripts still solve it.
    from planning import run_task
    from skill_library import SkillLibrary, build_starter_skills

    lib = SkillLibrary(tmp_path / "lib")
    build_starter_skills(lib, ["pick_red", "place_red_on_blue", "stack_red_on_blue"])
    report = run_task("stack-two", library=lib, episodes=2, seed=0, adapt=False, condition="latency80")
    assert report["condition"] == "latency80"
    assert report["summary"]["success_rate"] >= 0.5
