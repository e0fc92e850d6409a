"""Reading a small file the library does not trust yet (a public key, a lock file): at most `limit`
bytes are read, and a missing, unreadable or too large file is one clear error of the caller's type."""

from __future__ import annotations

import os
from pathlib import Path

from skill_library.errors import SkillLibraryError

__all__ = ["read_bounded"]


def read_bounded(path: str | os.PathLike[str], limit: int, what: str, error: type[SkillLibraryError] = SkillLibraryError) -> bytes:
    """The bytes of `path` (a `what`, for messages), refusing more than `limit` bytes without reading them all."""
    path = Path(path)
    try:
        with open(path, "rb") as f:
            data = f.read(limit + 1)
    except OSError as exc:
        raise error(f"{path}: cannot read the {what} ({exc.strerror})") from None
    if len(data) > limit:
        raise error(f"{path}: over {limit} bytes: too large for a {what}")
    return data
