"""Frames as plain data (o4a_nav/frames.py): composing a TF chain, the simulated sensor
mounts, the laser mount check; and the misspelt-parameter suggestion (o4a_nav/params.py)."""
import math

import pytest

from o4a_nav import frames
from o4a_nav.frames import Transform, TransformTree
from o4a_nav.types import Pose2D


def _axis(t: Transform, v):
    return frames._rotate((t.qx, t.qy, t.qz, t.qw), v)


def test_tree_composes_a_chain_and_inverts_it():
    tree = TransformTree()
    tree.add(Transform.planar("odom", "base_link", Pose2D(1.0, 2.0, math.pi / 2)))
    tree.add(Transform.planar("base_link", "mount", Pose2D(0.1, 0.0, 0.0), z=0.3))
    tree.add(Transform.planar("mount", "laser", Pose2D(0.0, 0.05, math.pi)))
    t = tree.lookup("base_link", "laser")
    assert (t.x, t.y, t.z) == pytest.approx((0.1, 0.05, 0.3)) and frames.yaw_of(t) == pytest.approx(math.pi)
    t = tree.lookup("odom", "laser")   # base_link turned 90 deg in odom
    assert (t.x, t.y) == pytest.approx((1.0 - 0.05, 2.0 + 0.1))
    back = tree.lookup("laser", "base_link")
    assert frames.compose(tree.lookup("base_link", "laser"), back).x == pytest.approx(0.0, abs=1e-9)
    assert tree.lookup("base_link", "nowhere") is None and tree.lookup("x", "x") == Transform("x", "x")


def test_sim_mounts_are_optical_frames_looking_forward_and_backward():
    laser, front, rear = frames.sim_sensor_mounts(0.4)
    assert (laser.parent, laser.child) == ("base_link", "laser") and frames.yaw_of(laser) == 0.0
    assert front.z == rear.z == 0.4
    # optical frames: z forward (the view direction), x right, y down
    assert _axis(front, (0, 0, 1)) == pytest.approx((1, 0, 0), abs=1e-9)
    assert _axis(front, (1, 0, 0)) == pytest.approx((0, -1, 0), abs=1e-9)
    assert _axis(front, (0, 1, 0)) == pytest.approx((0, 0, -1), abs=1e-9)
    assert _axis(rear, (0, 0, 1)) == pytest.approx((-1, 0, 0), abs=1e-9)
    assert _axis(rear, (1, 0, 0)) == pytest.approx((0, 1, 0), abs=1e-9)


def test_laser_mount_disagreement_names_both_poses():
    tf = frames.laser_mount_from_params("base_link", "laser", 0.2, -0.05, 0.1)
    assert frames.laser_mount_disagreement(tf, 0.2, -0.05, 0.1) == ""
    assert frames.laser_mount_disagreement(tf, 0.202, -0.05, 0.1 + 2 * math.pi) == ""
    msg = frames.laser_mount_disagreement(tf, 0.0, 0.0, 0.0)
    assert "x 0.200 m" in msg and "laser_x/laser_y/laser_yaw say (0.000, 0.000, 0.000)" in msg
    tilted = Transform.from_rpy("base_link", "laser", (0.2, -0.05, 0.0), (0.0, 0.3, 0.1))
    assert "not level" in frames.laser_mount_disagreement(tilted, 0.2, -0.05, 0.1)
    upside_down = Transform.from_rpy("base_link", "laser", (0, 0, 0), (math.pi, 0.0, 0.0))
    assert "not level" in frames.laser_mount_disagreement(upside_down, 0.0, 0.0, 0.0)


def test_misspelt_parameters_get_the_closest_name():
    from o4a_nav.params import misspelt

    known = {"stop_threshold", "stale_timeout", "memory_size", "use_sim_time"}
    assert misspelt(["stop_treshold", "memory_size", "zzz", "qos_overrides./scan.depth"], known) == [
        ("stop_treshold", "stop_threshold"), ("zzz", None)]
