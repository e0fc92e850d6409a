"""Episodes for skill boundary detection: from demonstration HDF5 files or plain mp4 videos.

A `SegEpisode` holds what the detector and the models need for one episode: camera
frames at the model resolution, the actions (recorded, or labelled by inverse dynamics
for a video), the robot's proprioception when known, low-dimensional observations (for
behaviour cloning), and the expert's phase labels when known. Phase labels are used for
*evaluation only*: nothing in the detector reads them.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from common.video import iter_mp4

__all__ = [
    "PROPRIO_DIM",
    "proprio_dim",
    "SegEpisode",
    "gripper_events",
    "load_episodes",
    "load_hdf5_episodes",
    "load_mp4_episode",
    "resize_frames",
    "split_episodes",
    "true_boundaries",
]


def proprio_dim(env_id: str | None = None, env_kwargs: dict[str, Any] | None = None) -> int:
    """Width of the proprioception (the robot part of the observation) a demo file recorded.

    From the robot and observation layout the file names (`demos.trajectory.recorded_robot`): 15 for
    the Panda in the "joint" layout (8 + 7 joints), 14 for the UR5e, 17 in the robot-independent
    "tcp" layout; files that name neither are the default robot's "joint" layout.
    """
    from demos.trajectory import recorded_robot
    from envs.observation import robot_fields
    from sim_assets import load_robot

    robot, layout = recorded_robot(env_id, env_kwargs)
    return sum(n for _, n in robot_fields(len(load_robot(robot).arm.joints), layout))


def _file_proprio_dim(env_id: str | None, env_kwargs: dict[str, Any] | None) -> int | None:
    """`proprio_dim` of a demo file; None (the whole observation vector) for a file from elsewhere.

    A dataset imported from another stack (a LeRobot dataset's ``observation.state``) names no
    skillstack env or robot: its observation vector is all robot state.
    """
    try:
        return proprio_dim(env_id, env_kwargs)
    except ValueError:
        if env_id and not str(env_id).startswith("skillstack/") and not (env_kwargs or {}).get("robot"):
            return None
        raise


# The default robot's "joint" layout (files recorded before robots were data); a file's own is `proprio_dim`.
PROPRIO_DIM = proprio_dim()


@dataclass
class SegEpisode:
    """One episode for segmentation (see module docstring). Arrays share the first dimension T."""

    name: str
    images: dict[str, np.ndarray]
    actions: np.ndarray | None = None
    proprio: np.ndarray | None = None
    low_dim: dict[str, np.ndarray] = field(default_factory=dict)
    states: np.ndarray | None = None
    phases: np.ndarray | None = None
    phase_names: tuple[str, ...] | None = None
    env_id: str | None = None
    actions_inferred: bool = False

    @property
    def length(self) -> int:
        """Number of steps T."""
        return len(next(iter(self.images.values())))

    @property
    def true_boundaries(self) -> list[int] | None:
        """Expert phase changes (evaluation only), or None when the phases are unknown."""
        return None if self.phases is None else true_boundaries(self.phases)

    @property
    def task(self) -> str:
        """Short task name (e.g. "PandaPickPlace"), "video" when unknown."""
        return (self.env_id or "video").split("/")[-1].replace("-v0", "")


def true_boundaries(phases: Sequence[int] | np.ndarray) -> list[int]:
    """Indices t > 0 where the phase label changes (the first step of each new phase)."""
    p = np.asarray(phases)
    return [int(t) for t in np.nonzero(p[1:] != p[:-1])[0] + 1]


def gripper_events(actions: np.ndarray, dim: int = -1, threshold: float = 0.0) -> list[int]:
    """The "info" signal: steps t > 0 where the gripper command crosses `threshold` (open <-> close)."""
    a = np.asarray(actions)
    if a.ndim != 2 or a.shape[0] == 0:
        raise ValueError(f"actions must be (T, A) with T > 0, got {a.shape}")
    state = a[:, dim] > threshold
    return [int(t) for t in np.nonzero(state[1:] != state[:-1])[0] + 1]


def resize_frames(frames: np.ndarray, size: int) -> np.ndarray:
    """uint8 (T, H, W, 3) -> (T, size, size, 3) (area interpolation; unchanged when already that size)."""
    frames = np.asarray(frames)
    if frames.dtype != np.uint8 or frames.ndim != 4 or frames.shape[-1] != 3:
        raise ValueError(f"frames must be uint8 (T, H, W, 3), got {frames.dtype} {frames.shape}")
    if frames.shape[1:3] == (size, size):
        return frames
    import cv2

    return np.stack([cv2.resize(f, (size, size), interpolation=cv2.INTER_AREA) for f in frames])


def load_hdf5_episodes(
    path: str | Path,
    cameras: Sequence[str],
    image_size: int,
    episodes: Iterable[int] | None = None,
    *,
    proprio: bool = True,
) -> list[SegEpisode]:
    """Episodes of a demonstration file with frames of `cameras` resized to `image_size`.

    Raises `DemoFileError` (bad file) or ValueError naming a camera the file lacks.
    """
    from demos import DemoFile

    out = []
    with DemoFile(path) as f:
        names = f.demo_names if episodes is None else [f.demo_name(int(i)) for i in episodes]
        n_proprio = _file_proprio_dim(f.env_id, f.env_kwargs)
        for name in names:
            ep = f.episode(name)
            keys = [k for k in ep.obs if k.endswith("_image")]
            imgs = {}
            for cam in cameras:
                key = f"{cam}_image"
                if key not in ep.obs:
                    raise ValueError(
                        f"{path}: {name} has no camera {cam!r} (has {[k[:-6] for k in keys] or 'no cameras'}); "
                        f"record with --cameras {','.join(cameras)}"
                    )
                imgs[cam] = resize_frames(ep.obs[key], image_size)
            low = {k: np.asarray(v, dtype=np.float32) for k, v in ep.obs.items() if not k.endswith("_image")}
            prop = None
            if proprio and "observation" in low and (n_proprio is None or low["observation"].shape[1] >= n_proprio):
                prop = low["observation"][:, :n_proprio].copy()
            out.append(
                SegEpisode(
                    name=f"{Path(path).name}:{name}",
                    images=imgs,
                    actions=np.asarray(ep.actions, dtype=np.float32),
                    proprio=prop,
                    low_dim=low,
                    states=ep.states,
                    phases=None if ep.phases is None else np.asarray(ep.phases),
                    phase_names=ep.phase_names,
                    env_id=f.env_id,
                )
            )
    return out


def load_mp4_episode(path: str | Path, camera: str, image_size: int) -> SegEpisode:
    """A plain video as one episode: frames under `camera`, resized; no actions (label them with inverse dynamics)."""
    import cv2

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such video file")
    frames = [cv2.resize(rgb, (image_size, image_size), interpolation=cv2.INTER_AREA) for rgb in iter_mp4(path)]
    if len(frames) < 2:
        raise ValueError(f"{path}: video has {len(frames)} readable frame(s); at least 2 are needed")
    return SegEpisode(name=path.name, images={camera: np.stack(frames)})


def load_episodes(path: str | Path, cameras: Sequence[str], image_size: int, video_camera: str | None = None) -> list[SegEpisode]:
    """HDF5 demo file -> its episodes; .mp4 -> one episode under `video_camera` (default the first camera)."""
    p = Path(path)
    if p.suffix.lower() == ".mp4":
        return [load_mp4_episode(p, video_camera or cameras[0], image_size)]
    return load_hdf5_episodes(p, cameras, image_size)


def split_episodes(episodes: Sequence[Any], fractions: Sequence[float], seed: int = 0) -> list[list[Any]]:
    """Shuffle (seeded) and split into len(fractions) parts of the given fractions (last takes the rest)."""
    if not fractions or any(f < 0 for f in fractions) or sum(fractions) > 1.0 + 1e-9:
        raise ValueError(f"fractions must be non-negative and sum to at most 1, got {list(fractions)}")
    idx = np.random.default_rng(seed).permutation(len(episodes))
    parts, start = [], 0
    for i, frac in enumerate(fractions):
        end = len(episodes) if i == len(fractions) - 1 else start + int(round(frac * len(episodes)))
        parts.append([episodes[j] for j in idx[start:end]])
        start = end
    return parts
