"""A bare rclpy relay: the middleware floor the ROS benchmark compares the bridge against.

Subscribes /joint_states (best effort, newest only) and republishes each message at once
on /bench_relay/commands as Float64MultiArray [stamp, positions...]: no observation, no
policy, no safety; the same executor type as the bridge's nodes. Run:
``python -m ros_bridge.relay`` (stops on SIGINT/SIGTERM).
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from ros_bridge._ros import STATE_QOS, run_node, stamp_s

from rclpy.node import Node  # noqa: E402
from sensor_msgs.msg import JointState  # noqa: E402
from std_msgs.msg import Float64MultiArray  # noqa: E402

__all__ = ["Relay", "main"]


class Relay(Node):
    """JointState in, Float64MultiArray [stamp, positions...] out, nothing in between."""

    def __init__(self, **node_kwargs):
        super().__init__("bench_relay", **node_kwargs)
        self._pub = self.create_publisher(Float64MultiArray, "/bench_relay/commands", 10)
        self.create_subscription(JointState, "/joint_states", self._on, STATE_QOS)

    def _on(self, msg: JointState) -> None:
        self._pub.publish(Float64MultiArray(data=[stamp_s(msg.header.stamp), *msg.position]))


def main(args: Sequence[str] | None = None) -> int:
    """Console entry point."""
    return run_node(Relay, sys.argv if args is None else args)


if __name__ == "__main__":
    raise SystemExit(main())
