"""Build ROS 2 interface packages that are not on PyPI (control_msgs' actions) from their definitions.

ros2_control's standard actions, control_msgs/FollowJointTrajectory (every
joint_trajectory_controller) and control_msgs/GripperCommand (franka_gripper,
GripperActionController), live in a package with no PyPI wheel. ROS 2 Jazzy's code generators
are on PyPI, though, and come with the ``ros`` extra: this module runs them on the public
definitions shipped in ``ros_bridge/idl/control_msgs`` (copied unchanged from control_msgs
5.8.0, the Jazzy release, BSD-3-Clause), compiles the generated C/C++ with the system's C and
C++ compilers against the wheels' headers and libraries, and installs a ``control_msgs`` Python
package beside the wheels' own. Same package, type and field names as the real package, so real
controllers accept the goals (the types' hashes come from the same definitions).

What runs, in order (what ``rosidl_generate_interfaces`` does under CMake, without CMake):
``rosidl_adapter`` (.msg/.action -> .idl), ``rosidl_generator_type_description`` (type hashes),
generators ``c``, ``introspection_c``, ``fastrtps_c``, ``typesupport_c``, ``py``; then gcc/g++.
Two things are worked around, both in rosidl_cli's helpers, not in the generators: its
``translate`` needs catkin_pkg (not in the ``ros`` extra; the adapter's converters are called
directly instead), and its ``build_type_description_tuples`` pairs files by stem, which mixes up
msg/GripperCommand with action/GripperCommand (pairs are built by relative path instead).

Where it needs more than pip: a C and a C++ compiler and the Python headers (``python3-dev``).
Without them `build` raises `InterfaceBuildError` saying so, and the bridge falls back to the
topic interfaces. On a robot with ROS 2 installed nothing needs building: when the system's
``control_msgs`` is importable (a sourced install), it is used.

Run: ``python -m ros_bridge.interfaces [--prefix DIR]`` (the Makefile's install step does).
Installs into the running interpreter's prefix by default: the package into site-packages and
the shared libraries into ``<prefix>/lib`` (where the ROS wheels keep theirs and where
`ros_bridge._env` points the loader). Another prefix is found through ``SKILLSTACK_ROS_PREFIX``.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import io
import inspect
import os
import shutil
import subprocess
import sys
import sysconfig
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from common.atomic import atomic_path, staged_dir

__all__ = [
    "IDL_ROOT",
    "InterfaceBuildError",
    "action_types",
    "actions_available",
    "build_control_msgs",
    "install_paths",
    "main",
    "type_hashes",
]

IDL_ROOT = Path(__file__).resolve().parent / "idl"
PACKAGE = "control_msgs"
# The definitions the bridge uses, and the interface packages they depend on (all PyPI wheels).
FILES = (
    "msg/GripperCommand.msg",
    "msg/JointTolerance.msg",
    "msg/JointComponentTolerance.msg",
    "action/GripperCommand.action",
    "action/FollowJointTrajectory.action",
)
DEPENDENCIES = (
    "builtin_interfaces", "std_msgs", "geometry_msgs", "trajectory_msgs",
    "action_msgs", "unique_identifier_msgs", "service_msgs",
)  # fmt: skip
# (generator name, module:class of its rosidl_cli extension)
GENERATORS = (
    ("c", "rosidl_generator_c.cli:GenerateC"),
    ("introspection_c", "rosidl_typesupport_introspection_c.cli:GenerateIntrospectionCTypesupport"),
    ("fastrtps_c", "rosidl_typesupport_fastrtps_c.cli:GenerateFastRTPSCTypesupport"),
    ("typesupport_c", "rosidl_typesupport_c.cli:GenerateCTypesupport"),
    ("py", "rosidl_generator_py.cli:GeneratePython"),
)
TYPESUPPORTS = ("rosidl_typesupport_c", "rosidl_typesupport_fastrtps_c", "rosidl_typesupport_introspection_c")
_HINT = "build them with `python -m ros_bridge.interfaces` (the Makefile's install step) or source a ROS 2 install"


class InterfaceBuildError(RuntimeError):
    """The interface packages could not be generated or compiled (the message says where)."""


# ----------------------------------------------------------------------------------- runtime
def action_types() -> tuple[Any, Any]:
    """(FollowJointTrajectory, GripperCommand) from control_msgs, with their type support loaded.

    Raises ImportError with a hint when the package is missing or its libraries do not load
    (needs rclpy's environment: call from a node or after `_env.ensure_ros_env`)."""
    try:
        action = importlib.import_module(f"{PACKAGE}.action")
        types = (action.FollowJointTrajectory, action.GripperCommand)
        for t in types:
            t.Impl.SendGoalService.Request.__class__.__import_type_support__()  # loads the C libraries
            t.__class__.__import_type_support__()
    except Exception as exc:  # ImportError, or a library the loader cannot find
        raise ImportError(f"control_msgs actions unavailable ({type(exc).__name__}: {exc}); {_HINT}") from exc
    return types


def type_hashes() -> dict[str, str]:
    """RIHS01 type hashes of the built actions (type name -> hash), from the definitions installed
    beside the package ({} when the package was not built here, e.g. a sourced ROS install)."""
    import json

    spec = importlib.util.find_spec(PACKAGE)
    if spec is None or spec.origin is None:
        return {}
    prefix = Path(spec.origin).resolve().parents[4]  # <prefix>/lib/pythonX.Y/site-packages/control_msgs/__init__.py
    out = {}
    for name in ("FollowJointTrajectory", "GripperCommand"):
        path = prefix / "share" / PACKAGE / "action" / f"{name}.json"
        if path.is_file():
            for entry in json.loads(path.read_text())["type_hashes"]:
                if entry["type_name"] == f"{PACKAGE}/action/{name}":
                    out[entry["type_name"]] = entry["hash_string"]
    return out


def actions_available() -> bool:
    """True when control_msgs' FollowJointTrajectory and GripperCommand load in this process."""
    try:
        action_types()
    except ImportError:
        return False
    return True


# ------------------------------------------------------------------------------------- build
def install_paths(prefix: str | Path | None = None) -> dict[str, Path]:
    """Where a build installs: {'python': site-packages, 'lib': shared libraries, 'share': definitions}."""
    prefix = Path(prefix or sys.prefix).resolve()
    python = Path(sysconfig.get_paths(vars={"base": str(prefix), "platbase": str(prefix)})["platlib"])
    return {"python": python, "lib": prefix / "lib", "share": prefix / "share"}


def _ros_prefix() -> Path:
    """The prefix holding the ROS wheels' headers, libraries and share/ (this interpreter's)."""
    prefix = Path(sys.prefix)
    if not (prefix / "share" / "rosidl_generator_c").is_dir():
        raise InterfaceBuildError(
            f"the ROS 2 code generators are not installed in {prefix} (pip install 'skillstack[ros]', "
            "which brings rosidl_generator_c/py and the typesupports)"
        )
    return prefix


def _generate(out: Path, ros: Path, echo: Callable[[str], None]) -> None:
    """Run the rosidl generators on the definitions into out/<generator>/control_msgs."""
    os.environ.setdefault("AMENT_PREFIX_PATH", str(ros))  # the generators find their templates through it
    try:
        from rosidl_adapter.action import convert_action_to_idl
        from rosidl_adapter.msg import convert_msg_to_idl
        from rosidl_cli.command.hash.api import generate_type_hashes
        from rosidl_cli.command.helpers import interface_path_as_tuple
    except ImportError as exc:
        raise InterfaceBuildError(f"rosidl generators missing ({exc}); pip install 'skillstack[ros]'") from None
    src = IDL_ROOT / PACKAGE
    idl_dir = out / "idl"
    idl_files = []
    for rel in FILES:
        convert = convert_msg_to_idl if rel.endswith(".msg") else convert_action_to_idl
        with contextlib.redirect_stdout(io.StringIO()):  # the adapter narrates every file
            made = convert(src, PACKAGE, Path(rel), idl_dir / Path(rel).parent)
        idl_files.append(f"{idl_dir}:{Path(made).relative_to(idl_dir).as_posix()}")
    include = [str(ros / "share" / dep) for dep in DEPENDENCIES]
    hashes = generate_type_hashes(package_name=PACKAGE, interface_files=idl_files, include_paths=include, output_path=out / "type_description")

    def pairs(files: Sequence[str], described: Sequence[str]) -> list[str]:
        """idl file -> its type description, matched by folder and name (msg/X vs action/X)."""
        out_pairs = []
        for f in files:
            _, rel = interface_path_as_tuple(f)
            match = [d for d in described if Path(d).with_suffix("").parts[-2:] == rel.with_suffix("").parts[-2:]]
            if len(match) != 1:
                raise InterfaceBuildError(f"no single type description for {rel}: {match}")
            out_pairs.append(f"{rel}:{match[0]}")
        return out_pairs

    for name, spec in GENERATORS:
        module_name, cls = spec.split(":")
        module = importlib.import_module(module_name)
        if hasattr(module, "build_type_description_tuples"):
            module.build_type_description_tuples = pairs
        extension = getattr(module, cls)(name)
        kwargs = {"type_description_files": hashes} if "type_description_files" in inspect.signature(extension.generate).parameters else {}
        extension.generate(PACKAGE, idl_files, include, output_path=out / name / PACKAGE, **kwargs)
        echo(f"  generated {name}")


def _compile(gen: Path, lib_out: Path, py_out: Path, ros: Path, final_lib: Path, echo: Callable[[str], None]) -> None:
    """Compile the generated sources into the five libraries and three Python extensions."""
    cc, cxx = os.environ.get("CC", "cc"), os.environ.get("CXX", "c++")
    for tool in (cc, cxx):
        if shutil.which(tool) is None:
            raise InterfaceBuildError(f"no compiler {tool!r} on PATH: install gcc and g++ (e.g. apt-get install build-essential)")
    inc_ros = ros / "include"
    includes = [inc_ros] + [gen / g for g, _ in GENERATORS if g != "py"]
    includes += [inc_ros / d for d in (*DEPENDENCIES, "rosidl_runtime_c", "rosidl_typesupport_interface", "rcutils",
                                      "rosidl_typesupport_introspection_c", "rosidl_typesupport_fastrtps_c",
                                      "rosidl_typesupport_fastrtps_cpp", "rosidl_typesupport_c", "rosidl_runtime_cpp",
                                      "rosidl_dynamic_typesupport", "type_description_interfaces", "rmw")]  # fmt: skip
    py_include = Path(sysconfig.get_paths()["include"])
    if not (py_include / "Python.h").is_file():
        raise InterfaceBuildError(f"Python headers missing ({py_include}/Python.h): install python3-dev")
    import numpy

    flags = [f"-I{p}" for p in includes] + ["-shared", "-fPIC", "-O2", "-w", f"-L{ros / 'lib'}", f"-L{lib_out}", "-Wl,-rpath,$ORIGIN"]

    def deps(kind: str) -> list[str]:
        return [f"-l{d}__{kind}" for d in DEPENDENCIES]

    def lib(name: str) -> Path:
        return lib_out / f"lib{PACKAGE}__{name}.so"

    def run(compiler: str, sources: list[Path], target: Path, extra: list[str]) -> None:
        cmd = [compiler, *(["-std=c++17"] if compiler == cxx else []), *map(str, sources), "-o", str(target), *flags, *extra]
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode != 0:
            raise InterfaceBuildError(f"compiling {target.name} failed:\n{proc.stderr[-3000:]}")
        echo(f"  built {target.name}")

    def sources(folder: str, suffix: str) -> list[Path]:
        return sorted((gen / folder).rglob(f"*{suffix}"))

    runtime = ["-lrosidl_runtime_c", "-lrcutils"]
    run(cc, sources("c", ".c"), lib("rosidl_generator_c"), deps("rosidl_generator_c") + runtime)
    own_c = [f"-l{PACKAGE}__rosidl_generator_c"]
    run(cc, sources("introspection_c", ".c"), lib("rosidl_typesupport_introspection_c"),
        own_c + deps("rosidl_typesupport_introspection_c") + ["-lrosidl_typesupport_introspection_c"] + runtime)
    run(cxx, sources("fastrtps_c", ".cpp"), lib("rosidl_typesupport_fastrtps_c"),
        own_c + deps("rosidl_typesupport_fastrtps_c") + deps("rosidl_generator_c")
        + ["-lrosidl_typesupport_fastrtps_c", "-lrosidl_typesupport_fastrtps_cpp", "-lfastcdr", "-lrmw"] + runtime)
    run(cxx, sources("typesupport_c", ".cpp"), lib("rosidl_typesupport_c"),
        own_c + deps("rosidl_typesupport_c") + ["-lrosidl_typesupport_c"] + runtime)
    run(cc, [p for p in sources("py", "_s.c")], lib("rosidl_generator_py"),
        [f"-I{py_include}", f"-I{numpy.get_include()}"] + own_c + [f"-l{PACKAGE}__rosidl_typesupport_c"]
        + deps("rosidl_generator_py") + deps("rosidl_generator_c") + runtime)  # fmt: skip
    for ts in TYPESUPPORTS:
        run(cc, [gen / "py" / PACKAGE / f"_{PACKAGE}_s.ep.{ts}.c"], py_out / f"{PACKAGE}_s__{ts}.so",
            [f"-I{py_include}", f"-Wl,-rpath,{final_lib}", f"-l{PACKAGE}__rosidl_generator_py", f"-l{PACKAGE}__{ts}"] + own_c + runtime)


def build_control_msgs(prefix: str | Path | None = None, echo: Callable[[str], None] = print) -> Path:
    """Generate, compile and install control_msgs (the definitions in ros_bridge/idl) under `prefix`
    (default: this interpreter's). Returns the installed Python package's folder; raises
    InterfaceBuildError saying what is missing when it cannot."""
    ros = _ros_prefix()
    paths = install_paths(prefix)
    with tempfile.TemporaryDirectory(prefix="skillstack-ros-interfaces-") as tmp:
        work = Path(tmp)
        echo(f"control_msgs: generating from {IDL_ROOT / PACKAGE}")
        _generate(work / "gen", ros, echo)
        lib_out, py_out = work / "lib", work / "py" / PACKAGE
        lib_out.mkdir()
        py_out.mkdir(parents=True)
        _compile(work / "gen", lib_out, py_out, ros, paths["lib"], echo)
        for sub in ("msg", "action"):
            shutil.copytree(work / "gen" / "py" / PACKAGE / sub, py_out / sub)
        (py_out / "__init__.py").write_text('"""control_msgs (subset) built by skillstack from its public definitions: python -m ros_bridge.interfaces."""\n')
        # Install: libraries one by one (each atomically), then the package and definitions as folders.
        paths["lib"].mkdir(parents=True, exist_ok=True)
        for so in sorted(lib_out.glob("*.so")):
            with atomic_path(paths["lib"] / so.name) as dest:
                shutil.copy2(so, dest)
        with staged_dir(paths["python"] / PACKAGE) as staging:
            shutil.copytree(py_out, staging, dirs_exist_ok=True)
        with staged_dir(paths["share"] / PACKAGE) as staging:
            for sub in ("msg", "action"):
                shutil.copytree(work / "gen" / "idl" / sub, staging / sub)
                for f in (work / "gen" / "type_description" / sub).glob("*.json"):
                    shutil.copy2(f, staging / sub / f.name)
                for f in (IDL_ROOT / PACKAGE / sub).iterdir():
                    shutil.copy2(f, staging / sub / f.name)
            shutil.copy2(IDL_ROOT / PACKAGE / "LICENSE", staging / "LICENSE")
        index = paths["share"] / "ament_index" / "resource_index" / "packages"
        index.mkdir(parents=True, exist_ok=True)
        (index / PACKAGE).touch()
    echo(f"control_msgs: installed into {paths['python'] / PACKAGE} and {paths['lib']}")
    return paths["python"] / PACKAGE


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m ros_bridge.interfaces [--prefix DIR] [--check]``: build and install control_msgs."""
    parser = argparse.ArgumentParser(prog="python -m ros_bridge.interfaces", description=__doc__.split("\n\n")[0])
    parser.add_argument("--prefix", default=None, help="install prefix (default: this interpreter's, e.g. the venv)")
    parser.add_argument("--check", action="store_true", help="only report whether the actions load; exit 1 if not")
    args = parser.parse_args(argv)
    if args.check:
        from ros_bridge._env import ensure_ros_env

        ensure_ros_env()
        try:
            action_types()
        except ImportError as exc:
            print(exc, file=sys.stderr)
            return 1
        print("control_msgs actions load: FollowJointTrajectory, GripperCommand")
        for name, digest in type_hashes().items():
            print(f"  {name} {digest}")
        return 0
    try:
        build_control_msgs(args.prefix)
    except InterfaceBuildError as exc:
        print(f"control_msgs not built: {exc}\nThe bridge falls back to the topic interfaces.", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
