"""Safety layer, state caches and parameters of the ROS bridge: pure numpy, no ROS needed."""

from __future__ import annotations

import ast
import math
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import sim_assets
from envs.robot import Q_MAX, Q_MIN, QD_MAX
from ros_bridge.params import (
    DEFAULT_PARAMS_FILE,
    ExecutorParams,
    SimRobotParams,
    node_params,
    params_from_mapping,
    read_params_file,
)
from ros_bridge.safety import (
    PANDA_JOINTS,
    Fault,
    JointLimits,
    SafetyConfig,
    SafetyLayer,
    SafetyState,
    TcpKinematics,
)
from ros_bridge.state import JointStateCache, PoseCache, quat_angular_velocity

MODEL = sim_assets.load_panda()
LIMITS = JointLimits.from_model(MODEL)
HOME = np.array(MODEL.numeric("panda_home_qpos").data)
KIN = TcpKinematics(MODEL)
PERIOD = 0.04


def layer(**cfg) -> SafetyLayer:
    return SafetyLayer(LIMITS, SafetyConfig(period_s=PERIOD, **cfg), KIN)


def step_size(layer_: SafetyLayer) -> np.ndarray:
    return LIMITS.velocity * layer_.config.velocity_scale * layer_.config.period_s


# --------------------------------------------------------------------------- limits


def test_limits_come_from_the_model() -> None:
    assert LIMITS.names == PANDA_JOINTS
    np.testing.assert_allclose(LIMITS.lower[:7], Q_MIN)
    np.testing.assert_allclose(LIMITS.upper[:7], Q_MAX)
    np.testing.assert_allclose(LIMITS.velocity[:7], QD_MAX)
    np.testing.assert_allclose(LIMITS.lower[7:], 0.0)
    np.testing.assert_allclose(LIMITS.upper[7:], 0.04)


def test_limits_reject_unknown_joint_and_bad_values() -> None:
    with pytest.raises(ValueError, match="no joint 'elbow'"):
        JointLimits.from_model(MODEL, ["elbow"])
    with pytest.raises(ValueError, match="lower > upper"):
        JointLimits(("a",), np.array([1.0]), np.array([0.0]), np.array([1.0]))
    with pytest.raises(ValueError, match="velocity"):
        JointLimits(("a",), np.array([0.0]), np.array([1.0]), np.array([0.0]))


def test_config_validation() -> None:
    with pytest.raises(ValueError, match="workspace box"):
        SafetyConfig(workspace_min=(0, 0, 0), workspace_max=(1, 1, 0))
    with pytest.raises(ValueError, match="stale_after_s"):
        SafetyConfig(stale_after_s=0)
    with pytest.raises(ValueError, match="unknown safety parameter"):
        SafetyConfig.from_dict({"speed": 1})


def test_home_tcp_is_inside_default_workspace() -> None:
    cfg = SafetyConfig()
    tcp = KIN.tcp_position(HOME[:7])
    assert np.all(tcp > cfg.workspace_min) and np.all(tcp < cfg.workspace_max)


# --------------------------------------------------------------------------- behaviours


def test_small_moves_pass_unchanged() -> None:
    s = layer()
    target = HOME + np.r_[[0.01] * 7, [-0.001] * 2]  # fingers start fully open (upper limit)
    out = s.step(target, HOME, 0.01)
    assert out.publish and out.state is SafetyState.RUNNING and out.clamped == () and out.reanchored
    np.testing.assert_allclose(out.target, target)


def test_velocity_is_limited_per_period() -> None:
    s = layer()
    far = HOME.copy()
    far[0] += 1.0
    out = s.step(far, HOME, 0.01)
    assert "velocity" in out.clamped
    assert out.target[0] == pytest.approx(HOME[0] + step_size(s)[0])
    out2 = s.step(far, HOME, 0.01)
    assert out2.target[0] == pytest.approx(HOME[0] + 2 * step_size(s)[0])


def test_position_limits_hold_for_a_target_far_outside() -> None:
    s = layer(workspace_enabled=False, max_tracking_error=math.inf, velocity_scale=100.0)
    q = HOME.copy()
    for _ in range(50):
        out = s.step(np.full(9, 50.0), q, 0.01)
        q = out.target
    np.testing.assert_allclose(q, LIMITS.upper)
    assert "position" in out.clamped


def test_joint_margin_shrinks_limits() -> None:
    s = layer(workspace_enabled=False, max_tracking_error=math.inf, velocity_scale=100.0, joint_margin=0.1)
    q = HOME.copy()
    for _ in range(50):
        q = s.step(np.full(9, -50.0), q, 0.01).target
    np.testing.assert_allclose(q[:7], LIMITS.lower[:7] + 0.1)
    np.testing.assert_allclose(q[7:], 0.02)  # margin capped at half the 4 cm finger range


def test_tracking_window_bounds_target_to_measured() -> None:
    s = layer(velocity_scale=100.0, max_tracking_error=0.2, workspace_enabled=False)
    target = HOME.copy()
    target[0] += 1.0
    out = s.step(target, HOME, 0.01)
    assert out.target[0] == pytest.approx(HOME[0] + 0.2)
    assert "tracking" in out.clamped


def test_workspace_box_stops_the_tcp_at_the_table() -> None:
    s = layer(velocity_scale=5.0)
    z_min = s.config.workspace_min[2]
    # Joint 4 towards its upper limit stretches the arm down into the table.
    q = HOME.copy()
    for _ in range(100):
        target = q.copy()
        target[1] += 0.2
        target[3] += 0.2
        out = s.step(target, q, 0.01)
        q = out.target
        assert KIN.tcp_position(q[:7])[2] >= z_min - 1e-6
    assert "workspace" in out.clamped
    assert KIN.tcp_position(q[:7])[2] == pytest.approx(z_min, abs=5e-3)


def test_outside_the_box_only_moves_back_in() -> None:
    s = layer(workspace_min=(0.1, -0.7, 0.3), workspace_max=(0.95, 0.7, 0.9))  # home TCP (z 0.19) is below
    z0 = KIN.tcp_position(HOME[:7])[2]
    down = HOME.copy()
    down[3] += 0.05  # lowers the TCP
    out = s.step(down, HOME, 0.01)
    assert KIN.tcp_position(out.target[:7])[2] >= z0 - 1e-6
    up = HOME.copy()
    up[3] -= 0.05
    out = s.step(up, HOME, 0.01)
    assert KIN.tcp_position(out.target[:7])[2] > z0


def test_watchdog_silences_on_stale_or_missing_states_and_reanchors() -> None:
    s = layer()
    out = s.step(HOME, None, None)
    assert out.fault is Fault.NO_STATE and out.state is SafetyState.WAITING and not out.publish
    s.step(HOME + 0.01, HOME, 0.01)
    out = s.step(HOME + 0.02, HOME, 0.15)
    assert not out.publish and out.state is SafetyState.STALE and out.fault is Fault.STALE_STATE
    assert s.step(HOME, HOME, float("nan")).fault is Fault.STALE_STATE
    moved = HOME.copy()
    moved[0] += 0.3  # the robot moved (or restarted elsewhere) while states were stale
    out = s.step(moved + 0.5, moved, 0.01)
    assert out.publish and out.reanchored
    assert np.all(np.abs(out.target - moved) <= step_size(s) + 1e-12)


def test_nan_state_or_target_holds_last_safe_target() -> None:
    s = layer()
    first = s.step(HOME + 0.01, HOME, 0.01).target
    bad_state = HOME.copy()
    bad_state[2] = np.nan
    out = s.step(HOME + 0.02, bad_state, 0.01)
    assert out.publish and out.state is SafetyState.HOLD and out.fault is Fault.NONFINITE_STATE
    np.testing.assert_array_equal(out.target, first)
    bad_target = HOME.copy()
    bad_target[5] = np.inf
    out = s.step(bad_target, HOME, 0.01)
    assert out.fault is Fault.NONFINITE_TARGET
    np.testing.assert_array_equal(out.target, first)
    out = s.hold(Fault.NONFINITE_ACTION, "policy said NaN")
    np.testing.assert_array_equal(out.target, first)
    assert s.last_fault is Fault.NONFINITE_ACTION


def test_nan_before_any_target_sends_nothing() -> None:
    s = layer()
    out = s.step(np.full(9, np.nan), HOME, 0.01)
    assert not out.publish and out.target is None and out.fault is Fault.NONFINITE_TARGET


def test_estop_latches_until_reset() -> None:
    s = layer()
    last = s.step(HOME + 0.01, HOME, 0.01).target
    hold = s.estop("test")
    np.testing.assert_array_equal(hold, last)
    assert s.estopped
    for _ in range(3):
        out = s.step(HOME + 0.02, HOME, 0.01)
        assert not out.publish and out.state is SafetyState.ESTOP
    assert not s.hold().publish
    s.reset()
    out = s.step(HOME + 0.02, HOME, 0.01)
    assert out.publish and out.reanchored


def test_wrong_shapes_are_errors() -> None:
    s = layer()
    with pytest.raises(ValueError, match="shape"):
        s.step(np.zeros(7), HOME, 0.01)
    with pytest.raises(ValueError, match="shape"):
        s.step(HOME, np.zeros(3), 0.01)


def test_arm_only_layer_skips_workspace_without_arm_joints() -> None:
    fingers = JointLimits.from_model(MODEL, PANDA_JOINTS[7:])
    s = SafetyLayer(fingers, SafetyConfig(period_s=PERIOD))
    out = s.step(np.array([1.0, -1.0]), np.array([0.02, 0.02]), 0.01)
    assert np.all(out.target >= 0) and np.all(out.target <= 0.04)


# --------------------------------------------------------------------------- property: no output leaves limits

finite_or_not = st.one_of(
    st.floats(-4.0, 4.0),
    st.floats(-1e6, 1e6),
    st.sampled_from([float("nan"), float("inf"), -float("inf"), 1e300]),
)
vec9 = st.lists(finite_or_not, min_size=9, max_size=9).map(np.array)
near_home = st.lists(st.floats(-0.4, 0.4), min_size=9, max_size=9).map(lambda d: HOME + np.array(d))
fresh = st.floats(0.0, 0.09)
ages = st.one_of(fresh, fresh, fresh, st.none(), st.floats(0.0, 1.0), st.just(float("nan")))
good_step = st.tuples(st.just("step"), st.one_of(near_home, near_home, near_home, vec9), near_home, fresh)
any_step = st.tuples(st.just("step"), st.one_of(near_home, vec9, st.none()), st.one_of(near_home, vec9, st.none()), ages)
ops = st.one_of(
    good_step, good_step, good_step, good_step, good_step, good_step, any_step, any_step,
    st.sampled_from([("estop",), ("reset",), ("reset",), ("reset",), ("pause",), ("hold",)]),
)
BOXES = {
    "default": {},
    # A box tight around the home TCP (0.55, 0, 0.19): the workspace clamp is active most steps.
    "tight": {"workspace_min": (0.5, -0.05, 0.15), "workspace_max": (0.6, 0.05, 0.25)},
}


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(ops, min_size=1, max_size=40),
    st.sampled_from([0.5, 1.0, 3.0]),
    st.sampled_from([0.0, 0.05]),
    st.sampled_from(sorted(BOXES)),
)
def test_no_published_target_ever_leaves_the_limits(sequence, velocity_scale, margin, box) -> None:
    s = layer(velocity_scale=velocity_scale, joint_margin=margin, **BOXES[box])
    lo, hi = LIMITS.clip(LIMITS.lower, margin), LIMITS.clip(LIMITS.upper, margin)
    step = step_size(s)
    prev = None
    for op in sequence:
        if op[0] == "step":
            _, target, measured, age = op
            if measured is None and age is not None:
                age = None
            out = s.step(target, measured, age)
        elif op[0] == "estop":
            hold = s.estop()
            if hold is not None:
                np.testing.assert_array_equal(hold, prev)
            continue
        elif op[0] == "reset":
            s.reset()
            continue
        elif op[0] == "pause":
            s.pause()
            continue
        else:
            out = s.hold()
        if not out.publish:
            assert out.target is None
            continue
        t = out.target
        assert np.all(np.isfinite(t))
        assert np.all(t >= lo - 1e-12) and np.all(t <= hi + 1e-12), t
        if out.reanchored:
            ref = np.clip(measured, lo, hi)
        else:
            assert prev is not None
            ref = prev
        assert np.all(np.abs(t - ref) <= step + 1e-9), (t - ref, step)
        # The TCP never moves further outside the workspace box than its reference was.
        assert s._violation(t) <= s._violation(ref) + 1e-6
        prev = t


@settings(max_examples=60, deadline=None)
@given(st.lists(st.lists(st.floats(-1.0, 1.0), min_size=9, max_size=9), min_size=5, max_size=60))
def test_random_walk_stays_in_a_tight_workspace(deltas) -> None:
    """A policy pushing in random directions never drives the TCP out of the box."""
    s = layer(velocity_scale=2.0, **BOXES["tight"])
    lo, hi = np.array(BOXES["tight"]["workspace_min"]), np.array(BOXES["tight"]["workspace_max"])
    q = HOME.copy()
    for d in deltas:
        out = s.step(q + np.array(d), q, 0.01)
        assert out.publish
        q = out.target
        tcp = KIN.tcp_position(q[:7])
        assert np.all(tcp >= lo - 1e-6) and np.all(tcp <= hi + 1e-6), tcp


# --------------------------------------------------------------------------- joint-state and pose caches


def test_joint_state_cache_matches_by_name_any_order_with_extras() -> None:
    c = JointStateCache(PANDA_JOINTS)
    names = list(reversed(PANDA_JOINTS)) + ["some_other_joint"]
    pos = list(reversed(HOME.tolist())) + [9.0]
    assert c.update(names, pos, [], 1.0, 1.0) is None
    np.testing.assert_allclose(c.latest().position, HOME)
    np.testing.assert_allclose(c.latest().velocity, 0.0)
    # Velocity by finite difference when the message carries none.
    pos2 = [p + 0.01 for p in pos]
    c.update(names, pos2, None, 1.01, 1.01)
    np.testing.assert_allclose(c.latest().velocity, 1.0)


@pytest.mark.parametrize(
    ("names", "pos", "match"),
    [
        (list(PANDA_JOINTS[:8]), [0.0] * 8, "lacks"),
        ([n.upper() for n in PANDA_JOINTS], [0.0] * 9, "lacks"),
        (list(PANDA_JOINTS) + ["panda_joint1"], [0.0] * 10, "duplicate"),
        (list(PANDA_JOINTS), [0.0] * 8, "positions"),
    ],
)
def test_joint_state_cache_rejects_bad_messages(names, pos, match) -> None:
    c = JointStateCache(PANDA_JOINTS)
    err = c.update(names, pos, [], 1.0, 1.0)
    assert err is not None and match in err
    assert c.latest() is None and c.rejected == 1


def test_joint_state_cache_rejects_implausible_jumps() -> None:
    c = JointStateCache(PANDA_JOINTS, max_velocity=LIMITS.velocity)
    assert c.update(PANDA_JOINTS, HOME, [], 1.0, 1.0) is None
    jumped = HOME.copy()
    jumped[1] += 1.0
    err = c.update(PANDA_JOINTS, jumped, [], 1.01, 1.01)  # 1 rad in 10 ms: no Panda does that
    assert err is not None and "implausible" in err and "panda_joint2" in err
    np.testing.assert_array_equal(c.latest().position, HOME)
    assert c.update(PANDA_JOINTS, jumped, [], 2.0, 2.0) is None  # possible after a second
    nan = HOME.copy()
    nan[0] = np.nan
    assert c.update(PANDA_JOINTS, nan, [], 2.01, 2.01) is None  # NaN goes through: the safety layer holds on it


def test_joint_state_cache_checks_jumps_against_the_last_finite_reading() -> None:
    """A NaN reading (accepted: the safety layer holds on it) must not open the door to the
    next finite one: garbage after it is still an implausible jump, the real robot is not."""
    c = JointStateCache(PANDA_JOINTS, max_velocity=LIMITS.velocity)
    assert c.update(PANDA_JOINTS, HOME, [], 1.0, 1.0) is None
    nan = HOME.copy()
    nan[0] = np.nan
    assert c.update(PANDA_JOINTS, nan, [], 1.001, 1.001) is None
    garbage = HOME + 5.0
    err = c.update(PANDA_JOINTS, garbage, [], 1.002, 1.002)
    assert err is not None and "implausible" in err
    assert c.update(PANDA_JOINTS, HOME, [], 1.005, 1.005) is None  # the robot itself goes through
    np.testing.assert_array_equal(c.latest().position, HOME)
    c.clear()
    assert c.update(PANDA_JOINTS, garbage, [], 1.01, 1.01) is None  # after clear() there is no reference


def test_joint_state_cache_index_memo_is_bounded() -> None:
    c = JointStateCache(PANDA_JOINTS)
    for i in range(500):
        c.update([f"j{i}"], [0.0], [], 1.0, 1.0)
    assert len(c._index_cache) <= 64 and c.rejected == 500


def test_pose_cache_normalises_and_differentiates() -> None:
    c = PoseCache(("red",))
    assert c.missing() == ["red"]
    assert c.update("red", (0.5, 0.0, 0.02), (-2.0, 0.0, 0.0, 0.0), 1.0, 1.0) is None
    r = c.latest("red")
    np.testing.assert_allclose(r.quat_wxyz, [1, 0, 0, 0])
    c.update("red", (0.51, 0.0, 0.02), (math.cos(0.05), 0, 0, math.sin(0.05)), 1.1, 1.1)
    r = c.latest("red")
    np.testing.assert_allclose(r.linvel, [0.1, 0, 0], atol=1e-9)
    np.testing.assert_allclose(r.angvel, [0, 0, 1.0], atol=1e-6)
    assert "non-finite" in c.update("red", (np.nan, 0, 0), (1, 0, 0, 0), 1.2, 1.2)
    assert "unknown" in c.update("blue", (0, 0, 0), (1, 0, 0, 0), 1.2, 1.2)


def test_quat_angular_velocity_identity_is_zero() -> None:
    q = np.array([1.0, 0, 0, 0])
    np.testing.assert_allclose(quat_angular_velocity(q, q, 0.1), 0.0)


# --------------------------------------------------------------------------- parameters and package files


def test_default_params_file_is_valid_for_both_nodes() -> None:
    ex = node_params(DEFAULT_PARAMS_FILE, "skill_executor")
    sim = node_params(DEFAULT_PARAMS_FILE, "sim_robot")
    assert ex == ExecutorParams()
    assert sim == SimRobotParams()


def test_params_errors_name_the_key(tmp_path: Path) -> None:
    f = tmp_path / "p.yaml"
    f.write_text("skill_executor:\n  ros__parameters:\n    contrl_rate: 100\n")
    with pytest.raises(ValueError, match="unknown parameter 'contrl_rate'"):
        node_params(f, "skill_executor")
    f.write_text("skill_executor:\n  ros__parameters:\n    safety:\n      stale_after_s: fast\n")
    with pytest.raises(ValueError, match="safety.stale_after_s"):
        node_params(f, "skill_executor")
    f.write_text("skill_executor:\n  ros__parameters:\n    interface: effort\n")
    with pytest.raises(ValueError, match="interface"):
        node_params(f, "skill_executor")
    with pytest.raises(FileNotFoundError):
        node_params(tmp_path / "missing.yaml", "sim_robot")


def test_params_coerce_ros_types_and_wildcard(tmp_path: Path) -> None:
    f = tmp_path / "p.yaml"
    f.write_text("/**:\n  ros__parameters:\n    controller: my_ctrl\n/sim_robot:\n  ros__parameters:\n    publish_rate: 100\n")
    nodes = read_params_file(f)
    sim = params_from_mapping(SimRobotParams, nodes["sim_robot"])
    assert sim.publish_rate == 100.0 and isinstance(sim.publish_rate, float) and sim.controller == "my_ctrl"
    with pytest.raises(ValueError, match="must be bool"):
        params_from_mapping(ExecutorParams, {"autostart": "yes"})


ROS_BRIDGE = Path(__file__).resolve().parents[1] / "ros_bridge"


def test_ament_package_files() -> None:
    xml = (ROS_BRIDGE / "package.xml").read_text()
    assert "<name>ros_bridge</name>" in xml and "<build_type>ament_python</build_type>" in xml
    setup = (ROS_BRIDGE / "setup.py").read_text()
    for needle in ('"launch/*.launch.py"', '"config/*.yaml"', "share/ament_index/resource_index/packages",
                   "skill_executor = ros_bridge.skill_executor:main", "sim_robot = ros_bridge.sim_robot:main"):
        assert needle in setup
    assert (ROS_BRIDGE / "resource" / "ros_bridge").exists()
    assert "install_scripts=$base/lib/ros_bridge" in (ROS_BRIDGE / "setup.cfg").read_text()


def test_launch_file_defines_generate_launch_description() -> None:
    tree = ast.parse((ROS_BRIDGE / "launch" / "deploy.launch.py").read_text())
    funcs = {n.name for n in tree.body if isinstance(n, ast.FunctionDef)}
    assert "generate_launch_description" in funcs
    calls = [n for n in ast.walk(tree) if isinstance(n, ast.Call) and getattr(n.func, "id", "") == "Node"]
    executables = {kw.value.value for c in calls for kw in c.keywords if kw.arg == "executable"}
    assert executables == {"sim_robot", "skill_executor"}


def test_ament_python_build_installs_the_ros_layout(tmp_path: Path) -> None:
    """What colcon's ament_python build does: executables in lib/ros_bridge, launch and config in share."""
    import subprocess
    import sys

    cmd = [
        sys.executable, "setup.py", "-q", "egg_info", "--egg-base", str(tmp_path),
        "build", "--build-base", str(tmp_path / "build"),
        "install", "--prefix", str(tmp_path / "inst"), "--root", "/", "--single-version-externally-managed",
        "--record", str(tmp_path / "record.txt"),
    ]  # fmt: skip
    proc = subprocess.run(cmd, cwd=ROS_BRIDGE, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    inst = tmp_path / "inst"
    for rel in ("lib/ros_bridge/skill_executor", "lib/ros_bridge/sim_robot", "share/ros_bridge/launch/deploy.launch.py",
                "share/ros_bridge/config/deploy.yaml", "share/ros_bridge/package.xml",
                "share/ament_index/resource_index/packages/ros_bridge"):
        assert (inst / rel).is_file(), rel
    assert "'console_scripts', 'skill_executor'" in (inst / "lib/ros_bridge/skill_executor").read_text()


def test_joint_state_cache_stall_does_not_let_garbage_in() -> None:
    """A stall of the executor (messages handled seconds late) must not widen the jump
    bound until random garbage passes: the elapsed time in the bound is capped."""
    c = JointStateCache(PANDA_JOINTS, max_velocity=LIMITS.velocity)
    assert c.update(PANDA_JOINTS, HOME, [], 1.0, 1.0) is None
    garbage = HOME + 3.0  # within 1.5 x 2.6 rad/s x 3 s, far beyond the capped 0.5 s
    err = c.update(PANDA_JOINTS, garbage, [], 4.0, 4.0)
    assert err is not None and "implausible" in err
    np.testing.assert_array_equal(c.latest().position, HOME)


def test_joint_state_cache_reanchors_on_a_consistent_stream() -> None:
    """A robot that really moved during a gap is taken back after `reanchor_after`
    consecutive readings that agree with each other; interleaved garbage is not."""
    c = JointStateCache(PANDA_JOINTS, max_velocity=LIMITS.velocity, reanchor_after=3)
    assert c.update(PANDA_JOINTS, HOME, [], 1.0, 1.0) is None
    moved = HOME.copy()
    moved[:7] += 2.0
    rng = np.random.default_rng(0)
    t = 5.0
    for _ in range(20):  # the real robot and a garbage publisher alternate: nothing agrees twice in a row
        t += 0.001
        assert c.update(PANDA_JOINTS, moved, [], t, t) is not None
        t += 0.001
        assert c.update(PANDA_JOINTS, rng.uniform(-10, 10, 9), [], t, t) is not None
    np.testing.assert_array_equal(c.latest().position, HOME)
    for i in range(3):  # the robot alone: three agreeing readings re-anchor
        t += 0.001
        err = c.update(PANDA_JOINTS, moved, [], t, t)
        assert (err is None) == (i == 2), (i, err)
    np.testing.assert_array_equal(c.latest().position[:7], moved[:7])
    np.testing.assert_array_equal(c.latest().velocity, np.zeros(len(PANDA_JOINTS)))
