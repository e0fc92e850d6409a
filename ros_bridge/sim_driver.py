"""What sim_robot speaks: its own topics, or a real driver's as a robot profile describes them.

Without a profile sim_robot publishes every joint on one topic (``joint_states_topic``, at
``publish_rate``) under the description's names and obeys ``/<controller>/commands`` and
``/<controller>/joint_trajectory``. With one (``profile: fr3``) it publishes and obeys what that
driver does: each joint-state source on its own topic at its own rate under the driver's joint
names (franka_ros2: the arm on /franka/joint_states at 1 kHz, the gripper on
/fr3_gripper/joint_states at 50 Hz) plus the merged topic when the driver has one (30 Hz
/joint_states); the arm controller's topics and, when the control_msgs types load, its
FollowJointTrajectory action server (goals with unknown joints are rejected, as
joint_trajectory_controller does; a new goal replaces the running one); the gripper's own path
(a GripperCommand action server whose position is the profile's command joint's target, or the
gripper controller's topics). Object poses are stamped in ``object_frame`` (default: the
profile's base frame), expressed there through the profile's static transform.

`SimDriverIO` only builds the ROS side and hands commands to the node's handlers; the physics
stays in `sim_robot`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from ros_bridge._ros import COMMAND_QOS
from ros_bridge.params import SimRobotParams
from ros_bridge.profile import StaticTransform

from rclpy.node import Node  # noqa: E402
from sensor_msgs.msg import JointState  # noqa: E402
from std_msgs.msg import Float64MultiArray  # noqa: E402
from trajectory_msgs.msg import JointTrajectory  # noqa: E402

__all__ = ["SimDriverIO", "StateStream"]


@dataclass
class StateStream:
    """One joint-state topic sim_robot publishes: which joints (indices into its state) and how often."""

    topic: str
    names: tuple[str, ...]  # as published (driver names with a profile)
    index: np.ndarray  # into the description-order state vector
    period_s: float
    publisher: object
    message: JointState
    next_due: float = 0.0

    def due(self, now: float) -> bool:
        """True when this topic should publish at `now` (monotonic); advances its schedule."""
        if now + 1e-4 < self.next_due:
            return False
        # Skip missed periods rather than bursting to catch up (as a driver's timer would).
        self.next_due = max(self.next_due + self.period_s, now + 0.5 * self.period_s)
        return True


class SimDriverIO:
    """sim_robot's topics, subscriptions and action servers (see the module docstring)."""

    def __init__(
        self,
        node: Node,
        params: SimRobotParams,
        joint_names: Sequence[str],
        on_command: Callable[[str, object], None],
        gripper_width_targets: Callable[[float], np.ndarray],
    ):
        """joint_names: the description's joints, arm then gripper (the state vector's order).
        on_command(kind, payload): the node's command handler ("trajectory", "commands",
        "gripper_commands", "gripper_targets"). gripper_width_targets: width -> gripper joint targets."""
        self.params = params
        profile = params.robot_profile
        self.profile = profile
        desc_names = tuple(joint_names)
        to_driver = dict(zip(desc_names, profile.to_driver(desc_names))) if profile else {n: n for n in desc_names}
        self.driver_names = tuple(to_driver[n] for n in desc_names)
        index_of = {drv: i for i, drv in enumerate(self.driver_names)}
        self.streams: list[StateStream] = []

        def stream(topic: str, names: Sequence[str], rate: float) -> None:
            msg = JointState()
            msg.name = list(names)
            pub = node.create_publisher(JointState, topic, 10)
            self.streams.append(StateStream(topic, tuple(names), np.array([index_of[n] for n in names]), 1.0 / rate, pub, msg))

        if profile is None:
            stream(params.joint_states_topic, self.driver_names, params.publish_rate)
            self.controller = params.controller.strip("/")
            self.command_joints = params.command_joints
            self.object_frame = params.object_frame or "world"
            self._object_tf: StaticTransform | None = None
        else:
            for s in profile.sources:
                stream(s.topic, s.joints, s.rate_hz)
            if profile.merged is not None:
                stream(profile.merged.topic, self.driver_names, profile.merged.rate_hz)
            self.controller = profile.arm.controller
            self.command_joints = profile.arm.joints
            self.object_frame = params.object_frame or profile.base_frame
            tf = profile.frame(self.object_frame)
            if tf is None:
                raise ValueError(f"object_frame {self.object_frame!r} has no transform in profile {profile.name!r}")
            self._object_tf = tf
        self.rate_hz = max([params.publish_rate, *(1.0 / s.period_s for s in self.streams)])
        c = self.controller
        node.create_subscription(JointTrajectory, f"/{c}/joint_trajectory", lambda m: on_command("trajectory", m), COMMAND_QOS)
        node.create_subscription(Float64MultiArray, f"/{c}/commands", lambda m: on_command("commands", m), COMMAND_QOS)
        self.paths = [f"/{c}/commands", f"/{c}/joint_trajectory"]
        self.gripper_joints: tuple[str, ...] = ()
        self._servers: list[object] = []
        if profile is None:
            return
        self.gripper_joints = profile.gripper.joints
        follow = grip = None
        if params.action_servers:  # (false: another node, a benchmark's recorder, serves them)
            try:
                from rclpy.action import ActionServer, GoalResponse

                from ros_bridge.interfaces import action_types

                follow, grip = action_types()
            except ImportError:
                pass
        known = set(self.driver_names)
        if follow is not None:

            def arm_goal(request: object) -> object:
                names = list(request.trajectory.joint_names)
                ok = names and set(names) <= known and len(set(names)) == len(names)
                return GoalResponse.ACCEPT if ok else GoalResponse.REJECT  # INVALID_JOINTS, as the JTC does

            def arm_execute(handle: object) -> object:
                on_command("trajectory", handle.request.trajectory)
                handle.succeed()
                return follow.Result(error_code=follow.Result.SUCCESSFUL)

            name = f"/{c}/follow_joint_trajectory"
            # Results are kept 1 s, not rclpy's 15 min: each status message lists every goal kept,
            # and a goal per control period would grow it without end.
            self._servers.append(ActionServer(node, follow, name, arm_execute, goal_callback=arm_goal, result_timeout=1))
            self.paths.append(name)
        g = profile.gripper
        if g.interface == "action" and grip is not None:
            desc = profile.description
            k = list(g.joints).index(g.command_joint)
            scale, offset = desc.gripper.width_to_joint_scale[k], desc.gripper.width_to_joint_offset[k]

            def grip_execute(handle: object) -> object:
                width = (handle.request.command.position - offset) / scale
                on_command("gripper_targets", gripper_width_targets(width))
                handle.succeed()
                return grip.Result(position=float(handle.request.command.position), reached_goal=True)

            self._servers.append(ActionServer(node, grip, g.action, grip_execute, result_timeout=1))
            self.paths.append(g.action)
        elif g.interface in ("trajectory", "position"):
            kind = "trajectory" if g.interface == "trajectory" else "gripper_commands"
            topic = f"/{g.controller}/{'joint_trajectory' if g.interface == 'trajectory' else 'commands'}"
            msg_type = JointTrajectory if g.interface == "trajectory" else Float64MultiArray
            node.create_subscription(msg_type, topic, lambda m: on_command(kind, m), COMMAND_QOS)
            self.paths.append(topic)

    def object_pose(self, position: Sequence[float], quat_wxyz: Sequence[float]) -> tuple[np.ndarray, np.ndarray]:
        """A pose in the scene's world (the base frame), as published in `object_frame`."""
        if self._object_tf is None:
            return np.asarray(position, dtype=np.float64), np.asarray(quat_wxyz, dtype=np.float64)
        return self._object_tf.inverse_apply(position, quat_wxyz)
