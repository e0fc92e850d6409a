"""Gradient-bandit preferences: update arithmetic, choice, learning, atomic per-robot/scene persistence."""

import json
import os

import numpy as np
import pytest

from planning.bandit import GradientBandit, PreferenceStore, softmax


def test_update_arithmetic_matches_the_gradient_bandit_rule():
    b = GradientBandit(alpha=0.1, beta=0.1, temperature=1.0)
    keys, est = ["a@1", "b@1", "c@1"], [0.5, 0.5, 0.5]
    pi = b.probabilities(keys, est)
    np.testing.assert_allclose(pi, [1 / 3] * 3)
    delta = b.update(keys, pi, chosen=0, reward=1.0)
    # H_k += alpha (r - rbar)(1[k chosen] - pi_k), rbar = 0 before the first update
    assert delta == pytest.approx({"a@1": 0.1 * (1 - 1 / 3), "b@1": -0.1 / 3, "c@1": -0.1 / 3})
    assert b.baseline == pytest.approx(0.1)  # rbar += beta (r - rbar)
    # Second decision: pi now includes the preferences, r = 0 is below the baseline.
    pi2 = b.probabilities(keys, est)
    h = np.array([0.1 * 2 / 3, -0.1 / 3, -0.1 / 3])
    np.testing.assert_allclose(pi2, softmax(np.array(est) + h, 1.0))
    b.update(keys, pi2, chosen=1, reward=0.0)
    expected_b = -0.1 / 3 + 0.1 * (0 - 0.1) * (1 - pi2[1])
    expected_a = 0.1 * 2 / 3 + 0.1 * (0 - 0.1) * (0 - pi2[0])
    assert b.preference("b@1") == pytest.approx(expected_b) and b.preference("a@1") == pytest.approx(expected_a)
    assert b.baseline == pytest.approx(0.1 + 0.1 * (0 - 0.1)) and b.updates == 2


def test_estimated_success_and_preference_add_before_the_softmax():
    b = GradientBandit(temperature=0.5, preferences={"x@1": 0.2})
    pi = b.probabilities(["x@1", "y@1"], [0.3, 0.6])
    np.testing.assert_allclose(pi, softmax([0.5, 0.6], 0.5))
    idx, pi = b.choose(["x@1", "y@1"], [0.3, 0.6])  # greedy without an rng
    assert idx == 1
    with pytest.raises(ValueError, match="no candidates"):
        b.choose([], [])
    with pytest.raises(ValueError, match="temperature"):
        GradientBandit(temperature=0.0)


def test_groundings_of_one_skill_pool_their_probability():
    b = GradientBandit(alpha=1.0, temperature=1.0)
    delta = b.update(["pick@1", "pick@1", "push@1"], [0.25, 0.25, 0.5], chosen=2, reward=1.0)
    assert delta == pytest.approx({"pick@1": -0.5, "push@1": 0.5})


def test_preferences_learn_which_skill_really_succeeds():
    rng = np.random.default_rng(0)
    b = GradientBandit(alpha=0.2, temperature=0.2)
    keys, est = ["reliable@1", "flaky@1"], [0.5, 0.5]  # descriptors cannot tell them apart
    p_true = {"reliable@1": 0.9, "flaky@1": 0.2}
    for _ in range(300):
        idx, pi = b.choose(keys, est, rng)
        b.update(keys, pi, idx, float(rng.uniform() < p_true[keys[idx]]))
    assert b.probabilities(keys, est)[0] > 0.9 and b.preference("reliable@1") > 0 > b.preference("flaky@1")


def test_store_persists_per_robot_and_scene_atomically(tmp_path):
    store = PreferenceStore(tmp_path / "prefs")
    b = store.load("skillstack/panda-v1", "stack-three", alpha=0.3)
    assert b.preferences == {} and b.alpha == 0.3
    b.update(["a@1", "b@1"], [0.5, 0.5], 0, 1.0)
    path = store.save("skillstack/panda-v1", "stack-three", b)
    assert path == tmp_path / "prefs" / "skillstack_panda-v1" / "stack-three.json"
    assert sorted(os.listdir(path.parent)) == ["stack-three.json"]  # no temp files left behind
    data = json.loads(path.read_text())
    assert data["robot"] == "skillstack/panda-v1" and data["scene"] == "stack-three" and data["updates"] == 1
    again = store.load("skillstack/panda-v1", "stack-three")
    assert again.preferences == pytest.approx(b.preferences) and again.baseline == pytest.approx(b.baseline)
    assert store.load("skillstack/panda-v1", "stack-two").preferences == {}  # other scene: fresh
    assert store.load("other/robot", "stack-three").preferences == {}  # other robot: fresh
    path.write_text("{not json")
    with pytest.raises(ValueError, match="cannot read preferences"):
        store.load("skillstack/panda-v1", "stack-three")
    path.write_text(json.dumps({**data, "scene": "elsewhere"}))
    with pytest.raises(ValueError, match="holds robot"):
        store.load("skillstack/panda-v1", "stack-three")
    assert store.reset("skillstack/panda-v1", "stack-three") and not path.exists()
