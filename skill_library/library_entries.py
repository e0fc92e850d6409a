"""Index entries of the skill library: where the library is, skill references, and `SkillEntry`.

What `list`/`search` return comes from the index alone (no package read): `entry_from_summary`
turns one index summary (see `trust_policy.index_summary`) into a `SkillEntry`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from skill_library.errors import SkillLibraryError, SkillPackageError
from skill_library.manifest import parse_version, validate_name

__all__ = ["DEFAULT_LIBRARY", "ENV_VAR", "SkillEntry", "entry_from_summary", "matches_predicate", "parse_ref",
           "resolve_library_path"]  # fmt: skip

ENV_VAR = "SKILLSTACK_LIBRARY"
DEFAULT_LIBRARY = "~/.skillstack/skills"


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
    signer_key_id: str | None = None
    signer_name: str | None = None
    trust: str = "legacy"  # the signer's state when added: trusted | untrusted | unsigned (legacy: before signing)
    overrides: tuple[str, ...] = ()
    publisher_key_id: str | None = None
    added_by: str = ""

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
            "signer": None if self.signer_key_id is None else {"key_id": self.signer_key_id, "name": self.signer_name},
            "trust": self.trust,
            "overrides": list(self.overrides),
            "publisher": self.publisher_key_id,
            "added_by": self.added_by,
        }


def entry_from_summary(name: str, version: str, s: dict[str, Any], path: Path) -> SkillEntry:
    """The `SkillEntry` of one index summary (older summaries lack the trust fields: ``legacy``)."""
    signer = s.get("signer") or {}
    return SkillEntry(
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
        path=path,
        signer_key_id=signer.get("key_id"),
        signer_name=signer.get("name"),
        trust=s.get("trust", "legacy"),
        overrides=tuple(s.get("overrides", ())),
        publisher_key_id=s.get("publisher"),
        added_by=s.get("added_by", ""),
    )


def _atoms(expr: str) -> list[str]:
    """Normalised literals of a predicate conjunction, e.g. 'on(red,blue) & !holding(red)'."""
    from envs.predicates import parse

    try:
        return [str(lit) for lit in parse(expr)]
    except ValueError:
        return [expr.replace(" ", "")]


def matches_predicate(e: SkillEntry, predicate: str, where: str) -> bool:
    """Whether a predicate literal or bare name occurs in the entry's preconditions/effects (see `SkillLibrary.search`)."""
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
