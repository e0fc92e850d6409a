"""policies.networks: architecture as data, strict state dicts, SB3 actor export."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from policies.networks import (
    NetworkSpecError,
    arch_param_shapes,
    build_network,
    check_state_dict,
    export_sb3_actor,
    load_network,
    validate_arch,
)

ARCH = {"type": "mlp", "in_dim": 6, "out_dim": 3, "hidden": [8, 8], "activation": "relu", "output_activation": "tanh"}


def test_build_mlp_shapes_and_output_range():
    net = build_network(ARCH)
    assert {k: tuple(v.shape) for k, v in net.state_dict().items()} == arch_param_shapes(ARCH)
    with torch.no_grad():
        y = net(torch.randn(5, 6) * 100)
    assert y.shape == (5, 3) and float(y.abs().max()) <= 1.0


def test_validate_fills_defaults_and_rejects_bad_fields():
    norm = validate_arch({"type": "mlp", "in_dim": 2, "out_dim": 1})
    assert norm["hidden"] == [] and norm["activation"] == "relu" and norm["output_activation"] == "identity"
    with pytest.raises(NetworkSpecError, match="unknown architecture 'transformer'; valid: mlp"):
        validate_arch({"type": "transformer"})
    with pytest.raises(NetworkSpecError, match="unknown activation 'swishy'"):
        validate_arch({**ARCH, "activation": "swishy"})
    with pytest.raises(NetworkSpecError, match=r"network.hidden\[1\]"):
        validate_arch({**ARCH, "hidden": [8, -1]})
    with pytest.raises(NetworkSpecError, match="unknown field"):
        validate_arch({**ARCH, "dropout": 0.1})
    with pytest.raises(NetworkSpecError, match="in_dim"):
        validate_arch({**ARCH, "in_dim": True})


def test_check_state_dict_names_shapes_dtypes():
    sd = build_network(ARCH).state_dict()
    check_state_dict(ARCH, sd)
    with pytest.raises(NetworkSpecError, match="missing"):
        check_state_dict(ARCH, {k: v for k, v in sd.items() if k != "layers.0.bias"})
    with pytest.raises(NetworkSpecError, match="shape"):
        check_state_dict(ARCH, {**sd, "layers.0.bias": torch.zeros(9)})
    with pytest.raises(NetworkSpecError, match="not floating point"):
        check_state_dict(ARCH, {**sd, "layers.0.bias": torch.zeros(8, dtype=torch.int64)})


def test_load_network_reproduces_module_without_grads():
    src = build_network(ARCH)
    net = load_network(ARCH, src.state_dict())
    x = torch.randn(4, 6)
    assert torch.equal(net(x), src(x).detach())
    assert not any(p.requires_grad for p in net.parameters()) and not net.training


@pytest.mark.parametrize("algo_name,kwargs", [("SAC", {}), ("SAC", {"use_sde": True}), ("TD3", {})])
def test_export_sb3_actor_matches_predict(algo_name, kwargs):
    import stable_baselines3 as sb3

    import envs

    env = envs.make("skillstack/PandaReach-v0")
    model = getattr(sb3, algo_name)("MultiInputPolicy", env, policy_kwargs={"net_arch": [32, 32]}, seed=0, **kwargs)
    ex = export_sb3_actor(model)
    assert ex.dict_observation and [k for k, _ in ex.observation_keys] == ["achieved_goal", "desired_goal", "observation"]
    assert ex.arch["hidden"] == [32, 32] and ex.arch["output_activation"] == "tanh"
    net = load_network(ex.arch, ex.state_dict)
    obs, _ = env.reset(seed=1)
    for _ in range(5):
        expected, _ = model.predict(obs, deterministic=True)
        flat = np.concatenate([np.ravel(obs[k]) for k, _ in ex.observation_keys]).astype(np.float32)
        y = net(torch.from_numpy(flat)[None]).numpy()[0]
        got = ex.action_low + (y + 1.0) * 0.5 * (ex.action_high - ex.action_low)
        np.testing.assert_allclose(got, expected, atol=1e-5)
        obs, *_ = env.step(expected)
