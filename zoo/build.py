"""`skillstack zoo build`: rebuild zoo artifacts from scratch with their recipes and seeds, sign them, update zoo.yaml.

Each artifact is built into a fresh temporary folder (its training runs and recorded demos in
another, deleted afterwards), signed (the project key when present, else the builder's own key,
said loudly), and only then swapped in for the old one, so a failed or interrupted build leaves
the zoo as it was.
"""

from __future__ import annotations

import datetime as _dt
import os
import platform
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from zoo.manifest import ZOO_DIR, ZOO_FILE, ZooArtifact, ZooManifest, folder_size, read_manifest, write_manifest
from zoo.recipes import RECIPES, Recipe

__all__ = ["BuildResult", "build_order", "build_zoo"]

ARTIFACTS = "artifacts"


class BuildResult(dict):
    """{name: seconds} of what was built, plus `signed_by`."""


def build_order(only: Sequence[str] | None = None) -> list[Recipe]:
    """The recipes to run, those an artifact needs first when they are rebuilt too."""
    names = list(RECIPES) if not only else list(only)
    unknown = [n for n in names if n not in RECIPES]
    if unknown:
        raise KeyError(f"no zoo artifact {unknown[0]!r}; the zoo holds {list(RECIPES)}")
    return [RECIPES[n] for n in RECIPES if n in names]  # RECIPES is in dependency order


def _commit() -> str | None:
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ZOO_DIR.parent, capture_output=True,
                              text=True, timeout=10).stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None


def _signing_key(log: Callable[[str], None]) -> tuple[Any, str]:
    from skill_library import Keyring
    from zoo.signing import load_project_key, project_key_path

    key = load_project_key()
    if key is not None:
        log(f"signing with the project key {key.key_id} ({project_key_path()})")
        return key, "project"
    key = Keyring().default_key(create=True)
    log(f"WARNING: the project key is not on this machine ({project_key_path()}): the artifacts are signed with your "
        f"own key {key.key_id} ({key.name}); `zoo install` elsewhere refuses them and tests/test_zoo.py fails until the "
        "maintainers rebuild with the project key")
    return key, "own"


def _sign(recipe: Recipe, folder: Path, packages: list[dict[str, Any]], key: Any) -> None:
    from zoo.signing import sign_skill_package, sign_tree

    if recipe.kind == "skill":
        for p in packages:
            sign_skill_package(folder / p["name"], key)
    else:
        sign_tree(folder, key)


def build_zoo(
    only: Sequence[str] | None = None,
    *,
    zoo_file: str | os.PathLike[str] = ZOO_FILE,
    log: Callable[[str], None] = print,
    progress: bool = True,
) -> BuildResult:
    """Rebuild the zoo's artifacts (all, or `only` these names) and write zoo.yaml; returns {name: seconds}.

    Runs each recipe (zoo/recipes.py) with its seed; prints how long each took."""
    import torch
    from tqdm import tqdm

    torch.set_num_threads(1)
    zoo_file = Path(zoo_file)
    root = zoo_file.parent
    manifest = read_manifest(zoo_file) if zoo_file.is_file() else ZooManifest([])
    key, signed_by = _signing_key(log)
    result = BuildResult()
    recipes = build_order(only)
    bar = tqdm(recipes, desc="zoo build", unit="artifact", disable=not progress)
    for recipe in bar:
        bar.set_postfix_str(recipe.name)
        log(f"--- {recipe.name}: {recipe.api} ---")
        target = root / ARTIFACTS / recipe.name
        target.parent.mkdir(parents=True, exist_ok=True)
        t0 = time.perf_counter()
        with tempfile.TemporaryDirectory(prefix=f".zoo-build-{recipe.name}-", dir=target.parent) as tmp, \
                tempfile.TemporaryDirectory(prefix=f"zoo-work-{recipe.name}-") as work:
            staged = Path(tmp) / recipe.name
            staged.mkdir()
            built = recipe.build(recipe, staged, Path(work), log)
            _sign(recipe, staged, built["packages"], key)
            for d in [staged, *(p for p in staged.rglob("*") if p.is_dir())]:
                os.chmod(d, 0o755)  # temp and library folders are born 0700; the zoo is readable by everyone
            seconds = time.perf_counter() - t0
            old = Path(tmp) / "old"
            if target.exists():
                target.rename(old)
            staged.rename(target)
        artifact = ZooArtifact(
            name=recipe.name, kind=recipe.kind, path=f"{ARTIFACTS}/{recipe.name}", recipe=recipe.to_dict(),
            description=recipe.description,
            provenance={"built": _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"), "commit": _commit(),
                        "build_seconds": round(seconds, 1), "machine": f"{platform.machine()}, {os.cpu_count()} cores",
                        "command": f"skillstack zoo build --only {recipe.name}"},
            figures=built["figures"], packages=built["packages"], size_bytes=folder_size(target),
        )  # fmt: skip
        # re-read: another build (--only another artifact) may have written the manifest meanwhile
        manifest = read_manifest(zoo_file) if zoo_file.is_file() else manifest
        manifest.artifacts = [a for a in manifest.artifacts if a.name != recipe.name] + [artifact]
        manifest.artifacts.sort(key=lambda a: list(RECIPES).index(a.name) if a.name in RECIPES else len(RECIPES))
        manifest.signer = {"key_id": key.key_id, "name": key.name, "project_key": signed_by == "project"}
        write_manifest(manifest, zoo_file)
        result[recipe.name] = seconds
        log(f"{recipe.name}: built in {seconds / 60:.1f} min ({seconds:.0f} s), {artifact.size_bytes / 2**20:.2f} MB")
    result["signed_by"] = signed_by
    total = manifest.total_bytes / 2**20
    log(f"zoo: {total:.2f} MB of {manifest.size_budget_mb:.0f} MB budget" + ("" if total <= manifest.size_budget_mb else " - OVER BUDGET"))
    return result


def remove_stale(root: Path = ZOO_DIR) -> list[str]:
    """Artifact folders no recipe names any more (left by a renamed recipe); removed, names returned."""
    gone = []
    for d in (root / ARTIFACTS).glob("*"):
        if d.is_dir() and d.name not in RECIPES:
            shutil.rmtree(d)
            gone.append(d.name)
    return gone
