"""ROS 2 bridge latency over loopback: sim_robot + skill_executor at 100 Hz (default 60 s).

Measures, with real rclpy / Fast DDS between three processes (sim_robot, skill_executor,
this one recording):
  * policy tick latency: inside the executor, from the joint state's arrival to the
    command's publish call (state -> observation -> policy -> IK -> safety);
  * /joint_states -> command latency: from sim_robot stamping a joint state to this
    process receiving the command computed from it (two DDS hops plus the tick);
  * missed deadlines: control periods the executor's schedule skipped, commands short of
    rate x time, gaps over two periods between publishes, ticks longer than a period.
Baseline, same run: a bare rclpy relay (`ros_bridge.relay`: JointState in ->
Float64MultiArray out, no policy or safety) measured the same way before the executor phase; the ratio
executor / relay is the bridge's cost over the middleware floor.
Goal (issue 8): end-to-end p99 <= 5 ms and zero missed deadlines at 100 Hz.
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
    parser.add_argument("--seconds", type=float, default=60.0, help="executor phase length (default 60)")
    parser.add_argument("--rate", type=float, default=100.0, help="control rate, Hz (default 100)")
    parser.add_argument("--state-rate", type=float, default=None, help="sim_robot joint state rate, Hz (default 2 x rate)")
    parser.add_argument("--baseline-seconds", type=float, default=None, help="relay baseline length (default min(10, seconds/3))")
    parser.add_argument("--interface", choices=("position", "trajectory"), default="position")
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


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Run the benchmark, print a table, return the JSON-able result."""
    from ros_bridge._env import child_env, ensure_ros_env

    ensure_ros_env()
    from sensor_msgs.msg import JointState  # noqa: F401  (type import check)
    from std_msgs.msg import Float64MultiArray
    from trajectory_msgs.msg import JointTrajectory

    from ros_bridge.launcher import NodeProcess, write_params_file
    from ros_bridge.probe import Probe

    rate = float(args.rate)
    period = 1.0 / rate
    seconds = float(args.seconds)
    base_s = args.baseline_seconds if args.baseline_seconds is not None else min(10.0, seconds / 3.0)
    domain = args.domain_id if args.domain_id is not None else 100 + random.Random(os.getpid()).randrange(100)
    tmp = Path(tempfile.mkdtemp(prefix="skillstack-bench-ros-"))
    params = write_params_file(
        tmp / "params.yaml",
        {
            # Joint states at twice the control rate (sim_robot's default 200 Hz at 100 Hz
            # control): a state is always due within half a period of each tick.
            "sim_robot": {"publish_rate": args.state_rate or 2.0 * rate},
            "skill_executor": {
                "goal": [0.45, 0.2, 0.3],
                "control_rate": rate,
                "interface": args.interface,
                "autostart": False,
                "stop_on_success": False,
                "publish_timing": True,
            },
        },
    )
    probe = Probe(domain_id=domain, name="bench_ros")
    nodes: list[NodeProcess] = []
    relay = None
    try:
        sim = NodeProcess("sim_robot", params, domain_id=domain, localhost_only=True, log_path=tmp / "sim_robot.log").start()
        nodes.append(sim)
        # ---- baseline: bare relay --------------------------------------------------------
        relay_rec = probe.record("/bench_relay/commands", Float64MultiArray)
        relay = subprocess.Popen([sys.executable, "-m", "ros_bridge.relay"], env=child_env(domain_id=domain, localhost_only=True),
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        if not probe.wait_for(lambda: len(relay_rec) > 10, 30):
            raise RuntimeError(f"relay baseline produced no messages; see {tmp}")
        relay_rec.clear()
        time.sleep(base_s)
        relay_items = relay_rec.snapshot()
        relay.terminate()
        relay.wait(10)
        relay = None
        relay_lat = [t - m.data[0] for t, m in relay_items]
        # ---- executor phase -----------------------------------------------------------------
        cmd_type = Float64MultiArray if args.interface == "position" else JointTrajectory
        topic = "/arm_controller/commands" if args.interface == "position" else "/arm_controller/joint_trajectory"
        commands = probe.record(topic, cmd_type)
        timing = probe.record("/skill_executor/timing", Float64MultiArray)
        status = probe.record_status()
        ex = NodeProcess("skill_executor", params, domain_id=domain, localhost_only=True, log_path=tmp / "skill_executor.log").start()
        nodes.append(ex)
        ready = probe.wait_for(
            lambda: bool(status.last()) and status.last()["command_subscribers"] >= 2
            and commands.publisher_count() >= 1 and timing.publisher_count() >= 1,
            30,
        )
        if not ready:
            raise RuntimeError(f"executor did not come up; status {status.last()}; logs in {tmp}")
        if not probe.call_trigger("/skill_executor/start").success:
            raise RuntimeError("executor refused to start")
        time.sleep(1.0)  # warm-up: first ticks pay for lazy imports and caches
        st0 = status.last()
        t_begin = time.time()
        time.sleep(seconds)
        t_end = time.time()
        st1 = status.last()
        probe.call_trigger("/skill_executor/stop")
        time.sleep(0.3)
        cmd_items = commands.snapshot()
        tim_items = [m for _, m in timing.snapshot()]
    finally:
        if relay is not None:
            relay.kill()
        for node in reversed(nodes):
            node.stop()
        probe.close()

    # Match command k with timing k (same publisher order, reliable QoS); the timing record
    # carries seq = number of commands the executor had published, so check alignment.
    by_seq = {int(m.data[0]): m.data for m in tim_items}
    first_seq = int(tim_items[0].data[0]) if tim_items else 1
    e2e, compute, transport, state_hop, in_node = [], [], [], [], []
    window_times, publish_times = [], []
    for k, (t_recv, _) in enumerate(cmd_items):
        d = by_seq.get(first_seq + k)
        if d is None:
            continue
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
    aligned = len(cmd_items) == len(tim_items)
    expected = int(round((t_end - t_begin) * rate))
    missed_exec = int(st1["missed_deadlines"] - st0["missed_deadlines"])
    late_ticks = int(st1["late_ticks"] - st0["late_ticks"])
    short = max(0, expected - len(window_times))
    holes = int(np.sum(np.diff(np.asarray(publish_times)) > 2.0 * period)) if len(publish_times) > 1 else 0
    result = {
        "rate_hz": rate,
        "state_rate_hz": float(args.state_rate or 2.0 * rate),
        "seconds": round(t_end - t_begin, 3),
        "interface": args.interface,
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
        "goal": {"state_to_command_p99_ms": 5.0, "missed_deadlines": 0},
    }
    base_p50 = result["baseline_relay_state_to_command"]["p50_ms"]
    base_p99 = result["baseline_relay_state_to_command"]["p99_ms"]
    result["ratio_vs_relay"] = {
        "p50": result["state_to_command"]["p50_ms"] / base_p50 if base_p50 else float("nan"),
        "p99": result["state_to_command"]["p99_ms"] / base_p99 if base_p99 else float("nan"),
    }
    result["goal_met"] = bool(result["state_to_command"]["p99_ms"] <= 5.0 and missed_exec == 0 and short <= 1)
    _print_table(result)
    return result


def _print_table(r: dict[str, Any]) -> None:
    print(f"ROS 2 bridge at {r['rate_hz']:g} Hz (states at {r['state_rate_hz']:g} Hz) for {r['seconds']:.1f} s over loopback ({r['interface']}): "
          f"{r['commands']} commands (expected {r['expected_commands']})")
    print(f"{'measure':<34}{'n':>7}{'p50 ms':>10}{'p99 ms':>10}{'max ms':>10}")
    for key, label in (
        ("policy_tick", "policy tick (in executor)"),
        ("state_to_command", "/joint_states -> command"),
        ("state_transport", "  = state: sim -> executor"),
        ("state_callback_to_publish", "  + executor: callback -> publish"),
        ("command_transport", "  + command: executor -> receiver"),
        ("baseline_relay_state_to_command", "baseline: bare rclpy relay"),
    ):
        s = r[key]
        print(f"{label:<34}{s['n']:>7}{s['p50_ms']:>10.3f}{s['p99_ms']:>10.3f}{s['max_ms']:>10.3f}")
    m = r["missed_deadlines"]
    print(f"missed deadlines: {m['executor']} (executor's schedule), {m['short_of_expected']} commands short of "
          f"rate x time; gaps > 2 periods {m['gaps_over_2_periods']}; ticks longer than a period {m['late_ticks']}")
    print(f"executor / relay latency: p50 x{r['ratio_vs_relay']['p50']:.2f}, p99 x{r['ratio_vs_relay']['p99']:.2f}; "
          f"goal (p99 <= 5 ms, 0 missed): {'met' if r['goal_met'] else 'NOT met'}")
