"""Small rclpy helpers shared by the nodes: parameters from dataclasses, stamps, QoS, spinning."""

from __future__ import annotations

import dataclasses
import gc
import os
import signal
import sys
import threading
from collections.abc import Callable, Sequence
from typing import Any

from ros_bridge._env import ensure_ros_env

ensure_ros_env()

import rclpy  # noqa: E402
from rcl_interfaces.msg import ParameterDescriptor  # noqa: E402
from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor  # noqa: E402
from rclpy.node import Node  # noqa: E402
from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy  # noqa: E402

from ros_bridge.params import flatten, params_from_mapping  # noqa: E402

__all__ = ["STATE_QOS", "COMMAND_QOS", "RECORD_QOS", "declare_params", "run_node", "stamp_s", "to_stamp"]

# States: keep only the newest, best effort (also matches reliable publishers such as
# ros2_control's joint_state_broadcaster), so a flood never queues up stale readings.
STATE_QOS = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=1, reliability=ReliabilityPolicy.BEST_EFFORT)
# Commands: reliable like ros2_control's controllers expect; a short queue.
COMMAND_QOS = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=10, reliability=ReliabilityPolicy.RELIABLE)
# Recording (probes, benchmarks): reliable with a deep reader history, so a reader whose
# executor is held up loses nothing (a reliable reader: it matches reliable publishers only).
RECORD_QOS = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=5000, reliability=ReliabilityPolicy.RELIABLE)


def stamp_s(stamp: Any) -> float:
    """builtin_interfaces/Time -> float seconds."""
    return stamp.sec + stamp.nanosec * 1e-9


def to_stamp(msg_stamp: Any, seconds: float) -> None:
    """Write float seconds into a builtin_interfaces/Time in place."""
    sec = int(seconds)
    msg_stamp.sec = sec
    msg_stamp.nanosec = int(round((seconds - sec) * 1e9)) % 1_000_000_000


def _ros_value(value: Any) -> Any:
    if isinstance(value, tuple):
        return list(value)
    return value


def declare_params(node: Node, defaults: Any) -> Any:
    """Declare every field of the `defaults` dataclass as a ROS parameter (nested ones as
    `group.name`), read them back (file/launch overrides win) and return a validated
    instance of the same dataclass. Bad values raise ValueError naming the parameter."""
    flat_defaults = flatten(_as_dict(defaults))
    descriptor = ParameterDescriptor(dynamic_typing=True)
    values: dict[str, Any] = {}
    for name, default in flat_defaults.items():
        param = node.declare_parameter(name, _ros_value(default), descriptor)
        value = param.value
        if isinstance(default, (list, tuple)) and value is not None and not isinstance(value, (list, tuple)):
            value = list(value)  # array.array from the ROS layer
        values[name] = default if value is None else value
    return params_from_mapping(type(defaults), values, where=f"{node.get_name()}: ")


def _as_dict(obj: Any) -> dict[str, Any]:
    out = {}
    for f in dataclasses.fields(obj):
        v = getattr(obj, f.name)
        out[f.name] = _as_dict(v) if dataclasses.is_dataclass(v) else v
    return out


def _make_executor(context: Any = None) -> Any:
    """rclpy's C++ events executor when available and not disabled
    (SKILLSTACK_ROS_EXECUTOR=single), else the single-threaded one. Callers drive it with
    spin_once() in a loop (its spin() ignores SIGTERM in this rclpy)."""
    if os.environ.get("SKILLSTACK_ROS_EXECUTOR", "events") != "single":
        try:
            from rclpy.experimental import EventsExecutor

            return EventsExecutor(context=context)
        except ImportError:
            pass
    return SingleThreadedExecutor(context=context)


def run_node(factory: Callable[[], Node], args: Sequence[str] | None = None) -> int:
    """Entry point body for a node process: init rclpy with `args` (ROS arguments such as
    `--ros-args --params-file F`), build the node, spin until SIGINT/SIGTERM, clean up."""
    # Short GIL switch interval: callbacks wait less behind another Python thread.
    sys.setswitchinterval(0.0005)
    rclpy.init(args=list(args) if args is not None else None)
    stop = threading.Event()

    def _stop(signum: int, frame: Any) -> None:  # noqa: ARG001
        stop.set()

    signal.signal(signal.SIGTERM, _stop)
    node = None
    code = 0
    try:
        try:
            node = factory()
        except Exception as exc:  # bad parameters, a missing or rejected skill package ...
            print(f"error: {type(exc).__name__}: {exc}", file=sys.stderr)
            return 2
        executor = _make_executor()
        executor.add_node(node)
        # Everything allocated at start-up (models, modules) is long-lived: keep it out of
        # the garbage collector's way so collections stay short during control.
        gc.collect()
        gc.freeze()
        parent = int(os.environ.get("SKILLSTACK_PARENT_PID", "0") or 0)
        while not stop.is_set() and rclpy.ok():
            executor.spin_once(timeout_sec=0.1)
            if parent and os.getppid() != parent:  # started by a launcher that died: do not linger
                print("parent process gone: shutting down", file=sys.stderr)
                break
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        if node is not None:
            close = getattr(node, "close", None)
            if callable(close):
                close()
            node.destroy_node()
        if rclpy.ok():
            rclpy.shutdown()
    return code
