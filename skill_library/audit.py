"""Append-only, hash-chained audit logs of library and trust operations.

Two logs share this format: ``<library>/audit.log`` (add, remove, manifest updates, refused
adds, every policy override) and ``<keys>/audit.log`` (key generation, trust, revocation).
Each line is one compact JSON record::

    {"seq": 3, "id": "...", "time": "2025-01-31T12:00:00Z", "op": "add", "user": "ana",
     "host": "lab-pc", "pid": 4242, "key_id": "<the acting user's default key id or null>",
     "details": {...}, "prev": "<sha256 of the previous line>"}

Who and when: the login name, host and process, and the acting user's default signing key.
Append-only: ``prev`` chains every line to the one before (the first to 64 zeros) and ``seq``
counts from 0, so an edited, deleted, inserted or re-ordered line breaks the chain, and
`read_audit` refuses the log naming the first bad line. A record is appended by rewriting the
file through `common.atomic` (the old lines, then the new one) under the caller's lock, so a
crash leaves the old log or the new one, never a torn line.
"""

from __future__ import annotations

import datetime as _dt
import getpass
import hashlib
import json
import os
import socket
import uuid
from pathlib import Path
from typing import Any

from common.atomic import atomic_write_bytes
from skill_library.errors import SkillLibraryError

__all__ = ["AUDIT_FILE", "GENESIS", "append_audit", "has_record", "new_record", "read_audit", "utc_now", "who"]

AUDIT_FILE = "audit.log"
GENESIS = "0" * 64
MAX_AUDIT_BYTES = 256 * 1024 * 1024


def utc_now() -> str:
    """Current UTC time as ISO 8601 with seconds, e.g. 2025-01-31T12:00:00Z."""
    return _dt.datetime.now(_dt.timezone.utc).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def login_name() -> str:
    """The user's login name (a uid where the system has no name for it)."""
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no login name (a container without a passwd entry)
        return f"uid:{os.getuid()}" if hasattr(os, "getuid") else "unknown"


def who(key_id: str | None) -> dict[str, Any]:
    """The acting user: login name, host, process id, and `key_id`, their default signing key (None when they have none)."""
    return {"user": login_name(), "host": socket.gethostname(), "pid": os.getpid(), "key_id": key_id}


def new_record(op: str, details: dict[str, Any], key_id: str | None) -> dict[str, Any]:
    """A record for `op` (not yet appended): a fresh id, the time, who (see `who`) and `details`."""
    return {"id": uuid.uuid4().hex, "time": utc_now(), "op": op, **who(key_id), "details": details}


def _line(record: dict[str, Any]) -> bytes:
    return json.dumps(record, sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False).encode("ascii")


def _lines(path: Path) -> list[bytes]:
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return []
    if len(data) > MAX_AUDIT_BYTES:
        raise SkillLibraryError(f"{path}: audit log over {MAX_AUDIT_BYTES} bytes; archive it and start a new one")
    if data and not data.endswith(b"\n"):
        raise SkillLibraryError(f"{path}: audit log does not end with a newline (it was edited)")
    return data.splitlines()


def read_audit(path: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """Every record of an audit log, oldest first, after checking the hash chain.

    Raises `SkillLibraryError` naming the first line that is not valid JSON, is out of
    sequence, or does not chain to the line before it (the log was edited or truncated).
    """
    path = Path(path)
    return _check_chain(path, _lines(path))


def _check_chain(path: Path, lines: list[bytes]) -> list[dict[str, Any]]:
    prev, out = GENESIS, []
    for i, raw in enumerate(lines):
        try:
            record = json.loads(raw)
        except (json.JSONDecodeError, UnicodeDecodeError):
            raise SkillLibraryError(f"{path}: line {i + 1} is not JSON (the log was edited)") from None
        if not isinstance(record, dict) or record.get("seq") != i or record.get("prev") != prev or _line(record) != raw:
            raise SkillLibraryError(f"{path}: line {i + 1} breaks the hash chain (a line was edited, removed or inserted)")
        out.append(record)
        prev = hashlib.sha256(raw).hexdigest()
    return out


def has_record(path: str | os.PathLike[str], record_id: str, last: int = 8) -> bool:
    """Whether one of the last `last` records has id `record_id` (crash recovery: was it appended?)."""
    for raw in _lines(Path(path))[-last:]:
        try:
            if json.loads(raw).get("id") == record_id:
                return True
        except (json.JSONDecodeError, UnicodeDecodeError, AttributeError):
            return False
    return False


def append_audit(path: str | os.PathLike[str], record: dict[str, Any], tmp_dir: str | os.PathLike[str] | None = None) -> dict[str, Any]:
    """Append `record` (from `new_record`) to the log at `path`; the caller holds the lock that guards it.

    The existing chain is checked first, so a record is never appended to a log that was tampered with.
    Returns the record as written (with ``seq`` and ``prev``).
    """
    path = Path(path)
    lines = _lines(path)
    _check_chain(path, lines)
    prev = hashlib.sha256(lines[-1]).hexdigest() if lines else GENESIS
    written = {**record, "seq": len(lines), "prev": prev}
    data = b"".join(line + b"\n" for line in lines) + _line(written) + b"\n"
    atomic_write_bytes(path, data, tmp_dir=tmp_dir)
    return written
