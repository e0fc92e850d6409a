"""Commands still in flight: where the arm is headed, for the IK to step from.

A robot applies joint targets late (driver, middleware, controller): the target sent at tick t
moves the arm from tick t + k. An end-effector skill steps from the pose it is handed; stepping
from the *measured* joints, each command re-sends where the arm was k ticks ago, plus one step,
and the skill stalls or oscillates (pick_place_red with 2 ticks on the joint targets, env alone:
1/30). The envs' latency delays the step itself, which then starts from wherever the arm is when
it lands: there, the steps add up. Stepping from the measured joints plus the increments sent but
not yet applied restores that: the joint-space form of a Smith predictor. The base is then the
last command sent (the measured joints plus everything they have still to follow, the tracking
residual included): with only the increments not yet sent to the motors (c[t-1] - c[t-k]) each
command falls short by that residual again, and pick_place_red under 2 ticks made 4/10 with the lag
known exactly, against 10/10 from the last command (env alone, seeds 0-9).

Not the default (`ik_base: measured`): through ROS 2 under 80 ms it takes pick_place_red from 0/10
to 10/10, but the hierarchical controller's stack-two from 10/10 to 3/10 (docs/robustness.md).

k is identified online from the executor's own records: the lag at which the sent commands best
explain the measured joints (least squares over a recent window, only while the arm is moving). A
position-controlled arm without latency follows the command of the previous tick (k = 1, nothing
in flight: the measured joints are the base, as before; stepping from the last command there
overshot through the bridge's velocity-limited arm: pick_place_red 4/10 nominal over ROS 2).

`gain` < 1 steps from that share of the way to the last command (an experiment: the traced
stack-two failures overshoot, the experts' own predictor counting the tracking residual again;
0.75 did not hold up over 10 episodes, docs/robustness.md).
"""

from __future__ import annotations

from collections import deque

import numpy as np

__all__ = ["InFlightCommands"]


class InFlightCommands:
    """Sent arm commands and measured arm joints, one pair per control tick (see the module docstring)."""

    def __init__(self, max_lag: int = 5, window: int = 12, min_motion: float = 0.01, max_lead: float = 0.25, gain: float = 1.0):
        self.max_lag = int(max_lag)
        self.window = int(window)
        self.min_motion = float(min_motion)  # rad of commanded motion over the window before the lag is refitted
        self.max_lead = float(max_lead)  # rad: a larger in-flight increment means something else (held, blocked)
        self.gain = float(gain)  # share of the increment stepped from (1: the last command; less: where the arm will be when it lands)
        self.reset()

    def reset(self) -> None:
        """Forget the history (a new run, a hold, a restart); the lag estimate returns to 1."""
        self.lag = 1
        self._sent: deque[np.ndarray] = deque(maxlen=self.window + self.max_lag + 1)
        self._measured: deque[np.ndarray] = deque(maxlen=self.window)

    def observe(self, measured_arm: np.ndarray) -> None:
        """Record the measured arm joints at this tick (before this tick's command) and refit the lag."""
        self._measured.append(np.asarray(measured_arm, dtype=np.float64).copy())
        self._fit()

    def sent(self, command_arm: np.ndarray) -> None:
        """Record the arm command sent at this tick."""
        self._sent.append(np.asarray(command_arm, dtype=np.float64).copy())

    def in_flight(self, measured_arm: np.ndarray) -> np.ndarray | None:
        """What the arm has still to follow (last command sent - `measured_arm`) when commands land
        late (lag >= 2), or None: no latency identified, or a lead beyond `max_lead` (held, blocked)."""
        if self.lag < 2 or not self._sent:
            return None
        inc = self._sent[-1] - np.asarray(measured_arm, dtype=np.float64)
        if not np.all(np.abs(inc) <= self.max_lead):
            return None
        return self.gain * inc

    def _fit(self) -> None:
        n_meas, n_sent = len(self._measured), len(self._sent)
        # measured[-1] is this tick's, sent[-1] the previous tick's command: measured[-1 - j] pairs
        # with sent[-k - j] at lag k.
        usable = range(min(n_meas, n_sent - self.max_lag + 1))  # every lag up to max_lag has its command
        if len(usable) < 4:
            return
        sent = list(self._sent)
        motion = sum(float(np.abs(sent[-1 - j] - sent[-2 - j]).sum()) for j in usable if j + 2 <= n_sent)
        if motion < self.min_motion:  # a still arm says nothing about the lag: keep the last estimate
            return
        errs = []
        for k in range(1, self.max_lag + 1):
            e = 0.0
            for j in usable:
                d = self._measured[-1 - j] - sent[-k - j]
                e += float(d @ d)
            errs.append(e)
        self.lag = int(np.argmin(errs)) + 1
