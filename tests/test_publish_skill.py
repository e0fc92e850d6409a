"""publish_skill: the one path from a trained network to a library skill (save, verify, descriptors,
manifest, library), and publish_run's refusal of an unfinished run."""

from __future__ import annotations

import pytest
import torch

import envs
from policies.networks import build_network
from skill_library.errors import SkillPackageError
from skill_library.publish import DescriptorSettings, publish_run, publish_skill
from skill_library.registry import SkillLibrary
from skill_library.skill import load_skill

ENV_ID = "skillstack/PandaReach-v0"


@pytest.fixture()
def env():
    e = envs.make(ENV_ID)
    yield e
    e.close()


def _network(env, hidden=(16,)):
    """A small seeded MLP over the env's observation + desired_goal (what observation_spec_from_env reads)."""
    in_dim = sum(int(env.observation_space[k].shape[0]) for k in ("observation", "desired_goal"))
    arch = {"type": "mlp", "in_dim": in_dim, "out_dim": int(env.action_space.shape[0]), "hidden": list(hidden),
            "activation": "relu", "output_activation": "tanh"}
    torch.manual_seed(0)
    return arch, build_network(arch).state_dict()


def test_publish_skill_saves_verifies_evaluates_and_adds_to_the_library(env, tmp_path) -> None:
    arch, weights = _network(env)
    lib = SkillLibrary(tmp_path / "lib")
    published = publish_skill(
        tmp_path / "pkg", name="reach_test", version="1.2.0", kind="rl", env=env, arch=arch, state_dict=weights,
        tags=("test",), descriptors=DescriptorSettings(grid=1, episodes_per_cell=1, seed=3), library=lib,
    )
    assert published.ref == "reach_test@1.2.0"
    assert published.entry is not None and published.entry.path.is_dir()
    assert published.descriptors is not None and published.descriptors["totals"]["episodes"] == 1
    assert 0.0 <= published.success_rate <= 1.0
    # The package in the run folder and the library copy both carry the descriptors in a sealed manifest.
    assert load_skill(tmp_path / "pkg").manifest.descriptors == published.descriptors
    installed = lib.load("reach_test@1.2.0")
    assert installed.manifest.descriptors == published.descriptors
    assert installed.manifest.tags == ("test",)


def test_publish_skill_without_descriptors_or_library(env, tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("SKILLSTACK_LIBRARY", str(tmp_path / "default-lib"))
    arch, weights = _network(env)
    published = publish_skill(tmp_path / "pkg", name="quiet", version="0.1.0", kind="bc", env=env, arch=arch,
                              state_dict=weights, add_to_library=False)
    assert published.entry is None and published.descriptors is None and published.success_rate is None
    assert load_skill(tmp_path / "pkg").manifest.kind == "bc"
    assert not (tmp_path / "default-lib").exists()  # the default library was not touched


def test_publish_skill_replaces_the_same_version(env, tmp_path) -> None:
    """Publishing is repeatable: a retrained skill of the same name@version replaces the old one."""
    lib = SkillLibrary(tmp_path / "lib")
    for hidden in ((8,), (12,)):
        arch, weights = _network(env, hidden)
        publish_skill(tmp_path / "pkg", name="again", version="0.1.0", kind="rl", env=env, arch=arch,
                      state_dict=weights, library=lib)
    assert lib.load("again").manifest.network["hidden"] == [12]


def test_publish_skill_refuses_weights_that_do_not_match_the_arch_and_adds_nothing(env, tmp_path) -> None:
    arch, weights = _network(env)
    wrong = {**arch, "hidden": [32]}  # the manifest's arch no longer matches the tensors
    lib = SkillLibrary(tmp_path / "lib")
    with pytest.raises(SkillPackageError):
        publish_skill(tmp_path / "pkg", name="broken", version="0.1.0", kind="rl", env=env, arch=wrong,
                      state_dict=weights, library=lib)
    assert lib.entries() == []


def test_publish_run_needs_a_finished_run(tmp_path) -> None:
    (tmp_path / "run").mkdir()
    with pytest.raises(FileNotFoundError, match="summary.json"):
        publish_run(tmp_path / "run")
