"""Exception types of the skill library.

All derive from `SkillLibraryError`, itself a `ValueError`, so the command line reports
them as one clear line, and scripts can catch the library's problems with one clause.
"""

from __future__ import annotations

__all__ = [
    "SkillExistsError",
    "SkillIntegrityError",
    "SkillLibraryError",
    "SkillNotBoundError",
    "SkillNotFoundError",
    "SkillPackageError",
    "SkillSetupError",
]


class SkillLibraryError(ValueError):
    """Base class of every error the skill library raises on purpose."""


class SkillPackageError(SkillLibraryError):
    """A skill package is malformed: bad layout, manifest schema, or weights; the message names the file and field."""


class SkillIntegrityError(SkillPackageError):
    """A file's bytes do not match the SHA-256 the manifest records (the file was changed or corrupted)."""


class SkillNotFoundError(SkillLibraryError):
    """A skill name or `name@version` is not in the library; the message lists what is there."""


class SkillExistsError(SkillLibraryError):
    """`name@version` is already in the library (versions are immutable; add with force to replace)."""


class SkillNotBoundError(SkillLibraryError):
    """A scripted skill was called before `skill.bind(env)` gave it the simulator state it needs."""


class SkillSetupError(SkillLibraryError):
    """Evaluation could not reach a start state: placements collided or the expert never set up the skill's preconditions."""
