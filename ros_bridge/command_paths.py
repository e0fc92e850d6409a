"""Where the executor's safe joint targets go: the arm's controller, the gripper's own path, or a preview.

`CommandPaths` is built from a `bringup.BringupPlan` and owns every rclpy publisher and action
client that reaches the robot:

* arm: std_msgs/Float64MultiArray on ``/<controller>/commands`` (forward_command_controller),
  trajectory_msgs/JointTrajectory on ``/<controller>/joint_trajectory`` (one point, one period
  ahead, as joint_trajectory_controller's maintainers recommend for streaming) or a
  control_msgs/FollowJointTrajectory goal per period on ``/<controller>/follow_joint_trajectory``
  (a new goal replaces the running one). Without the control_msgs types the action falls back to
  the trajectory topic of the same controller, and says so;
* gripper, when the profile gives it its own path: a control_msgs/GripperCommand goal (position =
  the profile's command joint's target) whenever the target moves by more than the profile's
  deadband, or the gripper controller's topics. The gripper's own driver paces the fingers, so
  its goals carry the requested opening clipped to the position limits, not the per-period
  velocity step the arm gets;
* shadow mode: none of the above exists (no publisher, no client on any controller name); each
  would-be command is published on ``~/preview`` as one JointTrajectory of every commanded joint,
  for RViz or a log.

`not_ready()` says what is missing (no controller listening, no action server) so the executor
holds instead of talking to nobody.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from ros_bridge._ros import COMMAND_QOS
from ros_bridge.bringup import BringupPlan
from ros_bridge.profile import ProfileError

from builtin_interfaces.msg import Duration  # noqa: E402
from rclpy.node import Node  # noqa: E402
from std_msgs.msg import Float64MultiArray  # noqa: E402
from trajectory_msgs.msg import JointTrajectory, JointTrajectoryPoint  # noqa: E402

__all__ = ["CommandPaths", "command_fingerprint"]


def command_fingerprint(values) -> float:
    """A number identifying an arm command by its values (the sum, rounded to 1e-9), so a
    receiver can pair what it got with the executor's timing record for it."""
    return round(float(np.sum(np.asarray(values, dtype=np.float64))), 9)


def _duration(seconds: float) -> Duration:
    sec = int(seconds)
    return Duration(sec=sec, nanosec=int(round((seconds - sec) * 1e9)) % 1_000_000_000)


def _trajectory(names: tuple[str, ...], values: np.ndarray, ahead_s: float) -> JointTrajectory:
    msg = JointTrajectory(joint_names=list(names))
    msg.points = [JointTrajectoryPoint(positions=[float(v) for v in values], time_from_start=_duration(ahead_s))]
    return msg


class CommandPaths:
    """The executor's outputs (see the module docstring)."""

    def __init__(self, node: Node, plan: BringupPlan, period_s: float, log: Callable[[str], None]):
        self.plan = plan
        self.period_s = period_s
        self._log = log
        self.n_arm = len(plan.arm_joints)
        self.counters = {"arm_goals": 0, "arm_goals_rejected": 0, "gripper_goals": 0, "gripper_goals_rejected": 0}
        self.notes: list[str] = []  # fallbacks taken, for the summary
        self._arm_pub = self._arm_client = self._grip_pub = self._grip_client = self._preview = None
        self._grip_last: float | None = None
        self.last_error = ""
        if plan.shadow:
            self._preview = node.create_publisher(JointTrajectory, "~/preview", COMMAND_QOS)
            self.arm_path = f"nothing (shadow: {self._preview.topic_name}; would be {plan.interface} to {plan.controller})"
            self.gripper_path = "nothing (shadow: in the preview)"
            return
        self.arm_path = self._make_arm(node, plan)
        self.gripper_path = self._make_gripper(node, plan)

    # -- construction ------------------------------------------------------------------------
    def _make_arm(self, node: Node, plan: BringupPlan) -> str:
        c = plan.controller
        interface = plan.interface
        if interface == "action":
            try:
                from rclpy.action import ActionClient

                from ros_bridge.interfaces import action_types

                follow, _ = action_types()
                self._follow = follow
                self._arm_client = ActionClient(node, follow, f"/{c}/follow_joint_trajectory")
                return f"FollowJointTrajectory goals on /{c}/follow_joint_trajectory ({self.n_arm} joints)"
            except ImportError as exc:
                note = f"arm action unavailable, using the /{c}/joint_trajectory topic instead: {exc}"
                self.notes.append(note)
                self._log(note)
                interface = "trajectory"
        if interface == "position":
            self._arm_pub = node.create_publisher(Float64MultiArray, f"/{c}/commands", COMMAND_QOS)
        else:
            self._arm_pub = node.create_publisher(JointTrajectory, f"/{c}/joint_trajectory", COMMAND_QOS)
        self._arm_kind = interface
        return f"{self._arm_pub.topic_name} ({'Float64MultiArray' if interface == 'position' else 'JointTrajectory'}, {self.n_arm} joints)"

    def _make_gripper(self, node: Node, plan: BringupPlan) -> str:
        g = plan.gripper
        if g.interface == "arm":
            return f"inside the arm's command ({list(g.joints)})"
        if g.interface == "none":
            return "none (the profile gives the gripper no command path)"
        if g.interface == "action":
            try:
                from rclpy.action import ActionClient

                from ros_bridge.interfaces import action_types

                _, grip = action_types()
            except ImportError as exc:
                raise ProfileError(f"profile {plan.profile.name!r}: the gripper is commanded by control_msgs/GripperCommand on {g.action}, "
                                   f"which cannot load here ({exc})") from None  # fmt: skip
            self._grip_type = grip
            self._grip_client = ActionClient(node, grip, g.action)
            self._grip_index = plan.gripper_joints.index(g.command_joint)
            return f"GripperCommand goals on {g.action} (position = {g.command_joint} target, max_effort {g.max_effort:g})"
        kind = g.interface
        topic = f"/{g.controller}/{'commands' if kind == 'position' else 'joint_trajectory'}"
        self._grip_pub = node.create_publisher(Float64MultiArray if kind == "position" else JointTrajectory, topic, COMMAND_QOS)
        self._grip_kind = kind
        return f"{topic} ({list(plan.gripper_joints)})"

    # -- state -----------------------------------------------------------------------------------
    @property
    def topic(self) -> str:
        """The arm's command topic or action (status and logs)."""
        if self._preview is not None:
            return self._preview.topic_name
        if self._arm_client is not None:
            return f"/{self.plan.controller}/follow_joint_trajectory"
        return self._arm_pub.topic_name

    def subscribers(self) -> int:
        """Readers of the arm's topic (1 when its action server is up; the preview's in shadow mode)."""
        if self._preview is not None:
            return self._preview.get_subscription_count()
        if self._arm_client is not None:
            return int(self._arm_client.server_is_ready())
        return self._arm_pub.get_subscription_count()

    def not_ready(self) -> str:
        """Why commands cannot go out now ('' when they can): a controller or server is missing."""
        if self._preview is not None:
            return ""
        if self._arm_client is not None and not self._arm_client.server_is_ready():
            return f"no action server {self.topic} (is {self.plan.controller} loaded and active?)"
        if self._arm_pub is not None and self._arm_pub.get_subscription_count() == 0:
            return f"no controller listens on {self.topic} (is {self.plan.controller} loaded and active?)"
        if self._grip_client is not None and not self._grip_client.server_is_ready():
            return f"no gripper action server {self.plan.gripper.action} (is the gripper driver running?)"
        if self._grip_pub is not None and self._grip_pub.get_subscription_count() == 0:
            return f"no gripper controller listens on {self._grip_pub.topic_name}"
        return ""

    # -- sending ---------------------------------------------------------------------------------
    def send(self, target: np.ndarray, gripper_request: np.ndarray | None = None) -> None:
        """Send safe `target` (arm controller joints, then the gripper's own joints). `gripper_request`:
        the gripper's requested targets within their position limits (the gripper driver paces them)."""
        arm = target[: self.n_arm]
        grip = target[self.n_arm :] if gripper_request is None else gripper_request
        if self._preview is not None:
            self._preview.publish(_trajectory(self.plan.command_joints, np.concatenate((arm, grip)), self.period_s))
            return
        self._send_arm(arm)
        if len(grip):
            self._send_gripper(grip)

    def _send_arm(self, arm: np.ndarray) -> None:
        if self._arm_client is not None:
            goal = self._follow.Goal()
            goal.trajectory = _trajectory(self.plan.arm_joints, arm, self.period_s)
            future = self._arm_client.send_goal_async(goal)
            future.add_done_callback(lambda f: self._on_goal_response(f, "arm"))
            self.counters["arm_goals"] += 1
        elif self._arm_kind == "position":
            self._arm_pub.publish(Float64MultiArray(data=[float(v) for v in arm]))
        else:
            self._arm_pub.publish(_trajectory(self.plan.arm_joints, arm, self.period_s))

    def _send_gripper(self, grip: np.ndarray, force: bool = False) -> None:
        if self._grip_client is not None:
            position = float(grip[self._grip_index])
            if not force and self._grip_last is not None and abs(position - self._grip_last) <= self.plan.gripper.goal_deadband:
                return
            goal = self._grip_type.Goal()
            goal.command.position = position
            goal.command.max_effort = float(self.plan.gripper.max_effort)
            future = self._grip_client.send_goal_async(goal)
            future.add_done_callback(lambda f: self._on_goal_response(f, "gripper"))
            self._grip_last = position
            self.counters["gripper_goals"] += 1
        elif self._grip_pub is not None:
            if self._grip_kind == "position":
                self._grip_pub.publish(Float64MultiArray(data=[float(v) for v in grip]))
            else:
                self._grip_pub.publish(_trajectory(self.plan.gripper_joints, grip, self.period_s))

    def _on_goal_response(self, future, which: str) -> None:
        try:
            handle = future.result()
        except Exception as exc:  # the server went away mid-call
            self.last_error = f"{which} goal failed: {exc}"
            return
        if handle is None or not handle.accepted:
            self.counters[f"{which}_goals_rejected"] += 1
            self.last_error = f"{which} goal rejected by {self.topic if which == 'arm' else self.plan.gripper.action}"
            if which == "gripper":
                self._grip_last = None  # try again next period

    def hold(self, target: np.ndarray) -> None:
        """Send `target` once as a hold (e-stop): the arm stops where it is; the gripper is left alone."""
        if self._preview is not None:
            self.send(target)
        else:
            self._send_arm(target[: self.n_arm])

    @property
    def last_gripper_goal(self) -> float | None:
        """The position of the last GripperCommand goal sent (None before one, or without that path)."""
        return self._grip_last

    def reset(self) -> None:
        """Forget the last gripper goal (a restart sends the gripper's target again)."""
        self._grip_last = None
