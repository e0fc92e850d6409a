"""The multi-term critic and the SB3 policies that carry it (the networks of `MultiCriticSAC`).

`MultiTermCritic` is a drop-in for SB3's ``ContinuousCritic`` whose twin critics output one
Q-value per reward term; `MultiCriticSACPolicy` is SB3's ``SACPolicy`` building that
critic, with flat (`MultiCriticMlpPolicy`) and dict-observation (`MultiCriticMultiInputPolicy`)
variants. They are apart from `policies.multi_critic_sac`, which holds the algorithm and its
update step, so the networks read without the learning rule and the learning rule without
the network plumbing.

Critic layouts (``critic_layout``):

* ``"shared"`` (default): SB3's twin critics, each an MLP whose torso is shared by the
  terms and ends in K outputs. Costs about what SB3's twin critics cost.
* ``"separate"``: K x 2 independent Q-networks, as SLIM has them. They are evaluated as
  ONE batched ensemble (stacked weights, one ``torch.baddbmm`` per layer), never K
  networks run one after another.
* ``"separate_loop"``: the same K x 2 networks as a ``ModuleList`` run one after
  another. A reference for tests and the throughput benchmark only.
"""

from __future__ import annotations

from typing import Any

import torch as th
from gymnasium import spaces
from stable_baselines3.common.policies import BaseModel
from stable_baselines3.common.preprocessing import get_action_dim
from stable_baselines3.common.torch_layers import BaseFeaturesExtractor, CombinedExtractor, FlattenExtractor
from stable_baselines3.common.type_aliases import Schedule
from stable_baselines3.sac.policies import SACPolicy
from torch import nn

from policies.ensemble_mlp import EnsembleMLP, make_mlp

__all__ = [
    "CRITIC_LAYOUTS",
    "MultiCriticMlpPolicy",
    "MultiCriticMultiInputPolicy",
    "MultiCriticSACPolicy",
    "MultiTermCritic",
]

CRITIC_LAYOUTS = ("shared", "separate", "separate_loop")


class MultiTermCritic(BaseModel):
    """Twin Q-values for K reward terms: ``q_values(obs, a)`` has shape ``(n_critics, B, K)``.

    ``forward`` returns a tuple of ``n_critics`` tensors ``(B, K)``, the shape SB3's
    ``ContinuousCritic`` uses with K = 1.

    :param n_terms: K, the number of reward terms.
    :param layout: ``"shared"``, ``"separate"`` or ``"separate_loop"`` (see the module docstring).
    Other parameters are those of SB3's ``ContinuousCritic``.
    """

    features_extractor: BaseFeaturesExtractor

    def __init__(
        self,
        observation_space: spaces.Space,
        action_space: spaces.Box,
        net_arch: list[int],
        features_extractor: BaseFeaturesExtractor,
        features_dim: int,
        activation_fn: type[nn.Module] = nn.ReLU,
        normalize_images: bool = True,
        n_critics: int = 2,
        share_features_extractor: bool = True,
        n_terms: int = 1,
        layout: str = "shared",
    ):
        super().__init__(observation_space, action_space, features_extractor=features_extractor, normalize_images=normalize_images)
        if layout not in CRITIC_LAYOUTS:
            raise ValueError(f"critic_layout must be one of {CRITIC_LAYOUTS}, got {layout!r}")
        if n_terms < 1:
            raise ValueError(f"n_terms must be >= 1, got {n_terms}")
        in_dim = features_dim + get_action_dim(self.action_space)
        self.share_features_extractor = share_features_extractor
        self.n_critics = n_critics
        self.n_terms = n_terms
        self.layout = layout
        if layout == "shared":
            self.q_net: nn.Module = EnsembleMLP(n_critics, in_dim, n_terms, net_arch, activation_fn)
        elif layout == "separate":
            # Member index c * K + k is twin c of term k.
            self.q_net = EnsembleMLP(n_critics * n_terms, in_dim, 1, net_arch, activation_fn)
        else:
            self.q_net = nn.ModuleList(
                [make_mlp(in_dim, 1, net_arch, activation_fn) for _ in range(n_critics * n_terms)]
            )

    def q_values(self, obs: th.Tensor, actions: th.Tensor) -> th.Tensor:
        """All Q-values, shape ``(n_critics, B, K)``."""
        with th.set_grad_enabled(not self.share_features_extractor and th.is_grad_enabled()):
            features = self.extract_features(obs, self.features_extractor)
        x = th.cat([features, actions], dim=1)
        batch = x.shape[0]
        if self.layout == "shared":
            return self.q_net(x)  # (n_critics, B, K)
        if self.layout == "separate":
            q = self.q_net(x)  # (n_critics*K, B, 1)
        else:  # reference: one network after another
            q = th.stack([net(x) for net in self.q_net])  # type: ignore[union-attr]
        return q.view(self.n_critics, self.n_terms, batch).transpose(1, 2)

    def forward(self, obs: th.Tensor, actions: th.Tensor) -> tuple[th.Tensor, ...]:
        """SB3 convention: one ``(B, K)`` tensor per twin critic."""
        return tuple(self.q_values(obs, actions).unbind(0))

    def q1_forward(self, obs: th.Tensor, actions: th.Tensor) -> th.Tensor:
        """Q-values of the first twin only, ``(B, K)`` (SB3 ``ContinuousCritic`` API)."""
        return self.q_values(obs, actions)[0]


# ----------------------------------------------------------------------------------------
# 3. The policy: SB3's SACPolicy with the multi-term critic
# ----------------------------------------------------------------------------------------


class MultiCriticSACPolicy(SACPolicy):
    """SB3 ``SACPolicy`` whose critics output one Q-value per reward term.

    :param n_terms: K (set by ``MultiCriticSAC`` from its reward keys).
    :param critic_layout: ``"shared"``, ``"separate"`` or ``"separate_loop"``.
    Other parameters are SB3's ``SACPolicy`` ones.
    """

    critic: MultiTermCritic
    critic_target: MultiTermCritic

    def __init__(
        self,
        observation_space: spaces.Space,
        action_space: spaces.Box,
        lr_schedule: Schedule,
        *args: Any,
        n_terms: int = 1,
        critic_layout: str = "shared",
        **kwargs: Any,
    ):
        if critic_layout not in CRITIC_LAYOUTS:
            raise ValueError(f"critic_layout must be one of {CRITIC_LAYOUTS}, got {critic_layout!r}")
        self.n_terms = int(n_terms)
        self.critic_layout = critic_layout
        super().__init__(observation_space, action_space, lr_schedule, *args, **kwargs)

    def _get_constructor_parameters(self) -> dict[str, Any]:
        data = super()._get_constructor_parameters()
        data.update(n_terms=self.n_terms, critic_layout=self.critic_layout)
        return data

    def make_critic(self, features_extractor: BaseFeaturesExtractor | None = None) -> MultiTermCritic:  # type: ignore[override]
        """Build a ``MultiTermCritic`` with this policy's K and layout."""
        critic_kwargs = self._update_features_extractor(self.critic_kwargs, features_extractor)
        return MultiTermCritic(**critic_kwargs, n_terms=self.n_terms, layout=self.critic_layout).to(self.device)


class MultiCriticMultiInputPolicy(MultiCriticSACPolicy):
    """``MultiCriticSACPolicy`` for dict observations (GoalEnv): a ``CombinedExtractor``."""

    def __init__(self, *args: Any, features_extractor_class: type[BaseFeaturesExtractor] = CombinedExtractor, **kwargs: Any):
        super().__init__(*args, features_extractor_class=features_extractor_class, **kwargs)


class MultiCriticMlpPolicy(MultiCriticSACPolicy):
    """``MultiCriticSACPolicy`` for flat observations."""

    def __init__(self, *args: Any, features_extractor_class: type[BaseFeaturesExtractor] = FlattenExtractor, **kwargs: Any):
        super().__init__(*args, features_extractor_class=features_extractor_class, **kwargs)
