"""What the executor will do on a robot, resolved from its parameters and robot profile (no rclpy).

`plan_bringup` turns `ExecutorParams` (profile name plus overrides) and the task's MuJoCo model
into a `BringupPlan`: which topics joint states come from and each one's watchdog threshold,
which joints go to the arm controller and which to the gripper's own command path, the limits
in force (the tighter of the description's and the profile's), the velocity ramp after a start,
and whether commands go out at all (shadow mode). `summary_lines` prints it: the start-up
summary every executor logs, so an operator sees the topics, joints, limits and rates in force
before anything moves.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from ros_bridge.joint_states import StateTopic
from ros_bridge.params import ExecutorParams
from ros_bridge.profile import GripperCommandPath, ProfileError, RobotProfile, StateSource
from ros_bridge.safety import JointLimits, SafetyConfig

__all__ = ["BringupPlan", "plan_bringup", "summary_lines"]


@dataclass(frozen=True)
class BringupPlan:
    """Everything the executor needs to talk to one robot (see the module docstring)."""

    profile: RobotProfile
    state_topics: tuple[StateTopic, ...]  # description joint names, watchdog thresholds
    state_rates: tuple[float, ...]  # expected Hz of each state topic
    joint_names: tuple[str, ...]  # description joints, arm then gripper (the task's state order)
    controller: str
    interface: str  # position | trajectory | action (what the profile or parameters ask for)
    arm_joints: tuple[str, ...]  # driver names, the arm controller's order
    gripper: GripperCommandPath  # interface 'arm' or 'none': nothing of its own
    gripper_joints: tuple[str, ...]  # driver names on the gripper's own path ((): none)
    limits: JointLimits  # of the commanded joints (description names), arm then own-path gripper
    safety: SafetyConfig  # with the profile's ramp
    shadow: bool

    @property
    def command_joints(self) -> tuple[str, ...]:
        """Driver names of every commanded joint: the arm controller's, then the gripper's own."""
        return self.arm_joints + self.gripper_joints

    @property
    def aliases(self) -> dict[str, str]:
        """Driver name -> description name."""
        return dict(self.profile.joint_map)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready (the executor's ~/summary topic)."""
        return {
            "profile": self.profile.name,
            "robot": self.profile.robot,
            "driver": self.profile.driver,
            "base_frame": self.profile.base_frame,
            "frames": [self.profile.base_frame, *(f for f, _ in self.profile.frames)],
            "joint_states": [
                {"topic": t.topic, "rate_hz": r, "joints": self.profile.to_driver(t.joints), "stale_after_s": round(t.stale_after_s, 4)}
                for t, r in zip(self.state_topics, self.state_rates)
            ],
            "arm": {"controller": self.controller, "interface": self.interface, "joints": list(self.arm_joints)},
            "gripper": {"interface": self.gripper.interface, "joints": list(self.gripper_joints or self.gripper.joints),
                        "action": self.gripper.action, "command_joint": self.gripper.command_joint,
                        "controller": self.gripper.controller},
            "limits": {
                drv: {"lower": round(float(lo), 4), "upper": round(float(hi), 4), "velocity": round(float(v), 4)}
                for drv, lo, hi, v in zip(self.command_joints, self.limits.lower, self.limits.upper, self.limits.velocity)
            },
            "ramp_s": self.safety.ramp_s,
            "shadow": self.shadow,
        }  # fmt: skip


def _state_topics(p: ExecutorParams, profile: RobotProfile) -> tuple[tuple[StateSource, ...], RobotProfile]:
    if p.state_source:
        profile = profile.with_state_source(p.state_source)
    if p.joint_states_topic:  # one topic carrying every joint (the parameter of old)
        rate = (profile.merged or profile.sources[0]).rate_hz
        match = [s for s in (*profile.sources, *((profile.merged,) if profile.merged else ())) if s.topic == p.joint_states_topic]
        return (StateSource(p.joint_states_topic, match[0].rate_hz if match else rate, profile.driver_joints),), profile
    return profile.state_sources, profile


def plan_bringup(p: ExecutorParams, model: Any, period_s: float) -> BringupPlan:
    """Resolve parameters + profile against the task's compiled model (joint ranges) for a
    control period of `period_s`. ProfileError/ValueError name what does not fit."""
    profile = p.robot_profile
    desc = profile.description
    model_joints = {model.joint(i).name for i in range(model.njnt)}
    missing = [n for n in desc.joint_names if n not in model_joints]
    if missing:
        raise ProfileError(f"profile {profile.name!r} drives the {desc.name}, but the task's model lacks {missing}")
    sources, profile = _state_topics(p, profile)
    topics = tuple(
        StateTopic(s.topic, tuple(profile.to_description(s.joints)), s.stale_after_s(p.safety.stale_after_s, profile.missed_messages))
        for s in sources
    )
    interface = p.interface or profile.arm.interface
    gripper = profile.gripper
    if p.joints:
        arm_joints = tuple(profile.with_joint_names(p.joints))
    else:
        arm_joints = profile.arm.joints
    own = gripper.interface in ("action", "trajectory", "position")
    gripper_joints = tuple(j for j in gripper.joints if j not in arm_joints) if own else ()
    if own and set(gripper.joints) & set(arm_joints):
        raise ProfileError(f"profile {profile.name!r}: gripper joints {list(gripper.joints)} have their own command path; leave them out of the arm's joints")
    commanded = profile.to_description(arm_joints + gripper_joints)
    base = JointLimits.from_model(model, commanded, robot=desc)
    lo, hi, vel = profile.limits_for(commanded, base.lower, base.upper, base.velocity)
    limits = JointLimits(tuple(commanded), lo, hi, vel)
    safety = dataclasses.replace(p.safety, period_s=period_s, ramp_s=max(p.safety.ramp_s, profile.ramp_s))
    return BringupPlan(
        profile=profile,
        state_topics=topics,
        state_rates=tuple(s.rate_hz for s in sources),
        joint_names=desc.joint_names,
        controller=(p.controller or profile.arm.controller).strip("/"),
        interface=interface,
        arm_joints=arm_joints,
        gripper=gripper,
        gripper_joints=gripper_joints,
        limits=limits,
        safety=safety,
        shadow=p.shadow,
    )


def summary_lines(plan: BringupPlan, *, rate_hz: float, arm_path: str, gripper_path: str, autostart: bool) -> list[str]:
    """The start-up summary: profile, state topics with rates and watchdogs, command paths, limits."""
    prof = plan.profile
    lines = [f"profile {prof.name}: {prof.title} (robot description {prof.robot}); base frame {prof.base_frame}"
             + (f"; poses also accepted in {[f for f, _ in prof.frames]}" if prof.frames else "")]
    for t, r in zip(plan.state_topics, plan.state_rates):
        lines.append(f"  joint states {t.topic} at {r:g} Hz: {prof.to_driver(t.joints)}; stale after {t.stale_after_s * 1e3:.0f} ms")
    lines.append(f"  control at {rate_hz:g} Hz; arm -> {arm_path}")
    lines.append(f"  gripper -> {gripper_path}")
    lines.append(f"  limits in force (lower .. upper rad|m, max velocity), velocity scale {plan.safety.velocity_scale:g}, "
                 f"ramp {plan.safety.ramp_s:g} s after each start:")
    for drv, lo, hi, v in zip(plan.command_joints, plan.limits.lower, plan.limits.upper, plan.limits.velocity):
        lines.append(f"    {drv:<28} {lo:+8.4f} .. {hi:+8.4f}  {v:6.3f}/s")
    ws = "off" if not plan.safety.workspace_enabled else f"{list(plan.safety.workspace_min)} .. {list(plan.safety.workspace_max)}"
    lines.append(f"  workspace box {ws}; tracking window {plan.safety.max_tracking_error:g}")
    if plan.shadow:
        lines.append("  SHADOW MODE: commands are computed and published on ~/preview only; nothing goes to the controllers")
    lines.append("  starts on its own once states arrive" if autostart else "  waits for ~/start before it moves")
    return lines

