"""Where rclpy comes from, and the process environment ROS 2 nodes need.

Two supported installs, same code:

* pip (the ``ros`` extra): ROS 2 Jazzy's ``ros-jazzy-*`` wheels. Their shared libraries
  live in ``site-packages/ros_*.libs`` and ``<prefix>/lib``; the wheel
  ``ros-wheels-bootstrapper`` (a ``.pth`` file) re-executes every interpreter of the
  environment once with ``LD_LIBRARY_PATH`` pointing there. That breaks when a process
  inherits the bootstrapper's guard variable but not the library path (a harness that
  rebuilds the environment), so the project never relies on it alone: node subprocesses
  get `child_env()`, and entry points call `ensure_ros_env()` which re-executes the
  interpreter with the right path when rclpy cannot load its libraries.
* a system ROS 2 install (``source /opt/ros/jazzy/setup.bash``): nothing to do; the
  sourced environment already has everything and no wheel directories are found.

Interface packages built by `ros_bridge.interfaces` into another prefix than the
interpreter's are found through ``SKILLSTACK_ROS_PREFIX`` (prefixes separated by ``:``):
their ``lib`` joins the library path and their site-packages ``sys.path`` / ``PYTHONPATH``.
rosidl dlopens type support libraries by name, which the loader resolves with the library
path the process started with: entry points re-execute themselves when it lacks them, and
other processes (a test runner) need ``<prefix>/lib`` on ``LD_LIBRARY_PATH`` from the start.

The RMW is whatever ROS picks (Fast DDS on Jazzy, the only one the wheels ship).
Nothing here imports rclpy at module import time.
"""

from __future__ import annotations

import importlib
import os
import sys
import sysconfig
from pathlib import Path
from types import ModuleType

__all__ = [
    "RosUnavailableError",
    "child_env",
    "ensure_ros_env",
    "extra_prefixes",
    "require_rclpy",
    "ros_available",
    "wheel_library_dirs",
]

_REEXEC_FLAG = "SKILLSTACK_ROS_REEXEC"
_INSTALL_HINT = (
    "ROS 2 (rclpy) is not available. For a pip install: pip install 'skillstack[ros]' "
    "(ROS 2 Jazzy wheels, Linux x86_64, Python 3.10-3.12). On a robot with ROS 2: "
    "source /opt/ros/jazzy/setup.bash before running."
)


class RosUnavailableError(ImportError):
    """rclpy or the message packages cannot be imported in this interpreter (an ImportError,
    so `except ImportError` around an optional ROS feature catches it)."""


def extra_prefixes() -> list[Path]:
    """Prefixes named by SKILLSTACK_ROS_PREFIX (interface packages built elsewhere), existing ones."""
    raw = os.environ.get("SKILLSTACK_ROS_PREFIX", "")
    return [Path(p).resolve() for p in raw.split(os.pathsep) if p and Path(p).is_dir()]


def _extra_python_dirs() -> list[str]:
    out = []
    for prefix in extra_prefixes():
        site = sysconfig.get_paths(vars={"base": str(prefix), "platbase": str(prefix)})["platlib"]
        if Path(site).is_dir():
            out.append(site)
    return out


def wheel_library_dirs() -> list[str]:
    """Directories holding the ROS wheels' shared libraries for this interpreter (may be empty).

    Empty on a system ROS install, where the sourced setup script provides the paths.
    """
    purelib = Path(sysconfig.get_paths()["purelib"])
    dirs: list[str] = []
    if purelib.is_dir():
        dirs.extend(str(p.resolve()) for p in sorted(purelib.glob("ros_*.libs")) if p.is_dir())
    if dirs:
        # Message and typesupport libraries of the wheels are installed into <prefix>/lib.
        prefix_lib = Path(sys.prefix) / "lib"
        if prefix_lib.is_dir():
            dirs.append(str(prefix_lib.resolve()))
    return [str(p / "lib") for p in extra_prefixes() if (p / "lib").is_dir()] + dirs


def _with_library_path(env: dict[str, str]) -> dict[str, str]:
    parts = [p for p in env.get("LD_LIBRARY_PATH", "").split(os.pathsep) if p]
    missing = [d for d in wheel_library_dirs() if d not in parts]
    if missing:
        env["LD_LIBRARY_PATH"] = os.pathsep.join(missing + parts)
    # Tell the wheels' bootstrapper the path is already right (saves one re-exec per process).
    if wheel_library_dirs():
        env["_ROS_WHEELS_BOOTSTRAP_COMPLETE"] = "1"
    return env


def child_env(
    domain_id: int | None = None,
    localhost_only: bool | None = None,
    extra: dict[str, str] | None = None,
) -> dict[str, str]:
    """Environment for a ROS 2 node subprocess started from this interpreter.

    Copies os.environ, makes sure the wheels' library directories are on
    LD_LIBRARY_PATH, and optionally pins ROS_DOMAIN_ID and localhost-only discovery
    (ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST), which tests and the benchmark use to
    stay off the network and away from each other.
    """
    env = _with_library_path(dict(os.environ))
    if domain_id is not None:
        if not 0 <= int(domain_id) <= 232:
            raise ValueError(f"ROS_DOMAIN_ID must be in 0..232, got {domain_id}")
        env["ROS_DOMAIN_ID"] = str(int(domain_id))
    if localhost_only:
        env["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"
    # Unbuffered output so a parent sees node logs as they happen.
    env.setdefault("PYTHONUNBUFFERED", "1")
    python_dirs = _extra_python_dirs()
    if python_dirs:
        parts = [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p]
        env["PYTHONPATH"] = os.pathsep.join([d for d in python_dirs if d not in parts] + parts)
    if extra:
        env.update(extra)
    return env


def ros_available() -> bool:
    """True when rclpy and the message packages the bridge uses import in this interpreter."""
    try:
        require_rclpy()
    except RosUnavailableError:
        return False
    return True


def require_rclpy() -> ModuleType:
    """Import and return rclpy (and check the message packages), or raise RosUnavailableError.

    The error says how to install ROS 2 for pip or how to source a system install.
    """
    for d in _extra_python_dirs():
        if d not in sys.path:
            sys.path.append(d)
    try:
        rclpy = importlib.import_module("rclpy")
        for mod in ("sensor_msgs.msg", "geometry_msgs.msg", "std_msgs.msg", "std_srvs.srv", "trajectory_msgs.msg"):
            importlib.import_module(mod)
        # The C extension loads lazily; touch it so a missing library shows here.
        importlib.import_module("rclpy.impl.implementation_singleton").rclpy_implementation  # noqa: B018
    except ImportError as exc:
        raise RosUnavailableError(f"{_INSTALL_HINT} ({exc.__class__.__name__}: {exc})") from exc
    return rclpy


def ensure_ros_env() -> None:
    """Make rclpy importable in this process, re-executing the interpreter once if needed.

    Call it first thing in an entry point (node `main`, the `deploy` command), before
    anything heavy has run. When rclpy fails to load its shared libraries and this
    interpreter has ROS wheels whose directories are missing from LD_LIBRARY_PATH, the
    process replaces itself with the same command line and a fixed environment (the
    dynamic loader reads the path only at start-up). Raises RosUnavailableError when
    ROS 2 is simply not installed.
    """
    try:
        require_rclpy()
        env = _with_library_path(dict(os.environ))
        if not extra_prefixes() or os.environ.get(_REEXEC_FLAG) or env.get("LD_LIBRARY_PATH") == os.environ.get("LD_LIBRARY_PATH"):
            return  # (an extra prefix's libraries must be on the path from the start: re-execute once)
    except RosUnavailableError:
        env = _with_library_path(dict(os.environ))
        if os.environ.get(_REEXEC_FLAG) or env.get("LD_LIBRARY_PATH") == os.environ.get("LD_LIBRARY_PATH"):
            raise
    env[_REEXEC_FLAG] = "1"
    sys.stdout.flush()
    sys.stderr.flush()
    os.execve(sys.executable, list(getattr(sys, "orig_argv", [sys.executable, *sys.argv])), env)
