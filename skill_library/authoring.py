"""Build skill packages from an env plus a network, an SB3 model, or a scripted controller.

Typical use after training (see docs/skill_library.md)::

    from skill_library.authoring import save_sb3_skill
    save_sb3_skill(model, "out/push_red", name="push_red", version="1.0.0", env=env,
                   effects=["at(red)"], provenance=new_provenance(command="skillstack train ...", seed=0))

The specs (embodiment, observation, action, control rate, task) are read from the env so
the manifest describes exactly what the skill was trained on.
"""

from __future__ import annotations

import datetime as _dt
import math
import os
import re
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from skill_library.errors import SkillPackageError
from skill_library.manifest import (
    ActionSpec,
    ControllerSpec,
    Embodiment,
    Manifest,
    ObservationKey,
    ObservationSpec,
    Provenance,
    TaskSpec,
)
from skill_library.package import write_package

__all__ = [
    "action_spec_from_env",
    "embodiment_from_env",
    "git_commit",
    "new_provenance",
    "observation_spec_from_env",
    "save_network_skill",
    "save_sb3_skill",
    "save_scripted_skill",
    "specs_from_exported_actor",
    "task_from_env",
    "utc_now",
]


def utc_now() -> str:
    """Current UTC time as ISO 8601 with seconds, e.g. 2025-01-31T12:00:00Z."""
    return _dt.datetime.now(_dt.timezone.utc).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def git_commit(path: str | os.PathLike[str] | None = None) -> str | None:
    """The git HEAD commit of the checkout holding `path` (default: this source tree), or None."""
    where = Path(path) if path else Path(__file__).resolve().parent
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=where, capture_output=True, text=True, timeout=5, check=False
        )
    except (OSError, subprocess.SubprocessError):
        return None
    commit = out.stdout.strip()
    return commit if out.returncode == 0 and re.fullmatch(r"[0-9a-f]{40}", commit) else None


def new_provenance(
    command: str | None = None,
    config: Any = None,
    seed: int | None = None,
    env_steps: int | None = None,
    eval: Any = None,  # noqa: A002 - manifest field name
    source_commit: str | None = "auto",
) -> Provenance:
    """Provenance stamped with the current date and (by default) the source tree's git commit."""
    commit = git_commit() if source_commit == "auto" else source_commit
    return Provenance(command=command, config=config, seed=seed, env_steps=env_steps, source_commit=commit, date=utc_now(), eval=eval)


def embodiment_from_env(env: Any, with_layout: bool = True) -> Embodiment:
    """Robot model id, joint names, action convention and (with `with_layout`) observation layout of a skillstack env.

    Scripted skills pass `with_layout=False`: they read the simulator, not the observation.
    """
    import sim_assets

    u = env.unwrapped
    mode = getattr(u, "action_mode", "ee")
    action_mode = "joint" if mode == "joint" else ("ee_delta_yaw" if getattr(u, "yaw", False) else "ee_delta")
    description = getattr(u.robot, "description", None)  # the env's robot description (sim_assets/robots/)
    return Embodiment(
        robot=description.model_id if description is not None else sim_assets.ROBOT_MODEL_ID,
        arm_joint_names=tuple(u.robot.arm_joint_names),
        finger_joint_names=tuple(u.robot.finger_joint_names),
        action_mode=action_mode,
        obs_layout=getattr(u, "obs_layout", "joint") if with_layout else None,
    )


def _family_from_id(env_id: str) -> str:
    base = env_id.split("/")[-1]
    base = re.sub(r"-v\d+$", "", base)
    import sim_assets

    prefixes = "|".join(sim_assets.load_robot(r).env_prefix for r in sim_assets.robot_names())
    base = re.sub(rf"^({prefixes})", "", base)  # the robot part of the id (PandaPush, UR5ePush: push)
    base = re.sub(r"Dense$", "", base)
    return re.sub(r"(?<!^)(?=[A-Z])", "_", base).lower() or "task"


def _json_kwargs(kwargs: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in kwargs.items() if isinstance(v, (str, int, float, bool)) or v is None}


def task_from_env(env: Any, family: str | None = None) -> TaskSpec:
    """Gymnasium id, JSON-able kwargs and task family (e.g. "pick_place") of an env made by gymnasium."""
    spec = getattr(env, "spec", None) or getattr(env.unwrapped, "spec", None)
    if spec is None:
        raise SkillPackageError("env has no gymnasium spec: create it with envs.make(env_id) so the manifest can name it")
    return TaskSpec(family or _family_from_id(spec.id), spec.id, _json_kwargs(spec.kwargs or {}))


def observation_spec_from_env(
    env: Any,
    keys: Sequence[str] = ("observation", "desired_goal"),
    mean: Mapping[str, Any] | None = None,
    std: Mapping[str, Any] | None = None,
    clip: float | None = None,
) -> ObservationSpec:
    """Observation spec for the given dict keys of an env, with optional per-key normalisation."""
    spaces = env.observation_space.spaces
    out = []
    for k in keys:
        if k not in spaces:
            raise SkillPackageError(f"env has no observation key {k!r}; keys: {sorted(spaces)}")
        sp = spaces[k]
        m = None if not mean or k not in mean else tuple(float(x) for x in np.ravel(mean[k]))
        s = None if not std or k not in std else tuple(float(x) for x in np.ravel(std[k]))
        out.append(ObservationKey(k, tuple(int(d) for d in sp.shape), str(np.dtype(sp.dtype)), m, s))
    return ObservationSpec(tuple(out), clip)


def observation_spec_from_flat_stats(env: Any, keys: Sequence[str], mean: np.ndarray, std: np.ndarray) -> ObservationSpec:
    """Observation spec for `keys` of an env whose normalisation was fitted on their concatenation (in order)."""
    per_mean, per_std, off = {}, {}, 0
    for k in keys:
        n = int(np.prod(env.observation_space[k].shape))
        per_mean[k], per_std[k] = mean[off : off + n], std[off : off + n]
        off += n
    if off != len(mean) or len(mean) != len(std):
        raise SkillPackageError(f"normalisation has {len(mean)} means / {len(std)} stds, observation keys {list(keys)} have {off} values")
    return observation_spec_from_env(env, keys, mean=per_mean, std=per_std)


def action_spec_from_env(env: Any, network_output: str = "unit", noise_std: float = 0.1) -> ActionSpec:
    """Action spec (shape, dtype, bounds, component names) of an env's Box action space."""
    sp = env.action_space
    u = env.unwrapped
    if getattr(u, "action_mode", "ee") == "joint":
        names: tuple[str, ...] = tuple(f"dq{i}" for i in range(1, 8)) + ("gripper",)
    else:
        names = ("dx", "dy", "dz") + (("dyaw",) if getattr(u, "yaw", False) else ()) + ("gripper",)
    if len(names) != sp.shape[0]:
        names = tuple(f"a{i}" for i in range(sp.shape[0]))
    return ActionSpec(
        shape=tuple(int(d) for d in sp.shape),
        dtype=str(np.dtype(sp.dtype)),
        low=tuple(float(x) for x in sp.low),
        high=tuple(float(x) for x in sp.high),
        names=names,
        network_output=network_output,
        noise_std=noise_std,
    )


def _control_hz(env: Any) -> float:
    dt = float(getattr(env.unwrapped, "control_dt", 0.04))
    return 1.0 / dt if dt > 0 and math.isfinite(dt) else 25.0


def save_network_skill(
    out_dir: str | os.PathLike[str],
    *,
    name: str,
    version: str,
    kind: str,
    env: Any,
    arch: Mapping[str, Any],
    state_dict: Mapping[str, Any],
    observation: ObservationSpec | None = None,
    action: ActionSpec | None = None,
    description: str = "",
    tags: Sequence[str] = (),
    preconditions: Sequence[str] = (),
    effects: Sequence[str] = (),
    provenance: Provenance | None = None,
    family: str | None = None,
    eval_video: str | os.PathLike[str] | None = None,
    overwrite: bool = False,
) -> Manifest:
    """Package a network (arch dict + torch state dict) trained on `env` as an rl or bc skill."""
    if kind not in ("rl", "bc"):
        raise SkillPackageError(f"kind {kind!r} is not a network kind; valid: ['rl', 'bc']")
    manifest = Manifest(
        name=name,
        version=version,
        kind=kind,
        embodiment=embodiment_from_env(env),
        task=task_from_env(env, family),
        observation=observation or observation_spec_from_env(env),
        action=action or action_spec_from_env(env),
        control_hz=_control_hz(env),
        network=dict(arch),
        description=description,
        tags=tuple(tags),
        preconditions=tuple(preconditions),
        effects=tuple(effects),
        provenance=provenance or new_provenance(),
    )
    return write_package(out_dir, manifest, state_dict, eval_video=eval_video, overwrite=overwrite)


def specs_from_exported_actor(ex: Any, env: Any) -> tuple[ObservationSpec, ActionSpec]:
    """Observation and action specs of an exported actor (`policies.networks.ExportedActor`) on `env`.

    The observation keys and their order come from the actor (its normalisation statistics
    travel with them), the action bounds from the actor, the component names from the env.
    """
    keys = []
    env_spaces = getattr(env.observation_space, "spaces", {})
    for key, shape in ex.observation_keys:
        sp = env_spaces.get(key)
        dtype = str(np.dtype(sp.dtype)) if sp is not None and np.dtype(sp.dtype).kind == "f" else "float32"
        m = None if not ex.obs_mean or key not in ex.obs_mean else tuple(float(x) for x in np.ravel(ex.obs_mean[key]))
        s = None if not ex.obs_std or key not in ex.obs_std else tuple(float(x) for x in np.ravel(ex.obs_std[key]))
        keys.append(ObservationKey(key, tuple(int(d) for d in shape), dtype, m, s))
    base = action_spec_from_env(env)
    action = ActionSpec(
        shape=(len(ex.action_low),),
        dtype=base.dtype,
        low=tuple(float(x) for x in ex.action_low),
        high=tuple(float(x) for x in ex.action_high),
        names=base.names if base.shape == (len(ex.action_low),) else None,
        network_output="unit" if ex.arch["output_activation"] == "tanh" else "raw",
        noise_std=base.noise_std,
    )
    return ObservationSpec(tuple(keys), ex.obs_clip), action


def save_sb3_skill(
    model: Any,
    out_dir: str | os.PathLike[str],
    *,
    name: str,
    version: str,
    env: Any,
    kind: str = "rl",
    vec_normalize: Any = None,
    **kwargs: Any,
) -> Manifest:
    """Export an SB3 SAC/TD3/DDPG actor's deterministic path and package it (no pickle in the result).

    The observation keys and their order come from the model's observation space, the
    action bounds from its action space, normalisation from `vec_normalize` if given.
    Extra keyword arguments go to `save_network_skill`.
    """
    from policies.networks import export_sb3_actor

    ex = export_sb3_actor(model, vec_normalize=vec_normalize)
    observation, action = specs_from_exported_actor(ex, env)
    return save_network_skill(
        out_dir, name=name, version=version, kind=kind, env=env, arch=ex.arch, state_dict=ex.state_dict,
        observation=observation, action=action, **kwargs,
    )  # fmt: skip


def save_scripted_skill(
    out_dir: str | os.PathLike[str],
    *,
    name: str,
    version: str,
    env: Any,
    controller: str,
    params: Mapping[str, Any],
    description: str = "",
    tags: Sequence[str] = (),
    preconditions: Sequence[str] = (),
    effects: Sequence[str] = (),
    provenance: Provenance | None = None,
    family: str | None = None,
    overwrite: bool = False,
) -> Manifest:
    """Package a registered scripted controller as a `scripted` skill (empty weights file)."""
    manifest = Manifest(
        name=name,
        version=version,
        kind="scripted",
        embodiment=embodiment_from_env(env, with_layout=False),
        task=task_from_env(env, family),
        observation=observation_spec_from_env(env, keys=tuple(env.observation_space.spaces)),
        action=action_spec_from_env(env),
        control_hz=_control_hz(env),
        controller=ControllerSpec(controller, dict(params)),
        description=description,
        tags=tuple(tags),
        preconditions=tuple(preconditions),
        effects=tuple(effects),
        provenance=provenance or new_provenance(),
    )
    return write_package(out_dir, manifest, None, overwrite=overwrite)
