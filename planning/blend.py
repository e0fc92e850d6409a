"""SkillBlender-style blending: a high-level SB3 policy mixes frozen skills instead of switching.

SkillBlender's high-level policy outputs, for K frozen goal-conditioned skills, each
skill's goal and K x D logits; a softmax over the skills per joint weights the skills'
joint targets. Here the D action dimensions of the end-effector interface
(dx, dy, dz, gripper) play the part of the joints (with ``action_mode="joint"`` they would
be the 7 joints + gripper):

    action of the high-level policy  = [logits (K x D), sub-goal offsets (K x 3)] in [-1, 1]
    w[:, d] = softmax_k(logit_scale * logits[:, d])
    env action[d] = sum_k w[k, d] * skill_k(obs_with_subgoal_k)[d]

A skill's sub-goal is its grounded goal shifted by `subgoal_scale` x offset (metres).
The skills are the steps of the planner's best plans from the first reset (so blending
and sequential selection use the same skills); they are frozen and re-grounded on the new
scene at every reset. `BlendEnv` is a Gymnasium env (flat Box observation: observation,
achieved and desired goal), so any SB3 algorithm trains it; `train_blender` uses SAC
(or PPO, as SkillBlender did) on the task's dense reward.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from envs.predicates import Literal
from planning.grounding import GroundedSkill, ground_skill, skills_obs_layout, staging_points
from planning.planner import PlannerConfig, plan
from planning.symbolic import Domain, scene_atoms

__all__ = [
    "BlendConfig",
    "BlendEnv",
    "BlenderPolicy",
    "evaluate_blender",
    "load_blender",
    "save_blender",
    "select_blend_skills",
    "train_blender",
]

BLENDER_FILE = "blender.json"
BLENDER_WEIGHTS = "actor.safetensors"
BLENDER_FORMAT = 1


@dataclass(frozen=True)
class BlendConfig:
    """High-level policy and blending knobs (small on purpose: it trains in minutes on a CPU)."""

    algo: str = "sac"  # "sac" or "ppo"
    total_steps: int = 20000
    max_skills: int = 4
    subgoal_scale: float = 0.05
    logit_scale: float = 3.0
    hidden: tuple[int, ...] = (64, 64)
    learning_starts: int = 500
    seed: int = 0
    threads: int = 1  # torch intra-op threads (more only helps on an idle many-core machine)
    extra: dict[str, Any] = field(default_factory=dict)  # more keyword arguments for the SB3 algorithm


def select_blend_skills(skills: Sequence[Any], env: Any, goal: Sequence[Literal], max_skills: int = 4, seed: int = 0) -> list[str]:
    """Operator labels to blend: the steps of the best plans from a reset (deduplicated, in plan order)."""
    env.reset(seed=seed)
    scene = env.unwrapped.perceived_scene_state()
    domain = Domain.from_scene(scene, staging_points(scene))
    ops = [op for s in skills for op in ground_skill(s, scene, domain)]
    plans = plan(scene_atoms(scene, domain), goal, ops, domain, PlannerConfig(k=3))
    labels: list[str] = []
    for p in plans:
        for op in p.steps:
            if op.label not in labels and len(labels) < max_skills:
                labels.append(op.label)
    if not labels:
        raise ValueError("the goal already holds at reset: nothing to blend")
    return labels


class BlendEnv(gym.Env):
    """The high-level env: blends K frozen grounded skills with per-dimension softmax weights."""

    metadata = {"render_modes": []}

    def __init__(self, env: gym.Env, skills: Sequence[Any], labels: Sequence[str], subgoal_scale: float = 0.05, logit_scale: float = 3.0) -> None:
        self.env = env
        self.skills = list(skills)
        self.labels = list(labels)
        if not self.labels:
            raise ValueError("BlendEnv needs at least one skill label")
        self.k = len(self.labels)
        self.d = int(env.action_space.shape[0])
        self.subgoal_scale = float(subgoal_scale)
        self.logit_scale = float(logit_scale)
        spaces_ = env.observation_space.spaces
        n = sum(int(np.prod(spaces_[k].shape)) for k in ("observation", "achieved_goal", "desired_goal"))
        self.observation_space = spaces.Box(-np.inf, np.inf, shape=(n,), dtype=np.float32)
        self.action_space = spaces.Box(-1.0, 1.0, shape=(self.k * self.d + self.k * 3,), dtype=np.float32)
        self.spec = None
        self._grounded: list[GroundedSkill] = []
        self._obs: dict[str, np.ndarray] = {}
        self.last_weights = np.full((self.k, self.d), 1.0 / self.k)

    @staticmethod
    def flatten(obs: dict[str, np.ndarray]) -> np.ndarray:
        return np.concatenate([np.ravel(obs[k]) for k in ("observation", "achieved_goal", "desired_goal")]).astype(np.float32)

    def _ground(self) -> None:
        u = self.env.unwrapped
        scene = u.perceived_scene_state()
        domain = Domain.from_scene(scene, staging_points(scene))
        by_label = {op.label: op.payload for s in self.skills for op in ground_skill(s, scene, domain)}
        missing = [lab for lab in self.labels if lab not in by_label]
        if missing:
            raise ValueError(f"cannot ground {missing} on this scene; groundings: {sorted(by_label)}")
        self._grounded = [by_label[lab] for lab in self.labels]
        for g in self._grounded:
            g.start(self.env)

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        obs, info = self.env.reset(seed=seed, options=options)
        self._obs = obs
        self._ground()
        return self.flatten(obs), info

    def blend(self, action: np.ndarray) -> np.ndarray:
        """Env action from a high-level action (also stores the weights in `last_weights`)."""
        a = np.clip(np.asarray(action, dtype=np.float64), -1.0, 1.0)
        logits = a[: self.k * self.d].reshape(self.k, self.d) * self.logit_scale
        offsets = a[self.k * self.d :].reshape(self.k, 3) * self.subgoal_scale
        z = np.exp(logits - logits.max(axis=0, keepdims=True))
        w = z / z.sum(axis=0, keepdims=True)
        self.last_weights = w
        acts = []
        for g, off in zip(self._grounded, offsets):
            g.view.goal_offset = off
            acts.append(np.asarray(g.act(self._obs), dtype=np.float64))
        return np.clip((w * np.stack(acts)).sum(axis=0), -1.0, 1.0).astype(np.float32)

    def step(self, action: np.ndarray):
        obs, reward, terminated, truncated, info = self.env.step(self.blend(action))
        self._obs = obs
        return self.flatten(obs), float(reward), terminated, truncated, info

    def close(self) -> None:
        self.env.close()


def _dense_id(env_id: str) -> str:
    return env_id.replace("-v", "Dense-v") if "Dense" not in env_id else env_id


def train_blender(
    skills: Sequence[Any],
    env_id: str,
    goal: Sequence[Literal],
    config: BlendConfig | None = None,
    labels: Sequence[str] | None = None,
    verbose: int = 0,
) -> tuple[Any, list[str], dict[str, Any]]:
    """Train the high-level blending policy on the task's dense-reward env.

    Returns (SB3 model, blended skill labels, training info: steps, seconds, algo).
    """
    import envs

    cfg = config or BlendConfig()
    if cfg.algo not in ("sac", "ppo"):
        raise ValueError(f"algo must be 'sac' or 'ppo', got {cfg.algo!r}")
    import torch
    from stable_baselines3 import PPO, SAC

    if cfg.threads > 0:
        torch.set_num_threads(cfg.threads)
    dense = _dense_id(env_id)
    env = envs.make(dense, obs_layout=skills_obs_layout(skills))
    labels = list(labels) if labels else select_blend_skills(skills, env, goal, cfg.max_skills, cfg.seed)
    benv = gym.wrappers.TimeLimit(BlendEnv(env.unwrapped, skills, labels, cfg.subgoal_scale, cfg.logit_scale), env.spec.max_episode_steps)
    policy_kwargs = {"net_arch": list(cfg.hidden)}
    if cfg.algo == "sac":
        model = SAC("MlpPolicy", benv, seed=cfg.seed, learning_starts=min(cfg.learning_starts, cfg.total_steps), policy_kwargs=policy_kwargs, verbose=verbose, device="cpu", **cfg.extra)
    else:
        model = PPO("MlpPolicy", benv, seed=cfg.seed, n_steps=min(1024, max(64, cfg.total_steps)), batch_size=64, policy_kwargs=policy_kwargs, verbose=verbose, device="cpu", **cfg.extra)
    t0 = time.perf_counter()
    model.learn(total_timesteps=int(cfg.total_steps))
    info = {"algo": cfg.algo, "steps": int(cfg.total_steps), "seconds": time.perf_counter() - t0, "env_id": dense, "skills": labels}
    return model, labels, info


def evaluate_blender(
    model: Any,
    skills: Sequence[Any],
    labels: Sequence[str],
    env_id: str,
    episodes: int = 10,
    seed: int = 1000,
    config: BlendConfig | None = None,
    camera: str | None = None,
    width: int = 320,
    height: int = 240,
) -> dict[str, Any]:
    """Deterministic rollouts of a trained blender on `env_id`: success at the last step, safety cost, frames."""
    import envs

    cfg = config or BlendConfig()
    env = envs.make(env_id, obs_layout=skills_obs_layout(skills))
    benv = BlendEnv(env.unwrapped, skills, labels, cfg.subgoal_scale, cfg.logit_scale)
    steps = int(env.spec.max_episode_steps)
    successes, costs, weights, frames = [], [], [], []
    for ep in range(episodes):
        obs, _ = benv.reset(seed=seed + ep)
        if camera and ep == 0:
            frames.append(env.unwrapped.render_camera(camera, width, height))
        cost, info = 0.0, {"is_success": 0.0}
        for _ in range(steps):
            action, _ = model.predict(obs, deterministic=True)
            obs, _r, _term, _trunc, info = benv.step(action)
            cost += float(info.get("safety_cost", 0.0))
            weights.append(benv.last_weights.copy())
            if camera and ep == 0:
                frames.append(env.unwrapped.render_camera(camera, width, height))
        successes.append(bool(info["is_success"]))
        costs.append(cost)
    mean_w = np.mean(weights, axis=0)
    return {
        "episodes": episodes,
        "success_rate": float(np.mean(successes)),
        "mean_safety_cost": float(np.mean(costs)),
        "mean_skills": float(len(labels)),
        "mean_replans": 0.0,
        "mean_weights": {lab: [round(float(x), 3) for x in mean_w[i]] for i, lab in enumerate(labels)},
        "results": [{"success": s, "safety_cost": c} for s, c in zip(successes, costs)],
        "frames": frames,
    }


# ----------------------------------------------------------------------------- save / load


class BlenderPolicy:
    """A saved high-level blending policy: its deterministic actor, the skills it blends, its config.

    `predict(obs, deterministic=True)` answers like an SB3 model, so `evaluate_blender`
    runs a reloaded policy exactly as the freshly trained one.
    """

    def __init__(self, arch: dict[str, Any], state_dict: dict[str, Any], labels: list[str], skill_refs: list[str],
                 config: BlendConfig, env_id: str) -> None:  # fmt: skip
        from policies.networks import build_network

        self.arch, self.labels, self.skill_refs, self.config, self.env_id = arch, list(labels), list(skill_refs), config, env_id
        self.net = build_network(arch)
        self.net.load_state_dict(state_dict)
        self.net.eval()

    def predict(self, obs: np.ndarray, deterministic: bool = True) -> tuple[np.ndarray, None]:
        import torch

        x = np.asarray(obs, dtype=np.float32)
        if x.shape[-1] != self.arch["in_dim"]:
            raise ValueError(f"blender observation has {x.shape[-1]} values, the policy takes {self.arch['in_dim']}")
        if not np.all(np.isfinite(x)):
            raise ValueError("blender observation contains NaN or inf")
        with torch.no_grad():
            y = self.net(torch.from_numpy(np.atleast_2d(x))).numpy()
        return (y[0] if x.ndim == 1 else y), None


def save_blender(model: Any, labels: Sequence[str], skills: Sequence[Any], env_id: str, config: BlendConfig,
                 out_dir: Any, overwrite: bool = False) -> Any:  # fmt: skip
    """Save a trained SAC blender as JSON + safetensors (nothing pickled), atomically; returns the directory.

    Records the blended labels, the refs of the skills (a reload checks they are the same
    versions) and the config. PPO blenders are not exportable (stochastic Gaussian head
    without the SAC actor layout): train with algo "sac" to save.
    """
    import json
    from pathlib import Path

    from safetensors.torch import save as st_save

    from policies.networks import export_sb3_actor
    from common.atomic import staged_dir, write_new_file

    out = Path(out_dir)
    if out.exists() and not overwrite:
        raise FileExistsError(f"{out} exists (pass overwrite=True to replace it)")
    if config.algo != "sac":
        raise ValueError(f"only SAC blenders can be saved, this one is {config.algo!r}")
    exported = export_sb3_actor(model)
    meta = {
        "format": BLENDER_FORMAT, "env_id": env_id, "labels": list(labels), "skills": [s.ref for s in skills],
        "arch": exported.arch, "config": {k: (list(v) if isinstance(v, tuple) else v) for k, v in vars(config).items()},
    }  # fmt: skip
    with staged_dir(out) as tmp:
        write_new_file(tmp / BLENDER_WEIGHTS, st_save(exported.state_dict))
        write_new_file(tmp / BLENDER_FILE, json.dumps(meta, indent=2).encode())
    return out


def load_blender(path: Any, skills: Sequence[Any]) -> BlenderPolicy:
    """Load a blender saved by `save_blender`; `skills` must include the very versions it was trained with.

    Raises ValueError for a missing/corrupt file, an unknown format or architecture, or
    skills that differ from the recorded refs.
    """
    import json
    from pathlib import Path

    from safetensors.torch import load as st_load

    from policies.networks import validate_arch

    root = Path(path)
    try:
        meta = json.loads((root / BLENDER_FILE).read_text())
        weights = st_load((root / BLENDER_WEIGHTS).read_bytes())
    except FileNotFoundError as exc:
        raise ValueError(f"{root}: not a saved blender ({exc.filename} missing)") from None
    except Exception as exc:  # bad JSON or a damaged safetensors file
        raise ValueError(f"{root}: damaged blender files ({type(exc).__name__}: {exc})") from None
    if not isinstance(meta, dict) or meta.get("format") != BLENDER_FORMAT:
        raise ValueError(f"{root}: unknown blender format {meta.get('format') if isinstance(meta, dict) else meta!r}")
    have = {s.ref for s in skills}
    missing = [r for r in meta["skills"] if r not in have]
    if missing:
        raise ValueError(f"{root}: blender was trained with {missing}, not among the given skills")
    arch = validate_arch(meta["arch"])
    cfg_fields = {k: (tuple(v) if k == "hidden" else v) for k, v in meta["config"].items() if k in BlendConfig.__dataclass_fields__}
    try:
        return BlenderPolicy(arch, weights, meta["labels"], meta["skills"], BlendConfig(**cfg_fields), meta["env_id"])
    except RuntimeError as exc:  # tensors that do not fit the architecture
        raise ValueError(f"{root}: weights do not match the architecture: {exc}") from None
