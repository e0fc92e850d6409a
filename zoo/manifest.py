"""`zoo/zoo.yaml`: what the zoo ships, how each artifact is rebuilt, what it measured, how big it is.

    format: skillstack-zoo
    size_budget_mb: 30           # every artifact together; tests/test_zoo.py holds the zoo to it
    signer: {key_id, name}       # the project key, or the builder's own when the project key was absent
    artifacts:
      - name: reach              # what `zoo build --only NAME` rebuilds
        kind: skill              # skill (one or more skill packages) | segmenter (a segmenter folder)
        path: artifacts/reach    # under zoo/
        recipe: {api, config, overrides, seed, ...}      # the public API call that builds it
        provenance: {built, commit, build_seconds, machine}
        figures: {...}           # measured at build time (success, F1, ...), per package for skills
        packages: [ {name, version, kind, success, ...} ]   # skills only
        size_bytes: 123456
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["ZOO_DIR", "ZOO_FILE", "SIZE_BUDGET_MB", "ZooArtifact", "ZooManifest", "folder_size", "read_manifest", "write_manifest"]

ZOO_DIR = Path(__file__).resolve().parent
ZOO_FILE = ZOO_DIR / "zoo.yaml"
SIZE_BUDGET_MB = 30.0
KINDS = ("skill", "segmenter")


@dataclass
class ZooArtifact:
    """One entry of the manifest (see the module docstring)."""

    name: str
    kind: str
    path: str
    recipe: dict[str, Any]
    description: str = ""
    provenance: dict[str, Any] = field(default_factory=dict)
    figures: dict[str, Any] = field(default_factory=dict)
    packages: list[dict[str, Any]] = field(default_factory=list)
    size_bytes: int = 0

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"zoo artifact {self.name!r}: kind must be one of {KINDS}, got {self.kind!r}")
        if Path(self.path).is_absolute() or ".." in Path(self.path).parts:
            raise ValueError(f"zoo artifact {self.name!r}: path must stay inside zoo/, got {self.path!r}")

    def folder(self, root: Path = ZOO_DIR) -> Path:
        """Where its files are."""
        return root / self.path

    def package_dirs(self, root: Path = ZOO_DIR) -> list[Path]:
        """The skill package folders of a skill artifact (one per listed package)."""
        return [self.folder(root) / p["name"] for p in self.packages]


@dataclass
class ZooManifest:
    """The whole manifest."""

    artifacts: list[ZooArtifact]
    size_budget_mb: float = SIZE_BUDGET_MB
    signer: dict[str, Any] = field(default_factory=dict)
    format: str = "skillstack-zoo"

    def get(self, name: str) -> ZooArtifact:
        """The artifact called `name`; a clear error naming the known ones otherwise."""
        for a in self.artifacts:
            if a.name == name:
                return a
        raise KeyError(f"no zoo artifact {name!r}; the zoo holds {[a.name for a in self.artifacts]}")

    @property
    def total_bytes(self) -> int:
        return sum(a.size_bytes for a in self.artifacts)

    def to_dict(self) -> dict[str, Any]:
        return {"format": self.format, "size_budget_mb": self.size_budget_mb, "signer": self.signer,
                "total_mb": round(self.total_bytes / 2**20, 3), "artifacts": [asdict(a) for a in self.artifacts]}


def read_manifest(path: str | os.PathLike[str] = ZOO_FILE) -> ZooManifest:
    """Load and check `zoo.yaml`."""
    import yaml

    p = Path(path)
    try:
        doc = yaml.safe_load(p.read_text())
    except yaml.YAMLError as exc:
        raise ValueError(f"{p}: not valid YAML: {exc}") from None
    if not isinstance(doc, dict) or doc.get("format") != "skillstack-zoo":
        raise ValueError(f"{p}: not a skillstack zoo manifest")
    arts = []
    for i, a in enumerate(doc.get("artifacts") or []):
        try:
            arts.append(ZooArtifact(**a))
        except TypeError as exc:
            raise ValueError(f"{p}: artifacts[{i}]: {exc}") from None
    names = [a.name for a in arts]
    if len(set(names)) != len(names):
        raise ValueError(f"{p}: artifact names repeat: {names}")
    return ZooManifest(arts, float(doc.get("size_budget_mb", SIZE_BUDGET_MB)), dict(doc.get("signer") or {}))


def write_manifest(manifest: ZooManifest, path: str | os.PathLike[str] = ZOO_FILE) -> Path:
    """Write `zoo.yaml` atomically (block style, keys in the dataclasses' order)."""
    import yaml

    from common.atomic import atomic_write_bytes

    head = "# The shipped model zoo (docs/zoo.md). Written by `skillstack zoo build`; edit the recipes in zoo/recipes.py.\n"
    text = head + yaml.safe_dump(manifest.to_dict(), sort_keys=False, default_flow_style=False, width=110)
    atomic_write_bytes(Path(path), text.encode())
    return Path(path)


def folder_size(path: str | os.PathLike[str]) -> int:
    """Bytes of every regular file under `path`."""
    return sum(p.stat().st_size for p in Path(path).rglob("*") if p.is_file() and not p.is_symlink())
