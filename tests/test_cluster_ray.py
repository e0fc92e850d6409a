"""Scale-out on a local Ray instance started by the tests (2 CPUs)."""

import json

import pytest

ray = pytest.importorskip("ray", reason="the cluster extra (ray) is installed by make test")

from policies import sweep as sweep_mod  # noqa: E402
from policies.sweep import make_trials, parse_grid, sweep  # noqa: E402

TINY = [
    "total_timesteps=200",
    "algo_kwargs.learning_starts=50",
    "algo_kwargs.batch_size=32",
    "algo_kwargs.policy_kwargs.net_arch=[32,32]",
    "eval.freq=100",
    "eval.episodes=2",
    "checkpoint.freq=100",
]


@pytest.fixture(scope="module")
def local_ray():
    from policies.ray_cluster import connect

    connect(None, num_cpus=2)
    yield ray
    ray.shutdown()


def test_grid_parsing_and_trial_names():
    grid = parse_grid(["algo_kwargs.gamma=0.9,0.95"])
    trials = make_trials(2, grid)
    assert [t.name for t in trials] == ["gamma-0.9_seed-0", "gamma-0.9_seed-1", "gamma-0.95_seed-0", "gamma-0.95_seed-1"]
    assert trials[1].overrides() == ["seed=1", "algo_kwargs.gamma=0.9"]
    with pytest.raises(ValueError, match="key=v1,v2"):
        parse_grid(["gamma"])


@pytest.mark.slow
def test_two_seed_sweep_completes_with_both_results(local_ray, tmp_path):
    summary = sweep("configs/reach.yaml", seeds=2, out=tmp_path, overrides=TINY, progress=False)
    assert [t["status"] for t in summary["trials"]] == ["ok", "ok"]
    for t in summary["trials"]:
        assert 0.0 <= t["success_rate"] <= 1.0
        assert t["env_steps"] == 200
        assert (tmp_path / t["trial"] / "summary.json").is_file()
    saved = json.loads((tmp_path / "sweep.json").read_text())
    assert saved["groups"][0]["trials"] == 2 and saved["groups"][0]["success_rate"] is not None
    png = sweep_mod.plot_sweep(summary, tmp_path / "sweep.png")
    assert png.stat().st_size > 5000


@pytest.mark.slow
def test_killed_worker_is_retried_and_resumes_from_checkpoint(local_ray, tmp_path, monkeypatch):
    marker = tmp_path / "killed.pid"
    monkeypatch.setenv(sweep_mod.KILL_ONCE_ENV, str(marker))
    summary = sweep("configs/reach.yaml", seeds=1, out=tmp_path / "sweep", overrides=TINY, progress=False)
    trial = summary["trials"][0]
    assert marker.exists(), "the fault hook should have killed the first attempt"
    assert trial["status"] == "ok"
    assert trial["resumed_from"] == "step_00000100"
    assert int(marker.read_text()) != trial["pid"]  # the retry ran in a new worker process
    assert trial["env_steps"] == 200


@pytest.mark.slow
def test_failing_trial_reports_traceback_and_others_finish(local_ray, tmp_path):
    summary = sweep("configs/reach.yaml", seeds=1, grid={"env_id": ["skillstack/PandaReach-v0", "skillstack/Nope-v0"]},
                    out=tmp_path, overrides=TINY, progress=False)
    by_env = {t["params"]["env_id"]: t for t in summary["trials"]}
    assert by_env["skillstack/PandaReach-v0"]["status"] == "ok"
    bad = by_env["skillstack/Nope-v0"]
    assert bad["status"] == "error" and "Nope-v0" in bad["traceback"] and "Traceback" in bad["traceback"]


def test_distributed_descriptors_equal_local(local_ray, tmp_path):
    from skill_library.descriptors import evaluate_skill
    from skill_library.distributed import evaluate_skill_distributed
    from skill_library.registry import SkillLibrary
    from skill_library.starter import build_starter_skills

    lib = SkillLibrary(tmp_path / "lib")
    build_starter_skills(lib, ["reach_goal"])
    entry = lib.resolve("reach_goal")
    local = evaluate_skill(lib.load("reach_goal"), grid=(3, 2), episodes_per_cell=1, seed=3)
    dist = evaluate_skill_distributed(entry.path, workers=2, grid=(3, 2), episodes_per_cell=1, seed=3)
    local.pop("date", None)
    dist.pop("date", None)
    assert dist == local
    assert len(dist["cells"]) == 6
