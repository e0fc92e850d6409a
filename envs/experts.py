"""Scripted experts: waypoint controllers through the env's own action interface.

Each expert reads privileged scene state (cube and goal positions) from the unwrapped
env, turns the current waypoint into an end-effector delta action for the same IK
controller a policy uses, and exposes its current phase. The phases are the ground
truth skill boundaries that skill-boundary detection is scored against, and the
phase groups are what the starter scripted skills in the library wrap.
"""

from __future__ import annotations

import gymnasium as gym
import numpy as np

from envs.base import PandaEnv
from envs.tasks import PandaPickPlaceEnv, PandaPushEnv, PandaReachEnv, PandaStackEnv

CARRY_HEIGHT = 0.12  # TCP height for carrying a cube over the table (m)
OPEN, CLOSED = 1.0, -1.0


class ScriptedExpert:
    """Base class: phase bookkeeping and a proportional move-to-waypoint action."""

    PHASES: tuple[str, ...] = ()

    def __init__(self, env: gym.Env, gain: float = 2.0):
        self.env: PandaEnv = env.unwrapped  # type: ignore[assignment]
        if self.env.action_mode != "ee":
            raise ValueError("scripted experts drive the end-effector action mode (action_mode='ee')")
        self.gain = gain
        self.reset()

    def reset(self) -> None:
        """Start a new episode (call after env.reset)."""
        self.phase_index = 0
        self.steps_in_phase = 0

    @property
    def phase(self) -> str:
        return self.PHASES[self.phase_index]

    @property
    def done(self) -> bool:
        """True once the expert has finished its script (it then holds still)."""
        return self.phase_index >= len(self.PHASES) - 1 and self._final_reached()

    def _final_reached(self) -> bool:
        return False

    def _go(self, phase: str) -> None:
        self.phase_index = self.PHASES.index(phase)
        self.steps_in_phase = 0

    def move(self, target: np.ndarray, gripper: float, max_speed: float = 1.0) -> np.ndarray:
        """Action moving the TCP towards `target` with the gripper command `gripper`."""
        env = self.env
        err = np.asarray(target) - env.tcp_pos()
        a = self.gain * err / env.max_delta
        peak = np.abs(a).max()
        if peak > max_speed:
            a *= max_speed / peak  # scale the whole vector: keeps the direction of motion
        out = np.zeros(env.action_space.shape)
        out[:3] = a
        out[-1] = gripper
        return out

    def act(self, obs: dict | None = None) -> np.ndarray:
        """Next action for the current state (obs is accepted for API symmetry; state is read from the env)."""
        action = self._act()
        self.steps_in_phase += 1
        return action.astype(np.float32)

    def _act(self) -> np.ndarray:
        raise NotImplementedError


class ReachExpert(ScriptedExpert):
    PHASES = ("reach",)

    def _act(self) -> np.ndarray:
        return self.move(self.env.goal, OPEN)


class PickPlaceExpert(ScriptedExpert):
    """reach (above, then down to the cube) -> grasp -> lift -> carry -> place -> release."""

    PHASES = ("reach", "grasp", "lift", "carry", "place", "release")
    cube = "red"

    def place_target(self) -> np.ndarray:
        return self.env.goal[:3]

    def _final_reached(self) -> bool:
        return self.steps_in_phase > 3

    def _act(self) -> np.ndarray:
        env = self.env
        cube = env.object_pos(self.cube)
        tcp = env.tcp_pos()
        h = env.cube_half_size
        goal = self.place_target()
        carry_z = max(CARRY_HEIGHT, goal[2] + 0.03)
        phase = self.phase
        if phase == "reach":
            above = cube + [0.0, 0.0, 0.06]
            if np.linalg.norm(tcp[:2] - cube[:2]) > 0.012 and tcp[2] > cube[2] + 0.02:
                return self.move(above, OPEN)
            if np.linalg.norm(tcp - cube) < 0.008 or (self.steps_in_phase > 30 and np.linalg.norm(tcp - cube) < 0.015):
                self._go("grasp")
            else:
                return self.move(cube, OPEN)
        if self.phase == "grasp":
            if self.steps_in_phase >= 4 and env.gripper_width() < 2 * h + 0.004:
                self._go("lift")
            else:
                return self.move(cube, CLOSED)
        if self.phase == "lift":
            if tcp[2] > carry_z - 0.03:
                self._go("carry")
            else:
                return self.move(np.array([cube[0], cube[1], carry_z]), CLOSED)
        if self.phase == "carry":
            over = np.array([goal[0], goal[1], carry_z])
            if np.linalg.norm(tcp[:2] - goal[:2]) < 0.01:
                self._go("place")
            else:
                return self.move(over, CLOSED)
        if self.phase == "place":
            in_air = goal[2] > h + 0.01 and not self.releases_in_air()
            err = float(np.linalg.norm(cube - goal))
            settled = err < 0.006 or (self.steps_in_phase > 15 and err < 0.015)
            if not in_air and settled and self.steps_in_phase > 2:
                self._go("release")
            else:
                # Aim the cube, not the TCP, at the goal: a grasp is rarely perfectly centred.
                return self.move(goal + (tcp - cube) + [0.0, 0.0, 0.002], CLOSED, max_speed=0.6)
        # release: open, then back off upwards.
        if self.steps_in_phase < 4:
            return self.move(tcp, OPEN)
        return self.move(np.array([tcp[0], tcp[1], goal[2] + 0.08]), OPEN)

    def releases_in_air(self) -> bool:
        return False


class StackExpert(PickPlaceExpert):
    """Pick red, place it on blue, release. Same phases as pick-and-place."""

    def place_target(self) -> np.ndarray:
        blue = self.env.object_pos("blue")
        return blue + [0.0, 0.0, 2 * self.env.cube_half_size]

    def releases_in_air(self) -> bool:
        return True  # the "air" goal is on top of blue: release there


class PushExpert(ScriptedExpert):
    """reach (behind the cube, low, gripper closed) -> push (towards the goal, then hold)."""

    PHASES = ("reach", "push")
    PUSH_Z = 0.026  # TCP height while pushing: pads cover the cube's lower two thirds

    def _act(self) -> np.ndarray:
        env = self.env
        cube = env.object_pos("red")
        goal = env.goal
        tcp = env.tcp_pos()
        h = env.cube_half_size
        to_goal = goal[:2] - cube[:2]
        dist = float(np.linalg.norm(to_goal))
        if self.phase == "push" and dist < 0.02:
            return self.move(tcp, CLOSED)  # there: hold still rather than chase noise
        direction = to_goal / max(dist, 1e-6)
        rel = tcp[:2] - cube[:2]
        if self.phase == "push":
            lateral = abs(rel[0] * direction[1] - rel[1] * direction[0])
            if lateral > 0.035 or np.dot(rel, direction) > -h:
                self._go("reach")  # lost the cube: go round again
            else:
                # Slow down near the goal: a fast push lets the cube slide past it.
                advance = min(dist, 0.04)
                target = cube[:2] - direction * (h + 0.012) + direction * advance
                speed = float(np.clip(4 * dist, 0.15, 0.5))
                return self.move(np.array([target[0], target[1], self.PUSH_Z]), CLOSED, max_speed=speed)
        # reach: above a point behind the cube, then straight down, then push.
        behind = cube[:2] - direction * (h + 0.035)
        if np.linalg.norm(tcp[:2] - behind) > 0.012:
            z = max(tcp[2], 0.07) if np.linalg.norm(tcp[:2] - behind) > 0.03 else tcp[2]
            return self.move(np.array([behind[0], behind[1], min(z, 0.12)]), CLOSED)
        if tcp[2] > self.PUSH_Z + 0.01:
            return self.move(np.array([behind[0], behind[1], self.PUSH_Z]), CLOSED)
        self._go("push")
        return self._act()


EXPERTS: dict[type, type[ScriptedExpert]] = {
    PandaReachEnv: ReachExpert,
    PandaPickPlaceEnv: PickPlaceExpert,
    PandaStackEnv: StackExpert,
    PandaPushEnv: PushExpert,
}


def make_expert(env: gym.Env) -> ScriptedExpert:
    """The scripted expert for an env's task (looked up by the task class, most specific first)."""
    task = type(env.unwrapped)
    for cls in task.__mro__:
        if cls in EXPERTS:
            return EXPERTS[cls](env)
    raise ValueError(f"no scripted expert for {task.__name__}; experts exist for {[c.__name__ for c in EXPERTS]}")


def run_expert_episode(
    env: gym.Env,
    seed: int | None = None,
    camera: str | None = None,
    width: int = 480,
    height: int = 360,
) -> dict:
    """Run the scripted expert for one full episode.

    Returns success (at the last step), steps, summed safety cost, the phase per step and,
    when `camera` is given, the rendered frames (first frame is the reset state).
    """
    obs, _ = env.reset(seed=seed)
    expert = make_expert(env)
    frames = [env.unwrapped.render_camera(camera, width, height)] if camera else []
    phases: list[str] = []
    safety = 0.0
    info: dict = {"is_success": 0.0}
    steps = 0
    while True:
        action = expert.act(obs)
        phases.append(expert.phase)
        obs, _, terminated, truncated, info = env.step(action)
        steps += 1
        safety += info["safety_cost"]
        if camera:
            frames.append(env.unwrapped.render_camera(camera, width, height))
        if terminated or truncated:
            break
    return {
        "success": bool(info["is_success"]),
        "steps": steps,
        "safety_cost": safety,
        "phases": phases,
        "frames": frames,
    }
