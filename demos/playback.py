"""Play demonstrations back in simulation, robomimic-style.

Two modes (robomimic's `playback_dataset.py` semantics):

- "states": reset the env to every stored state in turn (and render it). The reported
  divergence is how far the observation rebuilt from the stored state is from the
  stored observation: a check that states and observations agree (NaN, not checked,
  when the env adds observation noise).
- "actions": reset to the episode's first state, then apply the stored actions open
  loop. After every step the env state is compared with the recorded state of the next
  step; the divergence is the largest absolute difference over all state entries and
  steps (an infinity norm; robomimic prints an L2 norm). Our envs are deterministic, so
  for demos recorded by `record_demos` it is 0 (the tests require <= 1e-6 on every task).

Before each episode the env is reset with the demo's recorded seed, so per-episode
randomisation (domain randomisation draws) is the same as when it was recorded, and
the first state is then restored exactly. A `ReplayDivergenceWarning` names the first
step where the divergence exceeds `threshold`.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from demos.errors import DemoFileError
from demos.format import DemoFile

__all__ = ["MODES", "EpisodeReplay", "ReplayDivergenceWarning", "ReplayResult", "replay"]

MODES = ("states", "actions")


class ReplayDivergenceWarning(UserWarning):
    """Playback left the recorded trajectory (or the model differs from the recorded one)."""


@dataclass
class EpisodeReplay:
    """Outcome of replaying one demo."""

    name: str
    steps: int
    max_divergence: float
    first_exceeded_step: int | None  # first step whose divergence exceeds the threshold
    seconds: float


@dataclass
class ReplayResult:
    """Outcome of `replay`: per-episode results and throughput."""

    path: Path
    mode: str
    threshold: float
    episodes: list[EpisodeReplay] = field(default_factory=list)
    video: Path | None = None
    frames: int = 0
    seconds: float = 0.0

    @property
    def steps(self) -> int:
        """Steps replayed over all episodes."""
        return sum(e.steps for e in self.episodes)

    @property
    def max_divergence(self) -> float:
        """Largest divergence over all replayed episodes."""
        return max((e.max_divergence for e in self.episodes if not np.isnan(e.max_divergence)), default=0.0)

    @property
    def ok(self) -> bool:
        """True when no episode exceeded the threshold."""
        return all(e.first_exceeded_step is None for e in self.episodes)

    @property
    def steps_per_second(self) -> float:
        """Replayed steps per wall-clock second (including rendering, if any)."""
        return self.steps / self.seconds if self.seconds > 0 else 0.0


def replay(
    path: str | Path,
    mode: str = "states",
    episodes: Sequence[int | str] | None = None,
    *,
    video: str | Path | None = None,
    camera: str = "front",
    video_size: tuple[int, int] = (240, 320),
    threshold: float = 1e-6,
    expected_env: str | None = None,
    progress: bool = False,
) -> ReplayResult:
    """Replay demos of `path` in their env (see module doc for the two modes).

    episodes: demo indices or names (default: all). video: write one mp4 with a frame per
    step (the state before each action) from `camera` at `video_size` (height, width).
    Raises DemoFileError for files without simulator states (real-robot imports).
    """
    if mode not in MODES:
        raise ValueError(f"unknown replay mode {mode!r}; valid modes: {', '.join(MODES)}")
    if threshold < 0:
        raise ValueError(f"threshold must be >= 0, got {threshold}")
    import envs

    result = ReplayResult(path=Path(path), mode=mode, threshold=float(threshold))
    with DemoFile(path, expected_env=expected_env) as demos:
        names = demos.demo_names if episodes is None else [demos.demo_name(e) for e in episodes]
        for name in names:
            if not demos.has_states(name):
                raise DemoFileError(
                    demos.path,
                    f"{name} has no simulator states (a real-robot import?); replay needs data/{name}/states",
                )
        env = envs.make(demos.env_id, **demos.env_kwargs)
        u = env.unwrapped
        if camera not in u.camera_names:
            env.close()
            raise ValueError(f"unknown camera {camera!r}; valid cameras: {list(u.camera_names)}")
        writer = None
        if video is not None:
            from common.video import Mp4Writer

            writer = Mp4Writer(video, 1.0 / float(u.control_dt))
        vid_h, vid_w = video_size
        bar = None
        if progress:
            from tqdm import tqdm

            bar = tqdm(total=len(names), desc=f"replay ({mode})", unit="ep", dynamic_ncols=True)
        t_start = time.perf_counter()
        try:
            for name in names:
                ep = demos.episode(name, images=False)
                t0 = time.perf_counter()
                if ep.model_file is not None and ep.model_file != u.model_xml:
                    warnings.warn(
                        f"{demos.path}: {name} was recorded with a different MJCF model than "
                        f"{demos.env_id} builds now; replay may diverge",
                        ReplayDivergenceWarning,
                        stacklevel=2,
                    )
                seed = ep.attrs.get("seed")
                env.reset(seed=int(seed) if seed is not None else None)
                states = ep.states
                assert states is not None
                if states.shape[1] != u.state_size:
                    raise DemoFileError(
                        demos.path,
                        f"{name}/states has width {states.shape[1]}, {demos.env_id} expects {u.state_size}",
                    )
                div = np.zeros(ep.num_samples)
                if mode == "states":
                    stored = ep.obs.get("observation")
                    dr = getattr(u, "randomization", None)
                    if stored is None or (dr is not None and dr.observation_noise_std > 0):
                        stored = None  # noisy observations cannot be rebuilt exactly: no check
                        div[:] = np.nan
                    for t in range(ep.num_samples):
                        u.set_state(states[t])
                        if writer is not None:
                            writer.write(u.render_camera(camera, width=vid_w, height=vid_h))
                        if stored is not None:
                            div[t] = float(np.max(np.abs(u.obs_builder.build(u.data) - stored[t])))
                    what = "observation rebuilt from the stored state differs"
                else:
                    u.set_state(states[0])
                    for t in range(ep.num_samples):
                        if writer is not None:
                            writer.write(u.render_camera(camera, width=vid_w, height=vid_h))
                        env.step(ep.actions[t])
                        if t + 1 < ep.num_samples:
                            div[t] = float(np.max(np.abs(u.get_state() - states[t + 1])))
                    what = "playback diverged"
                over = np.flatnonzero(div > threshold)  # NaN (not checked) never exceeds
                first = int(over[0]) if over.size else None
                if first is not None:
                    warnings.warn(
                        f"{name}: {what} by {div[first]:.3g} at step {first} (threshold {threshold:g}); "
                        f"max {div.max():.3g}",
                        ReplayDivergenceWarning,
                        stacklevel=2,
                    )
                result.episodes.append(
                    EpisodeReplay(
                        name=name,
                        steps=ep.num_samples,
                        max_divergence=float(div.max()),
                        first_exceeded_step=first,
                        seconds=time.perf_counter() - t0,
                    )
                )
                if bar is not None:
                    bar.update(1)
            if writer is not None:
                result.frames = writer.frames
                result.video = writer.close()
                writer = None
        finally:
            if writer is not None:
                writer.abort()
            if bar is not None:
                bar.close()
            env.close()
            result.seconds = time.perf_counter() - t_start
    return result
