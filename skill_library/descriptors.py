"""Skill descriptors: success, duration and safety cost over a grid of initial states.

As the table-tennis agent's low-level controllers had, each skill carries a table of how
well it does from where: `evaluate_skill` rolls the skill out in simulation from a grid
of initial states (by default the x, y of the task's cube on the table - or of the goal
for Reach) and stores per cell the success rate, mean duration and mean safety cost,
plus totals. `lookup` (and `Skill.estimate_success`) answers "estimated success from
this state" by the nearest grid cells; a hierarchical controller ranks skills with it.

Determinism and splitting: episode `e` of cell `c` (row-major flat index) draws all its
randomness from `SeedSequence([seed, c, e, attempt])` and resets the env with that
seed, so a cell's results do not depend on which other cells run in the same process.
`evaluate_skill(..., cells=range(a, b))` evaluates a slice; `merge_descriptors` joins
slices into the same result a single run gives (distributed evaluation relies on this).

Episode protocol:
1. reset with the episode seed, then move the grid variable to the cell centre plus a
   uniform jitter inside the cell (re-drawn, with the next attempt's seed, if it lands
   within 8 cm of another cube or a table goal);
2. setup, when the skill starts mid-task: a scripted `expert_phases` skill whose first
   phase is not the expert's first is preceded by the expert running up to that phase;
   any skill whose preconditions do not hold is preceded by the task's expert until they
   do (`setup="auto"`; `setup="none"` disables this). A setup that fails re-draws;
3. run the skill for at most `max_steps` control steps (`skill_library.episodes.run_skill_episode`):
   success is the success test at the step the episode ends - the rule `skillstack eval`, run-task
   and the benchmarks share (see `skill_library.episodes`). A skill with effects ends when they
   hold, a scripted skill when its controller is done, any other at `max_steps`.
   Duration = steps run x control_dt; safety cost = sum of `info["safety_cost"]` over those steps.

Under a named condition (`envs.conditions`: latency, object noise, drops, dynamics) the same
protocol runs in an env made for it; the result names the condition.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from skill_library.episodes import run_skill_episode, setup_skill
from skill_library.errors import SkillLibraryError, SkillSetupError
from skill_library.manifest import Manifest

__all__ = [
    "GridSpec",
    "attach_descriptors",
    "evaluate_skill",
    "lookup",
    "make_grid",
    "merge_descriptors",
]

_MIN_SEPARATION = 0.08
_MAX_ATTEMPTS = 50


@dataclass(frozen=True)
class GridSpec:
    """A rectangular grid over a 2-D state variable: cell centres per axis and cell half-widths."""

    variable: str  # "object_xy:<cube>" or "goal_xy:<goal site>"
    axes: tuple[tuple[float, ...], ...]
    half_widths: tuple[float, ...]

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(len(a) for a in self.axes)

    @property
    def n_cells(self) -> int:
        return math.prod(self.shape)

    def cell(self, flat: int) -> tuple[tuple[int, ...], np.ndarray]:
        """(index per axis, centre) of the row-major flat cell index."""
        idx = tuple(int(i) for i in np.unravel_index(flat, self.shape))
        return idx, np.array([self.axes[a][i] for a, i in enumerate(idx)])

    def to_dict(self) -> dict[str, Any]:
        return {"variable": self.variable, "axes": [list(a) for a in self.axes], "cell_size": [2 * h for h in self.half_widths]}


def _region(env: Any) -> tuple[str, np.ndarray, np.ndarray]:
    u = env.unwrapped
    objects = tuple(getattr(u, "objects", ()))
    if objects:
        from envs.tasks import OBJECT_HIGH, OBJECT_LOW

        return f"object_xy:{objects[0]}", np.asarray(OBJECT_LOW, float), np.asarray(OBJECT_HIGH, float)
    goal = tuple(getattr(u, "goal_sites", ("goal",)))[0]
    return f"goal_xy:{goal}", np.array([0.35, -0.2]), np.array([0.65, 0.2])


def make_grid(env: Any, grid: int | Sequence[int] | Mapping[str, Any] | GridSpec = 4) -> GridSpec:
    """Grid for an env: `n` (n x n cells), `(nx, ny)`, a GridSpec, or a mapping with
    ``variable``, ``low``, ``high``, ``shape`` over the task's default region.

    Default variable: the first cube's x, y over the region tasks sample cubes from
    (envs.tasks.OBJECT_LOW/HIGH); for Reach (no cube) the goal's x, y.
    """
    if isinstance(grid, GridSpec):
        return grid
    variable, low, high = _region(env)
    if isinstance(grid, Mapping):
        variable = str(grid.get("variable", variable))
        low = np.asarray(grid.get("low", low), float)
        high = np.asarray(grid.get("high", high), float)
        shape = grid.get("shape", (4, 4))
    else:
        shape = grid
    if isinstance(shape, (int, np.integer)):
        shape = (int(shape), int(shape))
    shape = tuple(int(s) for s in shape)
    if len(shape) != 2 or not all(1 <= s <= 256 for s in shape):
        raise SkillLibraryError(f"grid shape must be two integers in [1, 256], got {shape}")
    if not variable.startswith(("object_xy:", "goal_xy:")):
        raise SkillLibraryError(f"unknown grid variable {variable!r}; valid: 'object_xy:<cube>', 'goal_xy:<goal>'")
    widths = (high - low) / np.asarray(shape)
    axes = tuple(tuple(float(low[a] + (i + 0.5) * widths[a]) for i in range(shape[a])) for a in range(2))
    return GridSpec(variable, axes, tuple(float(w / 2) for w in widths))


# ----------------------------------------------------------------- rollouts


def _seed(seed: int, cell: int, episode: int, attempt: int) -> tuple[int, np.random.Generator]:
    ss = np.random.SeedSequence([seed, cell, episode, attempt])
    reset_seed, jitter_seed = ss.generate_state(2, dtype=np.uint32)
    return int(reset_seed), np.random.default_rng(int(jitter_seed))


def _place(env: Any, grid: GridSpec, xy: np.ndarray) -> dict[str, Any] | None:
    """Move the grid variable to `xy` via get_state/set_state; None if it collides with the scene."""
    u = env.unwrapped
    kind, _, name = grid.variable.partition(":")
    h = float(getattr(u, "cube_half_size", 0.02))
    if kind == "object_xy":
        if name not in u.objects:
            raise SkillLibraryError(f"grid variable {grid.variable!r}: env has cubes {list(u.objects)}")
        for other in u.objects:
            if other != name and np.linalg.norm(u.object_pos(other)[:2] - xy) < _MIN_SEPARATION:
                return None
        for goal in _goal_positions(u):
            if goal[2] < 3 * h and np.linalg.norm(goal[:2] - xy) < _MIN_SEPARATION:
                return None
        pos = u.object_pos(name)
        u.set_object_pos(name, np.array([xy[0], xy[1], pos[2]]))
        state = u.get_state()
    else:
        gd = u.goal.size
        sites = list(getattr(u, "goal_sites", ("goal",)))
        if name not in sites:
            raise SkillLibraryError(f"grid variable {grid.variable!r}: env has goals {sites}")
        state = u.get_state()
        start = len(state) - 1 - gd + 3 * sites.index(name)
        state[start : start + 2] = xy
    obs, info = env.reset(options={"state": state})
    return obs


def _goal_positions(u: Any) -> list[np.ndarray]:
    g = np.asarray(u.goal, float)
    return [g[i : i + 3] for i in range(0, len(g) - 2, 3)]


def _evaluate_cell(
    env: Any, skill: Any, expert: Any, grid: GridSpec, flat: int, episodes: int, seed: int, max_steps: int, setup: str,
    setup_steps: int, record: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    idx, centre = grid.cell(flat)
    hw = np.asarray(grid.half_widths)
    successes, durations, costs = 0, [], []
    for e in range(episodes):
        for attempt in range(_MAX_ATTEMPTS):
            reset_seed, rng = _seed(seed, flat, e, attempt)
            env.reset(seed=reset_seed)
            xy = centre + rng.uniform(-hw, hw)
            obs = _place(env, grid, xy)
            if obs is None:
                continue
            obs, ok = setup_skill(env, skill, obs, expert, setup, budget=setup_steps)
            if ok:
                break
        else:
            raise SkillSetupError(
                f"cell {list(idx)} of {grid.variable}: no valid initial state in {_MAX_ATTEMPTS} attempts "
                "(placement collisions or setup never reached the skill's preconditions)"
            )
        start = env.unwrapped.get_state() if record is not None else None
        result = run_skill_episode(env, skill, obs, max_steps)
        if record is not None:
            record.append({"cell": flat, "state": start, **result.to_dict()})
        successes += int(result.success)
        durations.append(result.duration_s)
        costs.append(result.safety_cost)
    return {
        "index": list(idx),
        "center": [float(c) for c in centre],
        "episodes": episodes,
        "successes": successes,
        "success_rate": successes / episodes,
        "mean_duration_s": float(np.mean(durations)),
        "mean_safety_cost": float(np.mean(costs)),
    }


def _totals(cells: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    n = sum(int(c["episodes"]) for c in cells)
    k = sum(int(c["successes"]) for c in cells)
    if n == 0:
        return {"episodes": 0, "successes": 0, "success_rate": 0.0, "mean_duration_s": 0.0, "mean_safety_cost": 0.0}
    return {
        "episodes": n,
        "successes": k,
        "success_rate": k / n,
        "mean_duration_s": sum(c["mean_duration_s"] * c["episodes"] for c in cells) / n,
        "mean_safety_cost": sum(c["mean_safety_cost"] * c["episodes"] for c in cells) / n,
    }


def _obs_source(env: Any, grid: GridSpec) -> dict[str, Any] | None:
    kind, _, name = grid.variable.partition(":")
    u = env.unwrapped
    if kind == "object_xy":
        layout = getattr(u, "observation_layout", {})
        sl = layout.get(f"{name}_pos")
        return None if sl is None else {"key": "observation", "start": int(sl.start)}
    sites = list(getattr(u, "goal_sites", ("goal",)))
    return {"key": "desired_goal", "start": 3 * sites.index(name)}


def evaluate_skill(
    skill: Any,
    env_id: str | None = None,
    grid: int | Sequence[int] | Mapping[str, Any] | GridSpec = 4,
    episodes_per_cell: int = 4,
    seed: int = 0,
    max_steps: int | None = None,
    cells: Iterable[int] | None = None,
    env_kwargs: Mapping[str, Any] | None = None,
    setup: str = "auto",
    setup_steps: int | None = None,
    condition: Any = None,
    episodes_out: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """Roll `skill` out over a grid of initial states; returns the descriptors dict.

    `condition` (an `envs.conditions.Condition` or a name) runs every episode under it; the
    result then names it. `episodes_out`, when given, receives each episode's start state
    (after placement and setup) and result, for replaying the same episodes elsewhere.

    `env_id` defaults to the skill's task env; `max_steps` to that env's episode length.
    `setup_steps` bounds the expert steps that set up the skill's preconditions (default
    4 * max_steps; a short skill that starts late in a task needs more).
    `cells` restricts the run to some row-major flat cell indices (results for a cell are
    identical whichever slice it runs in; join slices with `merge_descriptors`). Store the
    result with `attach_descriptors` (or `SkillLibrary.update_manifest`).
    """
    import envs

    if setup not in ("auto", "none"):
        raise SkillLibraryError(f"setup must be 'auto' or 'none', got {setup!r}")
    if episodes_per_cell < 1:
        raise SkillLibraryError(f"episodes_per_cell must be >= 1, got {episodes_per_cell}")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise SkillLibraryError(f"seed must be a non-negative integer, got {seed!r}")
    manifest: Manifest = skill.manifest
    env_id = env_id or manifest.task.env_id
    kwargs = dict(manifest.task.env_kwargs if env_kwargs is None else env_kwargs)
    if max_steps is None:
        probe = envs.make(env_id, **kwargs)
        max_steps = int(probe.spec.max_episode_steps or 50)
        probe.close()
    from envs.conditions import make_condition_env

    env = make_condition_env(env_id, condition or "nominal", **kwargs, max_episode_steps=1_000_000)
    cond_name = getattr(env, "condition", None)
    try:
        spec = make_grid(env, grid)
        skill.bind(env)
        expert = None
        try:
            from envs.experts import make_expert

            expert = make_expert(env)
        except ValueError:
            expert = None
        chosen = range(spec.n_cells) if cells is None else sorted(set(int(c) for c in cells))
        for c in chosen:
            if not 0 <= c < spec.n_cells:
                raise SkillLibraryError(f"cell {c} outside the grid's {spec.n_cells} cells")
        results = [
            _evaluate_cell(env, skill, expert, spec, c, episodes_per_cell, int(seed), max_steps, setup,
                           4 * max_steps if setup_steps is None else int(setup_steps), episodes_out) for c in chosen
        ]
        from skill_library.authoring import utc_now

        out = {
            "env_id": env_id,
            "env_kwargs": kwargs,
            **spec.to_dict(),
            "seed": int(seed),
            "episodes_per_cell": int(episodes_per_cell),
            "max_steps": int(max_steps),
            "control_dt": float(getattr(env.unwrapped, "control_dt", 0.04)),
            "setup": setup,
            "obs_source": _obs_source(env, spec),
            "cells": results,
            "totals": _totals(results),
            "date": utc_now(),
        }
        if cond_name is not None:
            out["condition"] = cond_name.name
    finally:
        env.close()
    return out


def merge_descriptors(parts: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Join descriptor slices of one evaluation (same env, grid, seed, episodes) into one result."""
    if not parts:
        raise SkillLibraryError("nothing to merge")
    keys = ("env_id", "variable", "axes", "seed", "episodes_per_cell", "max_steps", "setup", "condition")
    first = parts[0]
    for p in parts[1:]:
        for k in keys:
            if p.get(k) != first.get(k):
                raise SkillLibraryError(f"cannot merge descriptors: {k} differs ({first.get(k)!r} vs {p.get(k)!r})")
    cells: dict[tuple[int, ...], Mapping[str, Any]] = {}
    for p in parts:
        for c in p["cells"]:
            cells[tuple(c["index"])] = c
    merged = [dict(cells[k]) for k in sorted(cells)]
    out = dict(first)
    out["cells"] = merged
    out["totals"] = _totals(merged)
    out["date"] = max(str(p.get("date") or "") for p in parts) or None
    return out


def attach_descriptors(manifest: Manifest, descriptors: Mapping[str, Any]) -> Manifest:
    """A copy of `manifest` carrying `descriptors` (write it with package.rewrite_manifest or the library)."""
    return replace(manifest, descriptors=dict(descriptors))


# ----------------------------------------------------------------- lookup


def _state_xy(descriptors: Mapping[str, Any], state: Any) -> np.ndarray:
    kind, _, name = str(descriptors["variable"]).partition(":")
    if hasattr(state, "objects") and hasattr(state, "goals"):  # envs.predicates.SceneState
        if kind == "object_xy":
            return np.asarray(state.object(name), float)[:2]
        return np.asarray(state.goal(name), float)[:2]
    src = descriptors.get("obs_source")
    if isinstance(state, Mapping):
        if not src or src["key"] not in state:
            raise SkillLibraryError(f"cannot read {descriptors['variable']} from an observation dict with keys {sorted(state)}")
        v = np.asarray(state[src["key"]], float).reshape(-1)
        return v[src["start"] : src["start"] + 2]
    v = np.asarray(state, float).reshape(-1)
    if v.size == len(descriptors["axes"]):
        return v
    if src and src["key"] == "observation" and v.size >= src["start"] + 2:
        return v[src["start"] : src["start"] + 2]
    raise SkillLibraryError(
        f"cannot read {descriptors['variable']} from an array of {v.size} values; pass a SceneState, an observation dict, or the x, y"
    )


def lookup(descriptors: Mapping[str, Any], state: Any, k: int = 4) -> dict[str, float]:
    """Inverse-distance-weighted stats of the `k` grid cells nearest to `state`'s grid variable.

    Returns success_rate, mean_duration_s, mean_safety_cost and `distance` (to the nearest
    cell centre: large values mean the state lies outside what was evaluated).
    """
    cells = [c for c in descriptors.get("cells", ()) if c["episodes"] > 0]
    if not cells:
        raise SkillLibraryError("descriptors hold no evaluated cells")
    xy = _state_xy(descriptors, state)
    centres = np.array([c["center"] for c in cells], float)
    d = np.linalg.norm(centres - xy, axis=1)
    order = np.argsort(d, kind="stable")[: max(1, int(k))]
    w = 1.0 / (d[order] + 1e-3)
    w = w / w.sum()
    pick = [cells[i] for i in order]
    return {
        "success_rate": float(sum(wi * c["success_rate"] for wi, c in zip(w, pick))),
        "mean_duration_s": float(sum(wi * c["mean_duration_s"] for wi, c in zip(w, pick))),
        "mean_safety_cost": float(sum(wi * c["mean_safety_cost"] for wi, c in zip(w, pick))),
        "distance": float(d[order[0]]),
    }
