"""The training loop: ``train(config) -> run_dir``.

It reads top to bottom as named steps: resolve the config and the run folder, build the
envs and the model, resume from the latest checkpoint or start fresh (seeding demonstrations),
then learn in chunks that end at evaluation and checkpoint boundaries, and summarise.
Training always advances through the same chunks, resumed or not, so a resumed run equals
an uninterrupted one. Publishing the trained policy as a skill is the library's job
(``skill_library.publish_run``), not the loop's.
"""

from __future__ import annotations

import os
import shutil
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from policies.cpu_allocator import keep_freed_memory
from policies.training.checkpoint import list_checkpoints, load_checkpoint, save_checkpoint
from policies.training.config import CONFIG_FILE, TrainConfig, load_config, save_config
from policies.training.demonstrations import seed_with_demonstrations
from policies.training.env_factory import make_vec_env, obs_normalizer
from policies.training.evaluation import eval_skills, evaluate_model
from policies.training.model import build_model
from policies.training.run_files import (
    CHECKPOINT_DIR,
    EVAL_FILE,
    append_eval_row,
    read_eval_log,
    steps_to,
    truncate_eval_log,
    write_summary,
)

__all__ = ["default_run_dir", "train"]


def train(
    config: str | os.PathLike[str] | Mapping[str, Any] | TrainConfig,
    overrides: Sequence[str] = (),
    run_dir: str | os.PathLike[str] | None = None,
    resume: bool = False,
    progress: bool = True,
    stop_after: int | None = None,
) -> Path:
    """Train the experiment a config describes; returns the run directory.

    :param config: YAML path, run directory (its ``config.yaml``), mapping or ``TrainConfig``.
    :param overrides: ``key.sub=value`` strings applied on top.
    :param run_dir: where the run lives (default ``default_run_dir``).
    :param resume: continue from the latest checkpoint in ``run_dir`` (its saved config
        wins over ``config``; overrides still apply and are saved into it).
    :param progress: show a progress bar.
    :param stop_after: stop (without final evaluation and summary) once this many env steps
        are done, as if the process had been killed there (tests, staged runs).
    """
    cfg, out = _resolve_run(config, overrides, run_dir, resume)
    _prepare_process(cfg)
    venv = make_vec_env(cfg)
    model = build_model(cfg, venv, tensorboard_log=_tensorboard_dir(out))
    timing = _resume_or_start(model, venv, cfg, out, resume)
    bar = _ProgressBar(cfg.total_timesteps, int(model.num_timesteps), progress)
    try:
        last_eval = _learn_in_chunks(model, venv, cfg, out, timing, bar, stop_after)
        if model.num_timesteps >= cfg.total_timesteps:
            write_summary(out, _summary(cfg, model, out, last_eval, timing))
    finally:
        bar.close()
        venv.close()
    return out


def default_run_dir(cfg: TrainConfig) -> Path:
    """``<runs_dir>/<experiment>/seed<seed>-<YYYYmmdd-HHMMSS>``."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    return Path(cfg.runs_dir) / cfg.experiment / f"seed{cfg.seed}-{stamp}"


# ------------------------------------------------------------------------------------------
# The steps of train()
# ------------------------------------------------------------------------------------------


def _resolve_run(config: Any, overrides: Sequence[str], run_dir: str | os.PathLike[str] | None,
                 resume: bool) -> tuple[TrainConfig, Path]:
    """The config (a resumed run's saved one) and the run folder, created with its config."""
    if resume:
        if run_dir is None:
            src = Path(config) if isinstance(config, (str, os.PathLike)) else None
            if src is None or not (src / CONFIG_FILE).is_file():
                raise ValueError("resume needs the run directory (pass run_dir or a run directory as config)")
            run_dir = src
        saved = Path(run_dir) / CONFIG_FILE
        if not saved.is_file():
            raise FileNotFoundError(f"{run_dir}: no {CONFIG_FILE}; nothing to resume")
        cfg = load_config(saved, overrides)
    else:
        cfg = load_config(config, overrides)
    out = Path(run_dir) if run_dir is not None else default_run_dir(cfg)
    (out / "videos").mkdir(parents=True, exist_ok=True)
    if not resume or overrides or not (out / CONFIG_FILE).exists():
        save_config(cfg, out / CONFIG_FILE)  # what this run resolved to (a resume's overrides included)
    return cfg, out


def _prepare_process(cfg: TrainConfig) -> None:
    import torch

    if cfg.torch_threads:
        torch.set_num_threads(cfg.torch_threads)
    keep_freed_memory()  # no page-faulting of activations every update (see policies.cpu_allocator)


def _tensorboard_dir(out: Path) -> str | None:
    try:
        import tensorboard  # noqa: F401
    except ImportError:
        return None
    return str(out / "tb")


def _resume_or_start(model: Any, venv: Any, cfg: TrainConfig, out: Path, resume: bool) -> dict[str, Any]:
    """Restore the latest checkpoint, or start fresh (seed, demonstrations, first reset).
    Returns the run's timing record (carried over from the checkpoint)."""
    timing: dict[str, Any] = {"train_s": 0.0, "eval_s": 0.0, "demo_s": 0.0}
    checkpoints = list_checkpoints(out) if resume else []
    if checkpoints:
        meta = load_checkpoint(model, venv, checkpoints[-1])
        timing.update(meta.get("extra", {}).get("timing", {}))
        truncate_eval_log(out, int(meta["num_timesteps"]))  # rows after it are evaluated again
        return timing
    if resume:
        print(f"{out}: no checkpoint yet; starting from scratch", file=sys.stderr)
        (out / EVAL_FILE).unlink(missing_ok=True)
    model.set_random_seed(cfg.seed)
    if cfg.init is not None:  # fine-tuning: the actor starts as the given skill's policy
        from policies.training.init_policy import init_from_package

        init_from_package(model, venv, cfg.init)
    if cfg.demonstrations.episodes > 0:
        t0 = time.perf_counter()
        timing["demo_transitions"] = seed_with_demonstrations(
            model, cfg, cfg.demonstrations.episodes, cfg.demonstrations.seed + cfg.seed)
        timing["demo_s"] = time.perf_counter() - t0
    # Reset the env here (not inside learn) so that a fresh run and a resumed run
    # reach their first learn() chunk in the same state.
    model._last_obs = venv.reset()
    model._last_episode_starts = np.ones((venv.num_envs,), dtype=bool)
    if obs_normalizer(venv) is not None:
        model._last_original_obs = venv.get_original_obs()
    return timing


def _learn_in_chunks(model: Any, venv: Any, cfg: TrainConfig, out: Path, timing: dict[str, Any],
                     bar: _ProgressBar, stop_after: int | None) -> dict[str, Any] | None:
    """Learn up to each boundary in turn, evaluating and checkpointing where due; returns
    the last evaluation row written in this process (``None`` if none)."""
    skills = eval_skills(cfg, cfg.eval.coverage_skills)
    last_eval = None
    for boundary in _boundaries(cfg):
        if boundary <= model.num_timesteps:
            continue
        if stop_after is not None and model.num_timesteps >= stop_after:
            break
        t0 = time.perf_counter()
        model.learn(boundary - model.num_timesteps, callback=bar.callback(cfg.total_timesteps),
                    reset_num_timesteps=False, log_interval=cfg.log_interval, tb_log_name="run", progress_bar=False)
        timing["train_s"] += time.perf_counter() - t0
        step = int(model.num_timesteps)
        if _due(cfg, "eval", step):
            last_eval = _evaluate(model, venv, cfg, out, skills, timing)
            bar.postfix(success=f"{last_eval['success_rate']:.2f}", cost=f"{last_eval['safety_cost']:.2f}")
        if _due(cfg, "checkpoint", step):
            save_checkpoint(model, venv, out / CHECKPOINT_DIR / f"step_{step:08d}", extra={"timing": timing})
            for old in list_checkpoints(out)[: -cfg.checkpoint.keep]:
                shutil.rmtree(old, ignore_errors=True)
        model.logger.close()  # learn() opens a fresh logger (same TensorBoard folder) per chunk
    return last_eval


def _evaluate(model: Any, venv: Any, cfg: TrainConfig, out: Path, skills: np.ndarray | None,
              timing: dict[str, Any]) -> dict[str, Any]:
    """One evaluation: appended to ``eval.jsonl`` and logged to TensorBoard; returns its row."""
    t0 = time.perf_counter()
    step = int(model.num_timesteps)
    video = cfg.eval.video is True or (cfg.eval.video == "final" and step >= cfg.total_timesteps)
    video_path = out / "videos" / f"eval_{step:08d}.mp4" if video else None
    episodes = cfg.eval.episodes if skills is None else max(cfg.eval.episodes, len(skills))
    res = evaluate_model(model, cfg, episodes, cfg.eval.seed, video_path, skills, obs_normalizer(venv))
    timing["eval_s"] += time.perf_counter() - t0
    row = {"step": step, "wall_s": timing["train_s"] + timing["demo_s"], **res}
    append_eval_row(out, row)
    _log_eval(model, res)
    return row


def _summary(cfg: TrainConfig, model: Any, out: Path, last_eval: dict[str, Any] | None,
             timing: dict[str, Any]) -> dict[str, Any]:
    if last_eval is None and (out / EVAL_FILE).is_file():  # a finished run resumed: nothing new evaluated
        last_eval = (read_eval_log(out) or [None])[-1]
    return {
        "experiment": cfg.experiment, "algo": cfg.algo, "seed": cfg.seed, "env_id": cfg.env_id,
        "env_steps": int(model.num_timesteps), "final_eval": last_eval, "timing": timing,
        "steps_to_success": steps_to(out, 0.95),
    }


# ------------------------------------------------------------------------------------------
# Helpers
# ------------------------------------------------------------------------------------------


def _log_eval(model: Any, res: Mapping[str, Any]) -> None:
    model.logger.record("eval/success_rate", res["success_rate"])
    model.logger.record("eval/safety_cost", res["safety_cost"])
    for k, v in res.get("returns", {}).items():
        model.logger.record(f"eval/return_{k}", v)
    if "coverage" in res:
        model.logger.record("eval/coverage", res["coverage"])
    model.logger.dump(model.num_timesteps)


def _freq(cfg: TrainConfig, section: str) -> int:
    """A section's frequency in env steps, rounded down to whole vectorised steps (0 = off)."""
    freq, n = int(getattr(cfg, section).freq), cfg.n_envs
    return max(n, freq - freq % n) if freq > 0 else 0


def _due(cfg: TrainConfig, section: str, step: int) -> bool:
    """Whether ``section`` (eval or checkpoint) runs at ``step``: on its period and at the end."""
    freq = _freq(cfg, section)
    return bool(freq and step % freq == 0) or step >= cfg.total_timesteps


def _boundaries(cfg: TrainConfig) -> list[int]:
    """Env-step counts where training pauses (evaluation, checkpoint, the end). A fresh and
    a resumed run advance through the same boundaries, which keeps them identical."""
    total = cfg.total_timesteps
    points = {total}
    for section in ("eval", "checkpoint"):
        freq = _freq(cfg, section)
        if freq > 0:
            points.update(range(freq, total, freq))
    return sorted(points)


class _ProgressBar:
    """A tqdm bar over env steps, kept across learn() chunks, and the SB3 callback feeding it."""

    def __init__(self, total: int, initial: int, enabled: bool) -> None:
        self.bar = None
        if enabled:
            from tqdm import tqdm

            self.bar = tqdm(total=total, initial=initial, unit="step", dynamic_ncols=True, file=sys.stderr)

    def callback(self, total_timesteps: int) -> Any:
        """A fresh SB3 callback for one learn() chunk of a run of ``total_timesteps``."""
        from stable_baselines3.common.callbacks import BaseCallback

        outer = self

        class _CB(BaseCallback):
            def _on_training_start(self) -> None:
                # Progress (learning-rate schedules) against the run's total, not the chunk's.
                self.model._total_timesteps = total_timesteps

            def _on_step(self) -> bool:
                if outer.bar is not None:
                    outer.bar.update(self.model.n_envs)
                return True

        return _CB()

    def postfix(self, **kw: Any) -> None:
        """Show values (last evaluation) next to the bar."""
        if self.bar is not None:
            self.bar.set_postfix(**kw)

    def close(self) -> None:
        """Close the bar."""
        if self.bar is not None:
            self.bar.close()
