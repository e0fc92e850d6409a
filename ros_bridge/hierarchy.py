"""Run the library's hierarchical controller (a long-horizon task) on the robot.

`planning.HierarchicalController.run_episode(env, goal)` *pulls*: it calls
`env.reset()` and then `env.step(action)` once per control period, planning and
monitoring skills in between. On the robot the clock is the joint-state stream instead,
so the controller runs in a worker thread against `RobotTaskEnv`, whose `step` hands the
action to the executor's control period and blocks until the next period's observation.
`HierarchicalPolicy` is the executor's side of that handshake: called once per period
with the fresh observation, it returns the controller's action (or None when the
controller is still thinking: the executor then holds, like any policy that is late).

Both sides touch the task's scratch environment (the executor writes the measured state
into it; the controller and its scripted skills read it), so they take turns under one
lock: the worker holds it from receiving an observation until it returns its action.
No rclpy here.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from types import SimpleNamespace
from typing import Any

import numpy as np

from ros_bridge.task import TaskModel

__all__ = ["HierarchicalPolicy", "RobotTaskEnv", "resolve_plan_task"]


class _Aborted(Exception):
    """Raised inside the worker's env.step when the executor stops the episode."""


class RobotTaskEnv:
    """Gymnasium-style env over the robot for pulling controllers (see module docstring).

    reset() returns the current observation (the robot is not teleported anywhere);
    step(action) returns the observation of the next control period, reward 0 and
    `info["is_success"]` from the task's own test. `unwrapped` is the scratch env holding
    the measured state, which is what planners and scripted skills read.
    """

    def __init__(self, task: TaskModel, lock: threading.Lock, max_episode_steps: int):
        self.task = task
        self.lock = lock
        self.unwrapped = task.env
        self.action_space = task.env.action_space
        self.observation_space = task.env.observation_space
        self.spec = SimpleNamespace(max_episode_steps=int(max_episode_steps), id=task.env_id)
        self._cv = threading.Condition()
        self._obs: Mapping[str, np.ndarray] | None = None
        self._obs_seq = 0
        self._seen_seq = 0
        self._action: np.ndarray | None = None
        self._action_seq = -1
        self._consumed_seq = -1
        self._aborted = False
        self.has_lock = False

    # -- worker side (the controller's thread) -------------------------------------------------
    def reset(self, seed: int | None = None, options: Any = None) -> tuple[Mapping[str, np.ndarray], dict]:
        """Wait for the first observation of the episode."""
        with self._cv:
            self._cv.wait_for(lambda: self._obs_seq > 0 or self._aborted)
            if self._aborted:
                raise _Aborted()
            self._seen_seq = self._obs_seq
            obs = self._obs
        self.lock.acquire()
        self.has_lock = True
        return obs, {"is_success": float(self.task.is_success(obs))}

    def step(self, action: Any) -> tuple[Mapping[str, np.ndarray], float, bool, bool, dict]:
        """Hand `action` to the executor; block until the next period's observation."""
        with self._cv:
            self._action = np.asarray(action, dtype=np.float64)
            self._action_seq = self._seen_seq
            self._cv.notify_all()
        self.has_lock = False
        self.lock.release()
        with self._cv:
            self._cv.wait_for(lambda: self._obs_seq > self._seen_seq or self._aborted)
            if self._aborted:
                raise _Aborted()
            self._seen_seq = self._obs_seq
            obs = self._obs
        self.lock.acquire()
        self.has_lock = True
        return obs, 0.0, False, False, {"is_success": float(self.task.is_success(obs)), "safety_cost": 0.0}

    def render_camera(self, *args: Any, **kwargs: Any) -> np.ndarray:
        """There is no simulator camera on the robot path."""
        raise RuntimeError("no cameras on the robot path")

    # -- executor side -----------------------------------------------------------------------
    def offer(self, obs: Mapping[str, np.ndarray], wait_s: float) -> np.ndarray | None:
        """Publish this period's observation; return the controller's newest unused action,
        waiting up to `wait_s` for one that answers this observation."""
        with self._cv:
            self._obs = obs
            self._obs_seq += 1
            seq = self._obs_seq
            self._cv.notify_all()
            self._cv.wait_for(lambda: self._action_seq >= seq or self._aborted, timeout=wait_s)
            if self._action is not None and self._action_seq > self._consumed_seq:
                self._consumed_seq = self._action_seq
                return self._action
            return None

    def abort(self) -> None:
        """Make the worker's pending or next reset/step raise and end its episode."""
        with self._cv:
            self._aborted = True
            self._cv.notify_all()


def resolve_plan_task(plan_task: str, plan_goal: str = "") -> tuple[str, Any]:
    """(env id, goal literals) of a long-horizon task name, env id or YAML spec
    (`planning.resolve_task`), with `plan_goal` overriding the goal."""
    from planning import resolve_task

    spec = resolve_task(plan_task, plan_goal or None)
    if not spec.env_id:
        raise ValueError(f"plan task {plan_task!r} names no env; give an env id or a YAML spec with 'env'")
    return spec.env_id, spec.goal


class HierarchicalPolicy:
    """The hierarchical controller over library skills, as an executor policy.

    Call `reset()` to start an episode (a worker thread runs `run_episode`); then call
    the policy once per control period with the observation. `done` turns true when the
    controller's episode ends (goal reached and held, budget or decisions exhausted).
    """

    def __init__(
        self,
        task: TaskModel,
        goal: Any,
        lock: threading.Lock,
        *,
        library_root: str | None = None,
        kinds: str = "all",
        lock_file: str | None = None,
        max_episode_steps: int = 1000,
        wait_fraction: float = 0.5,
        period_s: float = 0.04,
        seed: int = 0,
        log: Callable[[str], None] | None = None,
    ):
        from skill_library import SkillLibrary
        from planning import HierarchicalController, load_library_skills

        self.task = task
        self.goal = tuple(goal)
        self.lock = lock
        library = SkillLibrary(library_root or None)
        if lock_file:  # exactly the pinned skills, each checked against its pin
            from skill_library.lockfile import load_locked_skills

            skills = load_locked_skills(library, lock_file, kinds)
        else:
            skills = load_library_skills(library, kinds)
        self.controller = HierarchicalController(skills, seed=seed)
        self.max_episode_steps = int(max_episode_steps)
        self.wait_s = wait_fraction * period_s
        self.env: RobotTaskEnv | None = None
        self.thread: threading.Thread | None = None
        self.result: Any = None
        self.error: BaseException | None = None
        self._decided: list[Any] = []  # the controller's Decision objects, filled in as each skill ends
        self._log = log  # one line per decision and per outcome (the node's log: what the controller did)
        self._domain: Any = None

    @property
    def done(self) -> bool:
        """True once the controller's episode has ended (or failed)."""
        return self.thread is not None and not self.thread.is_alive()

    def reset(self) -> None:
        """Abort any running episode and start a new one."""
        self.close()
        self.result = self.error = None
        self._domain = None
        self._decided = []
        self.controller.scene_estimate = None  # the last episode's: the new one makes its own
        env = self.env = RobotTaskEnv(self.task, self.lock, self.max_episode_steps)

        def work() -> None:
            try:
                self.result = self.controller.run_episode(
                    env, self.goal, seed=None, step_callback=lambda _e, _s, d: self._note(d)
                )
            except _Aborted:
                pass
            except BaseException as exc:  # reported through `error`; the executor holds
                self.error = exc
            finally:
                if env.has_lock:
                    env.has_lock = False
                    self.lock.release()

        self.thread = threading.Thread(target=work, name="hierarchical-controller", daemon=True)
        self.thread.start()

    def _note(self, decision: Any) -> None:
        # called every control period of a skill: one entry per decision (a retried skill is a new one)
        if not self._decided or self._decided[-1] is not decision:
            if self._log is not None:
                if self._decided:
                    last = self._decided[-1]
                    self._log(f"skill {last.label}: {last.outcome} ({last.reason}) after {last.steps} steps")
                self._log(f"skill {decision.label} started at step {decision.env_step}"
                          + (" (re-plan)" if decision.replan else "") + f", plan {' -> '.join(decision.plan)}")
            self._decided.append(decision)

    def __call__(self, obs: Mapping[str, np.ndarray]) -> np.ndarray | None:
        """This period's action from the controller, or None if it has none ready."""
        if self.env is None or self.done:
            return None
        return self.env.offer(obs, self.wait_s)

    def goal_holds(self) -> bool:
        """Whether the plan's goal literals hold in the measured scene now.

        The symbolic goal is the test on the robot: a long-horizon env's geometric success
        refers to where *its* reset put the cubes, not where they stand on the robot's table.
        The domain (goal sites, staging points) is fixed from the first scene of the episode,
        as `run_episode` does. The scene is the controller's own estimate while it runs (single
        perceived poses are too noisy for `on`), else the measured one.
        """
        from planning.grounding import staging_points
        from planning.symbolic import Domain, holds, scene_atoms

        est = self.controller.scene_estimate
        scene = est.scene if est is not None and est.scene is not None else self.task.env.scene_state()
        if self._domain is None:
            self._domain = Domain.from_scene(scene, staging_points(scene))
        return holds(scene_atoms(scene, self._domain), self.goal)

    def summary(self) -> dict[str, Any]:
        """What the controller did so far: decisions, and its result or error once ended."""
        # Once ended, the result lists every decision, also those that ended before their first step.
        decided = list(self.result.decisions) if self.result is not None else list(self._decided)
        out: dict[str, Any] = {"decisions": [f"{d.label}" for d in decided],
                               # what came of each: why a plan failed on the robot, without the node's logs
                               "outcomes": [{"skill": d.label, "outcome": d.outcome, "reason": d.reason, "steps": int(d.steps)}
                                            for d in decided]}
        if self.result is not None:
            out.update(success=bool(self.result.success), goal_holds=bool(self.result.goal_holds),
                       stop_reason=self.result.stop_reason, steps=int(self.result.steps))
        if self.error is not None:
            out["error"] = f"{type(self.error).__name__}: {self.error}"
        return out

    @property
    def current_skill(self) -> str:
        """Label of the skill the controller is running now ('' before the first decision)."""
        return f"{self._decided[-1].label}" if self._decided else ""

    def close(self) -> None:
        """Stop the worker (its episode ends at its next step)."""
        if self.env is not None:
            self.env.abort()
        if self.thread is not None:
            self.thread.join(timeout=2.0)
        self.thread = None
