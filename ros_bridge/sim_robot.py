"""sim_robot: MuJoCo as the robot, speaking ros2_control's topics (or a real driver's: ``profile``).

Runs the skillstack tabletop scene with the robot its `robot` parameter names (a robot
description: panda, ur5e, ...) in real time and

* publishes sensor_msgs/JointState on /joint_states (the robot's joints, arm then gripper,
  as its description names them: position, velocity, effort) and
  geometry_msgs/PoseStamped per cube on <object_pose_prefix>/<name>/pose, both at
  `publish_rate` (default 200 Hz, >= 100 Hz);
* accepts the controller topics a real ros2_control setup has:
  trajectory_msgs/JointTrajectory on /<controller>/joint_trajectory (joints matched by
  name, points interpolated linearly by time_from_start, like joint_trajectory_controller)
  and std_msgs/Float64MultiArray on /<controller>/commands (values in `joints` order, all
  of the robot's by default, like forward_command_controller). Commands with unknown
  joints, wrong sizes or NaN/inf are rejected and logged; the arm servos hold their last
  targets;
* can simulate a worse robot: command latency (`latency_s`), Gaussian joint noise
  (`noise_std`) and dropped states/commands (`drop_rate`);
* with ``camera.rate`` > 0 renders its cameras and publishes them as a camera driver would
  (sensor_msgs/Image, CompressedImage, CameraInfo; `ros_bridge.sim_camera`);
* applies a named perturbation condition (`condition`: latency, object-pose noise, dropped
  states, dynamics) tick for tick as the envs do (`ros_bridge.sim_conditions`);
* ~/reset_scene (std_srvs/Trigger) puts the arm home and the cubes back;
* with a robot profile (``profile: fr3``, ``ur``, ``panda_sim``) it speaks that driver instead:
  its joint names, state topics and rates (an arm and a separate gripper, a merged topic), its
  controllers, the FollowJointTrajectory/GripperCommand action servers when control_msgs loads,
  object poses in a frame of the profile (`ros_bridge.sim_driver`).

Physics advances in a timer callback that catches up with the wall clock in 2 ms
MuJoCo steps, then publishes; the executor is single-threaded, so commands apply
between two publishes.

Run: ``python -m ros_bridge.sim_robot --ros-args --params-file config/deploy.yaml``.
"""

from __future__ import annotations

import sys
import threading
import time
from collections import deque
from collections.abc import Sequence

import mujoco
import numpy as np

from ros_bridge._ros import declare_params, run_node, to_stamp
from ros_bridge.params import SimRobotParams
from ros_bridge.sim_conditions import SimConditions, resolve_condition
from ros_bridge.sim_driver import SimDriverIO

from geometry_msgs.msg import PoseStamped  # noqa: E402  (after the ROS environment check)
from rclpy.node import Node  # noqa: E402
from std_srvs.srv import Trigger  # noqa: E402
from trajectory_msgs.msg import JointTrajectory  # noqa: E402

__all__ = ["SimRobot", "main"]

DEFAULT_OBJECT_XY = ((0.5, 0.1), (0.5, -0.1), (0.4, 0.15), (0.4, -0.15))


class _Trajectory:
    """Piecewise-linear joint trajectory in simulation time over a subset of actuators."""

    def __init__(self, act: np.ndarray, start_q: np.ndarray, t0: float, times: np.ndarray, points: np.ndarray):
        self.act = act
        self.times = np.concatenate(([t0], t0 + times))
        self.points = np.vstack((start_q, points))

    def sample(self, t: float) -> np.ndarray:
        """Joint targets at simulation time t (linear between points, held after the last)."""
        if t >= self.times[-1]:
            return self.points[-1]
        i = int(np.searchsorted(self.times, t, side="right")) - 1
        if i < 0:
            return self.points[0]
        span = self.times[i + 1] - self.times[i]
        w = (t - self.times[i]) / span if span > 0 else 1.0
        return self.points[i] + w * (self.points[i + 1] - self.points[i])


class SimRobot(Node):
    """The sim_robot node (see the module docstring)."""

    def __init__(self, **node_kwargs):
        super().__init__("sim_robot", **node_kwargs)
        self.params: SimRobotParams = declare_params(self, SimRobotParams())
        p = self.params
        import sim_assets
        from envs.robot import Robot

        description = p.description
        self.model = sim_assets.load_scene(objects=tuple(p.objects), goals=(), robot=description)
        self.data = mujoco.MjData(self.model)
        self._physics = threading.RLock()  # model/data: the timer, commands and a reset from any thread
        self.robot = Robot.from_model(self.model, description)
        self._qadr = np.concatenate((self.robot.arm_qpos, self.robot.finger_qpos))
        self._dadr = np.concatenate((self.robot.arm_dof, self.robot.finger_dof))
        self._act = np.concatenate((self.robot.arm_actuators, self.robot.finger_actuators))
        self._ctrl_lo = self.model.actuator_ctrlrange[:, 0].copy()
        self._ctrl_hi = self.model.actuator_ctrlrange[:, 1].copy()
        self._objects = []
        for name in p.objects:
            j = self.model.joint(f"cube_{name}_joint")
            self._objects.append((name, int(j.qposadr[0])))
        self._rng = np.random.default_rng(p.seed)
        self._pending: deque[tuple[float, str, object]] = deque()
        self._traj: _Trajectory | None = None
        self.received = {"trajectory": 0, "commands": 0, "rejected": 0, "dropped": 0}
        self.last_command_time: float | None = None
        cond = resolve_condition(p.condition) if p.condition else None
        self.conditions = SimConditions(cond, self.model, self.robot, p.objects) if cond else None
        self._last_poses: list[PoseStamped] = []
        self.reset_scene()

        grip = description.gripper
        self.io = SimDriverIO(self, p, self.robot.joint_names, self._on_command, lambda w: grip.joint_targets(np.clip(w, *grip.width_range)))
        self._act_by_name = dict(zip(self.io.driver_names, self._act))  # the names commands use (the driver's)
        self._cmd_joints = self.io.command_joints
        self._cmd_act = np.array([self._act_by_name[j] for j in self._cmd_joints])
        self._grip_act = np.array([self._act_by_name[j] for j in self.io.gripper_joints], dtype=np.int64)
        prefix = "/" + p.object_pose_prefix.strip("/") if p.object_pose_prefix.strip("/") else ""
        self._pose_pubs = [(name, adr, self.create_publisher(PoseStamped, f"{prefix}/{name}/pose", 10)) for name, adr in self._objects]
        self.create_service(Trigger, "~/reset_scene", self._on_reset_scene)
        self._wall0 = time.monotonic()
        self._sim0 = self.data.time
        self._pose_period = 1.0 / p.publish_rate
        self._pose_due = 0.0
        self._timer = self.create_timer(1.0 / self.io.rate_hz, self._on_timer)
        self.cameras = None
        if p.camera.rate > 0:
            from ros_bridge.sim_camera import SimCameras

            self.cameras = SimCameras(self, self.model, self.data, p.camera, lambda m: self.get_logger().error(m))
        streams = ", ".join(f"{s.topic} at {1.0 / s.period_s:g} Hz" for s in self.io.streams)
        self.get_logger().info(
            f"sim_robot: {description.title} + {list(p.objects) or 'no objects'}"
            + (f" speaking profile {self.io.profile.name}" if self.io.profile else "")
            + f"; joint states {streams}; poses in {self.io.object_frame!r} at {p.publish_rate:g} Hz; commands on {self.io.paths}"
            + (f"; cameras {p.camera.names} at {p.camera.rate:g} Hz, {p.camera.width}x{p.camera.height} on {self.cameras.topics}" if self.cameras else "")
        )

    # -- scene ---------------------------------------------------------------------------
    def reset_scene(self, seed: int | None = None, object_positions: Sequence[float] | None = None) -> None:
        """Arm home (or `initial_qpos`), cubes at their start positions (or `object_positions`), servos
        holding; a condition starts its episode with `seed` (default the `seed` parameter)."""
        with self._physics:  # a reset may come from another thread (the process owning the node)
            m, d, p = self.model, self.data, self.params
            scale = self.conditions.reset(p.seed if seed is None else seed).get("size_scale", 1.0) if self.conditions else 1.0
            positions = list(object_positions) if object_positions is not None else p.object_positions
            mujoco.mj_resetData(m, d)
            self.robot.set_home(m, d)
            if p.initial_qpos:
                q = np.array(p.initial_qpos, dtype=np.float64)
                d.qpos[self._qadr] = q
                d.ctrl[self._act] = np.clip(q, self._ctrl_lo[self._act], self._ctrl_hi[self._act])
            import sim_assets

            for i, (_name, adr) in enumerate(self._objects):
                if positions:
                    pos = positions[3 * i : 3 * i + 3]
                else:
                    x, y = DEFAULT_OBJECT_XY[i % len(DEFAULT_OBJECT_XY)]
                    pos = (x, y, sim_assets.CUBE_HALF_SIZE * scale)
                d.qpos[adr : adr + 3] = pos
                d.qpos[adr + 3 : adr + 7] = (1.0, 0.0, 0.0, 0.0)
            self._traj = None
            self._pending.clear()
            mujoco.mj_forward(m, d)
            self._wall0 = time.monotonic()
            self._sim0 = d.time
            if self.conditions is not None:
                self.conditions.observe(self._object_state(), self._wall0)

    def _object_state(self) -> np.ndarray:
        """True positions of the cubes, in `objects` order (what a condition perturbs)."""
        return np.array([self.data.qpos[adr : adr + 3] for _name, adr in self._objects]).reshape(-1)

    def _on_reset_scene(self, request: Trigger.Request, response: Trigger.Response) -> Trigger.Response:
        self.reset_scene()
        response.success = True
        response.message = "scene reset"
        return response

    # -- commands ------------------------------------------------------------------------
    def _drop(self) -> bool:
        return self.params.drop_rate > 0 and self._rng.random() < self.params.drop_rate

    def _on_command(self, kind: str, msg: object) -> None:
        """Any command (topic message or accepted goal): dropped or delayed as configured, then applied."""
        with self._physics:  # the condition queue and the scene are shared with reset_scene
            self.last_command_time = time.monotonic()
            if self._drop():
                self.received["dropped"] += 1
                return
            if self.conditions is not None and kind in ("commands", "trajectory"):  # an arm command: a control tick
                delayed = self.conditions.command((kind, msg), self._object_state(), self.last_command_time)
                if delayed is None:
                    return  # the latency queue fills: the arm holds its targets
                kind, msg = delayed
            self._enqueue(kind, msg)

    def _enqueue(self, kind: str, msg: object) -> None:
        gripper_delay = self.conditions.latency_s if self.conditions and kind.startswith("gripper") else 0.0
        if self.params.latency_s + gripper_delay > 0:
            self._pending.append((time.monotonic() + self.params.latency_s + gripper_delay, kind, msg))
        else:
            self._apply(kind, msg)

    def _reject(self, why: str) -> None:
        self.received["rejected"] += 1
        self.get_logger().warning(f"rejected command: {why}", throttle_duration_sec=1.0)

    def _apply(self, kind: str, msg: object) -> None:
        d = self.data
        if kind in ("commands", "gripper_commands", "gripper_targets"):
            act = self._cmd_act if kind == "commands" else self._grip_act
            values = np.asarray(msg if kind == "gripper_targets" else msg.data, dtype=np.float64)
            if values.shape != (len(act),):
                return self._reject(f"{kind} has {values.size} values, expected {len(act)}")
            if not np.all(np.isfinite(values)):
                return self._reject(f"NaN/inf in {kind}")
            if self._traj is not None and kind == "commands":
                self._traj = None
            d.ctrl[act] = np.clip(values, self._ctrl_lo[act], self._ctrl_hi[act])
            self.received["trajectory" if kind == "gripper_targets" else "commands"] += 1
            return
        traj: JointTrajectory = msg  # type: ignore[assignment]
        names = list(traj.joint_names)
        unknown = [n for n in names if n not in self._act_by_name]
        if unknown or len(set(names)) != len(names) or not names:
            return self._reject(f"trajectory joint_names {names} (unknown {unknown})")
        if not traj.points:
            self._traj = None  # an empty trajectory stops the current one (hold)
            self.received["trajectory"] += 1
            return
        act = np.array([self._act_by_name[n] for n in names])
        times, points = [], []
        for pt in traj.points:
            pos = np.asarray(pt.positions, dtype=np.float64)
            if pos.shape != (len(names),) or not np.all(np.isfinite(pos)):
                return self._reject("trajectory point positions missing, wrong size or non-finite")
            times.append(pt.time_from_start.sec + pt.time_from_start.nanosec * 1e-9)
            points.append(np.clip(pos, self._ctrl_lo[act], self._ctrl_hi[act]))
        times_arr = np.array(times)
        if np.any(np.diff(times_arr) < 0) or times_arr[0] < 0:
            return self._reject("trajectory times must be non-decreasing and >= 0")
        self._traj = _Trajectory(act, d.ctrl[act].copy(), d.time, times_arr, np.array(points))
        self.received["trajectory"] += 1

    # -- physics + publishing -------------------------------------------------------------
    def _on_timer(self) -> None:
        with self._physics:  # mj_step never runs beside a reset (which may change the model: dynamics)
            m, d, p = self.model, self.data, self.params
            now = time.monotonic()
            while self._pending and self._pending[0][0] <= now:
                _, kind, msg = self._pending.popleft()
                self._apply(kind, msg)
            target = self._sim0 + (now - self._wall0) * p.real_time_factor
            behind = target - d.time
            if behind > 0.25:  # fell far behind (paused process): skip ahead instead of racing
                self._sim0 += behind - m.opt.timestep
                target = d.time + m.opt.timestep
            while d.time < target - 0.5 * m.opt.timestep:
                if self._traj is not None:
                    d.ctrl[self._traj.act] = self._traj.sample(d.time)
                mujoco.mj_step(m, d)
            if self.cameras is not None:
                self.cameras.offer(d, lambda: self.get_clock().now().nanoseconds * 1e-9, now)
            self._publish()

    def _publish(self) -> None:
        d = self.data
        now = time.monotonic()
        cond = self.conditions
        if cond is not None and cond.idle_tick_due(now):
            cond.observe(self._object_state(), now)
        stale = cond is not None and cond.stale  # this period's state was dropped: re-publish the last
        due = [s for s in self.io.streams if s.due(now)]
        poses_due = now + 1e-4 >= self._pose_due
        if not due and not poses_due:
            return
        stamp = self.get_clock().now().nanoseconds * 1e-9
        q = d.qpos[self._qadr]
        if due:
            if self.params.noise_std > 0:
                q = q + self._rng.normal(0.0, self.params.noise_std, size=q.shape)
            qd, effort = d.qvel[self._dadr], d.actuator_force[self._act]
        for s in due:
            if self._drop():
                self.received["dropped"] += 1
                continue
            msg = s.message
            if stale and msg.position:
                s.publisher.publish(msg)
                continue
            to_stamp(msg.header.stamp, stamp)
            msg.position = q[s.index].tolist()
            msg.velocity = qd[s.index].tolist()
            msg.effort = effort[s.index].tolist()
            s.publisher.publish(msg)
        if not poses_due:
            return
        self._pose_due = max(self._pose_due + self._pose_period, now + 0.5 * self._pose_period)
        if stale and self._last_poses:
            for (_name, _adr, pub), pose in zip(self._pose_pubs, self._last_poses):
                pub.publish(pose)
            return
        self._last_poses = []
        for i, (_name, adr, pub) in enumerate(self._pose_pubs):
            pose = PoseStamped()
            to_stamp(pose.header.stamp, stamp)
            pose.header.frame_id = self.io.object_frame
            seen = d.qpos[adr : adr + 3] if cond is None else d.qpos[adr : adr + 3] + cond.noise[i]
            pos, quat = self.io.object_pose(seen, d.qpos[adr + 3 : adr + 7])
            pose.pose.position.x, pose.pose.position.y, pose.pose.position.z = (float(v) for v in pos)
            pose.pose.orientation.w, pose.pose.orientation.x = float(quat[0]), float(quat[1])
            pose.pose.orientation.y, pose.pose.orientation.z = float(quat[2]), float(quat[3])
            pub.publish(pose)
            self._last_poses.append(pose)

    def close(self) -> None:
        """Stop the physics timer and the cameras' render thread."""
        self._timer.cancel()
        if self.cameras is not None:
            self.cameras.close()


def main(args: Sequence[str] | None = None) -> int:
    """Console entry point: ``sim_robot --ros-args [--params-file F] [-p name:=value]``."""
    return run_node(SimRobot, sys.argv if args is None else args)


if __name__ == "__main__":
    raise SystemExit(main())
