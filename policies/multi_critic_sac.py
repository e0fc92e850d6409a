"""Multi-critic SAC: one twin-Q value per reward term, combined in the actor's objective.

Reads top to bottom (CleanRL style): the running value scale, then the algorithm and its
``train`` step. The networks live beside it: the batched critic ensemble in
`policies.ensemble_mlp`; the multi-term critic, the SB3 policies and the critic layouts
(``critic_layout``: ``"shared"``, ``"separate"``, ``"separate_loop"``) in
`policies.multi_critic_policy`. Every one of their names is re-exported here.

It follows "SLIM: Skill Learning with Multiple Critics" (Emukpere et al., ICRA 2024):
instead of summing the reward terms (goal, interaction, safety, skill diversity, ...) into
one scalar whose parts interfere, every term k gets its own critic Q_k, trained on its own
TD target, and the actor maximises

    s_bar * sum_k w_k * Q_k(s, pi(s)) / s_k  -  alpha * log pi(a|s)

where w_k are configured weights and s_k is a running scale of critic k's values (an
exponential moving average of |Q_k|, bias-corrected like Adam's moments, clamped below
at ``scale_eps``), so a term with large returns cannot drown the others. s_bar =
sum_k |w_k| s_k / sum_k |w_k| is a positive constant per update (no gradient): it does not
change how the terms are traded off, only keeps the objective on the scale of the values,
so with K = 1 the update is exactly SAC's and alpha (auto-tuned to the target entropy)
starts from the same balance as in SAC instead of facing values normalised to ~1.

Built on stable-baselines3's SAC (``MultiCriticSAC`` subclasses it): same constructor,
``learn``, ``predict``, ``save``/``load``, callbacks, vectorised envs, HER.

Where the entropy bonus goes. The critics learn the plain discounted return of their own
term (no entropy backup), by default: then Q_k is an interpretable estimate of term k
(what the per-critic logs and the scales s_k rely on) and the entropy bonus is not
counted K times under K different normalisations. The entropy still shapes the policy
through ``alpha * log pi`` in the actor loss, with alpha tuned to the target entropy as
in SAC; this is SAC without entropy backup (jaxrl's ``backup_entropy=False``). With
``entropy_backup="<term>"`` the soft bonus -alpha*log pi(a'|s') is instead added once,
to that term's target, multiplied by s_k / w_k so that it enters the actor objective
with weight one (full soft-Q-learning objective).

Efficiency: in the actor update the critics' weights are frozen (requires_grad off), so
backpropagation computes only the gradient with respect to the action, not unused weight
gradients as SB3's SAC does. Both the algorithm and its tests/benchmarks use
``torch.set_num_threads`` as the caller sets it.
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Iterator, Mapping, Sequence
from typing import Any, ClassVar, TypeVar

import numpy as np
import torch as th
from gymnasium import spaces
from stable_baselines3.common.policies import BasePolicy
from stable_baselines3.common.preprocessing import get_action_dim
from stable_baselines3.common.type_aliases import GymEnv
from stable_baselines3.common.utils import polyak_update
from stable_baselines3.her.her_replay_buffer import HerReplayBuffer
from stable_baselines3.sac import SAC
from torch import nn

from policies.buffers import (
    SCALAR_REWARD_KEY,
    MultiRewardDictReplayBuffer,
    MultiRewardHerReplayBuffer,
    MultiRewardReplayBuffer,
)
from policies.ensemble_mlp import EnsembleMLP
from policies.multi_critic_policy import (
    CRITIC_LAYOUTS,
    MultiCriticMlpPolicy,
    MultiCriticMultiInputPolicy,
    MultiCriticSACPolicy,
    MultiTermCritic,
)

SUM_KEY = "weighted_sum"

# ----------------------------------------------------------------------------------------
# 1. Running value scale s_k
# ----------------------------------------------------------------------------------------


class RunningScale(nn.Module):
    """Bias-corrected exponential moving average of |Q_k|, clamped below at ``eps``.

    Before the first update the scale is 1. Kept as buffers so it is saved with the model.
    """

    def __init__(self, n_terms: int, decay: float = 0.995, eps: float = 1.0):
        super().__init__()
        if not 0.0 <= decay < 1.0:
            raise ValueError(f"scale decay must be in [0, 1), got {decay}")
        if eps <= 0.0:
            raise ValueError(f"scale eps must be > 0, got {eps}")
        self.decay = float(decay)
        self.eps = float(eps)
        self.register_buffer("ema", th.zeros(n_terms))
        self.register_buffer("count", th.zeros((), dtype=th.float64))

    @th.no_grad()
    def update(self, magnitude: th.Tensor) -> None:
        """Fold one batch's mean |Q_k| (shape ``(K,)``) into the average."""
        self.count += 1
        self.ema.mul_(self.decay).add_(magnitude.detach().to(self.ema.dtype), alpha=1.0 - self.decay)

    def value(self) -> th.Tensor:
        """Current scale s_k, shape ``(K,)``."""
        if float(self.count) == 0.0:
            return th.ones_like(self.ema)
        debias = 1.0 - self.decay ** float(self.count)
        return (self.ema / debias).clamp(min=self.eps)


@contextlib.contextmanager
def _frozen(module: nn.Module) -> Iterator[None]:
    """Temporarily stop gradients into ``module``'s weights (inputs still get gradients)."""
    params = [p for p in module.parameters() if p.requires_grad]
    for p in params:
        p.requires_grad_(False)
    try:
        yield
    finally:
        for p in params:
            p.requires_grad_(True)


# ----------------------------------------------------------------------------------------
# 2. The algorithm
# ----------------------------------------------------------------------------------------

SelfMultiCriticSAC = TypeVar("SelfMultiCriticSAC", bound="MultiCriticSAC")


class MultiCriticSAC(SAC):
    """SAC with one twin critic per reward term (SLIM), a drop-in subclass of SB3's SAC.

    :param reward_terms: names of the env reward terms to learn, in critic order (read
        from ``info["reward_terms"]``). ``None``: the env's ``reward_weights`` keys, or the
        scalar reward as a single term ``"reward"`` when the env has none.
    :param critic_weights: w_k of the actor objective, a mapping term -> weight or a
        sequence in critic order. ``None``: the env's ``reward_weights`` (1.0 for terms it
        does not weight, including the skill-discovery term).
    :param critic_layout: ``"shared"`` (default), ``"separate"`` or ``"separate_loop"``.
    :param normalize_critics: divide each Q_k by its running scale s_k in the actor loss.
    :param scale_decay: EMA decay of s_k.
    :param scale_eps: lower clamp of s_k (values below one reward unit are not amplified).
    :param entropy_backup: ``None`` (critics learn plain per-term returns) or the name of
        the term whose target carries the soft bonus (see module doc).
    :param goal_term: the term HER relabels (with ``HerReplayBuffer``).
    :param skill_discovery: ``None`` or a mapping/``SkillDiscoveryConfig`` that adds an
        intrinsic skill-discovery term (DIAYN or METRA, see ``policies.skill_discovery``)
        trained jointly with the policy.
    :param sum_terms: the naive baseline: one critic learns the weighted sum
        sum_k w_k r_k (SB3 SAC's update on the scalar reward, entropy backed up as in SAC).
        Needed where a term is computed at training time (skill discovery), so plain SB3
        SAC cannot be used.
    Other parameters are SB3's ``SAC`` ones. ``replay_buffer_class`` may be ``None``,
    ``HerReplayBuffer`` (replaced by ``MultiRewardHerReplayBuffer``) or one of the
    ``policies.buffers`` classes.
    """

    policy_aliases: ClassVar[dict[str, type[BasePolicy]]] = {
        "MlpPolicy": MultiCriticMlpPolicy,
        "MultiInputPolicy": MultiCriticMultiInputPolicy,
    }
    policy: MultiCriticSACPolicy
    critic: MultiTermCritic
    critic_target: MultiTermCritic

    def __init__(
        self,
        policy: str | type[MultiCriticSACPolicy],
        env: GymEnv | str,
        *args: Any,
        reward_terms: Sequence[str] | None = None,
        critic_weights: Mapping[str, float] | Sequence[float] | None = None,
        critic_layout: str = "shared",
        normalize_critics: bool = True,
        scale_decay: float = 0.995,
        scale_eps: float = 1.0,
        entropy_backup: str | None = None,
        goal_term: str = "task",
        skill_discovery: Any = None,
        sum_terms: bool = False,
        _init_setup_model: bool = True,
        **kwargs: Any,
    ):
        if critic_layout not in CRITIC_LAYOUTS:
            raise ValueError(f"critic_layout must be one of {CRITIC_LAYOUTS}, got {critic_layout!r}")
        self.reward_terms_arg = list(reward_terms) if reward_terms is not None else None
        self.critic_weights_arg: Any = dict(critic_weights) if isinstance(critic_weights, Mapping) else (
            list(critic_weights) if critic_weights is not None else None
        )
        self.critic_layout = critic_layout
        self.normalize_critics = bool(normalize_critics)
        self.scale_decay = float(scale_decay)
        self.scale_eps = float(scale_eps)
        self.entropy_backup = entropy_backup
        self.goal_term = goal_term
        self.skill_discovery = _skill_config_to_dict(skill_discovery)
        self.sum_terms = bool(sum_terms)
        # Resolved in _setup_model (need the env); restored from the save file on load.
        self.reward_keys: list[str] | None = None
        self.env_reward_keys: list[str] | None = None
        self.critic_weight_values: list[float] | None = None
        self.term_weight_values: list[float] | None = None
        super().__init__(policy, env, *args, _init_setup_model=False, **kwargs)
        if _init_setup_model:
            self._setup_model()

    # -- set-up ------------------------------------------------------------------------

    def _env_reward_weights(self) -> dict[str, float] | None:
        if self.env is None:
            return None
        try:
            weights = self.env.get_attr("reward_weights", indices=[0])[0]
        except AttributeError:
            return None
        return {str(k): float(v) for k, v in weights.items()} if isinstance(weights, Mapping) else None

    def _resolve_reward_keys(self) -> None:
        env_weights = self._env_reward_weights()
        if self.reward_terms_arg is not None:
            env_keys = list(self.reward_terms_arg)
        elif env_weights is not None:
            env_keys = list(env_weights)
        else:
            env_keys = [SCALAR_REWARD_KEY]
        skill_key = self.skill_discovery.get("reward_key", "diversity") if self.skill_discovery else None
        keys = env_keys + ([skill_key] if skill_key else [])
        if len(set(keys)) != len(keys):
            raise ValueError(f"reward terms must be unique, got {keys}")
        cw = self.critic_weights_arg
        if cw is None:
            weights = [float((env_weights or {}).get(k, 1.0)) for k in keys]
        elif isinstance(cw, dict):
            unknown = set(cw) - set(keys)
            if unknown:
                raise KeyError(f"critic_weights names unknown terms {sorted(unknown)}; terms are {keys}")
            weights = [float(cw.get(k, (env_weights or {}).get(k, 1.0))) for k in keys]
        else:
            if len(cw) != len(keys):
                raise ValueError(f"critic_weights has {len(cw)} entries for {len(keys)} terms {keys}")
            weights = [float(w) for w in cw]
        if self.entropy_backup is not None and self.entropy_backup not in keys and not self.sum_terms:
            raise KeyError(f"entropy_backup term {self.entropy_backup!r} is not one of {keys}")
        if self.entropy_backup in keys and weights[keys.index(self.entropy_backup)] == 0.0:
            raise ValueError("entropy_backup term must have a non-zero critic weight")
        self.env_reward_keys = env_keys
        self.term_weight_values = weights
        if self.sum_terms:
            # One critic on sum_k w_k r_k, with SAC's entropy backup.
            if self.entropy_backup not in (None, SUM_KEY):
                raise ValueError("sum_terms uses one critic: entropy_backup must be None")
            self.reward_keys = [SUM_KEY]
            self.critic_weight_values = [1.0]
            self.entropy_backup = SUM_KEY
        else:
            self.reward_keys = keys
            self.critic_weight_values = weights

    def _setup_model(self) -> None:
        if self.reward_keys is None:
            self._resolve_reward_keys()
        assert self.reward_keys is not None and self.env_reward_keys is not None
        if self.n_steps > 1:
            raise ValueError("MultiCriticSAC does not support n-step returns (n_steps > 1)")
        # Pick the K-term buffer that matches what the user asked for.
        rb = self.replay_buffer_class
        if rb is None:
            rb = MultiRewardDictReplayBuffer if isinstance(self.observation_space, spaces.Dict) else MultiRewardReplayBuffer
        elif rb is HerReplayBuffer:
            rb = MultiRewardHerReplayBuffer
        elif not issubclass(rb, (MultiRewardReplayBuffer, MultiRewardDictReplayBuffer, MultiRewardHerReplayBuffer)):
            raise ValueError(
                f"replay_buffer_class {rb.__name__} does not store reward terms; use None, HerReplayBuffer "
                "or a policies.buffers class"
            )
        self.replay_buffer_class = rb
        self.replay_buffer_kwargs = dict(self.replay_buffer_kwargs)
        self.replay_buffer_kwargs["reward_keys"] = tuple(self.env_reward_keys)
        if issubclass(rb, MultiRewardHerReplayBuffer):
            self.replay_buffer_kwargs.setdefault("goal_key", self.goal_term)
            goal_key = self.replay_buffer_kwargs["goal_key"]
            if goal_key not in self.env_reward_keys and self.env_reward_keys != [SCALAR_REWARD_KEY]:
                warnings.warn(
                    f"HER relabels the goal term {goal_key!r}, which is not among the learned terms "
                    f"{self.env_reward_keys}: relabelled transitions keep their observed rewards",
                    stacklevel=2,
                )
        self.policy_kwargs = dict(self.policy_kwargs)
        self.policy_kwargs["n_terms"] = len(self.reward_keys)
        self.policy_kwargs["critic_layout"] = self.critic_layout
        super()._setup_model()
        self.value_scale = RunningScale(len(self.reward_keys), self.scale_decay, self.scale_eps).to(self.device)
        self.critic_weight_tensor = th.as_tensor(self.critic_weight_values, dtype=th.float32, device=self.device)
        self.term_weight_tensor = th.as_tensor(self.term_weight_values, dtype=th.float32, device=self.device)
        self.skill_model = None
        if self.skill_discovery:
            from policies.skill_discovery import build_skill_model

            self.skill_model = build_skill_model(self.skill_discovery, self.observation_space, self.device)

    # -- the update --------------------------------------------------------------------

    def train(self, gradient_steps: int, batch_size: int = 64) -> None:
        """Run ``gradient_steps`` updates of the K critics, the actor, alpha (and skills)."""
        assert self.reward_keys is not None
        self.policy.set_training_mode(True)
        optimizers = [self.actor.optimizer, self.critic.optimizer]
        if self.ent_coef_optimizer is not None:
            optimizers.append(self.ent_coef_optimizer)
        self._update_learning_rate(optimizers)

        n_terms = len(self.reward_keys)
        weights = self.critic_weight_tensor
        backup_idx = self.reward_keys.index(self.entropy_backup) if self.entropy_backup is not None else None
        ent_coefs, ent_coef_losses, actor_losses = [], [], []
        term_losses = th.zeros(n_terms, device=self.device)
        term_values = th.zeros(n_terms, device=self.device)
        skill_logs: dict[str, list[float]] = {}

        for gradient_step in range(gradient_steps):
            data = self.replay_buffer.sample(batch_size, env=self._vec_normalize_env)  # type: ignore[union-attr]
            terms = data.reward_terms  # (B, K_env)
            assert terms is not None, "replay buffer returned no reward_terms"
            if self.skill_model is not None:
                for key, val in self.skill_model.update(data.observations, data.next_observations).items():
                    skill_logs.setdefault(key, []).append(val)
                with th.no_grad():
                    intrinsic = self.skill_model.intrinsic_reward(data.observations, data.next_observations)
                terms = th.cat([terms, intrinsic.reshape(-1, 1)], dim=1)
            if self.sum_terms:
                terms = (terms * self.term_weight_tensor).sum(dim=1, keepdim=True)
            discounts = data.discounts if data.discounts is not None else self.gamma

            if self.use_sde:
                self.actor.reset_noise()
            actions_pi, log_prob = self.actor.action_log_prob(data.observations)
            log_prob = log_prob.reshape(-1, 1)

            # Entropy coefficient alpha, exactly as SB3's SAC.
            ent_coef_loss = None
            if self.ent_coef_optimizer is not None and self.log_ent_coef is not None:
                ent_coef = th.exp(self.log_ent_coef.detach())
                assert isinstance(self.target_entropy, float)
                ent_coef_loss = -(self.log_ent_coef * (log_prob + self.target_entropy).detach()).mean()
                ent_coef_losses.append(ent_coef_loss.item())
            else:
                ent_coef = self.ent_coef_tensor
            ent_coefs.append(ent_coef.item())
            if ent_coef_loss is not None and self.ent_coef_optimizer is not None:
                self.ent_coef_optimizer.zero_grad()
                ent_coef_loss.backward()
                self.ent_coef_optimizer.step()

            # Actor coefficients c_k = w_k / s_k * s_bar (s_bar = |w|-weighted mean scale, a
            # positive constant per step): the terms are traded off by w_k / s_k, while the
            # overall magnitude stays that of the values, so K = 1 is exactly SAC's objective
            # and alpha keeps its usual meaning.
            if self.normalize_critics:
                scale = self.value_scale.value()
                abs_w = weights.abs()
                mean_scale = (abs_w * scale).sum() / abs_w.sum().clamp(min=1e-8)
                coef = weights / scale * mean_scale
            else:
                coef = weights

            # Per-term TD targets: r_k + gamma * (1 - d) * min_twin Q'_k(s', a'), a' ~ pi(s').
            with th.no_grad():
                next_actions, next_log_prob = self.actor.action_log_prob(data.next_observations)
                next_q = self.critic_target.q_values(data.next_observations, next_actions).min(dim=0).values  # (B, K)
                if backup_idx is not None:
                    bonus = ent_coef * next_log_prob / coef[backup_idx]
                    next_q[:, backup_idx] -= bonus
                target_q = terms + (1.0 - data.dones) * discounts * next_q

            # Critic loss: SB3's 0.5 * sum_twins MSE, per term, summed over terms.
            current_q = self.critic.q_values(data.observations, data.actions)  # (n_critics, B, K)
            per_term_loss = 0.5 * (current_q - target_q.unsqueeze(0)).pow(2).mean(dim=1).sum(dim=0)  # (K,)
            critic_loss = per_term_loss.sum()
            self.critic.optimizer.zero_grad()
            critic_loss.backward()
            self.critic.optimizer.step()
            term_losses += per_term_loss.detach()

            # Actor loss: alpha * log pi - sum_k w_k * Q_k / s_k (twin-min per term); the
            # critic's weights are frozen so only d/da flows back.
            with _frozen(self.critic):
                q_pi = self.critic.q_values(data.observations, actions_pi).min(dim=0).values  # (B, K)
            magnitude = q_pi.detach().abs().mean(dim=0)
            term_values += q_pi.detach().mean(dim=0)
            actor_loss = (ent_coef * log_prob - (q_pi * coef).sum(dim=1, keepdim=True)).mean()
            actor_losses.append(actor_loss.item())
            self.actor.optimizer.zero_grad()
            actor_loss.backward()
            self.actor.optimizer.step()
            if self.normalize_critics:
                self.value_scale.update(magnitude)

            if gradient_step % self.target_update_interval == 0:
                polyak_update(self.critic.parameters(), self.critic_target.parameters(), self.tau)
                polyak_update(self.batch_norm_stats, self.batch_norm_stats_target, 1.0)

        self._n_updates += gradient_steps
        self.logger.record("train/n_updates", self._n_updates, exclude="tensorboard")
        if gradient_steps > 0:
            self.logger.record("train/ent_coef", float(np.mean(ent_coefs)))
            self.logger.record("train/actor_loss", float(np.mean(actor_losses)))
            self.logger.record("train/critic_loss", float(term_losses.sum().item()) / gradient_steps)
            if ent_coef_losses:
                self.logger.record("train/ent_coef_loss", float(np.mean(ent_coef_losses)))
            final_scale = self.value_scale.value()
            for k, key in enumerate(self.reward_keys):
                self.logger.record(f"train/critic_loss_{key}", float(term_losses[k]) / gradient_steps)
                self.logger.record(f"train/q_{key}", float(term_values[k]) / gradient_steps)
                self.logger.record(f"train/q_scale_{key}", float(final_scale[k]))
            for key, vals in skill_logs.items():
                self.logger.record(f"skill/{key}", float(np.mean(vals)))

    # -- convenience -------------------------------------------------------------------

    def predict_q(self, observation: Any, action: np.ndarray) -> dict[str, np.ndarray]:
        """Twin-min Q_k(s, a) per term, for diagnostics and tests.

        ``observation`` is one observation or a batch (as for ``predict``); ``action`` is
        in the policy's squashed [-1, 1] space, shape ``(B, action_dim)``. Returns a
        mapping term -> array ``(B,)``.
        """
        assert self.reward_keys is not None
        self.policy.set_training_mode(False)
        obs_t, _ = self.policy.obs_to_tensor(observation)
        act_t = th.as_tensor(np.asarray(action, dtype=np.float32), device=self.device).reshape(-1, get_action_dim(self.action_space))
        with th.no_grad():
            q = self.critic.q_values(obs_t, act_t).min(dim=0).values.cpu().numpy()
        return {key: q[:, k] for k, key in enumerate(self.reward_keys)}

    # -- saving ------------------------------------------------------------------------

    def _excluded_save_params(self) -> list[str]:
        return [*super()._excluded_save_params(), "value_scale", "critic_weight_tensor", "term_weight_tensor", "skill_model"]

    def _get_torch_save_params(self) -> tuple[list[str], list[str]]:
        state_dicts, variables = super()._get_torch_save_params()
        state_dicts = [*state_dicts, "value_scale"]
        if self.skill_model is not None:
            state_dicts += ["skill_model", "skill_model.optimizer"]
        return state_dicts, variables


def _skill_config_to_dict(cfg: Any) -> dict[str, Any] | None:
    if cfg is None:
        return None
    if isinstance(cfg, Mapping):
        return dict(cfg)
    if hasattr(cfg, "__dataclass_fields__"):
        import dataclasses

        return dataclasses.asdict(cfg)
    raise TypeError(f"skill_discovery must be a mapping or SkillDiscoveryConfig, got {type(cfg).__name__}")


__all__ = [
    "CRITIC_LAYOUTS",
    "EnsembleMLP",
    "MultiCriticMlpPolicy",
    "MultiCriticMultiInputPolicy",
    "MultiCriticSAC",
    "MultiCriticSACPolicy",
    "MultiTermCritic",
    "RunningScale",
]

