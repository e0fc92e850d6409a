"""`skillstack calibrate`: a camera's extrinsic by hand-eye calibration (perception.calibration), in simulation."""

from __future__ import annotations

import argparse
from pathlib import Path


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "calibrate",
        help="hand-eye calibrate a camera (eye-to-hand or eye-in-hand) and write it into a profile",
        description="Move the simulated arm through random poses around home, see a marker in each image "
        "(for a fixed camera: a marker on the hand, eye-to-hand; for a camera on the arm: the marker lying on "
        "the table, eye-in-hand), solve with OpenCV's hand-eye methods (the one with the smallest residual "
        "wins), report the residual and the error against the camera's true pose, and with --write put the "
        "result into a robot profile's cameras.<camera>.calibration (atomic; the rest of the file is kept).",
    )
    p.add_argument("--robot", default="panda", help="shipped robot (default: panda)")
    p.add_argument("--camera", default="scene", help="camera: scene (fixed) or wrist (on the arm) (default: scene)")
    p.add_argument("--views", type=int, default=20, help="views with the marker seen (default: 20)")
    p.add_argument("--width", type=int, default=640, help="image width (default: 640)")
    p.add_argument("--height", type=int, default=480, help="image height (default: 480)")
    p.add_argument("--seed", type=int, default=0, help="seed of the random arm poses (default: 0)")
    p.add_argument("--write", metavar="PROFILE", default=None,
                   help="profile YAML path or shipped ROS profile name (panda_sim, fr3, ur) to write the extrinsic into")
    p.add_argument("--json", metavar="OUT", default=None, help="also write the result as JSON")
    p.set_defaults(func=run)


def profile_path(profile: str) -> Path:
    """A profile YAML path, or a shipped ROS profile's by name (ros_bridge/config/profiles/NAME.yaml)."""
    path = Path(profile)
    if path.suffix in (".yaml", ".yml") or path.exists():
        if not path.exists():
            raise FileNotFoundError(f"no profile file {path}")
        return path
    import importlib.util

    spec = importlib.util.find_spec("ros_bridge")  # the package's folder, without importing it (rclpy)
    folder = Path(next(iter(spec.submodule_search_locations))) / "config" / "profiles" if spec else None
    shipped = sorted(p.stem for p in folder.glob("*.yaml")) if folder and folder.is_dir() else []
    if profile not in shipped:
        raise ValueError(f"unknown profile {profile!r}; shipped profiles: {shipped} (or pass a YAML path)")
    return folder / f"{profile}.yaml"


def run(args: argparse.Namespace) -> int:
    import yaml

    from common.atomic import atomic_write_json
    from common.table import print_table
    from perception.calibration import CalibrationError, calibrate_in_sim, write_profile_calibration
    from sim_assets import load_robot

    if args.views < 5:
        raise ValueError(f"--views must be at least 5, got {args.views}")
    target = profile_path(args.write) if args.write else None
    robot = load_robot(args.robot)
    if target is not None:
        doc = yaml.safe_load(target.read_text(encoding="utf-8")) or {}
        if doc.get("robot") not in (None, robot.name):
            raise CalibrationError(f"profile {target} is for robot {doc.get('robot')!r}, not {robot.name!r}")
    result, views = calibrate_in_sim(robot.name, args.camera, args.views, args.seed, args.width, args.height)
    s = result.summary()
    print_table(
        ["camera", "mode", "views (poses tried)", "method", "residual mm", "residual deg", "error vs truth mm", "error vs truth deg"],
        [[args.camera, s["mode"], f"{s['views']} ({views.tried})", s["method"], s["residual_mm"], s["residual_deg"],
          s["error_vs_truth_mm"], s["error_vs_truth_deg"]]],
    )
    frame = "T_base_camera" if result.mode == "eye_to_hand" else f"T_{robot.flange_site}_camera"
    print(f"{frame} =")
    for row in s["T"]:
        print("  [" + ", ".join(f"{v: .6f}" for v in row) + "]")
    if args.json:
        atomic_write_json(args.json, {"robot": robot.name, "camera": args.camera, **s, "per_method": result.per_method})
    if target is not None:
        if result.mode == "eye_to_hand":
            base = (doc.get("base_frame") or robot.base_frame)
        else:
            base = robot.flange_site  # a camera on the arm is calibrated in the flange frame
        from dataclasses import replace

        model = replace(views.camera.with_extrinsic(result.T), base_frame=base)
        write_profile_calibration(target, model)
        print(f"wrote cameras.{args.camera}.calibration (base frame {base}) into {target}")
    return 0
