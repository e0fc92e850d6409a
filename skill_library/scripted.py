"""Registry of scripted controllers a `scripted` skill may name.

A scripted skill's package holds no code: its manifest names a controller from
`SCRIPTED_CONTROLLERS` (this module, reviewed code) plus JSON parameters. Loading a
package can therefore only select among controllers that ship with skillstack.

Scripted controllers close the loop on the observation they are handed each step (what the
env returns, after any `envs.conditions` latency, noise or dropped messages); they take fixed
facts (action scale, robot, cube size) from the env, so they are bound to it: call
`skill.bind(env)` once, `skill.reset()` after every `env.reset()`, then `skill(obs)` each
step; `skill.done` turns True when the controller has finished.

Controllers:

- ``expert_phases``: runs the `envs.experts` scripted expert of a task over a contiguous
  group of its phases. params: ``{"task": "PandaPickPlace", "phases": ["grasp"], "object": "red"}``.
  On reset the expert is put at the group's first phase; the controller is done when the
  expert moves past the group's last phase (or finishes its script).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from skill_library.errors import SkillLibraryError, SkillPackageError

__all__ = ["SCRIPTED_CONTROLLERS", "ExpertPhasesController", "ScriptedController", "make_controller", "validate_controller"]


class ScriptedController:
    """Interface: `bind(env)`, `reset()`, `act(obs) -> action`, `done`, `phase`."""

    def __init__(self, params: Mapping[str, Any]) -> None:
        self.params = dict(params)

    def bind(self, env: Any) -> None:  # pragma: no cover - interface
        raise NotImplementedError

    def reset(self) -> None:  # pragma: no cover - interface
        raise NotImplementedError

    def act(self, obs: Any) -> np.ndarray:  # pragma: no cover - interface
        raise NotImplementedError

    @property
    def done(self) -> bool:  # pragma: no cover - interface
        raise NotImplementedError

    @property
    def phase(self) -> str:
        return ""


def _expert_phases_validate(params: Mapping[str, Any]) -> None:
    from envs.experts import EXPERTS
    from envs.tasks import TASKS

    allowed = {"task", "phases", "object"}
    extra = sorted(set(params) - allowed)
    if extra or not {"task", "phases"} <= set(params):
        raise SkillPackageError(f"expert_phases params must be {sorted(allowed)} (object optional); got {sorted(params)}")
    task = params["task"]
    if task not in TASKS:
        raise SkillPackageError(f"expert_phases: unknown task {task!r}; valid: {sorted(TASKS)}")
    expert = _expert_class(TASKS[task], EXPERTS)
    phases = params["phases"]
    if not isinstance(phases, list) or not phases or not all(isinstance(p, str) for p in phases):
        raise SkillPackageError("expert_phases: phases must be a non-empty list of phase names")
    unknown = [p for p in phases if p not in expert.PHASES]
    if unknown:
        raise SkillPackageError(f"expert_phases: unknown phase(s) {unknown} for {task}; valid: {list(expert.PHASES)}")
    idx = [expert.PHASES.index(p) for p in phases]
    if idx != list(range(idx[0], idx[0] + len(idx))):
        raise SkillPackageError(f"expert_phases: phases {phases} must be contiguous and in order {list(expert.PHASES)}")
    obj = params.get("object")
    if obj is not None and obj != getattr(expert, "cube", "red"):
        raise SkillPackageError(f"expert_phases: the {task} expert handles object {getattr(expert, 'cube', 'red')!r}, not {obj!r}")


def _expert_class(task_cls: type, experts: Mapping[type, type]) -> Any:
    for cls in task_cls.__mro__:
        if cls in experts:
            return experts[cls]
    raise SkillPackageError(f"no scripted expert for task {task_cls.__name__}")


class ExpertPhasesController(ScriptedController):
    """Runs a contiguous group of an `envs.experts` expert's phases (see module docstring)."""

    def __init__(self, params: Mapping[str, Any]) -> None:
        _expert_phases_validate(params)
        super().__init__(params)
        self.phases: tuple[str, ...] = tuple(params["phases"])
        self._expert: Any = None
        self._first = self._last = 0

    def bind(self, env: Any) -> None:
        """Attach to an env of the skill's task (or a subclass); raises SkillLibraryError otherwise."""
        from envs.experts import make_expert
        from envs.tasks import TASKS

        task_cls = TASKS[self.params["task"]]
        if not isinstance(env.unwrapped, task_cls):
            raise SkillLibraryError(
                f"scripted skill drives task {self.params['task']} ({task_cls.__name__}); "
                f"env is {type(env.unwrapped).__name__}"
            )
        self._expert = make_expert(env)
        self._first = self._expert.PHASES.index(self.phases[0])
        self._last = self._expert.PHASES.index(self.phases[-1])

    def reset(self) -> None:
        """Put the expert at the first phase of the group (call after env.reset)."""
        self._expert.reset()
        self._expert.phase_index = self._first
        self._expert.steps_in_phase = 0

    def act(self, obs: Any) -> np.ndarray:
        return self._expert.act(obs)

    @property
    def done(self) -> bool:
        e = self._expert
        return bool(e.phase_index > self._last or e.done)

    @property
    def phase(self) -> str:
        return "" if self._expert is None else str(self._expert.phase)


# name -> (validator(params) raising SkillPackageError, factory(params) -> controller)
SCRIPTED_CONTROLLERS: dict[str, tuple[Callable[[Mapping[str, Any]], None], Callable[[Mapping[str, Any]], ScriptedController]]] = {
    "expert_phases": (_expert_phases_validate, ExpertPhasesController),
}


def validate_controller(name: str, params: Mapping[str, Any]) -> None:
    """Refuse an unknown controller name (listing the valid ones) or params it does not accept."""
    if name not in SCRIPTED_CONTROLLERS:
        raise SkillPackageError(f"unknown scripted controller {name!r}; valid: {sorted(SCRIPTED_CONTROLLERS)}")
    SCRIPTED_CONTROLLERS[name][0](params)


def make_controller(name: str, params: Mapping[str, Any]) -> ScriptedController:
    """Instantiate a registered scripted controller (validated first)."""
    validate_controller(name, params)
    return SCRIPTED_CONTROLLERS[name][1](params)
