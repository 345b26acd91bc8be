"""The simulated robot: laser geometry, cameras, discrete and continuous motion,
determinism across processes. Uses the real MiniWorld renderer (headless)."""
import math
import subprocess
import sys

import numpy as np
import pytest

from o4a_nav.sim import LaserParams, SimRobot, load_world
from o4a_nav.types import FORWARD_STEP_M, ROTATE_STEP_RAD, Action, Pose2D


@pytest.fixture(scope="module")
def robot():
    r = SimRobot(load_world("two_rooms"), seed=0)
    yield r
    r.close()


def _range_at(scan, bearing_deg):
    i = int(round((math.radians(bearing_deg) - scan.angle_min) / scan.angle_increment))
    return float(scan.ranges[i])


@pytest.mark.parametrize("yaw_deg", [0.0, 90.0, -30.0])
def test_laser_sees_walls_at_known_distance_and_bearing(yaw_deg):
    r = SimRobot(load_world("two_rooms"), render=False)
    # west room is [0, 4] x [0, 4]; the door in its east wall spans y 1.5..2.5
    r.set_pose(Pose2D(1.0, 1.0, math.radians(yaw_deg)))
    scan = r.scan()
    assert scan.angle_min <= math.radians(-135) + 1e-9 and scan.angle_max >= math.radians(135) - 1e-9
    # absolute direction -> expected distance to the room's walls from (1, 1): the walls
    # are solid, centred on the room's boundary, so their faces are half a thickness in
    half = r.world.wall_thickness / 2
    assert half > 0
    for absolute_deg in (0.0, 90.0, 180.0, -90.0):
        bearing = (absolute_deg - yaw_deg + 180) % 360 - 180
        if abs(bearing) > 135:
            continue
        expected = {0.0: 3.0, 90.0: 3.0, 180.0: 1.0, -90.0: 1.0}[absolute_deg] - half
        assert _range_at(scan, bearing) == pytest.approx(expected, abs=1e-4)


def test_laser_rep117_no_return_is_inf():
    r = SimRobot(load_world("two_rooms"), render=False, laser=LaserParams(range_max=1.5))
    r.set_pose(Pose2D(1.0, 1.0, 0.0))
    scan = r.scan()
    assert _range_at(scan, 0.0) == math.inf            # wall 3 m ahead, beyond range_max
    assert _range_at(scan, -90.0) == pytest.approx(1.0 - r.world.wall_thickness / 2, abs=1e-4)
    assert scan.ranges.dtype == np.float32


def test_laser_sees_boxes():
    r = SimRobot(load_world("two_rooms"), render=False)
    r.set_pose(Pose2D(5.0, 3.0, 0.0))                  # red box 0.6 m wide centred at (6.5, 3)
    assert _range_at(r.scan(), 0.0) == pytest.approx(6.5 - 0.3 - 5.0, abs=1e-4)


def _red_share(img):
    img = img.astype(int)
    return float(np.mean((img[..., 0] > 120) & (img[..., 1] < 60) & (img[..., 2] < 60)))


def test_rear_camera_sees_what_is_behind(robot):
    robot.set_pose(Pose2D(6.5, 1.6, -math.pi / 2))     # red box at (6.5, 3.0) is behind
    front, rear, _ = robot.observe()
    assert front.shape == rear.shape == (96, 96, 3) and front.dtype == np.uint8
    assert _red_share(rear) > 0.02
    assert _red_share(front) == 0.0
    robot.set_pose(Pose2D(6.5, 1.6, math.pi / 2))      # turned around: now in front
    front2, rear2, _ = robot.observe()
    assert _red_share(front2) > 0.02 and _red_share(rear2) == 0.0
    # the rear view is the front view of the robot turned by pi
    assert np.array_equal(front2, rear)


def test_discrete_steps_are_exact_and_blocked_moves_rejected(robot):
    robot.set_pose(Pose2D(2.0, 2.0, 0.0))
    assert robot.step(Action.FORWARD)
    assert robot.pose.x == pytest.approx(2.0 + FORWARD_STEP_M) and robot.pose.y == pytest.approx(2.0)
    assert robot.step(Action.ROTATE_LEFT)
    assert robot.pose.yaw == pytest.approx(ROTATE_STEP_RAD)
    assert robot.step(Action.ROTATE_RIGHT) and robot.step(Action.ROTATE_RIGHT)
    assert robot.pose.yaw == pytest.approx(-ROTATE_STEP_RAD)
    # facing the south wall from 0.3 m: the next FORWARD would touch it
    robot.set_pose(Pose2D(1.0, 0.3, -math.pi / 2))
    before, n = robot.pose, robot.collisions
    assert not robot.step(Action.FORWARD)
    assert robot.pose == before and robot.collisions == n + 1
    assert not robot.step(Action.STOP) and robot.collisions == n + 1
    with pytest.raises(ValueError):
        robot.set_pose(Pose2D(0.05, 1.0, 0.0))
    # through the door: stopping exactly on the line the two rooms share is allowed
    robot.set_pose(Pose2D(3.75, 2.0, 0.0))
    assert robot.step(Action.FORWARD) and robot.pose.x == pytest.approx(4.0)
    assert robot.step(Action.FORWARD) and robot.pose.x == pytest.approx(4.25)


def test_continuous_motion_integrates_arcs_and_stops_at_walls():
    r = SimRobot(load_world("two_rooms"), render=False, pose=Pose2D(1.0, 2.0, 0.0))
    for _ in range(10):
        assert r.move(0.5, 0.0, 0.1)
    assert r.pose.x == pytest.approx(1.5)
    # a quarter circle of radius 0.5: v = 0.5, w = 1 rad/s for pi/2 s
    r.set_pose(Pose2D(2.0, 1.0, 0.0))
    for _ in range(100):
        r.move(0.5, 1.0, math.pi / 200)
    assert (r.pose.x, r.pose.y, r.pose.yaw) == pytest.approx((2.5, 1.5, math.pi / 2), abs=1e-6)
    # driving into the west wall: the robot never gets closer than its radius to the
    # wall's face (half a wall thickness in from the room's boundary x = 0)
    r.set_pose(Pose2D(1.0, 1.0, math.pi))
    blocked = [not r.move(0.5, 0.0, 0.05) for _ in range(60)]
    assert any(blocked)
    assert r.pose.x >= r.world.robot_radius + r.world.wall_thickness / 2


_HASH_SCRIPT = """
import hashlib, sys
from o4a_nav.sim import SimRobot, load_world
from o4a_nav.sim.collector import explore
h = hashlib.sha256()
r = SimRobot(load_world(sys.argv[1]), seed=int(sys.argv[2]))
for f in explore(r, int(sys.argv[3]), seed=int(sys.argv[2])):
    h.update(f.front.tobytes()); h.update(f.rear.tobytes()); h.update(f.scan.ranges.tobytes())
    h.update(repr((f.pose, int(f.action), f.t)).encode())
print(h.hexdigest())
"""


def test_same_seed_same_frames_across_processes():
    out = [subprocess.run([sys.executable, "-c", _HASH_SCRIPT, "four_rooms", str(s), "40"], capture_output=True,
                          text=True, timeout=120, check=True).stdout.strip() for s in (7, 7, 8)]
    assert len(out[0]) == 64
    assert out[0] == out[1]
    assert out[0] != out[2]


def test_several_worlds_render_in_one_process(robot):
    pose = Pose2D(6.5, 1.6, math.pi / 2)
    robot.set_pose(pose)
    before = robot.render()
    other = SimRobot(load_world("four_rooms"), seed=0, pose=Pose2D(2.0, 2.0, 0.0))
    try:
        f_other, _ = other.render()
        assert not np.array_equal(f_other, before[0])
        after = robot.render()                  # back to the first world: same pixels
        assert np.array_equal(after[0], before[0]) and np.array_equal(after[1], before[1])
        assert np.array_equal(other.render()[0], f_other)
    finally:
        other.close()
