"""Descriptor evaluation split across Ray workers.

The grid of initial states is dealt round-robin to the workers; each evaluates its cells
with `evaluate_skill(..., cells=...)` and the slices are joined by `merge_descriptors`.
Every (cell, episode) has its own seed, so the result is identical to a single-process
evaluation with the same seed, whatever the number of workers.

The skill travels to the workers as the bytes of its package files (through Ray's
object store), not as a path, so workers on other machines need no shared disk; each
worker re-verifies the package hashes when it loads it.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from skill_library.descriptors import GridSpec, make_grid, merge_descriptors


def _pack(package_dir: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(package_dir.iterdir()) if p.is_file()}


def _evaluate_cells(files: Mapping[str, bytes], cells: Sequence[int], kwargs: Mapping[str, Any]) -> dict[str, Any]:
    """Ray task body: unpack the package, load it safely, evaluate the given cells."""
    from skill_library.descriptors import evaluate_skill
    from skill_library import load_skill

    with tempfile.TemporaryDirectory(prefix="skillstack-eval-") as tmp:
        pkg = Path(tmp) / "skill"
        pkg.mkdir()
        for name, data in files.items():
            (pkg / name).write_bytes(data)
        skill = load_skill(pkg)
        return evaluate_skill(skill, cells=list(cells), **kwargs)


def count_cells(skill: Any, env_id: str | None, grid: Any) -> int:
    """Number of grid cells the evaluation will cover (builds the env once to size the grid)."""
    import envs

    manifest = skill.manifest
    env = envs.make(env_id or manifest.task.env_id, **dict(manifest.task.env_kwargs))
    try:
        spec: GridSpec = make_grid(env, grid)
        return int(spec.n_cells)
    finally:
        env.close()


def evaluate_skill_distributed(
    package_dir: str | os.PathLike[str],
    workers: int,
    address: str | None = None,
    env_id: str | None = None,
    grid: Any = 4,
    episodes_per_cell: int = 4,
    seed: int = 0,
    max_steps: int | None = None,
) -> dict[str, Any]:
    """Evaluate a skill package's descriptors on `workers` Ray workers; same result as serial."""
    from policies.ray_cluster import connect
    from skill_library import load_skill

    if workers < 1:
        raise ValueError(f"workers must be >= 1, got {workers}")
    package_dir = Path(package_dir)
    skill = load_skill(package_dir)  # verify locally first: fail fast with a clear error
    n_cells = count_cells(skill, env_id, grid)
    chunks = [list(range(i, n_cells, workers)) for i in range(min(workers, n_cells))]
    kwargs = {"env_id": env_id, "grid": grid, "episodes_per_cell": episodes_per_cell, "seed": seed,
              "max_steps": max_steps}
    ray = connect(address, num_cpus=workers if address is None else None)
    files = ray.put(_pack(package_dir))
    task = ray.remote(num_cpus=1, max_retries=2)(_evaluate_cells)
    parts = ray.get([task.remote(files, chunk, kwargs) for chunk in chunks])
    return merge_descriptors(parts)
