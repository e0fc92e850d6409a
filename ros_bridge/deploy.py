"""`skillstack deploy`: the pip-only way to run what deploy.launch.py runs.

Starts sim_robot (robot="sim") and skill_executor as processes with one parameter YAML
(the packaged config/deploy.yaml unless given), prints the executor's start-up summary
(topics, joints, limits and rates in force), follows its ~/status over ROS 2, prints
progress, and stops the nodes when the task is done, the time is up, a node dies, or the
user presses Ctrl-C. With no arguments it reaches to the default goal with the task's
scripted expert on sim_robot, so a newcomer sees the arm move.

`profile` picks a robot profile for both nodes (sim_robot then speaks that driver). On a
real robot (robot="real") the executor never starts by itself: it waits for ~/start, or
starts at once only with `start=True`; `shadow=True` sends nothing to the controllers and
publishes every would-be command on /skill_executor/preview instead.

`perception=True` also starts the perception node on the profile's camera: object poses then come
only from pixels. sim_robot renders that camera (at `camera_rate`, the calibration's resolution)
and publishes its true poses under /ground_truth/objects/<name>/pose, where the executor does not
listen (they are there to compare with).
"""

from __future__ import annotations

import math
import os
import signal
import tempfile
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ros_bridge.launcher import NodeProcess, merged_params_file
from ros_bridge.params import DEFAULT_PARAMS_FILE, params_from_mapping, read_params_file
from ros_bridge.perception_params import PerceptionParams, camera_topics
from ros_bridge.task import resolve_task

__all__ = ["GROUND_TRUTH_PREFIX", "DeployResult", "deploy", "perceived_pose_settings", "perception_overrides"]

GROUND_TRUTH_PREFIX = "/ground_truth/objects"  # sim_robot's true poses under --perception (the executor does not read them)


@dataclass
class DeployResult:
    """How a deployment ended."""

    final_state: str  # the executor's last reported state
    done: bool  # the task's success test passed (executor state "done")
    seconds: float
    reason: str  # "done" | "duration" | "interrupted" | "node exited" | "no status"
    status: dict[str, Any] | None = None
    logs: dict[str, str] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        """True unless a node failed or the executor never reported."""
        return self.reason in ("done", "duration", "interrupted")


def _task_objects(task: str) -> tuple[str, ...]:
    import envs

    env = envs.make(task)
    try:
        return tuple(env.unwrapped.objects)
    finally:
        env.close()


def perception_overrides(
    robot: str,
    file_nodes: Mapping[str, Mapping[str, Any]],
    overrides: dict[str, dict[str, Any]],
    objects: Sequence[str],
    camera_rate: float,
) -> PerceptionParams:
    """Fill `overrides` in place so poses come only from pixels: the perception node on the
    executor's profile and the task's `objects`; with robot="sim", sim_robot renders the profile
    camera's MJCF camera at the calibration's resolution and `camera_rate` Hz, and moves its true
    poses to GROUND_TRUTH_PREFIX. Returns the perception node's parameters (ValueError, before any
    node starts, for a camera with no calibration)."""
    ex = {**file_nodes.get("skill_executor", {}), **overrides.get("skill_executor", {})}
    per = overrides.setdefault("perception", {})
    if "profile" in ex:
        per.setdefault("profile", ex["profile"])
    if objects and not {**file_nodes.get("perception", {}), **per}.get("objects"):
        per["objects"] = list(objects)
    if robot == "sim":
        spec = params_from_mapping(PerceptionParams, {**file_nodes.get("perception", {}), **per}).camera_spec
        if spec.calibration is None:
            raise ValueError(f"camera {spec.name!r} has no calibration: the perception node cannot place what it sees")
        image, _, info = camera_topics("/cameras", spec.sim_camera)
        compressed = spec.transport == "compressed"
        overrides.setdefault("sim_robot", {}).update({
            "camera.rate": float(camera_rate), "camera.names": [spec.sim_camera], "camera.topic_prefix": "/cameras",
            "camera.width": spec.calibration.width, "camera.height": spec.calibration.height,
            "camera.raw": not compressed, "camera.compression": "jpeg" if compressed else "",
            "object_pose_prefix": GROUND_TRUTH_PREFIX,
        })  # fmt: skip
        per.update({"image_topic": image, "camera_info_topic": info})
    params = params_from_mapping(PerceptionParams, {**file_nodes.get("perception", {}), **per}, where="perception: ")
    if params.camera_spec.calibration is None:
        raise ValueError(f"camera {params.camera_spec.name!r} has no calibration: run `skillstack calibrate` first")
    # A calibration file of the perception node's own is not a profile camera the executor can look up.
    settings = perceived_pose_settings(params.camera_spec.name if not params.calibration else "")
    for key, value in settings.items():
        overrides.setdefault("skill_executor", {}).setdefault(key, value)
    return params


def perceived_pose_settings(camera: str) -> dict[str, Any]:
    """skill_executor parameters for object poses that come from `camera` (a profile camera, "" =
    none the executor can look up), as `deploy --perception` runs it: poses carried forward from
    their image's stamp (images are 0.1-0.3 s old), a held object riding on the hand (the hand hides
    it), and old poses of objects the arm itself hides from the camera kept (ros_bridge.occlusion)."""
    return {"predict_object_poses": True, "carry_held_objects": True, "occlusion_camera": camera}


def deploy(
    robot: str = "sim",
    params_file: str | Path | None = None,
    *,
    overrides: Mapping[str, Mapping[str, Any]] | None = None,
    duration: float | None = None,
    until_done: bool = True,
    domain_id: int | None = None,
    localhost_only: bool | None = None,
    log_dir: str | Path | None = None,
    echo: Callable[[str], None] = print,
    startup_timeout: float = 30.0,
    profile: str | None = None,
    shadow: bool = False,
    start: bool = False,
    condition: str | None = None,
    perception: bool = False,
    camera_rate: float = 10.0,
) -> DeployResult:
    """Run skill_executor (and sim_robot for robot="sim") until done/duration/Ctrl-C.

    params_file: ROS 2 parameter YAML for both nodes (default: the packaged
    config/deploy.yaml). overrides: {"skill_executor": {...}, "sim_robot": {...}} flat
    parameter values on top of the file. duration: stop after this many seconds (None:
    no limit). until_done: stop when the executor reports "done". domain_id /
    localhost_only: ROS_DOMAIN_ID and localhost discovery for the nodes (default: from
    the environment; localhost-only for sim). log_dir: write node output there instead of
    this terminal. profile: robot profile for both nodes (None: the file's). shadow: compute
    but send nothing (~/preview). start: on a real robot, start at once instead of waiting
    for ~/start (ignored for sim, which follows the file's autostart). condition: a named
    perturbation condition (envs/conditions.yaml, or a YAML file[:NAME]) sim_robot applies.
    perception: object poses from the perception node only (see the module docstring);
    camera_rate: Hz of sim_robot's images then.
    """
    if robot not in ("sim", "real"):
        raise ValueError(f"robot must be 'sim' or 'real', got {robot!r}")
    if duration is not None and not (duration > 0 and math.isfinite(duration)):
        raise ValueError(f"duration must be a positive number of seconds, got {duration}")
    if localhost_only is None:
        localhost_only = robot == "sim"
    if domain_id is None and os.environ.get("ROS_DOMAIN_ID", "").strip():
        domain_id = int(os.environ["ROS_DOMAIN_ID"])
    overrides = {k: dict(v) for k, v in (overrides or {}).items()}
    base = Path(params_file) if params_file is not None else DEFAULT_PARAMS_FILE
    file_nodes = read_params_file(base)
    ex_over = overrides.setdefault("skill_executor", {})
    if profile is not None:
        ex_over["profile"] = profile
        overrides.setdefault("sim_robot", {})["profile"] = profile
    if shadow:
        ex_over["shadow"] = True
    if robot == "real":
        ex_over["autostart"] = bool(start)  # never moves a real arm on its own
    if condition:
        if robot != "sim":
            raise ValueError("--condition is applied by sim_robot (robot=sim); a real robot brings its own")
        from ros_bridge.sim_conditions import resolve_condition

        resolve_condition(condition)  # a clear error before any node starts
        overrides.setdefault("sim_robot", {})["condition"] = condition

    with tempfile.TemporaryDirectory(prefix="skillstack-deploy-") as tmp:
        objects: tuple[str, ...] = ()
        if robot == "sim" or perception:
            ex = {**file_nodes.get("skill_executor", {}), **overrides.get("skill_executor", {})}
            if ex.get("plan_task"):
                from ros_bridge.hierarchy import resolve_plan_task

                task = str(ex.get("task") or resolve_plan_task(str(ex["plan_task"]), str(ex.get("plan_goal", "")))[0])
            else:
                task, _ = resolve_task(str(ex.get("skill", "expert")), str(ex.get("task", "")), str(ex.get("library_root", "")) or None)
            objects = _task_objects(task)
        if robot == "sim":
            # sim_robot must hold the cubes the task observes, unless the file says otherwise.
            sim_over = overrides.setdefault("sim_robot", {})
            if not sim_over.get("objects") and not file_nodes.get("sim_robot", {}).get("objects"):
                sim_over["objects"] = list(objects)
        else:
            overrides.pop("sim_robot", None)
        if perception:
            per = perception_overrides(robot, file_nodes, overrides, objects, camera_rate)
        else:
            overrides.pop("perception", None)
        merged = merged_params_file(base, overrides, tmp)
        logs = Path(log_dir) if log_dir is not None else None
        nodes: list[NodeProcess] = []
        if robot == "sim":
            nodes.append(NodeProcess("sim_robot", merged, domain_id=domain_id, localhost_only=localhost_only, log_path=logs / "sim_robot.log" if logs else None))
        if perception:
            nodes.append(NodeProcess("perception", merged, domain_id=domain_id, localhost_only=localhost_only, log_path=logs / "perception.log" if logs else None))
        nodes.append(NodeProcess("skill_executor", merged, domain_id=domain_id, localhost_only=localhost_only, log_path=logs / "skill_executor.log" if logs else None))
        from ros_bridge.probe import Probe

        probe = Probe(domain_id=domain_id, name="skillstack_deploy", localhost_only=localhost_only)
        # SIGTERM (a supervisor, `timeout`) stops the nodes in order, like Ctrl-C.
        previous = signal.signal(signal.SIGTERM, _raise_interrupt) if threading.current_thread() is threading.main_thread() else None
        t0 = time.monotonic()
        reason = "no status"
        last: dict[str, Any] | None = None
        try:
            status = probe.record_status()
            summary = probe.record_summary()
            for node in nodes:
                node.start()
            echo(f"deploy: robot={robot} params={base}" + (f" domain={domain_id}" if domain_id is not None else "")
                 + (f" condition={condition}" if condition else ""))
            if perception:
                spec = per.camera_spec
                echo(f"deploy: perception: object poses from camera {spec.name!r} ({spec.transport} "
                     f"{spec.compressed_topic if spec.transport == 'compressed' else spec.image_topic}) only"
                     + (f"; true poses on {GROUND_TRUTH_PREFIX}/<name>/pose" if robot == "sim" else ""))
            last_state, last_print, summary_shown = "", 0.0, False
            while True:
                time.sleep(0.05)
                now = time.monotonic() - t0
                dead = [n.node for n in nodes if not n.alive()]
                if dead:
                    reason = "node exited"
                    echo(f"deploy: {', '.join(dead)} exited (code {[n.proc.returncode for n in nodes if not n.alive()]})")
                    break
                if not summary_shown and summary.last() is not None:
                    summary_shown = True
                    for line in summary.last().get("lines", []):
                        echo(f"deploy: {line}")
                    if robot == "real" and not start:
                        echo("deploy: the robot does not move until you call /skill_executor/start "
                             "(ros2 service call /skill_executor/start std_srvs/srv/Trigger) or pass --start")
                last = status.last()
                if last is None:
                    if now > startup_timeout:
                        reason = "no status"
                        echo(f"deploy: no status from skill_executor after {startup_timeout:.0f} s")
                        break
                    continue
                if last["state"] != last_state or now - last_print >= 1.0:
                    echo(_progress_line(now, last))
                    last_state, last_print = last["state"], now
                if until_done and last["state"] == "done":
                    reason = "done"
                    break
                if duration is not None and now >= duration:
                    reason = "duration"
                    break
        except KeyboardInterrupt:
            reason = "interrupted"
        finally:
            for node in reversed(nodes):
                node.stop()
            probe.close()
            if previous is not None:
                signal.signal(signal.SIGTERM, previous)
        seconds = time.monotonic() - t0
        result = DeployResult(
            final_state=(last or {}).get("state", "unknown"),
            done=(last or {}).get("state") == "done",
            seconds=seconds,
            reason=reason,
            status=last,
            logs={n.node: n.log_text() for n in nodes} if logs else {},
        )
        echo(f"deploy: finished ({reason}) after {seconds:.1f} s, executor state {result.final_state}")
        return result


def _raise_interrupt(signum: int, frame: Any) -> None:  # noqa: ARG001
    raise KeyboardInterrupt


def _progress_line(t: float, st: Mapping[str, Any]) -> str:
    parts = [f"[{t:5.1f}s] {st['state']:<8}", st.get("skill", "")]
    tcp, goal = st.get("tcp"), st.get("goal")
    if "plan" in st:
        parts.append(f"tcp={tcp} skills run: {st['plan'].get('decisions', [])}")
        if st["plan"].get("error"):
            parts.append(f"plan error: {st['plan']['error']}")
    elif tcp and goal and len(goal) >= 3:
        d = math.dist(tcp, goal[:3])
        parts.append(f"tcp={[round(x, 3) for x in tcp]} goal={[round(x, 3) for x in goal[:3]]} dist={d:.3f} m")
    parts.append(f"sent={st.get('published', 0)}")
    if st["state"] == "waiting" and t > 5.0:
        parts.append("(no /joint_states yet: is the robot driver running, on this ROS_DOMAIN_ID?)")
    if st.get("last_fault") and st["state"] in ("hold", "stale", "estop"):
        parts.append(f"fault={st['last_fault']}: {st.get('fault_detail', '')}")
    if st.get("executor_fault"):
        parts.append(f"({st['executor_fault']})")
    return "  ".join(p for p in parts if p)


def parse_goal(values: Sequence[float] | None) -> list[float] | None:
    """CLI helper: a goal given as numbers, checked finite."""
    if values is None:
        return None
    out = [float(v) for v in values]
    if not all(math.isfinite(v) for v in out):
        raise ValueError(f"goal must be finite numbers, got {out}")
    return out
