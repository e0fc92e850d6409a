"""Skill package directories: safe reading, verification and atomic writing.

Layout::

    <package>/
      manifest.json          canonical JSON, sealed by its manifest_digest, naming its signer
      signature.json         Ed25519 signature over the manifest digest (skill_library.signing)
      weights.safetensors    network tensors (an empty safetensors file for scripted skills)
      eval.mp4               optional evaluation video

Reading (`read_package`) refuses anything it cannot vouch for before using it, in this
order: the layout (regular files only: no symlinks, sub-directories or files the manifest
does not list; sizes within `PackageLimits`); the manifest's bytes (canonical, digest);
the signature over that digest and the signer's trust (`SignaturePolicy`); only then the
manifest's schema (every field bounded); the declared network's size; the safetensors
header of the weights, checked against the architecture (names, shapes, float dtypes,
tensor sizes) before the tensor data is read; and the SHA-256 of every file (the error
names the file). The weights are hashed and parsed from the *same bytes* (no re-read
between check and use), as safetensors only; nothing on this path unpickles.

Writing (`write_package`) signs the manifest with the user's key (generated on first use),
builds the package in a temporary sibling directory, fsyncs every file, then renames it
into place, so a crash never leaves a half-written package.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import shutil
import stat
import struct
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

# The atomic-write helpers live in common.atomic; re-exported here for scripts that import them from the package module.
from common.atomic import atomic_write_bytes, fsync_dir, fsync_file, staged_dir, swap_in_dir, write_new_file
from skill_library.errors import SkillIntegrityError, SkillPackageError
from skill_library.keyring import Keyring, SigningKey
from skill_library.manifest import (
    ALLOWED_FILES,
    MAX_MANIFEST_BYTES,
    WEIGHTS_FILE,
    Manifest,
    load_manifest_json,
    parse_manifest_bytes,
)
from skill_library.signing import (
    MAX_SIGNATURE_BYTES,
    SIGNATURE_FILE,
    SignatureInfo,
    SignaturePolicy,
    check_signature,
    sign_digest,
    signer_of,
)

__all__ = [
    "DEFAULT_LIMITS",
    "MANIFEST_FILE",
    "MAX_FILE_BYTES",
    "PackageContents",
    "PackageLimits",
    "atomic_write_bytes",
    "fsync_dir",
    "parse_safetensors_header",
    "read_package",
    "rewrite_manifest",
    "sha256_bytes",
    "sha256_file",
    "sign_package",
    "swap_in_dir",
    "verify_package",
    "write_new_file",
    "write_package",
]

MANIFEST_FILE = "manifest.json"


@dataclass(frozen=True)
class PackageLimits:
    """Sizes past which the reader refuses a package before reading it (a skill is a small network).

    The defaults leave two orders of magnitude above the largest skill this project trains
    (a few MB); pass larger limits to `read_package` for a deliberately large one.
    """

    max_package_bytes: int = 2 * 1024**3  # all files together
    max_file_bytes: int = 1024**3  # one file (weights or evaluation video)
    max_header_bytes: int = 16 * 1024**2  # the safetensors JSON header
    max_tensors: int = 4096
    max_tensor_bytes: int = 512 * 1024**2  # one tensor's data
    max_parameters: int = 256 * 1024**2  # elements the manifest's network may declare


DEFAULT_LIMITS = PackageLimits()
MAX_FILE_BYTES = DEFAULT_LIMITS.max_file_bytes
_MAX_ENTRIES = 16  # a package holds at most four files; refuse a directory stuffed with entries before lstat-ing them
_ST_DTYPES = {  # safetensors dtype -> item size
    "F64": 8, "F32": 4, "F16": 2, "BF16": 2, "I64": 8, "I32": 4, "I16": 2, "I8": 1, "U8": 1, "BOOL": 1,
    "U16": 2, "U32": 4, "U64": 8, "F8_E4M3": 1, "F8_E5M2": 1,
}  # fmt: skip
_FLOAT_DTYPES = {"F64", "F32", "F16", "BF16"}


# ----------------------------------------------------------------- file helpers


def sha256_bytes(data: bytes) -> str:
    """Lowercase hex SHA-256 of `data`."""
    return hashlib.sha256(data).hexdigest()


def sha256_file(path: str | os.PathLike[str], chunk: int = 1 << 20) -> str:
    """Lowercase hex SHA-256 of a file, streamed (for large files such as videos)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


# ----------------------------------------------------------------- safetensors header


def _header_json(head: bytes, n: int, where: str) -> dict[str, Any]:
    try:
        header = json.loads(head.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        raise SkillPackageError(f"{where}: header is not valid JSON ({exc})") from None
    if not isinstance(header, dict):
        raise SkillPackageError(f"{where}: header is not a JSON object")
    return header


def _header_length(prefix: bytes, size: int, where: str, limits: PackageLimits) -> int:
    if size < 8 or len(prefix) < 8:
        raise SkillPackageError(f"{where}: too short to be a safetensors file ({size} bytes)")
    (n,) = struct.unpack("<Q", prefix[:8])
    if n > size - 8:
        raise SkillPackageError(f"{where}: header length {n} exceeds the file")
    if n > limits.max_header_bytes:
        raise SkillPackageError(f"{where}: header length {n} exceeds the {limits.max_header_bytes}-byte limit")
    return n


def _check_header(
    header: Mapping[str, Any], body: int, where: str, limits: PackageLimits
) -> dict[str, tuple[str, tuple[int, ...]]]:
    """Check a parsed safetensors header against a data section of `body` bytes."""
    out: dict[str, tuple[str, tuple[int, ...]]] = {}
    ranges = []
    if len(header) > limits.max_tensors + 1:
        raise SkillPackageError(f"{where}: {len(header)} header entries exceeds the {limits.max_tensors}-tensor limit")
    for name, info in header.items():
        if name == "__metadata__":
            if not isinstance(info, dict) or not all(isinstance(v, str) for v in info.values()):
                raise SkillPackageError(f"{where}: __metadata__ must map strings to strings")
            continue
        if not isinstance(info, dict) or set(info) != {"dtype", "shape", "data_offsets"}:
            raise SkillPackageError(f"{where}: tensor {name!r}: entry must have dtype, shape, data_offsets")
        dtype, shape, offs = info["dtype"], info["shape"], info["data_offsets"]
        if dtype not in _ST_DTYPES:
            raise SkillPackageError(f"{where}: tensor {name!r}: unknown dtype {dtype!r}")
        if not isinstance(shape, list) or len(shape) > 8 or not all(isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in shape):
            raise SkillPackageError(f"{where}: tensor {name!r}: bad shape {shape!r}")
        if (
            not isinstance(offs, list)
            or len(offs) != 2
            or not all(isinstance(o, int) and not isinstance(o, bool) for o in offs)
            or not 0 <= offs[0] <= offs[1] <= body
        ):
            raise SkillPackageError(f"{where}: tensor {name!r}: data_offsets {offs!r} outside the data")
        count = 1
        for d in shape:
            count *= d
        nbytes = count * _ST_DTYPES[dtype]
        if nbytes > limits.max_tensor_bytes:
            raise SkillPackageError(f"{where}: tensor {name!r}: {nbytes} bytes exceeds the {limits.max_tensor_bytes}-byte tensor limit")
        if nbytes != offs[1] - offs[0]:
            raise SkillPackageError(f"{where}: tensor {name!r}: {offs[1] - offs[0]} bytes do not fit shape {shape} {dtype}")
        ranges.append((offs[0], offs[1]))
        out[name] = (dtype, tuple(shape))
    pos = 0
    for a, b in sorted(ranges):
        if a != pos:
            raise SkillPackageError(f"{where}: tensor data overlaps or has gaps at byte {a}")
        pos = b
    if pos != body:
        raise SkillPackageError(f"{where}: {body - pos} trailing bytes after the tensor data")
    return out


def parse_safetensors_header(
    data: bytes, where: str = WEIGHTS_FILE, limits: PackageLimits = DEFAULT_LIMITS
) -> dict[str, tuple[str, tuple[int, ...]]]:
    """Validate a safetensors buffer's header without torch; returns name -> (dtype, shape).

    Checks the header length, strict JSON, known dtypes, tensor count and sizes within
    `limits`, and that every tensor's byte range lies inside the buffer, matches its shape
    and that ranges tile the data exactly.
    """
    n = _header_length(data[:8], len(data), where, limits)
    return _check_header(_header_json(data[8 : 8 + n], n, where), len(data) - 8 - n, where, limits)


# ----------------------------------------------------------------- reading


@dataclass(frozen=True)
class PackageContents:
    """A verified package: its manifest, signature verdict, the exact weight bytes that were hashed, and their header."""

    path: Path
    manifest: Manifest
    weights: bytes
    tensors: dict[str, tuple[str, tuple[int, ...]]]
    signature: SignatureInfo = SignatureInfo(None, None, "unsigned")


def _list_dir(path: Path, limits: PackageLimits) -> list[str]:
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        raise SkillPackageError(f"{path}: no such skill package directory") from None
    if stat.S_ISLNK(st.st_mode):
        raise SkillPackageError(f"{path}: package directory is a symlink; refusing")
    if not stat.S_ISDIR(st.st_mode):
        raise SkillPackageError(f"{path}: not a directory (a skill package is a directory with {MANIFEST_FILE})")
    names = sorted(os.listdir(path))
    if len(names) > _MAX_ENTRIES:
        raise SkillPackageError(f"{path}: {len(names)} entries; a package holds only {[MANIFEST_FILE, SIGNATURE_FILE, *ALLOWED_FILES]}")
    total = 0
    for name in names:
        st = os.lstat(path / name)
        if stat.S_ISLNK(st.st_mode):
            raise SkillPackageError(f"{path / name}: symlinks are not allowed in a skill package")
        if not stat.S_ISREG(st.st_mode):
            raise SkillPackageError(f"{path / name}: only regular files are allowed in a skill package")
        if st.st_size > limits.max_file_bytes:
            raise SkillPackageError(f"{path / name}: {st.st_size} bytes exceeds the {limits.max_file_bytes}-byte file limit")
        total += st.st_size
    if total > limits.max_package_bytes:
        raise SkillPackageError(f"{path}: {total} bytes in all exceeds the {limits.max_package_bytes}-byte package limit")
    return names


def _open_regular(path: Path) -> Any:
    """Open a package file for reading without following a symlink (one swapped in after the listing)."""
    flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0)
    try:
        fd = os.open(path, flags)
    except FileNotFoundError:
        raise SkillPackageError(f"{path}: listed in the manifest but missing") from None
    except OSError as exc:
        raise SkillPackageError(f"{path}: cannot open ({exc.strerror})") from None
    f = os.fdopen(fd, "rb")
    if not stat.S_ISREG(os.fstat(f.fileno()).st_mode):
        f.close()
        raise SkillPackageError(f"{path}: not a regular file")
    return f


def _read_regular(path: Path, limit: int) -> bytes:
    with _open_regular(path) as f:
        data = f.read(limit + 1)
    if len(data) > limit:
        raise SkillPackageError(f"{path}: larger than the {limit}-byte limit")
    return data


def _hash_regular(path: Path, limit: int, chunk: int = 1 << 20) -> str:
    h, total = hashlib.sha256(), 0
    with _open_regular(path) as f:
        while block := f.read(chunk):
            total += len(block)
            if total > limit:
                raise SkillPackageError(f"{path}: larger than the {limit}-byte limit")
            h.update(block)
    return h.hexdigest()


def _read_weights(path: Path, manifest: Manifest, limits: PackageLimits) -> tuple[bytes, dict[str, tuple[str, tuple[int, ...]]]]:
    """Read the weights: the header first, checked against the architecture, then the data."""
    where = str(path)
    with _open_regular(path) as f:
        size = os.fstat(f.fileno()).st_size
        if size > limits.max_file_bytes:
            raise SkillPackageError(f"{path}: {size} bytes exceeds the {limits.max_file_bytes}-byte file limit")
        prefix = f.read(8)
        n = _header_length(prefix, size, where, limits)
        head = f.read(n)
        tensors = _check_header(_header_json(head, n, where), size - 8 - n, where, limits)
        _check_weights(manifest, tensors, path)  # names, shapes, dtypes against the network, before the data
        rest = f.read(size - 8 - n + 1)
    data = prefix + head + rest
    if len(data) != size:
        raise SkillPackageError(f"{path}: changed size while it was read")
    # Parse again from the very bytes that are hashed and used, so the checked header is the used one.
    if parse_safetensors_header(data, where, limits) != tensors:  # pragma: no cover - the file changed mid-read
        raise SkillPackageError(f"{path}: header changed while it was read")
    return data, tensors


def _check_network_size(manifest: Manifest, where: Path, limits: PackageLimits) -> None:
    if manifest.network is None:
        return
    from policies.networks import arch_param_shapes

    count = sum(math.prod(shape) for shape in arch_param_shapes(manifest.network).values())
    if count > limits.max_parameters:
        raise SkillPackageError(f"{where}: manifest.json: network: declares {count} parameters, over the {limits.max_parameters} limit")


def read_package(
    path: str | os.PathLike[str], *, policy: SignaturePolicy | None = None, limits: PackageLimits = DEFAULT_LIMITS
) -> PackageContents:
    """Verify a package directory and return its manifest, signature verdict and weight bytes.

    Order (see module docstring): layout -> manifest bytes and digest -> signature and
    trust (`policy`; default: a valid signature by a key you trust) -> schema -> network
    size -> weights header against the network -> SHA-256 of every listed file. Raises
    `SkillPackageError` (hash mismatches: `SkillIntegrityError` naming the file; signature
    problems: `SkillSignatureError`), `SkillTrustError` or `SkillRevokedError`.
    """
    path = Path(path)
    policy = policy or SignaturePolicy()
    names = _list_dir(path, limits)
    if MANIFEST_FILE not in names:
        raise SkillPackageError(f"{path}: no {MANIFEST_FILE} (not a skill package)")
    manifest_bytes = _read_regular(path / MANIFEST_FILE, MAX_MANIFEST_BYTES)
    try:
        raw = load_manifest_json(manifest_bytes)
    except SkillPackageError as exc:
        raise type(exc)(f"{path}: {exc}") from None
    signature_bytes = _read_regular(path / SIGNATURE_FILE, MAX_SIGNATURE_BYTES) if SIGNATURE_FILE in names else None
    signature = check_signature(raw, raw["manifest_digest"], signature_bytes, policy, str(path))
    try:
        manifest = Manifest.from_dict(raw, check_digest=False)
    except SkillPackageError as exc:
        raise type(exc)(f"{path}: {exc}") from None
    except RecursionError:
        raise SkillPackageError(f"{path}: manifest.json: top level: nesting too deep") from None
    unlisted = [n for n in names if n not in (MANIFEST_FILE, SIGNATURE_FILE) and n not in manifest.files]
    if unlisted:
        raise SkillPackageError(
            f"{path}: file(s) {unlisted} not listed in manifest.json; a package may hold only "
            f"{[MANIFEST_FILE, SIGNATURE_FILE, *ALLOWED_FILES]} with their hashes listed"
        )
    _check_network_size(manifest, path, limits)
    weights, tensors = b"", {}
    for fname, expected in sorted(manifest.files.items()):
        fpath = path / fname
        if fname not in names:
            raise SkillPackageError(f"{fpath}: listed in the manifest but missing")
        if fname == WEIGHTS_FILE:
            weights, tensors = _read_weights(fpath, manifest, limits)
            actual = sha256_bytes(weights)
        else:
            actual = _hash_regular(fpath, limits.max_file_bytes)
        if actual != expected:
            raise SkillIntegrityError(
                f"{fpath}: SHA-256 mismatch (manifest {expected[:16]}..., file {actual[:16]}...): "
                f"{fname} was changed or corrupted"
            )
    return PackageContents(path=path, manifest=manifest, weights=weights, tensors=tensors, signature=signature)


def _check_weights(manifest: Manifest, tensors: Mapping[str, tuple[str, tuple[int, ...]]], where: Path) -> None:
    if manifest.network is None:
        if tensors:
            raise SkillPackageError(f"{where}: a {manifest.kind} skill has no network; weights must be empty")
        return
    from policies.networks import arch_param_shapes

    expected = arch_param_shapes(manifest.network)
    missing = sorted(set(expected) - set(tensors))
    unexpected = sorted(set(tensors) - set(expected))
    if missing or unexpected:
        raise SkillPackageError(f"{where}: tensors do not match the network: missing {missing[:6]}, unexpected {unexpected[:6]}")
    for name, shape in expected.items():
        dtype, got = tensors[name]
        if got != shape:
            raise SkillPackageError(f"{where}: tensor {name!r} has shape {list(got)}, network needs {list(shape)}")
        if dtype not in _FLOAT_DTYPES:
            raise SkillPackageError(f"{where}: tensor {name!r} has dtype {dtype}, expected a float dtype")


def verify_package(path: str | os.PathLike[str], *, policy: SignaturePolicy | None = None) -> Manifest:
    """Fully verify a package (layout, signature, manifest, hashes, weights header) and return its manifest."""
    return read_package(path, policy=policy).manifest


# ----------------------------------------------------------------- writing


def _key(signing_key: SigningKey | None, sign: bool) -> SigningKey | None:
    if not sign:
        return None
    return signing_key if signing_key is not None else Keyring().default_key(create=True)


def _self_check(key: SigningKey | None) -> SignaturePolicy:
    """What a writer checks its own output against: exactly its key (trusted or not), or unsigned."""
    return SignaturePolicy(allow_unsigned=key is None, allow_untrusted=True, expected_key_id=None if key is None else key.key_id)


def _write_sealed(staging: Path, manifest: Manifest, key: SigningKey | None) -> Manifest:
    """Seal `manifest` (signer named), write it and its signature into `staging`, and return it as parsed."""
    sealed = replace(manifest, signer=None if key is None else signer_of(key))
    data = sealed.to_bytes()
    # Validate through the same parser a reader uses, so we never write what we would refuse.
    sealed = parse_manifest_bytes(data)
    write_new_file(staging / MANIFEST_FILE, data)
    if key is not None:
        write_new_file(staging / SIGNATURE_FILE, sign_digest(key, sealed.source_digest))  # type: ignore[arg-type]
    return sealed


def write_package(
    out_dir: str | os.PathLike[str],
    manifest: Manifest,
    tensors: Mapping[str, Any] | None = None,
    *,
    weights_bytes: bytes | None = None,
    eval_video: str | os.PathLike[str] | None = None,
    overwrite: bool = False,
    signing_key: SigningKey | None = None,
    sign: bool = True,
) -> Manifest:
    """Write a signed package directory atomically and return the sealed manifest (with file hashes).

    `tensors` (name -> torch tensor) are saved as safetensors; or pass ready `weights_bytes`.
    With neither, an empty safetensors file is written (scripted skills). `eval_video` is
    copied in as `eval.mp4`. The manifest is signed by `signing_key`, by default the user's
    key (`Keyring().default_key()`, generated on first use); `sign=False` writes an unsigned
    package (which readers refuse unless told otherwise). The package is built in a
    temporary sibling directory, read back and verified, then renamed into place; an
    existing `out_dir` is refused unless `overwrite`.
    """
    out = Path(out_dir)
    if out.exists() and not overwrite:
        raise SkillPackageError(f"{out}: already exists (pass overwrite=True to replace it)")
    key = _key(signing_key, sign)
    if weights_bytes is None:
        from safetensors.torch import save

        weights_bytes = save({k: v.detach().cpu().contiguous() for k, v in (tensors or {}).items()})
    with staged_dir(out) as staging:
        files = {WEIGHTS_FILE: sha256_bytes(weights_bytes)}
        write_new_file(staging / WEIGHTS_FILE, weights_bytes)
        if eval_video is not None:
            shutil.copyfile(eval_video, staging / "eval.mp4")
            fsync_file(staging / "eval.mp4")
            files["eval.mp4"] = sha256_file(staging / "eval.mp4")
        sealed = _write_sealed(staging, replace(manifest, files=files), key)
        read_package(staging, policy=_self_check(key))
    return sealed


def stage_resigned(
    source: str | os.PathLike[str], manifest: Manifest, staging: str | os.PathLike[str], key: SigningKey | None,
    policy: SignaturePolicy | None = None,
) -> Manifest:
    """Write into the empty folder `staging` a copy of the verified package `source` with `manifest`
    (same name, version and files) sealed and signed by `key`; returns the sealed manifest.

    The copy is verified before this returns; the caller renames it into place (the library
    through its journal, `rewrite_manifest` through `common.atomic.swap_in_dir`).
    """
    source, staging = Path(source), Path(staging)
    current = read_package(source, policy=policy).manifest
    if (manifest.name, manifest.version) != (current.name, current.version):
        raise SkillPackageError(f"{source}: holds {current.ref}; a rewritten manifest must keep it, got {manifest.ref}")
    for fname in sorted(current.files):
        shutil.copyfile(source / fname, staging / fname)
        fsync_file(staging / fname)
    sealed = _write_sealed(staging, replace(manifest, files=dict(current.files)), key)
    read_package(staging, policy=_self_check(key))
    return sealed


def rewrite_manifest(
    path: str | os.PathLike[str], manifest: Manifest, *, policy: SignaturePolicy | None = None,
    signing_key: SigningKey | None = None, sign: bool = True,
) -> Manifest:
    """Replace a verified package's manifest atomically (files unchanged, hashes re-checked), re-signed.

    Used to store descriptors: the new manifest keeps the recorded file hashes, names the
    signing key (`signing_key`, default the user's) and is sealed and signed; the package
    folder is rebuilt beside the old one and swapped in, so manifest and signature change
    together. `policy` is what the current package must pass (default: trusted signer).
    """
    path = Path(path)
    key = _key(signing_key, sign)
    with staged_dir(path) as staging:
        sealed = stage_resigned(path, manifest, staging, key, policy)
    return sealed


def sign_package(path: str | os.PathLike[str], signing_key: SigningKey | None = None) -> Manifest:
    """Sign (or re-sign) a package in place with `signing_key` (default: the user's key).

    For an author's own packages, e.g. ones written before packages were signed: the
    current package must be intact (hashes, digest) but may be unsigned or signed by anyone
    not revoked. Signing vouches for it: do this only for packages you made or checked.
    """
    from skill_library.signing import PERMISSIVE

    current = read_package(path, policy=PERMISSIVE).manifest
    return rewrite_manifest(path, current, policy=PERMISSIVE, signing_key=signing_key)
