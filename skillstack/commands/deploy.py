"""`skillstack deploy`: run a skill on a robot (or MuJoCo's sim_robot) through ROS 2.

Thin layer over `ros_bridge.deploy.deploy`; the same parameter YAML works with
`ros2 launch ros_bridge deploy.launch.py` in a ROS 2 workspace.
"""

from __future__ import annotations

import argparse
from pathlib import Path


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the `deploy` subcommand."""
    p = subparsers.add_parser(
        "deploy",
        help="run a skill through ROS 2 on sim_robot or a real arm (pip-only stand-in for ros2 launch)",
        description=(
            "Start skill_executor (and sim_robot with --robot sim) with parameters from a ROS 2 "
            "parameter YAML, follow its status and stop when the task is done. With no arguments: "
            "the Panda reaches to a default goal with the task's scripted expert on sim_robot, "
            "through the same IK and safety layer a learned skill uses. Needs the ros extra: "
            "pip install 'skillstack[ros]'."
        ),
    )
    p.add_argument("--robot", choices=("sim", "real"), default="sim", help="sim: also start sim_robot (default); real: talk to your ros2_control controllers (never moves before ~/start or --start)")
    p.add_argument("--profile", default=None, metavar="NAME", help="robot profile for both nodes: panda_sim (default), fr3 (franka_ros2), ur (Universal Robots driver) or a profile YAML; sim_robot then speaks that driver")
    p.add_argument("--shadow", action="store_true", help="compute every command but send none to the controllers: publish each on /skill_executor/preview (JointTrajectory)")
    p.add_argument("--start", action="store_true", help="with --robot real: start moving at once instead of waiting for the ~/start service")
    p.add_argument("--condition", default=None, metavar="NAME", help="with --robot sim: a perturbation condition sim_robot applies as the envs do (nominal, dynamics, latency40, latency80, obs_noise5mm, obs_noise1cm, drops, realistic, or a YAML file[:NAME])")
    p.add_argument("--perception", action="store_true", help="object poses only from the profile's camera through the perception node (fiducial markers); with --robot sim, sim_robot renders that camera and publishes no poses where the executor listens")
    p.add_argument("--camera-rate", type=float, default=10.0, metavar="HZ", help="with --perception --robot sim: sim_robot's camera rate (default 10 Hz)")
    p.add_argument("--params", metavar="FILE", default=None, help="ROS 2 parameter YAML for both nodes (default: the packaged config/deploy.yaml)")
    p.add_argument("--skill", default=None, help="override: 'expert', a skill package directory, or name[@version]")
    p.add_argument("--plan", default=None, metavar="TASK", help="override: run the hierarchical controller over library skills on a long-horizon task (pick-place, stack-two, ... or a YAML spec)")
    p.add_argument("--library", default=None, help="override: skill library root for --skill NAME and --plan")
    p.add_argument("--lock", metavar="FILE", default=None, help="override: run only the skills this lock file pins (skillstack skills lock); anything else is refused")
    p.add_argument("--task", default=None, help="override: env id whose observation/IK the skill uses (e.g. skillstack/PandaReach-v0)")
    p.add_argument("--goal", nargs="+", type=float, default=None, metavar="X", help="override: task goal numbers (e.g. --goal 0.5 0.1 0.25)")
    p.add_argument("--interface", choices=("position", "trajectory", "action"), default=None, help="override: /<controller>/commands, /<controller>/joint_trajectory or the FollowJointTrajectory action")
    p.add_argument("--duration", type=float, default=None, metavar="S", help="stop after S seconds (default: when the task is done, or Ctrl-C)")
    p.add_argument("--keep-running", action="store_true", help="do not stop when the task is done")
    p.add_argument("--domain-id", type=int, default=None, help="ROS_DOMAIN_ID for the nodes (default: from the environment)")
    p.add_argument("--log-dir", default=None, help="write node logs to this folder instead of the terminal")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Run the deployment; exit 0 when it ended normally (done, time up or Ctrl-C)."""
    from ros_bridge._env import RosUnavailableError, ensure_ros_env

    try:
        ensure_ros_env()  # may re-exec this process once with the ROS library path
    except RosUnavailableError as exc:
        raise ValueError(str(exc)) from None
    from ros_bridge.deploy import deploy, parse_goal

    over: dict[str, object] = {}
    if args.skill is not None:
        over["skill"] = args.skill
    if args.task is not None:
        over["task"] = args.task
    if args.plan is not None:
        over["plan_task"] = args.plan
    if args.library is not None:
        over["library_root"] = args.library
    if args.lock is not None:
        over["lock_file"] = str(Path(args.lock).absolute())
    if args.goal is not None:
        over["goal"] = parse_goal(args.goal)
    if args.interface is not None:
        over["interface"] = args.interface
    result = deploy(
        robot=args.robot,
        params_file=args.params,
        overrides={"skill_executor": over} if over else None,
        duration=args.duration,
        until_done=not args.keep_running,
        domain_id=args.domain_id,
        log_dir=args.log_dir,
        profile=args.profile,
        shadow=args.shadow,
        start=args.start,
        condition=args.condition,
        perception=args.perception,
        camera_rate=args.camera_rate,
    )
    return 0 if result.ok else 1
