"""Package signatures: ``signature.json`` beside ``manifest.json``, and the policy that judges it.

A signed package names its signer in the manifest (``signer``: key id and name, covered by
the manifest digest) and holds, beside the manifest, ``signature.json``::

    {"algorithm": "ed25519", "format": "skillstack-signature", "format_version": 1,
     "key_id": "<32 hex>", "manifest_digest": "<sha256 hex>", "public_key": "<base64>",
     "signature": "<base64 of 64 bytes>"}

The signature is Ed25519 (the `cryptography` package) over ``SIGNED_PREFIX + manifest_digest``:
the digest covers every manifest field, and the manifest lists the SHA-256 of every other file,
so one signature vouches for the whole package. The file must be in canonical form (one
accepted byte sequence), its key id must be its public key's and the manifest's signer's, and
its digest the manifest's; so a changed byte anywhere, a signature replayed onto another
manifest, or a package re-sealed by another key or none is refused.

`check_signature` runs on every load and add, after the manifest's digest is checked and
before its schema or any other file is parsed. Its `SignaturePolicy` says what else passes:
by default only a valid signature by a key this user trusts (`skill_library.keyring`); an
unsigned package or an untrusted signer only when the policy allows it (the library records
those overrides); a revoked signer never.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from skill_library.errors import SkillLibraryError, SkillRevokedError, SkillSignatureError, SkillTrustError
from skill_library.keyring import ALGORITHM, Keyring, PublicKey, SigningKey, decode_public_key, key_id_of
from skill_library.manifest import SignerSpec, canonical_bytes, compute_digest

__all__ = [
    "SIGNATURE_FILE",
    "SIGNED_PREFIX",
    "SignatureInfo",
    "SignaturePolicy",
    "check_signature",
    "sign_digest",
    "sign_manifest_dict",
    "signer_of",
]

SIGNATURE_FILE = "signature.json"
SIGNATURE_FORMAT = "skillstack-signature"
SIGNED_PREFIX = b"skillstack-skill-manifest-v1:"  # domain separation: this key signs nothing else this way
MAX_SIGNATURE_BYTES = 4096
_FIELDS = ("algorithm", "format", "format_version", "key_id", "manifest_digest", "public_key", "signature")


@dataclass(frozen=True)
class SignaturePolicy:
    """What a reader accepts besides a valid signature by a trusted key.

    allow_unsigned / allow_untrusted: accept a package without a signature, or signed by a
    key this user has not trusted (the library grants these only where the user asked, and
    records it). expected_key_id: the signature must be by exactly this key (the library
    pins the key a package was installed with). keyring: the trust store to consult (None:
    the user's, `$SKILLSTACK_KEYS`). A revoked key is refused whatever the policy says.
    """

    allow_unsigned: bool = False
    allow_untrusted: bool = False
    expected_key_id: str | None = None
    keyring: Keyring | None = None

    def ring(self) -> Keyring:
        return self.keyring if self.keyring is not None else Keyring()


PERMISSIVE = SignaturePolicy(allow_unsigned=True, allow_untrusted=True)  # still refuses bad signatures and revoked keys


@dataclass(frozen=True)
class SignatureInfo:
    """The verdict on one package: its signer (None when unsigned) and that signer's state for this user."""

    key_id: str | None
    name: str | None
    state: str  # trusted | untrusted | unsigned

    @property
    def signed(self) -> bool:
        return self.key_id is not None

    def to_dict(self) -> dict[str, Any]:
        return {"key_id": self.key_id, "name": self.name, "state": self.state}


def signed_message(digest: str) -> bytes:
    """The bytes a signature covers: a fixed prefix and the manifest digest (hex)."""
    return SIGNED_PREFIX + digest.encode("ascii")


def sign_digest(key: SigningKey, digest: str) -> bytes:
    """The canonical bytes of a `signature.json` for a manifest with `digest`, signed by `key`."""
    d = {
        "algorithm": ALGORITHM,
        "format": SIGNATURE_FORMAT,
        "format_version": 1,
        "key_id": key.key_id,
        "manifest_digest": digest,
        "public_key": key.public.b64,
        "signature": base64.b64encode(key.sign(signed_message(digest))).decode("ascii"),
    }
    return canonical_bytes(d)


def signer_of(key: SigningKey) -> SignerSpec:
    """The manifest's ``signer`` section for `key`."""
    return SignerSpec(key.key_id, key.name)


def sign_manifest_dict(d: Mapping[str, Any], key: SigningKey) -> tuple[bytes, bytes]:
    """Name `key` as signer of the manifest dict `d`, re-seal its digest, and sign it.

    Returns (manifest.json bytes, signature.json bytes). For authors editing a manifest by
    hand (and tests); the writers in `skill_library.package` sign what they write.
    """
    body = {k: v for k, v in d.items() if k != "manifest_digest"}
    body["signer"] = signer_of(key).to_dict()
    digest = compute_digest(body)
    return canonical_bytes({**body, "manifest_digest": digest}), sign_digest(key, digest)


def _parse_signature_file(data: bytes, where: str) -> dict[str, Any]:
    if len(data) > MAX_SIGNATURE_BYTES:
        raise SkillSignatureError(f"{where}: {len(data)} bytes exceeds the {MAX_SIGNATURE_BYTES}-byte limit")
    try:
        d = json.loads(data.decode("ascii"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError):
        raise SkillSignatureError(f"{where}: not valid JSON") from None
    if not isinstance(d, dict) or sorted(d) != sorted(_FIELDS):
        raise SkillSignatureError(f"{where}: expected exactly the fields {list(_FIELDS)}")
    if canonical_bytes(d) != data:
        raise SkillSignatureError(f"{where}: bytes differ from the canonical form (file was edited)")
    if d["format"] != SIGNATURE_FORMAT or d["format_version"] != 1 or isinstance(d["format_version"], bool):
        raise SkillSignatureError(f"{where}: not a {SIGNATURE_FORMAT} version 1 file")
    if d["algorithm"] != ALGORITHM:
        raise SkillSignatureError(f"{where}: algorithm {d['algorithm']!r} is not supported; only {ALGORITHM!r}")
    return d


def check_signature(
    raw_manifest: Mapping[str, Any], digest: str, signature_bytes: bytes | None, policy: SignaturePolicy, where: str
) -> SignatureInfo:
    """Verify a package's signature over its (digest-checked) manifest and apply `policy`.

    raw_manifest: the manifest's JSON object (schema not yet checked); digest: its verified
    manifest_digest; signature_bytes: the bytes of signature.json, None when absent;
    where: the package path, for messages. Raises `SkillSignatureError` (unsigned, forged,
    replayed, or not the expected key), `SkillRevokedError` or `SkillTrustError`.
    """
    try:
        spec = None if raw_manifest.get("signer") is None else SignerSpec.from_dict(raw_manifest["signer"])
    except SkillLibraryError as exc:
        raise SkillSignatureError(f"{where}: {exc}") from None
    if signature_bytes is None:
        if spec is not None:
            raise SkillSignatureError(f"{where}: manifest names signer {spec.key_id} ({spec.name}) but {SIGNATURE_FILE} is missing")
        if policy.expected_key_id is not None:
            raise SkillSignatureError(f"{where}: unsigned, but it was installed signed by key {policy.expected_key_id}")
        if not policy.allow_unsigned:
            raise SkillSignatureError(
                f"{where}: unsigned package (no {SIGNATURE_FILE}); its author signs it with `skillstack keys sign`, "
                "or accept it anyway with --allow-unsigned"
            )
        return SignatureInfo(None, None, "unsigned")
    sig_where = f"{where}/{SIGNATURE_FILE}"
    d = _parse_signature_file(signature_bytes, sig_where)
    if spec is None:
        raise SkillSignatureError(f"{sig_where}: present, but the manifest names no signer (it was re-sealed without one)")
    try:
        raw_key = decode_public_key(d["public_key"], f"{sig_where}: public_key")
    except SkillLibraryError as exc:
        raise SkillSignatureError(str(exc)) from None
    if key_id_of(raw_key) != d["key_id"] or d["key_id"] != spec.key_id:
        raise SkillSignatureError(
            f"{sig_where}: key {d['key_id']!r} is not the manifest's signer {spec.key_id} (or not its own public key's id)"
        )
    if d["manifest_digest"] != digest:
        raise SkillSignatureError(f"{sig_where}: signs manifest digest {str(d['manifest_digest'])[:16]}..., not this manifest ({digest[:16]}...)")
    try:
        sig = base64.b64decode(d["signature"], validate=True) if isinstance(d["signature"], str) else b""
    except (binascii.Error, ValueError):
        sig = b""
    if len(sig) != 64 or not PublicKey.from_raw(raw_key, spec.name).verify(sig, signed_message(digest)):
        raise SkillSignatureError(f"{sig_where}: the Ed25519 signature does not verify (forged or corrupted)")
    if policy.expected_key_id is not None and spec.key_id != policy.expected_key_id:
        raise SkillSignatureError(f"{where}: signed by key {spec.key_id} ({spec.name}), but it was installed signed by {policy.expected_key_id}")
    state = policy.ring().state(spec.key_id)
    if state == "revoked":
        raise SkillRevokedError(f"{where}: signed by key {spec.key_id} ({spec.name}), which you revoked; it cannot be loaded or added")
    if state == "untrusted" and not policy.allow_untrusted:
        raise SkillTrustError(
            f"{where}: signed by key {spec.key_id} ({spec.name}), which you do not trust; check it with its owner, then "
            "`skillstack keys trust KEY.pub`, or accept this package anyway with --allow-untrusted"
        )
    return SignatureInfo(spec.key_id, spec.name, state)
