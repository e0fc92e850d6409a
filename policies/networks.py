"""Network architectures as data, and export of stable-baselines3 actors to that form.

A skill package stores its network as a small JSON-able dict (the *arch*) plus a
safetensors state dict. `build_network(arch)` rebuilds the module from the dict alone,
so loading a skill never needs pickled Python objects (SB3 `.zip` files and plain
`torch.load` unpickle, which can run arbitrary code).

Supported architecture types (see `NETWORK_TYPES`):

``{"type": "mlp", "in_dim": 25, "out_dim": 4, "hidden": [256, 256],
   "activation": "relu", "output_activation": "tanh", "pre_output_clamp": null}``

State-dict keys of an ``mlp`` are ``layers.{i}.weight`` / ``layers.{i}.bias`` for the
i-th linear layer (hidden layers first, output layer last); activations carry no
parameters, so the keys do not depend on the activation chosen.

Stable signatures (other layers import these): `build_network`, `validate_arch`,
`arch_param_shapes`, `check_state_dict`, `load_network`, `export_sb3_actor`,
`ExportedActor`, `NetworkSpecError`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn

__all__ = [
    "ACTIVATIONS",
    "NETWORK_TYPES",
    "ExportedActor",
    "MLP",
    "NetworkSpecError",
    "arch_param_shapes",
    "build_network",
    "check_state_dict",
    "export_sb3_actor",
    "load_network",
    "validate_arch",
]


class NetworkSpecError(ValueError):
    """An architecture dict, or a state dict for it, is invalid (the message names the field)."""


# name -> module factory; "identity" means no activation.
ACTIVATIONS: dict[str, Callable[[], nn.Module]] = {
    "relu": nn.ReLU,
    "tanh": nn.Tanh,
    "elu": nn.ELU,
    "gelu": nn.GELU,
    "silu": nn.SiLU,
    "leaky_relu": nn.LeakyReLU,
    "sigmoid": nn.Sigmoid,
    "identity": nn.Identity,
}

_MAX_DIM = 1 << 16  # a layer wider than this in a skill is certainly a corrupt manifest
_MAX_LAYERS = 64


class MLP(nn.Module):
    """Fully connected network: Linear -> activation per hidden layer, then Linear -> output activation.

    `pre_output_clamp` (SB3 gSDE actors clip the mean to [-c, c] before the tanh squash)
    clamps the last linear layer's output before the output activation.
    """

    def __init__(
        self,
        in_dim: int,
        out_dim: int,
        hidden: list[int],
        activation: str = "relu",
        output_activation: str = "identity",
        pre_output_clamp: float | None = None,
    ) -> None:
        super().__init__()
        dims = [in_dim, *hidden, out_dim]
        self.layers = nn.ModuleList(nn.Linear(a, b) for a, b in zip(dims[:-1], dims[1:]))
        self.activation = ACTIVATIONS[activation]()
        self.output_activation = ACTIVATIONS[output_activation]()
        self.pre_output_clamp = pre_output_clamp

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Map a (batch, in_dim) tensor to (batch, out_dim)."""
        last = len(self.layers) - 1
        for i, layer in enumerate(self.layers):
            x = layer(x)
            if i < last:
                x = self.activation(x)
        if self.pre_output_clamp is not None:
            x = torch.clamp(x, -self.pre_output_clamp, self.pre_output_clamp)
        return self.output_activation(x)


def _require_int(arch: Mapping[str, Any], key: str, lo: int = 1, hi: int = _MAX_DIM) -> int:
    value = arch.get(key)
    if isinstance(value, bool) or not isinstance(value, int):
        raise NetworkSpecError(f"network.{key}: expected an integer, got {value!r}")
    if not lo <= value <= hi:
        raise NetworkSpecError(f"network.{key}: {value} outside [{lo}, {hi}]")
    return value


def _require_activation(arch: Mapping[str, Any], key: str, default: str) -> str:
    value = arch.get(key, default)
    if value is None:
        value = "identity"
    if not isinstance(value, str) or value not in ACTIVATIONS:
        raise NetworkSpecError(
            f"network.{key}: unknown activation {value!r}; valid: {', '.join(sorted(ACTIVATIONS))}"
        )
    return value


def _validate_mlp(arch: Mapping[str, Any]) -> dict[str, Any]:
    allowed = {"type", "in_dim", "out_dim", "hidden", "activation", "output_activation", "pre_output_clamp"}
    extra = sorted(set(arch) - allowed)
    if extra:
        raise NetworkSpecError(f"network: unknown field(s) {extra} for type 'mlp'; valid: {sorted(allowed)}")
    hidden = arch.get("hidden", [])
    if not isinstance(hidden, list) or len(hidden) > _MAX_LAYERS:
        raise NetworkSpecError(f"network.hidden: expected a list of at most {_MAX_LAYERS} integers, got {hidden!r}")
    for i, h in enumerate(hidden):
        if isinstance(h, bool) or not isinstance(h, int) or not 1 <= h <= _MAX_DIM:
            raise NetworkSpecError(f"network.hidden[{i}]: expected an integer in [1, {_MAX_DIM}], got {h!r}")
    clamp = arch.get("pre_output_clamp")
    if clamp is not None:
        if isinstance(clamp, bool) or not isinstance(clamp, (int, float)) or not math.isfinite(clamp) or clamp <= 0:
            raise NetworkSpecError(f"network.pre_output_clamp: expected a positive finite number or null, got {clamp!r}")
        clamp = float(clamp)
    return {
        "type": "mlp",
        "in_dim": _require_int(arch, "in_dim"),
        "out_dim": _require_int(arch, "out_dim"),
        "hidden": [int(h) for h in hidden],
        "activation": _require_activation(arch, "activation", "relu"),
        "output_activation": _require_activation(arch, "output_activation", "identity"),
        "pre_output_clamp": clamp,
    }


def _mlp_shapes(arch: Mapping[str, Any]) -> dict[str, tuple[int, ...]]:
    dims = [arch["in_dim"], *arch["hidden"], arch["out_dim"]]
    shapes: dict[str, tuple[int, ...]] = {}
    for i, (a, b) in enumerate(zip(dims[:-1], dims[1:])):
        shapes[f"layers.{i}.weight"] = (b, a)
        shapes[f"layers.{i}.bias"] = (b,)
    return shapes


def _build_mlp(arch: Mapping[str, Any]) -> nn.Module:
    return MLP(
        arch["in_dim"],
        arch["out_dim"],
        list(arch["hidden"]),
        arch["activation"],
        arch["output_activation"],
        arch["pre_output_clamp"],
    )


# type name -> (validator returning a normalised copy, param-shape function, builder)
NETWORK_TYPES: dict[str, tuple[Callable[[Mapping[str, Any]], dict[str, Any]],
                               Callable[[Mapping[str, Any]], dict[str, tuple[int, ...]]],
                               Callable[[Mapping[str, Any]], nn.Module]]] = {
    "mlp": (_validate_mlp, _mlp_shapes, _build_mlp),
}


def validate_arch(arch: Mapping[str, Any]) -> dict[str, Any]:
    """Check an architecture dict and return a normalised copy (defaults filled in).

    Raises `NetworkSpecError` naming the bad field; unknown types list the valid ones.
    """
    if not isinstance(arch, Mapping):
        raise NetworkSpecError(f"network: expected an object, got {type(arch).__name__}")
    kind = arch.get("type")
    if not isinstance(kind, str) or kind not in NETWORK_TYPES:
        raise NetworkSpecError(
            f"network.type: unknown architecture {kind!r}; valid: {', '.join(sorted(NETWORK_TYPES))}"
        )
    return NETWORK_TYPES[kind][0](arch)


def arch_param_shapes(arch: Mapping[str, Any]) -> dict[str, tuple[int, ...]]:
    """Parameter name -> shape that `build_network(arch)` will have, computed without building it."""
    norm = validate_arch(arch)
    return NETWORK_TYPES[norm["type"]][1](norm)


def build_network(arch: Mapping[str, Any]) -> nn.Module:
    """Build a freshly initialised torch module from an architecture dict (see module docstring)."""
    norm = validate_arch(arch)
    return NETWORK_TYPES[norm["type"]][2](norm)


def check_state_dict(arch: Mapping[str, Any], tensors: Mapping[str, torch.Tensor]) -> None:
    """Refuse a state dict whose names, shapes or dtypes do not fit `arch` (floating point only)."""
    expected = arch_param_shapes(arch)
    missing = sorted(set(expected) - set(tensors))
    unexpected = sorted(set(tensors) - set(expected))
    if missing or unexpected:
        raise NetworkSpecError(
            f"weights do not match network: missing {missing[:8]}, unexpected {unexpected[:8]}"
        )
    for name, shape in expected.items():
        t = tensors[name]
        if tuple(t.shape) != shape:
            raise NetworkSpecError(f"weights[{name!r}]: shape {tuple(t.shape)} != expected {shape}")
        if not t.is_floating_point():
            raise NetworkSpecError(f"weights[{name!r}]: dtype {t.dtype} is not floating point")


def load_network(
    arch: Mapping[str, Any],
    tensors: Mapping[str, torch.Tensor],
    device: str | torch.device = "cpu",
    dtype: torch.dtype = torch.float32,
) -> nn.Module:
    """Build `arch` and load `tensors` into it, without random initialisation; eval mode, no grads.

    The module is created on the meta device and the (validated) tensors are assigned,
    which keeps loading fast: no throwaway weight initialisation.
    """
    check_state_dict(arch, tensors)
    with torch.device("meta"):
        net = build_network(arch)
    state = {k: v.to(device=device, dtype=dtype).contiguous() for k, v in tensors.items()}
    net.load_state_dict(state, strict=True, assign=True)
    net.eval()
    for p in net.parameters():
        p.requires_grad_(False)
    return net


# --------------------------------------------------------------------------- SB3 export


@dataclass
class ExportedActor:
    """The deterministic path of an SB3 actor, as data.

    - `arch`/`state_dict`: rebuild with `load_network(arch, state_dict)`; input is the
      concatenation of `observation_keys` in order (each flattened), output is in [-1, 1].
    - `observation_keys`: list of (key, shape) in the order the SB3 extractor concatenates
      them; a flat Box observation space is reported as the single key "observation"
      (`dict_observation` is then False).
    - `action_low`/`action_high`: bounds the [-1, 1] output is rescaled to (SB3 `unscale_action`).
    - `obs_mean`/`obs_std`/`obs_clip`: VecNormalize statistics per key (`None` when absent);
      normalised = clip((obs - mean) / std, -clip, clip), with std = sqrt(var + epsilon).
    """

    algo: str
    arch: dict[str, Any]
    state_dict: dict[str, torch.Tensor]
    observation_keys: list[tuple[str, tuple[int, ...]]]
    dict_observation: bool
    action_low: np.ndarray
    action_high: np.ndarray
    obs_mean: dict[str, np.ndarray] | None = None
    obs_std: dict[str, np.ndarray] | None = None
    obs_clip: float | None = None
    notes: list[str] = field(default_factory=list)


_ACT_BY_CLASS = {cls: name for name, cls in ACTIVATIONS.items()}


def _activation_name(module_or_cls: Any) -> str:
    cls = module_or_cls if isinstance(module_or_cls, type) else type(module_or_cls)
    name = _ACT_BY_CLASS.get(cls)
    if name is None:
        raise NetworkSpecError(
            f"activation {cls.__name__} has no architecture name; valid: {', '.join(sorted(ACTIVATIONS))}"
        )
    return name


def _linears(seq: nn.Module) -> list[nn.Linear]:
    return [m for m in seq.modules() if isinstance(m, nn.Linear)]


def export_sb3_actor(model: Any, vec_normalize: Any = None) -> ExportedActor:
    """Export the deterministic action path of an SB3 SAC, TD3 or DDPG model to an `mlp` arch.

    The exported network reproduces `model.actor(obs, deterministic=True)` (SAC) or
    `model.actor(obs)` (TD3/DDPG) on the flattened, concatenated observation: output in
    [-1, 1], to be rescaled to the action bounds. Only flatten/concatenate feature
    extractors are supported (no image CNNs). Pass the training `VecNormalize` wrapper as
    `vec_normalize` to carry its observation statistics.

    Why: SB3 `.zip` checkpoints unpickle on load; the exported arch + tensors load from
    JSON + safetensors only.
    """
    from gymnasium import spaces

    policy = getattr(model, "policy", model)
    actor = getattr(policy, "actor", None)
    if actor is None:
        raise NetworkSpecError(f"{type(model).__name__}: no actor found (export supports SAC, TD3, DDPG)")
    algo = type(model).__name__
    obs_space = actor.observation_space
    act_space = actor.action_space
    if not isinstance(act_space, spaces.Box):
        raise NetworkSpecError(f"{algo}: action space {act_space} is not a Box")

    # Features extractor: must be a pure flatten (Box) or flatten-per-key concatenation (Dict).
    extractor = actor.features_extractor
    observation_keys: list[tuple[str, tuple[int, ...]]]
    if isinstance(obs_space, spaces.Dict):
        sub = getattr(extractor, "extractors", None)
        if sub is None:
            raise NetworkSpecError(f"{algo}: Dict observations need SB3's CombinedExtractor")
        observation_keys = []
        for key, mod in sub.items():
            if not isinstance(mod, nn.Flatten):
                raise NetworkSpecError(f"{algo}: extractor for key {key!r} is {type(mod).__name__}, only Flatten exports")
            observation_keys.append((key, tuple(int(d) for d in obs_space[key].shape)))
        in_dim = sum(int(np.prod(s)) for _, s in observation_keys)
    elif isinstance(obs_space, spaces.Box):
        if not isinstance(extractor, nn.Flatten) and type(extractor).__name__ != "FlattenExtractor":
            raise NetworkSpecError(f"{algo}: features extractor {type(extractor).__name__} is not exportable")
        observation_keys = [("observation", tuple(int(d) for d in obs_space.shape))]
        in_dim = int(np.prod(obs_space.shape))
    else:
        raise NetworkSpecError(f"{algo}: observation space {type(obs_space).__name__} is not exportable")

    activation = _activation_name(actor.activation_fn)
    notes: list[str] = []
    clamp: float | None = None
    if hasattr(actor, "latent_pi"):  # SAC: tanh(mu(latent_pi(x)))
        layers = _linears(actor.latent_pi)
        mu = actor.mu
        if isinstance(mu, nn.Sequential):  # gSDE: Linear + Hardtanh(clip_mean)
            hard = [m for m in mu if isinstance(m, nn.Hardtanh)]
            if hard:
                clamp = float(hard[0].max_val)
            notes.append("gSDE actor: exported the mean path (deterministic)")
        layers += _linears(mu)
        output_activation = "tanh"
    else:  # TD3 / DDPG: mu = Sequential(Linear, act, ..., Linear, Tanh)
        layers = _linears(actor.mu)
        output_activation = "tanh" if isinstance(list(actor.mu)[-1], nn.Tanh) else "identity"
    if not layers:
        raise NetworkSpecError(f"{algo}: actor has no linear layers")
    hidden = [int(lin.out_features) for lin in layers[:-1]]
    arch = validate_arch(
        {
            "type": "mlp",
            "in_dim": int(layers[0].in_features),
            "out_dim": int(layers[-1].out_features),
            "hidden": hidden,
            "activation": activation,
            "output_activation": output_activation,
            "pre_output_clamp": clamp,
        }
    )
    if arch["in_dim"] != in_dim:
        raise NetworkSpecError(f"{algo}: first layer takes {arch['in_dim']} features, observation has {in_dim}")
    state_dict: dict[str, torch.Tensor] = {}
    for i, lin in enumerate(layers):
        state_dict[f"layers.{i}.weight"] = lin.weight.detach().to("cpu", torch.float32).clone().contiguous()
        state_dict[f"layers.{i}.bias"] = lin.bias.detach().to("cpu", torch.float32).clone().contiguous()

    obs_mean = obs_std = None
    obs_clip: float | None = None
    if vec_normalize is not None and getattr(vec_normalize, "norm_obs", False):
        rms = vec_normalize.obs_rms
        eps = float(vec_normalize.epsilon)
        obs_clip = float(vec_normalize.clip_obs)
        if isinstance(rms, dict):
            keys = vec_normalize.norm_obs_keys
            obs_mean = {k: np.asarray(rms[k].mean, dtype=np.float64) for k in keys}
            obs_std = {k: np.sqrt(np.asarray(rms[k].var, dtype=np.float64) + eps) for k in keys}
        else:
            obs_mean = {"observation": np.asarray(rms.mean, dtype=np.float64)}
            obs_std = {"observation": np.sqrt(np.asarray(rms.var, dtype=np.float64) + eps)}
    return ExportedActor(
        algo=algo,
        arch=arch,
        state_dict=state_dict,
        observation_keys=observation_keys,
        dict_observation=isinstance(obs_space, spaces.Dict),
        action_low=np.asarray(act_space.low, dtype=np.float64).copy(),
        action_high=np.asarray(act_space.high, dtype=np.float64).copy(),
        obs_mean=obs_mean,
        obs_std=obs_std,
        obs_clip=obs_clip,
        notes=notes,
    )
