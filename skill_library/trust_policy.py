"""The library's trust policy: which signed (or unsigned) packages `SkillLibrary.add` accepts, and
what it records so that every later load checks the same thing.

`skills add` accepts, by default, only a package validly signed by a key the user trusts.

- unsigned: refused unless ``allow_unsigned`` (``--allow-unsigned``);
- signed by a key the user has not trusted: refused unless ``allow_untrusted``;
- signed by a revoked key: always refused (and packages it signed no longer load);
- trust on first use, per skill name (as SSH does per host): the first version of a name
  pins its publisher's key; a version signed by another key (or unsigned, after signed
  ones) is refused unless ``allow_signer_change`` (``--allow-signer-change``).

An allowed override warns (`SkillTrustWarning`) and is recorded in the index entry
(``overrides``) and in the audit log. The index entry also records the signer, the
publisher (the key the version came with, kept when the library re-signs it after
storing descriptors) and the manifest digest; a load is checked against them
(`entry_policy`): the package must still be signed by the recorded key and carry the
recorded manifest digest.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from typing import Any

from skill_library.errors import SkillSignatureError, SkillTrustError, SkillTrustWarning
from skill_library.keyring import Keyring
from skill_library.manifest import Manifest
from skill_library.signing import SignatureInfo, SignaturePolicy

__all__ = ["OVERRIDES", "decide_add", "entry_policy", "index_summary"]

OVERRIDES = ("unsigned", "untrusted", "signer-change")
LEGACY = "legacy"  # an index entry written before packages were signed: no trust fields


def index_summary(
    m: Manifest, added: str, signature: SignatureInfo, *, publisher: str | None, overrides: list[str], added_by: str
) -> dict[str, Any]:
    """The index entry of one installed version: what `list`/`search` show without reading the package,
    and what a load is checked against (signer, manifest digest, overrides)."""
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
        "signer": None if not signature.signed else {"key_id": signature.key_id, "name": signature.name},
        "publisher": publisher,
        "trust": signature.state,
        "overrides": sorted(overrides),
        "added_by": added_by,
    }


def entry_policy(summary: Mapping[str, Any], keyring: Keyring | None) -> SignaturePolicy:
    """What the package of an index entry must pass on every load: the recorded signer (or none,
    where an unsigned add was allowed); an untrusted signer only where that was allowed."""
    if "trust" not in summary:  # legacy entry: it predates signing; a signature, if any, must be trusted
        return SignaturePolicy(allow_unsigned=True, keyring=keyring)
    overrides = summary.get("overrides") or ()
    signer = summary.get("signer")
    return SignaturePolicy(
        allow_unsigned="unsigned" in overrides and signer is None,
        allow_untrusted="untrusted" in overrides,
        expected_key_id=None if signer is None else signer.get("key_id"),
        keyring=keyring,
    )


def publishers(versions: Mapping[str, Mapping[str, Any]], exclude: str | None = None) -> set[str | None]:
    """The keys that brought the installed versions of one name (None: an unsigned one); legacy entries say nothing."""
    return {s.get("publisher") for v, s in versions.items() if v != exclude and "trust" in s}


def decide_add(
    m: Manifest,
    signature: SignatureInfo,
    versions: Mapping[str, Mapping[str, Any]],
    *,
    allow_unsigned: bool = False,
    allow_untrusted: bool = False,
    allow_signer_change: bool = False,
) -> list[str]:
    """Apply the policy to one package about to be added next to `versions` (the name's index entries).

    Returns the overrides used (each also warned); raises `SkillSignatureError` (unsigned) or
    `SkillTrustError` (untrusted signer, signer change) when the package is refused.
    """
    used = []
    who = "unsigned" if not signature.signed else f"key {signature.key_id} ({signature.name})"
    if not signature.signed:
        if not allow_unsigned:
            raise SkillSignatureError(f"{m.ref}: unsigned package refused; its author signs it (skillstack keys sign), or pass --allow-unsigned")
        used.append("unsigned")
    elif signature.state == "untrusted":
        if not allow_untrusted:
            raise SkillTrustError(
                f"{m.ref}: signed by {who}, which you do not trust; `skillstack keys trust KEY.pub` after checking it with "
                "its owner, or pass --allow-untrusted"
            )
        used.append("untrusted")
    known = publishers(versions)
    if known and signature.key_id not in known:
        pinned = ", ".join(sorted("unsigned" if k is None else k for k in known))
        if not allow_signer_change:
            raise SkillTrustError(
                f"{m.ref}: signed by {who}, but the installed versions of {m.name!r} came from {pinned}; a new signer for "
                "an installed skill is refused (trust on first use); pass --allow-signer-change if you expected it"
            )
        used.append("signer-change")
    for o in used:
        warnings.warn(f"{m.ref}: accepted with --allow-{o} ({who}); recorded in the library index and audit log",
                      SkillTrustWarning, stacklevel=3)  # fmt: skip
    return used
