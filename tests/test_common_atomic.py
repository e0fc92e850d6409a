"""common.atomic, the one way a file that matters is written: a reader, or a process killed half-way,
sees the old file or the new one, never a torn one; and no module outside common/ writes its own."""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from common.atomic import (
    atomic_path,
    atomic_replace,
    atomic_savefig,
    atomic_write_bytes,
    atomic_write_json,
    atomic_write_text,
    staged_dir,
    temp_path,
    write_new_file,
)

ROOT = Path(__file__).resolve().parents[1]


def test_atomic_write_bytes_replaces_the_old_file(tmp_path):
    target = tmp_path / "index.json"
    target.write_bytes(b"old")
    assert atomic_write_bytes(target, b"new") == target
    assert target.read_bytes() == b"new"


def test_atomic_write_json_serialises_before_touching_the_file(tmp_path):
    """An unserialisable object raises and leaves the old file as it was."""
    target = tmp_path / "report.json"
    atomic_write_json(target, {"a": 1})
    with pytest.raises(TypeError):
        atomic_write_json(target, {"a": object()})
    assert json.loads(target.read_text()) == {"a": 1}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report.json"]


def test_atomic_path_leaves_the_old_file_when_the_writer_raises(tmp_path):
    target = tmp_path / "plot.png"
    target.write_bytes(b"old plot")
    with pytest.raises(RuntimeError, match="renderer broke"):
        with atomic_path(target, suffix=".png") as tmp:
            tmp.write_bytes(b"half a plo")
            raise RuntimeError("renderer broke")
    assert target.read_bytes() == b"old plot"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["plot.png"]


def test_no_temp_files_are_left_behind(tmp_path):
    atomic_write_bytes(tmp_path / "a.bin", b"\x00\x01")
    atomic_write_text(tmp_path / "b.txt", "text")
    atomic_write_json(tmp_path / "c.json", [1, 2])
    with atomic_path(tmp_path / "d.png", suffix=".png") as tmp:
        assert tmp.parent == tmp_path and tmp.suffix == ".png" and tmp.name.startswith(".d.png.")
        tmp.write_bytes(b"png")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.bin", "b.txt", "c.json", "d.png"]
    assert (tmp_path / "d.png").read_bytes() == b"png"


def test_parent_folders_are_created(tmp_path):
    target = tmp_path / "runs" / "exp1" / "result.json"
    atomic_write_json(target, {"ok": True})
    assert json.loads(target.read_text()) == {"ok": True}


def test_atomic_savefig_writes_the_figure_and_closes_it(tmp_path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots()
    ax.plot([0, 1], [1, 0])
    path = atomic_savefig(fig, tmp_path / "curve.png", dpi=50)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and not plt.fignum_exists(fig.number)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["curve.png"]


def test_atomic_savefig_that_fails_keeps_the_old_plot_and_closes_the_figure(tmp_path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    (tmp_path / "curve.png").write_bytes(b"old plot")
    fig, _ = plt.subplots()
    with pytest.raises(ValueError, match="not supported"):
        atomic_savefig(fig, tmp_path / "curve.png", format="no-such-format")
    assert (tmp_path / "curve.png").read_bytes() == b"old plot" and not plt.fignum_exists(fig.number)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["curve.png"]


def test_temp_path_is_a_fresh_file_beside_the_target(tmp_path):
    """For a writer that finishes later (a streaming video): unique names on the target's filesystem."""
    target = tmp_path / "videos" / "ep.mp4"
    a, b = temp_path(target, suffix=".mp4"), temp_path(target, suffix=".mp4")
    assert a != b and a.parent == b.parent == target.parent and a.exists() and a.suffix == ".mp4"
    a.write_bytes(b"video")
    atomic_replace(a, target)
    assert target.read_bytes() == b"video" and not a.exists()


def test_atomic_replace_moves_a_finished_directory_into_place(tmp_path):
    staging = tmp_path / "staging"
    staging.mkdir()
    (staging / "manifest.json").write_text("{}")
    atomic_replace(staging, tmp_path / "pkg")
    assert (tmp_path / "pkg" / "manifest.json").read_text() == "{}" and not staging.exists()


def test_staged_dir_swaps_in_the_new_directory(tmp_path):
    out = tmp_path / "skill"
    out.mkdir()
    (out / "old.txt").write_text("old")
    with staged_dir(out) as staging:
        write_new_file(staging / "new.txt", b"new")
    assert sorted(p.name for p in out.iterdir()) == ["new.txt"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["skill"]


def test_staged_dir_leaves_the_old_directory_when_the_block_raises(tmp_path):
    out = tmp_path / "skill"
    out.mkdir()
    (out / "old.txt").write_text("old")
    with pytest.raises(ValueError):
        with staged_dir(out) as staging:
            (staging / "new.txt").write_text("half")
            raise ValueError("export failed")
    assert [p.name for p in out.iterdir()] == ["old.txt"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["skill"]


def test_write_new_file_refuses_an_existing_file(tmp_path):
    (tmp_path / "weights").write_bytes(b"mine")
    with pytest.raises(FileExistsError):
        write_new_file(tmp_path / "weights", b"theirs")
    assert (tmp_path / "weights").read_bytes() == b"mine"


_KILLED_WRITER = """
import sys, time
from common.atomic import atomic_path
with atomic_path(sys.argv[1]) as tmp:
    with open(tmp, "wb") as f:
        f.write(b"new but unfinished")
        f.flush()
        print("writing", flush=True)
        time.sleep(120)
"""


def test_a_process_killed_mid_write_leaves_the_old_file_intact(tmp_path):
    target = tmp_path / "preferences.json"
    target.write_text('{"old": true}')
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.Popen([sys.executable, "-c", _KILLED_WRITER, str(target)], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "writing"  # inside the block: the temp file holds new bytes
        proc.kill()
        assert proc.wait(timeout=60) != 0
    finally:
        proc.kill()
        proc.stdout.close()
    assert json.loads(target.read_text()) == {"old": True}
    # The killed writer's temp file is hidden debris beside the target, never the target itself.
    assert [p.read_bytes() for p in tmp_path.iterdir() if p != target] == [b"new but unfinished"]


# -- the rule: one helper --------------------------------------------------------------------------

# Calls that write or rename a file by hand; outside common/ every such write goes through
# common.atomic (files, directories) or common.video (mp4).
_FORBIDDEN_CALLS = {"os.replace", "os.rename", "tempfile.mkstemp", "cv2.VideoWriter"}
_FORBIDDEN_IMPORTS = {("os", "replace"), ("os", "rename"), ("tempfile", "mkstemp"), ("cv2", "VideoWriter")}
# demos/writer.py's double-buffered HDF5 protocol (its docstring) renames the twin files by hand
# in steps 3 and 5; each such line carries its step number.
_PROTOCOL = {"demos/writer.py": {"os.replace": ("# 3", "# 5")}}


def _project_files() -> list[Path]:
    skip = {"tests", "common", ".venv", "build", "dist", "node_modules"}
    out = []
    for path in sorted(ROOT.rglob("*.py")):
        rel = path.relative_to(ROOT)
        if rel.parts[0] in skip or any(p.startswith(".") or p.endswith(".egg-info") for p in rel.parts):
            continue
        out.append(path)
    return out


def _dotted(node: ast.AST) -> str:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return f"{_dotted(node.value)}.{node.attr}"
    return ""


def _hand_written_writes(path: Path) -> list[tuple[int, str]]:
    """(line, what) for every forbidden call or import in a file."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if isinstance(node, ast.Call) and _dotted(node.func) in _FORBIDDEN_CALLS:
            found.append((node.lineno, _dotted(node.func)))
        elif isinstance(node, ast.ImportFrom):
            for alias in node.names:
                if (node.module, alias.name) in _FORBIDDEN_IMPORTS:
                    found.append((node.lineno, f"{node.module}.{alias.name}"))
    return found


def _violations() -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for path in _project_files():
        rel = path.relative_to(ROOT).as_posix()
        lines = path.read_text(encoding="utf-8").splitlines()
        for lineno, what in _hand_written_writes(path):
            markers = _PROTOCOL.get(rel, {}).get(what)
            if markers and any(m in lines[lineno - 1] for m in markers):
                continue
            out.setdefault(rel, []).append(f"{rel}:{lineno}: {what}(")
    return out


def test_no_module_outside_common_writes_files_by_hand():
    """os.replace / os.rename / tempfile.mkstemp / cv2.VideoWriter appear only in common/ (and the
    documented HDF5 protocol): use common.atomic for files and directories, common.video for mp4."""
    found = _violations()
    assert not found, "write through common.atomic / common.video instead:\n" + "\n".join(
        hit for hits in found.values() for hit in hits)


def test_the_rule_sees_a_hand_written_write(tmp_path):
    """The scanner itself: a hand-written temp-file-and-rename is found, a docstring mention is not."""
    sample = tmp_path / "sample.py"
    sample.write_text('"""We never call os.replace(a, b) ourselves."""\nimport os, tempfile\n'
                      'from tempfile import mkstemp\nfd, tmp = tempfile.mkstemp()\nos.replace(tmp, "x")\n')
    assert sorted(_hand_written_writes(sample)) == [(3, "tempfile.mkstemp"), (4, "tempfile.mkstemp"), (5, "os.replace")]
