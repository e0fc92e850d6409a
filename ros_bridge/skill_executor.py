"""skill_executor: runs a skill from the library on a robot through ROS 2, always behind the safety layer.

The robot profile (`profile`, default ``panda_sim``; `ros_bridge.profile`) says how the driver
names, publishes and accepts things; `bringup.plan_bringup` resolves it with the overrides.

Inputs: sensor_msgs/JointState on the profile's topics (names matched, any order, extra
joints ignored, the driver's names mapped onto the robot description; an arm and a gripper
publishing separately are merged by name, each topic watched against its own rate) and one
geometry_msgs/PoseStamped per task object (`object_pose_topics`, default
/objects/<name>/pose) in the profile's base frame or a frame it has a static transform for
(any other frame_id is refused, with the reason in the status); a pose older than
`safety.max_pose_age_s` (by its stamp: for a perceived pose, the image's time) holds the arm,
like stale joint states, until a fresh one arrives (with `occlusion_camera`, a pose of an object the
arm itself hides from that camera is kept: `ros_bridge.occlusion`); optionally a PoseStamped goal.

Each control period (`control_rate`, default the skill's own rate) it fills the task's
scratch environment with the measured state, builds the observation with the envs'
code, runs the policy, maps the end-effector action to joint targets with the envs' IK
path, passes them through `SafetyLayer`, and sends them through `command_paths.CommandPaths`
in ros2_control's conventions: the arm's controller by topic (Float64MultiArray or
JointTrajectory) or FollowJointTrajectory action, the gripper by its own path (a
GripperCommand action or its controller's topic). In shadow mode (`shadow`) nothing reaches a
controller: every would-be command goes to ~/preview. Nothing is sent while a controller or
action server is missing (state "waiting", the reason in the status). At start the executor
logs a summary of the topics, joints, limits and rates in force and latches it on ~/summary.

Control periods are clocked by arriving joint states (like ros2_control's
read -> update -> write): the first fresh state at or after each period boundary triggers
the tick, so a command goes out right after the state it was computed from. A timer
runs the watchdog and the status topic when states stop arriving.

Services (std_srvs/Trigger): ~/start, ~/stop, ~/estop (latches), ~/reset (clears the
latch; call ~/start to run again). Topic ~/status (std_msgs/String, JSON): skill, task,
state, last_fault, fault_detail, counters; ~/summary (JSON, transient local): the bring-up. With `publish_timing`, ~/timing
(Float64MultiArray) carries per-command timing for the benchmark:
[seq, state_stamp, state_received, tick_start, publish_time, compute_s] (seconds), then
`command_fingerprint` of the arm command it timed (pairs timing and commands even when some are lost).
"""

from __future__ import annotations

import json
import sys
import threading
import time
from collections.abc import Sequence

import numpy as np

from ros_bridge._ros import COMMAND_QOS, STATE_QOS, declare_params, run_node, stamp_s
from ros_bridge.bringup import plan_bringup, summary_lines
from ros_bridge.carried import CarriedObjects, CarryConfig
from envs.in_flight import InFlightCommands
from ros_bridge.command_paths import CommandPaths, command_fingerprint
from ros_bridge.joint_states import MergedJointStates
from ros_bridge.occlusion import SelfOcclusion
from ros_bridge.params import ExecutorParams
from ros_bridge.profile import ProfileError
from ros_bridge.safety import Fault, JointLimits, SafetyLayer, SafetyOutput, SafetyState, TcpKinematics
from ros_bridge.state import PoseCache
from ros_bridge.task import PolicyInfo, TaskModel, load_policy, resolve_task

from geometry_msgs.msg import PoseStamped  # noqa: E402
from rclpy.node import Node  # noqa: E402
from rclpy.qos import DurabilityPolicy, QoSProfile  # noqa: E402
from sensor_msgs.msg import JointState  # noqa: E402
from std_msgs.msg import Float64MultiArray, String  # noqa: E402
from std_srvs.srv import Trigger  # noqa: E402

__all__ = ["SkillExecutor", "main"]


class SkillExecutor(Node):
    """The skill_executor node (see the module docstring)."""

    def __init__(self, **node_kwargs):
        super().__init__("skill_executor", **node_kwargs)
        p: ExecutorParams = declare_params(self, ExecutorParams())
        self.params = p
        self._task_lock = threading.Lock()  # the scratch env is shared with a hierarchical controller's thread
        robot = p.robot_profile.robot  # the profile's robot runs the task (its description's model and IK)
        if p.plan_task:
            from ros_bridge.hierarchy import HierarchicalPolicy, resolve_plan_task

            plan_env, goal_literals = resolve_plan_task(p.plan_task, p.plan_goal)
            env_id = p.task or plan_env
            self.task = TaskModel(env_id, robot=robot)
            if p.goal:
                self.task.set_goal(p.goal)
            rate = p.control_rate or 1.0 / self.task.control_dt
            steps = p.plan_max_steps or 4 * int(getattr(self.task.env.spec, "max_episode_steps", None) or 250)
            self.policy = HierarchicalPolicy(
                self.task, goal_literals, self._task_lock, library_root=p.library_root or None,
                kinds=p.plan_skills, lock_file=p.lock_file or None, max_episode_steps=steps, period_s=1.0 / rate,
                log=self.get_logger().info,
            )  # fmt: skip
            self.info = PolicyInfo(f"plan:{p.plan_task}", rate)
        else:
            env_id, env_kwargs = resolve_task(p.skill, p.task, p.library_root or None, p.lock_file or None)
            self.task = TaskModel(env_id, env_kwargs, robot=robot)
            if p.goal:
                self.task.set_goal(p.goal)
            self.policy, self.info = load_policy(p.skill, self.task, p.library_root or None, p.lock_file or None)
            rate = p.control_rate or self.info.control_hz or 1.0 / self.task.control_dt
        self.period = 1.0 / rate
        env_id = self.task.env_id
        self.plan = plan = plan_bringup(p, self.task.model, self.period)
        self.profile = plan.profile
        desc = self.profile.description
        self.safety = SafetyLayer(
            plan.limits,
            plan.safety,
            TcpKinematics(robot=desc) if plan.safety.workspace_enabled else None,
            on_fault=lambda f, d: self.get_logger().warning(f"safety: {f.value}: {d}"),
        )
        state_order = self.task.state_joints  # the description's joints, arm then gripper
        self._cmd_idx = np.array([state_order.index(j) for j in plan.limits.names])
        self._grip_idx = np.array([state_order.index(j) for j in self.profile.to_description(plan.gripper_joints)], dtype=np.int64)
        self._n_arm = len(plan.arm_joints)
        state_limits = JointLimits.from_model(self.task.model, state_order, robot=desc)
        self.joints = MergedJointStates(
            state_order,
            plan.state_topics,
            max_velocity=state_limits.velocity if plan.safety.reject_implausible_states else None,
            aliases=plan.aliases,
        )
        self.poses = PoseCache(self.task.objects)
        # Held objects ride on the TCP while a camera cannot see them (ros_bridge.carried).
        self.carried = (CarriedObjects(self.task.objects, CarryConfig(tuple(p.carry_width), p.carry_radius, self.task.closing_axis()))
                        if p.carry_held_objects else None)
        self._carried_now: dict = {}
        # Old poses of objects the arm hides from the camera are kept (ros_bridge.occlusion).
        self.occlusion = None
        if p.occlusion_camera:
            camera = self.profile.camera(p.occlusion_camera).calibration
            self.occlusion = SelfOcclusion(self.task.model, self.task.data, camera.T_base_camera[:3, 3],
                                           int(self.task.model.site_bodyid[self.task.robot.tcp_site]), self.task.robot.robot_geoms)
        self._occluded_now: dict[str, float] = {}  # object -> age of the pose kept while the arm hides it
        # Arm commands sent and not yet applied (a driver's latency): the IK steps from where the arm is headed.
        self.in_flight = InFlightCommands(max_lead=p.ik_base_max_lead, response=p.ik_base_response or None) if p.ik_base == "in_flight" else None
        self.paths = CommandPaths(self, plan, self.period, lambda m: self.get_logger().warning(m))
        self._grip_request: np.ndarray | None = None
        self._not_ready = ""  # a missing controller or action server
        self.mode = "running" if p.autostart else "stopped"
        self.exec_fault = ""  # executor-level problem (e.g. waiting for object poses)
        self.counters = {"ticks": 0, "published": 0, "missed_deadlines": 0, "late_ticks": 0, "policy_errors": 0, "rejected_poses": 0,
                         "stale_pose_holds": 0, "occluded_pose_keeps": 0}
        self.pose_fault = ""  # the last object pose refused (a frame with no transform)
        self._next_tick: float | None = None
        self._success_since: float | None = None
        self.goal_reached = False  # the task's goal (or a plan's symbolic goal) held when the episode ended
        self._last_state_str = ""
        self._seq = 0
        self._last_tcp: list[float] | None = None
        self._last_objects: dict[str, list[float]] = {}  # object positions the policy last acted on (perceived, carried)

        self.command_topic = self.paths.topic
        self._status_pub = self.create_publisher(String, "~/status", 10)
        self._timing_pub = self.create_publisher(Float64MultiArray, "~/timing", COMMAND_QOS) if p.publish_timing else None
        for i, t in enumerate(plan.state_topics):
            self.create_subscription(JointState, t.topic, lambda m, i=i: self._on_joint_state(m, i), STATE_QOS)
        topics = p.object_pose_topics or [f"/objects/{o}/pose" for o in self.task.objects]
        if len(topics) != len(self.task.objects):
            raise ValueError(f"object_pose_topics has {len(topics)} topics for objects {list(self.task.objects)}")
        for name, topic in zip(self.task.objects, topics):
            self.create_subscription(PoseStamped, topic, lambda m, n=name: self._on_pose(n, m), STATE_QOS)
        if p.goal_topic:
            self.create_subscription(PoseStamped, p.goal_topic, self._on_goal, 10)
        self.create_service(Trigger, "~/start", self._srv_start)
        self.create_service(Trigger, "~/stop", self._srv_stop)
        self.create_service(Trigger, "~/estop", self._srv_estop)
        self.create_service(Trigger, "~/reset", self._srv_reset)
        watchdog_period = min(min(t.stale_after_s for t in plan.state_topics) / 2.0, 0.05)
        self.create_timer(watchdog_period, self._on_watchdog)
        self.create_timer(1.0 / p.status_rate, self.publish_status)
        if self.mode == "running":
            self.policy.reset()
        lines = summary_lines(plan, rate_hz=rate, arm_path=self.paths.arm_path, gripper_path=self.paths.gripper_path, autostart=p.autostart)
        self.get_logger().info(
            f"skill_executor: {self.info.name} on {env_id} at {rate:g} Hz -> {self.command_topic} "
            f"({plan.interface}); goal {np.round(self.task.goal, 3).tolist()}; mode {self.mode}\n" + "\n".join(lines)
        )
        latched = QoSProfile(depth=1, durability=DurabilityPolicy.TRANSIENT_LOCAL)
        self._summary_pub = self.create_publisher(String, "~/summary", latched)
        summary = {**plan.to_dict(), "skill": self.info.name, "task": env_id, "rate_hz": rate, "arm_path": self.paths.arm_path,
                   "gripper_path": self.paths.gripper_path, "notes": self.paths.notes, "autostart": p.autostart, "lines": lines}
        self._summary_pub.publish(String(data=json.dumps(summary)))

    # -- inputs ----------------------------------------------------------------------------
    def _now(self) -> float:
        return self.get_clock().now().nanoseconds * 1e-9

    def _on_joint_state(self, msg: JointState, topic: int = 0) -> None:
        recv = self._now()
        err = self.joints.update(topic, msg.name, msg.position, msg.velocity, stamp_s(msg.header.stamp), recv)
        if err is not None:
            if err != self.exec_fault:
                self.get_logger().warning(f"rejected joint state: {err}", throttle_duration_sec=1.0)
            self.exec_fault = err
            return
        if topic != 0 or self.mode != "running" or self.safety.estopped:
            return  # the first topic (the arm's) clocks the control periods
        mono = time.monotonic()
        if self._next_tick is None:
            self._next_tick = mono
        tolerance = 0.3 * self.period
        if mono < self._next_tick - tolerance:
            return
        late = mono - self._next_tick
        if late > self.period:
            missed = int(late / self.period)
            self.counters["missed_deadlines"] += missed
            self._next_tick += missed * self.period
        self._next_tick += self.period
        self._tick(recv)

    def _on_pose(self, name: str, msg: PoseStamped) -> None:
        p, o = msg.pose.position, msg.pose.orientation
        try:
            pos, quat = self.profile.to_base(msg.header.frame_id, (p.x, p.y, p.z), (o.w, o.x, o.y, o.z))
        except ProfileError as exc:
            self.counters["rejected_poses"] += 1
            self.pose_fault = f"object {name!r}: {exc}"
            self.get_logger().error(f"rejected object pose: {self.pose_fault}", throttle_duration_sec=2.0)
            return
        err = self.poses.update(name, pos, quat, stamp_s(msg.header.stamp), self._now())
        if err is not None:
            self.get_logger().warning(f"rejected object pose: {err}", throttle_duration_sec=1.0)

    def _on_goal(self, msg: PoseStamped) -> None:
        p = msg.pose.position
        try:
            self.task.set_goal([p.x, p.y, p.z])
            self._success_since = None
        except ValueError as exc:
            self.get_logger().warning(f"rejected goal: {exc}", throttle_duration_sec=1.0)

    # -- the control period ------------------------------------------------------------------
    def _worst_age(self) -> tuple[str, float, float] | None:
        """(topic, age, threshold) of the stalest state topic, or None before every topic has spoken."""
        return self.joints.worst_age(self._now(), self.params.stamp_source == "header")

    def _tick(self, recv: float) -> None:
        t_start = time.perf_counter()
        tick_wall = self._now()
        reading = self.joints.latest()
        self.counters["ticks"] += 1
        worst = self._worst_age()
        if reading is None or worst is None:  # another topic (the gripper's) has not spoken yet
            self.exec_fault = f"waiting for joint states on {self.joints.missing()}"
            self.safety.step(None, None, None)
            self._maybe_status()
            return
        _, age, limit = worst
        measured = reading.position[self._cmd_idx]
        self._not_ready = self.paths.not_ready()
        if self._not_ready:  # a controller or action server is missing: send nothing, start afresh later
            self.exec_fault = self._not_ready
            self.safety.pause()
            out = SafetyOutput(False, None, SafetyState.WAITING)
        elif not (age <= limit) or not np.all(np.isfinite(measured)):
            out = self.safety.step(None, measured, age, limit)  # watchdog / NaN-state path
        else:
            out = self._run_policy(reading, measured, age, limit)
        compute = time.perf_counter() - t_start
        if compute > self.period:
            self.counters["late_ticks"] += 1
        if self.in_flight is not None:  # one (measured, sent) pair per tick, or start afresh
            if out.publish and np.all(np.isfinite(measured)):
                self.in_flight.observe(measured[: self._n_arm])
                self.in_flight.sent(np.asarray(out.target, dtype=np.float64)[: self._n_arm])
            else:
                self.in_flight.reset()
        if out.publish:
            self._publish(out.target)
            if self._timing_pub is not None:
                self._timing_pub.publish(
                    Float64MultiArray(data=[float(self._seq), reading.stamp_s, recv, tick_wall, self._now(), compute,
                                            command_fingerprint(out.target[: self._n_arm])])
                )
        self._maybe_status()

    def _run_policy(self, reading, measured: np.ndarray, age: float, limit: float) -> SafetyOutput:
        p = self.params
        missing = self.poses.missing()
        if missing:
            self.exec_fault = f"waiting for poses of {missing}" + (f"; refused: {self.pose_fault}" if self.pose_fault else "")
            return self.safety.hold(None)
        if not np.all(np.isfinite(reading.velocity)):
            return self.safety.hold(Fault.NONFINITE_STATE, "NaN/inf in joint velocities")
        if not self._task_lock.acquire(timeout=0.3 * self.period):
            return self.safety.hold(None)  # the planner thread still holds the scene: skip this period
        try:
            now = self._now()
            if p.predict_object_poses:  # carried forward from their stamps (perceived poses are old)
                objects = {o: self.poses.predicted(o, now, p.safety.max_pose_age_s) for o in self.task.objects}
            else:
                objects = {o: self.poses.latest(o) for o in self.task.objects}
            if self.occlusion is not None:  # an old pose is tested where it was seen, as a still object
                for o, pose_age in self.poses.ages(now, p.stamp_source).items():
                    if not pose_age <= p.safety.max_pose_age_s and (r := self.poses.latest(o)) is not None:
                        objects[o] = r.at_rest()
            self.task.load_state(reading, objects)
            if self.carried is not None:  # a held object's pose comes from the hand's, i.e. the joint states
                sightings = {o: self.poses.latest(o) for o in self.task.objects}  # as imaged, at their stamps
                self._carried_now = self.carried.update(now, self.task.tcp_pose(), self.task.gripper_width(), objects, sightings)
                if self._carried_now:
                    self.task.load_state(reading, {**objects, **self._carried_now})
            stale = self._stale_pose()
            if not stale:
                obs = self.task.observe()
                self._last_tcp = self.task.tcp_pos().round(4).tolist()
                self._last_objects = {o: self.task.env.object_pos(o).round(4).tolist() for o in self.task.objects}
        finally:
            self._task_lock.release()
        if stale:  # nothing moves on an old pose: hold, like stale joint states
            self.exec_fault = stale + (f"; refused: {self.pose_fault}" if self.pose_fault else "")
            self.counters["stale_pose_holds"] += 1
            return self.safety.hold(Fault.STALE_POSE, stale)
        if not all(np.all(np.isfinite(v)) for v in obs.values()):
            return self.safety.hold(Fault.NONFINITE_OBSERVATION, "NaN/inf in the observation")
        self.exec_fault = ""
        if self.params.stop_on_success and self._check_done(obs):
            return self.safety.hold(None)
        try:
            raw = self.policy(obs)
        except Exception as exc:  # a broken skill must not take the node down: hold and report
            self.counters["policy_errors"] += 1
            return self.safety.hold(Fault.POLICY_ERROR, f"{type(exc).__name__}: {exc}")
        if raw is None:  # the policy (a planner thinking) has no action this period
            return self.safety.hold(None)
        action = np.asarray(raw, dtype=np.float64)
        if action.shape != (self.task.action_dim,) or not np.all(np.isfinite(action)):
            return self.safety.hold(Fault.NONFINITE_ACTION, f"bad action {action.tolist()}")
        if not self._task_lock.acquire(timeout=0.3 * self.period):
            return self.safety.hold(None)
        try:
            targets = self.task.targets_for_action(action, base=self._ik_base(reading.position))
        finally:
            self._task_lock.release()
        out = self.safety.step(targets[self._cmd_idx], measured, age, limit)
        if len(self._grip_idx):  # the gripper's own path: its requested opening, within its position limits
            n = self._n_arm
            self._grip_request = np.clip(targets[self._grip_idx], self.safety.limits.lower[n:], self.safety.limits.upper[n:])
        return out

    def _ik_base(self, measured_state: np.ndarray) -> np.ndarray | None:
        """Joint positions (state order) the IK steps from: with commands landing late
        (`ik_base: in_flight`, `envs.in_flight`) where the arm will be when this command lands,
        else None (the measured state)."""
        arm = self._cmd_idx[: self._n_arm]
        inc = None if self.in_flight is None else self.in_flight.in_flight(np.asarray(measured_state)[arm])
        if inc is None:
            return None
        base = np.asarray(measured_state, dtype=np.float64).copy()
        base[arm] += inc
        return base

    def _pose_ages(self) -> dict[str, float]:
        now = self._now()
        ages = self.poses.ages(now, self.params.stamp_source)
        # A held object's pose is as old as the joint states it comes from; one put down, as old as the release.
        ages.update({n: now - r.stamp_s for n, r in self._carried_now.items()})
        return ages

    def _stale_pose(self) -> str:
        """Why the object poses are too old to act on ("" when all are fresh enough). With an
        `occlusion_camera`, an old pose of an object the arm hides from that camera and does not
        touch is kept (up to `occluded_pose_max_age_s`) and listed in `_occluded_now`; call with
        the scratch scene loaded."""
        limit = self.params.safety.max_pose_age_s
        old = {n: a for n, a in self._pose_ages().items() if not a <= limit}
        self._occluded_now = {}
        if self.occlusion is not None and old:
            held = self.carried.held if self.carried is not None else ()
            for n, a in list(old.items()):
                if n not in self._carried_now and a <= self.params.occluded_pose_max_age_s and self.occlusion.hidden_by_robot(n, held):
                    self._occluded_now[n] = a
                    del old[n]
            if self._occluded_now:
                self.counters["occluded_pose_keeps"] += 1
        if not old:
            return ""
        return "object pose too old: " + ", ".join(f"{n} {a:.2f} s" for n, a in old.items()) + f" (limit {limit:g} s); holding"

    def _check_done(self, obs) -> bool:
        now = time.monotonic()
        goal_holds = getattr(self.policy, "goal_holds", None)  # a plan's symbolic goal
        if getattr(self.policy, "done", False):  # a scripted skill or a plan that finished
            self.goal_reached = bool(self.task.is_success(obs) or (goal_holds is not None and goal_holds()))
            self._finish(f"skill finished: {self.info.name}")
            return True
        if not (self.task.is_success(obs) or (goal_holds is not None and goal_holds())):
            self._success_since = None
            return False
        if self._success_since is None:
            self._success_since = now
        if now - self._success_since >= self.params.success_hold_s:
            if goal_holds is not None:
                what = "the plan's goal holds: " + " & ".join(str(g) for g in self.policy.goal)
            else:
                what = f"reached the goal {np.round(self.task.goal, 3).tolist()}"
            self.goal_reached = True
            self._finish(f"task done: {self.info.name}: {what}")
            return True
        return False

    def _finish(self, message: str) -> None:
        self.mode = "done"
        self._close_policy()
        self.get_logger().info(message)
        self.publish_status()

    def _close_policy(self) -> None:
        close = getattr(self.policy, "close", None)
        if callable(close):
            close()

    def close(self) -> None:
        """Stop a hierarchical controller's thread (called when the node shuts down)."""
        self._close_policy()

    def _publish(self, target: np.ndarray) -> None:
        self.paths.send(target, self._grip_request)
        self._seq += 1
        self.counters["published"] += 1

    # -- watchdog and status ---------------------------------------------------------------
    def _on_watchdog(self) -> None:
        if self.mode != "running" or self.safety.estopped:
            return
        reading = self.joints.latest()
        worst = self._worst_age()
        if reading is None or worst is None:
            self.safety.step(None, None, None)
        else:
            _, age, limit = worst
            if not age <= limit:
                self.safety.step(None, reading.position[self._cmd_idx], age, limit)
                self._next_tick = None  # restart the clock when states return
        self._maybe_status()

    @property
    def state(self) -> str:
        """Current state for ~/status: estop | stopped | done | idle | waiting | running | hold | stale."""
        if self.safety.estopped:
            return SafetyState.ESTOP.value
        if self.mode != "running":
            return self.mode
        if self._not_ready:
            return SafetyState.WAITING.value
        return self.safety.state.value

    def status(self) -> dict:
        """The status dict published on ~/status."""
        s = self.safety
        current = getattr(self.policy, "current_skill", "")
        return {
            "skill": self.info.name + (f" / {current}" if current else ""),
            "task": self.task.env_id,
            "state": self.state,
            "last_fault": s.last_fault.value if s.last_fault else "",
            "fault_detail": s.last_fault_detail,
            "executor_fault": self.exec_fault,
            "goal": np.round(self.task.goal, 4).tolist(),
            "goal_reached": self.goal_reached,
            "tcp": self._last_tcp,
            "objects": self._last_objects,
            "command_topic": self.command_topic,
            "rate_hz": round(1.0 / self.period, 3),
            **({"plan": self.policy.summary()} if hasattr(self.policy, "summary") else {}),
            **self.counters,
            "held": s.counters.held,
            "suppressed": s.counters.suppressed,
            "clamped": dict(s.counters.clamped),
            "rejected_states": self.joints.rejected,
            "pose_ages": {n: round(a, 3) for n, a in self._pose_ages().items()},
            "pose_error": self.pose_fault or self.poses.last_error,
            **({"carried": {"held": self.carried.held, "put_down": self.carried.released}} if self.carried is not None else {}),
            **({"occluded": {n: round(a, 3) for n, a in self._occluded_now.items()}} if self.occlusion is not None else {}),
            "state_error": self.joints.last_error,
            "command_subscribers": self.paths.subscribers(),
            "state_age": None if (w := self._worst_age()) is None else round(w[1], 4),
            "state_topic": None if w is None else w[0],
            "profile": self.profile.name,
            "shadow": self.plan.shadow,
            **self.paths.counters,
            "gripper_goal": self.paths.last_gripper_goal,
            "command_error": self.paths.last_error,
        }

    def publish_status(self) -> None:
        """Publish ~/status now."""
        self._last_state_str = self.state
        self._status_pub.publish(String(data=json.dumps(self.status())))

    def _maybe_status(self) -> None:
        if self.state != self._last_state_str:
            self.publish_status()

    # -- services ----------------------------------------------------------------------------
    def _srv_start(self, request: Trigger.Request, response: Trigger.Response) -> Trigger.Response:
        if self.safety.estopped:
            response.success = False
            response.message = "e-stop is latched: call ~/reset first"
            return response
        self.policy.reset()
        self.task.reset_episode()
        if self.carried is not None:
            self.carried.reset()
            self._carried_now = {}
        if self.in_flight is not None:
            self.in_flight.reset()
        self.safety.pause()
        self.paths.reset()
        self._success_since = None
        self.goal_reached = False
        self._next_tick = None
        self.mode = "running"
        self.publish_status()
        response.success = True
        response.message = f"running {self.info.name}"
        return response

    def _srv_stop(self, request: Trigger.Request, response: Trigger.Response) -> Trigger.Response:
        self.mode = "stopped"
        self.safety.pause()
        self._close_policy()
        self.publish_status()
        response.success = True
        response.message = "stopped: no new targets are sent"
        return response

    def _srv_estop(self, request: Trigger.Request, response: Trigger.Response) -> Trigger.Response:
        hold = self.safety.estop("~/estop called")
        if hold is not None:
            self.paths.hold(hold)  # one hold command so a trajectory controller stops here
        self._close_policy()
        self.get_logger().error("E-STOP latched: no targets until ~/reset")
        self.publish_status()
        response.success = True
        response.message = "e-stop latched"
        return response

    def _srv_reset(self, request: Trigger.Request, response: Trigger.Response) -> Trigger.Response:
        was = self.safety.estopped
        self.safety.reset()
        if was:
            self.mode = "stopped"
        self.publish_status()
        response.success = True
        response.message = "e-stop cleared; call ~/start to run" if was else "nothing latched"
        return response


def main(args: Sequence[str] | None = None) -> int:
    """Console entry point: ``skill_executor --ros-args [--params-file F] [-p name:=value]``."""
    return run_node(SkillExecutor, sys.argv if args is None else args)


if __name__ == "__main__":
    raise SystemExit(main())
