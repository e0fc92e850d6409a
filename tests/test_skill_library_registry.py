"""Skill library registry: add/remove/versions/search, concurrent adders, killed adds, export."""

from __future__ import annotations

import hashlib
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from skill_library.errors import SkillExistsError, SkillLibraryError, SkillNotFoundError, SkillPackageError
from skill_library.registry import SkillLibrary, parse_ref, resolve_library_path
from skill_library.testing import make_random_skill

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def packages(tmp_path_factory) -> dict[str, Path]:
    """A few small network skill packages (distinct names, versions, tags, predicates)."""
    import envs

    root = tmp_path_factory.mktemp("pkgs")
    env = envs.make("skillstack/PandaPush-v0")
    specs = {
        "push_a@1.0.0": dict(tags=("push", "demo"), effects=("at(red)",), preconditions=("on_table(red)",)),
        "push_a@1.2.0": dict(tags=("push",), effects=("at(red)",)),
        "push_a@1.10.0-rc.1": dict(tags=("push",)),
        "push_a@1.10.0": dict(tags=("push",)),
        "grab_b@0.1.0": dict(tags=("grasp",), effects=("holding(red)",), preconditions=("gripper_open & in_reach(red)",)),
    }
    out = {}
    for i, (ref, kw) in enumerate(specs.items()):
        name, version = ref.split("@")
        path = root / ref.replace("@", "-")
        make_random_skill(path, name=name, version=version, seed=i, env=env, **kw)
        out[ref] = path
    for i in range(8):
        path = root / f"conc{i}"
        make_random_skill(path, name=f"conc{i}", version="1.0.0", seed=100 + i, env=env)
        out[f"conc{i}@1.0.0"] = path
    for i in range(4):
        path = root / f"shared{i}"
        make_random_skill(path, name="shared", version=f"1.0.{i}", seed=200 + i, env=env)
        out[f"shared@1.0.{i}"] = path
    return out


def _tree(root: Path) -> dict[str, str]:
    """Every file under the library (except the lock file) -> sha256 of its bytes."""
    out = {}
    for p in sorted(root.rglob("*")):
        if p.is_file() and p.name != ".lock":
            out[str(p.relative_to(root))] = hashlib.sha256(p.read_bytes()).hexdigest()
    return out


def test_library_path_resolution(monkeypatch, tmp_path):
    monkeypatch.delenv("SKILLSTACK_LIBRARY", raising=False)
    assert resolve_library_path() == Path.home() / ".skillstack" / "skills"
    monkeypatch.setenv("SKILLSTACK_LIBRARY", str(tmp_path / "env"))
    assert resolve_library_path() == tmp_path / "env"
    assert resolve_library_path(tmp_path / "arg") == tmp_path / "arg"
    assert parse_ref("push_a@1.2.0") == ("push_a", "1.2.0") and parse_ref("push_a") == ("push_a", None)
    with pytest.raises(SkillLibraryError, match="not a semantic version"):
        parse_ref("push_a@latest")


def test_versions_side_by_side_pins_and_latest(packages, tmp_path):
    lib = SkillLibrary(tmp_path / "lib")
    for ref in ("push_a@1.2.0", "push_a@1.10.0-rc.1", "push_a@1.0.0", "push_a@1.10.0", "grab_b@0.1.0"):
        lib.add(packages[ref])
    assert lib.versions("push_a") == ["1.0.0", "1.2.0", "1.10.0-rc.1", "1.10.0"]
    assert lib.resolve("push_a").version == "1.10.0"
    assert lib.load("push_a@1.2.0").version == "1.2.0"
    assert (tmp_path / "lib" / "push_a" / "1.0.0" / "manifest.json").is_file()
    with pytest.raises(SkillExistsError, match="push_a@1.0.0 is already in"):
        lib.add(packages["push_a@1.0.0"])
    with pytest.raises(SkillNotFoundError, match="versions: 1.0.0, 1.2.0, 1.10.0-rc.1, 1.10.0"):
        lib.resolve("push_a@9.9.9")
    with pytest.raises(SkillNotFoundError, match="skills: grab_b, push_a"):
        lib.resolve("nothing")
    with pytest.raises(SkillLibraryError, match="name one"):
        lib.remove("push_a")
    assert lib.remove("push_a@1.2.0") == ["push_a@1.2.0"]
    assert not (tmp_path / "lib" / "push_a" / "1.2.0").exists()
    assert lib.remove("push_a", all_versions=True) == ["push_a@1.0.0", "push_a@1.10.0-rc.1", "push_a@1.10.0"]
    assert [e.ref for e in lib.entries()] == ["grab_b@0.1.0"] and not (tmp_path / "lib" / "push_a").exists()


def test_search_by_name_tag_embodiment_predicate(packages, tmp_path):
    lib = SkillLibrary(tmp_path / "lib")
    for ref in ("push_a@1.0.0", "push_a@1.2.0", "grab_b@0.1.0"):
        lib.add(packages[ref])
    names = lambda es: [e.ref for e in es]  # noqa: E731
    assert names(lib.search(name="push")) == ["push_a@1.0.0", "push_a@1.2.0"]
    assert names(lib.search(name="g*b")) == ["grab_b@0.1.0"]
    assert names(lib.search(tag="demo")) == ["push_a@1.0.0"]
    assert len(lib.search(embodiment="panda")) == 3 and len(lib.search(embodiment="panda_joint7")) == 3
    assert lib.search(embodiment="ur5") == []
    assert names(lib.search(predicate="holding(red)")) == ["grab_b@0.1.0"]
    assert names(lib.search(predicate="in_reach", where="precondition")) == ["grab_b@0.1.0"]
    assert names(lib.search(predicate="at( red )", where="effect")) == ["push_a@1.0.0", "push_a@1.2.0"]
    assert names(lib.search(predicate="at(red)", where="precondition")) == []
    assert names(lib.search(name="push", latest_only=True)) == ["push_a@1.2.0"]
    assert names(lib.search(kind="scripted")) == []


def test_export_and_force_replace(packages, tmp_path):
    lib = SkillLibrary(tmp_path / "lib")
    lib.add(packages["grab_b@0.1.0"])
    out = lib.export("grab_b", tmp_path / "exported")
    assert sorted(os.listdir(out)) == ["manifest.json", "signature.json", "weights.safetensors"]  # the signature travels
    with pytest.raises(SkillLibraryError, match="already exists"):
        lib.export("grab_b", out)
    # replacing a version needs force; the replacement is what loads afterwards
    other = tmp_path / "other"
    shutil.copytree(packages["grab_b@0.1.0"], other)
    lib.add(other, force=True)
    assert lib.load("grab_b@0.1.0").ref == "grab_b@0.1.0"
    assert os.listdir(tmp_path / "lib" / ".tmp") == []


def test_tampered_library_copy_is_refused_on_load(packages, tmp_path):
    lib = SkillLibrary(tmp_path / "lib")
    entry = lib.add(packages["grab_b@0.1.0"])
    w = entry.path / "weights.safetensors"
    data = bytearray(w.read_bytes())
    data[-1] ^= 0xFF
    w.write_bytes(bytes(data))
    with pytest.raises(SkillPackageError, match="weights.safetensors"):
        lib.load("grab_b")


def test_reindex_rebuilds_a_lost_index(packages, tmp_path):
    lib = SkillLibrary(tmp_path / "lib")
    lib.add(packages["push_a@1.0.0"])
    lib.add(packages["grab_b@0.1.0"])
    before = [e.ref for e in lib.entries()]
    (tmp_path / "lib" / "index.json").write_text("{ corrupt")
    with pytest.raises(SkillLibraryError, match="corrupt index"):
        lib.entries()
    assert lib.reindex() == before
    assert [e.ref for e in lib.entries()] == before


_ADDER = """
import sys, time
from pathlib import Path
from skill_library.registry import SkillLibrary
lib = SkillLibrary(sys.argv[1])
Path(sys.argv[2]).write_text("ready")
while not Path(sys.argv[3]).exists():
    time.sleep(0.005)
for p in sys.argv[4:]:
    lib.add(p)
"""


def test_two_processes_adding_at_once_never_corrupt_the_index(packages, tmp_path):
    lib_root = tmp_path / "lib"
    go = tmp_path / "go"
    groups = [
        [packages[f"conc{i}@1.0.0"] for i in range(0, 8, 2)] + [packages["shared@1.0.0"], packages["shared@1.0.2"]],
        [packages[f"conc{i}@1.0.0"] for i in range(1, 8, 2)] + [packages["shared@1.0.1"], packages["shared@1.0.3"]],
    ]
    procs = []
    for g, paths in enumerate(groups):
        cmd = [sys.executable, "-c", _ADDER, str(lib_root), str(tmp_path / f"ready{g}"), str(go), *map(str, paths)]
        procs.append(subprocess.Popen(cmd, cwd=REPO, stderr=subprocess.PIPE, text=True))
    deadline = time.monotonic() + 60
    while not all((tmp_path / f"ready{g}").exists() for g in range(2)):
        assert time.monotonic() < deadline, "adders did not start"
        assert all(p.poll() is None for p in procs), [p.stderr.read() for p in procs]
        time.sleep(0.01)
    go.write_text("go")
    for p in procs:
        _, err = p.communicate(timeout=120)
        assert p.returncode == 0, err
    lib = SkillLibrary(lib_root)
    refs = [e.ref for e in lib.entries()]
    assert refs == sorted([f"conc{i}@1.0.0" for i in range(8)]) + [f"shared@1.0.{i}" for i in range(4)]
    for ref in refs:
        lib.manifest(ref)  # every indexed package verifies
    assert os.listdir(lib_root / ".tmp") == [] and not (lib_root / ".journal.json").exists()


_KILLED_ADD = """
import sys
from skill_library.registry import SkillLibrary
SkillLibrary(sys.argv[1]).add(sys.argv[2], force=len(sys.argv) > 3)
"""


@pytest.mark.parametrize("stage,force", [("staged", False), ("placed", False), ("placed", True)])
def test_killed_add_leaves_the_library_as_it_was(packages, tmp_path, stage, force):
    lib_root = tmp_path / "lib"
    lib = SkillLibrary(lib_root)
    lib.add(packages["push_a@1.0.0"])
    target = "push_a@1.0.0" if force else "grab_b@0.1.0"
    source = packages[target]
    if force:  # replacing with a different package of the same name@version
        source = tmp_path / "replacement"
        make_random_skill(source, name="push_a", version="1.0.0", seed=99)
    before_tree = _tree(lib_root)
    before_index = (lib_root / "index.json").read_bytes()
    marker = tmp_path / "marker"
    env = dict(os.environ, SKILLSTACK_TEST_ADD_SLEEP=f"{stage}:60", SKILLSTACK_TEST_ADD_SLEEP_MARKER=str(marker))
    cmd = [sys.executable, "-c", _KILLED_ADD, str(lib_root), str(source)] + (["force"] if force else [])
    proc = subprocess.Popen(cmd, cwd=REPO, env=env, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while not marker.exists():
        assert proc.poll() is None, proc.stderr.read()
        assert time.monotonic() < deadline, "add never reached the stage"
        time.sleep(0.01)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    # Readers see exactly the old library even before recovery ...
    assert (lib_root / "index.json").read_bytes() == before_index
    assert [e.ref for e in SkillLibrary(lib_root).entries()] == ["push_a@1.0.0"]
    # ... and the next change (here: an explicit recover) rolls the half-done add back.
    SkillLibrary(lib_root).recover()
    assert _tree(lib_root) == before_tree
    assert SkillLibrary(lib_root).load("push_a@1.0.0").manifest == lib.load("push_a@1.0.0").manifest
    # the same add then succeeds
    SkillLibrary(lib_root).add(source, force=force)
    assert target in [e.ref for e in SkillLibrary(lib_root).entries()]
