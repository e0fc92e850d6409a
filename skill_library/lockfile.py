"""Lock files: the exact skills (name, version, manifest digest, signer) a task may run with.

``skillstack skills lock TASK`` writes one; ``run-task --lock``, ``deploy --lock`` and the
hierarchical controller on the robot load exactly those skills and refuse anything else: a
skill missing from the library, another version, or a package whose manifest digest or
signer differs from the pinned one (a re-sealed or re-signed package has another digest).
The manifest digest covers the SHA-256 of every file, so it pins the weights too. Format::

    {"format": "skillstack-lock", "format_version": 1, "task": "stack-three", "kinds": "all",
     "created": "...", "library": "/home/ana/.skillstack/skills",
     "skills": [{"name": "pick_red", "version": "0.1.0", "manifest_digest": "<sha256>",
                 "signer": "<key id or null>"}, ...]}

Written through `common.atomic`; read strictly (bounded, every field checked).
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from common.atomic import atomic_write_bytes
from skill_library.audit import utc_now
from skill_library.errors import SkillLibraryError, SkillLockError, SkillNotFoundError
from skill_library.files import read_bounded
from skill_library.manifest import Manifest, parse_version, validate_name

__all__ = ["LOCK_FORMAT", "LockedSkill", "SkillLock", "load_locked_skills", "lock_skills", "read_lock", "write_lock"]

LOCK_FORMAT = "skillstack-lock"
KINDS = ("all", "learned", "scripted")
_MAX_LOCK_BYTES = 4 * 1024 * 1024
_HEX64 = re.compile(r"^[0-9a-f]{64}$")
_KEY_ID = re.compile(r"^[0-9a-f]{32}$")


@dataclass(frozen=True)
class LockedSkill:
    """One pinned skill version."""

    name: str
    version: str
    manifest_digest: str
    signer: str | None

    @property
    def ref(self) -> str:
        return f"{self.name}@{self.version}"

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "version": self.version, "manifest_digest": self.manifest_digest, "signer": self.signer}


@dataclass(frozen=True)
class SkillLock:
    """A lock file's content (see module docstring)."""

    skills: tuple[LockedSkill, ...]
    task: str | None = None
    kinds: str = "all"
    created: str = ""
    library: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {"format": LOCK_FORMAT, "format_version": 1, "task": self.task, "kinds": self.kinds, "created": self.created,
                "library": self.library, "skills": [s.to_dict() for s in self.skills]}  # fmt: skip

    def get(self, name: str) -> LockedSkill | None:
        """The pinned version of `name`, or None when the lock does not hold it."""
        return next((s for s in self.skills if s.name == name), None)

    def check(self, manifest: Manifest, where: str = "") -> LockedSkill:
        """Refuse a verified manifest that is not exactly the pinned version of its name."""
        pinned = self.get(manifest.name)
        at = f"{where}: " if where else ""
        if pinned is None:
            raise SkillLockError(f"{at}{manifest.ref} is not in the lock file (it pins {', '.join(s.ref for s in self.skills)})")
        if manifest.version != pinned.version:
            raise SkillLockError(f"{at}{manifest.ref}: the lock file pins {pinned.ref}")
        if manifest.source_digest != pinned.manifest_digest:
            raise SkillLockError(
                f"{at}{manifest.ref}: manifest digest {str(manifest.source_digest)[:16]}... is not the locked "
                f"{pinned.manifest_digest[:16]}... (the package was changed, re-sealed or re-signed since it was locked)"
            )
        signer = None if manifest.signer is None else manifest.signer.key_id
        if signer != pinned.signer:
            raise SkillLockError(f"{at}{manifest.ref}: signed by {signer}, the lock file pins signer {pinned.signer}")
        return pinned

    def check_task(self, task: str) -> None:
        """Refuse running a lock made for another task."""
        if self.task is not None and task != self.task:
            raise SkillLockError(f"the lock file was made for task {self.task!r}, not {task!r}")


def _lock_error(where: str, msg: str) -> SkillLockError:
    return SkillLockError(f"{where}: {msg}")


def _parse(d: Any, where: str) -> SkillLock:
    if not isinstance(d, dict) or d.get("format") != LOCK_FORMAT or d.get("format_version") != 1:
        raise _lock_error(where, f"not a {LOCK_FORMAT} version 1 file (write one with `skillstack skills lock TASK`)")
    extra = sorted(set(d) - {"format", "format_version", "task", "kinds", "created", "library", "skills"})
    if extra:
        raise _lock_error(where, f"unknown field(s) {extra}")
    task, kinds = d.get("task"), d.get("kinds", "all")
    if task is not None and (not isinstance(task, str) or not 0 < len(task) <= 4096):
        raise _lock_error(where, f"task: expected a task name or null, got {task!r}")
    if kinds not in KINDS:
        raise _lock_error(where, f"kinds: expected one of {list(KINDS)}, got {kinds!r}")
    skills = d.get("skills")
    if not isinstance(skills, list) or not 0 < len(skills) <= 10000:
        raise _lock_error(where, "skills: expected a non-empty list of pinned skills")
    out, seen = [], set()
    for i, s in enumerate(skills):
        w = f"{where}: skills[{i}]"
        if not isinstance(s, dict) or set(s) != {"name", "version", "manifest_digest", "signer"}:
            raise SkillLockError(f"{w}: expected exactly name, version, manifest_digest, signer")
        try:
            validate_name(s["name"])
            parse_version(s["version"])
        except SkillLibraryError as exc:
            raise SkillLockError(f"{w}: {str(exc).replace('manifest.json: ', '')}") from None
        if not isinstance(s["manifest_digest"], str) or not _HEX64.match(s["manifest_digest"]):
            raise SkillLockError(f"{w}: manifest_digest: expected a sha256 hex digest")
        if s["signer"] is not None and (not isinstance(s["signer"], str) or not _KEY_ID.match(s["signer"])):
            raise SkillLockError(f"{w}: signer: expected a key id (32 hex digits) or null")
        if s["name"] in seen:
            raise SkillLockError(f"{w}: {s['name']!r} is pinned twice")
        seen.add(s["name"])
        out.append(LockedSkill(s["name"], s["version"], s["manifest_digest"], s["signer"]))
    return SkillLock(tuple(out), task, kinds, str(d.get("created", "")), str(d.get("library", "")))


def read_lock(path: str | os.PathLike[str]) -> SkillLock:
    """Read and check a lock file; `SkillLockError` names the bad field."""
    data = read_bounded(path, _MAX_LOCK_BYTES, "lock file", SkillLockError)
    try:
        d = json.loads(data)
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise _lock_error(str(path), "not JSON") from None
    return _parse(d, str(path))


def write_lock(lock: SkillLock, path: str | os.PathLike[str]) -> Path:
    """Write `lock` to `path` atomically (JSON, sorted keys)."""
    return atomic_write_bytes(path, (json.dumps(lock.to_dict(), indent=2, sort_keys=True) + "\n").encode("ascii"))


def lock_skills(library: Any, refs: Iterable[str], *, task: str | None = None, kinds: str = "all") -> SkillLock:
    """Pin `refs` (NAME or NAME@VERSION) of a `SkillLibrary` as they are installed now; each is fully verified."""
    if kinds not in KINDS:
        raise SkillLockError(f"kinds must be one of {list(KINDS)}, got {kinds!r}")
    pinned = []
    for ref in refs:
        m = library.read(ref).manifest  # signature by the recorded key, digest, hashes
        pinned.append(LockedSkill(m.name, m.version, m.source_digest, None if m.signer is None else m.signer.key_id))
    if not pinned:
        raise SkillLockError("nothing to lock: no skills selected")
    names = [p.name for p in pinned]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise SkillLockError(f"a lock pins one version per skill; {dupes} given twice")
    return SkillLock(tuple(sorted(pinned, key=lambda p: p.name)), task, kinds, utc_now(), str(library.root))


def load_locked_skills(library: Any, lock: SkillLock | str | os.PathLike[str], kinds: str = "all",
                       device: str | None = "cpu") -> list[Any]:  # fmt: skip
    """Load exactly the skills `lock` pins from a `SkillLibrary`, each verified against its pin.

    kinds: "all", "learned" (a pinned scripted skill is refused) or "scripted" (only the
    pinned scripted skills load). Raises `SkillLockError` when a pinned skill is missing or
    is not the pinned package.
    """
    from skill_library.skill import Skill

    lock = lock if isinstance(lock, SkillLock) else read_lock(lock)
    learned = ("rl", "bc")
    skills: list[Skill] = []
    for pinned in lock.skills:
        try:
            library.resolve(pinned.ref)
        except SkillNotFoundError as exc:
            raise SkillLockError(f"locked skill {pinned.ref} is not in {library.root}: {exc}") from None
        skill = library.load(pinned.ref, device=device)
        lock.check(skill.manifest, str(skill.path))
        skills.append(skill)
    if kinds == "learned":
        scripted = [s.ref for s in skills if s.kind not in learned]
        if scripted:
            raise SkillLockError(f"learned-only run refuses the scripted skills the lock pins: {', '.join(scripted)}")
    elif kinds == "scripted":
        skills = [s for s in skills if s.kind not in learned]
        if not skills:
            raise SkillLockError("the lock file pins no scripted skills")
    return skills

