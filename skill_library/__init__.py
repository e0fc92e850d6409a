"""Skill library (layer 4): safe skill packages, a registry, descriptors, starter skills.

Public API (imported lazily, so `import skill_library` stays light)::

    from skill_library import SkillLibrary, load_skill, evaluate_skill
    lib = SkillLibrary()                      # --library / $SKILLSTACK_LIBRARY / ~/.skillstack/skills
    skill = lib.load("push_red")              # latest version; "push_red@1.0.0" pins one
    action = skill(obs)                       # dict or flat array, single or batched

Modules: `manifest` (schema), `package` (safe read/verify/atomic write), `skill`
(callable skills), `registry` (library + index), `keyring` (Ed25519 keys, trust store),
`signing` (signature.json, verification policy), `trust_policy` (what `add` accepts),
`audit` (append-only logs), `lockfile` (pinned skill sets), `descriptors` (grid evaluation and
lookup), `scripted` (allowed scripted controllers), `authoring` (build packages from
an env + network / SB3 model / controller), `starter` (scripted starter skills),
`testing` (small random skills for tests), `errors`.
"""

from __future__ import annotations

from common.lazy import lazy_exports
from skill_library import _moved

_moved.install()  # old `skill_library.demos|segmentation|planning` paths, deprecated

_EXPORTS = {
    "SkillLibraryError": "skill_library.errors",
    "SkillPackageError": "skill_library.errors",
    "SkillIntegrityError": "skill_library.errors",
    "SkillNotFoundError": "skill_library.errors",
    "SkillExistsError": "skill_library.errors",
    "SkillNotBoundError": "skill_library.errors",
    "SkillSignatureError": "skill_library.errors",
    "SkillTrustError": "skill_library.errors",
    "SkillRevokedError": "skill_library.errors",
    "SkillLockError": "skill_library.errors",
    "SkillTrustWarning": "skill_library.errors",
    "Keyring": "skill_library.keyring",
    "SignaturePolicy": "skill_library.signing",
    "sign_package": "skill_library.package",
    "read_audit": "skill_library.audit",
    "Manifest": "skill_library.manifest",
    "read_package": "skill_library.package",
    "verify_package": "skill_library.package",
    "write_package": "skill_library.package",
    "Skill": "skill_library.skill",
    "NetworkSkill": "skill_library.skill",
    "ScriptedSkill": "skill_library.skill",
    "load_skill": "skill_library.skill",
    "SkillLibrary": "skill_library.registry",
    "SkillEntry": "skill_library.registry",
    "SkillRegistry": "skill_library.registry",
    "resolve_library_path": "skill_library.registry",
    "evaluate_skill": "skill_library.descriptors",
    "merge_descriptors": "skill_library.descriptors",
    "attach_descriptors": "skill_library.descriptors",
    "lookup": "skill_library.descriptors",
    "save_network_skill": "skill_library.authoring",
    "save_sb3_skill": "skill_library.authoring",
    "save_scripted_skill": "skill_library.authoring",
    "build_starter_skills": "skill_library.starter",
    "publish_skill": "skill_library.publish",
    "publish_run": "skill_library.publish",
    "train_and_publish": "skill_library.publish",
}

__all__ = sorted(_EXPORTS)


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, globals())
