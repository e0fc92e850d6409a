"""Shared benchmark plumbing: machine description and atomic JSON output."""

from __future__ import annotations

import os
import platform
import time
from pathlib import Path
from typing import Any

from common.atomic import atomic_write_json


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
    """Write a benchmark result as JSON, atomically (`common.atomic`: temp file, fsync, rename)."""
    return atomic_write_json(out, {"machine": machine_info(), **result}, indent=2, default=float)
