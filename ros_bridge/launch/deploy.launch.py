"""Launch the skillstack bridge in a ROS 2 workspace.

    ros2 launch ros_bridge deploy.launch.py                       # sim_robot + skill_executor
    ros2 launch ros_bridge deploy.launch.py robot:=real params_file:=/path/to/params.yaml

robot:=sim also starts sim_robot (MuJoCo as the robot); robot:=real starts only the
skill_executor, which then talks to your ros2_control controllers. Both nodes read their
parameters from the same YAML (default: share/ros_bridge/config/deploy.yaml).
Pip-only installs (no launch system) run the same thing with `skillstack deploy`.
"""

import os

from ament_index_python.packages import get_package_share_directory
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument
from launch.conditions import IfCondition
from launch.substitutions import EqualsSubstitution, LaunchConfiguration
from launch_ros.actions import Node


def generate_launch_description() -> LaunchDescription:
    """sim_robot (when robot:=sim) and skill_executor, parameters from `params_file`."""
    default_params = os.path.join(get_package_share_directory("ros_bridge"), "config", "deploy.yaml")
    params_file = LaunchConfiguration("params_file")
    return LaunchDescription(
        [
            DeclareLaunchArgument("robot", default_value="sim", choices=["sim", "real"], description="sim: also start sim_robot"),
            DeclareLaunchArgument("params_file", default_value=default_params, description="ROS 2 parameter YAML for both nodes"),
            Node(
                package="ros_bridge",
                executable="sim_robot",
                name="sim_robot",
                parameters=[params_file],
                output="screen",
                condition=IfCondition(EqualsSubstitution(LaunchConfiguration("robot"), "sim")),
            ),
            Node(
                package="ros_bridge",
                executable="skill_executor",
                name="skill_executor",
                parameters=[params_file],
                output="screen",
            ),
        ]
    )
