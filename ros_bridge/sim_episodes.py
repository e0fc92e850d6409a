"""Episodes through ROS 2: sim_robot in this process, skill_executor as a process, scored on the true state.

`SimEpisodes` runs sim_robot (with its perturbation condition) in the calling thread's own rclpy
context and a fresh skill_executor process per episode, as `skillstack deploy` starts it, on a
domain of their own. An episode is a number of control ticks (arm commands sim_robot received,
the envs' steps: `ros_bridge.sim_conditions`); at its end the true joint and cube positions are
read from sim_robot's MuJoCo data (one thread: the caller spins the node, so nothing races), for
the caller to score with the env's own success test. `skillstack bench robustness` is built on it.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ros_bridge.launcher import NodeProcess, write_params_file
from ros_bridge.sim_robot import SimRobot  # (checks the ROS environment first)

import rclpy  # noqa: E402
from rclpy.context import Context  # noqa: E402
from rclpy.executors import SingleThreadedExecutor  # noqa: E402
from rclpy.parameter import Parameter  # noqa: E402

__all__ = ["EpisodeEnd", "SimEpisodes", "load_true_state"]


class EpisodeEnd(dict):
    """How one episode ended: `ticks`, `seconds`, `reason` ("ticks" | "timeout" | "executor exited"), `qpos` (joint name -> values)."""


class SimEpisodes:
    """sim_robot in this process under `condition`, and one skill_executor process per episode."""

    def __init__(self, domain_id: int, objects: Sequence[str], condition: str, workdir: str | Path, seed: int = 0,
                 sim_params: Mapping[str, Any] | None = None):
        """sim_params: more sim_robot parameters (e.g. its cameras, `camera.rate`)."""
        os.environ["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"
        self.domain_id = int(domain_id)
        self.workdir = Path(workdir)
        self.context = Context()
        rclpy.init(context=self.context, domain_id=self.domain_id)
        params = {"objects": list(objects), "condition": condition or "nominal", "seed": int(seed), **dict(sim_params or {})}
        self.sim = SimRobot(context=self.context, parameter_overrides=[Parameter(k, value=v) for k, v in params.items()])
        self.executor = SingleThreadedExecutor(context=self.context)
        self.executor.add_node(self.sim)
        self.episodes = 0

    def run(self, seed: int, object_positions: Sequence[float], executor_params: Mapping[str, Any], ticks: int,
            timeout_s: float, on_tick: Callable[[int, dict[str, np.ndarray]], None] | None = None) -> EpisodeEnd:
        """One episode: reset the scene (`seed`: the condition's draws; cubes at `object_positions`),
        start skill_executor with `executor_params`, spin until sim_robot has received `ticks` arm
        commands (or `timeout_s`), read the true state, stop the executor. `on_tick(tick, qpos)`
        sees the true state after every tick."""
        self.sim.reset_scene(seed=seed, object_positions=list(object_positions))
        self.episodes += 1
        f = write_params_file(self.workdir / f"executor_{self.episodes}.yaml", {"skill_executor": dict(executor_params)})
        proc = NodeProcess("skill_executor", f, domain_id=self.domain_id, localhost_only=True,
                           log_path=self.workdir / f"executor_{self.episodes}.log").start()
        t0 = time.monotonic()
        reason = "timeout"
        seen = 0
        try:
            while time.monotonic() - t0 < timeout_s:
                self.executor.spin_once(timeout_sec=0.002)
                now = self.sim.conditions.ticks
                if on_tick is not None and now > seen:
                    on_tick(now, self.true_qpos())
                seen = now
                if now >= ticks:
                    reason = "ticks"
                    break
                if not proc.alive():
                    reason = "executor exited"
                    break
            end = EpisodeEnd(ticks=self.sim.conditions.ticks, seconds=time.monotonic() - t0, reason=reason, qpos=self.true_qpos())
        finally:
            proc.stop()
        if reason != "ticks":
            end["log"] = proc.log_text()[-2000:]
        return end

    def true_qpos(self) -> dict[str, np.ndarray]:
        """sim_robot's true joint positions (robot and cubes), by joint name."""
        m, d = self.sim.model, self.sim.data
        return {m.joint(j).name: d.qpos[m.jnt_qposadr[j] : m.jnt_qposadr[j] + _qpos_size(m, j)].copy() for j in range(m.njnt)}

    def close(self) -> None:
        """Stop sim_robot and shut its context down."""
        self.sim.close()
        self.executor.shutdown(timeout_sec=1.0)
        self.sim.destroy_node()
        if self.context.ok():
            rclpy.shutdown(context=self.context)


def _qpos_size(model: Any, j: int) -> int:
    import mujoco

    return {mujoco.mjtJoint.mjJNT_FREE: 7, mujoco.mjtJoint.mjJNT_BALL: 4}.get(int(model.jnt_type[j]), 1)


def load_true_state(env: Any, qpos: Mapping[str, np.ndarray]) -> None:
    """Write a true state read by `SimEpisodes.run` into an env (joints matched by name), kinematics current."""
    import mujoco

    u = env.unwrapped
    for name, value in qpos.items():
        j = u.model.joint(name)
        u.data.qpos[j.qposadr[0] : j.qposadr[0] + len(value)] = value
    mujoco.mj_forward(u.model, u.data)
