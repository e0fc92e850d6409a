"""Launch the perception node (object poses from a camera) beside deploy.launch.py.

    ros2 launch ros_bridge perception.launch.py profile:=fr3
    ros2 launch ros_bridge perception.launch.py params_file:=/path/to/params.yaml

It reads the camera (topics, transport, calibration) from the robot profile and publishes
/objects/<name>/pose in the profile's base frame, stamped with each image's time. For simulation,
give sim_robot `camera.rate` (and `object_pose_prefix: /ground_truth/objects`, so its true poses do
not reach the executor); `skillstack deploy --perception` does all of that without the launch system.
"""

import os

from ament_index_python.packages import get_package_share_directory
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node


def generate_launch_description() -> LaunchDescription:
    """The perception node, parameters from `params_file` and `profile`."""
    default_params = os.path.join(get_package_share_directory("ros_bridge"), "config", "deploy.yaml")
    return LaunchDescription(
        [
            DeclareLaunchArgument("params_file", default_value=default_params, description="ROS 2 parameter YAML (its perception: section)"),
            DeclareLaunchArgument("profile", default_value="panda_sim", description="robot profile: panda_sim, fr3, ur or a YAML path"),
            Node(
                package="ros_bridge",
                executable="perception",
                name="perception",
                parameters=[LaunchConfiguration("params_file"), {"profile": LaunchConfiguration("profile")}],
                output="screen",
            ),
        ]
    )
