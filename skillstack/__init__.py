"""The `skillstack` command line. Holds no logic of its own: each subcommand parses
arguments and calls the public Python API of the layers below (envs, policies,
skill_library, ros_bridge, bench)."""

__version__ = "0.1.0"
