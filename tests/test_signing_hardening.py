"""The package reader's limits: package, file and tensor sizes, tensor counts, declared network
size, the weights header checked against the architecture before the data is read, no symlinks,
no entries outside the allowed files; each a clear error."""

from __future__ import annotations

import json
import os
import shutil
import struct
from pathlib import Path

import pytest

from skill_library.errors import SkillPackageError, SkillSignatureError
from skill_library.package import PackageLimits, parse_safetensors_header, read_package
from skill_library.signing import SIGNATURE_FILE
from skill_library.testing import make_random_skill, reseal


@pytest.fixture(scope="module")
def template(tmp_path_factory):
    root = tmp_path_factory.mktemp("hard")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SKILLSTACK_KEYS", str(root / "keys"))
        make_random_skill(root / "pkg", hidden=(16, 16), eval_video_bytes=b"\x00" * 2048)
        yield root


@pytest.fixture
def pkg(template, tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv("SKILLSTACK_KEYS", str(template / "keys"))
    return Path(shutil.copytree(template / "pkg", tmp_path / "pkg"))


def _weights_with_header(header: dict, data: bytes) -> bytes:
    raw = json.dumps(header).encode()
    return struct.pack("<Q", len(raw)) + raw + data


def _install_weights(pkg: Path, weights: bytes) -> None:
    """Put `weights` in the package and re-sign the manifest with their hash (an author shipping them)."""
    import hashlib

    (pkg / "weights.safetensors").write_bytes(weights)
    reseal(pkg, lambda d: d["files"].update({"weights.safetensors": hashlib.sha256(weights).hexdigest()}))


@pytest.mark.parametrize(
    "limits,match",
    [
        (PackageLimits(max_package_bytes=4000), "in all exceeds the 4000-byte package limit"),
        (PackageLimits(max_file_bytes=2000), "exceeds the 2000-byte file limit"),
        (PackageLimits(max_tensor_bytes=256), "exceeds the 256-byte tensor limit"),
        (PackageLimits(max_tensors=3), "exceeds the 3-tensor limit"),
        (PackageLimits(max_parameters=100), "declares .* parameters, over the 100 limit"),
        (PackageLimits(max_header_bytes=64), "exceeds the 64-byte limit"),
    ],
)
def test_size_limits_are_clear_errors(pkg, limits, match):
    read_package(pkg)  # within the default limits
    with pytest.raises(SkillPackageError, match=match):
        read_package(pkg, limits=limits)


def test_header_is_checked_against_the_network_before_the_data(pkg):
    m = read_package(pkg).manifest
    from policies.networks import arch_param_shapes

    shapes = arch_param_shapes(m.network)
    # a header claiming a 1 GB tensor for layer 0, with no data behind it: refused from the header alone
    # (the file is a few hundred bytes: nothing the header claims is ever allocated)
    big = {sorted(shapes)[0]: {"dtype": "F32", "shape": [16384, 16384], "data_offsets": [0, 16384 * 16384 * 4]}}
    _install_weights(pkg, _weights_with_header(big, b""))
    with pytest.raises(SkillPackageError, match="outside the data"):
        read_package(pkg)
    # right sizes, wrong shape for the architecture (transposed): refused naming the tensor
    _install_weights(pkg, _weights(shapes, "F32", transpose=True))
    with pytest.raises(SkillPackageError, match="has shape .* network needs"):
        read_package(pkg)
    # integer weights of the right shapes are refused before a tensor is built
    _install_weights(pkg, _weights(shapes, "I32"))
    with pytest.raises(SkillPackageError, match="expected a float dtype"):
        read_package(pkg)


def _weights(shapes: dict, dtype: str, transpose: bool = False) -> bytes:
    """A safetensors buffer of zeros with these tensor shapes (optionally transposed), 4-byte items."""
    offs, body, hdr = 0, b"", {}
    for name, s in sorted(shapes.items()):
        n = 4
        for d in s:
            n *= d
        shape = list(s)[::-1] if transpose else list(s)
        hdr[name] = {"dtype": dtype, "shape": shape, "data_offsets": [offs, offs + n]}
        body += b"\x00" * n
        offs += n
    return _weights_with_header(hdr, body)


def test_no_symlinks_subdirectories_or_stray_entries(pkg, tmp_path):
    link = tmp_path / "link"
    os.symlink(pkg, link)
    with pytest.raises(SkillPackageError, match="package directory is a symlink"):
        read_package(link)
    (pkg / "sub").mkdir()
    with pytest.raises(SkillPackageError, match="only regular files"):
        read_package(pkg)
    (pkg / "sub").rmdir()
    os.symlink("/etc/passwd", pkg / (SIGNATURE_FILE + ".bak"))
    with pytest.raises(SkillPackageError, match="symlinks are not allowed"):
        read_package(pkg)
    os.unlink(pkg / (SIGNATURE_FILE + ".bak"))
    for i in range(20):
        (pkg / f"junk{i}").write_bytes(b"")
    with pytest.raises(SkillPackageError, match="20|entries"):
        read_package(pkg)


def test_manifest_cannot_name_paths_outside_the_package(pkg):
    reseal(pkg, lambda d: d["files"].update({"../../etc/passwd": "0" * 64}))
    with pytest.raises(SkillPackageError, match="is not allowed in a package"):
        read_package(pkg)


def test_signature_file_is_bounded_and_strict(pkg):
    (pkg / SIGNATURE_FILE).write_bytes(b" " * 5000)
    with pytest.raises(SkillPackageError, match="larger than the 4096-byte limit"):
        read_package(pkg)
    (pkg / SIGNATURE_FILE).write_bytes(b'{"format": "skillstack-signature"}')
    with pytest.raises(SkillSignatureError, match="expected exactly the fields"):
        read_package(pkg)


def test_bounded_header_parser_on_raw_buffers():
    with pytest.raises(SkillPackageError, match="too short"):
        parse_safetensors_header(b"\x01")
    with pytest.raises(SkillPackageError, match="exceeds the file"):
        parse_safetensors_header(struct.pack("<Q", 10**9) + b"{}")
    many = {f"t{i}": {"dtype": "F32", "shape": [0], "data_offsets": [0, 0]} for i in range(10)}
    with pytest.raises(SkillPackageError, match="exceeds the 5-tensor limit"):
        parse_safetensors_header(_weights_with_header(many, b""), limits=PackageLimits(max_tensors=5))
