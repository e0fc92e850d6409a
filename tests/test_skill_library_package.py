"""Skill packages: round trip, tamper refusal, layout rules, schema errors, callable behaviour."""

from __future__ import annotations

import json
import os
import shutil
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

import envs
from skill_library.errors import SkillIntegrityError, SkillLibraryError, SkillNotBoundError, SkillPackageError
from skill_library.manifest import canonical_bytes
from skill_library.package import read_package, verify_package
from skill_library.skill import NetworkSkill, ScriptedSkill, load_skill
from skill_library.testing import make_random_skill, reseal


@pytest.fixture(scope="module")
def template(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("tpl") / "pkg"
    make_random_skill(out, hidden=(16, 16), seed=3, eval_video_bytes=b"\x00\x00\x00\x18ftypmp42 not really a video")
    return out


@pytest.fixture
def pkg(template, tmp_path) -> Path:
    dst = tmp_path / "pkg"
    shutil.copytree(template, dst)
    return dst


def _raw_reference(skill: NetworkSkill, obs: dict) -> np.ndarray:
    """Independent re-implementation of the skill's forward path from the manifest + weights file."""
    from safetensors.torch import load_file

    from policies.networks import build_network

    m = skill.manifest
    net = build_network(m.network)
    net.load_state_dict(load_file(str(skill.path / "weights.safetensors")))
    parts = []
    for k in m.observation.keys:
        x = np.asarray(obs[k.name], np.float64).reshape(-1)
        parts.append((x - np.asarray(k.mean)) / np.asarray(k.std))
    x = np.clip(np.concatenate(parts), -m.observation.clip, m.observation.clip)
    with torch.no_grad():
        y = net(torch.as_tensor(x, dtype=torch.float32)[None]).numpy()[0]
    lo, hi = np.asarray(m.action.low), np.asarray(m.action.high)
    return np.clip(lo + (y + 1) * 0.5 * (hi - lo), lo, hi)


def test_round_trip_same_actions(pkg):
    skill = load_skill(pkg)
    assert isinstance(skill, NetworkSkill) and skill.is_learned and skill.ref == "random_push@0.1.0"
    env = envs.make("skillstack/PandaPush-v0")
    obs, _ = env.reset(seed=0)
    batch, flats = [], []
    for _ in range(6):
        a = skill(obs)
        assert a.shape == (4,) and a.dtype == np.float32
        np.testing.assert_allclose(a, _raw_reference(skill, obs), atol=1e-5)
        assert np.array_equal(a, skill(obs)), "deterministic by default"
        batch.append(obs)
        flats.append(np.concatenate([obs["observation"], obs["desired_goal"]]))
        obs, *_ = env.step(a)
    # batched dict, batched flat array and single flat array give the same actions
    stacked = {k: np.stack([o[k] for o in batch]) for k in ("observation", "desired_goal")}
    single = np.stack([skill(o) for o in batch])
    np.testing.assert_allclose(skill(stacked), single, atol=1e-6)
    np.testing.assert_allclose(skill(np.stack(flats)), single, atol=1e-6)
    np.testing.assert_allclose(skill(flats[0]), single[0], atol=1e-6)
    # a reloaded copy acts identically
    again = load_skill(pkg)
    np.testing.assert_array_equal(again(stacked), skill(stacked))
    # exploration noise only when asked, reproducible by seed
    skill.seed(7)
    n1 = skill(obs, deterministic=False)
    skill.seed(7)
    assert np.array_equal(n1, skill(obs, deterministic=False)) and not np.array_equal(n1, skill(obs))


def test_bad_observations_are_clear_errors(pkg):
    skill = load_skill(pkg)
    with pytest.raises(SkillLibraryError, match="lacks key 'desired_goal'"):
        skill({"observation": np.zeros(31)})
    with pytest.raises(SkillLibraryError, match="flat observation has shape"):
        skill(np.zeros(5))


def test_cuda_request_falls_back_to_cpu_when_unavailable(pkg):
    if torch.cuda.is_available():
        skill = load_skill(pkg, device="cuda")
        assert skill.device.startswith("cuda")
        obs = {"observation": np.zeros(31), "desired_goal": np.zeros(3)}
        np.testing.assert_allclose(skill(obs), load_skill(pkg)(obs), atol=1e-5)
    else:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            skill = load_skill(pkg, device="cuda")
        assert skill.device == "cpu" and any("CUDA is not available" in str(w.message) for w in caught)
    with pytest.raises(SkillLibraryError, match="unknown device"):
        load_skill(pkg, device="tpu")


@pytest.mark.parametrize("fname", ["manifest.json", "weights.safetensors", "eval.mp4"])
def test_tampering_any_byte_of_any_file_is_refused_naming_it(template, tmp_path, fname):
    size = (template / fname).stat().st_size
    for pos in sorted({0, size // 3, size // 2, size - 2, size - 1}):
        pkg = tmp_path / f"p{pos}"
        shutil.copytree(template, pkg)
        data = bytearray((pkg / fname).read_bytes())
        data[pos] ^= 0x01
        (pkg / fname).write_bytes(bytes(data))
        with pytest.raises(SkillPackageError) as info:
            load_skill(pkg)
        assert fname in str(info.value), str(info.value)


def test_weights_swap_with_valid_safetensors_is_refused(pkg):
    from safetensors.torch import load_file, save_file

    sd = load_file(str(pkg / "weights.safetensors"))
    sd["layers.0.bias"] = sd["layers.0.bias"] + 1.0
    save_file(sd, str(pkg / "weights.safetensors"))
    with pytest.raises(SkillIntegrityError, match="weights.safetensors.*SHA-256 mismatch"):
        verify_package(pkg)


def test_layout_rules(pkg, tmp_path):
    (pkg / "extra.py").write_text("import os; os.system('echo pwned')\n")
    with pytest.raises(SkillPackageError, match=r"\['extra.py'\] not listed"):
        load_skill(pkg)
    (pkg / "extra.py").unlink()
    (pkg / "eval.mp4").unlink()
    with pytest.raises(SkillPackageError, match="eval.mp4: listed in the manifest but missing"):
        load_skill(pkg)
    os.symlink(tmp_path, pkg / "eval.mp4")
    with pytest.raises(SkillPackageError, match="symlinks are not allowed"):
        load_skill(pkg)
    with pytest.raises(SkillPackageError, match="no such skill package"):
        load_skill(tmp_path / "nope")


def _reseal(pkg: Path, mutate) -> None:
    """Edit the manifest like an author would (then re-seal the digest and canonical form, and re-sign)."""
    reseal(pkg, mutate)


@pytest.mark.parametrize(
    "mutate,match",
    [
        (lambda d: d["network"].update(type="transformer"), "network.type: unknown architecture 'transformer'; valid: mlp"),
        (lambda d: d.update(kind="magic"), r"kind: unknown kind 'magic'; valid: \['rl', 'bc', 'scripted'\]"),
        (lambda d: d.update(version="1.0"), "version: '1.0' is not a semantic version"),
        (lambda d: d.update(name="../evil"), "name: '../evil' is not a valid skill name"),
        (lambda d: d.pop("provenance"), r"missing field\(s\) \['provenance'\]"),
        (lambda d: d.update(preconditions=["flying(red)"]), "unknown predicate 'flying'"),
        (lambda d: d["files"].update({"run.sh": "0" * 64}), "file 'run.sh' is not allowed"),
        (lambda d: d["network"].update(in_dim=7), "network.in_dim: 7 != observation size 34"),
        (lambda d: d.update(controller={"name": "expert_phases", "params": {}}), "controller must be null"),
        (lambda d: d["observation"]["keys"][0].update(std=[0.0] * 31), "values must be > 0"),
    ],
)
def test_schema_errors_name_the_field(pkg, mutate, match):
    _reseal(pkg, mutate)
    with pytest.raises(SkillPackageError, match=match):
        load_skill(pkg)


def test_manifest_hand_edit_without_reseal_is_refused(pkg):
    original = json.loads((pkg / "manifest.json").read_text())
    d = dict(original, description="harmless looking edit")
    (pkg / "manifest.json").write_bytes(canonical_bytes(d))
    with pytest.raises(SkillIntegrityError, match="manifest.json: content does not match manifest_digest"):
        read_package(pkg)
    (pkg / "manifest.json").write_text(json.dumps(original))  # same content, not the canonical bytes
    with pytest.raises(SkillIntegrityError, match="manifest.json: bytes differ from the canonical form"):
        read_package(pkg)


def test_scripted_skill_needs_bind_and_runs_its_phases(tmp_path):
    from skill_library.authoring import save_scripted_skill

    env = envs.make("skillstack/PandaPickPlace-v0")
    save_scripted_skill(
        tmp_path / "g", name="grasp_red", version="0.1.0", env=env, controller="expert_phases",
        params={"task": "PandaPickPlace", "phases": ["reach", "grasp"], "object": "red"}, effects=["holding(red)"],
    )  # fmt: skip
    skill = load_skill(tmp_path / "g")
    assert isinstance(skill, ScriptedSkill) and not skill.is_learned
    assert (tmp_path / "g" / "weights.safetensors").stat().st_size <= 16
    obs, _ = env.reset(seed=2)
    with pytest.raises(SkillNotBoundError, match="skill.bind"):
        skill(obs)
    with pytest.raises(SkillLibraryError, match="drives task PandaPickPlace"):
        skill.bind(envs.make("skillstack/PandaPush-v0"))
    skill.bind(env)
    skill.reset()
    steps = 0
    while not skill.done and steps < 60:
        obs, *_ = env.step(skill(obs))
        steps += 1
    assert skill.done and skill.phase == "lift" and skill.effects_hold(env.unwrapped.scene_state())
    with pytest.raises(SkillPackageError, match="unknown scripted controller 'os.system'"):
        from skill_library.scripted import validate_controller

        validate_controller("os.system", {})
