"""A loaded skill: a callable policy built from a verified package.

``skill = load_skill(path)`` verifies the package (hashes first) and returns:

- `NetworkSkill` (kind ``rl`` / ``bc``): ``skill(obs) -> action``. `obs` is a dict with
  the manifest's observation keys (extra keys are ignored) or a flat array (the keys'
  concatenation in manifest order); one observation (1-D per key) gives one action
  (1-D), a batch (leading batch dimension) gives a batch. The manifest's normalisation
  (mean/std, clip) is applied, a "unit" network output is mapped to the action bounds,
  and actions are clipped to the bounds. Deterministic unless `deterministic=False`
  (Gaussian exploration noise of `action.noise_std`, seeded by `skill.seed(n)`).
- `ScriptedSkill` (kind ``scripted``): runs a registered controller on privileged sim
  state. ``skill.bind(env)`` once, ``skill.reset()`` after each ``env.reset()``, then
  ``skill(obs)`` per step; ``skill.done`` says when it has finished.

Every skill also answers `preconditions_hold(scene)`, `effects_hold(scene)` (predicate
expressions from `envs.predicates` over a `SceneState`) and `estimate_success(state)`
(nearest cells of its descriptor grid), which is what a hierarchical controller ranks by.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from skill_library.errors import SkillLibraryError, SkillNotBoundError, SkillPackageError
from skill_library.manifest import Manifest
from skill_library.package import read_package
from skill_library.signing import SignaturePolicy

__all__ = ["NetworkSkill", "ScriptedSkill", "Skill", "load_skill", "resolve_device"]


class Skill:
    """Common interface of loaded skills (see module docstring)."""

    def __init__(self, manifest: Manifest, path: Path | None = None) -> None:
        self.manifest = manifest
        self.path = path
        self._rng = np.random.default_rng(0)

    # -- identity -----------------------------------------------------------------
    @property
    def name(self) -> str:
        return self.manifest.name

    @property
    def version(self) -> str:
        return self.manifest.version

    @property
    def ref(self) -> str:
        """`name@version`."""
        return self.manifest.ref

    @property
    def kind(self) -> str:
        return self.manifest.kind

    @property
    def is_learned(self) -> bool:
        """True for rl/bc skills; scripted skills are never presented as learned."""
        return self.manifest.kind in ("rl", "bc")

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.ref} kind={self.kind}>"

    # -- episode interface ------------------------------------------------------
    def bind(self, env: Any) -> "Skill":
        """Check the env matches the skill's embodiment and specs (and attach, for scripted skills)."""
        check_env_compatible(self.manifest, env)
        return self

    def reset(self) -> None:
        """Start a new episode (call after env.reset). Network skills are stateless: no-op."""

    @property
    def done(self) -> bool:
        """Whether the skill considers itself finished. Network skills never do: check effects."""
        return False

    def seed(self, seed: int | None) -> None:
        """Seed the exploration noise used when called with deterministic=False."""
        self._rng = np.random.default_rng(seed)

    def __call__(self, obs: Any, deterministic: bool = True) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError

    # -- symbolic interface -----------------------------------------------------
    def preconditions_hold(self, scene: Any) -> bool:
        """True when every precondition expression holds in `scene` (an envs.predicates.SceneState)."""
        from envs.predicates import evaluate

        return all(evaluate(e, scene) for e in self.manifest.preconditions)

    def effects_hold(self, scene: Any) -> bool:
        """True when every effect expression holds in `scene`; False if the skill declares none."""
        from envs.predicates import evaluate

        return bool(self.manifest.effects) and all(evaluate(e, scene) for e in self.manifest.effects)

    def estimate_success(self, state: Any, k: int = 4, default: float | None = None) -> float:
        """Estimated success rate from `state` by the nearest grid cells of the skill's descriptors.

        `state` is a SceneState, an observation dict, a flat observation vector, or the
        descriptor variable itself (e.g. a cube's x, y). Without descriptors, returns
        `default` if given, else raises SkillLibraryError.
        """
        from skill_library.descriptors import lookup

        if self.manifest.descriptors is None:
            if default is not None:
                return float(default)
            raise SkillLibraryError(f"skill {self.ref} has no descriptors; run `skillstack skills evaluate {self.name}`")
        return float(lookup(self.manifest.descriptors, state, k=k)["success_rate"])


def check_env_compatible(manifest: Manifest, env: Any) -> None:
    """Raise SkillLibraryError when `env` cannot run the skill: another observation layout, another
    arm for a skill that reads joint angles or commands joints, or other action or observation shapes.

    A skill on the robot-independent "tcp" layout with end-effector actions runs on any robot;
    a "joint"-layout skill only on a robot with the same arm joints. A scripted skill reads the
    simulator, not the observation, so only its action shape (and joints, in joint mode) must match.
    """
    u = env.unwrapped
    scripted = manifest.network is None
    env_layout = getattr(u, "obs_layout", "joint")
    if not scripted and manifest.obs_layout != env_layout:
        raise SkillLibraryError(
            f"skill {manifest.ref} reads the {manifest.obs_layout!r} observation layout; env gives {env_layout!r} "
            f"(make it with obs_layout={manifest.obs_layout!r})"
        )
    robot = getattr(u, "robot", None)
    needs_joints = manifest.embodiment.action_mode == "joint" or (not scripted and manifest.obs_layout == "joint")
    if robot is not None and needs_joints:
        arm = tuple(getattr(robot, "arm_joint_names", ()))
        if arm and arm != manifest.embodiment.arm_joint_names:
            raise SkillLibraryError(
                f"skill {manifest.ref} is for arm joints {list(manifest.embodiment.arm_joint_names)}; env has {list(arm)}"
                + ("" if manifest.embodiment.action_mode == "joint" else " (a skill on the 'tcp' layout runs on any robot)")
            )
    shape = tuple(getattr(env.action_space, "shape", ()) or ())
    if shape and shape != manifest.action.shape:
        raise SkillLibraryError(f"skill {manifest.ref} emits actions of shape {manifest.action.shape}; env expects {shape}")
    spaces = getattr(env.observation_space, "spaces", None)
    if spaces is not None and not scripted:
        for key in manifest.observation.keys:
            if key.name not in spaces:
                raise SkillLibraryError(f"skill {manifest.ref} needs observation key {key.name!r}; env has {sorted(spaces)}")
            if tuple(spaces[key.name].shape) != key.shape:
                raise SkillLibraryError(
                    f"skill {manifest.ref}: observation {key.name!r} has shape {key.shape}, env gives {tuple(spaces[key.name].shape)}"
                )


def resolve_device(device: str | None) -> str:
    """"cpu" unless a CUDA device is asked for and available (warns and falls back to CPU otherwise)."""
    dev = (device or "cpu").lower()
    if dev == "cpu":
        return "cpu"
    if dev.startswith("cuda"):
        import torch

        if torch.cuda.is_available():
            return dev
        warnings.warn(f"device {device!r} requested but CUDA is not available; using CPU", RuntimeWarning, stacklevel=3)
        return "cpu"
    raise SkillLibraryError(f"unknown device {device!r}; valid: 'cpu', 'cuda', 'cuda:N'")


class NetworkSkill(Skill):
    """A learned skill (rl or bc): normalisation + network + action mapping (see module docstring)."""

    def __init__(self, manifest: Manifest, net: Any, device: str = "cpu", path: Path | None = None) -> None:
        super().__init__(manifest, path)
        import torch

        self._torch = torch
        self.net = net
        self.device = device
        spec = manifest.observation
        self._keys = tuple((k.name, k.shape, k.size) for k in spec.keys)
        self._in_dim = spec.size
        mean = np.zeros(self._in_dim, dtype=np.float32)
        std = np.ones(self._in_dim, dtype=np.float32)
        off = 0
        for k in spec.keys:
            if k.mean is not None and k.std is not None:
                mean[off : off + k.size] = k.mean
                std[off : off + k.size] = k.std
            off += k.size
        self._normalise = bool(np.any(mean != 0.0) or np.any(std != 1.0))
        self._mean = mean
        self._inv_std = (1.0 / std).astype(np.float32)
        self._clip = spec.clip
        act = manifest.action
        self._low = np.asarray(act.low, dtype=np.float32)
        self._high = np.asarray(act.high, dtype=np.float32)
        self._unit = act.network_output == "unit"
        self._half = ((self._high - self._low) / 2.0).astype(np.float32)
        self._mid = ((self._high + self._low) / 2.0).astype(np.float32)
        self._act_dtype = np.dtype(act.dtype)
        self._noise_std = act.noise_std

    def flatten_obs(self, obs: Any) -> tuple[np.ndarray, bool]:
        """Observation (dict or array, single or batched) -> (float32 array (B, in_dim), was_single)."""
        if isinstance(obs, Mapping):
            parts = []
            single = None
            for name, shape, size in self._keys:
                try:
                    v = np.asarray(obs[name], dtype=np.float32)
                except KeyError:
                    raise SkillLibraryError(
                        f"skill {self.ref}: observation lacks key {name!r}; needs {[k[0] for k in self._keys]}"
                    ) from None
                is_single = v.shape == shape
                if single is None:
                    single = is_single
                if is_single:
                    parts.append(v.reshape(1, size))
                elif v.shape[1:] == shape:
                    parts.append(v.reshape(v.shape[0], size))
                else:
                    raise SkillLibraryError(f"skill {self.ref}: observation {name!r} has shape {v.shape}, expected {shape} or (B, *{shape})")
            x = parts[0] if len(parts) == 1 else np.concatenate(parts, axis=1)
            if single is False and any(p.shape[0] != x.shape[0] for p in parts):
                raise SkillLibraryError(f"skill {self.ref}: observation keys have different batch sizes")
            return x, bool(single)
        x = np.asarray(obs, dtype=np.float32)
        if x.ndim == 1 and x.shape[0] == self._in_dim:
            return x.reshape(1, -1), True
        if x.ndim == 2 and x.shape[1] == self._in_dim:
            return x, False
        raise SkillLibraryError(f"skill {self.ref}: flat observation has shape {x.shape}, expected ({self._in_dim},) or (B, {self._in_dim})")

    def normalise(self, x: np.ndarray) -> np.ndarray:
        """Apply the manifest's (x - mean) / std and clip to a flat float32 batch."""
        if self._normalise:
            x = (x - self._mean) * self._inv_std
        if self._clip is not None:
            x = np.clip(x, -self._clip, self._clip)
        return x

    def __call__(self, obs: Any, deterministic: bool = True) -> np.ndarray:
        """Action(s) for observation(s); see module docstring."""
        x, single = self.flatten_obs(obs)
        x = self.normalise(x)
        t = self._torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))
        if self.device != "cpu":
            t = t.to(self.device)
        with self._torch.inference_mode():
            y = self.net(t)
        y = y.cpu().numpy() if self.device != "cpu" else y.numpy()
        if not deterministic and self._noise_std > 0:
            noise = self._rng.normal(0.0, self._noise_std, size=y.shape).astype(np.float32)
            y = y + (noise if self._unit else noise * self._half)
            if self._unit:
                y = np.clip(y, -1.0, 1.0)
        if self._unit:
            y = y * self._half + self._mid
        a = np.clip(y, self._low, self._high)
        if a.dtype != self._act_dtype:
            a = a.astype(self._act_dtype)
        return a[0] if single else a


class ScriptedSkill(Skill):
    """A scripted skill: a registered controller on privileged sim state; bind to an env first."""

    def __init__(self, manifest: Manifest, path: Path | None = None) -> None:
        super().__init__(manifest, path)
        if manifest.controller is None:  # guaranteed by the manifest schema
            raise SkillPackageError(f"{manifest.ref}: scripted skill without controller")
        self._controller: Any = None

    def bind(self, env: Any) -> "ScriptedSkill":
        """Attach to an env (checks embodiment/specs, then the controller checks the task)."""
        from skill_library.scripted import make_controller

        check_env_compatible(self.manifest, env)
        ctrl = make_controller(self.manifest.controller.name, self.manifest.controller.params)  # type: ignore[union-attr]
        ctrl.bind(env)
        self._controller = ctrl
        return self

    def _ctrl(self) -> Any:
        if self._controller is None:
            raise SkillNotBoundError(
                f"scripted skill {self.ref} needs the simulator: call skill.bind(env) then skill.reset() after env.reset()"
            )
        return self._controller

    def reset(self) -> None:
        """Restart the controller at its first phase (call after env.reset)."""
        self._ctrl().reset()

    @property
    def done(self) -> bool:
        return bool(self._ctrl().done)

    @property
    def phase(self) -> str:
        """The controller's current phase name ('' before bind)."""
        return "" if self._controller is None else self._controller.phase

    def __call__(self, obs: Any, deterministic: bool = True) -> np.ndarray:
        """Next action for the bound env's current state (single observation only)."""
        ctrl = self._ctrl()
        if isinstance(obs, Mapping):
            first = obs.get("observation")
            if first is not None and np.ndim(first) > 1:
                raise SkillLibraryError(f"scripted skill {self.ref} acts on one env, not a batch")
        return np.asarray(ctrl.act(obs), dtype=np.dtype(self.manifest.action.dtype))


def load_skill(path: str | os.PathLike[str], device: str | None = "cpu", *, policy: SignaturePolicy | None = None) -> Skill:
    """Verify and load a skill package directory into a callable `Skill`.

    The signature (by default: a valid one by a key you trust, see `SignaturePolicy`) is
    checked before anything is parsed beyond the manifest, then the schema, the weights
    header against the network and every hash; the weights are parsed from the very bytes
    that were hashed, as safetensors (never pickle).
    """
    contents = read_package(path, policy=policy)
    manifest = contents.manifest
    if manifest.network is None:
        return ScriptedSkill(manifest, contents.path)
    from safetensors.torch import load as load_safetensors_bytes
    from policies.networks import NetworkSpecError, load_network

    dev = resolve_device(device)
    try:
        tensors = load_safetensors_bytes(contents.weights)  # safetensors: no pickle
    except Exception as exc:  # safetensors raises its own error types
        raise SkillPackageError(f"{contents.path / 'weights.safetensors'}: cannot parse safetensors ({exc})") from None
    try:
        net = load_network(manifest.network, tensors, device=dev)
    except NetworkSpecError as exc:
        raise SkillPackageError(f"{contents.path / 'weights.safetensors'}: {exc}") from None
    return NetworkSkill(manifest, net, dev, contents.path)
