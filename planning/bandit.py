"""Online skill preferences: a gradient bandit over skills, persisted per robot and scene.

As the table-tennis agent's high-level controller did, each skill k carries a preference
H_k that is added to the skill's estimated success before a softmax chooses:

    pi_k = softmax((s_k + H_k) / temperature)         over the candidates of one decision
    H_j += alpha * (r - rbar) * (1[j == chosen] - pi_j)   for every candidate j
    rbar += beta * (r - rbar)                           (running baseline, after the update; starts at 0)

r is 1 when the chosen skill reached its effects and 0 when it did not (Sutton & Barto,
section 2.8). Preferences are keyed by skill ref (``name@version``); a file holds one
robot + scene pair and is written atomically (temp file, fsync, rename), so a crash never
leaves half a file. Reset per scene by deleting that file (or `PreferenceStore.reset`).
"""

from __future__ import annotations

import json
import math
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from common.atomic import atomic_write_json

__all__ = ["GradientBandit", "PreferenceStore", "default_preferences_dir", "softmax"]

FORMAT = "skillstack-preferences"


def softmax(x: Sequence[float], temperature: float = 1.0) -> np.ndarray:
    """Numerically stable softmax of `x / temperature`."""
    if temperature <= 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")
    z = np.asarray(x, dtype=np.float64) / temperature
    if z.size == 0:
        return z
    z = np.exp(z - z.max())
    return z / z.sum()


@dataclass
class GradientBandit:
    """Per-skill preferences H and a reward baseline, with the gradient-bandit update."""

    alpha: float = 0.1
    beta: float = 0.1
    temperature: float = 0.1
    preferences: dict[str, float] = field(default_factory=dict)
    baseline: float = 0.0
    updates: int = 0

    def __post_init__(self) -> None:
        if not (self.alpha > 0 and 0 < self.beta <= 1 and self.temperature > 0):
            raise ValueError(f"need alpha > 0, 0 < beta <= 1, temperature > 0; got {self.alpha}, {self.beta}, {self.temperature}")

    def preference(self, key: str) -> float:
        return float(self.preferences.get(key, 0.0))

    def probabilities(self, keys: Sequence[str], estimated_success: Sequence[float]) -> np.ndarray:
        """pi over the candidates: softmax((estimated success + preference) / temperature)."""
        if len(keys) != len(estimated_success):
            raise ValueError(f"{len(keys)} keys but {len(estimated_success)} success estimates")
        scores = [float(s) + self.preference(k) for k, s in zip(keys, estimated_success)]
        return softmax(scores, self.temperature)

    def choose(self, keys: Sequence[str], estimated_success: Sequence[float], rng: np.random.Generator | None = None) -> tuple[int, np.ndarray]:
        """(index chosen, pi): sampled from pi with `rng`, or the most probable when rng is None."""
        if not keys:
            raise ValueError("no candidates to choose from")
        pi = self.probabilities(keys, estimated_success)
        idx = int(rng.choice(len(keys), p=pi)) if rng is not None else int(np.argmax(pi))
        return idx, pi

    def update(self, keys: Sequence[str], pi: Sequence[float], chosen: int, reward: float) -> dict[str, float]:
        """Gradient-bandit step for one decision; returns the preference change per key.

        Candidates that share a key (one skill grounded on different cubes) pool their
        probability: the rule is applied per distinct key with pi summed over its groundings.
        """
        if not 0 <= chosen < len(keys) or len(pi) != len(keys):
            raise ValueError(f"chosen index {chosen} / pi of length {len(pi)} do not match {len(keys)} candidates")
        r = float(reward)
        rbar = self.baseline
        mass: dict[str, float] = {}
        for k, p in zip(keys, pi):
            mass[k] = mass.get(k, 0.0) + float(p)
        delta = {}
        for k, p in mass.items():
            d = self.alpha * (r - rbar) * ((1.0 if k == keys[chosen] else 0.0) - p)
            self.preferences[k] = self.preference(k) + d
            delta[k] = d
        self.baseline = rbar + self.beta * (r - rbar)
        self.updates += 1
        return delta

    def to_dict(self) -> dict[str, Any]:
        return {
            "alpha": self.alpha, "beta": self.beta, "temperature": self.temperature,
            "preferences": dict(sorted(self.preferences.items())), "baseline": self.baseline, "updates": self.updates,
        }  # fmt: skip

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "GradientBandit":
        prefs = d.get("preferences", {})
        if not isinstance(prefs, Mapping) or not all(isinstance(v, (int, float)) and math.isfinite(v) for v in prefs.values()):
            raise ValueError("preferences must map skill refs to finite numbers")
        base = d.get("baseline", 0.0)
        if not isinstance(base, (int, float)) or not math.isfinite(base):
            raise ValueError("baseline must be a finite number")
        return cls(
            alpha=float(d.get("alpha", 0.1)), beta=float(d.get("beta", 0.1)), temperature=float(d.get("temperature", 0.1)),
            preferences={str(k): float(v) for k, v in prefs.items()},
            baseline=float(base), updates=int(d.get("updates", 0)),
        )  # fmt: skip


def default_preferences_dir() -> Path:
    """$SKILLSTACK_PREFERENCES, else ~/.skillstack/preferences."""
    env = os.environ.get("SKILLSTACK_PREFERENCES")
    return Path(env) if env else Path.home() / ".skillstack" / "preferences"


_SAFE = re.compile(r"[^A-Za-z0-9_.-]+")


def _slug(text: str) -> str:
    slug = _SAFE.sub("_", text).strip("._")
    if not slug:
        raise ValueError(f"cannot make a file name from {text!r}")
    return slug


class PreferenceStore:
    """JSON files of bandit state, one per (robot, scene): `<root>/<robot>/<scene>.json`."""

    def __init__(self, root: str | os.PathLike[str] | None = None) -> None:
        self.root = Path(root) if root is not None else default_preferences_dir()

    def path(self, robot: str, scene: str) -> Path:
        return self.root / _slug(robot) / f"{_slug(scene)}.json"

    def load(self, robot: str, scene: str, **defaults: Any) -> GradientBandit:
        """The stored bandit for (robot, scene), or a fresh one with `defaults` (alpha, beta, temperature)."""
        path = self.path(robot, scene)
        if not path.exists():
            return GradientBandit(**defaults)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as exc:
            raise ValueError(f"{path}: cannot read preferences ({exc}); delete the file to start afresh") from None
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            raise ValueError(f"{path}: not a skillstack preferences file")
        if data.get("robot") != robot or data.get("scene") != scene:
            raise ValueError(f"{path}: holds robot {data.get('robot')!r} scene {data.get('scene')!r}, not {robot!r} {scene!r}")
        bandit = GradientBandit.from_dict(data)
        for k, v in defaults.items():
            setattr(bandit, k, v)
        return bandit

    def save(self, robot: str, scene: str, bandit: GradientBandit) -> Path:
        """Write atomically (`common.atomic`: temp file in the same directory, fsync, rename)."""
        payload = {"format": FORMAT, "version": 1, "robot": robot, "scene": scene, **bandit.to_dict()}
        return atomic_write_json(self.path(robot, scene), payload, indent=2, sort_keys=True)

    def reset(self, robot: str, scene: str) -> bool:
        """Forget the preferences of (robot, scene); True when a file was removed."""
        path = self.path(robot, scene)
        if path.exists():
            path.unlink()
            return True
        return False
