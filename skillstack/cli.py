"""`skillstack` console entry point: one command, one module per subcommand.

Each module in `skillstack/commands/` exposes `register(subparsers)`, which adds its
parser and sets `func` to a callable taking the parsed arguments and returning an
exit code. Heavy imports (mujoco, torch, rclpy) happen inside those callables so that
`skillstack --help` stays fast.
"""

from __future__ import annotations

import argparse
import importlib
import sys

# Order is the order shown in --help.
COMMAND_MODULES = [
    "demo",
    "envs",
    "robots",
    "calibrate",
    "record",
    "replay",
    "import_bag",
    "demos",
    "segment",
    "discover",
    "skills",
    "zoo",
    "keys",
    "run_task",
    "deploy",
    "train",
    "eval",
    "plot",
    "sweep",
    "bench",
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="skillstack",
        description="Robot skill learning: train, record, replay, segment, compose and deploy skills.",
    )
    parser.add_argument("--version", action="version", version=f"skillstack {_version()}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        module = importlib.import_module(f"skillstack.commands.{name}")
        module.register(sub)
    return parser


def _version() -> str:
    from skillstack import __version__

    return __version__


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except (ValueError, FileNotFoundError, KeyError) as exc:
        # User errors: one clear line, no traceback.
        msg = exc.args[0] if isinstance(exc, KeyError) and exc.args else exc
        print(f"skillstack {args.command}: error: {msg}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
