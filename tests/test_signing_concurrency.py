"""Concurrent adds under the trust policy stay consistent (real processes): trust on first use picks one
publisher per name, refusals and adds are all in the audit log, and the index matches the disk.
Concurrent first writes share one generated key."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import pytest

from skill_library.audit import read_audit
from skill_library.keyring import Keyring
from skill_library.package import sign_package
from skill_library.registry import SkillLibrary
from skill_library.testing import make_random_skill

REPO = Path(__file__).resolve().parents[1]

_ADDER = """
import json, sys, time
from pathlib import Path
from skill_library.errors import SkillLibraryError
from skill_library.registry import SkillLibrary
lib = SkillLibrary(sys.argv[1])
Path(sys.argv[2]).write_text("ready")
while not Path(sys.argv[3]).exists():
    time.sleep(0.005)
out = {}
for p in sys.argv[5:]:
    try:
        out[p] = "added:" + lib.add(p).ref
    except SkillLibraryError as exc:
        out[p] = "refused:" + type(exc).__name__
Path(sys.argv[4]).write_text(json.dumps(out))
"""


def _race(script: str, groups: list[list[str]], tmp_path: Path, extra: list[str]) -> list[dict]:
    """Start one process per group, release them together, return what each wrote."""
    import json

    go = tmp_path / "go"
    procs = []
    for g, args in enumerate(groups):
        cmd = [sys.executable, "-c", script, *extra, str(tmp_path / f"ready{g}"), str(go), str(tmp_path / f"out{g}"), *args]
        procs.append(subprocess.Popen(cmd, cwd=REPO, stderr=subprocess.PIPE, text=True, env=dict(os.environ)))
    deadline = time.monotonic() + 120
    while not all((tmp_path / f"ready{g}").exists() for g in range(len(groups))):
        assert time.monotonic() < deadline, "processes did not start"
        assert all(p.poll() is None for p in procs), [p.stderr.read() for p in procs if p.poll() is not None]
        time.sleep(0.01)
    go.write_text("go")
    for p in procs:
        _, err = p.communicate(timeout=300)
        assert p.returncode == 0, err
    return [json.loads((tmp_path / f"out{g}").read_text()) for g in range(len(groups))]


def test_concurrent_adds_with_two_signers_pin_one_publisher(tmp_path, monkeypatch):
    monkeypatch.setenv("SKILLSTACK_KEYS", str(tmp_path / "keys"))
    import envs

    ring = Keyring()
    ana = ring.generate("ana")
    bob = Keyring(tmp_path / "bob").generate("bob")
    ring.trust(bob.public, source="test")
    env = envs.make("skillstack/PandaPush-v0")
    groups: list[list[str]] = [[], [], []]
    by_key = {}
    for i in range(9):  # shared@1.0.i: even by ana, odd by bob; plus one unsigned and one own name per process
        path = tmp_path / f"shared{i}"
        make_random_skill(path, name="shared", version=f"1.0.{i}", seed=i, env=env, hidden=(4,))
        if i % 2:
            sign_package(path, bob)
        by_key[str(path)] = ana.key_id if i % 2 == 0 else bob.key_id
        groups[i % 3].append(str(path))
    for g in range(3):
        own = tmp_path / f"own{g}"
        make_random_skill(own, name=f"own{g}", version="1.0.0", seed=50 + g, env=env, hidden=(4,))
        groups[g].append(str(own))
        unsigned = tmp_path / f"unsigned{g}"
        from skill_library.package import read_package, write_package

        m = read_package(own).manifest
        write_package(unsigned, replace(m, name=f"unsigned{g}"), weights_bytes=(own / "weights.safetensors").read_bytes(),
                      sign=False)  # fmt: skip
        groups[g].append(str(unsigned))
    env.close()
    results = {k: v for r in _race(_ADDER, groups, tmp_path, [str(tmp_path / "lib")]) for k, v in r.items()}

    lib = SkillLibrary(tmp_path / "lib")
    shared = [e for e in lib.entries() if e.name == "shared"]
    publishers = {e.publisher_key_id for e in shared}
    assert len(publishers) == 1, "trust on first use: one publisher per name, whatever the interleaving"
    winner = publishers.pop()
    for path, key in by_key.items():
        expected = "added" if key == winner else "refused:SkillTrustError"
        assert results[path].startswith(expected), (path, results[path])
    assert sorted(e.version for e in shared) == sorted(f"1.0.{i}" for i in range(9) if (i % 2 == 0) == (winner == ana.key_id))
    for g in range(3):
        assert results[str(tmp_path / f"own{g}")] == f"added:own{g}@1.0.0"
        assert results[str(tmp_path / f"unsigned{g}")] == "refused:SkillSignatureError"
    # the index matches the disk and every entry verifies against it
    on_disk = sorted(f"{p.parent.name}@{p.name}" for p in (tmp_path / "lib").glob("*/*") if p.is_dir() and not p.parent.name.startswith("."))
    assert sorted(e.ref for e in lib.entries()) == on_disk
    for e in lib.entries():
        lib.read(e.ref)
    # the audit log holds exactly one record per attempt, in one unbroken chain
    ops = [r["op"] for r in read_audit(lib.audit_path)]
    assert ops.count("add") == len(lib.entries()) and ops.count("add-refused") == sum(v.startswith("refused") for v in results.values())
    assert os.listdir(tmp_path / "lib" / ".tmp") == [] and not (tmp_path / "lib" / ".journal.json").exists()


_FIRST_WRITE = """
import sys, time
from pathlib import Path
from skill_library.keyring import Keyring
Path(sys.argv[1]).write_text("ready")
while not Path(sys.argv[2]).exists():
    time.sleep(0.005)
Path(sys.argv[3]).write_text('{"key": "%s"}' % Keyring(announce=lambda m: None).default_key().key_id)
"""


@pytest.mark.parametrize("processes", [4])
def test_concurrent_first_writes_share_one_generated_key(tmp_path, monkeypatch, processes):
    monkeypatch.setenv("SKILLSTACK_KEYS", str(tmp_path / "keys"))
    results = _race(_FIRST_WRITE, [[] for _ in range(processes)], tmp_path, [])
    assert len({r["key"] for r in results}) == 1
    ring = Keyring(tmp_path / "keys")
    assert ring.own_key_ids() == [results[0]["key"]] and ring.default_key_id() == results[0]["key"]
    assert [r["op"] for r in read_audit(ring.audit_path)] == ["generate"]


_KILLED_ADD = """
import sys
from skill_library.registry import SkillLibrary
SkillLibrary(sys.argv[1]).add(sys.argv[2])
"""


def test_add_killed_after_its_index_commit_gets_its_audit_record_on_recovery(tmp_path, monkeypatch):
    import signal

    monkeypatch.setenv("SKILLSTACK_KEYS", str(tmp_path / "keys"))
    make_random_skill(tmp_path / "pkg", name="late", hidden=(4,))
    lib_root = tmp_path / "lib"
    marker = tmp_path / "marker"
    env = dict(os.environ, SKILLSTACK_TEST_ADD_SLEEP="indexed:60", SKILLSTACK_TEST_ADD_SLEEP_MARKER=str(marker))
    proc = subprocess.Popen([sys.executable, "-c", _KILLED_ADD, str(lib_root), str(tmp_path / "pkg")], cwd=REPO, env=env,
                            stderr=subprocess.PIPE, text=True)  # fmt: skip
    deadline = time.monotonic() + 120
    while not marker.exists():
        assert proc.poll() is None, proc.stderr.read()
        assert time.monotonic() < deadline, "add never reached the stage"
        time.sleep(0.01)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    lib = SkillLibrary(lib_root)
    assert [e.ref for e in lib.entries()] == ["late@0.1.0"]  # committed: the index lists it
    assert not lib.audit_path.exists() or read_audit(lib.audit_path) == []  # ... but the record was not appended
    lib.recover()
    records = read_audit(lib.audit_path)
    assert [(r["op"], r["details"]["ref"]) for r in records] == [("add", "late@0.1.0")]
    lib.recover()  # appended once, not again
    assert len(read_audit(lib.audit_path)) == 1 and lib.load("late").ref == "late@0.1.0"
