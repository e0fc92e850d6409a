"""Helpers for tests and examples: small random-weight network skills built in a fraction of a second.

Other layers' tests (the hierarchical controller, the ROS bridge) can use these to get
a real, verifiable `rl` skill package without training anything.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from skill_library.manifest import Manifest

if TYPE_CHECKING:
    from skill_library.keyring import SigningKey

__all__ = ["make_random_skill", "reseal"]


def make_random_skill(
    out_dir: str | os.PathLike[str],
    *,
    name: str = "random_push",
    version: str = "0.1.0",
    env_id: str = "skillstack/PandaPush-v0",
    hidden: Sequence[int] = (16, 16),
    seed: int = 0,
    normalise: bool = True,
    kind: str = "rl",
    tags: Sequence[str] = ("test",),
    preconditions: Sequence[str] = (),
    effects: Sequence[str] = (),
    eval_video_bytes: bytes | None = None,
    env: Any = None,
) -> Manifest:
    """Package an untrained MLP (seeded weights, optional normalisation stats) for `env_id`.

    Input keys: observation + desired_goal; output: the env's action (tanh, unit range).
    `eval_video_bytes` adds an `eval.mp4` with those bytes (for tamper tests).
    """
    import tempfile

    import numpy as np
    import torch

    import envs
    from policies.networks import build_network
    from skill_library.authoring import new_provenance, observation_spec_from_env, save_network_skill

    own_env = env is None
    env = env or envs.make(env_id)
    try:
        rng = np.random.default_rng(seed)
        keys = ("observation", "desired_goal")
        sizes = {k: int(np.prod(env.observation_space[k].shape)) for k in keys}
        mean = {k: rng.normal(0.0, 0.1, sizes[k]) for k in keys} if normalise else None
        std = {k: rng.uniform(0.5, 2.0, sizes[k]) for k in keys} if normalise else None
        obs_spec = observation_spec_from_env(env, keys, mean=mean, std=std, clip=10.0 if normalise else None)
        arch = {
            "type": "mlp",
            "in_dim": obs_spec.size,
            "out_dim": int(env.action_space.shape[0]),
            "hidden": [int(h) for h in hidden],
            "activation": "relu",
            "output_activation": "tanh",
        }
        gen = torch.Generator().manual_seed(seed)
        with torch.no_grad():
            net = build_network(arch)
            for p in net.parameters():
                p.copy_(torch.randn(p.shape, generator=gen) * 0.3)
        with tempfile.TemporaryDirectory(prefix="skillstack-eval-video-") as scratch:
            video = None
            if eval_video_bytes is not None:  # a scratch input for save_network_skill, which copies it in
                video = Path(scratch) / "eval.mp4"
                video.write_bytes(eval_video_bytes)
            return save_network_skill(
                out_dir, name=name, version=version, kind=kind, env=env, arch=arch, state_dict=net.state_dict(),
                observation=obs_spec, tags=tags, preconditions=preconditions, effects=effects,
                provenance=new_provenance(command="skill_library.testing.make_random_skill", seed=seed, source_commit=None),
                eval_video=video,
            )  # fmt: skip
    finally:
        if own_env:
            env.close()


def reseal(package: str | os.PathLike[str], mutate: Callable[[dict[str, Any]], Any] | None = None,
           key: "SigningKey | None" = None) -> None:  # fmt: skip
    """Edit a package's manifest as its author would: apply `mutate` to the manifest dict, name `key`
    (default: the user's key) as signer, re-seal the digest and re-sign. Tests use it to reach the
    checks behind the signature (schema, hashes) with a manifest its author signed.
    """
    import json

    from skill_library.keyring import Keyring
    from skill_library.signing import SIGNATURE_FILE, sign_manifest_dict

    pkg = Path(package)
    d = json.loads((pkg / "manifest.json").read_text())
    if mutate is not None:
        mutate(d)
    manifest_bytes, signature_bytes = sign_manifest_dict(d, key or Keyring().default_key())
    (pkg / "manifest.json").write_bytes(manifest_bytes)
    (pkg / SIGNATURE_FILE).write_bytes(signature_bytes)
