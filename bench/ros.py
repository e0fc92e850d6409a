"""ROS 2 bridge latency over loopback, per robot profile and interface: sim_robot + skill_executor at 100 Hz.

For each robot profile (panda_sim, fr3, ur: sim_robot speaking that driver's topics and rates)
and each interface (``topic``: the profile's streaming topic, Float64MultiArray or
JointTrajectory; ``action``: a control_msgs/FollowJointTrajectory goal per period, received by
an action server in this process), measures, with real rclpy / Fast DDS between three
processes (sim_robot, skill_executor, this one recording):
  * policy tick latency: inside the executor, from the joint state's arrival to the
    command's publish call (state -> observation -> policy -> IK -> safety);
  * /joint_states -> command latency: from sim_robot stamping a joint state to this
    process receiving the command computed from it (two DDS hops plus the tick);
  * missed deadlines: control periods the executor's schedule skipped, commands short of
    rate x time, gaps over two periods between publishes, ticks longer than a period.
Baseline, same run: a bare rclpy relay (`ros_bridge.relay`: JointState in ->
Float64MultiArray out, no policy or safety, on the profile's arm state topic) measured the same
way before each executor phase; the ratio executor / relay is the bridge's cost over the
middleware floor.
Goals: end-to-end p99 <= 5 ms and <= 1.5 x the relay's p99, zero missed deadlines at 100 Hz.
"""

from __future__ import annotations

import argparse
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of `skillstack bench ros`."""
    parser.add_argument("--seconds", type=float, default=20.0, help="executor phase length per profile and interface (default 20)")
    parser.add_argument("--rate", type=float, default=100.0, help="control rate, Hz (default 100)")
    parser.add_argument("--baseline-seconds", type=float, default=None, help="relay baseline length (default min(10, seconds/3))")
    parser.add_argument("--profiles", default="all", help="robot profiles, comma-separated (default all: panda_sim,fr3,ur)")
    parser.add_argument("--interfaces", default="all", help="topic, action or all (default); action needs control_msgs")
    parser.add_argument("--domain-id", type=int, default=None, help="ROS_DOMAIN_ID (default: a random one in 100..199)")


def _pct(values: list[float] | np.ndarray) -> dict[str, float]:
    a = np.asarray(values, dtype=np.float64) * 1e3
    if a.size == 0:
        return {"n": 0, "p50_ms": float("nan"), "p99_ms": float("nan"), "max_ms": float("nan"), "mean_ms": float("nan")}
    return {
        "n": int(a.size),
        "p50_ms": float(np.percentile(a, 50)),
        "p99_ms": float(np.percentile(a, 99)),
        "max_ms": float(a.max()),
        "mean_ms": float(a.mean()),
    }


def _selection(args: argparse.Namespace) -> list[tuple[str, str]]:
    from ros_bridge.profile import load_profile, profile_names

    profiles = list(profile_names()) if args.profiles == "all" else [p.strip() for p in args.profiles.split(",") if p.strip()]
    for name in profiles:
        load_profile(name)  # a clear error for an unknown profile before anything starts
    interfaces = ["topic", "action"] if args.interfaces == "all" else [i.strip() for i in args.interfaces.split(",") if i.strip()]
    bad = [i for i in interfaces if i not in ("topic", "action")]
    if bad or not interfaces or not profiles:
        raise ValueError(f"--interfaces takes topic, action or all; --profiles names profiles (got {args.interfaces!r}, {args.profiles!r})")
    return [(p, i) for p in profiles for i in interfaces]


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Run every (profile, interface) pair, print one table, return the JSON-able result: the
    first pair's figures at the top level (as before profiles existed) and every pair under "runs"."""
    from ros_bridge._env import ensure_ros_env

    ensure_ros_env()
    from ros_bridge.interfaces import actions_available
    from ros_bridge.probe import Probe
    from ros_bridge.profile import load_profile

    pairs = _selection(args)
    domain = args.domain_id if args.domain_id is not None else 100 + random.Random(os.getpid()).randrange(100)
    tmp = Path(tempfile.mkdtemp(prefix="skillstack-bench-ros-"))
    runs, skipped = [], []
    probe = Probe(domain_id=domain, name="bench_ros", executor="single")  # it destroys recorders between phases
    try:
        have_actions = actions_available()
        for profile in dict.fromkeys(p for p, _ in pairs):
            interfaces = [i for p, i in pairs if p == profile]
            if not have_actions and load_profile(profile).gripper.interface == "action":
                skipped.append(f"{profile}: its gripper needs control_msgs/GripperCommand, not built (python -m ros_bridge.interfaces)")
                continue
            if "action" in interfaces and not have_actions:
                skipped.append(f"{profile}/action: control_msgs actions not built (python -m ros_bridge.interfaces)")
                interfaces.remove("action")
            if interfaces:
                runs.extend(_run_profile(profile, interfaces, args, domain, tmp / profile, probe))
    finally:
        probe.close()
    if not runs:
        raise RuntimeError("nothing measured: " + "; ".join(skipped))
    _print_table(runs, skipped)
    return {**runs[0], "runs": runs, "skipped": skipped}


def _run_profile(profile_name: str, interfaces: list[str], args: argparse.Namespace, domain: int, tmp: Path, probe: Any) -> list[dict[str, Any]]:
    """One profile: sim_robot speaking it, the relay baseline on its arm state topic, then one
    executor phase per interface (see the module docstring)."""
    from ros_bridge._env import child_env
    from std_msgs.msg import Float64MultiArray

    from ros_bridge.launcher import NodeProcess, write_params_file
    from ros_bridge.profile import load_profile

    prof = load_profile(profile_name)
    seconds = float(args.seconds)
    base_s = args.baseline_seconds if args.baseline_seconds is not None else min(10.0, seconds / 3.0)
    state_topic = prof.state_sources[0].topic  # the arm's: it clocks the executor
    tmp.mkdir(parents=True, exist_ok=True)
    # This process serves the profile's actions (the gripper's, and the arm's to time its goals).
    sim_params = write_params_file(tmp / "sim.yaml", {"sim_robot": {"profile": profile_name, "action_servers": False}})
    sim = NodeProcess("sim_robot", sim_params, domain_id=domain, localhost_only=True, log_path=tmp / "sim_robot.log")
    relay = None
    out = []
    try:
        sim.start()
        # ---- baseline: bare relay on the profile's arm state topic ---------------------------
        relay_rec = probe.record("/bench_relay/commands", Float64MultiArray)
        relay = subprocess.Popen([sys.executable, "-m", "ros_bridge.relay", "--ros-args", "-r", f"/joint_states:={state_topic}"],
                                 env=child_env(domain_id=domain, localhost_only=True), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        if not probe.wait_for(lambda: len(relay_rec) > 10, 30):
            raise RuntimeError(f"relay baseline produced no messages; see {tmp}")
        relay_rec.clear()
        time.sleep(base_s)
        relay_items = relay_rec.snapshot()
        relay.terminate()
        relay.wait(10)
        relay = None
        probe.destroy(relay_rec)
        relay_lat = [t - m.data[0] for t, m in relay_items]
        for interface in interfaces:
            result = _executor_phase(prof, interface, args, domain, tmp, probe)
            result.update(_figures(*result.pop("raw"), relay_lat, float(args.rate)))
            result.update(profile=profile_name, state_topic=state_topic, state_rate_hz=float(prof.state_sources[0].rate_hz))
            out.append(result)
    finally:
        if relay is not None:
            relay.kill()
        sim.stop()
    return out


def _executor_phase(prof: Any, interface: str, args: argparse.Namespace, domain: int, tmp: Path, probe: Any) -> dict[str, Any]:
    """Run skill_executor at the bench rate for `args.seconds` and record its commands and timing."""
    from std_msgs.msg import Float64MultiArray
    from trajectory_msgs.msg import JointTrajectory

    from ros_bridge.launcher import NodeProcess, write_params_file

    exec_interface = prof.arm.interface if interface == "topic" else "action"
    params = write_params_file(tmp / f"executor-{interface}.yaml", {"skill_executor": {
        "profile": prof.name, "goal": [0.45, 0.2, 0.3], "control_rate": float(args.rate), "interface": exec_interface,
        "autostart": False, "stop_on_success": False, "publish_timing": True,
    }})  # fmt: skip
    servers: list[Any] = []
    if prof.gripper.interface == "action":  # the gripper's server lives here (sim_robot serves none)
        servers.append(probe.serve_action(prof.gripper.action, "gripper"))
    if interface == "topic":
        cmd_type = Float64MultiArray if exec_interface == "position" else JointTrajectory
        commands = probe.record(prof.arm.commands_topic if exec_interface == "position" else prof.arm.trajectory_topic, cmd_type)
    else:
        commands, server = probe.record_action_goals(prof.arm.action_name)
        servers.append(server)
    timing = probe.record("/skill_executor/timing", Float64MultiArray)
    status = probe.record_status()
    ex = NodeProcess("skill_executor", params, domain_id=domain, localhost_only=True, log_path=tmp / f"skill_executor-{interface}.log")
    try:
        ex.start()
        ready = probe.wait_for(
            lambda: bool(status.last()) and status.last()["command_subscribers"] >= 1 and status.last()["state_age"] is not None
            and status.last()["executor_fault"] == "" and timing.publisher_count() >= 1
            and (interface == "action" or commands.publisher_count() >= 1),
            40,
        )
        if not ready:
            raise RuntimeError(f"executor did not come up; status {status.last()}; logs in {tmp}")
        if not probe.call_trigger("/skill_executor/start").success:
            raise RuntimeError("executor refused to start")
        time.sleep(1.0)  # warm-up: first ticks pay for lazy imports and caches
        st0 = status.last()
        t_begin = time.time()
        time.sleep(float(args.seconds))
        t_end = time.time()
        st1 = status.last()
        time.sleep(0.3)  # commands and timing records in flight arrive
        cmd_items = commands.snapshot()
        tim_items = [m for _, m in timing.snapshot()]
    finally:
        ex.stop()  # SIGINT: the executor stops sending at once
        probe.destroy(commands, timing, status, *servers)
    return {"interface": interface, "arm_interface": exec_interface, "raw": (cmd_items, tim_items, st0, st1, t_begin, t_end)}


def _figures(cmd_items, tim_items, st0, st1, t_begin, t_end, relay_lat, rate) -> dict[str, Any]:
    """Latency percentiles and missed deadlines of one executor phase."""
    period = 1.0 / rate
    # Pair each command with the executor's timing record for it by the command's fingerprint
    # (its values), in order: robust to a command or a record lost on the way.
    from ros_bridge.command_paths import command_fingerprint

    pending: dict[float, list[Any]] = {}
    for m in tim_items:
        pending.setdefault(round(m.data[6], 9), []).append(m.data)
    e2e, compute, transport, state_hop, in_node = [], [], [], [], []
    window_times, publish_times = [], []
    unmatched = 0
    for t_recv, msg in cmd_items:
        values = msg.data if hasattr(msg, "data") else msg.points[0].positions
        candidates = pending.get(command_fingerprint(values))
        if not candidates:
            unmatched += 1
            continue
        d = candidates.pop(0)
        if not (t_begin <= t_recv <= t_end):
            continue
        window_times.append(t_recv)
        publish_times.append(d[4])
        state_stamp, _recv, _tick, pub_time, comp = d[1], d[2], d[3], d[4], d[5]
        e2e.append(t_recv - state_stamp)
        transport.append(t_recv - pub_time)
        state_hop.append(_recv - state_stamp)
        in_node.append(pub_time - _recv)
        compute.append(comp)
    aligned = unmatched == 0
    expected = int(round((t_end - t_begin) * rate))
    missed_exec = int(st1["missed_deadlines"] - st0["missed_deadlines"])
    late_ticks = int(st1["late_ticks"] - st0["late_ticks"])
    short = max(0, expected - len(window_times))
    holes = int(np.sum(np.diff(np.sort(np.asarray(publish_times))) > 2.0 * period)) if len(publish_times) > 1 else 0
    result = {
        "rate_hz": rate,
        "seconds": round(t_end - t_begin, 3),
        "commands": len(window_times),
        "expected_commands": expected,
        "policy_tick": _pct(compute),
        "state_to_command": _pct(e2e),
        "state_transport": _pct(state_hop),
        "state_callback_to_publish": _pct(in_node),
        "command_transport": _pct(transport),
        "baseline_relay_state_to_command": _pct(relay_lat),
        "missed_deadlines": {
            "executor": missed_exec,  # control periods the executor's schedule skipped
            "short_of_expected": short,  # commands missing against rate x duration
            "gaps_over_2_periods": holes,  # publish-time gaps longer than two periods (jitter)
            "late_ticks": late_ticks,  # ticks whose computation took longer than a period
        },
        "matched_timing": aligned,
        "goal": {"state_to_command_p99_ms": 5.0, "ratio_vs_relay_p99": 1.5, "missed_deadlines": 0},
    }
    base_p50 = result["baseline_relay_state_to_command"]["p50_ms"]
    base_p99 = result["baseline_relay_state_to_command"]["p99_ms"]
    result["ratio_vs_relay"] = {
        "p50": result["state_to_command"]["p50_ms"] / base_p50 if base_p50 else float("nan"),
        "p99": result["state_to_command"]["p99_ms"] / base_p99 if base_p99 else float("nan"),
    }
    result["goal_met"] = bool(result["state_to_command"]["p99_ms"] <= 5.0 and missed_exec == 0 and short <= 1)
    result["ratio_goal_met"] = bool(result["ratio_vs_relay"]["p99"] <= 1.5)
    return result


def _print_table(runs: list[dict[str, Any]], skipped: list[str]) -> None:
    r0 = runs[0]
    print(f"ROS 2 bridge at {r0['rate_hz']:g} Hz over loopback, {r0['seconds']:.0f} s per profile and interface; "
          "/joint_states -> command p50/p99 ms, against a bare rclpy relay measured in the same run")
    header = f"{'profile':<10}{'interface':<22}{'states':<26}{'cmds':>6}{'tick p50':>9}{'p50':>8}{'p99':>8}{'relay p50':>10}{'relay p99':>10}{'p99/relay':>10}{'missed':>7}  goal"
    print(header)
    for r in runs:
        s, b, m = r["state_to_command"], r["baseline_relay_state_to_command"], r["missed_deadlines"]
        missed = m["executor"] + m["short_of_expected"]
        ok = "met" if r["goal_met"] and r["ratio_goal_met"] else ("p99 met, ratio not" if r["goal_met"] else "NOT met")
        iface = f"{r['interface']} ({r['arm_interface']})"
        states = f"{r['state_topic']} {r['state_rate_hz']:g} Hz"
        print(f"{r['profile']:<10}{iface:<22}{states:<26}"
              f"{r['commands']:>6}{r['policy_tick']['p50_ms']:>9.3f}{s['p50_ms']:>8.3f}{s['p99_ms']:>8.3f}{b['p50_ms']:>10.3f}{b['p99_ms']:>10.3f}"
              f"{r['ratio_vs_relay']['p99']:>10.2f}{missed:>7}  {ok}")
    for note in skipped:
        print(f"skipped: {note}")
    print("goal: p99 <= 5 ms and <= 1.5 x the relay's p99, 0 missed deadlines (missed = skipped periods + commands short of rate x time)")
