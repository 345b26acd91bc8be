"""Safety through the real nodes (issue 14): the base controller's collision monitor and
motion bounds, scans that must prove the box free, aborted motions and the goal, clock
faults, the laser frame. A unicycle integrated here plays the base (test harness)."""
import math
import threading
import time

import numpy as np
import pytest
from rclpy.parameter import Parameter

from o4a_nav import ros_conv, topics
from o4a_nav.types import wrap_angle
from o4a_nav.types import Action, NavState, Pose2D, ScanData
from o4a_nav.nodes.goal_client import ImageGoalClient
from o4a_nav.sim.faults import ODOM_FAULTS, OdometryFault

from conftest import wait_until  # noqa: E402
from test_nav_safety import wall_scan  # noqa: E402
from test_runtime_nodes import NS, Probe, base_ready, model_dir, nav_node, rand_img, send_action  # noqa: F401,E402

pytestmark = pytest.mark.ros


class Base:
    """A unicycle driven by the latest cmd_vel (50 Hz) that publishes odometry (which a test
    can falsify) and 10 Hz laser scans of a wall across the path at world x = wall_x."""

    def __init__(self, probe, pose=Pose2D(0.0, 0.0, 0.0), scan_fn=None):
        self.probe, self.pose = probe, pose
        self.odom_fn = lambda pose, t: (pose, t)   # -> (reported pose, stamp) or None
        self.wall_x = None
        self.scan_fn = scan_fn                     # -> ranges, overrides the wall
        self.log = []                              # (time, x, y, yaw) after each integration step
        self.running = True
        self.lock = threading.Lock()
        self.ths = [threading.Thread(target=self._drive, daemon=True), threading.Thread(target=self._scan, daemon=True)]
        for th in self.ths:
            th.start()

    def _drive(self):
        dt = 0.02
        last = time.monotonic()
        while self.running:
            now = time.monotonic()
            if self.probe.cmds:
                c = self.probe.cmds[-1]
                p, h = self.pose, now - last
                self.pose = Pose2D(p.x + c.linear.x * h * math.cos(p.yaw), p.y + c.linear.x * h * math.sin(p.yaw),
                                   wrap_angle(p.yaw + c.angular.z * h))
            last = now
            self.log.append((now, self.pose.x, self.pose.y, self.pose.yaw))
            o = self.odom_fn(self.pose, self.probe.now())
            if o is not None:
                m = self.probe.Odometry()
                ros_conv.fill_header(m.header, o[1], topics.ODOM_FRAME)
                ros_conv.set_pose_msg(m.pose.pose, o[0])
                self.probe.pub_odom.publish(m)
            time.sleep(dt)

    def ranges(self):
        if self.scan_fn is not None:
            return self.scan_fn()
        return wall_scan(self.pose, self.wall_x)

    def _scan(self):
        while self.running:
            self.probe.scan(self.ranges())
            time.sleep(0.1)

    def settle(self, steps: int = 15) -> bool:
        """Wait until the base has integrated `steps` more periods of the latest cmd_vel
        (0.3 s at 50 Hz when the CPU keeps up): whatever motion follows is in the pose."""
        n = len(self.log)
        return wait_until(lambda: len(self.log) >= n + steps, 20.0)

    def stop(self):
        self.running = False
        for th in self.ths:
            th.join(2.0)


def final(probe, seq):
    done = [m for m in probe.motion if m.sequence == seq and m.state in (2, 3)]
    return done[-1] if done else None


@pytest.fixture
def base_node(ros):
    from o4a_nav.nodes.base_controller import BaseControllerNode

    ctx, add = ros
    # odom_timeout 1.5 s: this test's odometry thread can be late by more than 0.5 s on a busy CPU
    node = add(BaseControllerNode(context=ctx, namespace=NS, parameter_overrides=[
        Parameter("odom_timeout", value=1.5), Parameter("scan_timeout", value=1.5)]))
    probe = add(Probe(ctx))
    return node, probe


def test_collision_monitor_stops_a_forward_when_an_obstacle_appears(base_node):
    """An obstacle put 0.3 m ahead while a FORWARD runs: the motion is ABORTED by the
    collision monitor with zero velocity, well before the end of the FORWARD (on main the
    robot drove on and the motion SUCCEEDED)."""
    node, probe = base_node
    base = Base(probe)
    try:
        assert base_ready(node, probe)
        send_action(probe, Action.FORWARD, 1)
        assert wait_until(lambda: base.pose.x > 0.02, 10.0)
        x0, t0 = base.pose.x, time.monotonic()
        n_cmd = len(probe.cmds)
        base.wall_x = x0 + 0.3
        assert wait_until(lambda: final(probe, 1) is not None, 10.0)
        rep = final(probe, 1)
        assert rep.state == 3 and "collision monitor" in rep.message, rep.message
        assert wait_until(lambda: probe.cmds[-1].linear.x == 0.0, 2.0)
        zero_at = next((k for k in range(n_cmd, len(probe.cmds)) if probe.cmds[k].linear.x == 0.0), None)
        assert zero_at is not None
        assert base.settle()
        travel_after = base.pose.x - x0
        print(f"\nintrusion -> motion aborted: travel after the intrusion {travel_after:.3f} m, "
              f"{time.monotonic() - t0:.2f} s to here")
        assert travel_after < 0.15  # on main: the rest of the FORWARD (0.2 m and more)
        # another node's FORWARD towards the wall (now 0.3 m ahead or less): refused, no motion
        x1 = base.pose.x
        send_action(probe, Action.FORWARD, 2)
        assert wait_until(lambda: final(probe, 2) is not None, 10.0)
        assert final(probe, 2).state == 3 and "refused by the collision monitor" in final(probe, 2).message
        assert base.settle()
        assert base.pose.x - x1 < 0.01
    finally:
        base.stop()




@pytest.mark.parametrize("fault", ODOM_FAULTS)
def test_odometry_faults_bound_the_motion(base_node, fault):
    """Frozen odometry with fresh stamps, a reset to zero mid-motion, odometry stamped 3 s
    ahead that then stops: the motion ends (ABORTED with a reason) within 0.30 m / 20 deg
    (on main: 1.18-1.26 m, 57 deg, 80 deg)."""
    node, probe = base_node
    start = Pose2D(2.0, 1.0, 0.4)
    base = Base(probe, start)
    odom = OdometryFault(fault)

    base.odom_fn = odom
    try:
        assert base_ready(node, probe)
        action = Action.ROTATE_LEFT if fault == "frozen_rotation" else Action.FORWARD
        send_action(probe, action, 1)
        assert wait_until(lambda: any(m.sequence == 1 and m.state == 1 for m in probe.motion), 10.0)
        odom.start = probe.now() + 0.1
        assert wait_until(lambda: final(probe, 1) is not None, 15.0)
        rep = final(probe, 1)
        assert wait_until(lambda: probe.cmds[-1].linear.x == 0.0 and probe.cmds[-1].angular.z == 0.0, 3.0)
        assert base.settle()
        dist = math.hypot(base.pose.x - start.x, base.pose.y - start.y)
        turn = math.degrees(abs(wrap_angle(base.pose.yaw - start.yaw)))
        print(f"\n{fault}: {rep.message!r}; moved {dist:.3f} m, turned {turn:.1f} deg")
        assert rep.state == 3 and rep.message
        assert dist <= 0.30 and turn <= 20.0
    finally:
        base.stop()


def test_goal_without_odometry_is_refused_up_front_with_the_cause(ros, model_dir):  # noqa: F811
    """No odometry: the base controller reports that it cannot move (MotionState IDLE "not
    ready: no odometry"), and the navigator refuses the goal with that reason after waiting
    base_ready_timeout for it to become ready, publishing no motion at all (before issue 28:
    accepted, five motions published and aborted by the base, then FAILED). A goal sent
    while odometry is still starting waits for the base and is accepted."""
    from o4a_nav.nodes.base_controller import BaseControllerNode
    from test_runtime_nodes import call_set_goal

    ctx, add = ros
    nav = add(nav_node(ctx, model_dir, stop_threshold=0.0, max_steps=400))
    add(BaseControllerNode(context=ctx, namespace=NS))
    probe = add(Probe(ctx))
    client = ImageGoalClient(probe)   # the fixture's executor spins the probe
    stop, odom = threading.Event(), threading.Event()

    def stream():
        k = 0
        while not stop.is_set():
            probe.images(rand_img(100 + k % 7))
            probe.scan()
            probe.free_all()
            if odom.is_set():
                probe.odom(Pose2D(0.0, 0.0, 0.0))
            k += 1
            time.sleep(0.05)

    th = threading.Thread(target=stream, daemon=True)
    th.start()
    try:
        assert client.wait_for_server(10.0)
        assert wait_until(lambda: nav.runtime.base_report is not None, 10.0)   # the base said it cannot move
        t0 = time.monotonic()
        assert client.send(rand_img(1), rand_img(2), stamp=probe.now())
        assert client.wait(30.0), "the goal did not end"
        res, waited = client.result(), time.monotonic() - t0
        print(f"\nno odometry: {res.reason!r} after {waited:.2f} s")
        assert not res.success and "goal refused" in res.reason and "no odometry" in res.reason, res.reason
        assert waited >= nav.runtime.params.base_ready_timeout
        assert (res.steps, res.forwards, res.rotations) == (0, 0, 0)
        reply = call_set_goal(probe, rand_img(1), rand_img(2))
        assert not reply.accepted and "no odometry" in reply.message, reply.message
        time.sleep(0.5)
        assert probe.actions == [] and not any(m.state == 3 for m in probe.motion)   # no motion sent, none aborted
        # odometry starts 0.5 s after the goal: the goal waits for the base and is accepted
        threading.Timer(0.5, odom.set).start()
        assert call_set_goal(probe, rand_img(1), rand_img(2)).accepted
    finally:
        stop.set()
        th.join(2.0)
        client.destroy()


@pytest.mark.parametrize("kind", ["nan", "empty", "rear_only", "one_ray", "angle_max", "frame"])
def test_collision_checker_node_unproving_scans_block_forward(ros, kind):
    from o4a_nav.nodes.collision_checker import CollisionCheckerNode

    ctx, add = ros
    add(CollisionCheckerNode(context=ctx, namespace=NS))
    probe = add(Probe(ctx))
    n = 181
    r = np.full(n, np.inf, np.float32)
    amin, inc, frame = -math.pi / 2, math.pi / 180, topics.LASER_FRAME
    amax = None
    if kind == "nan":
        r[:] = np.nan
    elif kind == "empty":
        r = r[:0]
    elif kind == "rear_only":
        amin = math.pi / 2
    elif kind == "one_ray":
        r, amin, inc = r[:1], 0.0, 0.0
    elif kind == "angle_max":
        amax = math.pi  # 181 rays of 1 deg from -90 deg end at +90 deg
    else:
        frame = "laser_upside_down"
    msg = ros_conv.scan_data_to_msg(ScanData(r, amin, inc, 0.05, 10.0, stamp=probe.now()), frame)
    if amax is not None:
        msg.angle_max = amax
    assert wait_until(lambda: (probe.pub_scan.publish(msg) or True) and probe.free, 5.0)
    last = probe.free[-1]
    assert not last.forward


def test_navigator_all_nan_scans_never_forward_through_the_nodes(ros, model_dir):  # noqa: F811
    """collision_checker + navigator + base_controller on all-NaN scans: no FORWARD on
    o4a/action, no forward velocity (on main: 4 FORWARDs in 20 s)."""
    from o4a_nav.nodes.base_controller import BaseControllerNode
    from o4a_nav.nodes.collision_checker import CollisionCheckerNode

    ctx, add = ros
    add(CollisionCheckerNode(context=ctx, namespace=NS))
    nav = add(nav_node(ctx, model_dir, stop_threshold=0.0))
    add(BaseControllerNode(context=ctx, namespace=NS, parameter_overrides=[Parameter("odom_timeout", value=1.5)]))
    probe = add(Probe(ctx))
    base = Base(probe, scan_fn=lambda: np.full(181, np.nan, np.float32))
    stop = threading.Event()

    def stream():
        k = 0
        while not stop.is_set():
            probe.images(rand_img(200 + k % 11))
            k += 1
            time.sleep(0.1)

    th = threading.Thread(target=stream, daemon=True)
    th.start()
    try:
        from test_runtime_nodes import call_set_goal

        assert call_set_goal(probe, rand_img(1), rand_img(2)).accepted
        assert wait_until(lambda: nav.runtime.nav is not None and nav.runtime.nav.steps >= 4, 30.0)
        assert probe.free and not any(f.forward for f in probe.free)
        assert not any(a.action == Action.FORWARD for a in probe.actions)
        assert not any(c.linear.x > 0 for c in probe.cmds)
    finally:
        stop.set()
        th.join(2.0)
        base.stop()


def test_navigator_clock_skew_and_wrong_laser_frame_are_faults(ros, model_dir):  # noqa: F811
    """Inputs stamped 3 s ahead of the navigator's clock: STALE_INPUT with the reason and
    STOP, no motion (on main they count as fresh). A scan from another frame: the same,
    with the frame named."""
    ctx, add = ros
    add(nav_node(ctx, model_dir, stop_threshold=0.0))
    probe = add(Probe(ctx))
    from test_runtime_nodes import call_set_goal

    assert call_set_goal(probe, rand_img(1), rand_img(2)).accepted
    skew = 3.0
    for k in range(10):
        t = probe.now() + skew
        probe.pub_front.publish(ros_conv.rgb_to_image_msg(rand_img(5), t, "front"))
        probe.pub_rear.publish(ros_conv.rgb_to_image_msg(rand_img(6), t, "rear"))
        probe.pub_scan.publish(ros_conv.scan_data_to_msg(ScanData(np.full(181, np.inf, np.float32), -math.pi / 2,
                                                                  math.pi / 180, 0.05, 10.0, stamp=t), "laser"))
        m = probe.FreeActions()
        ros_conv.fill_header(m.header, t, "laser")
        m.forward = m.rotate_left = m.rotate_right = True
        probe.pub_free.publish(m)
        time.sleep(0.05)
    assert wait_until(lambda: probe.statuses and probe.statuses[-1].state == NavState.STALE_INPUT
                      and "clock skew" in probe.statuses[-1].message, 5.0), probe.statuses[-1:]
    assert set(probe.statuses[-1].stale_inputs) == {"front_camera", "rear_camera", "scan", "free_actions"}
    assert all(a.action == Action.STOP for a in probe.actions)
    # fresh stamps, but the scan comes from another frame
    for k in range(10):
        t = probe.now()
        probe.images(rand_img(7))
        probe.pub_scan.publish(ros_conv.scan_data_to_msg(ScanData(np.full(181, np.inf, np.float32), -math.pi / 2,
                                                                  math.pi / 180, 0.05, 10.0, stamp=t), "laser_rear"))
        probe.free_all()
        time.sleep(0.05)
    assert wait_until(lambda: probe.statuses[-1].state == NavState.STALE_INPUT
                      and "laser_rear" in probe.statuses[-1].message, 5.0), probe.statuses[-1].message
    assert list(probe.statuses[-1].stale_inputs) == ["scan"]
    assert all(a.action == Action.STOP for a in probe.actions)
