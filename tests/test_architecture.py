"""The layer table is enforced, not remembered: import-linter contracts from pyproject.toml,
the same table in docs/architecture.md, and what `import envs` drags in."""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _config() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]


def test_import_contracts_hold():
    """Every contract in pyproject.toml (layers, rclpy only in ros_bridge, no torch under envs) is kept."""
    proc = subprocess.run([sys.executable, "-c", "import sys; from importlinter.cli import lint_imports_command; "
                           "sys.exit(lint_imports_command())"], cwd=ROOT, capture_output=True, text=True, timeout=300)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out
    kept = re.findall(r"KEPT", out)
    assert len(kept) == len(_config()["contracts"]), out


def test_every_top_level_package_is_in_the_layer_table():
    """A new top-level package must be placed in a layer before it lands."""
    from setuptools import find_packages

    layered = {name.strip() for layer in _layers() for name in layer.split("|")}
    top = {p for p in find_packages(str(ROOT), exclude=["tests", "tests.*"]) if "." not in p}
    assert top == layered == set(_config()["root_packages"])


def _layers() -> list[str]:
    return next(c for c in _config()["contracts"] if c["id"] == "layers")["layers"]


def test_architecture_doc_shows_the_enforced_layer_table():
    """docs/architecture.md lists the same layers in the same order (top = highest)."""
    doc = (ROOT / "docs" / "architecture.md").read_text()
    rows = re.findall(r"^\|\s*(\d+)\s*\|\s*([^|]+?)\s*\|", doc, flags=re.M)
    assert rows, "docs/architecture.md has no layer table"
    by_number: dict[int, set[str]] = {}
    for number, cell in rows:
        by_number.setdefault(int(number), set()).update(re.findall(r"`(\w+)/`", cell))
    doc_layers = [by_number[n] for n in sorted(by_number, reverse=True)]
    code_layers = [{n.strip() for n in layer.split("|")} for layer in _layers()]
    assert doc_layers == code_layers


@pytest.mark.parametrize("module", ["envs", "sim_assets", "common"])
def test_importing_physics_layers_loads_no_learning_library(module):
    """`import envs` must stay light: a robot-side process does not pay for torch or SB3."""
    code = (f"import sys, {module}; "
            "heavy = sorted(m for m in ('torch', 'stable_baselines3', 'rclpy') if m in sys.modules); print(heavy)")
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]"


def test_old_import_paths_warn_and_give_the_same_modules():
    """Scripts written against 0.1 (`skill_library.planning`) keep working for one release, with a warning."""
    code = """
import warnings
warnings.simplefilter("error", DeprecationWarning)
try:
    import skill_library.planning.spec
except DeprecationWarning as w:
    print("warned:", w)
warnings.simplefilter("ignore", DeprecationWarning)
import skill_library.planning.spec as old, planning.spec as new
from skill_library.demos import DemoFile
import demos
print(old is new, DemoFile is demos.DemoFile)
"""
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0].startswith("warned: 'skill_library.planning' moved to 'planning'")
    assert lines[-1] == "True True"
