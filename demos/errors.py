"""Errors raised by the demonstrations package.

All of them are `ValueError` subclasses so that the `skillstack` command line prints one
clear line instead of a traceback; each message names the file and what is wrong with it.
"""

from __future__ import annotations

from pathlib import Path


class DemoError(ValueError):
    """Base class of every demonstrations error."""


class DemoFileError(DemoError):
    """A demonstration file cannot be used; `path` names it and `problem` says why."""

    def __init__(self, path: str | Path, problem: str):
        self.path = Path(path)
        self.problem = problem
        super().__init__(f"{self.path}: {problem}")


class DemoFileCorruptError(DemoFileError):
    """The file is not readable HDF5: truncated, overwritten, or a checksum failed."""


class DemoLayoutError(DemoFileError):
    """The file is HDF5 but not a demonstration file: a group, dataset or attribute is missing or wrong."""


class EnvMismatchError(DemoFileError):
    """The file holds demonstrations for another environment than the one expected."""


class OutputExistsError(DemoError, FileExistsError):
    """The output file exists and overwriting was not asked for (pass overwrite=True / --overwrite)."""


class UnknownPolicyError(DemoError):
    """A policy name given to `record_demos` is not one it knows."""


class BagImportError(DemoError):
    """A ROS 2 bag cannot be imported: missing topic, joints, unsupported encoding, unreadable bag."""
