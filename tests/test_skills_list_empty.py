"""`skillstack skills list` on an empty library says how to get skills, through the real command line."""

import json
import os
import subprocess
import sys


def _skillstack(*args: str, library: str | None = None, home: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SKILLSTACK_")}
    env["HOME"] = home
    if library is not None:
        env["SKILLSTACK_LIBRARY"] = library
    return subprocess.run([sys.executable, "-m", "skillstack", *args], capture_output=True, text=True, env=env, timeout=300)


def test_empty_library_names_the_three_ways_to_get_skills(tmp_path):
    lib = tmp_path / "lib"
    out = _skillstack("skills", "--library", str(lib), "list", home=str(tmp_path))
    assert out.returncode == 0, out.stderr
    assert f"no skills in {lib} yet" in out.stdout
    assert f"skillstack skills --library {lib} install-starter" in out.stdout
    assert f"skillstack train configs/reach.yaml --library {lib}" in out.stdout
    assert f"skillstack skills --library {lib} distill" in out.stdout


def test_empty_default_library_hint_has_no_library_flag(tmp_path):
    lib = tmp_path / "from_env"
    out = _skillstack("skills", "list", "--tag", "anything", library=str(lib), home=str(tmp_path))
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines[0] == f"no skills in {lib} yet. To get some:"
    commands = [line.split()[:3] for line in lines[1:]]
    assert commands == [["skillstack", "skills", "install-starter"], ["skillstack", "train", "configs/reach.yaml"],
                        ["skillstack", "skills", "distill"]]


def test_empty_library_json_stays_json_and_hints_on_stderr(tmp_path):
    out = _skillstack("skills", "list", "--json", library=str(tmp_path / "lib"), home=str(tmp_path))
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout) == []
    assert "install-starter" in out.stderr


def test_library_with_skills_lists_them_and_a_filter_miss_is_not_the_empty_hint(tmp_path):
    lib = str(tmp_path / "lib")
    added = _skillstack("skills", "install-starter", "--names", "push_red", library=lib, home=str(tmp_path))
    assert added.returncode == 0, added.stderr
    listed = _skillstack("skills", "list", library=lib, home=str(tmp_path))
    assert "push_red" in listed.stdout and "install-starter" not in listed.stdout
    missed = _skillstack("skills", "list", "--tag", "no-such-tag", library=lib, home=str(tmp_path))
    assert missed.stdout.strip() == f"no skills in {lib} matching the filters"
