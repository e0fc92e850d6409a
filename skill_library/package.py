"""Skill package directories: safe reading, verification and atomic writing.

Layout::

    <package>/
      manifest.json          canonical JSON, sealed by its manifest_digest
      weights.safetensors    network tensors (an empty safetensors file for scripted skills)
      eval.mp4               optional evaluation video

Reading (`read_package`) refuses anything it cannot vouch for before using it:
symlinks, sub-directories, files not listed in the manifest, listed files that are
missing, a manifest that is not canonical or fails its digest or schema, and any file
whose SHA-256 differs from the manifest (the error names the file). The weights are
hashed and parsed from the *same bytes* (no re-read between check and use), and parsed
as safetensors only; nothing on this path unpickles.

Writing (`write_package`) builds the package in a temporary sibling directory, fsyncs
every file, then renames it into place, so a crash never leaves a half-written package.
"""

from __future__ import annotations

import hashlib
import json
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
from skill_library.manifest import ALLOWED_FILES, WEIGHTS_FILE, Manifest, parse_manifest_bytes

__all__ = [
    "MANIFEST_FILE",
    "MAX_FILE_BYTES",
    "PackageContents",
    "atomic_write_bytes",
    "fsync_dir",
    "parse_safetensors_header",
    "read_package",
    "sha256_bytes",
    "sha256_file",
    "swap_in_dir",
    "verify_package",
    "write_new_file",
    "write_package",
]

MANIFEST_FILE = "manifest.json"
MAX_FILE_BYTES = 4 * 1024**3  # refuse absurd files before reading them
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


def parse_safetensors_header(data: bytes, where: str = WEIGHTS_FILE) -> dict[str, tuple[str, tuple[int, ...]]]:
    """Validate a safetensors buffer's header without torch; returns name -> (dtype, shape).

    Checks the header length, strict JSON, known dtypes, and that every tensor's byte
    range lies inside the buffer, matches its shape and that ranges tile the data exactly.
    """
    if len(data) < 8:
        raise SkillPackageError(f"{where}: too short to be a safetensors file ({len(data)} bytes)")
    (n,) = struct.unpack("<Q", data[:8])
    if n > len(data) - 8 or n > 100 * 1024 * 1024:
        raise SkillPackageError(f"{where}: header length {n} exceeds the file")
    try:
        header = json.loads(data[8 : 8 + n].decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        raise SkillPackageError(f"{where}: header is not valid JSON ({exc})") from None
    if not isinstance(header, dict):
        raise SkillPackageError(f"{where}: header is not a JSON object")
    body = len(data) - 8 - n
    out: dict[str, tuple[str, tuple[int, ...]]] = {}
    ranges = []
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
        if not isinstance(shape, list) or not all(isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in shape):
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
        if count * _ST_DTYPES[dtype] != offs[1] - offs[0]:
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


# ----------------------------------------------------------------- reading


@dataclass(frozen=True)
class PackageContents:
    """A verified package: its manifest, the exact weight bytes that were hashed, and their header."""

    path: Path
    manifest: Manifest
    weights: bytes
    tensors: dict[str, tuple[str, tuple[int, ...]]]


def _list_dir(path: Path) -> list[str]:
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        raise SkillPackageError(f"{path}: no such skill package directory") from None
    if stat.S_ISLNK(st.st_mode):
        raise SkillPackageError(f"{path}: package directory is a symlink; refusing")
    if not stat.S_ISDIR(st.st_mode):
        raise SkillPackageError(f"{path}: not a directory (a skill package is a directory with {MANIFEST_FILE})")
    names = sorted(os.listdir(path))
    for name in names:
        st = os.lstat(path / name)
        if stat.S_ISLNK(st.st_mode):
            raise SkillPackageError(f"{path / name}: symlinks are not allowed in a skill package")
        if not stat.S_ISREG(st.st_mode):
            raise SkillPackageError(f"{path / name}: only regular files are allowed in a skill package")
        if st.st_size > MAX_FILE_BYTES:
            raise SkillPackageError(f"{path / name}: {st.st_size} bytes exceeds the {MAX_FILE_BYTES}-byte limit")
    return names


def _read_regular(path: Path, limit: int) -> bytes:
    flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0)
    try:
        fd = os.open(path, flags)
    except FileNotFoundError:
        raise SkillPackageError(f"{path}: listed in the manifest but missing") from None
    except OSError as exc:
        raise SkillPackageError(f"{path}: cannot open ({exc.strerror})") from None
    with os.fdopen(fd, "rb") as f:
        if not stat.S_ISREG(os.fstat(f.fileno()).st_mode):
            raise SkillPackageError(f"{path}: not a regular file")
        data = f.read(limit + 1)
    if len(data) > limit:
        raise SkillPackageError(f"{path}: larger than the {limit}-byte limit")
    return data


def read_package(path: str | os.PathLike[str]) -> PackageContents:
    """Verify a package directory and return its manifest and weight bytes.

    Order: layout (regular files only, nothing unlisted) -> manifest (canonical, digest,
    schema) -> SHA-256 of every listed file -> safetensors header of the weights against
    the network architecture. Raises `SkillPackageError`; hash mismatches raise
    `SkillIntegrityError` naming the file.
    """
    path = Path(path)
    names = _list_dir(path)
    if MANIFEST_FILE not in names:
        raise SkillPackageError(f"{path}: no {MANIFEST_FILE} (not a skill package)")
    manifest_bytes = _read_regular(path / MANIFEST_FILE, 32 * 1024 * 1024)
    try:
        manifest = parse_manifest_bytes(manifest_bytes)
    except SkillPackageError as exc:
        raise type(exc)(f"{path}: {exc}") from None
    unlisted = [n for n in names if n != MANIFEST_FILE and n not in manifest.files]
    if unlisted:
        raise SkillPackageError(
            f"{path}: file(s) {unlisted} not listed in manifest.json; a package may hold only "
            f"{[MANIFEST_FILE, *ALLOWED_FILES]} with their hashes listed"
        )
    weights = b""
    for fname, expected in sorted(manifest.files.items()):
        fpath = path / fname
        if fname == WEIGHTS_FILE:
            weights = _read_regular(fpath, MAX_FILE_BYTES)
            actual = sha256_bytes(weights)
        else:
            if fname not in names:
                raise SkillPackageError(f"{fpath}: listed in the manifest but missing")
            actual = sha256_file(fpath)
        if actual != expected:
            raise SkillIntegrityError(
                f"{fpath}: SHA-256 mismatch (manifest {expected[:16]}..., file {actual[:16]}...): "
                f"{fname} was changed or corrupted"
            )
    tensors = parse_safetensors_header(weights, str(path / WEIGHTS_FILE))
    _check_weights(manifest, tensors, path / WEIGHTS_FILE)
    return PackageContents(path=path, manifest=manifest, weights=weights, tensors=tensors)


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


def verify_package(path: str | os.PathLike[str]) -> Manifest:
    """Fully verify a package (layout, manifest, hashes, weights header) and return its manifest."""
    return read_package(path).manifest


# ----------------------------------------------------------------- writing


def write_package(
    out_dir: str | os.PathLike[str],
    manifest: Manifest,
    tensors: Mapping[str, Any] | None = None,
    *,
    weights_bytes: bytes | None = None,
    eval_video: str | os.PathLike[str] | None = None,
    overwrite: bool = False,
) -> Manifest:
    """Write a package directory atomically and return the sealed manifest (with file hashes).

    `tensors` (name -> torch tensor) are saved as safetensors; or pass ready `weights_bytes`.
    With neither, an empty safetensors file is written (scripted skills). `eval_video` is
    copied in as `eval.mp4`. The package is built in a temporary sibling directory and
    renamed into place; an existing `out_dir` is refused unless `overwrite`.
    The result is read back and verified before it is moved into place.
    """
    out = Path(out_dir)
    if out.exists() and not overwrite:
        raise SkillPackageError(f"{out}: already exists (pass overwrite=True to replace it)")
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
        sealed = replace(manifest, files=files)
        # Validate through the same parser a reader uses, so we never write what we would refuse.
        data = sealed.to_bytes()
        sealed = parse_manifest_bytes(data)
        write_new_file(staging / MANIFEST_FILE, data)
        read_package(staging)
    return sealed


def rewrite_manifest(
    path: str | os.PathLike[str], manifest: Manifest, tmp_dir: str | os.PathLike[str] | None = None
) -> Manifest:
    """Replace a verified package's manifest atomically (files unchanged, hashes re-checked).

    Used to store descriptors: the new manifest keeps the recorded file hashes, is sealed
    with a new digest, and replaces `manifest.json` by an fsynced temp file + os.replace.
    """
    path = Path(path)
    current = read_package(path).manifest
    sealed = replace(manifest, files=dict(current.files))
    data = sealed.to_bytes()
    sealed = parse_manifest_bytes(data)
    # Temp file outside the package dir (default: its parent; the library passes its .tmp/):
    # a crash must not leave an unlisted file inside the package.
    atomic_write_bytes(path / MANIFEST_FILE, data, tmp_dir=tmp_dir or path.parent)
    return sealed
