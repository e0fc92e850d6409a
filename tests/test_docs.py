"""The documentation runs: every code block in README.md and docs/*.md that claims to run is run here.

Convention (stated at the top of docs/README.md):

- a ```python block runs, unless the line before it is `<!-- test: skip: why -->`;
- a ```bash or ```console block runs only when the line before it is `<!-- test: run -->`
  (in a console block, the lines starting with `$ ` are the commands);
- any other block (```text, a bare ```, ```yaml) is never run.

The blocks of one page run in order, in one fresh folder holding a link to `configs/`, with a
fresh HOME and skill library, so a page may record a file in one block and read it in the next,
and nothing has to be installed first. Also checked: the README stays a front door (short, every
`skillstack` command in its table) and no page links to a file outside the repository.
"""

from __future__ import annotations

import os
import random
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
README_MAX_LINES = 300
BLOCK_TIMEOUT_S = 300

_FENCE = re.compile(r"^(`{3,})\s*([\w+-]*)\s*$")
_MARKER = re.compile(r"^<!--\s*test:\s*(.*?)\s*-->$")
_SHELLS = {"bash", "console"}


@dataclass(frozen=True)
class Block:
    """One fenced code block: where it starts, its language, its text and the marker before it."""

    page: Path
    line: int  # 1-based line of the opening fence
    lang: str
    code: str
    marker: str | None  # "run", "skip: ...", or None

    @property
    def runs(self) -> bool:
        if self.lang == "python":
            return not (self.marker or "").startswith("skip")
        return self.lang in _SHELLS and self.marker == "run"

    def where(self) -> str:
        return f"{self.page.relative_to(ROOT)}:{self.line}"


def code_blocks(page: Path) -> list[Block]:
    """Every fenced block of a markdown page, with the `<!-- test: ... -->` marker on the line before it."""
    lines = page.read_text(encoding="utf-8").splitlines()
    blocks, i = [], 0
    while i < len(lines):
        m = _FENCE.match(lines[i].strip())
        if not m:
            i += 1
            continue
        fence, lang = m.group(1), m.group(2).lower()
        end = next((j for j in range(i + 1, len(lines)) if lines[j].strip() == fence), None)
        if end is None:
            raise AssertionError(f"{page.relative_to(ROOT)}:{i + 1}: code block never closed")
        prev = lines[i - 1].strip() if i > 0 else ""
        marker = _MARKER.match(prev)
        blocks.append(Block(page, i + 1, lang, "\n".join(lines[i + 1 : end]) + "\n", marker.group(1) if marker else None))
        i = end + 1
    return blocks


def console_script(code: str) -> str:
    """The commands of a console block: lines starting with `$ `, with their `\\` continuation lines."""
    out, continuing = [], False
    for line in code.splitlines():
        if continuing or line.startswith("$ "):
            out.append(line[2:] if not continuing else line)
            continuing = line.rstrip().endswith("\\")
    return "\n".join(out) + "\n"


def _doc_env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SKILLSTACK_")}
    env.update(
        HOME=str(home),
        SKILLSTACK_LIBRARY=str(home / ".skillstack" / "skills"),
        MUJOCO_GL="egl",
        PATH=f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}",
        # ROS 2 blocks: localhost only, on a domain the ROS tests (100-199) do not use.
        ROS_AUTOMATIC_DISCOVERY_RANGE="LOCALHOST",
        ROS_DOMAIN_ID=str(200 + random.randrange(30)),
        PYTHONUNBUFFERED="1",
    )
    return env


def run_block(block: Block, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """Run one block in `cwd`: python blocks as a script, shell blocks under bash -euo pipefail."""
    if block.lang == "python":
        script = cwd / f"_block_{block.line}.py"
        script.write_text(block.code)
        cmd = [sys.executable, str(script)]
    else:
        code = console_script(block.code) if block.lang == "console" else block.code
        cmd = ["bash", "-euo", "pipefail", "-c", code]
    return subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=BLOCK_TIMEOUT_S)


def _page_id(page: Path) -> str:
    return str(page.relative_to(ROOT))


def test_the_markers_are_known_and_sit_on_blocks_that_can_run():
    for page in PAGES:
        lines = page.read_text(encoding="utf-8").splitlines()
        marked_lines = {b.line - 1 for b in code_blocks(page) if b.marker is not None}
        for n, line in enumerate(lines, start=1):
            m = _MARKER.match(line.strip())
            if not m:
                continue
            where = f"{_page_id(page)}:{n}"
            assert m.group(1) == "run" or re.fullmatch(r"skip: \S.*", m.group(1)), (
                f"{where}: unknown marker {line.strip()!r}; use <!-- test: run --> or <!-- test: skip: why -->"
            )
            assert n in marked_lines, f"{where}: a test marker must be the line just before a fenced block"
        for b in code_blocks(page):
            if b.marker == "run":
                assert b.lang in _SHELLS, f"{b.where()}: `run` marks bash/console blocks (python blocks run anyway)"
            elif b.marker is not None:
                assert b.lang in _SHELLS | {"python"}, f"{b.where()}: only python/bash/console blocks can be skipped"


# A page whose runnable blocks start ROS 2 nodes or a Ray cluster is a `nodes` test (tests/conftest.py): it
# runs alone; the other pages run on the parallel workers.
NODES_PER_TEST = True
_STARTS_NODES = re.compile(r"skillstack (deploy|sweep)|--to-ros|bench (ros|robustness|sweep|perception)|--ros\b|ros_bridge|"
                           r"rclpy|\bray\b|deploy\(")


def _page_param(page: Path) -> Any:
    starts_nodes = any(_STARTS_NODES.search(b.code) for b in code_blocks(page) if b.runs)
    return pytest.param(page, id=_page_id(page), marks=[pytest.mark.nodes] if starts_nodes else [])


@pytest.mark.slow
@pytest.mark.parametrize("page", [_page_param(p) for p in PAGES if any(b.runs for b in code_blocks(p))])
def test_runnable_blocks_of_the_page_run(page, tmp_path):
    work = tmp_path / "work"
    work.mkdir()
    (work / "configs").symlink_to(ROOT / "configs", target_is_directory=True)
    env = _doc_env(tmp_path / "home")
    for block in (b for b in code_blocks(page) if b.runs):
        try:
            proc = run_block(block, work, env)
        except subprocess.TimeoutExpired as exc:
            pytest.fail(f"{block.where()}: still running after {exc.timeout} s:\n{block.code}")
        assert proc.returncode == 0, (
            f"{block.where()} exited {proc.returncode}:\n{block.code}\n"
            f"--- stdout (end)\n{proc.stdout[-3000:]}\n--- stderr (end)\n{proc.stderr[-3000:]}"
        )


def test_console_blocks_run_their_dollar_lines_only():
    code = "$ echo one \\\n    two\none two\n$ true\n"
    assert console_script(code) == "echo one \\\n    two\ntrue\n"


def test_the_readme_is_a_front_door():
    lines = (ROOT / "README.md").read_text(encoding="utf-8").splitlines()
    assert len(lines) <= README_MAX_LINES, (
        f"README.md has {len(lines)} lines (at most {README_MAX_LINES}): move detail to a page in docs/"
    )


def test_the_readme_lists_every_command():
    from skillstack.cli import build_parser

    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    table = [line for line in (ROOT / "README.md").read_text(encoding="utf-8").splitlines() if line.startswith("| `skillstack ")]
    listed = {re.match(r"\| `skillstack ([\w-]+)", line).group(1) for line in table}
    assert listed == set(sub.choices), f"README commands table: missing {set(sub.choices) - listed}, extra {listed - set(sub.choices)}"


_LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")
_PARENT_PATH = re.compile(r"(?<![\w.])\.\./[\w./-]+")


def anchors(page: Path) -> set[str]:
    """GitHub's anchors for the headings of a page: lower case, punctuation dropped, spaces as hyphens."""
    headings = re.findall(r"^#{1,6}\s+(.*?)\s*$", page.read_text(encoding="utf-8"), flags=re.M)
    return {re.sub(r"[^\w\- ]", "", h.lower()).replace(" ", "-") for h in headings}


def test_links_stay_in_the_repository_and_resolve():
    for page in PAGES:
        text = page.read_text(encoding="utf-8")
        for target in _PARENT_PATH.findall(text):
            path = (page.parent / target).resolve()
            assert path.is_relative_to(ROOT), f"{_page_id(page)} names a file outside the repository: {target}"
        for target in _LINK.findall(text):
            if re.match(r"[a-z]+:", target):
                continue  # a web address
            file, _, anchor = target.partition("#")
            path = (page.parent / file).resolve() if file else page
            assert path.is_relative_to(ROOT), f"{_page_id(page)} links outside the repository: {target}"
            assert path.exists(), f"{_page_id(page)} links to a missing file: {target}"
            if anchor and path.suffix == ".md":
                assert anchor in anchors(path), f"{_page_id(page)} links to a missing heading: {target}"
