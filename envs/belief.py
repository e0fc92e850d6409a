"""What a scripted expert knows of the scene: built from observations only (issue 24).

A real arm's controller sees the world late (action latency), noisily (object poses from
perception) and sometimes not at all (lost state messages). `Belief` turns the observation
dicts an expert is handed into the quantities its script needs, so the scripts in
`envs.experts` close the loop on what they observe, never on the simulator's true state:

- **objects**: each cube's position, filtered over the observations. A cube that moves with
  the TCP (held, pushed) is predicted by the TCP's observed displacement, a free one by its
  observed velocity; the measurement then corrects the prediction with weight `alpha`
  (1 cm of per-tick noise becomes ~4 mm) once the noise, estimated online from what is left
  where the prediction is near exact, exceeds 1 mm; clean observations are taken as they are.
  A jump far beyond any noise resets the filter.
- **stale observations**: a dropped message repeats the previous observation exactly; it
  updates nothing and counts as one more period of dead time.
- **latency**: the action sent now lands k periods later. k is identified online, from which
  of the expert's own recent commands best explains the observed TCP displacements (a least
  squares fit per candidate k), and `tcp_ahead` is the observed TCP plus the displacement
  still in flight (the last k commands, each as the step the arm makes for it: `response` of the
  command, no longer than its top speed allows): a Smith predictor. That share is 0.7 for an arm
  whose IK steps from where the arm is (the rest of a step is lost); for one whose IK steps from
  where the arm will be when the command lands (`envs.in_flight`: the arm makes up to all of it,
  `full_response` 1) it is what the per-lag fit below finds in all, between 0.7 and 1.
  Without latency k is 0 and `tcp_ahead` is the observed TCP. How much of a command shows at
  each lag is refitted on the recent window (`_lags`, ridge towards the pure delay k): a driver
  that smooths its targets spreads a command over two periods, where a pure-delay predictor
  rings at twice the control period (sim_robot's trajectory path did).

Only the observation vector's named slices (`envs.observation` layout), the desired goal, and
the expert's own commands go in.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from envs.observation import OBJECT_FIELDS, robot_fields

__all__ = ["RESPONSE", "Belief", "observation_layout"]

RESPONSE = 0.7  # fraction of a commanded TCP displacement the arm makes in one control period (measured)
LAG_RIDGE = 0.1  # pull of the believed pure delay on the per-lag fit (command energy over a window: ~0.1 m^2)
TOP_STEP = 0.018  # the longest TCP step (m) a Panda makes in one 40 ms period (measured); raised when longer ones are seen


def observation_layout(n_arm: int, obs_layout: str, objects: Sequence[str]) -> dict[str, slice]:
    """Names -> slices of the observation vector (as `envs.observation.ObservationBuilder` lays it out)."""
    out, i = {}, 0
    for name, size in list(robot_fields(n_arm, obs_layout)) + [(f"{o}_{f}", n) for o in objects for f, n in OBJECT_FIELDS]:
        out[name] = slice(i, i + size)
        i += size
    return out


class Belief:
    """Filtered scene state and latency-compensated TCP from observations (see the module docstring)."""

    CLEAN = 0.001  # position noise (m, std) below which observations are used unfiltered

    def __init__(self, layout: Mapping[str, slice], objects: Sequence[str], control_dt: float, *,
                 alpha: float = 0.25, max_latency: int = 4, window: int = 16, response: float = RESPONSE) -> None:
        self.layout = dict(layout)
        self.objects = tuple(objects)
        self.dt = float(control_dt)
        self.alpha = float(alpha)
        self.max_latency = int(max_latency)
        self.window = int(window)
        self.full_response = float(response)  # the share of a command the arm makes in all (see the module docstring)
        self.reset()

    def reset(self) -> None:
        """Forget everything (a new episode, or a skill starting where another left off)."""
        self.latency = 0
        self.response = RESPONSE  # the per-lag fit's prior; `full_response` caps what the predictor takes from the fit
        self.top_step = TOP_STEP
        self.stale = 0  # consecutive stale observations up to now
        self.observations = 0
        self._last_vec: np.ndarray | None = None
        self._cmds: list[np.ndarray] = []  # TCP displacement commanded by each act, oldest first
        self._tcps: list[np.ndarray | None] = []  # observed TCP at each act (None: stale)
        self._est: dict[str, np.ndarray] = {}
        self._h: np.ndarray | None = None  # per-lag response (`_lags`) of the last fresh observation
        self.noise_var = 0.0  # per-coordinate variance of the object position noise, estimated online
        self._origin: np.ndarray | None = None  # the TCP at the first observation, while it has not moved yet
        self.tcp = np.zeros(3)
        self.tcp_vel = np.zeros(3)
        self.width = 0.0
        self.goal = np.zeros(0)

    # ------------------------------------------------------------------ per tick
    def update(self, obs: Mapping[str, np.ndarray] | np.ndarray) -> None:
        """Take this tick's observation (a dict with "observation", or the bare vector)."""
        if isinstance(obs, Mapping):
            vec = np.asarray(obs["observation"], dtype=np.float64)
            if "desired_goal" in obs:
                self.goal = np.asarray(obs["desired_goal"], dtype=np.float64).copy()
        else:
            vec = np.asarray(obs, dtype=np.float64)
        if vec.ndim != 1 or vec.size < self.layout["tcp_pos"].stop:
            raise ValueError(f"expert observation must be one observation vector, got shape {vec.shape}")
        stale = self._last_vec is not None and np.array_equal(vec, self._last_vec)
        self.observations += 1
        if stale:
            self.stale += 1
            self._tcps.append(None)
            return
        L = self.layout
        tcp = vec[L["tcp_pos"]].copy()
        moved = tcp - self.tcp if self._last_vec is not None else np.zeros(3)
        if self.stale == 0 and len(self._tcps) and self._tcps[-1] is not None:
            self.top_step = max(self.top_step, float(np.linalg.norm(moved)))
        self.tcp, self.tcp_vel, self.width = tcp, vec[L["tcp_vel"]].copy(), float(vec[L["gripper_width"]][0])
        self.stale = 0
        self._tcps.append(tcp)
        for o in self.objects:
            raw = vec[L[f"{o}_pos"]]
            vel = vec[L[f"{o}_linvel"]]
            est = self._est.get(o)
            if est is None:
                self._est[o] = raw.copy()
                continue
            # Moves with the hand (held or pushed): the hand's own displacement, exact; else its velocity.
            with_hand = np.linalg.norm(self.tcp_vel) > 0.02 and np.linalg.norm(vel - self.tcp_vel) < 0.5 * np.linalg.norm(self.tcp_vel)
            pred = est + (moved if with_hand else vel * self.dt)
            innovation = raw - pred
            if np.linalg.norm(innovation) > 0.08:
                self._est[o] = raw.copy()
                continue
            if with_hand or np.linalg.norm(vel) < 0.005:  # the prediction is near exact: what is left is noise
                self.noise_var = 0.8 * self.noise_var + 0.2 * float(innovation @ innovation) / 3
            # Clean observations are taken as they are; noisy ones are averaged.
            self._est[o] = pred + (self.alpha if self.noise_var > self.CLEAN**2 else 1.0) * innovation
        self._last_vec = vec.copy()
        self._onset()
        self._identify_latency()
        self._h = None  # refitted on demand, once per fresh observation (no cost without latency)

    def commanded(self, displacement: np.ndarray) -> None:
        """Record the TCP displacement the expert just commanded (the action's first three entries x max_delta)."""
        self._cmds.append(np.asarray(displacement, dtype=np.float64)[:3].copy())
        if len(self._cmds) > 8 * self.window:  # a long run (a deployment) keeps only the recent history
            drop = 4 * self.window
            del self._cmds[:drop], self._tcps[:drop]

    # ------------------------------------------------------------------ what the script reads
    def object(self, name: str) -> np.ndarray:
        """Filtered position of a cube."""
        return self._est[name].copy()

    @property
    def tcp_ahead(self) -> np.ndarray:
        """Where the TCP will be when the next command lands: observed + the commands still in flight."""
        n = self.latency + self.stale
        if n == 0 or not self._cmds:
            return self.tcp.copy()
        if self._h is None:
            self._h = self._lags()
        h = self._h
        total = float(h.sum())
        if total <= 0.0:
            return self.tcp.copy()
        # The share of a command the arm makes in all: RESPONSE, or up to `full_response` as the per-lag
        # fit finds it (an arm stepped from where it will be: 0.8-1 under latency; stack-two under
        # `realistic` 24/30 at a fixed 0.7, 24/30 at a fixed 1, 27/30 fitted).
        response = min(max(total, RESPONSE), self.full_response)
        tail = np.cumsum(h[::-1])[::-1]  # tail[j]: the part of a command seen j or more periods after it
        t_f = len(self._tcps) - 1 - self.stale  # the observation the TCP was last seen in
        ahead = self.tcp.copy()
        for m in range(max(0, t_f - len(h) + 1), len(self._cmds)):
            left = total if m >= t_f else float(tail[t_f - m])
            if left > 0.0:
                ahead += self._expected_step(self._cmds[m], response) * (left / total)
        return ahead

    def _lags(self) -> np.ndarray:
        """How much of a command shows j periods after it (j = 0..max_latency): the pure delay the
        latency identification believes, refitted on the recent window (ridge towards it). A driver
        that smooths its targets spreads a command over two periods; a pure delay predictor would
        ring there at twice the control period."""
        K = self.max_latency
        prior = np.zeros(K + 1)
        prior[self.latency] = self.response
        t = len(self._tcps) - 1
        rows, ys = [], []
        for n in range(max(1, t - self.window + 1), t + 1):
            a, b = self._tcps[n], self._tcps[n - 1]
            if a is None or b is None or n - 1 >= len(self._cmds):  # unseen, or no command of ours behind it
                continue
            rows.append(np.stack([self._cmd(n - 1 - j) for j in range(K + 1)], axis=1))
            ys.append(a - b)
        if len(rows) < 4:
            return prior
        A, y = np.concatenate(rows), np.concatenate(ys)
        h = np.linalg.solve(A.T @ A + LAG_RIDGE * np.eye(K + 1), A.T @ y + LAG_RIDGE * prior)
        return np.clip(h, 0.0, 1.2)

    def _expected_step(self, command: np.ndarray, response: float | None = None) -> np.ndarray:
        """The TCP step a command makes: `response` x the command, but no longer than the arm's top speed."""
        step = (self.response if response is None else response) * command
        length = float(np.linalg.norm(step))
        return step if length <= self.top_step else step * (self.top_step / length)

    @property
    def delay(self) -> int:
        """Periods between a command and the first observation that shows it (latency + stale ticks)."""
        return self.latency + self.stale

    # ------------------------------------------------------------------ latency identification
    def _onset(self) -> None:
        """First estimate: the periods between our first motion command and the first observed motion."""
        if self._origin is None:
            if len(self._tcps) == 1 and np.linalg.norm(self.tcp_vel) < 0.01:
                self._origin = self.tcp.copy()
            return
        if self._origin.size == 0:
            return
        moving = [i for i, c in enumerate(self._cmds) if np.linalg.norm(c) > 0.005]
        if moving and np.linalg.norm(self.tcp - self._origin) > 0.003:
            self.latency = int(np.clip(len(self._tcps) - 2 - moving[0], 0, self.max_latency))
            self._origin = np.zeros(0)  # done

    def _cmd(self, i: int) -> np.ndarray:
        """Command i; before the first one the arm held still (the arm keeps its targets while the latency queue fills)."""
        return self._cmds[i] if i >= 0 else np.zeros(3)

    def _identify_latency(self) -> None:
        """Which lag k makes our commands explain the observed TCP steps best (see the module docstring).

        Fitted on *changes*: the change of the observed step against the change of the command k
        periods earlier. A steady command cannot tell lags apart (every k explains it), a change can;
        a new k must also explain the changes clearly better than the current one.
        """
        t = len(self._tcps) - 1  # observation t follows act t-1's env step
        lo = max(1, t - self.window + 1)
        steps = {n: self._tcps[n] - self._tcps[n - 1] for n in range(max(1, lo - 1), t + 1)
                 if self._tcps[n] is not None and self._tcps[n - 1] is not None}
        steps[0] = np.zeros(3)  # before the first observation: at rest
        pairs = [(n, steps[n] - steps[n - 1]) for n in range(lo, t + 1) if n in steps and n - 1 in steps]
        fits = {}
        for k in range(self.max_latency + 1):
            used = [(dd, self._cmd(n - 1 - k) - self._cmd(n - 2 - k)) for n, dd in pairs if n - 1 - k < len(self._cmds)]
            if len(used) < 3:
                continue
            D = np.array([d for d, _ in used])
            C = np.array([c for _, c in used])
            energy = float((C * C).sum())
            if energy < 0.02**2:  # too little change in the commands to tell lags apart
                continue
            beta = float(np.clip((D * C).sum() / energy, 0.0, 1.2))
            fits[k] = (float(((D - beta * C) ** 2).sum()), beta, float((D * D).sum()))
        if len(fits) < 2:
            return
        best = min(fits, key=lambda k: fits[k][0])
        current = fits.get(self.latency)
        # A lag is believed when it explains most of the observed change, and clearly better than the current one.
        explains = fits[best][0] < 0.5 * fits[best][2] and fits[best][1] > 0.3
        if explains and (current is None or fits[best][0] < 0.5 * current[0]):
            self.latency = best
