"""`skillstack zoo install` / `zoo list`: verify the shipped artifacts and put them where the user's tools look.

Skills go into the skill library (`--library`, $SKILLSTACK_LIBRARY, ~/.skillstack/skills) through
`SkillLibrary.add`, so the library's own trust policy applies (the project key is trusted by
default) and every add is in its audit log; the segmenter is copied to the segmenter folder
($SKILLSTACK_SEGMENTER, ~/.skillstack/segmenter), where `skillstack segment` looks by default,
and verified again there.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from zoo.manifest import ZOO_FILE, ZooArtifact, read_manifest
from zoo.signing import verify_skill_package, verify_tree

__all__ = ["install_zoo", "verify_artifact", "zoo_rows"]


def verify_artifact(artifact: ZooArtifact, root: Path | None = None, *, project_only: bool = True) -> list[Any]:
    """Verify every file of an artifact against its signature; returns the skill manifests (empty for a segmenter)."""
    root = root or Path(ZOO_FILE).parent
    folder = artifact.folder(root)
    if not folder.is_dir():
        raise FileNotFoundError(f"zoo artifact {artifact.name}: {folder} is missing (run `skillstack zoo build --only {artifact.name}`)")
    if artifact.kind == "segmenter":
        verify_tree(folder, project_only=project_only)
        return []
    listed = {p["name"] for p in artifact.packages}
    present = {d.name for d in folder.iterdir()}
    if listed != present:
        raise ValueError(f"zoo artifact {artifact.name}: packages on disk {sorted(present)} differ from zoo.yaml {sorted(listed)}")
    return [verify_skill_package(d, project_only=project_only) for d in artifact.package_dirs(root)]


def install_zoo(
    library: Any = None,
    segmenter_dir: str | os.PathLike[str] | None = None,
    *,
    names: Sequence[str] | None = None,
    zoo_file: str | os.PathLike[str] = ZOO_FILE,
    project_only: bool = True,
) -> dict[str, list[str]]:
    """Verify and install the zoo (all artifacts, or `names`); returns {artifact: [what was installed]}.

    `library`: a SkillLibrary, its path, or None for the default; `segmenter_dir`: default
    `segmentation.api.default_model_dir()`. An existing segmenter there is replaced only after the
    new one verified (the old one is kept as `<dir>.previous`)."""
    from segmentation.api import default_model_dir
    from skill_library import SkillLibrary

    manifest = read_manifest(zoo_file)
    root = Path(zoo_file).parent
    chosen = [manifest.get(n) for n in names] if names else manifest.artifacts
    lib = library if isinstance(library, SkillLibrary) else SkillLibrary(library)
    done: dict[str, list[str]] = {}
    for artifact in chosen:
        manifests = verify_artifact(artifact, root, project_only=project_only)
        if artifact.kind == "skill":
            refs = []
            for d, m in zip(artifact.package_dirs(root), manifests):
                lib.add(d, force=True)
                refs.append(m.ref)
            done[artifact.name] = refs
        else:
            dest = Path(segmenter_dir) if segmenter_dir is not None else default_model_dir()
            dest.parent.mkdir(parents=True, exist_ok=True)
            with tempfile.TemporaryDirectory(prefix=".zoo-segmenter-", dir=dest.parent) as tmp:
                staged = Path(tmp) / "segmenter"
                shutil.copytree(artifact.folder(root), staged)
                verify_tree(staged, project_only=project_only)
                if dest.exists():
                    previous = dest.with_name(dest.name + ".previous")
                    shutil.rmtree(previous, ignore_errors=True)
                    dest.rename(previous)
                staged.rename(dest)
            done[artifact.name] = [str(dest)]
    return done


def zoo_rows(zoo_file: str | os.PathLike[str] = ZOO_FILE) -> list[list[Any]]:
    """One table row per artifact: name, kind, packages, size, build time, its headline figures."""
    rows = []
    for a in read_manifest(zoo_file).artifacts:
        figs = ", ".join(f"{k} {v}" for k, v in a.figures.items() if k.endswith("success") or k.startswith(("fresh_f1", "validation")))
        rows.append([a.name, a.kind, len(a.packages) or "-", f"{a.size_bytes / 2**20:.2f} MB",
                     f"{a.provenance.get('build_seconds', 0) / 60:.1f} min", figs or "-"])
    return rows
