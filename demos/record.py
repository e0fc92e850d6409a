"""Record demonstrations: roll a policy out in a skillstack env and write them crash-safely.

`record_demos` is what `skillstack record` calls. Each step stores the simulator state
*before* the action (`env.unwrapped.get_state()`, enough for an exact reset), the dict
observation before and after it, the action as applied, reward and done flag, the
scripted expert's phase when the policy is an expert, and camera frames when asked.
Episodes are buffered in memory and committed only when they end (see
`demos.writer`), so an interrupted recording keeps every finished episode.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from demos.errors import UnknownPolicyError
from demos.format import IMAGE_SUFFIX, Episode, make_env_args
from demos.writer import DemoWriter

__all__ = ["POLICY_NAMES", "RecordResult", "record_demos", "resolve_policy", "video_dir_for"]

POLICY_NAMES = ("expert", "random", "skill:NAME")
DEFAULT_IMAGE_SIZE = (84, 84)  # (height, width), robomimic's usual image size
DEFAULT_VIDEO_SIZE = (240, 320)  # (height, width)


@dataclass
class RecordResult:
    """What a recording produced (returned by `record_demos`)."""

    path: Path
    env_id: str
    episodes: int
    steps: int
    successes: int
    seconds: float
    commit_seconds: float
    videos: list[Path] = field(default_factory=list)

    @property
    def success_rate(self) -> float:
        """Fraction of episodes whose last step had info["is_success"] == 1."""
        return self.successes / self.episodes if self.episodes else 0.0

    @property
    def steps_per_second(self) -> float:
        """Recorded environment steps per wall-clock second (including writing)."""
        return self.steps / self.seconds if self.seconds > 0 else 0.0


class _Policy:
    """Uniform wrapper: reset(), act(obs) -> action, phase labels, optional early stop.

    Phase labels come from `PHASES` + `phase_index` (scripted experts: fixed codes) or,
    for policies exposing only a `phase` string (scripted library skills), from the
    order in which phase names first appear in the episode.
    """

    name = "callable"

    def __init__(
        self,
        fn: Callable[[Any], Any],
        reset: Callable[[], None] | None = None,
        source: Any = None,
        stops_when_done: bool = False,
    ):
        self._fn = fn
        self._reset = reset
        self._source = source
        self._stops = stops_when_done
        names = getattr(source, "PHASES", None)
        self._fixed = tuple(str(n) for n in names) if names else None
        self._dynamic = self._fixed is None and isinstance(getattr(source, "phase", None), str)
        self.phase_names: tuple[str, ...] | None = self._fixed

    @property
    def labels_phases(self) -> bool:
        """Whether this policy provides per-step phase labels."""
        return self._fixed is not None or self._dynamic

    def reset(self) -> None:
        if self._reset is not None:
            self._reset()
        if self._dynamic:
            self.phase_names = ()

    def act(self, obs: Any) -> Any:
        return self._fn(obs)

    def phase_index(self) -> int:
        """Code of the phase that produced the last action (-1 when unknown)."""
        if self._fixed is not None:
            idx = getattr(self._source, "phase_index", None)
            return -1 if idx is None else int(idx)
        if self._dynamic:
            name = str(getattr(self._source, "phase", ""))
            names = self.phase_names or ()
            if name not in names:
                self.phase_names = names = names + (name,)
            return names.index(name)
        return -1

    @property
    def done(self) -> bool:
        """True when a skill policy reports it has finished (ends the episode early)."""
        return self._stops and bool(getattr(self._source, "done", False))


def resolve_policy(
    policy: str | Callable[[Any], Any] | Any, env: Any, seed: int = 0, library: str | Path | None = None
) -> _Policy:
    """Turn a policy spec into an object with reset/act/phase_index.

    policy: "expert" (the env's scripted expert, with phase labels), "random" (uniform
    actions from the seeded action space), "skill:NAME" or "skill:NAME@VERSION" (a skill
    from the library registry at `library`, bound to `env`; the episode ends early when
    the skill reports done), an object with `.act(obs)` (and optionally `.reset()`, `.PHASES`,
    `.phase_index`), or a plain callable obs -> action.
    """
    if isinstance(policy, str):
        if policy == "expert":
            from envs.experts import make_expert

            expert = make_expert(env)
            p = _Policy(expert.act, expert.reset, expert)
            p.name = "expert"
            return p
        if policy == "random":
            space = env.action_space
            space.seed(seed)
            p = _Policy(lambda obs: space.sample())
            p.name = "random"
            return p
        if policy.startswith("skill:"):
            p = _skill_policy(policy[len("skill:") :], env, library)
            p.name = policy
            return p
        raise UnknownPolicyError(f"unknown policy {policy!r}; valid: {', '.join(POLICY_NAMES)} or a callable")
    if hasattr(policy, "act") and callable(policy.act):
        p = _Policy(policy.act, getattr(policy, "reset", None), policy)
        p.name = type(policy).__name__
        return p
    if callable(policy):
        p = _Policy(policy)
        p.name = getattr(policy, "__name__", "callable")
        return p
    raise UnknownPolicyError(f"policy must be a name ({', '.join(POLICY_NAMES)}) or a callable, got {type(policy).__name__}")


def _skill_policy(ref: str, env: Any, library: str | Path | None) -> _Policy:
    """A policy from the skill library registry (`skill:NAME[@VERSION]`), bound to `env`."""
    if not ref:
        raise UnknownPolicyError("policy 'skill:' needs a skill name, e.g. skill:reach_goal")
    from skill_library.registry import SkillLibrary

    skill = SkillLibrary(library).load(ref)  # SkillNotFoundError (a ValueError) names the library
    skill.bind(env)  # checks the skill fits this env
    return _Policy(skill, skill.reset, skill, stops_when_done=True)


def video_dir_for(out: str | Path) -> Path:
    """Folder where per-demo mp4 files of a recording live: `<stem>_videos/` next to the file."""
    out = Path(out)
    return out.with_name(f"{out.stem}_videos")


def _parse_size(size: int | Sequence[int]) -> tuple[int, int]:
    if isinstance(size, (int, np.integer)):
        return int(size), int(size)
    h, w = (int(v) for v in size)
    return h, w


def record_demos(
    env_id: str,
    policy: str | Callable[[Any], Any] | Any = "expert",
    episodes: int = 10,
    out: str | Path = "demos.hdf5",
    *,
    seed: int = 0,
    cameras: Sequence[str] = (),
    image_size: int | Sequence[int] = DEFAULT_IMAGE_SIZE,
    video: bool = False,
    video_camera: str | None = None,
    video_size: int | Sequence[int] = DEFAULT_VIDEO_SIZE,
    env_kwargs: Mapping[str, Any] | None = None,
    overwrite: bool = False,
    max_steps: int | None = None,
    image_compression: str | None = None,
    library: str | Path | None = None,
    durable: bool = True,
    progress: bool = True,
    perception: bool | Mapping[str, Any] = False,
) -> RecordResult:
    """Roll out `policy` for `episodes` episodes in `env_id` and write them to `out`.

    Episode i is reset with seed `seed + i` (stored as the demo's `seed` attribute), so a
    recording is reproducible. `cameras` adds `obs/<cam>_image` and `next_obs/<cam>_image`
    frames (uint8, `image_size` as (height, width) or one int). `video=True` writes
    `<stem>_videos/demo_N.mp4` (camera `video_camera`, default the first of `cameras` or
    "front"; one frame per step, before the action). `max_steps` cuts episodes short of
    the env's time limit. `library` is the skill library for "skill:NAME" policies (default:
    $SKILLSTACK_LIBRARY or ~/.skillstack/skills). An existing `out` is an error unless
    `overwrite=True`. durable=False skips the fsync per episode (see `DemoWriter`).
    The recording can be interrupted at any time: `out` then holds every finished episode.
    `perception=True` (or PerceivedPoseWrapper keyword arguments: camera, width, height) runs the
    policy on object poses from the rendered camera (perception.wrapper): `obs/observation` is
    what the policy saw, `obs/true_observation`, `obs/object_poses_true`, `obs/object_poses_perceived`
    and `obs/object_pose_age` keep both sides (see `perception.wrapper.pose_record`).
    """
    import envs

    if episodes < 0:
        raise ValueError(f"episodes must be >= 0, got {episodes}")
    if max_steps is not None and max_steps < 1:
        raise ValueError(f"max_steps must be >= 1, got {max_steps}")
    kwargs = dict(env_kwargs or {})
    kwargs.pop("render_mode", None)
    env_args = make_env_args(env_id, kwargs)  # validates JSON-ability before anything is written
    env = envs.make(env_id, **kwargs)
    perception_attrs = {}
    if perception:
        from perception.wrapper import PerceivedPoseWrapper, pose_record

        opts = dict(perception) if isinstance(perception, Mapping) else {}
        try:
            env = PerceivedPoseWrapper(env, **opts)
        except BaseException:
            env.close()
            raise
        perception_attrs = {"perception": json.dumps({"camera": env.sim_camera.camera_name, "width": env.sim_camera.width,
                                                      "height": env.sim_camera.height, "objects": list(env.objects)})}
    u = env.unwrapped
    cameras = [c for c in (cameras or ()) if c]
    for cam in cameras + ([video_camera] if video_camera else []):
        if cam not in u.camera_names:
            env.close()
            raise ValueError(f"unknown camera {cam!r} for {env_id}; valid cameras: {list(u.camera_names)}")
    if len(set(cameras)) != len(cameras):
        env.close()
        raise ValueError(f"camera listed twice in {cameras}")
    img_h, img_w = _parse_size(image_size)
    vid_h, vid_w = _parse_size(video_size)
    vcam = video_camera or (cameras[0] if cameras else "front")
    reuse_video = vcam in cameras and (vid_h, vid_w) == (img_h, img_w)
    try:
        pol = resolve_policy(policy, env, seed, library)
    except BaseException:
        env.close()
        raise

    out = Path(out)
    writer = DemoWriter(
        out,
        env_args,
        overwrite=overwrite,
        attrs={"source": "sim", "policy": pol.name, "cameras": json.dumps(cameras), **perception_attrs},
        image_compression=image_compression,
        durable=durable,
    )
    result = RecordResult(path=out, env_id=env_id, episodes=0, steps=0, successes=0, seconds=0.0, commit_seconds=0.0)
    vdir = video_dir_for(out)
    fps = 1.0 / float(u.control_dt)
    t_start = time.perf_counter()
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=episodes, desc=f"record {env_id.split('/')[-1]}", unit="ep", dynamic_ncols=True)

    def render_all() -> dict[str, np.ndarray]:
        return {c: u.render_camera(c, width=img_w, height=img_h) for c in cameras}

    try:
        for i in range(episodes):
            ep_seed = int(seed) + i
            obs, info = env.reset(seed=ep_seed)
            obs_info = info  # the info that goes with `obs` (perception: its true and perceived poses)
            pol.reset()
            states: list[np.ndarray] = []
            actions: list[np.ndarray] = []
            rewards: list[float] = []
            dones: list[int] = []
            phases: list[int] = []
            obs_l: list[dict[str, np.ndarray]] = []
            next_l: list[dict[str, np.ndarray]] = []
            frames = render_all()
            video_writer = None
            if video:
                from common.video import Mp4Writer

                video_writer = Mp4Writer(vdir / f"demo_{writer.num_episodes}.mp4", fps)
            success = 0.0
            t = 0
            try:
                while True:
                    states.append(u.get_state())
                    if video_writer is not None:
                        video_writer.write(frames[vcam] if reuse_video else u.render_camera(vcam, width=vid_w, height=vid_h))
                    action = np.asarray(pol.act(obs)).copy()
                    if pol.labels_phases:
                        phases.append(pol.phase_index())
                    next_obs, reward, terminated, truncated, info = env.step(action)
                    next_frames = render_all()
                    t += 1
                    done = bool(terminated or truncated) or (max_steps is not None and t >= max_steps) or pol.done
                    actions.append(action)
                    rewards.append(float(reward))
                    dones.append(int(done))
                    o = {k: np.array(v, copy=True) for k, v in obs.items()}
                    n = {k: np.array(v, copy=True) for k, v in next_obs.items()}
                    if perception:
                        o.update(pose_record(obs_info, env.objects))
                        n.update(pose_record(info, env.objects))
                        obs_info = info
                    for cam in cameras:
                        o[cam + IMAGE_SUFFIX] = frames[cam]
                        n[cam + IMAGE_SUFFIX] = next_frames[cam]
                    obs_l.append(o)
                    next_l.append(n)
                    obs, frames = next_obs, next_frames
                    success = float(info.get("is_success", 0.0))
                    if done:
                        break
                video_path = video_writer.close() if video_writer is not None else None
            except BaseException:
                if video_writer is not None:
                    video_writer.abort()
                raise
            episode = Episode(
                actions=np.stack(actions),
                rewards=np.asarray(rewards, dtype=np.float64),
                dones=np.asarray(dones, dtype=np.int64),
                obs={k: np.stack([o[k] for o in obs_l]) for k in obs_l[0]},
                next_obs={k: np.stack([o[k] for o in next_l]) for k in next_l[0]},
                states=np.stack(states),
                phases=np.asarray(phases, dtype=np.int32) if pol.labels_phases else None,
                phase_names=pol.phase_names,
                model_file=u.model_xml,
                attrs={"seed": ep_seed, "success": bool(success >= 0.5), "policy": pol.name},
            )
            if video_path is not None:
                episode.attrs["video"] = str(video_path.relative_to(out.parent)) if video_path.is_relative_to(out.parent) else str(video_path)
                result.videos.append(video_path)
            writer.add_episode(episode)
            result.episodes += 1
            result.steps += episode.num_samples
            result.successes += int(success >= 0.5)
            if bar is not None:
                bar.update(1)
                bar.set_postfix(success=f"{result.successes}/{result.episodes}")
    finally:
        if bar is not None:
            bar.close()
        writer.close()
        env.close()
        result.seconds = time.perf_counter() - t_start
        result.commit_seconds = writer.commit_seconds
    return result
