"""Commands still in flight: where the arm will be when a command lands, for the IK to step from.

A robot applies joint targets late (driver, middleware, controller): the target sent at tick t
moves the arm from tick t + k. An end-effector skill steps from the pose it is handed; stepping
from the *measured* joints, each command re-sends where the arm was k ticks ago, plus one step,
and the skill stalls (pick_place_red with 2 ticks on the joint targets: 0/30 in the env, 0/10
through ROS 2). A skill written for "my step lands from where the arm is then" needs the IK to
step from where the arm *will be* when the command lands: a Smith predictor in joint space.

The arm is modelled as a first-order follower: each period it covers `response` of the way from
where it is to the target it is following. Rolled over the k commands still ahead of this one
(sent, not yet reached), from the measured joints, that gives the base. Both numbers are
identified online from the executor's own records:

- the lag L: first the ticks between the first command that moves the arm and the first measured
  motion (an onset, ready as soon as the arm moves), then the number of ticks after which the
  measured joints best match a sent command (least squares over a recent window, only while the arm
  moves). A position-controlled arm without latency
  follows the previous tick's command (L = 1: nothing in flight, the measured joints are the base);
  k periods of latency read L = k + 1.
- the response: the least-squares share of (target followed - measured) the arm covers per period,
  on the same window, in [0.2, 1].

What was measured on the way (docs/robustness.md): stepping from the last command sent (response 1,
the first form of this module) took pick_place_red under 80 ms from 0/10 to 10/10 through ROS 2 but
the hierarchical controller's stack-two from 10/10 to 3/10: the target ran ahead of the arm, which
then overshot the place. A fixed share of the way to the last command (0.75) did not hold up.
"""

from __future__ import annotations

from collections import deque

import numpy as np

__all__ = ["DEFAULT_IK_BASE", "IK_BASES", "InFlightCommands"]

# Where an end-effector step is taken from under command latency (the envs' `ik_base`, skill_executor's).
IK_BASES = ("measured", "in_flight")
DEFAULT_IK_BASE = "in_flight"  # one default for the envs and skill_executor: the same robot on both paths


class InFlightCommands:
    """Sent arm commands and measured arm joints, one pair per control tick (see the module docstring)."""

    def __init__(self, max_lag: int = 5, window: int = 12, min_motion: float = 0.01, max_lead: float = 0.25,
                 response: float | None = None):
        self.max_lag = int(max_lag)
        self.window = int(window)
        self.min_motion = float(min_motion)  # rad of commanded motion over the window before the fit is redone
        self.max_lead = float(max_lead)  # rad: a larger in-flight increment means something else (held, blocked)
        # The share of the way the arm covers per period; None: identified online (starting at RESPONSE).
        self.fixed_response = None if response is None else float(response)
        if self.fixed_response is not None and not 0.0 < self.fixed_response <= 1.0:
            raise ValueError(f"response must be in (0, 1], got {response}")
        self.reset()

    RESPONSE = 0.7  # a position-servoed arm's share of the way per 40 ms period before one is identified (Panda, measured)

    def reset(self) -> None:
        """Forget the history (a new run, a hold, a restart); the lag estimate returns to 1."""
        self.lag = 1
        self.response = self.RESPONSE if self.fixed_response is None else self.fixed_response
        self._sent: deque[np.ndarray] = deque(maxlen=self.window + self.max_lag + 1)
        self._measured: deque[np.ndarray] = deque(maxlen=self.window + 1)
        self._ticks = 0  # observations since the reset
        self._origin: np.ndarray | None = None  # the first measured joints, until the onset is seen
        self._first_move: int | None = None  # the tick of the first command away from them

    ONSET = 1e-3  # rad: a command or a measurement this far from the first measured joints is motion

    def observe(self, measured_arm: np.ndarray) -> None:
        """Record the measured arm joints at this tick (before this tick's command) and refit the model."""
        q = np.asarray(measured_arm, dtype=np.float64).copy()
        self._measured.append(q)
        self._ticks += 1
        if self._origin is None and self._ticks == 1:
            self._origin = q
        elif self._origin is not None and self._first_move is not None and np.abs(q - self._origin).max() > self.ONSET:
            self.lag = int(np.clip(self._ticks - 1 - self._first_move, 1, self.max_lag))
            self._origin = None  # the onset is read once; the fit takes over
        self._fit()

    def sent(self, command_arm: np.ndarray) -> None:
        """Record the arm command sent at this tick."""
        c = np.asarray(command_arm, dtype=np.float64).copy()
        self._sent.append(c)
        if self._origin is not None and self._first_move is None and np.abs(c - self._origin).max() > self.ONSET:
            self._first_move = self._ticks - 1

    def in_flight(self, measured_arm: np.ndarray) -> np.ndarray | None:
        """Where the arm will be when the next command lands, minus `measured_arm`, when commands land
        late (lag >= 2); None: no latency identified, or a lead beyond `max_lead` (held, blocked)."""
        if self.lag < 2 or not self._sent:
            return None
        measured = np.asarray(measured_arm, dtype=np.float64)
        if not np.all(np.abs(self._sent[-1] - measured) <= self.max_lead):
            return None
        q = measured.copy()
        for c in list(self._sent)[-(self.lag - 1):]:  # the commands the arm follows before the next one lands
            q += self.response * (c - q)
        return q - measured

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
        if self.fixed_response is None:
            self._fit_response(sent, usable)

    def _fit_response(self, sent: list[np.ndarray], usable: range) -> None:
        """The share of the way covered per period: measured[t+1] - measured[t] against the target
        followed over that period (the command sent lag - 1 ticks before measured[t+1]'s) - measured[t]."""
        if self.lag < 2:  # the arm follows the previous tick's command: nothing in flight to model
            return
        num = den = 0.0
        for j in usable:
            if j + 2 > len(self._measured) or self.lag - 1 + j >= len(sent):
                continue
            step = self._measured[-1 - j] - self._measured[-2 - j]
            way = sent[-(self.lag - 1) - j - 1] - self._measured[-2 - j]
            num += float(step @ way)
            den += float(way @ way)
        if den > 1e-8:
            self.response = float(np.clip(num / den, 0.2, 1.0))
