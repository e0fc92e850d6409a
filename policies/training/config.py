"""Training configuration: typed dataclasses loaded from YAML, with ``key.sub=value`` overrides.

One YAML file per experiment (``configs/*.yaml``) states only what it changes; everything
else takes the defaults below. ``load_config`` reads the file (or a run folder's saved
``config.yaml``, or a mapping), applies overrides, checks every key and type (an unknown key
or a wrong type is an error naming the key and the allowed keys) and returns a
``TrainConfig``; ``save_config`` writes the resolved config into the run folder.

The sections mirror the YAML layout::

    experiment, env_id, env_kwargs, obs_layout, robot, init, algo, seed, total_timesteps, n_envs, vec_env,
    torch_threads, device, runs_dir, log_interval
    her:             HerConfig | null           HER relabelling (goal envs)
    normalize:       NormalizeConfig | null     observation running mean/std (VecNormalize)
    algo_kwargs:     {...}                      constructor arguments of the algorithm
    skill_discovery: SkillDiscoveryConfig | null
    demonstrations:  DemonstrationsConfig       scripted-expert episodes seeded into the buffer
    eval:            EvalConfig
    checkpoint:      CheckpointConfig
    export:          ExportConfig               how the trained policy is published as a skill

``algo_kwargs`` stays a free mapping: it is passed to ``MultiCriticSAC``/SB3 ``SAC``, whose
constructors check their own arguments.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

from common.atomic import atomic_write_text
from policies.skill_discovery import SkillDiscoveryConfig
from policies.training.config_loading import (
    ConfigError,
    ConfigSection,
    ConfigTypeError,
    UnknownConfigKeyError,
    apply_overrides,
    from_mapping,
)

__all__ = [
    "ALGOS",
    "CONFIG_FILE",
    "CheckpointConfig",
    "ConfigError",
    "ConfigTypeError",
    "DEFAULT_CONFIG",
    "DemonstrationsConfig",
    "DescriptorsConfig",
    "EvalConfig",
    "ExportConfig",
    "HerConfig",
    "NormalizeConfig",
    "TrainConfig",
    "UnknownConfigKeyError",
    "apply_overrides",
    "load_config",
    "save_config",
]

CONFIG_FILE = "config.yaml"
ALGOS = ("multi_critic_sac", "sac")
OBS_LAYOUTS = ("tcp", "joint")  # envs.observation.OBS_LAYOUTS (a test keeps them equal; loading a config imports no envs)
# Constructor arguments that come from the config's own keys, never from algo_kwargs.
RESERVED_ALGO_KWARGS = frozenset({"env", "policy", "seed", "replay_buffer_class", "tensorboard_log", "device",
                                  "skill_discovery"})


def _at_least(key: str, value: int, low: int, why: str = "") -> None:
    if value < low:
        raise ConfigTypeError(f"config key {key!r}: must be >= {low}{why}, got {value}")


@dataclass
class HerConfig(ConfigSection):
    """Hindsight experience replay (SB3's ``HerReplayBuffer`` arguments)."""

    n_sampled_goal: int = 4
    goal_selection_strategy: Literal["future", "final", "episode"] = "future"

    def __post_init__(self) -> None:
        _at_least("her.n_sampled_goal", self.n_sampled_goal, 1)


@dataclass
class NormalizeConfig(ConfigSection):
    """Observation normalisation by running mean/std, as rl-zoo does for the Fetch tasks."""

    obs: bool = True
    clip_obs: float = 10.0

    def __post_init__(self) -> None:
        if not self.clip_obs > 0:
            raise ConfigTypeError(f"config key 'normalize.clip_obs': must be > 0, got {self.clip_obs}")


@dataclass
class DemonstrationsConfig(ConfigSection):
    """Scripted-expert episodes (``envs.experts``) added to the replay buffer before learning."""

    episodes: int = 0
    seed: int = 12345  # the run's seed is added, so seeds do not share demonstrations

    def __post_init__(self) -> None:
        _at_least("demonstrations.episodes", self.episodes, 0)


@dataclass
class EvalConfig(ConfigSection):
    """Periodic deterministic evaluation (``eval.jsonl``, TensorBoard, video)."""

    freq: int = 2000  # env steps between evaluations; 0 = only at the end
    episodes: int = 20
    seed: int = 100_000  # seed of the first evaluation episode
    video: bool | Literal["final"] = "final"  # record the first episode: always, never, or at the end
    video_width: int = 320
    video_height: int = 240
    camera: str = "front"
    coverage_skills: int = 64  # skill discovery: skills cycled through per evaluation

    def __post_init__(self) -> None:
        _at_least("eval.freq", self.freq, 0, " (0 = only at the end)")
        for key in ("episodes", "video_width", "video_height", "coverage_skills"):
            _at_least(f"eval.{key}", getattr(self, key), 1)


@dataclass
class CheckpointConfig(ConfigSection):
    """Resumable checkpoints under ``checkpoints/step_N/``."""

    freq: int = 2000  # env steps between checkpoints; 0 = only at the end
    keep: int = 2  # newest checkpoints kept

    def __post_init__(self) -> None:
        _at_least("checkpoint.freq", self.freq, 0, " (0 = only at the end)")
        _at_least("checkpoint.keep", self.keep, 1)


@dataclass
class DescriptorsConfig(ConfigSection):
    """Descriptor evaluation of a published skill (``skill_library.evaluate_skill``)."""

    grid: int | list[int] = 2
    episodes_per_cell: int = 2

    def __post_init__(self) -> None:
        _at_least("export.descriptors.episodes_per_cell", self.episodes_per_cell, 1)


@dataclass
class ExportConfig(ConfigSection):
    """How the layer above publishes the trained policy (``skill_library.publish_run``)."""

    enabled: bool = True
    name: str | None = None  # default: the experiment's name
    version: str = "0.1.0"
    library: str | None = None  # default: $SKILLSTACK_LIBRARY or ~/.skillstack/skills
    skills: int = 8  # skill discovery: skills exported (one package per z)
    add_to_library: bool = True
    descriptors: DescriptorsConfig | None = field(default_factory=DescriptorsConfig)  # null or {}: none
    effects: list[str] = field(default_factory=list)
    preconditions: list[str] = field(default_factory=list)
    description: str = ""

    def __post_init__(self) -> None:
        _at_least("export.skills", self.skills, 1)


@dataclass
class TrainConfig(ConfigSection):
    """One training experiment; ``configs/*.yaml`` files set a subset of these keys."""

    experiment: str = "run"
    env_id: str = "skillstack/PandaReach-v0"
    env_kwargs: dict[str, Any] = field(default_factory=dict)
    # Observation layout of the env and of the skills the run exports: "tcp" (no joint angles)
    # runs on any robot; "joint" adds the arm's joint angles. `env_kwargs.obs_layout` sets it too.
    obs_layout: Literal["tcp", "joint"] = "tcp"
    # The robot the env runs (a shipped name or a description YAML path; null: the env id's own).
    # `env_kwargs.robot` sets it too. With `init`, a skill trained on one robot is fine-tuned on this one.
    robot: str | None = None
    # A skill package directory whose policy network (and observation statistics) start the run's
    # actor: fine-tuning instead of training from scratch (`skillstack train --init SKILL`).
    init: str | None = None
    algo: Literal["multi_critic_sac", "sac"] = "multi_critic_sac"
    seed: int = 0
    total_timesteps: int = 10_000
    n_envs: int = 1
    vec_env: Literal["dummy", "subproc"] = "dummy"
    torch_threads: int | None = 1  # 0 or null: leave torch's default
    device: str = "cpu"
    her: HerConfig | None = None
    normalize: NormalizeConfig | None = field(default_factory=NormalizeConfig)
    algo_kwargs: dict[str, Any] = field(default_factory=dict)
    skill_discovery: SkillDiscoveryConfig | None = None
    demonstrations: DemonstrationsConfig = field(default_factory=DemonstrationsConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    checkpoint: CheckpointConfig = field(default_factory=CheckpointConfig)
    export: ExportConfig = field(default_factory=ExportConfig)
    runs_dir: str = "runs"
    log_interval: int = 10

    def __post_init__(self) -> None:
        if "obs_layout" in self.env_kwargs:  # one place for it: the typed field
            self.env_kwargs = dict(self.env_kwargs)
            self.obs_layout = self.env_kwargs.pop("obs_layout")
        if "robot" in self.env_kwargs:  # likewise
            self.env_kwargs = dict(self.env_kwargs)
            self.robot = self.env_kwargs.pop("robot")
        if self.obs_layout not in OBS_LAYOUTS:
            raise ConfigTypeError(f"obs_layout must be one of {list(OBS_LAYOUTS)}, got {self.obs_layout!r}")
        if self.algo not in ALGOS:
            raise ConfigTypeError(f"algo must be one of {ALGOS}, got {self.algo!r}")
        _at_least("total_timesteps", self.total_timesteps, 1)
        _at_least("n_envs", self.n_envs, 1)
        _at_least("seed", self.seed, 0)
        _at_least("log_interval", self.log_interval, 1)
        if self.torch_threads is not None:
            _at_least("torch_threads", self.torch_threads, 0)
        if self.skill_discovery is not None and self.her is not None:
            raise ConfigTypeError("skill discovery runs do not use HER (set her: null)")
        bad = RESERVED_ALGO_KWARGS & set(self.algo_kwargs)
        if bad:
            raise ConfigTypeError(f"algo_kwargs may not set {sorted(bad)}: they come from the config's own keys")

    @property
    def env_make_kwargs(self) -> dict[str, Any]:
        """The keyword arguments of ``envs.make(env_id, ...)`` for this run: ``env_kwargs`` plus the layout."""
        robot = {} if self.robot is None else {"robot": self.robot}
        return {**self.env_kwargs, "obs_layout": self.obs_layout, **robot}

    @property
    def skill_key(self) -> str:
        """Observation key of the skill z (``"skill"`` without skill discovery)."""
        return self.skill_discovery.skill_key if self.skill_discovery is not None else "skill"


DEFAULT_CONFIG: dict[str, Any] = TrainConfig().to_dict()


def _read_yaml(path: Path) -> dict[str, Any]:
    if path.is_dir():
        path = path / CONFIG_FILE
    if not path.is_file():
        raise FileNotFoundError(f"config {path} does not exist")
    try:
        raw = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise ConfigError(f"config {path}: not valid YAML ({exc})") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"config {path}: expected a mapping at the top level")
    if path.name == CONFIG_FILE and "runs_dir" in raw and "obs_layout" not in raw:
        # A run's saved (fully resolved) config from before the layout was a key: it trained on "joint".
        raw["obs_layout"] = raw.get("env_kwargs", {}).get("obs_layout", "joint")
    return raw


def load_config(
    source: str | os.PathLike[str] | Mapping[str, Any] | TrainConfig, overrides: Sequence[str] = ()
) -> TrainConfig:
    """The ``TrainConfig`` of a YAML file, a run folder (its ``config.yaml``), a mapping or a
    config, with ``key.sub=value`` overrides applied.

    Raises ``FileNotFoundError`` for a missing file, ``UnknownConfigKeyError`` (a ``KeyError``)
    for a key no section has, ``ConfigTypeError`` (a ``ValueError``) for a wrong type or value,
    and ``ValueError`` for a malformed override.
    """
    if isinstance(source, TrainConfig):
        raw: dict[str, Any] = source.to_dict()
    elif isinstance(source, Mapping):
        raw = dict(source)
    else:
        raw = _read_yaml(Path(source))
    return from_mapping(TrainConfig, apply_overrides(raw, overrides, schema=TrainConfig))


def save_config(cfg: TrainConfig, path: str | os.PathLike[str]) -> Path:
    """Write the resolved config as YAML (atomically); ``load_config(path)`` gives it back."""
    return atomic_write_text(path, yaml.safe_dump(cfg.to_dict(), sort_keys=False))
