"""Old import paths of the packages promoted out of `skill_library` in 0.2 (deprecated).

`demos`, `segmentation` and `planning` are top-level packages now. Scripts that still say
`skill_library.planning...` keep working for one release: a meta-path finder maps the old
name, and each of its submodules, onto the *same* module object under the new name (no
second copy, so classes and registries stay identical) and warns once per old package.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.util
import sys
import warnings
from types import ModuleType

MOVED = {
    "skill_library.demos": "demos",
    "skill_library.segmentation": "segmentation",
    "skill_library.planning": "planning",
}
REMOVED_IN = "0.3"


class _AliasLoader(importlib.abc.Loader):
    def __init__(self, target: str) -> None:
        self.target = target

    def exec_module(self, module: ModuleType) -> None:
        # The import machinery returns whatever sys.modules holds under the old name once
        # exec_module returns, so the real module is bound there and the blank one dropped.
        sys.modules[module.__name__] = importlib.import_module(self.target)


class MovedPackageFinder(importlib.abc.MetaPathFinder):
    """Resolves `skill_library.<old>[.sub]` to `<new>[.sub]`, warning once per package."""

    def __init__(self) -> None:
        self.warned: set[str] = set()

    def find_spec(self, fullname: str, path=None, target=None):  # noqa: ANN001 - importlib protocol
        for old, new in MOVED.items():
            if fullname == old or fullname.startswith(old + "."):
                if old not in self.warned:
                    self.warned.add(old)
                    warnings.warn(f"'{old}' moved to '{new}' in skillstack 0.2; the old path is removed in "
                                  f"{REMOVED_IN}: import '{new}' instead", DeprecationWarning, stacklevel=2)
                return importlib.util.spec_from_loader(fullname, _AliasLoader(new + fullname[len(old):]))
        return None


def install() -> None:
    """Put the finder on `sys.meta_path` once (idempotent)."""
    if not any(isinstance(f, MovedPackageFinder) for f in sys.meta_path):
        sys.meta_path.insert(0, MovedPackageFinder())
