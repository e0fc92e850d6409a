"""Shared benchmark plumbing: machine description and atomic JSON output."""

from __future__ import annotations

import json
import os
import platform
import tempfile
import time
from pathlib import Path
from typing import Any


def machine_info() -> dict[str, Any]:
    """What the numbers were measured on (benchmarks compare ratios, but context matters)."""
    import mujoco

    return {
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "mujoco": mujoco.__version__,
        "date": time.strftime("%Y-%m-%dT%H:%M:%S"),
    }


def write_result(result: dict[str, Any], out: str | os.PathLike) -> Path:
    """Write a benchmark result as JSON, atomically (temp file + rename)."""
    path = Path(out)
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {"machine": machine_info(), **result}
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    with os.fdopen(fd, "w") as fh:
        json.dump(payload, fh, indent=2, default=float)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)
    return path
