"""Skill boundary detection models (torch): action predictor, inverse dynamics, BC export, resets."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from policies.action_predictor import (
    ActionPredictor,
    ActionPredictorConfig,
    SequenceData,
    discretize_actions,
    segment_ids_from_boundaries,
    train_action_predictor,
)
from policies.action_predictor_store import load_action_predictor, save_action_predictor
from policies.bc import train_bc
from policies.inverse_dynamics import (
    InverseDynamicsConfig,
    InverseDynamicsModel,
    calibrate_still_threshold,
    frame_change,
    load_inverse_dynamics,
    save_inverse_dynamics,
    train_inverse_dynamics,
)
from segmentation.detector import DetectorParams, detect_boundaries, detect_with_model

torch.set_num_threads(1)
S = 24  # small images keep these tests fast


def _cfg(**kw) -> ActionPredictorConfig:
    base = dict(cameras=("cam",), image_size=S, context=4, d_model=32, n_heads=2, keypoints=8, conv_channels=(8, 8, 8))
    base.update(kw)
    return ActionPredictorConfig(**base)


def _episode(t: int, seed: int) -> tuple[dict[str, np.ndarray], np.ndarray]:
    rng = np.random.default_rng(seed)
    return {"cam": rng.integers(0, 255, (t, S, S, 3), dtype=np.uint8)}, rng.uniform(-1, 1, (t, 4)).astype(np.float32)


def test_discretize_ends_and_clipping():
    b = discretize_actions(np.array([[-1.0, 0.0, 1.0, 5.0]]), [-1] * 4, [1] * 4, 21)
    assert b.tolist() == [[0, 10, 20, 20]]


def test_predictor_is_causal_and_sees_only_its_window():
    torch.manual_seed(0)
    m = ActionPredictor(_cfg()).eval()
    imgs, acts = _episode(12, 0)
    base = m.episode_losses(imgs, acts)
    assert base.shape == (12,) and np.all(np.isfinite(base)) and np.all(base > 0)
    future = {"cam": imgs["cam"].copy()}
    future["cam"][8:] = 255 - future["cam"][8:]
    changed = m.episode_losses(future, acts)
    assert np.allclose(changed[:8], base[:8], atol=1e-5)  # o_>t never influences loss_t
    assert not np.allclose(changed[8:], base[8:])
    old = {"cam": imgs["cam"].copy()}
    old["cam"][:2] = 0  # older than K=4 steps for t >= 6
    assert np.allclose(m.episode_losses(old, acts)[6:], base[6:], atol=1e-5)


def test_memory_reset_cuts_context_and_detector_recompute_matches():
    torch.manual_seed(1)
    m = ActionPredictor(_cfg()).eval()
    imgs, acts = _episode(15, 1)
    with_reset = m.episode_losses(imgs, acts, boundaries=[5])
    # after a reset at 5, frames before 5 no longer matter
    other = {"cam": imgs["cam"].copy()}
    other["cam"][:5] = 7
    assert np.allclose(m.episode_losses(other, acts, boundaries=[5])[5:], with_reset[5:], atol=1e-5)
    assert segment_ids_from_boundaries(6, [2, 4]).tolist() == [0, 0, 1, 1, 2, 2]
    # detect_with_model recomputes only what a reset changes: its losses equal a full pass with the same resets
    tokens = m.embed(imgs)
    det = detect_with_model(m, tokens, acts, DetectorParams(gap=0.3, min_len=2), events=[])
    full = m.episode_losses(imgs, acts, boundaries=det.boundaries)
    assert det.boundaries, "gap 0.3 on random data should fire"
    assert np.allclose(det.losses, full, rtol=1e-4, atol=1e-4)
    no_reset = detect_with_model(m, tokens, acts, DetectorParams(gap=0.3, min_len=2, reset_memory=False))
    assert no_reset.boundaries == detect_boundaries(m.episode_losses(imgs, acts), DetectorParams(gap=0.3, min_len=2)).boundaries


def test_bin_tolerant_loss_scores_the_mass_near_the_action_bin():
    torch.manual_seed(3)
    m = ActionPredictor(_cfg()).eval()
    imgs, acts = _episode(9, 4)
    with torch.no_grad():
        tokens = m.embed(imgs)
        logits = m.step_logits(tokens)
    p = torch.softmax(logits, -1).numpy()  # (T, A, B)
    b = m.bins(acts).numpy()
    nb = p.shape[-1]
    exact = -np.log(np.take_along_axis(p, b[..., None], -1)[..., 0]).sum(-1)
    near = np.stack([[p[t, d, max(0, b[t, d] - 1):min(nb, b[t, d] + 2)].sum() for d in range(p.shape[1])]
                     for t in range(p.shape[0])])
    assert np.allclose(m.nll(logits, acts).numpy(), exact, atol=1e-4)
    assert np.allclose(m.nll(logits, acts, tolerance=1).numpy(), -np.log(near).sum(-1), atol=1e-4)
    assert np.all(m.nll(logits, acts, 1).numpy() < m.nll(logits, acts, 0).numpy())  # more bins, more mass
    assert np.allclose(m.nll(logits, acts, tolerance=nb).numpy(), 0.0, atol=1e-5)  # every bin: certain
    with pytest.raises(ValueError, match="tolerance must be >= 0"):
        m.nll(logits, acts, -1)
    # the detector reads the loss with its params' tolerance, also where a reset recomputes it
    for params in (DetectorParams(gap=0.2, min_len=2, bin_tolerance=1),
                   DetectorParams(gap=0.5, min_len=2, bin_tolerance=1, gap_unit="episode_std", std_prior=0.1)):
        det = detect_with_model(m, tokens, acts, params)
        assert np.allclose(det.losses, m.episode_losses(imgs, acts, boundaries=det.boundaries, tolerance=1), rtol=1e-4, atol=1e-4)
    for bad in (-1, 0.5, True, "1"):
        with pytest.raises(ValueError, match="bin_tolerance"):
            DetectorParams(gap=1.0, bin_tolerance=bad)


def test_predictor_checks_inputs():
    m = ActionPredictor(_cfg(proprio_dim=3))
    imgs, acts = _episode(5, 2)
    with pytest.raises(ValueError, match="proprioception"):
        m.check_inputs(imgs, None)
    with pytest.raises(ValueError, match=r"camera\(s\) \['cam'\]"):
        m.check_inputs({"other": imgs["cam"]}, np.zeros((5, 3)))
    with pytest.raises(ValueError, match="uint8"):
        m.check_inputs({"cam": np.zeros((5, S + 1, S, 3), np.uint8)}, np.zeros((5, 3)))
    with pytest.raises(ValueError, match="4 actions for 5 frames"):
        m.check_inputs(imgs, np.zeros((5, 3)), steps=4)
    with pytest.raises(ValueError, match="divisible"):
        _cfg(d_model=30, n_heads=4)
    with pytest.raises(ValueError, match="unknown field"):
        ActionPredictorConfig.from_dict({**_cfg().to_dict(), "bogus": 1})


def test_training_learns_a_visual_rule_and_save_load_round_trip(tmp_path):
    # action depends on the image: bright frame -> +0.8 on dim 0, dark -> -0.8
    rng = np.random.default_rng(0)
    eps = []
    for _ in range(6):
        bright = rng.random(20) < 0.5
        img = np.where(bright[:, None, None, None], 230, 20).astype(np.uint8) * np.ones((20, S, S, 3), np.uint8)
        acts = np.zeros((20, 4), np.float32)
        acts[:, 0] = np.where(bright, 0.8, -0.8)
        eps.append(SequenceData({"cam": img}, acts))
    cfg = _cfg(proprio_dim=0)
    untrained = ActionPredictor(cfg).eval()
    m, stats = train_action_predictor(eps, cfg, epochs=15, window=4, batch_windows=16, augment_pad=1, seed=0)
    before = untrained.episode_losses(eps[0].images, eps[0].actions).mean()
    after = m.episode_losses(eps[0].images, eps[0].actions).mean()
    assert stats.train_loss[-1] < stats.train_loss[0] and after < before - 3.0
    pred = m.predict_actions(eps[0].images)
    assert np.all(np.sign(pred[:, 0]) == np.sign(eps[0].actions[:, 0]))
    save_action_predictor(m, tmp_path / "p", extra={"note": "x"})
    m2, meta = load_action_predictor(tmp_path / "p")
    assert meta["note"] == "x"
    assert np.allclose(m2.episode_losses(eps[1].images, eps[1].actions), m.episode_losses(eps[1].images, eps[1].actions))
    (tmp_path / "p" / "weights.safetensors").write_bytes(b"garbage")
    with pytest.raises(ValueError, match="safetensors"):
        load_action_predictor(tmp_path / "p")
    with pytest.raises(FileNotFoundError, match="config.json"):
        load_action_predictor(tmp_path / "missing")


def test_inverse_dynamics_labels_actions_from_frame_pairs(tmp_path):
    # the scene brightens (a0=+1) or darkens (a0=-1) by one step per action: a random walk, so
    # a single frame cannot tell the action, the pair (o_t, o_t+1) can
    rng = np.random.default_rng(0)
    eps = []
    for _ in range(8):
        level, frames, acts = 5, [], []
        for _ in range(16):
            frames.append(np.full((S, S, 3), 20 * level, np.uint8))
            a = 1.0 if (level < 10 and rng.random() < 0.5) or level <= 1 else -1.0
            acts.append([a, 0.0, 0.0, 1.0])
            level += int(a)
        eps.append(({"cam": np.stack(frames)}, np.array(acts, np.float32)))
    cfg = InverseDynamicsConfig(cameras=("cam",), image_size=S, conv_channels=(8, 8, 8), keypoints=4, hidden=64)
    idm = train_inverse_dynamics(eps[:6], cfg, epochs=150, batch=32, lr=3e-3, augment_pad=0, seed=0)
    frames, acts = eps[6]
    lab = idm.label_actions(frames)
    assert lab.shape == acts.shape
    assert np.mean(np.sign(lab[:-1, 0]) == acts[:-1, 0]) >= 0.9
    assert np.allclose(lab[-1], lab[-2])  # the last step has no next frame: it repeats the label before
    save_inverse_dynamics(idm, tmp_path / "idm")
    assert np.allclose(load_inverse_dynamics(tmp_path / "idm").label_actions(frames), lab, atol=1e-6)
    # a model saved before the encoder was shared (keypoint layer named `kp`) still loads, identically
    from safetensors.torch import load, save

    wfile = next((tmp_path / "idm").glob("*.safetensors"))
    old = {k.replace(".to_keypoints.", ".kp."): v for k, v in load(wfile.read_bytes()).items()}
    assert any(".kp." in k for k in old)
    wfile.write_bytes(save(old))
    assert np.allclose(load_inverse_dynamics(tmp_path / "idm").label_actions(frames), lab, atol=1e-6)
    with pytest.raises(ValueError, match="at least 2 frames"):
        idm.label_actions({"cam": frames["cam"][:1]})
    with pytest.raises(ValueError, match=r"camera\(s\)"):
        idm.label_actions({"front": frames["cam"]})


def test_inverse_dynamics_labels_still_frames_as_no_motion(tmp_path):
    # moving steps change every pixel by 20 or 40 grey levels; idle steps repeat the frame
    rng = np.random.default_rng(1)
    eps = []
    for _ in range(3):
        level, frames, acts = 100, [], []
        for t in range(20):
            frames.append(np.full((S, S, 3), level, np.uint8))
            idle = 8 <= t < 14
            step = 0 if idle else int(rng.choice([-40, -20, 20, 40]))
            acts.append([0.0 if idle else np.sign(step), 0.0, 0.0, 1.0])
            level = level + step if 0 <= level + step <= 255 else level - step
        eps.append(({"cam": np.stack(frames)}, np.array(acts, np.float32)))
    assert np.allclose(frame_change(eps[0][0], ["cam"])[8:14], 0.0)
    thr = calibrate_still_threshold(eps, ["cam"])
    assert thr == pytest.approx(20.0)  # the smallest real motion: every still step lies below it, no moving one
    # demos that never hold still say nothing about what still looks like: off
    assert calibrate_still_threshold([(f, np.ones_like(a)) for f, a in eps], ["cam"]) == 0.0
    torch.manual_seed(0)
    base = dict(cameras=("cam",), image_size=S, conv_channels=(8, 8, 8), keypoints=4, hidden=32)
    net = InverseDynamicsModel(InverseDynamicsConfig(**base)).eval()
    frames = eps[0][0]
    plain = net.label_actions(frames)
    assert np.abs(plain[8:14, :-1]).max() > 1e-4  # an untrained network invents motion on still frames
    net.config = InverseDynamicsConfig(**base, still_threshold=thr)
    lab = net.label_actions(frames)
    assert np.all(lab[8:14, :-1] == 0.0) and np.all(lab[8:14, -1] == lab[7, -1])
    moving = [t for t in range(19) if not 8 <= t < 14]
    assert np.allclose(lab[moving], plain[moving])
    save_inverse_dynamics(net, tmp_path / "idm")
    assert load_inverse_dynamics(tmp_path / "idm").config.still_threshold == pytest.approx(thr)
    for bad in (-1.0, float("nan")):
        with pytest.raises(ValueError, match="still_threshold"):
            InverseDynamicsConfig(**base, still_threshold=bad)


def test_bc_fits_and_exports_as_mlp_network():
    from policies.networks import load_network

    rng = np.random.default_rng(0)
    x = rng.normal(size=(512, 5)).astype(np.float32) * 3 + 1
    y = np.tanh(x[:, :2] @ np.array([[0.3, -0.2], [0.1, 0.25]], np.float32))
    pol = train_bc(x, y, hidden=(64, 64), epochs=60, seed=0)
    err = np.abs(pol.predict(x) - y).mean()
    assert err < 0.05, err
    net = load_network(pol.arch, pol.state_dict)  # what a bc skill package loads
    with torch.no_grad():
        out = net(torch.from_numpy((x[:4] - pol.obs_mean) / pol.obs_std)).numpy()
    assert np.allclose(out, pol.predict(x[:4]), atol=1e-5)
    with pytest.raises(ValueError, match="same number"):
        train_bc(x[:3], y[:4])
    with pytest.raises(ValueError, match="NaN"):
        train_bc(np.full((4, 5), np.nan), y[:4])


def test_predictor_ensemble_scores_the_members_mean_and_round_trips(tmp_path):
    from policies.action_predictor_ensemble import ActionPredictorEnsemble, train_action_predictor_ensemble

    rng = np.random.default_rng(3)
    data = [SequenceData({"cam": rng.integers(0, 255, (12, S, S, 3), dtype=np.uint8)}, rng.uniform(-1, 1, (12, 4)).astype(np.float32))
            for _ in range(3)]
    cfg = _cfg()
    ens, stats = train_action_predictor_ensemble(data, cfg, 2, epochs=1, window=4, batch_windows=8, seed=5)
    assert isinstance(ens, ActionPredictorEnsemble) and len(stats) == 2
    a, b = ens.members
    assert not torch.equal(a.head.weight, b.head.weight)  # consecutive seeds, different members
    imgs, acts = data[0].images, data[0].actions
    mean = (a.episode_losses(imgs, acts, boundaries=[5]) + b.episode_losses(imgs, acts, boundaries=[5])) / 2
    assert np.allclose(ens.episode_losses(imgs, acts, boundaries=[5]), mean, atol=1e-5)
    tokens = ens.embed(imgs)
    assert tokens.shape == (12, 2, cfg.d_model)
    assert ens.step_features(tokens).shape == (12, 2 * cfg.d_model)
    assert ens.predict_actions(imgs).shape == (12, 4)
    # the detector runs on it unchanged, resets included, and sees the mean loss
    det = detect_with_model(ens, tokens, acts, DetectorParams(gap=0.3, min_len=2))
    assert np.allclose(det.losses, ens.episode_losses(imgs, acts, boundaries=det.boundaries), atol=1e-5)

    save_action_predictor(ens, tmp_path / "ens", extra={"note": "e"})
    back, meta = load_action_predictor(tmp_path / "ens")
    assert isinstance(back, ActionPredictorEnsemble) and meta["members"] == 2 and meta["note"] == "e"
    assert np.allclose(back.episode_losses(imgs, acts), ens.episode_losses(imgs, acts))
    one, _ = train_action_predictor_ensemble(data, cfg, 1, epochs=1, window=4, batch_windows=8, seed=5)
    assert isinstance(one, ActionPredictor)  # one member: no wrapper

    # saving over another model leaves only the new one's files
    save_action_predictor(one, tmp_path / "ens")
    assert sorted(p.name for p in (tmp_path / "ens").iterdir()) == ["config.json", "weights.safetensors"]
    assert isinstance(load_action_predictor(tmp_path / "ens")[0], ActionPredictor)
    save_action_predictor(ens, tmp_path / "ens")
    assert sorted(p.name for p in (tmp_path / "ens").iterdir()) == ["config.json", "member_0", "member_1"]

    import shutil

    shutil.rmtree(tmp_path / "ens" / "member_1")
    with pytest.raises(FileNotFoundError, match="member_1"):
        load_action_predictor(tmp_path / "ens")
    with pytest.raises(ValueError, match="differs from member 0"):
        ActionPredictorEnsemble([a, ActionPredictor(_cfg(context=6))])
    with pytest.raises(ValueError, match="members must be >= 1"):
        train_action_predictor_ensemble(data, cfg, 0)
