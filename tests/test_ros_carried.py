"""Held objects carried on the TCP while unseen (ros_bridge.carried): attach, carry, put down, lose."""

from __future__ import annotations

import numpy as np
import pytest

from ros_bridge.carried import CarriedObjects, CarryConfig
from ros_bridge.params import ExecutorParams
from ros_bridge.state import ObjectReading

Z = np.zeros(3)
UP = np.array([1.0, 0.0, 0.0, 0.0])


def tcp(x: float, y: float, z: float, yaw: float = 0.0) -> np.ndarray:
    T = np.eye(4)
    c, s = np.cos(yaw), np.sin(yaw)
    T[:3, :3] = [[c, -s, 0], [s, c, 0], [0, 0, 1]]
    T[:3, 3] = (x, y, z)
    return T


def seen(x: float, y: float, z: float, stamp: float) -> ObjectReading:
    return ObjectReading(np.array([x, y, z]), UP.copy(), Z, Z, stamp, stamp)


def test_a_cube_under_closed_fingers_rides_on_the_tcp_and_is_as_old_as_the_joint_states() -> None:
    c = CarriedObjects(("red", "blue"))
    measured = {"red": seen(0.5, 0.1, 0.02, stamp=0.0), "blue": seen(0.5, -0.1, 0.02, stamp=0.0)}
    assert c.update(0.5, tcp(0.5, 0.1, 0.03), 0.08, measured) == {}  # open: nothing held
    out = c.update(1.0, tcp(0.5, 0.1, 0.03), 0.04, measured)  # closed on the cube, 1 cm below the TCP
    assert c.held == ["red"] and set(out) == {"red"}
    np.testing.assert_allclose(out["red"].position, [0.5, 0.1, 0.02], atol=1e-12)
    # The arm lifts and turns; the camera sees nothing new (the measured pose is 1.5 s old).
    out = c.update(1.5, tcp(0.45, 0.0, 0.25, yaw=np.pi / 2), 0.041, measured)
    np.testing.assert_allclose(out["red"].position, [0.45, 0.0, 0.24], atol=1e-12)
    q = out["red"].quat_wxyz
    np.testing.assert_allclose(q, [np.cos(np.pi / 4), 0, 0, np.sin(np.pi / 4)], atol=1e-12)
    assert out["red"].stamp_s == 1.5  # age 0 at now
    np.testing.assert_allclose(out["red"].linvel, (np.array([0.45, 0.0, 0.24]) - [0.5, 0.1, 0.02]) / 0.5, atol=1e-9)
    assert "blue" not in out  # the other cube keeps its measured pose


@pytest.mark.parametrize("width, where", [(0.08, (0.5, 0.1, 0.03)), (0.0, (0.5, 0.1, 0.03)), (0.04, (0.5, 0.2, 0.03))])
def test_nothing_is_held_open_closed_on_nothing_or_far_from_the_cube(width: float, where: tuple) -> None:
    c = CarriedObjects(("red",))
    assert c.update(1.0, tcp(*where), width, {"red": seen(0.5, 0.1, 0.02, 0.0)}) == {}
    assert c.held == []


def test_a_put_down_cube_stays_where_the_hand_left_it_until_measured_again() -> None:
    c = CarriedObjects(("red",))
    before = {"red": seen(0.5, 0.1, 0.02, stamp=0.0)}
    c.update(1.0, tcp(0.5, 0.1, 0.03), 0.04, before)
    c.update(2.0, tcp(0.4, -0.1, 0.07), 0.04, before)  # carried onto blue
    out = c.update(3.0, tcp(0.4, -0.1, 0.07), 0.07, before)  # fingers open: released
    assert c.held == [] and c.released == ["red"]
    np.testing.assert_allclose(out["red"].position, [0.4, -0.1, 0.06], atol=1e-12)
    assert out["red"].stamp_s == 3.0  # ages from the release: old if the camera never confirms it
    assert c.update(4.0, tcp(0.4, -0.1, 0.2), 0.08, before)["red"].stamp_s == 3.0  # the pre-grasp pose does not win
    out = c.update(4.5, tcp(0.4, -0.1, 0.2), 0.08, {"red": seen(0.401, -0.1, 0.06, stamp=4.2)})
    assert out == {} and c.released == []  # a pose imaged after the release wins


def test_fingers_closing_fully_mean_the_cube_was_lost_and_it_is_no_longer_carried() -> None:
    c = CarriedObjects(("red",))
    m = {"red": seen(0.5, 0.1, 0.02, 0.0)}
    c.update(1.0, tcp(0.5, 0.1, 0.03), 0.04, m)
    out = c.update(1.2, tcp(0.5, 0.1, 0.2), 0.001, m)  # slipped out while lifting
    assert c.held == [] and out["red"].stamp_s == 1.2
    c.reset()
    assert c.held == [] and c.released == [] and c.update(2.0, tcp(0.5, 0.1, 0.5), 0.08, m) == {}


def test_bad_carry_settings_are_refused_by_name() -> None:
    with pytest.raises(ValueError, match="carry_width"):
        ExecutorParams(carry_width=[0.05, 0.03])
    with pytest.raises(ValueError, match="carry_width"):
        ExecutorParams(carry_width=[0.03])
    with pytest.raises(ValueError, match="carry_radius"):
        ExecutorParams(carry_radius=0.0)
    with pytest.raises(ValueError, match="width_range"):
        CarryConfig((0.05, 0.03))


def test_the_fingers_centre_the_cube_along_their_closing_axis() -> None:
    """Seen 6 mm off the TCP along the closing axis when the fingers touch it, the cube rides centred
    on that axis (the fingers push it there); its offset along the other axes is kept."""
    c = CarriedObjects(("red",), CarryConfig(closing_axis=(0.0, 1.0, 0.0)))
    out = c.update(1.0, tcp(0.5, 0.1, 0.03, yaw=np.pi / 2), 0.045, {"red": seen(0.494, 0.102, 0.02, 0.0)})
    # yaw 90 deg: the TCP's y (closing) axis is the base's -x, its x axis the base's +y
    np.testing.assert_allclose(out["red"].position, [0.5, 0.102, 0.02], atol=1e-12)


def test_sightings_while_carrying_re_measure_the_offset_halfway_and_wrong_ones_are_ignored() -> None:
    c = CarriedObjects(("red",), CarryConfig(settle_s=0.2, max_correction=0.02))
    m = {"red": seen(0.5, 0.1, 0.02, stamp=0.9)}
    c.update(1.0, tcp(0.5, 0.1, 0.03), 0.04, m)  # attached: 1 cm below the TCP
    c.update(1.04, tcp(0.5, 0.1, 0.05), 0.04, m, {"red": seen(0.51, 0.1, 0.04, stamp=1.04)})  # fingers still settling
    out = c.update(1.3, tcp(0.5, 0.1, 0.10), 0.04, m)
    np.testing.assert_allclose(out["red"].position, [0.5, 0.1, 0.09], atol=1e-12)  # that sighting was not used
    # Imaged at 1.3, seen 4 mm further along x than the offset says; used at 1.34 against the TCP of 1.3.
    out = c.update(1.34, tcp(0.5, 0.1, 0.12), 0.04, m, {"red": seen(0.504, 0.1, 0.09, stamp=1.3)})
    np.testing.assert_allclose(out["red"].position, [0.502, 0.1, 0.11], atol=1e-12)
    out = c.update(1.38, tcp(0.5, 0.1, 0.12), 0.04, m, {"red": seen(0.56, 0.1, 0.11, stamp=1.34)})  # 6 cm off: a wrong pose
    np.testing.assert_allclose(out["red"].position, [0.502, 0.1, 0.11], atol=1e-12)


def test_bad_centring_and_re_measuring_settings_are_refused() -> None:
    with pytest.raises(ValueError, match="closing_axis"):
        CarryConfig(closing_axis=(0.0, 2.0, 0.0))
    with pytest.raises(ValueError, match="settle_s"):
        CarryConfig(settle_s=-1.0)
    with pytest.raises(ValueError, match="max_correction"):
        CarryConfig(max_correction=float("nan"))
