"""ROS 2 bridge (layer 5): run library skills on a robot, or on MuJoCo posing as one.

Modules that need no ROS (importable anywhere):
  safety    the always-on safety layer (joint/velocity/workspace limits, watchdog, NaN guard, e-stop, ramp)
  state     joint-state and object-pose caches matched by name
  profile   robot profiles (config/profiles/*.yaml): a driver's names, topics, rates, controllers, frames
  joint_states  joint-state topics merged by name, each with its own watchdog threshold
  bringup   parameters + profile -> what the executor will do, and the start-up summary
  interfaces    build control_msgs' actions from their definitions (python -m ros_bridge.interfaces)
  task      the robot-side twin of a task: observation and action -> joint targets via envs
  hierarchy the hierarchical controller run against the robot (pulling env adapter; no rclpy)
  params    node parameters and the ROS 2 parameter YAML
  launcher  start the nodes as processes (the pip-only stand-in for `ros2 launch`)
  _env      where rclpy comes from (pip wheels or a sourced system install)
Modules that import rclpy (ROS 2 Jazzy: `pip install 'skillstack[ros]'` or a system install):
  skill_executor, sim_robot   the two nodes (python -m ros_bridge.<node> --ros-args ...)
  command_paths  the executor's outputs: arm controller (topic or action), the gripper's own path, preview
  sim_driver     what sim_robot speaks: its own topics or a profile's driver's
  deploy    `skillstack deploy`: sim_robot + skill_executor from one YAML, with progress
  replay    stream a recorded demonstration's joint targets through the safety layer
  probe     an rclpy observer/publisher used by deploy, replay, tests and the benchmark
  relay     a bare rclpy relay: the benchmark's middleware baseline
Nothing here is imported by lower layers; rclpy is imported only inside this package.
"""
