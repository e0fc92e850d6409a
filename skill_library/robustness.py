"""Evaluation under named conditions (issue 24): success x condition for skills and training runs.

`evaluate_conditions` runs a skill, or a training run's policy, for the same seeded episodes
under each `envs.conditions` condition, with the one success rule of `skill_library.episodes`.
`condition_descriptors` does the same through the descriptor grid, for storing in a manifest
(`descriptors["conditions"][name]` = success, duration, safety cost). `success_table` and
`plot_success` show the result: a table for the terminal, a PNG of success per condition per skill.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from skill_library.episodes import EpisodeResult, summarise

__all__ = ["condition_descriptors", "evaluate_conditions", "plot_success", "success_table"]


def evaluate_conditions(
    target: Any,
    conditions: Sequence[Any],
    episodes: int,
    seed: int,
    *,
    env_id: str | None = None,
    env_kwargs: Mapping[str, Any] | None = None,
) -> dict[str, dict[str, Any]]:
    """Success, duration and safety cost of `target` under each condition, episodes from seeds `seed + i`.

    `target` is a loaded skill, or `(model, cfg, normalize)` from `policies.training.load_run_model`.
    Returns {condition name: summary (plus "condition": its fields)}.
    """
    from skill_library.episodes import evaluate_skill_target

    out: dict[str, dict[str, Any]] = {}
    for cond in conditions:
        if isinstance(target, tuple):
            summary = summarise(_run_policy(target, cond, [seed + i for i in range(episodes)]))
        else:
            summary = evaluate_skill_target(target, episodes, seed, env_id=env_id, env_kwargs=env_kwargs, condition=cond)
            summary.pop("safety_cost")
        out[cond.name] = {**summary, "condition": cond.to_dict()}
    return out


def _run_policy(run: tuple[Any, Any, Any], cond: Any, seeds: Sequence[int]) -> list[EpisodeResult]:
    """A training run's deterministic policy under `cond`: the full episode, `is_success` at its last step."""
    from envs.conditions import ConditionWrapper
    from policies.training.env_factory import make_env

    model, cfg, normalize = run
    if cfg.skill_discovery is not None:
        raise ValueError("evaluation under conditions takes runs without skill discovery")
    cfg = replace(cfg, env_kwargs={**cfg.env_kwargs, **cond.env_kwargs()})
    env = make_env(cfg, monitor=False)
    if not cond.is_nominal:
        env = ConditionWrapper(env, cond)
    norm = normalize or (lambda o: o)
    results = []
    try:
        dt = float(getattr(env.unwrapped, "control_dt", 0.04))
        for s in seeds:
            obs, _ = env.reset(seed=s)
            cost, steps, done, info = 0.0, 0, False, {}
            while not done:
                obs, _, term, trunc, info = env.step(model.predict(norm(obs), deterministic=True)[0])
                cost += float(info.get("safety_cost", 0.0))
                steps += 1
                done = term or trunc
            results.append(EpisodeResult(bool(info.get("is_success", 0.0)), steps, steps * dt, cost))
    finally:
        env.close()
    return results


def condition_descriptors(
    skill: Any, conditions: Sequence[Any], *, grid: Any = 4, episodes_per_cell: int = 4, seed: int = 0, **kwargs: Any
) -> tuple[dict[str, Any] | None, dict[str, dict[str, Any]]]:
    """Descriptor grids under each condition: (the nominal grid or None, {name: totals + condition}).

    Store with `with_condition_descriptors`; `kwargs` go to `evaluate_skill`.
    """
    from skill_library.authoring import utc_now
    from skill_library.descriptors import evaluate_skill

    nominal: dict[str, Any] | None = None
    per: dict[str, dict[str, Any]] = {}
    for cond in conditions:
        d = evaluate_skill(skill, grid=grid, episodes_per_cell=episodes_per_cell, seed=seed, condition=cond, **kwargs)
        if cond.is_nominal:
            nominal = d
        per[cond.name] = {**d["totals"], "condition": cond.to_dict(), "seed": int(seed), "date": utc_now()}
    return nominal, per


def with_condition_descriptors(manifest: Any, nominal: Mapping[str, Any] | None, per: Mapping[str, Any]) -> Any:
    """A copy of `manifest` whose descriptors hold `per` under "conditions" (and `nominal` as the grid, when given)."""
    from skill_library.descriptors import attach_descriptors

    base = dict(nominal) if nominal is not None else dict(manifest.descriptors or {})
    if not base:
        raise ValueError("the skill has no nominal descriptors to attach condition results to; include 'nominal'")
    old = dict((manifest.descriptors or {}).get("conditions", {}))
    base["conditions"] = {**old, **{k: dict(v) for k, v in per.items()}}
    return attach_descriptors(manifest, base)


def success_table(results: Mapping[str, Mapping[str, Mapping[str, Any]]]) -> tuple[list[str], list[list[str]]]:
    """(headers, rows) of success "k/n (p%)" per skill (rows) and condition (columns)."""
    conds = list(dict.fromkeys(c for per in results.values() for c in per))
    rows = []
    for name, per in results.items():
        row = [name]
        for c in conds:
            r = per.get(c)
            row.append("-" if r is None else f"{r['successes']}/{r['episodes']} ({100 * r['success_rate']:.0f}%)")
        rows.append(row)
    return ["skill", *conds], rows


def plot_success(results: Mapping[str, Mapping[str, Mapping[str, Any]]], path: str | os.PathLike[str]) -> Path:
    """A grouped bar chart (PNG) of success per condition per skill, written atomically."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from common.atomic import atomic_savefig

    conds = list(dict.fromkeys(c for per in results.values() for c in per))
    names = list(results)
    width = 0.8 / max(1, len(conds))
    fig, ax = plt.subplots(figsize=(max(6.0, 0.9 * len(names) * max(1, len(conds)) ** 0.5 + 2), 4.0))
    x = np.arange(len(names))
    for i, c in enumerate(conds):
        vals = [100 * results[n][c]["success_rate"] if c in results[n] else np.nan for n in names]
        ax.bar(x + (i - (len(conds) - 1) / 2) * width, vals, width, label=c)
    ax.set_xticks(x, names, rotation=30, ha="right")
    ax.set_ylabel("success (%)")
    ax.set_ylim(0, 105)
    ax.set_title("success per condition")
    ax.legend(fontsize=8, ncols=min(4, len(conds)))
    fig.tight_layout()
    return atomic_savefig(fig, Path(path).with_suffix(".png") if not str(path).endswith(".png") else path, dpi=120)
