"""Training runs from YAML configs: ``train(config) -> run_dir``.

One config file per experiment (rl-zoo3 style, see ``configs/*.yaml``) loaded into typed
dataclasses (``TrainConfig``), overridable with ``key.sub=value`` strings. A run folder
holds everything a user keeps::

    <run_dir>/config.yaml          the resolved configuration (load_config(run_dir) reads it back)
    <run_dir>/tb/                  TensorBoard logs (SB3 logger; per-critic values, scales, losses)
    <run_dir>/eval.jsonl           one line per evaluation: success, safety cost, per-term returns
    <run_dir>/videos/              evaluation videos (mp4)
    <run_dir>/checkpoints/step_N/  resumable checkpoints (safetensors + JSON + npz, no pickle)
    <run_dir>/summary.json         final evaluation, timings (and, once published, the skills)
    <run_dir>/skills/              skill packages, written by ``skill_library.publish_run``

Resume (``train(..., resume=True)``) after the process was killed continues from the
latest checkpoint and gives the same result as an uninterrupted run (see ``checkpoint``).

Algorithms: ``multi_critic_sac`` (``MultiCriticSAC``) or ``sac`` (the naive baseline:
SB3's SAC on the scalar weighted-sum reward; with HER it uses the K-term HER buffer so
the relabelled scalar stays the weighted sum of all terms). With ``skill_discovery`` the
env is wrapped in ``SkillConditionedWrapper`` and the naive baseline is
``MultiCriticSAC(sum_terms=True)``.

Modules, one job each: ``config`` (dataclasses, YAML, overrides; ``config_loading`` holds
the generic typed loader), ``env_factory`` (envs and the VecEnv), ``model`` (the algorithm),
``checkpoint`` (save / resume / rebuild a run's policy), ``demonstrations`` (expert
episodes into the buffer), ``evaluation``, ``loop`` (``train``), ``run_files`` (eval log and
summary), ``plots`` (learning curves), ``handoff`` (the trained networks, for publishing).
Names are imported lazily: ``import policies.training`` loads neither torch nor SB3.
"""

from __future__ import annotations

from common.lazy import lazy_exports

_EXPORTS = {
    "ALGOS": "policies.training.config",
    "CONFIG_FILE": "policies.training.config",
    "DEFAULT_CONFIG": "policies.training.config",
    "CheckpointConfig": "policies.training.config",
    "ConfigError": "policies.training.config",
    "ConfigTypeError": "policies.training.config",
    "DemonstrationsConfig": "policies.training.config",
    "DescriptorsConfig": "policies.training.config",
    "EvalConfig": "policies.training.config",
    "ExportConfig": "policies.training.config",
    "HerConfig": "policies.training.config",
    "NormalizeConfig": "policies.training.config",
    "TrainConfig": "policies.training.config",
    "UnknownConfigKeyError": "policies.training.config",
    "apply_overrides": "policies.training.config",
    "load_config": "policies.training.config",
    "save_config": "policies.training.config",
    "RunStateWrapper": "policies.training.env_factory",
    "make_env": "policies.training.env_factory",
    "make_vec_env": "policies.training.env_factory",
    "obs_normalizer": "policies.training.env_factory",
    "build_model": "policies.training.model",
    "list_checkpoints": "policies.training.checkpoint",
    "load_checkpoint": "policies.training.checkpoint",
    "load_run_model": "policies.training.checkpoint",
    "rebuild_run": "policies.training.checkpoint",
    "save_checkpoint": "policies.training.checkpoint",
    "seed_with_demonstrations": "policies.training.demonstrations",
    "COVERAGE_CELL": "policies.training.evaluation",
    "displacement_coverage": "policies.training.evaluation",
    "eval_skills": "policies.training.evaluation",
    "evaluate_model": "policies.training.evaluation",
    "run_episodes": "policies.training.evaluation",
    "default_run_dir": "policies.training.loop",
    "train": "policies.training.loop",
    "CHECKPOINT_DIR": "policies.training.run_files",
    "EVAL_FILE": "policies.training.run_files",
    "SUMMARY_FILE": "policies.training.run_files",
    "read_eval_log": "policies.training.run_files",
    "read_summary": "policies.training.run_files",
    "plot_runs": "policies.training.plots",
    "TrainedPolicy": "policies.training.handoff",
    "TrainedRun": "policies.training.handoff",
    "load_trained_run": "policies.training.handoff",
    "trained_policies": "policies.training.handoff",
}

__all__ = sorted(_EXPORTS)

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, globals())
