"""Named perturbation conditions: what a skill meets between the simulator and a robot (issue 24).

A `Condition` is data (shipped in `envs/conditions.yaml`, more in a user YAML file of the same
form): physical dynamics drawn from the randomisation ranges at each reset, command latency in
whole control periods, Gaussian noise on observed object positions, and dropped state messages
(the previous observation repeated, stale, as a lost message leaves a subscriber).

The latency is a robot's: the joint targets are computed when the command is sent (the IK on the
joints measured then, or on where the arm will be when it lands: `envs.in_flight`) and reach the
arm k ticks later. The envs do this inside `TabletopEnv.step` (`command_latency_steps`, set by
`ConditionWrapper`); the ROS bridge's sim_robot delays the commands skill_executor sends with
`ConditionChannel.delay_action`. After a dropped state message the next command is computed from
the joints last received, on both paths. Noise and drops are `ConditionChannel.observe`, one object
for both. Dynamics need the env's own randomiser, so they go in as env kwargs
(`Condition.env_kwargs`, `make_condition_env`).

Determinism: the channel draws from its own generator, seeded from the reset seed, so a seeded
episode reproduces, and a condition without dynamics leaves the env's initial states unchanged
(episodes are paired across conditions). Every reset empties the latency queue and forgets the
last observation.
"""

from __future__ import annotations

import math
import os
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import yaml

from envs.randomization import DomainRandomization

__all__ = [
    "CONDITIONS_FILE",
    "Condition",
    "ConditionChannel",
    "ConditionWrapper",
    "load_conditions",
    "make_condition_env",
    "parse_conditions",
]

CONDITIONS_FILE = Path(__file__).with_name("conditions.yaml")
_SALT = 0x5EED_C0DE  # keeps the channel's stream apart from the env's own seeded generator
_PHYSICAL = ("friction_scale", "object_mass_scale", "object_size_scale", "actuator_gain_scale")


@dataclass(frozen=True)
class Condition:
    """One named perturbation condition (see the module docstring for each field's meaning)."""

    name: str
    description: str = ""
    dynamics: DomainRandomization | None = None  # physical ranges only: no noise, no latency in it
    action_latency_steps: int = 0
    object_noise_std: float = 0.0
    drop_probability: float = 0.0

    def __post_init__(self) -> None:
        if not self.name or not isinstance(self.name, str):
            raise ValueError(f"a condition needs a non-empty name, got {self.name!r}")
        lat = self.action_latency_steps
        if isinstance(lat, bool) or not isinstance(lat, (int, np.integer)) or lat < 0:
            raise ValueError(f"condition {self.name!r}: action_latency_steps must be an integer >= 0, got {lat!r}")
        std = self.object_noise_std
        if not isinstance(std, (int, float)) or not math.isfinite(std) or std < 0:
            raise ValueError(f"condition {self.name!r}: object_noise_std must be a finite number >= 0 (metres), got {std!r}")
        p = self.drop_probability
        if not isinstance(p, (int, float)) or not 0.0 <= p < 1.0:
            raise ValueError(f"condition {self.name!r}: drop_probability must be in [0, 1), got {p!r}")
        if self.dynamics is not None and (self.dynamics.observation_noise_std or any(self.dynamics.action_latency_steps)):
            raise ValueError(f"condition {self.name!r}: dynamics holds physical ranges only; "
                             "use object_noise_std and action_latency_steps for noise and latency")

    @classmethod
    def from_dict(cls, name: str, spec: Mapping[str, Any] | None) -> "Condition":
        """Build from a YAML mapping; unknown keys are refused, naming the valid ones."""
        spec = dict(spec or {})
        known = {f.name for f in fields(cls)} - {"name"}
        unknown = sorted(set(spec) - known)
        if unknown:
            raise ValueError(f"condition {name!r}: unknown field(s) {unknown}; valid: {sorted(known)}")
        spec["dynamics"] = _dynamics(name, spec.get("dynamics"))
        return cls(name=name, **spec)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (saved with runs and descriptors)."""
        out = asdict(self)
        out["dynamics"] = None if self.dynamics is None else {k: list(getattr(self.dynamics, k)) for k in _PHYSICAL}
        return out

    def env_kwargs(self) -> dict[str, Any]:
        """Env constructor kwargs this condition needs (the dynamics go to the env's randomiser)."""
        return {} if self.dynamics is None else {"randomization": self.dynamics}

    @property
    def is_nominal(self) -> bool:
        return self.dynamics is None and not self.action_latency_steps and not self.object_noise_std and not self.drop_probability


def _dynamics(name: str, value: Any) -> DomainRandomization | None:
    if value is None or value is False:
        return None
    base = {"observation_noise_std": 0.0, "action_latency_steps": (0, 0)}
    if value is True or value == "default":
        return DomainRandomization(**base)
    if isinstance(value, Mapping):
        extra = sorted(set(value) - set(_PHYSICAL))
        if extra:
            raise ValueError(f"condition {name!r}: dynamics field(s) {extra} not allowed; valid: {list(_PHYSICAL)} "
                             "(noise and latency are the condition's own fields)")
        return DomainRandomization.from_value({**base, **value})
    raise ValueError(f"condition {name!r}: dynamics must be 'default' or a mapping of {list(_PHYSICAL)}, got {value!r}")


def _read(path: str | os.PathLike[str]) -> dict[str, Condition]:
    p = Path(path)
    try:
        data = yaml.safe_load(p.read_text())
    except FileNotFoundError:
        raise ValueError(f"conditions file {p} does not exist") from None
    except yaml.YAMLError as e:
        raise ValueError(f"conditions file {p} is not valid YAML: {e}") from None
    if not isinstance(data, Mapping) or not isinstance(data.get("conditions"), Mapping):
        raise ValueError(f"conditions file {p} must hold a mapping 'conditions: {{name: {{...}}}}'")
    return {str(n): Condition.from_dict(str(n), s) for n, s in data["conditions"].items()}


def load_conditions(path: str | os.PathLike[str] | None = None) -> dict[str, Condition]:
    """The shipped conditions plus, with `path`, a user's (new names only: a shipped name keeps its meaning)."""
    out = _read(CONDITIONS_FILE)
    if path is not None:
        user = _read(path)
        clash = sorted(set(user) & set(out))
        if clash:
            raise ValueError(f"conditions file {path} redefines shipped condition(s) {clash}; choose new names")
        out.update(user)
    return out


def parse_conditions(names: str | Sequence[str], path: str | os.PathLike[str] | None = None) -> list[Condition]:
    """`"nominal,latency80"` (or a list of names) -> conditions; an unknown name lists the valid ones."""
    if isinstance(names, str):
        names = [n.strip() for n in names.split(",") if n.strip()]
    if not names:
        raise ValueError("no condition named; e.g. --conditions nominal,latency80,realistic")
    known = load_conditions(path)
    unknown = [n for n in names if n not in known]
    if unknown:
        raise ValueError(f"unknown condition(s) {unknown}; valid: {sorted(known)}")
    return [known[n] for n in dict.fromkeys(names)]


class ConditionChannel:
    """A condition's per-tick effects on the action and observation streams of one robot.

    Per control tick: `delay_action(command, hold)` returns the command to apply now (the one sent
    `action_latency_steps` ticks ago, or `hold` while the queue fills; sim_robot's arm commands,
    the envs delay their joint targets themselves); `observe(obs)` returns what
    the controller sees (object positions with noise, or the previous observation when the tick's
    message is dropped). `reset(seed)` starts an episode. `layout` names the observation vector's
    slices (`env.unwrapped.observation_layout`); `objects` the cubes whose positions get noise.
    """

    def __init__(self, condition: Condition, layout: Mapping[str, slice], objects: Sequence[str]) -> None:
        self.condition = condition
        self.object_slices = {o: layout[f"{o}_pos"] for o in objects}  # each cube's position in the vector
        self._rel = [layout.get(f"{o}_rel_pos") for o in objects]
        self._queue: deque[np.ndarray] = deque()
        self._last: dict[str, np.ndarray] | None = None
        self._rng = np.random.default_rng()
        self.dropped = 0  # messages dropped since the last reset

    def reset(self, seed: int | None = None) -> None:
        """New episode: empty the latency queue, forget the last observation; reseed when `seed` is given."""
        if seed is not None:
            self._rng = np.random.default_rng(np.random.SeedSequence([int(seed), _SALT]))
        self._queue.clear()
        self._last = None
        self.dropped = 0

    def delay_action(self, action: np.ndarray, hold: np.ndarray) -> np.ndarray:
        """The command to apply this tick: `action` delayed by exactly `action_latency_steps` ticks."""
        k = self.condition.action_latency_steps
        if not k:
            return action
        self._queue.append(np.array(action, dtype=np.float64, copy=True))
        return self._queue.popleft() if len(self._queue) > k else np.asarray(hold, dtype=np.float64)

    def observe(self, obs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """What the controller sees this tick (the first observation of an episode is never dropped)."""
        c = self.condition
        if self._last is not None and c.drop_probability and self._rng.random() < c.drop_probability:
            self.dropped += 1
            return {k: v.copy() for k, v in self._last.items()}
        seen = {k: np.array(v, dtype=np.float64, copy=True) for k, v in obs.items()}
        if c.object_noise_std:
            vec, achieved = seen["observation"], seen.get("achieved_goal")
            for pos, rel in zip(self.object_slices.values(), self._rel):
                true = np.asarray(obs["observation"][pos])
                noise = self._rng.normal(0.0, c.object_noise_std, size=3)
                vec[pos] += noise
                if rel is not None:
                    vec[rel] += noise
                # The achieved goal is these same perceived positions (cube tasks): keep them consistent.
                if achieved is not None:
                    for i in range(0, achieved.size - 2, 3):
                        if np.array_equal(np.asarray(obs["achieved_goal"])[i : i + 3], true):
                            achieved[i : i + 3] += noise
        self._last = seen
        return {k: v.copy() for k, v in seen.items()}


class ConditionWrapper(gym.Wrapper):
    """Runs a skillstack env under a `Condition` (command latency, object noise, drops; dynamics via the env).

    The env must have been made with `condition.env_kwargs()` when the condition has dynamics
    (`make_condition_env` does both). Rewards and `info["is_success"]` stay the true ones: a
    condition changes what the controller sees and when its actions land, not what happened.
    """

    def __init__(self, env: gym.Env, condition: Condition) -> None:
        super().__init__(env)
        u = env.unwrapped
        if condition.dynamics is not None and getattr(u, "randomization", None) != condition.dynamics:
            raise ValueError(f"condition {condition.name!r} has dynamics: make the env with condition.env_kwargs() "
                             "(envs.conditions.make_condition_env does)")
        self.condition = condition
        self.channel = ConditionChannel(condition, u.observation_layout, tuple(u.objects))
        # The latency is the robot's: the env computes joint targets now and applies them k ticks later.
        u.command_latency_steps = condition.action_latency_steps

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        obs, info = self.env.reset(seed=seed, options=options)
        self.channel.reset(seed)
        info = {**info, "condition": self.condition.name}
        return self._observe(obs), info

    def step(self, action: Any):
        obs, reward, terminated, truncated, info = self.env.step(action)
        return self._observe(obs), reward, terminated, truncated, info

    def _observe(self, obs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """What the controller sees; after a dropped state message its next command is computed from
        the joints it last received, as skill_executor's is on a robot (the env's `measured_arm`)."""
        u, dropped = self.env.unwrapped, self.channel.dropped
        seen = self.channel.observe(obs)
        if self.channel.dropped > dropped:
            u.measured_arm = self._received
        else:
            self._received = u.data.qpos[u.robot.arm_qpos_ix].copy()
            u.measured_arm = None
        # The scene as the controller sees it (its planner and skills read the env's perceived scene):
        # the noisy cubes of this observation, or, when it was dropped, the last scene received.
        if (self.condition.object_noise_std or self.condition.drop_probability) and not (
                self.channel.dropped > dropped and u.observed_scene is not None):
            vec = seen["observation"]
            u.observed_scene = replace(u.scene_state(), objects={o: vec[sl].copy() for o, sl in self.channel.object_slices.items()})
        return seen


def make_condition_env(env_id: str, condition: Condition | str, conditions_file: str | os.PathLike[str] | None = None,
                       **kwargs: Any) -> gym.Env:
    """`envs.make(env_id, **kwargs)` under `condition` (a Condition or a name); nominal returns the plain env."""
    import envs

    if isinstance(condition, str):
        (condition,) = parse_conditions([condition], conditions_file)
    if condition.dynamics is not None and kwargs.get("randomization"):
        raise ValueError(f"condition {condition.name!r} sets the dynamics; do not pass randomization as well")
    env = envs.make(env_id, **{**kwargs, **condition.env_kwargs()})
    return env if condition.is_nominal else ConditionWrapper(env, condition)
