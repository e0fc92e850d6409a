"""Launch the skillstack bridge in a ROS 2 workspace.

    ros2 launch ros_bridge deploy.launch.py                       # sim_robot + skill_executor
    ros2 launch ros_bridge deploy.launch.py profile:=fr3          # sim_robot speaking franka_ros2's topics
    ros2 launch ros_bridge deploy.launch.py robot:=real profile:=fr3 params_file:=/path/to/params.yaml
    ros2 launch ros_bridge deploy.launch.py robot:=real profile:=ur shadow:=true

robot:=sim also starts sim_robot (MuJoCo as the robot, speaking the profile's driver);
robot:=real starts only the skill_executor, which then talks to your controllers and never
moves before ~/start is called (or start:=true). shadow:=true computes every command and
publishes it on /skill_executor/preview, sending nothing to the controllers. Both nodes read
their parameters from the same YAML (default: share/ros_bridge/config/deploy.yaml); profile:=
(default panda_sim) picks the robot profile (config/profiles/NAME.yaml, or a path).
Pip-only installs (no launch system) run the same thing with `skillstack deploy`.
"""

import os

from ament_index_python.packages import get_package_share_directory
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument
from launch.conditions import IfCondition, UnlessCondition
from launch.substitutions import EqualsSubstitution, LaunchConfiguration
from launch_ros.actions import Node


def generate_launch_description() -> LaunchDescription:
    """sim_robot (when robot:=sim) and skill_executor, parameters from `params_file` and `profile`."""
    default_params = os.path.join(get_package_share_directory("ros_bridge"), "config", "deploy.yaml")
    params_file = LaunchConfiguration("params_file")
    profile = LaunchConfiguration("profile")
    is_sim = EqualsSubstitution(LaunchConfiguration("robot"), "sim")
    chosen = {"profile": profile, "shadow": LaunchConfiguration("shadow")}
    return LaunchDescription(
        [
            DeclareLaunchArgument("robot", default_value="sim", choices=["sim", "real"], description="sim: also start sim_robot"),
            DeclareLaunchArgument("params_file", default_value=default_params, description="ROS 2 parameter YAML for both nodes"),
            DeclareLaunchArgument("profile", default_value="panda_sim", description="robot profile: panda_sim, fr3, ur or a YAML path"),
            DeclareLaunchArgument("shadow", default_value="false", choices=["true", "false"], description="publish commands on ~/preview only"),
            DeclareLaunchArgument("start", default_value="false", choices=["true", "false"], description="robot:=real: start without ~/start"),
            Node(
                package="ros_bridge",
                executable="sim_robot",
                name="sim_robot",
                parameters=[params_file, {"profile": profile}],
                output="screen",
                condition=IfCondition(is_sim),
            ),
            Node(  # simulation: the file's autostart
                package="ros_bridge",
                executable="skill_executor",
                name="skill_executor",
                parameters=[params_file, chosen],
                output="screen",
                condition=IfCondition(is_sim),
            ),
            Node(  # a real robot: no autostart unless start:=true
                package="ros_bridge",
                executable="skill_executor",
                name="skill_executor",
                parameters=[params_file, {**chosen, "autostart": LaunchConfiguration("start")}],
                output="screen",
                condition=UnlessCondition(is_sim),
            ),
        ]
    )
