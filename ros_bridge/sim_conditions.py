"""A named perturbation condition applied by sim_robot, tick for tick as the envs apply it (issue 24).

The per-tick logic is the envs' own (`envs.conditions.ConditionChannel`, `envs.randomization.
Randomizer`); this module only decides what a control tick is on a robot and what each effect
does to ROS messages. No rclpy here.

**A control tick is the arrival of an arm command.** skill_executor sends one per control period,
right after the state it computed it from (ros2_control's read -> update -> write), so the n-th arm
command after a reset is the env's step n. When no command comes for 1.5 envs' periods (the
executor waiting or stopped) a state-only tick keeps the noise fresh and the drops going; not before
an episode's first command, so the draws of a seed do not depend on how soon the executor starts.

- **Latency** of k periods: the command that arrives at tick t is applied when the one of tick
  t + k arrives (`ConditionChannel.delay_action`: its queue carries each command's token); while
  the queue fills the arm holds its targets, as in the envs (which delay their joint targets the same way). Commands on a
  gripper's own path (profiles fr3, ur) are not ticks: they wait k envs' periods of time.
- **Object noise**: at each tick the channel draws the next period's noise, added to the true
  pose of every cube sim_robot publishes during that period.
- **Drops**: when the channel drops a tick's state, sim_robot re-publishes, for that period, the
  joint states and poses it last published (their values and stamps), which is what a subscriber
  keeps when a message is lost: the executor's next tick sees the previous tick's state, as in the
  envs. The first state of an episode is never dropped.
- **Dynamics**: at every reset the envs' `Randomizer` draws friction, object mass and size and
  actuator gain from a generator seeded as the env's is (`np.random.default_rng(seed)`), so
  sim_robot reset with seed s has the dynamics of `env.reset(seed=s)`.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from envs.conditions import Condition, ConditionChannel, load_conditions
from envs.randomization import Randomizer

__all__ = ["CONDITION_PERIOD_S", "SimConditions", "resolve_condition"]

CONDITION_PERIOD_S = 0.04  # the envs' control period: the unit of a condition's latency


def resolve_condition(spec: str) -> Condition:
    """A condition from sim_robot's `condition` parameter: a shipped name (`latency80`), a YAML file
    of conditions holding one (`mine.yaml`), or one of a file's (`mine.yaml:slow_heavy`).
    ValueError names the valid choices."""
    spec = spec.strip()
    path, name = spec, ""
    head, sep, tail = spec.rpartition(":")
    if sep and head.endswith((".yaml", ".yml")):
        path, name = head, tail
    if not path.endswith((".yaml", ".yml")) and os.sep not in path:
        shipped = load_conditions()
        if spec not in shipped:
            raise ValueError(f"unknown condition {spec!r}; valid: {sorted(shipped)} or a YAML file of conditions")
        return shipped[spec]
    shipped = set(load_conditions())
    mine = {n: c for n, c in load_conditions(Path(path).expanduser()).items() if n not in shipped}
    if name:
        if name not in mine:
            raise ValueError(f"conditions file {path} has no condition {name!r}; it has {sorted(mine)}")
        return mine[name]
    if len(mine) != 1:
        raise ValueError(f"conditions file {path} holds {sorted(mine)}: name one as {path}:NAME")
    return next(iter(mine.values()))


class SimConditions:
    """One condition on sim_robot's scene (see the module docstring).

    A tick's `state` is the true position of each object (3 numbers each, in `objects` order):
    what the channel observes; a dropped tick needs no values, the node re-publishes its last messages.
    """

    def __init__(self, condition: Condition, model: Any, robot: Any, objects: Sequence[str]):
        self.condition = condition
        self.objects = tuple(objects)
        self._randomizer = None
        if condition.dynamics is not None:
            geoms = [model.geom(f"cube_{o}").id for o in objects]
            bodies = [model.body(f"cube_{o}").id for o in objects]
            self._randomizer = Randomizer(model, robot, geoms, bodies)
        layout = {f"{o}_pos": slice(3 * i, 3 * i + 3) for i, o in enumerate(objects)}
        self.channel = ConditionChannel(condition, layout, self.objects)
        self._commands: dict[int, Any] = {}
        self._token = 0
        self.ticks = 0  # control ticks (arm commands) since the last reset
        self.stale = False  # this period re-publishes the last state (its tick was dropped)
        self.noise = np.zeros((len(self.objects), 3))  # this period's offset on each object's position
        self.draw: dict[str, float] = {}  # the dynamics drawn at the last reset
        self.last_tick = 0.0  # monotonic time of the last tick

    @property
    def latency_s(self) -> float:
        """The latency as time (for commands that are not ticks: a gripper's own path)."""
        return self.condition.action_latency_steps * CONDITION_PERIOD_S

    def reset(self, seed: int) -> dict[str, float]:
        """New episode, before the scene is placed: draw the dynamics for `seed` (returned), empty
        the latency queue and reseed the channel. Then `observe` the first state (never dropped)."""
        self.draw = {}
        if self._randomizer is not None:
            self.draw = self._randomizer.apply(self.condition.dynamics, np.random.default_rng(int(seed)))
        self.channel.reset(int(seed))
        self._commands.clear()
        self.ticks = 0
        return self.draw

    def observe(self, state: np.ndarray, now: float) -> None:
        """A tick's state: draw the next period's noise, or drop it (the period re-publishes the last state)."""
        before = self.channel.dropped
        seen = self.channel.observe({"observation": np.asarray(state, dtype=np.float64)})["observation"]
        self.stale = self.channel.dropped > before
        if not self.stale:
            self.noise = (seen - state).reshape(-1, 3)
        self.last_tick = now

    def command(self, payload: Any, state: np.ndarray, now: float) -> Any | None:
        """An arm command arrived (a tick): observe `state`, return the command to apply now
        (the one from `action_latency_steps` ticks ago) or None while the queue fills (hold)."""
        self.observe(state, now)
        token = self._token
        self._token += 1
        self._commands[token] = payload
        out = int(self.channel.delay_action(np.array([token], dtype=np.float64), np.array([-1.0]))[0])
        self.ticks += 1  # last: a thread that waits for the count sees the tick's noise and drops already drawn
        return None if out < 0 else self._commands.pop(out)

    def idle_tick_due(self, now: float) -> bool:
        """True when no tick came for 1.5 periods since the episode's first command: time for a
        state-only tick. Never before that first command, so the n-th command after a reset is the
        env's step n however long the executor takes to start (a state-only tick there drew one
        more noise sample on a loaded machine, and the same seed gave other noise)."""
        return self.ticks > 0 and now - self.last_tick >= 1.5 * CONDITION_PERIOD_S
