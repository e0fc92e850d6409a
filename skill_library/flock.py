"""An exclusive, inter-process lock on a lock file (POSIX `flock`), with a timeout and a clear error.

The skill library and the key ring both hold one for every change, so concurrent processes
(two `skillstack skills add`, a training run publishing while a user trusts a key) serialise
their read-modify-write of `index.json`, `trust.json` and the audit logs. The lock file itself
is empty: it is created once and never rewritten (its content does not matter, only the lock).
"""

from __future__ import annotations

import contextlib
import errno
import os
import time
from collections.abc import Iterator
from pathlib import Path

from skill_library.errors import SkillLibraryError

try:  # POSIX only; elsewhere changes are not protected against concurrent writers
    import fcntl
except ImportError:  # pragma: no cover
    fcntl = None  # type: ignore[assignment]

__all__ = ["exclusive_lock"]


@contextlib.contextmanager
def exclusive_lock(path: str | os.PathLike[str], timeout: float, what: str) -> Iterator[None]:
    """Hold an exclusive lock on `path` (created 0600 if missing) for the block.

    Raises `SkillLibraryError` naming `what` when another process holds it for over `timeout` s.
    """
    path = Path(path)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        if fcntl is not None:
            deadline = time.monotonic() + timeout
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except OSError as exc:
                    if exc.errno not in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK):
                        raise
                    if time.monotonic() > deadline:
                        raise SkillLibraryError(f"{what}: locked by another process for over {timeout:.0f} s") from None
                    time.sleep(0.02)
        yield
    finally:
        os.close(fd)  # closing releases the flock
