"""The skill library: a directory of verified packages with an index.

Layout::

    <library>/
      index.json              {"format": "skillstack-library", "skills": {name: {version: summary}}}
      .lock                   fcntl lock file: every change holds an exclusive lock on it
      .journal.json           present only while a change is in flight (crash recovery)
      .tmp/                   staging area (same filesystem, so renames are atomic)
      <name>/<version>/       one package per version (manifest.json, weights.safetensors, ...)

The index is the source of truth. Every change (add, remove, descriptor update) holds
the exclusive lock for its whole duration, stages files in `.tmp/`, records what it is
about to do in `.journal.json`, renames the package into place, and only then replaces
`index.json` atomically (temp file + fsync + rename). A crash at any point leaves the
index as it was; the next change (or `recover()`) rolls back the half-done step: it
deletes the journaled package directory if the index does not list it, and empties
`.tmp/`. Readers never need the lock: they read the last complete index.

Skill references: `name` (latest version by semantic-version precedence) or
`name@version` (that version exactly).

The library root is `--library`, else `$SKILLSTACK_LIBRARY`, else `~/.skillstack/skills`
(`resolve_library_path`).
"""

from __future__ import annotations

import contextlib
import errno
import fnmatch
import json
import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from common.atomic import atomic_replace, atomic_write_bytes, fsync_dir, fsync_file, staged_dir
from skill_library.errors import SkillExistsError, SkillLibraryError, SkillNotFoundError, SkillPackageError
from skill_library.manifest import Manifest, parse_version, validate_name, version_key
from skill_library.package import MANIFEST_FILE, read_package, rewrite_manifest

try:  # POSIX only; on other systems changes are not protected against concurrent writers
    import fcntl
except ImportError:  # pragma: no cover
    fcntl = None  # type: ignore[assignment]

__all__ = [
    "DEFAULT_LIBRARY",
    "ENV_VAR",
    "INDEX_FILE",
    "SkillEntry",
    "SkillLibrary",
    "SkillRegistry",
    "parse_ref",
    "resolve_library_path",
]

ENV_VAR = "SKILLSTACK_LIBRARY"
DEFAULT_LIBRARY = "~/.skillstack/skills"
INDEX_FILE = "index.json"
LOCK_FILE = ".lock"
JOURNAL_FILE = ".journal.json"
TMP_DIR = ".tmp"
INDEX_FORMAT = "skillstack-library"
# Test hook: "<stage>:<seconds>" sleeps inside add() at stage "staged" (copied to .tmp) or
# "placed" (renamed into place, index not yet written), so a test can kill the process there.
_TEST_SLEEP_ENV = "SKILLSTACK_TEST_ADD_SLEEP"


def resolve_library_path(path: str | os.PathLike[str] | None = None) -> Path:
    """Library root: `path` if given, else $SKILLSTACK_LIBRARY, else ~/.skillstack/skills."""
    chosen = path or os.environ.get(ENV_VAR) or DEFAULT_LIBRARY
    return Path(os.path.expanduser(str(chosen))).absolute()


def parse_ref(ref: str) -> tuple[str, str | None]:
    """Split `name[@version]`, validating both parts (SkillLibraryError on a bad reference)."""
    if not isinstance(ref, str) or not ref:
        raise SkillLibraryError(f"bad skill reference {ref!r}; expected NAME or NAME@VERSION")
    name, sep, version = ref.partition("@")
    try:
        validate_name(name, "skill reference")
        if sep:
            parse_version(version, "skill reference version")
    except SkillPackageError as exc:
        raise SkillLibraryError(str(exc).replace("manifest.json: ", "")) from None
    return name, (version if sep else None)


@dataclass(frozen=True)
class SkillEntry:
    """One indexed skill version: what `list`/`search` return (from the index, no package read)."""

    name: str
    version: str
    kind: str
    robot: str
    env_id: str
    family: str
    tags: tuple[str, ...]
    preconditions: tuple[str, ...]
    effects: tuple[str, ...]
    description: str
    added: str
    success_rate: float | None
    path: Path

    @property
    def ref(self) -> str:
        return f"{self.name}@{self.version}"

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form (used by `skillstack skills list --json`)."""
        return {
            "name": self.name,
            "version": self.version,
            "kind": self.kind,
            "robot": self.robot,
            "env_id": self.env_id,
            "family": self.family,
            "tags": list(self.tags),
            "preconditions": list(self.preconditions),
            "effects": list(self.effects),
            "description": self.description,
            "added": self.added,
            "success_rate": self.success_rate,
            "path": str(self.path),
        }


def _summary(m: Manifest, added: str) -> dict[str, Any]:
    totals = (m.descriptors or {}).get("totals") or {}
    return {
        "kind": m.kind,
        "robot": m.embodiment.robot,
        "arm_joint_names": list(m.embodiment.arm_joint_names),
        "env_id": m.task.env_id,
        "family": m.task.family,
        "tags": list(m.tags),
        "preconditions": list(m.preconditions),
        "effects": list(m.effects),
        "description": m.description[:200],
        "added": added,
        "success_rate": totals.get("success_rate"),
        "manifest_digest": m.source_digest or m.to_dict()["manifest_digest"],
    }


def _now() -> str:
    from skill_library.authoring import utc_now

    return utc_now()


def _atoms(expr: str) -> list[str]:
    """Normalised literals of a predicate conjunction, e.g. 'on(red,blue) & !holding(red)'."""
    from envs.predicates import parse

    try:
        return [str(lit) for lit in parse(expr)]
    except ValueError:
        return [expr.replace(" ", "")]


class SkillLibrary:
    """A skill library directory (see module docstring). Safe for concurrent processes on POSIX."""

    def __init__(self, root: str | os.PathLike[str] | None = None, *, lock_timeout: float = 120.0) -> None:
        self.root = resolve_library_path(root)
        self.lock_timeout = float(lock_timeout)

    def __repr__(self) -> str:
        return f"SkillLibrary({str(self.root)!r})"

    # ------------------------------------------------------------------ index & locking
    @property
    def index_path(self) -> Path:
        return self.root / INDEX_FILE

    def _ensure_root(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)

    def read_index(self) -> dict[str, Any]:
        """The current index (an empty one if the library does not exist yet)."""
        try:
            data = self.index_path.read_bytes()
        except FileNotFoundError:
            return {"format": INDEX_FORMAT, "format_version": 1, "skills": {}}
        try:
            index = json.loads(data)
        except json.JSONDecodeError as exc:
            raise SkillLibraryError(f"{self.index_path}: corrupt index ({exc.msg}); run `skillstack skills reindex`") from None
        if not isinstance(index, dict) or index.get("format") != INDEX_FORMAT or not isinstance(index.get("skills"), dict):
            raise SkillLibraryError(f"{self.index_path}: not a skillstack library index; run `skillstack skills reindex`")
        return index

    def _write_index(self, index: dict[str, Any]) -> None:
        data = (json.dumps(index, indent=2, sort_keys=True) + "\n").encode()
        atomic_write_bytes(self.index_path, data, tmp_dir=self.root / TMP_DIR)

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        """Hold the library's exclusive lock, recovering any half-done change first."""
        self._ensure_root()
        fd = os.open(self.root / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            if fcntl is not None:
                deadline = time.monotonic() + self.lock_timeout
                while True:
                    try:
                        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                        break
                    except OSError as exc:
                        if exc.errno not in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK):
                            raise
                        if time.monotonic() > deadline:
                            raise SkillLibraryError(
                                f"{self.root}: library is locked by another process for over {self.lock_timeout:.0f} s"
                            ) from None
                        time.sleep(0.02)
            (self.root / TMP_DIR).mkdir(exist_ok=True)
            self._recover_locked()
            yield
        finally:
            os.close(fd)  # closing releases the flock

    def _recover_locked(self) -> None:
        journal = self.root / JOURNAL_FILE
        if journal.exists():
            try:
                entry = json.loads(journal.read_text())
                name, version, op = entry["name"], entry["version"], entry["op"]
                validate_name(name)
                parse_version(version)
            except (ValueError, KeyError, TypeError, OSError):
                entry = None
            if entry is not None:
                summary = self.read_index()["skills"].get(name, {}).get(version)
                target = self.root / name / version
                if op == "add":
                    committed = summary is not None and summary.get("manifest_digest") == entry.get("digest")
                    if not committed:
                        # Roll back: drop the half-installed copy, restore a replaced version.
                        if target.exists():
                            shutil.rmtree(target)
                        backup = entry.get("backup")
                        if backup:
                            b = self.root / TMP_DIR / Path(backup).name / "old"
                            if b.is_dir():
                                atomic_replace(b, target)
                elif op == "remove" and summary is None and target.exists():
                    shutil.rmtree(target)  # the index no longer lists it: finish the removal
                if (self.root / name).is_dir() and not any((self.root / name).iterdir()):
                    (self.root / name).rmdir()
            journal.unlink()
            fsync_dir(self.root)
        tmp = self.root / TMP_DIR
        for child in tmp.iterdir():
            if child.is_dir() and not child.is_symlink():
                shutil.rmtree(child, ignore_errors=True)
            else:
                child.unlink(missing_ok=True)

    def _journal(self, op: str, name: str, version: str, **extra: Any) -> None:
        data = json.dumps({"op": op, "name": name, "version": version, **extra}).encode()
        atomic_write_bytes(self.root / JOURNAL_FILE, data, tmp_dir=self.root / TMP_DIR)

    def _end_journal(self) -> None:
        (self.root / JOURNAL_FILE).unlink(missing_ok=True)
        fsync_dir(self.root)

    def recover(self) -> None:
        """Roll back any change a crashed process left half-done (runs automatically before each change)."""
        with self._locked():
            pass

    # ------------------------------------------------------------------ queries
    def entries(self) -> list[SkillEntry]:
        """Every indexed skill version, sorted by name then semantic version."""
        out = []
        for name, versions in self.read_index()["skills"].items():
            for version, s in versions.items():
                out.append(
                    SkillEntry(
                        name=name,
                        version=version,
                        kind=s.get("kind", "?"),
                        robot=s.get("robot", "?"),
                        env_id=s.get("env_id", "?"),
                        family=s.get("family", "?"),
                        tags=tuple(s.get("tags", ())),
                        preconditions=tuple(s.get("preconditions", ())),
                        effects=tuple(s.get("effects", ())),
                        description=s.get("description", ""),
                        added=s.get("added", ""),
                        success_rate=s.get("success_rate"),
                        path=self.root / name / version,
                    )
                )
        out.sort(key=lambda e: (e.name, version_key(e.version)))
        return out

    def versions(self, name: str) -> list[str]:
        """Versions of `name` in the library, oldest to newest (semver order)."""
        return sorted(self.read_index()["skills"].get(name, {}), key=version_key)

    def resolve(self, ref: str) -> SkillEntry:
        """The entry for `name` (latest version) or `name@version`; SkillNotFoundError lists what exists."""
        name, version = parse_ref(ref)
        versions = self.versions(name)
        if not versions:
            names = sorted(self.read_index()["skills"])
            raise SkillNotFoundError(f"no skill {name!r} in {self.root}; skills: {', '.join(names) if names else '(library is empty)'}")
        if version is None:
            version = versions[-1]
        elif version not in versions:
            raise SkillNotFoundError(f"no version {version!r} of skill {name!r}; versions: {', '.join(versions)}")
        for e in self.entries():
            if e.name == name and e.version == version:
                return e
        raise SkillNotFoundError(ref)  # pragma: no cover - index changed between reads

    def search(
        self,
        name: str | None = None,
        tag: str | None = None,
        embodiment: str | None = None,
        predicate: str | None = None,
        where: str = "any",
        kind: str | None = None,
        latest_only: bool = False,
    ) -> list[SkillEntry]:
        """Entries matching every given filter.

        - `name`: glob (``push*``) or substring of the skill name
        - `tag`: exact tag
        - `embodiment`: robot model id (exact or substring, e.g. "panda") or an arm joint name
        - `predicate`: a literal like ``holding(red)`` (exact, whitespace-insensitive) or a
          bare predicate name like ``holding``, matched in preconditions, effects or both
          (`where` = "precondition" | "effect" | "any")
        - `kind`: rl | bc | scripted
        """
        if where not in ("any", "precondition", "effect"):
            raise SkillLibraryError(f"where must be one of ['any', 'precondition', 'effect'], got {where!r}")
        index = self.read_index()["skills"]
        out = []
        for e in self.entries():
            if name is not None:
                pattern = name if any(c in name for c in "*?[") else f"*{name}*"
                if not fnmatch.fnmatchcase(e.name, pattern):
                    continue
            if tag is not None and tag not in e.tags:
                continue
            if kind is not None and e.kind != kind:
                continue
            if embodiment is not None:
                joints = index[e.name][e.version].get("arm_joint_names", [])
                if embodiment != e.robot and embodiment.lower() not in e.robot.lower() and embodiment not in joints:
                    continue
            if predicate is not None and not self._matches_predicate(e, predicate, where):
                continue
            out.append(e)
        if latest_only:
            latest: dict[str, SkillEntry] = {}
            for e in out:
                latest[e.name] = e  # entries are in ascending version order
            out = list(latest.values())
        return out

    @staticmethod
    def _matches_predicate(e: SkillEntry, predicate: str, where: str) -> bool:
        exprs = []
        if where in ("any", "precondition"):
            exprs += e.preconditions
        if where in ("any", "effect"):
            exprs += e.effects
        atoms = [a for x in exprs for a in _atoms(x)]
        query = predicate.replace(" ", "")
        if "(" in query or query.startswith("!"):
            wanted = set(_atoms(predicate))
            return wanted <= set(atoms)
        return any(a.lstrip("!").split("(")[0] == query for a in atoms)

    def manifest(self, ref: str) -> Manifest:
        """Verified manifest of `ref` (reads and checks the whole package)."""
        return read_package(self.resolve(ref).path).manifest

    def load(self, ref: str, device: str | None = "cpu") -> Any:
        """Verify and load `ref` as a callable `Skill` (see skill_library.skill.load_skill)."""
        from skill_library.skill import load_skill

        entry = self.resolve(ref)
        skill = load_skill(entry.path, device=device)
        if skill.manifest.name != entry.name or skill.manifest.version != entry.version:
            raise SkillPackageError(f"{entry.path}: manifest says {skill.ref}, index says {entry.ref}")
        return skill

    # ------------------------------------------------------------------ changes
    def add(self, package: str | os.PathLike[str], *, force: bool = False) -> SkillEntry:
        """Verify a package and copy it into `<library>/<name>/<version>/`; update the index.

        Refuses an existing `name@version` unless `force` (then replaces it). The source is
        verified, copied to staging, and the *copy* verified again before it is renamed
        into place; a crash at any point leaves the library as it was.
        """
        source = Path(package)
        contents = read_package(source)
        m = contents.manifest
        with self._locked():
            index = self.read_index()
            exists = m.version in index["skills"].get(m.name, {})
            if exists and not force:
                raise SkillExistsError(f"{m.ref} is already in {self.root}; versions are immutable (use force to replace)")
            staging = Path(tempfile.mkdtemp(prefix="add-", dir=self.root / TMP_DIR))
            pkg = staging / "pkg"
            pkg.mkdir()
            for fname in [MANIFEST_FILE, *sorted(m.files)]:
                shutil.copyfile(source / fname, pkg / fname)
                fsync_file(pkg / fname)
            copied = read_package(pkg).manifest  # the copy is what we install: verify it, not the source
            if copied.to_dict() != m.to_dict():
                raise SkillPackageError(f"{source}: package changed while it was being added")
            _test_sleep("staged")
            target = self.root / m.name / m.version
            target.parent.mkdir(exist_ok=True)
            digest = m.source_digest or m.to_dict()["manifest_digest"]
            # Journal first: recovery rolls back to the previous state unless the index
            # already lists this exact manifest (digest) - then the add is committed.
            self._journal("add", m.name, m.version, digest=digest, backup=staging.name if exists else None)
            if exists:
                atomic_replace(target, staging / "old")  # the replaced version, restored on rollback
            atomic_replace(pkg, target)  # flushes pkg's entries, renames, flushes target.parent
            _test_sleep("placed")
            index["skills"].setdefault(m.name, {})[m.version] = _summary(m, _now())
            self._write_index(index)
            self._end_journal()
            shutil.rmtree(staging, ignore_errors=True)
        return self.resolve(m.ref)

    def remove(self, ref: str, *, all_versions: bool = False) -> list[str]:
        """Remove `name@version`, or with `all_versions` every version of `name`; returns removed refs.

        A bare `name` with several versions is refused unless `all_versions` (say which one).
        """
        name, version = parse_ref(ref)
        removed = []
        with self._locked():
            versions = sorted(self.read_index()["skills"].get(name, {}), key=version_key)
            if not versions:
                raise SkillNotFoundError(f"no skill {name!r} in {self.root}")
            if version is not None:
                if version not in versions:
                    raise SkillNotFoundError(f"no version {version!r} of skill {name!r}; versions: {', '.join(versions)}")
                targets = [version]
            elif len(versions) == 1 or all_versions:
                targets = versions
            else:
                raise SkillLibraryError(
                    f"skill {name!r} has versions {', '.join(versions)}: name one ({name}@VERSION) or remove all versions"
                )
            for v in targets:
                index = self.read_index()
                self._journal("remove", name, v)
                del index["skills"][name][v]
                if not index["skills"][name]:
                    del index["skills"][name]
                self._write_index(index)
                self._recover_locked()  # deletes the now-unlisted directory and ends the journal
                removed.append(f"{name}@{v}")
        return removed

    def update_manifest(self, ref: str, manifest: Manifest) -> Manifest:
        """Replace an installed version's manifest (same name, version and files), e.g. to store descriptors.

        The new manifest is sealed and written atomically; the index summary is refreshed.
        """
        with self._locked():
            entry = self.resolve(ref)
            if (manifest.name, manifest.version) != (entry.name, entry.version):
                raise SkillLibraryError(f"manifest is {manifest.ref}, not {entry.ref}")
            sealed = rewrite_manifest(entry.path, manifest, tmp_dir=self.root / TMP_DIR)
            index = self.read_index()
            index["skills"][entry.name][entry.version] = _summary(sealed, entry.added or _now())
            self._write_index(index)
        return sealed

    def export(self, ref: str, out_dir: str | os.PathLike[str], *, overwrite: bool = False) -> Path:
        """Copy a verified package out of the library to `out_dir` (atomically, via a sibling temp dir)."""
        entry = self.resolve(ref)
        read_package(entry.path)
        out = Path(out_dir).absolute()
        if out.exists() and not overwrite:
            raise SkillLibraryError(f"{out}: already exists (use overwrite/--force to replace)")
        with staged_dir(out, ".export") as staging:
            shutil.copytree(entry.path, staging, dirs_exist_ok=True)
            read_package(staging)
        return out

    def reindex(self) -> list[str]:
        """Rebuild index.json from the package directories (verifying each); returns the refs indexed.

        For recovery from a lost or corrupt index. Directories that fail verification are
        left in place and not indexed.
        """
        with self._locked():
            try:
                old = self.read_index()["skills"]
            except SkillLibraryError:
                old = {}
            skills: dict[str, dict[str, Any]] = {}
            for name_dir in sorted(p for p in self.root.iterdir() if p.is_dir() and not p.name.startswith(".")):
                for ver_dir in sorted(p for p in name_dir.iterdir() if p.is_dir()):
                    try:
                        m = read_package(ver_dir).manifest
                    except SkillPackageError:
                        continue
                    if (m.name, m.version) != (name_dir.name, ver_dir.name):
                        continue
                    added = old.get(m.name, {}).get(m.version, {}).get("added") or _now()
                    skills.setdefault(m.name, {})[m.version] = _summary(m, added)
            self._write_index({"format": INDEX_FORMAT, "format_version": 1, "skills": skills})
        return [f"{n}@{v}" for n in sorted(skills) for v in sorted(skills[n], key=version_key)]


SkillRegistry = SkillLibrary  # alias: other layers look the registry up under this name


def _test_sleep(stage: str) -> None:
    spec = os.environ.get(_TEST_SLEEP_ENV)
    if spec:
        want, _, seconds = spec.partition(":")
        if want == stage:
            # Signal the test that we reached the stage, then wait to be killed.
            marker = os.environ.get(_TEST_SLEEP_ENV + "_MARKER")
            if marker:
                Path(marker).write_text(stage)
            time.sleep(float(seconds or 60))
