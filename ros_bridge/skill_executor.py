"""skill_executor: runs a skill from the library on a robot through ROS 2, always behind the safety layer.

Inputs: sensor_msgs/JointState on `joint_states_topic` (names matched, any order, extra
joints ignored) and one geometry_msgs/PoseStamped per task object
(`object_pose_topics`, default /objects/<name>/pose); optionally a PoseStamped goal.

Each control period (`control_rate`, default the skill's own rate) it fills the task's
scratch environment with the measured state, builds the observation with the envs'
code, runs the policy, maps the end-effector action to joint targets with the envs' IK
path, passes them through `SafetyLayer`, and publishes in ros2_control's conventions:
std_msgs/Float64MultiArray on /<controller>/commands (`interface: position`,
forward_command_controller) or trajectory_msgs/JointTrajectory on
/<controller>/joint_trajectory (`interface: trajectory`, joint_trajectory_controller).

Control periods are clocked by arriving joint states (like ros2_control's
read -> update -> write): the first fresh state at or after each period boundary triggers
the tick, so a command goes out right after the state it was computed from. A timer
runs the watchdog and the status topic when states stop arriving.

Services (std_srvs/Trigger): ~/start, ~/stop, ~/estop (latches), ~/reset (clears the
latch; call ~/start to run again). Topic ~/status (std_msgs/String, JSON): skill, task,
state, last_fault, fault_detail, counters. With `publish_timing`, ~/timing
(Float64MultiArray) carries per-command timing for the benchmark:
[seq, state_stamp, state_received, tick_start, publish_time, compute_s] (seconds).
"""

from __future__ import annotations

import dataclasses
import json
import sys
import threading
import time
from collections.abc import Sequence

import numpy as np

from ros_bridge._ros import COMMAND_QOS, STATE_QOS, declare_params, run_node, stamp_s
from ros_bridge.params import ExecutorParams
from ros_bridge.safety import PANDA_JOINTS, Fault, JointLimits, SafetyLayer, SafetyOutput, SafetyState, TcpKinematics
from ros_bridge.state import JointStateCache, PoseCache
from ros_bridge.task import PolicyInfo, TaskModel, load_policy, resolve_task

from builtin_interfaces.msg import Duration  # noqa: E402
from geometry_msgs.msg import PoseStamped  # noqa: E402
from rclpy.node import Node  # noqa: E402
from sensor_msgs.msg import JointState  # noqa: E402
from std_msgs.msg import Float64MultiArray, String  # noqa: E402
from std_srvs.srv import Trigger  # noqa: E402
from trajectory_msgs.msg import JointTrajectory, JointTrajectoryPoint  # noqa: E402

__all__ = ["SkillExecutor", "main"]


class SkillExecutor(Node):
    """The skill_executor node (see the module docstring)."""

    def __init__(self, **node_kwargs):
        super().__init__("skill_executor", **node_kwargs)
        p: ExecutorParams = declare_params(self, ExecutorParams())
        self.params = p
        self._task_lock = threading.Lock()  # the scratch env is shared with a hierarchical controller's thread
        if p.plan_task:
            from ros_bridge.hierarchy import HierarchicalPolicy, resolve_plan_task

            plan_env, goal_literals = resolve_plan_task(p.plan_task, p.plan_goal)
            env_id = p.task or plan_env
            self.task = TaskModel(env_id)
            if p.goal:
                self.task.set_goal(p.goal)
            rate = p.control_rate or 1.0 / self.task.control_dt
            steps = p.plan_max_steps or 4 * int(getattr(self.task.env.spec, "max_episode_steps", None) or 250)
            self.policy = HierarchicalPolicy(
                self.task, goal_literals, self._task_lock, library_root=p.library_root or None,
                kinds=p.plan_skills, lock_file=p.lock_file or None, max_episode_steps=steps, period_s=1.0 / rate,
            )  # fmt: skip
            self.info = PolicyInfo(f"plan:{p.plan_task}", rate)
        else:
            env_id, env_kwargs = resolve_task(p.skill, p.task, p.library_root or None, p.lock_file or None)
            self.task = TaskModel(env_id, env_kwargs)
            if p.goal:
                self.task.set_goal(p.goal)
            self.policy, self.info = load_policy(p.skill, self.task, p.library_root or None, p.lock_file or None)
            rate = p.control_rate or self.info.control_hz or 1.0 / self.task.control_dt
        self.period = 1.0 / rate
        safety_cfg = dataclasses.replace(p.safety, period_s=self.period)
        limits = JointLimits.from_model(self.task.model, p.joints)
        self.safety = SafetyLayer(
            limits,
            safety_cfg,
            TcpKinematics() if safety_cfg.workspace_enabled else None,
            on_fault=lambda f, d: self.get_logger().warning(f"safety: {f.value}: {d}"),
        )
        self._cmd_idx = np.array([PANDA_JOINTS.index(j) for j in p.joints])
        state_limits = JointLimits.from_model(self.task.model, PANDA_JOINTS)
        self.joints = JointStateCache(
            PANDA_JOINTS, max_velocity=state_limits.velocity if safety_cfg.reject_implausible_states else None
        )
        self.poses = PoseCache(self.task.objects)
        self.mode = "running" if p.autostart else "stopped"
        self.exec_fault = ""  # executor-level problem (e.g. waiting for object poses)
        self.counters = {"ticks": 0, "published": 0, "missed_deadlines": 0, "late_ticks": 0, "policy_errors": 0}
        self._next_tick: float | None = None
        self._success_since: float | None = None
        self._last_state_str = ""
        self._seq = 0
        self._last_tcp: list[float] | None = None

        controller = p.controller.strip("/")
        if p.interface == "position":
            self._cmd_pub = self.create_publisher(Float64MultiArray, f"/{controller}/commands", COMMAND_QOS)
        else:
            self._cmd_pub = self.create_publisher(JointTrajectory, f"/{controller}/joint_trajectory", COMMAND_QOS)
        self.command_topic = self._cmd_pub.topic_name
        self._status_pub = self.create_publisher(String, "~/status", 10)
        self._timing_pub = self.create_publisher(Float64MultiArray, "~/timing", COMMAND_QOS) if p.publish_timing else None
        self.create_subscription(JointState, p.joint_states_topic, self._on_joint_state, STATE_QOS)
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
        watchdog_period = min(self.safety.config.stale_after_s / 2.0, 0.05)
        self.create_timer(watchdog_period, self._on_watchdog)
        self.create_timer(1.0 / p.status_rate, self.publish_status)
        if self.mode == "running":
            self.policy.reset()
        self.get_logger().info(
            f"skill_executor: {self.info.name} on {env_id} at {rate:g} Hz -> {self.command_topic} "
            f"({p.interface}); goal {np.round(self.task.goal, 3).tolist()}; mode {self.mode}"
        )

    # -- inputs ----------------------------------------------------------------------------
    def _now(self) -> float:
        return self.get_clock().now().nanoseconds * 1e-9

    def _on_joint_state(self, msg: JointState) -> None:
        recv = self._now()
        err = self.joints.update(msg.name, msg.position, msg.velocity, stamp_s(msg.header.stamp), recv)
        if err is not None:
            if err != self.exec_fault:
                self.get_logger().warning(f"rejected joint state: {err}", throttle_duration_sec=1.0)
            self.exec_fault = err
            return
        if self.mode != "running" or self.safety.estopped:
            return
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
        err = self.poses.update(name, (p.x, p.y, p.z), (o.w, o.x, o.y, o.z), stamp_s(msg.header.stamp), self._now())
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
    def _age(self, reading) -> float:
        ref = reading.stamp_s if self.params.stamp_source == "header" else reading.received_s
        return self._now() - ref

    def _tick(self, recv: float) -> None:
        t_start = time.perf_counter()
        tick_wall = self._now()
        reading = self.joints.latest()
        self.counters["ticks"] += 1
        age = self._age(reading)
        measured = reading.position[self._cmd_idx]
        if not (age <= self.safety.config.stale_after_s) or not np.all(np.isfinite(measured)):
            out = self.safety.step(None, measured, age)  # watchdog / NaN-state path
        else:
            out = self._run_policy(reading, measured, age)
        compute = time.perf_counter() - t_start
        if compute > self.period:
            self.counters["late_ticks"] += 1
        if out.publish:
            self._publish(out.target)
            if self._timing_pub is not None:
                self._timing_pub.publish(
                    Float64MultiArray(data=[float(self._seq), reading.stamp_s, recv, tick_wall, self._now(), compute])
                )
        self._maybe_status()

    def _run_policy(self, reading, measured: np.ndarray, age: float) -> SafetyOutput:
        missing = self.poses.missing()
        if missing:
            self.exec_fault = f"waiting for poses of {missing}"
            return self.safety.hold(None)
        if not np.all(np.isfinite(reading.velocity)):
            return self.safety.hold(Fault.NONFINITE_STATE, "NaN/inf in joint velocities")
        if not self._task_lock.acquire(timeout=0.3 * self.period):
            return self.safety.hold(None)  # the planner thread still holds the scene: skip this period
        try:
            self.task.load_state(reading, {o: self.poses.latest(o) for o in self.task.objects})
            obs = self.task.observe()
            self._last_tcp = self.task.tcp_pos().round(4).tolist()
        finally:
            self._task_lock.release()
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
            target = self.task.targets_for_action(action)[self._cmd_idx]
        finally:
            self._task_lock.release()
        return self.safety.step(target, measured, age)

    def _check_done(self, obs) -> bool:
        now = time.monotonic()
        if getattr(self.policy, "done", False):  # a scripted skill or a plan that finished
            self._finish(f"skill finished: {self.info.name}")
            return True
        goal_holds = getattr(self.policy, "goal_holds", None)  # a plan's symbolic goal
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
        if self.params.interface == "position":
            msg = Float64MultiArray(data=target.tolist())
        else:
            msg = JointTrajectory()
            msg.joint_names = list(self.params.joints)
            sec = int(self.period)
            point = JointTrajectoryPoint(positions=target.tolist(), time_from_start=Duration(sec=sec, nanosec=int((self.period - sec) * 1e9)))
            msg.points = [point]
        self._cmd_pub.publish(msg)
        self._seq += 1
        self.counters["published"] += 1

    # -- watchdog and status ---------------------------------------------------------------
    def _on_watchdog(self) -> None:
        if self.mode != "running" or self.safety.estopped:
            return
        reading = self.joints.latest()
        if reading is None:
            self.safety.step(None, None, None)
        else:
            age = self._age(reading)
            if not age <= self.safety.config.stale_after_s:
                self.safety.step(None, reading.position[self._cmd_idx], age)
                self._next_tick = None  # restart the clock when states return
        self._maybe_status()

    @property
    def state(self) -> str:
        """Current state for ~/status: estop | stopped | done | idle | waiting | running | hold | stale."""
        if self.safety.estopped:
            return SafetyState.ESTOP.value
        if self.mode != "running":
            return self.mode
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
            "tcp": self._last_tcp,
            "command_topic": self.command_topic,
            "rate_hz": round(1.0 / self.period, 3),
            **({"plan": self.policy.summary()} if hasattr(self.policy, "summary") else {}),
            **self.counters,
            "held": s.counters.held,
            "suppressed": s.counters.suppressed,
            "clamped": dict(s.counters.clamped),
            "rejected_states": self.joints.rejected,
            "command_subscribers": self._cmd_pub.get_subscription_count(),
            "state_age": None if (r := self.joints.latest()) is None else round(self._age(r), 4),
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
        self.safety.pause()
        self._success_since = None
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
            self._publish(hold)  # one hold command so a trajectory controller stops here
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
