"""The skill library: a directory of verified packages with an index.

Layout::

    <library>/
      index.json              {"format": "skillstack-library", "skills": {name: {version: summary}}}
      audit.log               append-only, hash-chained log of every change (skill_library.audit)
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

Trust: `add` applies the policy of `skill_library.trust_policy` (signed by a trusted key,
trust on first use per name, overrides recorded); every load checks the package against its
index entry (the recorded signer and manifest digest) and refuses revoked signers.

Skill references: `name` (latest version by semantic-version precedence) or
`name@version` (that version exactly).

The library root is `--library`, else `$SKILLSTACK_LIBRARY`, else `~/.skillstack/skills`
(`resolve_library_path`).
"""

from __future__ import annotations

import contextlib
import fnmatch
import json
import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from common.atomic import atomic_replace, atomic_write_bytes, fsync_dir, fsync_file, staged_dir
from skill_library.audit import AUDIT_FILE, append_audit, has_record, login_name, new_record
from skill_library.errors import (
    SkillExistsError,
    SkillIntegrityError,
    SkillLibraryError,
    SkillNotFoundError,
    SkillPackageError,
    SkillRevokedError,
    SkillSignatureError,
    SkillTrustError,
)
from skill_library.flock import exclusive_lock
from skill_library.keyring import Keyring, SigningKey
from skill_library.library_entries import (
    DEFAULT_LIBRARY,
    ENV_VAR,
    SkillEntry,
    entry_from_summary,
    matches_predicate,
    parse_ref,
    resolve_library_path,
)
from skill_library.manifest import Manifest, parse_version, validate_name, version_key
from skill_library.package import MANIFEST_FILE, PackageContents, read_package, stage_resigned
from skill_library.signing import SIGNATURE_FILE, SignatureInfo, SignaturePolicy
from skill_library.trust_policy import decide_add, entry_policy, index_summary

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

INDEX_FILE = "index.json"
LOCK_FILE = ".lock"
JOURNAL_FILE = ".journal.json"
TMP_DIR = ".tmp"
INDEX_FORMAT = "skillstack-library"
# Test hook: "<stage>:<seconds>" sleeps inside add() at stage "staged" (copied to .tmp), "placed"
# (renamed into place, index not yet written) or "indexed" (index written, audit record not yet
# appended), so a test can kill the process there.
_TEST_SLEEP_ENV = "SKILLSTACK_TEST_ADD_SLEEP"


def _now() -> str:
    from skill_library.audit import utc_now

    return utc_now()


class SkillLibrary:
    """A skill library directory (see module docstring). Safe for concurrent processes on POSIX."""

    def __init__(
        self, root: str | os.PathLike[str] | None = None, *, lock_timeout: float = 120.0, keyring: Keyring | None = None
    ) -> None:
        self.root = resolve_library_path(root)
        self.lock_timeout = float(lock_timeout)
        self.keyring = keyring  # None: the user's ($SKILLSTACK_KEYS or ~/.skillstack/keys), looked up on use

    def __repr__(self) -> str:
        return f"SkillLibrary({str(self.root)!r})"

    # ------------------------------------------------------------------ index & locking
    @property
    def index_path(self) -> Path:
        return self.root / INDEX_FILE

    @property
    def audit_path(self) -> Path:
        return self.root / AUDIT_FILE

    @property
    def ring(self) -> Keyring:
        """The key ring whose trust store this library's policy consults."""
        return self.keyring if self.keyring is not None else Keyring()

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
        with exclusive_lock(self.root / LOCK_FILE, self.lock_timeout, f"library {self.root}"):
            (self.root / TMP_DIR).mkdir(exist_ok=True)
            self._recover_locked()
            yield

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
                    if committed:
                        self._finish_audit(entry.get("audit"))
                    else:
                        # Roll back: drop the half-installed copy, restore a replaced version.
                        if target.exists():
                            shutil.rmtree(target)
                        backup = entry.get("backup")
                        if backup:
                            b = self.root / TMP_DIR / Path(backup).name / "old"
                            if b.is_dir():
                                atomic_replace(b, target)
                elif op == "remove" and summary is None:
                    if target.exists():
                        shutil.rmtree(target)  # the index no longer lists it: finish the removal
                    self._finish_audit(entry.get("audit"))
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

    def _finish_audit(self, record: Any) -> None:
        """Append a committed change's audit record if the crash came before it was appended."""
        if isinstance(record, dict) and isinstance(record.get("id"), str) and not has_record(self.audit_path, record["id"]):
            append_audit(self.audit_path, record, tmp_dir=self.root / TMP_DIR)

    def _record(self, op: str, **details: Any) -> dict[str, Any]:
        return new_record(op, details, self.ring.default_key_id())

    def _audit(self, op: str, **details: Any) -> None:
        """Append one record to the library's audit log (the caller holds the lock)."""
        append_audit(self.audit_path, self._record(op, **details), tmp_dir=self.root / TMP_DIR)

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
        out = [entry_from_summary(name, version, s, self.root / name / version)
               for name, versions in self.read_index()["skills"].items() for version, s in versions.items()]  # fmt: skip
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
            if predicate is not None and not matches_predicate(e, predicate, where):
                continue
            out.append(e)
        if latest_only:
            latest: dict[str, SkillEntry] = {}
            for e in out:
                latest[e.name] = e  # entries are in ascending version order
            out = list(latest.values())
        return out

    def _summary_of(self, entry: SkillEntry) -> dict[str, Any]:
        summary = self.read_index()["skills"].get(entry.name, {}).get(entry.version)
        if summary is None:  # pragma: no cover - removed between resolve and read
            raise SkillNotFoundError(f"{entry.ref} was removed from {self.root}")
        return summary

    def policy(self, ref: str) -> SignaturePolicy:
        """What the installed package of `ref` must pass on load (`trust_policy.entry_policy`)."""
        return entry_policy(self._summary_of(self.resolve(ref)), self.keyring)

    def read(self, ref: str) -> PackageContents:
        """Read and verify the installed package of `ref` against its index entry: signature by the
        recorded key (never a revoked one), the recorded manifest digest, every file hash."""
        entry = self.resolve(ref)
        summary = self._summary_of(entry)
        contents = read_package(entry.path, policy=entry_policy(summary, self.keyring))
        self._check_identity(entry, summary, contents.manifest)
        return contents

    @staticmethod
    def _check_identity(entry: SkillEntry, summary: dict[str, Any], m: Manifest) -> None:
        if m.name != entry.name or m.version != entry.version:
            raise SkillPackageError(f"{entry.path}: manifest says {m.ref}, index says {entry.ref}")
        recorded = summary.get("manifest_digest")
        if recorded and m.source_digest != recorded:
            raise SkillIntegrityError(
                f"{entry.path}: manifest digest {str(m.source_digest)[:16]}... is not the one installed "
                f"({recorded[:16]}...): the package was replaced outside the library"
            )

    def manifest(self, ref: str) -> Manifest:
        """Verified manifest of `ref` (reads and checks the whole package, see `read`)."""
        return self.read(ref).manifest

    def load(self, ref: str, device: str | None = "cpu") -> Any:
        """Verify `ref` (see `read`) and load it as a callable `Skill` (skill_library.skill.load_skill)."""
        from skill_library.skill import load_skill

        entry = self.resolve(ref)
        summary = self._summary_of(entry)
        skill = load_skill(entry.path, device=device, policy=entry_policy(summary, self.keyring))
        self._check_identity(entry, summary, skill.manifest)
        return skill

    # ------------------------------------------------------------------ changes
    def add(
        self,
        package: str | os.PathLike[str],
        *,
        force: bool = False,
        allow_unsigned: bool = False,
        allow_untrusted: bool = False,
        allow_signer_change: bool = False,
    ) -> SkillEntry:
        """Verify a package, apply the trust policy, and copy it into `<library>/<name>/<version>/`.

        The signature is checked before anything beyond the manifest is parsed. Refused by
        default (see `skill_library.trust_policy`): unsigned packages, untrusted signers, a
        signer other than the one of the installed versions of the name, revoked signers
        (always). The `allow_*` flags accept the first three with a `SkillTrustWarning`,
        recorded in the index and the audit log, as is every refusal by the policy.
        Refuses an existing `name@version` unless `force` (then replaces it). The source is
        verified, copied to staging, and the *copy* verified again before it is renamed
        into place; a crash at any point leaves the library as it was.
        """
        source = Path(package)
        try:
            contents = read_package(source, policy=SignaturePolicy(allow_unsigned=True, allow_untrusted=True, keyring=self.keyring))
        except (SkillSignatureError, SkillRevokedError) as exc:
            with self._locked():
                self._audit("add-refused", source=str(source.absolute()), reason=str(exc))
            raise
        m, sig = contents.manifest, contents.signature
        with self._locked():
            index = self.read_index()
            versions = index["skills"].get(m.name, {})
            exists = m.version in versions
            if exists and not force:
                raise SkillExistsError(f"{m.ref} is already in {self.root}; versions are immutable (use force to replace)")
            try:
                overrides = decide_add(m, sig, versions, allow_unsigned=allow_unsigned, allow_untrusted=allow_untrusted,
                                       allow_signer_change=allow_signer_change)  # fmt: skip
            except (SkillSignatureError, SkillTrustError) as exc:
                self._audit("add-refused", ref=m.ref, source=str(source.absolute()), signer=sig.to_dict(), reason=str(exc))
                raise
            staging = Path(tempfile.mkdtemp(prefix="add-", dir=self.root / TMP_DIR))
            pkg = staging / "pkg"
            pkg.mkdir()
            extra = [SIGNATURE_FILE] if sig.signed else []
            for fname in [MANIFEST_FILE, *extra, *sorted(m.files)]:
                shutil.copyfile(source / fname, pkg / fname)
                fsync_file(pkg / fname)
            # The copy is what we install: verify it (by the same signer), not the source.
            copied = read_package(pkg, policy=SignaturePolicy(allow_unsigned=not sig.signed, allow_untrusted=True,
                                                              expected_key_id=sig.key_id, keyring=self.keyring))  # fmt: skip
            if copied.manifest.to_dict() != m.to_dict():
                raise SkillPackageError(f"{source}: package changed while it was being added")
            _test_sleep("staged")
            summary = index_summary(m, _now(), sig, publisher=sig.key_id, overrides=overrides, added_by=login_name())
            record = self._record("add", ref=m.ref, manifest_digest=summary["manifest_digest"], signer=sig.to_dict(),
                                  overrides=overrides, replaced=exists, source=str(source.absolute()))  # fmt: skip
            self._install_locked(pkg, m, index, summary, record, exists)
        return self.resolve(m.ref)

    def _install_locked(
        self, pkg: Path, m: Manifest, index: dict[str, Any], summary: dict[str, Any], record: dict[str, Any], exists: bool
    ) -> None:
        """Rename a verified staged package (`pkg` in its own folder under .tmp/) into place and commit
        the index and the audit record; journaled, so a crash rolls back or completes the change."""
        staging = pkg.parent
        target = self.root / m.name / m.version
        target.parent.mkdir(exist_ok=True)
        # Journal first: recovery rolls back to the previous state unless the index already
        # lists this exact manifest (digest) - then the change is committed (and its audit record appended).
        self._journal("add", m.name, m.version, digest=summary["manifest_digest"], backup=staging.name if exists else None,
                      audit=record)  # fmt: skip
        if exists:
            atomic_replace(target, staging / "old")  # the replaced version, restored on rollback
        atomic_replace(pkg, target)  # flushes pkg's entries, renames, flushes target.parent
        _test_sleep("placed")
        index["skills"].setdefault(m.name, {})[m.version] = summary
        self._write_index(index)
        _test_sleep("indexed")  # committed, audit record not yet appended: recovery appends it
        append_audit(self.audit_path, record, tmp_dir=self.root / TMP_DIR)
        self._end_journal()
        shutil.rmtree(staging, ignore_errors=True)

    def remove(self, ref: str, *, all_versions: bool = False) -> list[str]:
        """Remove `name@version`, or with `all_versions` every version of `name`; returns removed refs.

        A bare `name` with several versions is refused unless `all_versions` (say which one).
        Each removal is recorded in the audit log.
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
                summary = index["skills"][name][v]
                record = self._record("remove", ref=f"{name}@{v}", manifest_digest=summary.get("manifest_digest"),
                                      signer=summary.get("signer"))  # fmt: skip
                self._journal("remove", name, v, audit=record)
                del index["skills"][name][v]
                if not index["skills"][name]:
                    del index["skills"][name]
                self._write_index(index)
                self._recover_locked()  # deletes the now-unlisted directory, appends the record, ends the journal
                removed.append(f"{name}@{v}")
        return removed

    def update_manifest(self, ref: str, manifest: Manifest, *, signing_key: SigningKey | None = None) -> Manifest:
        """Replace an installed version's manifest (same name, version and files), e.g. to store descriptors.

        The new manifest is sealed and re-signed by `signing_key` (default: the user's key: you
        vouch for what you changed); the index keeps the version's publisher for trust on first
        use and records the new signer. Staged and renamed into place through the journal.
        """
        key = signing_key if signing_key is not None else self.ring.default_key()
        with self._locked():
            entry = self.resolve(ref)
            if (manifest.name, manifest.version) != (entry.name, entry.version):
                raise SkillLibraryError(f"manifest is {manifest.ref}, not {entry.ref}")
            index = self.read_index()
            old = index["skills"][entry.name][entry.version]
            staging = Path(tempfile.mkdtemp(prefix="update-", dir=self.root / TMP_DIR))
            pkg = staging / "pkg"
            pkg.mkdir()
            sealed = stage_resigned(entry.path, manifest, pkg, key, entry_policy(old, self.keyring))
            sig = SignatureInfo(key.key_id, key.name, self.ring.state(key.key_id))
            publisher = old.get("publisher") if "trust" in old else key.key_id
            summary = index_summary(sealed, entry.added or _now(), sig, publisher=publisher,
                                    overrides=list(old.get("overrides", [])), added_by=old.get("added_by") or login_name())  # fmt: skip
            record = self._record("update", ref=entry.ref, manifest_digest=summary["manifest_digest"], signer=sig.to_dict(),
                                  previous_digest=old.get("manifest_digest"))  # fmt: skip
            self._install_locked(pkg, sealed, index, summary, record, exists=True)
        return sealed

    def export(self, ref: str, out_dir: str | os.PathLike[str], *, overwrite: bool = False) -> Path:
        """Copy a verified package (signature included) out of the library to `out_dir` (atomically)."""
        entry = self.resolve(ref)
        policy = self.policy(ref)
        read_package(entry.path, policy=policy)
        out = Path(out_dir).absolute()
        if out.exists() and not overwrite:
            raise SkillLibraryError(f"{out}: already exists (use overwrite/--force to replace)")
        with staged_dir(out, ".export") as staging:
            shutil.copytree(entry.path, staging, dirs_exist_ok=True)
            read_package(staging, policy=policy)
        return out

    def reindex(self, *, allow_unsigned: bool = False, allow_untrusted: bool = False) -> list[str]:
        """Rebuild index.json from the package directories (verifying each); returns the refs indexed.

        For recovery from a lost or corrupt index. A version the old index still lists is
        checked against its entry (signer, overrides) and keeps them; any other must pass the
        default policy (trusted signer) unless `allow_unsigned` / `allow_untrusted` (recorded
        as overrides). Directories that fail are left in place and not indexed.
        """
        with self._locked():
            try:
                old = self.read_index()["skills"]
            except SkillLibraryError:
                old = {}
            skills: dict[str, dict[str, Any]] = {}
            for name_dir in sorted(p for p in self.root.iterdir() if p.is_dir() and not p.name.startswith(".")):
                for ver_dir in sorted(p for p in name_dir.iterdir() if p.is_dir()):
                    prev = old.get(name_dir.name, {}).get(ver_dir.name)
                    policy = entry_policy(prev, self.keyring) if prev else SignaturePolicy(
                        allow_unsigned=allow_unsigned, allow_untrusted=allow_untrusted, keyring=self.keyring)
                    try:
                        contents = read_package(ver_dir, policy=policy)
                    except (SkillPackageError, SkillTrustError):
                        continue
                    m, sig = contents.manifest, contents.signature
                    if (m.name, m.version) != (name_dir.name, ver_dir.name):
                        continue
                    prev = prev or {}
                    overrides = list(prev.get("overrides") or [o for o, used in (("unsigned", not sig.signed),
                                     ("untrusted", sig.state == "untrusted")) if used])  # fmt: skip
                    skills.setdefault(m.name, {})[m.version] = index_summary(
                        m, prev.get("added") or _now(), sig, publisher=prev.get("publisher", sig.key_id),
                        overrides=overrides, added_by=prev.get("added_by") or login_name())  # fmt: skip
            self._write_index({"format": INDEX_FORMAT, "format_version": 1, "skills": skills})
            refs = [f"{n}@{v}" for n in sorted(skills) for v in sorted(skills[n], key=version_key)]
            self._audit("reindex", refs=refs)
        return refs


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
