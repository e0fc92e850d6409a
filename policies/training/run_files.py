"""The files of a run folder other than checkpoints: the evaluation log and the summary.

Every write goes through ``common.atomic``: the evaluation log is small (one line per
evaluation) and is rewritten whole, so a killed process leaves the old log or the new one.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from common.atomic import atomic_write_json, atomic_write_text

__all__ = [
    "CHECKPOINT_DIR",
    "EVAL_FILE",
    "SUMMARY_FILE",
    "append_eval_row",
    "json_default",
    "read_eval_log",
    "read_summary",
    "steps_to",
    "truncate_eval_log",
    "write_summary",
]

EVAL_FILE = "eval.jsonl"
SUMMARY_FILE = "summary.json"
CHECKPOINT_DIR = "checkpoints"


def json_default(value: Any) -> Any:
    """JSON for the numpy scalars/arrays, sets and tuples a run records."""
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.floating):
        return float(value)
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, (set, tuple)):
        return list(value)
    raise TypeError(f"cannot serialise {type(value).__name__} to JSON")


def read_eval_log(run_dir: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """The evaluation rows of a run (``eval.jsonl``), oldest first."""
    path = Path(run_dir) / EVAL_FILE
    if not path.is_file():
        raise FileNotFoundError(f"{run_dir}: no {EVAL_FILE} (has the run evaluated yet?)")
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _write_eval_rows(run_dir: Path, rows: list[Mapping[str, Any]]) -> None:
    atomic_write_text(run_dir / EVAL_FILE, "".join(json.dumps(r, default=json_default) + "\n" for r in rows))


def append_eval_row(run_dir: str | os.PathLike[str], row: Mapping[str, Any]) -> None:
    """Add one evaluation row to the run's log."""
    run = Path(run_dir)
    rows = read_eval_log(run) if (run / EVAL_FILE).is_file() else []
    _write_eval_rows(run, [*rows, row])


def truncate_eval_log(run_dir: str | os.PathLike[str], step: int) -> None:
    """Drop evaluation rows after ``step`` (a resumed run evaluates those steps again)."""
    run = Path(run_dir)
    if (run / EVAL_FILE).is_file():
        _write_eval_rows(run, [r for r in read_eval_log(run) if int(r["step"]) <= step])


def steps_to(run_dir: str | os.PathLike[str], threshold: float) -> int | None:
    """The first evaluated step whose success rate reached ``threshold`` (``None``: never)."""
    if not (Path(run_dir) / EVAL_FILE).is_file():
        return None
    for row in read_eval_log(run_dir):
        if row.get("success_rate", 0.0) >= threshold:
            return int(row["step"])
    return None


def read_summary(run_dir: str | os.PathLike[str]) -> dict[str, Any]:
    """A finished run's ``summary.json``."""
    path = Path(run_dir) / SUMMARY_FILE
    if not path.is_file():
        raise FileNotFoundError(f"{run_dir}: no {SUMMARY_FILE} (has the run finished?)")
    return json.loads(path.read_text())


def write_summary(run_dir: str | os.PathLike[str], summary: Mapping[str, Any]) -> Path:
    """Write (or replace) the run's ``summary.json``."""
    return atomic_write_json(Path(run_dir) / SUMMARY_FILE, dict(summary), indent=2, default=json_default)
