"""Ed25519 signing keys and the per-user trust store (the key ring).

Layout (``$SKILLSTACK_KEYS``, else ``~/.skillstack/keys``; the folder is 0700)::

    <keys>/
      <key_id>.key     a private key this user holds: PKCS#8 PEM, mode 0600
      <key_id>.pub     its public half, the file to share (`skillstack keys export`)
      default          the key id that signs the packages this user writes
      trust.json       {"format": "skillstack-trust", "keys": {key_id: {name, public_key, state, since, source}}}
      audit.log        key generation, trust and revocation (skill_library.audit)
      .lock            held for every change

A key id is the first 32 hex digits of the SHA-256 of the raw 32-byte public key, so it
names exactly one key. A key's state for this user is ``trusted`` (generated here, or
trusted with `skillstack keys trust FILE`), ``revoked`` (never accepted again: packages
it signed can be neither added nor loaded) or ``untrusted`` (not in the trust store).

The project key ships with the code: its public half is `PROJECT_PUBLIC_KEY` (and
``skill_library/keys/skillstack-project.pub``) and it is trusted unless the user revokes it.
Its private half is not in the repository; it signs the packages the project publishes.

Every file is written through `common.atomic` (temp file, fsync, rename); a private key is
born 0600 (the temp file is created so) and never exists with looser permissions.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import hashlib
import json
import os
import re
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from common.atomic import atomic_write_bytes
from skill_library.audit import AUDIT_FILE, append_audit, login_name, new_record, utc_now
from skill_library.errors import SkillLibraryError
from skill_library.files import read_bounded
from skill_library.flock import exclusive_lock

__all__ = [
    "ALGORITHM",
    "ENV_VAR",
    "PROJECT_KEY_ID",
    "PROJECT_PUBLIC_KEY",
    "Keyring",
    "PublicKey",
    "SigningKey",
    "TrustEntry",
    "key_id_of",
    "read_public_key_file",
    "resolve_keys_path",
]

ENV_VAR = "SKILLSTACK_KEYS"
DEFAULT_KEYS = "~/.skillstack/keys"
ALGORITHM = "ed25519"
PUBLIC_KEY_FORMAT = "skillstack-public-key"
TRUST_FORMAT = "skillstack-trust"
TRUST_FILE = "trust.json"
DEFAULT_FILE = "default"
PROJECT_KEY_NAME = "skillstack-project"
PROJECT_PUBLIC_KEY = "5trSSABSYW63rleAmppxHlT4ZHBsM6n/101mgzuHfHU="  # base64 of the raw Ed25519 public key
PROJECT_KEY_ID = "a73cdde844757b02a8c217ecea6c5dc5"
STATES = ("trusted", "revoked", "untrusted")
_KEY_ID_RE = re.compile(r"^[0-9a-f]{32}$")
_MAX_KEY_FILE = 64 * 1024
_MAX_NAME = 128


def resolve_keys_path(path: str | os.PathLike[str] | None = None) -> Path:
    """Key ring folder: `path` if given, else $SKILLSTACK_KEYS, else ~/.skillstack/keys."""
    chosen = path or os.environ.get(ENV_VAR) or DEFAULT_KEYS
    return Path(os.path.expanduser(str(chosen))).absolute()


def key_id_of(public_bytes: bytes) -> str:
    """The key id of a raw 32-byte Ed25519 public key: first 32 hex digits of its SHA-256."""
    return hashlib.sha256(public_bytes).hexdigest()[:32]


def check_key_id(key_id: Any, where: str = "key id") -> str:
    """`key_id` if it is 32 lowercase hex digits, else a clear error."""
    if not isinstance(key_id, str) or not _KEY_ID_RE.match(key_id):
        raise SkillLibraryError(f"{where}: {key_id!r} is not a key id (32 lowercase hex digits)")
    return key_id


def decode_public_key(text: Any, where: str) -> bytes:
    """The raw 32 bytes of a base64 Ed25519 public key, or a clear error naming `where`."""
    try:
        raw = base64.b64decode(text, validate=True) if isinstance(text, str) else b""
    except (binascii.Error, ValueError):
        raw = b""
    if len(raw) != 32:
        raise SkillLibraryError(f"{where}: not a base64 Ed25519 public key (32 bytes)")
    return raw


@dataclass(frozen=True)
class PublicKey:
    """An Ed25519 public key with its id and the name its owner gave it."""

    key_id: str
    name: str
    raw: bytes

    @classmethod
    def from_raw(cls, raw: bytes, name: str) -> "PublicKey":
        return cls(key_id_of(raw), name, raw)

    @property
    def b64(self) -> str:
        return base64.b64encode(self.raw).decode("ascii")

    def verify(self, signature: bytes, message: bytes) -> bool:
        """True when `signature` is this key's Ed25519 signature of `message`."""
        from cryptography.exceptions import InvalidSignature
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

        try:
            Ed25519PublicKey.from_public_bytes(self.raw).verify(signature, message)
        except (InvalidSignature, ValueError):
            return False
        return True

    def to_file_bytes(self) -> bytes:
        """The `.pub` file: canonical JSON with format, algorithm, key id, name and the base64 key."""
        d = {"format": PUBLIC_KEY_FORMAT, "algorithm": ALGORITHM, "key_id": self.key_id, "name": self.name, "public_key": self.b64}
        return (json.dumps(d, sort_keys=True, indent=2) + "\n").encode("ascii")


def check_name(name: Any, where: str = "key name") -> str:
    """A key name: 1 to 128 printable characters."""
    if not isinstance(name, str) or not 1 <= len(name) <= _MAX_NAME or not name.isprintable():
        raise SkillLibraryError(f"{where}: expected 1 to {_MAX_NAME} printable characters, got {name!r}")
    return name


def parse_public_key(data: bytes, where: str) -> PublicKey:
    """Parse the bytes of a `.pub` file, checking that its key id is its key's."""
    if len(data) > _MAX_KEY_FILE:
        raise SkillLibraryError(f"{where}: {len(data)} bytes is too large for a public key file")
    try:
        d = json.loads(data)
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise SkillLibraryError(f"{where}: not a skillstack public key file (JSON from `skillstack keys export`)") from None
    if not isinstance(d, dict) or d.get("format") != PUBLIC_KEY_FORMAT:
        raise SkillLibraryError(f"{where}: not a skillstack public key file (format must be {PUBLIC_KEY_FORMAT!r})")
    if d.get("algorithm") != ALGORITHM:
        raise SkillLibraryError(f"{where}: algorithm {d.get('algorithm')!r} is not supported; only {ALGORITHM!r}")
    key = PublicKey.from_raw(decode_public_key(d.get("public_key"), f"{where}: public_key"), check_name(d.get("name"), f"{where}: name"))
    if d.get("key_id") != key.key_id:
        raise SkillLibraryError(f"{where}: key_id {d.get('key_id')!r} is not the id of its public key ({key.key_id})")
    return key


def read_public_key_file(path: str | os.PathLike[str]) -> PublicKey:
    """Read and check a `.pub` file (see `PublicKey.to_file_bytes`)."""
    return parse_public_key(read_bounded(path, _MAX_KEY_FILE, "public key file"), str(path))


PROJECT_KEY = PublicKey.from_raw(base64.b64decode(PROJECT_PUBLIC_KEY), PROJECT_KEY_NAME)
assert PROJECT_KEY.key_id == PROJECT_KEY_ID  # noqa: S101 - a typo in the constants must not ship


@dataclass(frozen=True)
class SigningKey:
    """A private Ed25519 key this user holds, with its public half."""

    public: PublicKey
    _private: Any  # cryptography's Ed25519PrivateKey

    @property
    def key_id(self) -> str:
        return self.public.key_id

    @property
    def name(self) -> str:
        return self.public.name

    def sign(self, message: bytes) -> bytes:
        """The 64-byte Ed25519 signature of `message`."""
        return self._private.sign(message)

    @classmethod
    def generate(cls, name: str) -> "SigningKey":
        """A fresh key from the operating system's random source."""
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

        return cls._of(Ed25519PrivateKey.generate(), check_name(name))

    @classmethod
    def _of(cls, private: Any, name: str) -> "SigningKey":
        from cryptography.hazmat.primitives import serialization as ser

        raw = private.public_key().public_bytes(ser.Encoding.Raw, ser.PublicFormat.Raw)
        return cls(PublicKey.from_raw(raw, name), private)

    def private_pem(self) -> bytes:
        from cryptography.hazmat.primitives import serialization as ser

        return self._private.private_bytes(ser.Encoding.PEM, ser.PrivateFormat.PKCS8, ser.NoEncryption())

    @classmethod
    def from_pem(cls, data: bytes, name: str, where: str) -> "SigningKey":
        from cryptography.hazmat.primitives import serialization as ser
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

        try:
            private = ser.load_pem_private_key(data, password=None)
        except (ValueError, TypeError) as exc:
            raise SkillLibraryError(f"{where}: not an unencrypted PKCS#8 PEM private key ({exc})") from None
        if not isinstance(private, Ed25519PrivateKey):
            raise SkillLibraryError(f"{where}: not an Ed25519 key")
        return cls._of(private, name)


@dataclass(frozen=True)
class TrustEntry:
    """One key as this user sees it: its state, since when, and where it came from."""

    key: PublicKey
    state: str  # trusted | revoked
    since: str
    source: str  # generated | file:<path> | project
    reason: str = ""


def _stderr(msg: str) -> None:
    print(msg, file=sys.stderr)


class Keyring:
    """A user's keys and trust store (see module docstring). Safe for concurrent processes on POSIX."""

    def __init__(self, root: str | os.PathLike[str] | None = None, *, lock_timeout: float = 60.0,
                 announce: Callable[[str], None] = _stderr) -> None:  # fmt: skip
        self.root = resolve_keys_path(root)
        self.lock_timeout = float(lock_timeout)
        self.announce = announce

    def __repr__(self) -> str:
        return f"Keyring({str(self.root)!r})"

    @property
    def audit_path(self) -> Path:
        return self.root / AUDIT_FILE

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        self.root.mkdir(parents=True, exist_ok=True, mode=0o700)
        with exclusive_lock(self.root / ".lock", self.lock_timeout, f"key ring {self.root}"):
            yield

    def _audit(self, op: str, **details: Any) -> None:
        append_audit(self.audit_path, new_record(op, details, self.default_key_id()))

    # ------------------------------------------------------------------ trust store
    def _read_trust(self) -> dict[str, Any]:
        path = self.root / TRUST_FILE
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            return {}
        try:
            d = json.loads(data)
        except (json.JSONDecodeError, UnicodeDecodeError):
            raise SkillLibraryError(f"{path}: corrupt trust store (not JSON)") from None
        if not isinstance(d, dict) or d.get("format") != TRUST_FORMAT or not isinstance(d.get("keys"), dict):
            raise SkillLibraryError(f"{path}: not a skillstack trust store")
        return d["keys"]

    def _write_trust(self, keys: dict[str, Any]) -> None:
        d = {"format": TRUST_FORMAT, "format_version": 1, "keys": keys}
        atomic_write_bytes(self.root / TRUST_FILE, (json.dumps(d, indent=2, sort_keys=True) + "\n").encode("ascii"))

    def entries(self) -> dict[str, TrustEntry]:
        """Every key this user has an opinion on (the project key included), by key id."""
        out = {PROJECT_KEY_ID: TrustEntry(PROJECT_KEY, "trusted", "", "project")}
        for kid, e in self._read_trust().items():
            where = f"{self.root / TRUST_FILE}: keys.{kid}"
            key = PublicKey.from_raw(decode_public_key(e.get("public_key"), where), check_name(e.get("name"), where))
            if key.key_id != kid or e.get("state") not in ("trusted", "revoked"):
                raise SkillLibraryError(f"{where}: key id or state does not check out (the trust store was edited)")
            out[kid] = TrustEntry(key, e["state"], str(e.get("since", "")), str(e.get("source", "")), str(e.get("reason", "")))
        return out

    def state(self, key_id: str) -> str:
        """``trusted``, ``revoked`` or ``untrusted`` for this user."""
        entry = self.entries().get(key_id)
        return "untrusted" if entry is None else entry.state

    def _set(self, key: PublicKey, state: str, source: str, reason: str = "") -> None:
        keys = self._read_trust()
        keys[key.key_id] = {"name": key.name, "public_key": key.b64, "state": state, "since": utc_now(), "source": source,
                            **({"reason": reason} if reason else {})}  # fmt: skip
        self._write_trust(keys)

    def trust(self, key: PublicKey, source: str) -> TrustEntry:
        """Trust `key` (from a `.pub` file the user checked). A revoked key stays revoked: refused."""
        with self._locked():
            current = self.entries().get(key.key_id)
            if current is not None and current.state == "revoked":
                raise SkillLibraryError(f"key {key.key_id} ({current.key.name}) was revoked; a revoked key is never trusted again")
            if current is None or current.state != "trusted":
                self._set(key, "trusted", source)
                self._audit("trust", key_id=key.key_id, name=key.name, source=source)
            return self.entries()[key.key_id]

    def revoke(self, key_id: str, reason: str = "") -> TrustEntry:
        """Revoke a key this user knows: its packages can no longer be added or loaded."""
        check_key_id(key_id)
        with self._locked():
            entry = self.entries().get(key_id)
            if entry is None:
                raise SkillLibraryError(f"no key {key_id} in {self.root} (see `skillstack keys list`); trust its .pub first to revoke it")
            if entry.state != "revoked":
                self._set(entry.key, "revoked", entry.source, reason or "revoked by the user")
                self._audit("revoke", key_id=key_id, name=entry.key.name, reason=reason)
            return self.entries()[key_id]

    # ------------------------------------------------------------------ own keys
    def own_key_ids(self) -> list[str]:
        """Ids of the private keys held in this key ring."""
        if not self.root.is_dir():
            return []
        return sorted(p.stem for p in self.root.glob("*.key") if _KEY_ID_RE.match(p.stem))

    def default_key_id(self) -> str | None:
        """The id of the key that signs this user's packages, or None before one is generated."""
        try:
            kid = (self.root / DEFAULT_FILE).read_text().strip()
        except (FileNotFoundError, NotADirectoryError):
            return None
        return check_key_id(kid, str(self.root / DEFAULT_FILE))

    def public_key(self, key_id: str) -> PublicKey:
        """The public half of a key this user holds or knows."""
        check_key_id(key_id)
        pub = self.root / f"{key_id}.pub"
        if pub.is_file():
            key = read_public_key_file(pub)
            if key.key_id == key_id:
                return key
        entry = self.entries().get(key_id)
        if entry is None:
            raise SkillLibraryError(f"no key {key_id} in {self.root} (see `skillstack keys list`)")
        return entry.key

    def signing_key(self, key_id: str) -> SigningKey:
        """A private key this user holds (refused when revoked)."""
        check_key_id(key_id)
        path = self.root / f"{key_id}.key"
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            raise SkillLibraryError(f"no private key {key_id} in {self.root}") from None
        key = SigningKey.from_pem(data, self.public_key(key_id).name, str(path))
        if key.key_id != key_id:
            raise SkillLibraryError(f"{path}: holds key {key.key_id}, not {key_id}")
        if self.state(key_id) == "revoked":
            raise SkillLibraryError(f"key {key_id} ({key.name}) is revoked; generate a new one: skillstack keys generate")
        return key

    def generate(self, name: str | None = None, *, make_default: bool = True) -> SigningKey:
        """Create a key pair here, trust it, and (by default) make it the signing default."""
        with self._locked():
            return self._generate_locked(name, make_default)

    def _generate_locked(self, name: str | None, make_default: bool) -> SigningKey:
        key = SigningKey.generate(name or _default_name())
        atomic_write_bytes(self.root / f"{key.key_id}.key", key.private_pem())  # mkstemp: born 0600
        atomic_write_bytes(self.root / f"{key.key_id}.pub", key.public.to_file_bytes())
        os.chmod(self.root / f"{key.key_id}.pub", 0o644)
        self._set(key.public, "trusted", "generated")
        if make_default or self.default_key_id() is None:
            atomic_write_bytes(self.root / DEFAULT_FILE, (key.key_id + "\n").encode("ascii"))
        self._audit("generate", key_id=key.key_id, name=key.name, default=make_default)
        return key

    def set_default(self, key_id: str) -> SigningKey:
        """Make a held key the one that signs this user's packages."""
        with self._locked():
            key = self.signing_key(key_id)
            atomic_write_bytes(self.root / DEFAULT_FILE, (key.key_id + "\n").encode("ascii"))
            self._audit("set-default", key_id=key.key_id, name=key.name)
        return key

    def default_key(self, create: bool = True) -> SigningKey:
        """The key that signs this user's packages; generated on first use (with a message) when `create`."""
        kid = self.default_key_id()
        if kid is not None:
            return self.signing_key(kid)
        if not create:
            raise SkillLibraryError(f"no signing key in {self.root}; create one: skillstack keys generate")
        with self._locked():
            kid = self.default_key_id()  # another process may have made it while we waited
            if kid is not None:
                return self.signing_key(kid)
            key = self._generate_locked(None, True)
        self.announce(
            f"skillstack: created your signing key {key.key_id} ({key.name}) in {self.root}; it signs the skill "
            f"packages you write and you trust it. Others trust it with: skillstack keys export > {key.name}.pub"
        )
        return key


def _default_name() -> str:
    import socket

    name = f"{login_name()}@{socket.gethostname()}"
    return "".join(c for c in name if c.isprintable())[:_MAX_NAME] or "user"
