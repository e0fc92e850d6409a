"""Connecting to Ray: a local instance sized to the machine, or an existing cluster.

Ray is an optional extra (`pip install skillstack[cluster]`); everything else in
skillstack works without it, so it is imported only inside these functions.
"""

from __future__ import annotations

import os
from typing import Any


def require_ray() -> Any:
    """Import Ray or explain how to get it."""
    try:
        import ray
    except ImportError:
        raise ImportError(
            "Ray is not installed; install the cluster extra: pip install 'skillstack[cluster]'"
        ) from None
    return ray


def connect(address: str | None = None, num_cpus: int | None = None) -> Any:
    """Start or join Ray and return the module.

    address None starts a local instance with one CPU slot per core (or `num_cpus`);
    "auto" joins the cluster this machine belongs to; "ray://host:port" joins a remote
    cluster through Ray Client. Already-initialised Ray is reused as it is.
    """
    ray = require_ray()
    if ray.is_initialized():
        return ray
    # Keep Ray quiet and local-only unless the user asks for a cluster.
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    kwargs: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False, "ignore_reinit_error": True}
    if address is None:
        kwargs["num_cpus"] = int(num_cpus or os.cpu_count() or 1)
    else:
        if not (address == "auto" or address.startswith("ray://") or ":" in address):
            raise ValueError(f"--address must be 'auto', 'ray://HOST:PORT' or HOST:PORT, got {address!r}")
        kwargs["address"] = address
    kwargs["runtime_env"] = {"env_vars": worker_env()}
    ray.init(**kwargs)
    return ray


def worker_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """Environment for Ray workers: headless rendering, and this project importable."""
    # The folder holding the project's top-level packages (this file is <root>/policies/ray_cluster.py).
    project_root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env = {"MUJOCO_GL": os.environ.get("MUJOCO_GL", "egl"), "PYTHONPATH": project_root}
    env.update(extra or {})
    return env


def available_cpus() -> int:
    """CPU slots Ray can schedule on right now (after `connect`)."""
    ray = require_ray()
    return int(ray.cluster_resources().get("CPU", 1))
