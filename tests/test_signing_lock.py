"""Lock files: `skills lock` pins names, versions, digests and signers; run-task, deploy and the
controller load exactly the pinned skills and refuse anything else."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest

from skill_library.errors import SkillLockError
from skill_library.lockfile import load_locked_skills, lock_skills, read_lock, write_lock
from skill_library.registry import SkillLibrary
from skill_library.testing import make_random_skill


@pytest.fixture
def lib(tmp_path, monkeypatch) -> SkillLibrary:
    monkeypatch.setenv("SKILLSTACK_KEYS", str(tmp_path / "keys"))
    import envs

    env = envs.make("skillstack/PandaPush-v0")
    library = SkillLibrary(tmp_path / "lib")
    for name, version in [("push_a", "1.0.0"), ("push_a", "1.1.0"), ("push_b", "0.1.0")]:
        out = tmp_path / f"{name}-{version}"
        make_random_skill(out, name=name, version=version, env=env, hidden=(8,), effects=("at(red)",))
        library.add(out)
    env.close()
    return library


def test_lock_round_trip_loads_exactly_the_pinned_skills(lib, tmp_path):
    lock = lock_skills(lib, ["push_a@1.0.0", "push_b"], task="pick-place")
    path = write_lock(lock, tmp_path / "skills.lock.json")
    again = read_lock(path)
    assert again == lock and [s.ref for s in again.skills] == ["push_a@1.0.0", "push_b@0.1.0"]
    assert again.skills[0].manifest_digest == lib.manifest("push_a@1.0.0").source_digest
    skills = load_locked_skills(lib, path)
    assert [s.ref for s in skills] == ["push_a@1.0.0", "push_b@0.1.0"]  # not the newer push_a@1.1.0
    again.check_task("pick-place")
    with pytest.raises(SkillLockError, match="made for task 'pick-place', not 'stack-two'"):
        again.check_task("stack-two")


def test_changed_or_missing_pinned_skill_is_refused(lib, tmp_path):
    path = write_lock(lock_skills(lib, ["push_a@1.0.0", "push_b"]), tmp_path / "l.json")
    lib.update_manifest("push_b", replace(lib.manifest("push_b"), description="re-evaluated"))  # re-sealed, re-signed
    with pytest.raises(SkillLockError, match="push_b@0.1.0: manifest digest .* is not the locked"):
        load_locked_skills(lib, path)
    lib.remove("push_b")
    with pytest.raises(SkillLockError, match="locked skill push_b@0.1.0 is not in"):
        load_locked_skills(lib, path)


def test_unpinned_skill_or_other_version_is_refused(lib, tmp_path):
    lock = lock_skills(lib, ["push_a@1.0.0"])
    with pytest.raises(SkillLockError, match="push_b@0.1.0 is not in the lock file"):
        lock.check(lib.manifest("push_b"))
    with pytest.raises(SkillLockError, match="the lock file pins push_a@1.0.0"):
        lock.check(lib.manifest("push_a@1.1.0"))
    assert [s.ref for s in load_locked_skills(lib, lock, kinds="learned")] == ["push_a@1.0.0"]
    with pytest.raises(SkillLockError, match="pins no scripted skills"):
        load_locked_skills(lib, lock, kinds="scripted")


@pytest.mark.parametrize(
    "content,match",
    [
        ("{}", "not a skillstack-lock"),
        ('{"format": "skillstack-lock", "format_version": 1, "skills": []}', "non-empty list"),
        ('{"format": "skillstack-lock", "format_version": 1, "skills": [{"name": "../x", "version": "1.0.0", '
         '"manifest_digest": "' + "0" * 64 + '", "signer": null}]}', "not a valid skill name"),
        ('{"format": "skillstack-lock", "format_version": 1, "skills": [{"name": "x", "version": "1.0.0", '
         '"manifest_digest": "abc", "signer": null}]}', "manifest_digest"),
        ("not json", "not JSON"),
    ],
)
def test_bad_lock_files_are_clear_errors(tmp_path, content, match):
    (tmp_path / "l.json").write_text(content)
    with pytest.raises(SkillLockError, match=match):
        read_lock(tmp_path / "l.json")


def test_run_task_and_deploy_policy_honour_the_lock(lib, tmp_path, capsys):
    from planning.run import run_task
    from skillstack.cli import main

    out = tmp_path / "push.lock.json"
    assert main(["skills", "--library", str(lib.root), "lock", "--skill", "push_a@1.0.0", "--out", str(out)]) == 0
    assert "locked 1 skill(s)" in capsys.readouterr().out
    assert json.loads(out.read_text())["skills"][0]["name"] == "push_a"
    # deploy: the executor's policy loader refuses a skill the lock does not pin, and loads the pinned one
    from ros_bridge.task import TaskModel, load_policy

    task = TaskModel("skillstack/PandaPush-v0")
    with pytest.raises(SkillLockError, match="push_b@0.1.0 is not in the lock file"):
        load_policy("push_b", task, str(lib.root), str(out))
    with pytest.raises(SkillLockError, match="pins push_a@1.0.0"):
        load_policy("push_a", task, str(lib.root), str(out))  # the latest is 1.1.0
    _, info = load_policy("push_a@1.0.0", task, str(lib.root), str(out))
    assert info.name == "push_a@1.0.0"
    with pytest.raises(ValueError, match="the built-in expert is not one"):
        load_policy("expert", task, str(lib.root), str(out))
    # run-task: a lock made for another task is refused before anything runs; skills given must be pinned
    task_lock = write_lock(lock_skills(lib, ["push_a@1.0.0"], task="stack-two"), tmp_path / "stack.lock.json")
    with pytest.raises(SkillLockError, match="made for task 'stack-two', not 'pick-place'"):
        run_task("pick-place", library=lib, lock=task_lock, episodes=1)
    with pytest.raises(SkillLockError, match="push_b@0.1.0 is not in the lock file"):
        run_task("stack-two", skills=[lib.load("push_b")], lock=task_lock, episodes=1)


@pytest.mark.slow
def test_skillstack_deploy_with_a_lock_refuses_an_unpinned_skill_and_runs_a_pinned_one(lib, tmp_path):
    """Through the real executor node over ROS 2 (sim_robot): the lock is honoured on the robot path."""
    import random
    import subprocess
    import sys

    from ros_bridge._env import child_env, ros_available

    if not ros_available():
        pytest.skip("ROS 2 (rclpy) not installed: pip install 'skillstack[ros]'")
    lock = write_lock(lock_skills(lib, ["push_a@1.0.0"]), tmp_path / "push.lock.json")

    def deploy(skill: str, logs: str) -> subprocess.CompletedProcess:
        env = child_env(domain_id=random.randint(200, 230), localhost_only=True)
        cmd = [sys.executable, "-m", "skillstack", "deploy", "--skill", skill, "--library", str(lib.root), "--lock", str(lock),
               "--duration", "4", "--log-dir", str(tmp_path / logs)]  # fmt: skip
        return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)

    refused = deploy("push_b", "refused")
    assert refused.returncode != 0
    assert "push_b@0.1.0 is not in the lock file" in (tmp_path / "refused" / "skill_executor.log").read_text()
    pinned = deploy("push_a@1.0.0", "pinned")
    assert pinned.returncode == 0, pinned.stdout[-2000:] + pinned.stderr[-2000:]
    assert "push_a@1.0.0" in pinned.stdout + (tmp_path / "pinned" / "skill_executor.log").read_text()
