"""Start the bridge's nodes without the ROS 2 launch system (which is not on PyPI).

`skillstack deploy` uses this to run exactly what ``ros2 launch ros_bridge
deploy.launch.py`` runs: sim_robot (for ``robot=sim``), skill_executor and, with
``--perception``, the perception node, each in its own process, configured by the same
parameter YAML through ROS's own
``--ros-args --params-file``. Tests and the benchmark start nodes the same way.
No rclpy import here: the nodes are subprocesses.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

from common.atomic import atomic_write_text
from ros_bridge._env import child_env
from ros_bridge.params import DEFAULT_PARAMS_FILE, NODE_PARAMS, params_from_mapping, read_params_file

__all__ = ["NODES", "NodeProcess", "merged_params_file", "node_command", "write_params_file"]

NODES = ("sim_robot", "skill_executor", "perception")
_MODULES = {"perception": "perception_node"}  # node name -> module under ros_bridge (default: the same name)


def _unflatten(flat: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in flat.items():
        parts = key.split(".")
        cur = out
        for part in parts[:-1]:
            cur = cur.setdefault(part, {})
        cur[parts[-1]] = list(value) if isinstance(value, tuple) else value
    return out


def write_params_file(path: str | Path, nodes: Mapping[str, Mapping[str, Any]]) -> Path:
    """Write a ROS 2 parameter YAML (node -> flat params) atomically; returns the path."""
    path = Path(path)
    doc = {node: {"ros__parameters": _unflatten(params)} for node, params in nodes.items()}
    return atomic_write_text(path, yaml.safe_dump(doc, sort_keys=False, default_flow_style=None))


def merged_params_file(
    base: str | Path | None,
    overrides: Mapping[str, Mapping[str, Any]] | None,
    out_dir: str | Path,
) -> Path:
    """Validate `base` (default: the packaged config/deploy.yaml) plus per-node `overrides`
    (flat names), and write the merged file into `out_dir`. Unknown nodes/keys raise ValueError."""
    base = Path(base) if base is not None else DEFAULT_PARAMS_FILE
    nodes = read_params_file(base)
    for node, params in (overrides or {}).items():
        if node not in NODE_PARAMS:
            raise ValueError(f"unknown node {node!r}; nodes: {list(NODE_PARAMS)}")
        nodes.setdefault(node, {}).update(params)
    nodes.pop("**", None)
    for node, params in nodes.items():
        if node in NODE_PARAMS:
            params_from_mapping(NODE_PARAMS[node], params, where=f"{base}: {node}: ")
    return write_params_file(Path(out_dir) / "params.yaml", nodes)


def node_command(node: str, params_file: str | Path | None = None, extra_ros_args: Sequence[str] = ()) -> list[str]:
    """Command line running one bridge node with this interpreter."""
    if node not in NODES:
        raise ValueError(f"unknown node {node!r}; nodes: {list(NODES)}")
    cmd = [sys.executable, "-m", f"ros_bridge.{_MODULES.get(node, node)}", "--ros-args"]
    if params_file is not None:
        cmd += ["--params-file", str(params_file)]
    cmd += list(extra_ros_args)
    return cmd


class NodeProcess:
    """One node in a child process, stopped politely (SIGINT, then SIGTERM, then SIGKILL)."""

    def __init__(
        self,
        node: str,
        params_file: str | Path | None = None,
        *,
        domain_id: int | None = None,
        localhost_only: bool | None = None,
        extra_ros_args: Sequence[str] = (),
        log_path: str | Path | None = None,
        env: Mapping[str, str] | None = None,
    ):
        self.node = node
        self.cmd = node_command(node, params_file, extra_ros_args)
        # The node exits if this process dies without stopping it (see _ros.run_node).
        extra = {"SKILLSTACK_PARENT_PID": str(os.getpid()), **dict(env or {})}
        self._env = child_env(domain_id=domain_id, localhost_only=localhost_only, extra=extra)
        self._log_path = Path(log_path) if log_path is not None else None
        self._log = None
        self.proc: subprocess.Popen | None = None

    def start(self) -> "NodeProcess":
        """Start the process (output to `log_path`, or inherited)."""
        if self._log_path is not None:
            self._log_path.parent.mkdir(parents=True, exist_ok=True)
            self._log = open(self._log_path, "ab")
        self.proc = subprocess.Popen(
            self.cmd,
            env=self._env,
            stdout=self._log or None,
            stderr=subprocess.STDOUT if self._log else None,
            start_new_session=True,  # Ctrl-C in a terminal reaches the parent, which stops us in order
        )
        return self

    @property
    def pid(self) -> int | None:
        """The child's process id (None before start)."""
        return None if self.proc is None else self.proc.pid

    def alive(self) -> bool:
        """True while the process runs."""
        return self.proc is not None and self.proc.poll() is None

    def kill(self) -> None:
        """SIGKILL at once (fault injection: a robot that dies)."""
        if self.alive():
            self.proc.kill()
            self.proc.wait(10)

    def stop(self, timeout: float = 5.0) -> int | None:
        """Stop the node and return its exit code."""
        if self.proc is None:
            return None
        for sig, wait in ((signal.SIGINT, timeout), (signal.SIGTERM, 2.0), (signal.SIGKILL, 5.0)):
            if self.proc.poll() is not None:
                break
            try:
                self.proc.send_signal(sig)
            except ProcessLookupError:
                break
            try:
                self.proc.wait(wait)
            except subprocess.TimeoutExpired:
                continue
        if self._log is not None:
            self._log.close()
            self._log = None
        return self.proc.poll()

    def log_text(self) -> str:
        """The process's output so far (when started with `log_path`)."""
        if self._log_path is None or not self._log_path.exists():
            return ""
        return self._log_path.read_text(encoding="utf-8", errors="replace")

    def __enter__(self) -> "NodeProcess":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def wait_exit(self, timeout: float) -> int | None:
        """Wait up to `timeout` s for the process to exit by itself; its code or None."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc is not None and self.proc.poll() is not None:
                return self.proc.returncode
            time.sleep(0.05)
        return None
