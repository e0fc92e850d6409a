"""Task specifications: goal predicates as a short string or a YAML file, and the named long-horizon tasks.

A goal is a conjunction of `envs.predicates` literals, e.g. ``"on(red,blue) & on(green,red)"``.
A YAML spec holds the same string (or a list of literals) under ``goal`` and, optionally,
the env to run it in::

    name: tower
    env: skillstack/PandaStackThree-v0
    goal:                       # a list (block style: in a [flow, list] the commas split literals)
      - on(red,blue)
      - on(green,red)
      - "!holding(green)"         # quoted: YAML reads a leading ! as a tag

`resolve_task("stack-three")` gives the registered long-horizon task's env id and goal.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from envs.predicates import Literal, parse

__all__ = ["TaskSpec", "normalise_literal", "parse_goal", "resolve_task", "task_names"]


def normalise_literal(lit: Literal) -> Literal:
    """`at(x)` means `at(x, goal)`: give every literal its full argument list."""
    if lit.name == "at" and len(lit.args) == 1:
        return Literal("at", (lit.args[0], "goal"), lit.negated)
    return lit


@dataclass(frozen=True)
class TaskSpec:
    """What to achieve (goal literals) and, when known, where (a Gymnasium env id)."""

    name: str
    goal: tuple[Literal, ...]
    env_id: str | None = None

    @property
    def goal_expression(self) -> str:
        return " & ".join(str(lit) for lit in self.goal)

    def objects(self) -> set[str]:
        """Cube names the goal mentions (goal-site arguments of `at` excluded)."""
        out: set[str] = set()
        for lit in self.goal:
            out.update(lit.args[:1] if lit.name == "at" else lit.args)
        return out


def parse_goal(goal: str | list[str] | tuple[str, ...]) -> tuple[Literal, ...]:
    """Goal literals from a conjunction string or a list of literal strings (ValueError on bad input)."""
    if isinstance(goal, (list, tuple)):
        if not goal or not all(isinstance(g, str) for g in goal):
            raise ValueError(f"goal list must be non-empty strings, got {goal!r}")
        text = " & ".join(goal)
    elif isinstance(goal, str):
        text = goal
    else:
        raise ValueError(f"goal must be a string or a list of strings, got {type(goal).__name__}")
    return tuple(normalise_literal(lit) for lit in parse(text))


def task_names() -> list[str]:
    """Names of the registered long-horizon tasks (`pick-place`, `stack-two`, ...)."""
    from envs.long_horizon import LONG_HORIZON_TASKS

    return list(LONG_HORIZON_TASKS)


def _from_yaml(path: Path) -> TaskSpec:
    import yaml

    try:
        data: Any = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise ValueError(f"{path}: not valid YAML ({exc})") from None
    if not isinstance(data, dict) or "goal" not in data:
        raise ValueError(f"{path}: a task spec is a mapping with a 'goal' key (and optional 'name', 'env')")
    extra = sorted(set(data) - {"name", "goal", "env"})
    if extra:
        raise ValueError(f"{path}: unknown key(s) {extra}; allowed: goal, name, env")
    env_id = data.get("env")
    if env_id is not None and not isinstance(env_id, str):
        raise ValueError(f"{path}: 'env' must be an env id string")
    return TaskSpec(str(data.get("name", path.stem)), parse_goal(data["goal"]), env_id)


def resolve_task(task: str | os.PathLike[str], goal: str | None = None) -> TaskSpec:
    """A TaskSpec from a long-horizon task name, a Gymnasium env id, or a YAML spec file.

    `goal` (a predicate string) overrides the task's own goal. An env id without a
    known goal expression needs `goal`.
    """
    from envs.long_horizon import LONG_HORIZON_TASKS
    from envs.registry import ENV_IDS, LONG_HORIZON_IDS

    text = os.fspath(task)
    if text in LONG_HORIZON_TASKS:
        env_id, cls, _steps = LONG_HORIZON_TASKS[text]
        return TaskSpec(text, parse_goal(goal or cls.goal_expression), env_id)
    if text in ENV_IDS or text in LONG_HORIZON_IDS:
        import gymnasium as gym

        cls = gym.spec(text).entry_point
        expr = goal
        if expr is None and isinstance(cls, str):
            module, _, name = cls.partition(":")
            import importlib

            expr = getattr(getattr(importlib.import_module(module), name), "goal_expression", None) or None
        if not expr:
            raise ValueError(f"env {text} has no goal expression; pass one (e.g. --goal 'at(red)')")
        return TaskSpec(text, parse_goal(expr), text)
    path = Path(text)
    if path.suffix in (".yaml", ".yml", ".json") or path.exists():
        if not path.is_file():
            raise FileNotFoundError(f"task spec file {path} not found")
        spec = _from_yaml(path)
        return TaskSpec(spec.name, parse_goal(goal) if goal else spec.goal, spec.env_id)
    raise ValueError(
        f"unknown task {text!r}; valid: {', '.join(LONG_HORIZON_TASKS)}, an env id, or a YAML spec file"
    )
