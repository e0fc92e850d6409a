"""Import real-robot recordings (ROS 2 bags) into the demonstration layout.

A bag (a rosbag2 folder with metadata.yaml, or a bare `.mcap` / `.db3` file; MCAP and
sqlite3 storage) is read with the pure-Python `rosbags` library (`demos.bag_read`), so no
ROS install is needed. One bag becomes one demo.

Joint states, two ways:

- through a **robot profile** (`profile="fr3"`, the same YAML files the ROS bridge drives the
  robot with, `demos.bag_profile`): every joint-state topic of the profile (franka_ros2: the
  arm on /franka/joint_states at 1 kHz, the gripper on /fr3_gripper/joint_states at 50 Hz) is
  read and merged by name, the driver's names mapped onto the robot description's. The demo's
  clock is the first topic's (the arm's): each control tick is the arm sample nearest to it,
  so arm joints are exactly as published, and the other topics are interpolated onto those
  stamps. A topic carrying joints the profile does not map is refused (a bag of another robot);
- without a profile, one JointState topic (`joint_topic`, default /joint_states) whose joints are
  matched to the Panda's by name (`match_joints`) and resampled onto a uniform grid.

The gripper width is what the robot description defines from the finger joints (its width
map: the Franka Hand's fingers travel half the width each). Object poses come from
geometry_msgs/PoseStamped on /objects/<name>/pose and from tf2 frames object_<name> on
/tf and /tf_static (any chain of transforms down to the profile's base frame; the profile's
static frames count too), interpolated onto the ticks (slerp for orientations). Images from
sensor_msgs/Image and CompressedImage topics (the latest frame at or before each tick),
resized to `image_size` when given.

What is stored per demo (T = ticks - 1 samples; obs = ticks 0..T-1, next_obs = ticks 1..T):
`joint_pos` / `joint_vel` (the description's joints, arm then gripper; velocities as
published, else by finite differences), `robot_state` (the robot part of the env observation,
built by `envs.observation.ObservationBuilder`), through a profile `observation` (the whole env
observation vector, with the objects of the env `env_id` names from the bag's poses: what
behaviour cloning and segmentation read; imports without a profile keep their layout of old),
`<name>_pose` (position + quaternion wxyz in the base frame) and `<camera>_image`. `actions` are what the env's joint action mode would have
commanded; `rewards` are 0; there are no simulator `states`.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from demos.bag_poses import angular_velocity_local, interp_pose
from demos.bag_profile import BagProfile, JointSource, load_bag_profile
from demos.bag_read import BagContents, camera_key, read_bag
from demos.errors import BagImportError, OutputExistsError
from demos.format import IMAGE_SUFFIX, Episode, make_env_args
from demos.writer import DemoWriter

__all__ = ["REAL_ROBOT_ENV", "BagImportResult", "import_bag", "match_joints"]

REAL_ROBOT_ENV = "real/panda"  # env_name stored when no --env is given (real/<robot> for other robots)
POSE_SUFFIX = "_pose"


@dataclass
class BagImportResult:
    """What `import_bag` wrote."""

    path: Path
    demos: list[str] = field(default_factory=list)
    samples: list[int] = field(default_factory=list)
    cameras: list[str] = field(default_factory=list)
    objects: list[str] = field(default_factory=list)


def match_joints(
    bag_names: Sequence[str],
    panda_names: Sequence[str],
    joint_map: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """Map Panda joint names to bag joint names: explicit map, exact name, then name suffix.

    Returns {panda_name: bag_name} for every Panda joint that could be matched.
    """
    found: dict[str, str] = {}
    if joint_map:
        for bag_name, panda_name in joint_map.items():
            if panda_name not in panda_names:
                raise BagImportError(f"joint_map targets unknown joint {panda_name!r}; Panda joints: {list(panda_names)}")
            if bag_name in bag_names:
                found[panda_name] = bag_name
    for p in panda_names:
        if p not in found and p in bag_names:
            found[p] = p
    for p in panda_names:
        if p in found:
            continue
        finger = "finger" in p
        k = re.search(r"(\d+)$", p)
        if k is None:
            continue
        pat = re.compile(rf"(^|[_/]){'finger_' if finger else ''}joint_?{k.group(1)}$")
        cands = [b for b in bag_names if pat.search(b) and (("finger" in b) == finger) and b not in found.values()]
        if len(cands) == 1:
            found[p] = cands[0]
    return found


@dataclass(frozen=True)
class _Plan:
    """How to read joints from a bag: topics, which description joint each bag joint is, the clock."""

    profile: BagProfile | None
    description: Any  # sim_assets.RobotDescription
    sources: tuple[JointSource, ...]
    clock: bool  # tick on the first source's stamps (profile) or on a uniform grid
    joint_map: Mapping[str, str] | None  # legacy --joint-map
    base_frame: str
    frames: Mapping[str, tuple[np.ndarray, np.ndarray]]  # static frames: (translation, quaternion wxyz) in the base frame


def _joint_series(plan: _Plan, contents: BagContents) -> tuple[dict[str, Any], dict[str, str], list[str]]:
    """{description joint: series}, {description joint: 'topic:bag name'} and missing gripper joints."""
    bag = contents.path
    desc = plan.description
    series, names = {}, {}
    if plan.profile is None:  # one topic, names matched to the Panda's
        topic = plan.sources[0].topic
        found = contents.joints[topic]
        mapping = match_joints(list(found), desc.joint_names, plan.joint_map)
        missing_arm = [n for n in desc.arm.joints if n not in mapping]
        if missing_arm:
            raise BagImportError(
                f"{bag}: {topic} lacks Panda arm joints {missing_arm}; joints in the bag: {sorted(found)} "
                "(pass --profile NAME for a robot with a ROS 2 profile, or map them with --joint-map BAG_NAME=PANDA_JOINT)"
            )
        for d, b in mapping.items():
            series[d], names[d] = found[b], f"{topic}:{b}"
        _check_finite(series, names, bag)
        return series, names, [n for n in desc.gripper.joints if n not in mapping]
    prof = plan.profile
    for src in plan.sources:
        found = contents.joints[src.topic]
        unknown = sorted(n for n in found if n not in prof.joint_map)
        if unknown:
            raise BagImportError(
                f"{bag}: {src.topic} carries joints {unknown} that robot profile {prof.name!r} does not map "
                f"(its joints: {list(prof.joint_map)}); is the bag from another robot? ({prof.source})"
            )
        lacking = [j for j in src.joints if j not in found]
        if lacking:
            raise BagImportError(f"{bag}: {src.topic} lacks joints {lacking} of robot profile {prof.name!r}; it carries {sorted(found)}")
        for b in src.joints:
            d = prof.joint_map[b]
            series[d], names[d] = found[b], f"{src.topic}:{b}"
    _check_finite(series, names, bag)
    return series, names, []


def _check_finite(series: Mapping[str, Any], names: Mapping[str, str], bag: Path) -> None:
    """Refuse NaN/inf joint positions (a demo must not teach them), naming the topic, joint and time."""
    for d, s in series.items():
        bad = ~np.isfinite(s.position)
        if bad.any():
            topic, joint = names[d].split(":", 1)
            raise BagImportError(f"{bag}: {topic}: joint {joint} has {int(bad.sum())} NaN/inf position(s), "
                                 f"the first {s.times[bad][0]:.3f} s into the bag")  # fmt: skip


def _ticks(plan: _Plan, series: Mapping[str, Any], dt: float, bag: Path) -> np.ndarray:
    """Tick times (s): a uniform grid at dt over the span all joints share, snapped to the clock topic's stamps."""
    t0 = max(s.times[0] for s in series.values())
    t1 = min(s.times[-1] for s in series.values())
    clock = series[plan.description.joint_names[0]].times if plan.clock else np.empty(0)
    clock = clock[(clock >= t0 - 1e-12) & (clock <= t1 + 1e-12)]
    if len(clock):
        t0 = clock[0]  # the first arm sample where every joint has data
    n = int(np.floor((t1 - t0) / dt + 1e-9)) + 1 if t1 >= t0 else 0
    grid = t0 + dt * np.arange(max(n, 0))
    if len(clock) > 1 and n:  # each tick on the arm sample nearest to it
        i = np.clip(np.searchsorted(clock, grid), 1, len(clock) - 1)
        i -= (grid - clock[i - 1]) < (clock[i] - grid)
        grid = clock[np.unique(i)]
    if len(grid) < 2:
        raise BagImportError(f"{bag}: joint states span {max(t1 - t0, 0.0):.3f} s together, too short for two ticks at {1 / dt:g} Hz")
    if np.max(np.abs(np.diff(grid) - dt)) > 0.5 * dt:
        warnings.warn(f"{bag}: ticks are up to {np.max(np.abs(np.diff(grid) - dt)) * 1e3:.0f} ms off the {dt * 1e3:.0f} ms period "
                      f"(the arm's topic {plan.sources[0].topic} has gaps or publishes slower than {1 / dt:g} Hz)", stacklevel=4)  # fmt: skip
    return grid


def _object_poses(plan: _Plan, contents: BagContents, ticks: np.ndarray) -> dict[str, tuple[np.ndarray, np.ndarray, str]]:
    """{object: (position (N, 3), quaternion (N, 4) wxyz, source)} in the base frame at the ticks."""
    from demos.bag_poses import quat_mul, quat_rotate

    bag, base, tf = contents.path, plan.base_frame, contents.tf
    for frame, (t, q) in plan.frames.items():  # the profile's static frames, unless the bag has them
        if frame not in tf.links:
            tf.add(base, frame, 0.0, t, q, True, plan.profile.source if plan.profile else "the default frames")
    out = {}
    for name, (topic, frame, times, pos, quat) in contents.poses.items():
        p, q = interp_pose(times, pos, quat, ticks)
        if frame not in ("", base):
            fp, fq = tf.lookup(frame, base, ticks, f"{bag}: {topic}")
            p, q = fp + quat_rotate(fq, p), quat_mul(fq, q)
        out[name] = (p, q, topic)
    for name, frame in contents.tf_objects.items():
        if name in out:
            raise BagImportError(f"{bag}: object {name!r} has a pose topic ({out[name][2]}) and a tf frame ({frame}); keep one")
        p, q = tf.lookup(frame, base, ticks, f"{bag}: /tf")
        out[name] = (p, q, f"tf:{frame}")
    for name, (p, q, source) in out.items():
        if not (np.all(np.isfinite(p)) and np.all(np.isfinite(q))):
            raise BagImportError(f"{bag}: {source}: the pose of {name!r} has NaN/inf values")
    return out


def _bag_episode(
    bag: Path,
    plan: _Plan,
    rate: float,
    image_topics: Mapping[str, str] | None,
    pose_topics: Mapping[str, str] | None,
    tf_frames: Mapping[str, str] | None,
    image_size: int | None,
    env: Any | None,
    model_file: str,
) -> tuple[Episode, list[str], list[str]]:
    import mujoco

    import sim_assets
    from envs.ik import IKConfig
    from envs.observation import ObservationBuilder, refresh_kinematics
    from envs.robot import Robot

    desc = plan.description
    expect = f" (robot profile {plan.profile.name!r}: {plan.profile.source})" if plan.profile else ""
    contents = read_bag(bag, [s.topic for s in plan.sources], image_topics, pose_topics=pose_topics,
                        tf_frames=tf_frames, image_size=image_size, expect=expect)  # fmt: skip
    series, bag_names, missing = _joint_series(plan, contents)
    dt = 1.0 / rate
    ticks = _ticks(plan, series, dt, bag)
    n_ticks, names = len(ticks), desc.joint_names
    q = np.zeros((n_ticks, len(names)))
    qd = np.zeros((n_ticks, len(names)))
    for j, name in enumerate(names):
        if name not in series:
            continue
        s = series[name]
        q[:, j] = np.interp(ticks, s.times, s.position)
        qd[:, j] = np.interp(ticks, s.times, s.velocity) if np.all(np.isfinite(s.velocity)) else np.gradient(q[:, j], ticks)
    grip = desc.gripper
    n_arm = desc.n_arm_joints
    if len(missing) == 1 and len(grip.joints) == 2:  # one finger published (a mimic joint): the width map gives the other
        have = grip.joints.index(next(n for n in grip.joints if n not in missing))
        other = 1 - have
        scale, offset = np.asarray(grip.width_to_joint_scale), np.asarray(grip.width_to_joint_offset)
        width = (q[:, n_arm + have] - offset[have]) / scale[have]
        q[:, n_arm + other] = offset[other] + scale[other] * width
        qd[:, n_arm + other] = scale[other] * qd[:, n_arm + have] / scale[have]
    elif missing and len(missing) == len(grip.joints):
        warnings.warn(f"{bag}: no gripper joints on {plan.sources[0].topic}; gripper width recorded as 0 "
                      "(pass --profile NAME when the gripper publishes on its own topic)", stacklevel=3)  # fmt: skip
    poses = _object_poses(plan, contents, ticks)

    # The env observation, from the same builder the envs use (objects: the env's, from the bag's poses).
    if env is not None:
        model, robot, builder = env.model, env.robot, env.obs_builder
        objects = tuple(env.objects) if plan.profile is not None else ()  # without a profile: the robot part only, as before
        lacking = [o for o in objects if o not in poses]
        if lacking:
            raise BagImportError(
                f"{bag}: {env.spec.id if env.spec else 'the env'} observes objects {list(objects)} but the bag has no pose of {lacking} "
                f"(expected /objects/<name>/pose PoseStamped or a tf frame object_<name>; poses found: {sorted(poses) or 'none'})"
            )
    else:
        model = sim_assets.load_robot_model(desc)
        robot = Robot.from_model(model, desc)
        builder, objects = ObservationBuilder(model, (), robot), ()
    data = mujoco.MjData(model)
    obj_adr = [(model.joint(f"cube_{o}_joint").qposadr[0], model.joint(f"cube_{o}_joint").dofadr[0]) for o in objects]
    obj_vel = {o: (np.gradient(poses[o][0], ticks, axis=0), angular_velocity_local(poses[o][1], ticks)) for o in objects}
    observation = np.empty((n_ticks, builder.size))
    for k in range(n_ticks):
        data.qpos[robot.arm_qpos] = q[k, :n_arm]
        data.qpos[robot.finger_qpos] = q[k, n_arm:]
        data.qvel[robot.arm_dof] = qd[k, :n_arm]
        data.qvel[robot.finger_dof] = qd[k, n_arm:]
        for o, (qa, da) in zip(objects, obj_adr):
            data.qpos[qa : qa + 3], data.qpos[qa + 3 : qa + 7] = poses[o][0][k], poses[o][1][k]
            data.qvel[da : da + 3], data.qvel[da + 3 : da + 6] = obj_vel[o][0][k], obj_vel[o][1][k]
        refresh_kinematics(model, data)
        observation[k] = builder.build(data)
    robot_size = builder.size - 16 * len(builder.objects)

    # Joint-mode actions, as envs.base's _apply_action interprets them (steps per control period).
    max_step = IKConfig().velocity_scale * robot.qd_max * dt
    actions = np.empty((n_ticks - 1, n_arm + 1))
    actions[:, :n_arm] = np.clip((q[1:, :n_arm] - q[:-1, :n_arm]) / max_step, -1.0, 1.0)
    width = (q[:, n_arm:] - np.asarray(grip.width_to_joint_offset)) @ grip.width_weights()
    actions[:, n_arm] = np.clip(2.0 * width[1:] / grip.max_width - 1.0, -1.0, 1.0)

    tick_obs = {"joint_pos": q, "joint_vel": qd, "robot_state": observation[:, :robot_size]}
    if plan.profile is not None:  # imports through a profile carry the whole env observation (the layout of old stays as it was)
        tick_obs["observation"] = observation
    for name, (p, quat, _) in poses.items():
        tick_obs[name + POSE_SUFFIX] = np.concatenate((p, quat * np.where(quat[:, :1] < 0, -1.0, 1.0)), axis=1)
    for cam, (_, times, frames) in contents.images.items():
        idx = np.clip(np.searchsorted(times, ticks + 1e-9, side="right") - 1, 0, len(frames) - 1)
        tick_obs[cam + IMAGE_SUFFIX] = np.stack([frames[i] for i in idx])
    n = n_ticks - 1
    dones = np.zeros(n, dtype=np.int64)
    dones[-1] = 1
    start_ns = contents.start_ns + int(round(ticks[0] * 1e9))
    episode = Episode(
        actions=actions,
        rewards=np.zeros(n),
        dones=dones,
        obs={k: v[:-1] for k, v in tick_obs.items()},
        next_obs={k: v[1:] for k, v in tick_obs.items()},
        states=None,
        model_file=model_file,
        attrs={
            "source": "ros2_bag",
            "bag": str(bag),
            "storage": contents.storage,
            "rate_hz": float(rate),
            "start_time": start_ns * 1e-9,  # first tick, seconds since 1970
            "start_time_ns": int(start_ns),
            "tick_jitter_max_s": float(np.max(np.abs(np.diff(ticks) - dt))) if n_ticks > 1 else 0.0,
            "action_mode": "joint",
            "robot": desc.name,
            "profile": plan.profile.name if plan.profile else "",
            "base_frame": plan.base_frame,
            "joint_order": list(names),
            "joint_names": {d: bag_names[d].split(":", 1)[1] for d in names if d in bag_names},
            "joint_sources": {d: bag_names[d] for d in names if d in bag_names},
            "missing_joints": missing,
            "objects": {o: src for o, (_, _, src) in poses.items()},
            "observation_objects": list(objects),
        },
    )
    return episode, sorted(contents.images), sorted(poses)


def _plan(profile: str | Path | None, joint_topic: str | None, joint_map: Mapping[str, str] | None) -> _Plan:
    import sim_assets

    if profile is None:
        desc = sim_assets.load_robot("panda")
        topic = joint_topic or "/joint_states"
        world = {"world": (np.zeros(3), np.array([1.0, 0.0, 0.0, 0.0]))}  # skillstack's scene world is the Panda's base
        return _Plan(None, desc, (JointSource(topic, 0.0, desc.joint_names),), False, joint_map, desc.base_frame, world)
    if joint_map:
        raise BagImportError("joint_map/--joint-map is for imports without a profile; a profile maps the joint names itself")
    prof = load_bag_profile(profile)
    sources = prof.sources
    if joint_topic is not None:  # one topic carrying every joint (e.g. the driver's merged /joint_states)
        sources = (JointSource(joint_topic, prof.merged.rate_hz if prof.merged else 0.0, prof.driver_joints),)
    arm = {prof.joint_map[j] for j in sources[0].joints}
    if prof.description.joint_names[0] not in arm:
        raise BagImportError(f"{prof.source}: the first joint-state source {sources[0].topic} must carry the arm (its clock is the demo's)")
    return _Plan(prof, prof.description, sources, True, None, prof.base_frame, prof.frames)


def import_bag(
    bags: str | Path | Sequence[str | Path],
    out: str | Path,
    *,
    env_id: str | None = None,
    profile: str | Path | None = None,
    rate: float | None = None,
    joint_topic: str | None = None,
    image_topics: Sequence[str] | Mapping[str, str] | None = None,
    image_size: int | None = None,
    pose_topics: Sequence[str] | Mapping[str, str] | None = None,
    tf_frames: Mapping[str, str] | None = None,
    joint_map: Mapping[str, str] | None = None,
    overwrite: bool = False,
) -> BagImportResult:
    """Convert ROS 2 bags (one demo each) into a demonstration file at `out` (see the module docstring).

    env_id: the skillstack env the motion belongs to (stored in env_args with
    `action_mode="joint"`, its scene as model_file; its objects' poses fill `observation`).
    profile: a robot profile name (`fr3`, `ur`, `panda_sim`) or YAML path: joint-state topics,
    joint names, base frame. rate: ticks per second (default: the envs' control rate, 25 Hz).
    joint_topic: one JointState topic with every joint (default /joint_states without a profile,
    the profile's topics with one). image_topics: topics (or {topic: camera}); default every image
    topic. image_size: resize frames to this square size. pose_topics: PoseStamped topics (or
    {topic: object}); default /objects/<name>/pose. tf_frames: {tf frame: object}; default frames
    object_<name>. joint_map: {bag joint: Panda joint} without a profile.
    Every bag is read and checked before anything is written; the file appears whole or not at
    all (`DemoWriter`, through common.atomic), and `out` is never overwritten unless overwrite=True.
    """
    from envs.base import PandaEnv

    bag_paths = [Path(b) for b in ([bags] if isinstance(bags, (str, Path)) else bags)]
    if not bag_paths:
        raise BagImportError("no bag given")
    out = Path(out)
    if out.exists() and not overwrite:
        raise OutputExistsError(f"{out}: already exists; pass --overwrite (overwrite=True) to replace it")
    rate = float(rate) if rate is not None else 1.0 / PandaEnv.control_dt
    if not rate > 0:
        raise ValueError(f"rate must be positive, got {rate}")
    if image_size is not None and int(image_size) < 1:
        raise ValueError(f"image_size must be positive, got {image_size}")
    plan = _plan(profile, joint_topic, joint_map)
    taken: set[str] = set()
    cams = image_topics if image_topics is None or isinstance(image_topics, Mapping) else {str(t): camera_key(str(t), taken) for t in image_topics}
    poses = pose_topics if pose_topics is None or isinstance(pose_topics, Mapping) else {
        str(t): (m.group("name") if (m := re.match(r"^/objects/([^/]+)/pose$", str(t))) else str(t).strip("/").replace("/", "_"))
        for t in pose_topics
    }  # fmt: skip
    env = None
    env_kwargs: dict[str, Any] = {}
    if env_id is not None:
        import envs

        env = envs.make(env_id, action_mode="joint").unwrapped
        env_kwargs = {"action_mode": "joint"}
        if env.robot.description.name != plan.description.name:
            env.close()
            raise BagImportError(f"env {env_id} runs the {env.robot.description.name}, but the bag's robot is the {plan.description.name}"
                                 f"{f' (profile {plan.profile.name!r})' if plan.profile else ''}; pick the env of that robot")  # fmt: skip
        model_file = env.model_xml
    else:
        import sim_assets

        model_file = sim_assets.robot_xml(plan.description)
    try:
        episodes, cameras, objects = [], set(), set()
        for bag in bag_paths:
            ep, cs, obs = _bag_episode(bag, plan, rate, cams, poses, tf_frames, image_size, env, model_file)
            episodes.append(ep)
            cameras |= set(cs)
            objects |= set(obs)
    finally:
        if env is not None:
            env.close()
    result = BagImportResult(path=out, cameras=sorted(cameras), objects=sorted(objects))
    default_env = REAL_ROBOT_ENV if plan.description.name == "panda" else f"real/{plan.description.name}"
    env_args = make_env_args(env_id or default_env, env_kwargs)
    with DemoWriter(out, env_args, overwrite=overwrite, attrs={"source": "ros2_bag"}) as writer:
        for ep in episodes:
            result.demos.append(writer.add_episode(ep))
            result.samples.append(ep.num_samples)
    return result
