"""The zoo is signed with the project key: skill packages as every package is, other artifacts (the
segmenter folder) by a `signature.json` over the SHA-256 of each of their files.

The private half of the project key never enters the repository: `zoo build` reads it from
$SKILLSTACK_PROJECT_KEY, else /root/.skillstack-project-key (a PEM file, or a folder holding
`skillstack-project.key`), signs with it when present and says so when it is absent (the artifacts
are then signed with the builder's own key, and `zoo install` refuses them on other machines).
Verification needs only the public half built into the code (`skill_library.keyring.PROJECT_KEY`).
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
from pathlib import Path
from typing import Any

from common.atomic import atomic_write_bytes

__all__ = [
    "TREE_SIGNATURE_FILE",
    "ZooSignatureError",
    "load_project_key",
    "project_key_path",
    "sign_skill_package",
    "sign_tree",
    "tree_digest",
    "verify_skill_package",
    "verify_tree",
]

KEY_ENV_VAR = "SKILLSTACK_PROJECT_KEY"
DEFAULT_KEY_PATH = "/root/.skillstack-project-key"
KEY_FILE_IN_FOLDER = "skillstack-project.key"
TREE_SIGNATURE_FILE = "signature.json"
TREE_FORMAT = "skillstack-zoo-tree-signature"
_TREE_PREFIX = b"skillstack-zoo-tree-v1:"  # a fixed prefix: the key signs nothing else this way


class ZooSignatureError(ValueError):
    """A zoo artifact is unsigned, signed by another key than the project's, or altered after signing."""


def project_key_path() -> Path:
    """Where the build looks for the project's private key: $SKILLSTACK_PROJECT_KEY, else the default path."""
    path = Path(os.environ.get(KEY_ENV_VAR) or DEFAULT_KEY_PATH)
    return path / KEY_FILE_IN_FOLDER if path.is_dir() else path


def load_project_key() -> Any | None:
    """The project's `SigningKey`, or None when its private half is not on this machine.

    Raises `ZooSignatureError` when a key is there but is not the project key (a wrong file must not
    silently sign the zoo with something users will not trust)."""
    from skill_library.keyring import PROJECT_KEY_ID, PROJECT_KEY_NAME, SigningKey

    path = project_key_path()
    try:
        data = path.read_bytes()
    except (FileNotFoundError, NotADirectoryError, PermissionError):
        return None
    key = SigningKey.from_pem(data, PROJECT_KEY_NAME, str(path))
    if key.key_id != PROJECT_KEY_ID:
        raise ZooSignatureError(f"{path}: key {key.key_id} is not the project key {PROJECT_KEY_ID}")
    return key


def sign_skill_package(path: str | os.PathLike[str], key: Any) -> Any:
    """Re-sign a skill package in place with `key` (the project key); returns its manifest."""
    from skill_library.package import sign_package

    return sign_package(path, signing_key=key)


def verify_skill_package(path: str | os.PathLike[str], *, project_only: bool = True) -> Any:
    """Fully verify a zoo skill package (layout, signature, hashes, weights) and return its manifest.

    `project_only`: the signature must be by the project key (what a shipped zoo holds)."""
    from skill_library.keyring import PROJECT_KEY_ID
    from skill_library.package import verify_package
    from skill_library.signing import SignaturePolicy

    policy = SignaturePolicy(expected_key_id=PROJECT_KEY_ID) if project_only else SignaturePolicy()
    try:
        return verify_package(path, policy=policy)
    except Exception as exc:  # the reader's errors name the file; say which artifact
        raise ZooSignatureError(f"{path}: {exc}") from exc


def _tree_files(root: Path) -> dict[str, str]:
    """{relative path: SHA-256} of every regular file under `root` but the signature; no symlinks allowed."""
    out: dict[str, str] = {}
    for p in sorted(root.rglob("*")):
        rel = p.relative_to(root).as_posix()
        if p.is_symlink():
            raise ZooSignatureError(f"{p}: a symlink in a zoo artifact")
        if p.is_file() and rel != TREE_SIGNATURE_FILE:
            out[rel] = hashlib.sha256(p.read_bytes()).hexdigest()
    return out


def tree_digest(files: dict[str, str]) -> str:
    """SHA-256 of the canonical JSON of {relative path: SHA-256}."""
    return hashlib.sha256(json.dumps(files, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def sign_tree(root: str | os.PathLike[str], key: Any) -> dict[str, Any]:
    """Write `root/signature.json`: the hash of every file under `root` and `key`'s signature over them."""
    root = Path(root)
    files = _tree_files(root)
    digest = tree_digest(files)
    doc = {
        "format": TREE_FORMAT,
        "key_id": key.key_id,
        "name": key.name,
        "digest": digest,
        "files": files,
        "signature": base64.b64encode(key.sign(_TREE_PREFIX + digest.encode())).decode(),
    }
    atomic_write_bytes(root / TREE_SIGNATURE_FILE, (json.dumps(doc, indent=1, sort_keys=True) + "\n").encode())
    return doc


def verify_tree(root: str | os.PathLike[str], *, project_only: bool = True) -> dict[str, Any]:
    """Check `root/signature.json`: the same files with the same hashes, signed by the project key
    (or, without `project_only`, by any key this user trusts). Returns the signature document."""
    from skill_library.keyring import PROJECT_KEY, PROJECT_KEY_ID, Keyring

    root = Path(root)
    sig_path = root / TREE_SIGNATURE_FILE
    if not sig_path.is_file():
        raise ZooSignatureError(f"{root}: unsigned ({TREE_SIGNATURE_FILE} missing)")
    try:
        doc = json.loads(sig_path.read_text())
        key_id, digest, signature = str(doc["key_id"]), str(doc["digest"]), base64.b64decode(doc["signature"])
    except (ValueError, KeyError, TypeError) as exc:
        raise ZooSignatureError(f"{sig_path}: not a zoo signature ({exc})") from None
    if doc.get("format") != TREE_FORMAT:
        raise ZooSignatureError(f"{sig_path}: not a zoo signature (format {doc.get('format')!r})")
    files = _tree_files(root)
    if files != doc.get("files"):
        changed = sorted(set(files) ^ set(doc.get("files") or {}) | {k for k in files if files[k] != (doc.get("files") or {}).get(k)})
        raise ZooSignatureError(f"{root}: files differ from what was signed: {changed[:5]}")
    if tree_digest(files) != digest:
        raise ZooSignatureError(f"{sig_path}: digest does not match the files")
    if project_only and key_id != PROJECT_KEY_ID:
        raise ZooSignatureError(f"{root}: signed by {key_id}, not by the project key {PROJECT_KEY_ID}")
    if key_id == PROJECT_KEY_ID:
        public = PROJECT_KEY
        if Keyring().state(PROJECT_KEY_ID) == "revoked":
            raise ZooSignatureError(f"{root}: signed by the project key, which you revoked")
    else:
        ring = Keyring()
        if ring.state(key_id) != "trusted":
            raise ZooSignatureError(f"{root}: signed by {key_id}, a key you do not trust")
        public = ring.public_key(key_id)
    if not public.verify(signature, _TREE_PREFIX + digest.encode()):
        raise ZooSignatureError(f"{sig_path}: bad signature")
    return doc
