"""Test helpers for robot models: TCP against a reference kinematic chain, servo tracking of a joint step."""

from collections.abc import Callable

import mujoco
import numpy as np

from envs.robot import Robot


def worst_fk_error(
    model: mujoco.MjModel, robot: Robot, reference: Callable[[np.ndarray], np.ndarray], n: int = 100, seed: int = 0
) -> tuple[float, float]:
    """Largest TCP position error (m) and rotation-matrix entry error over `n` uniform random configurations.

    `reference(q)` is the 4x4 TCP pose of the reference chain (for example the published DH parameters).
    """
    data = mujoco.MjData(model)
    rng = np.random.default_rng(seed)
    worst_pos, worst_rot = 0.0, 0.0
    for _ in range(n):
        q = rng.uniform(robot.q_min, robot.q_max)
        data.qpos[robot.arm_qpos] = q
        mujoco.mj_kinematics(model, data)
        ref = reference(q)
        worst_pos = max(worst_pos, float(np.linalg.norm(ref[:3, 3] - data.site_xpos[robot.tcp_site])))
        worst_rot = max(worst_rot, float(np.abs(ref[:3, :3] - data.site_xmat[robot.tcp_site].reshape(3, 3)).max()))
    return worst_pos, worst_rot


def servo_step_fractions(model: mujoco.MjModel, robot: Robot, step: float = 0.05, nstep: int = 40) -> list[float]:
    """Per arm joint, the fraction of a `step` (rad) added to its home target reached after `nstep` physics steps."""
    data = mujoco.MjData(model)
    out = []
    for j in range(robot.n_arm):
        mujoco.mj_resetData(model, data)
        robot.set_home(model, data)
        mujoco.mj_forward(model, data)
        data.ctrl[robot.arm_actuators[j]] += step
        mujoco.mj_step(model, data, nstep=nstep)
        out.append(float((data.qpos[robot.arm_qpos[j]] - robot.home_qpos[j]) / step))
    return out
