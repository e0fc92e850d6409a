"""Exception types of the skill library.

All derive from `SkillLibraryError`, itself a `ValueError`, so the command line reports
them as one clear line, and scripts can catch the library's problems with one clause.
"""

from __future__ import annotations

__all__ = [
    "SkillExistsError",
    "SkillIntegrityError",
    "SkillLibraryError",
    "SkillLockError",
    "SkillNotBoundError",
    "SkillNotFoundError",
    "SkillPackageError",
    "SkillRevokedError",
    "SkillSetupError",
    "SkillSignatureError",
    "SkillTrustError",
    "SkillTrustWarning",
]


class SkillLibraryError(ValueError):
    """Base class of every error the skill library raises on purpose."""


class SkillPackageError(SkillLibraryError):
    """A skill package is malformed: bad layout, manifest schema, or weights; the message names the file and field."""


class SkillIntegrityError(SkillPackageError):
    """A file's bytes do not match the SHA-256 the manifest records (the file was changed or corrupted)."""


class SkillSignatureError(SkillPackageError):
    """A package is unsigned, or its signature does not verify over its manifest (forged, replayed or re-sealed)."""


class SkillTrustError(SkillLibraryError):
    """A package is validly signed, but the policy refuses its signer: an untrusted key, or not the key that
    signed the versions already installed (trust on first use)."""


class SkillRevokedError(SkillTrustError):
    """A package is signed by a key the user revoked: it can be neither added nor loaded."""


class SkillLockError(SkillLibraryError):
    """A skill is not what a lock file pins (another version or digest, or not in the lock at all)."""


class SkillTrustWarning(UserWarning):
    """A trust check was overridden on request (--allow-unsigned, --allow-untrusted, --allow-signer-change)."""


class SkillNotFoundError(SkillLibraryError):
    """A skill name or `name@version` is not in the library; the message lists what is there."""


class SkillExistsError(SkillLibraryError):
    """`name@version` is already in the library (versions are immutable; add with force to replace)."""


class SkillNotBoundError(SkillLibraryError):
    """A scripted skill was called before `skill.bind(env)` gave it the simulator state it needs."""


class SkillSetupError(SkillLibraryError):
    """Evaluation could not reach a start state: placements collided or the expert never set up the skill's preconditions."""
