"""Safety at the accepted limits, through the real nodes (issue 28): the base controller runs
as its console script in a process of its own (config/navigation.yaml), this process plays
the base (a unicycle integrating cmd_vel, 50 Hz odometry) and the laser (10 Hz scans).

Clock offsets: odometry stamped 0.45 s behind and the laser 0.19 s ahead of the
controller's clock (both accepted: odometry younger than odom_timeout by stamp, scans less
than max_clock_skew ahead)."""
import math
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pytest

from o4a_nav import ros_conv, topics
from o4a_nav.sim.faults import OdometryFault
from o4a_nav.types import Action, Pose2D, ScanData, wrap_angle

from conftest import wait_until  # noqa: E402
from test_runtime_nodes import NS, Probe, send_action  # noqa: E402
from test_runtime_nodes import model_dir  # noqa: E402,F401
from test_runtime_safety import Base, final  # noqa: E402

pytestmark = pytest.mark.ros

REPO = Path(__file__).resolve().parents[1]
ODOM_BEHIND, SCAN_AHEAD = 0.45, 0.19


def start_node(script: str, **params) -> subprocess.Popen:
    """A node's console script in its own process, in this test's namespace and domain, with
    config/navigation.yaml and ``params`` (a second file under the node's own key: a plain
    -p loses to the node's section of the first, docs/RUNTIME.md)."""
    args = [str(Path(sys.executable).parent / script), "--ros-args", "-r", f"__ns:={NS}",
            "--params-file", str(REPO / "config/navigation.yaml")]
    if params:
        extra = Path(tempfile.mkdtemp()) / f"{script}.yaml"
        extra.write_text(f"/**/{script}:\n  ros__parameters:\n" + "".join(f"    {k}: {v}\n" for k, v in params.items()))
        args += ["--params-file", str(extra)]
    return subprocess.Popen(args, env=dict(os.environ), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


class OffsetProbe(Probe):
    """The probe of test_runtime_nodes whose laser clock runs ``scan_offset`` s ahead."""

    scan_offset = 0.0

    def scan(self, ranges=None):
        r = np.full(181, np.inf, np.float32) if ranges is None else np.asarray(ranges, np.float32)
        s = ScanData(r, -math.pi / 2, math.pi / max(len(r) - 1, 1), 0.05, 10.0, stamp=self.now() + self.scan_offset)
        self.scans_sent.append((time.monotonic(), s))
        self.pub_scan.publish(ros_conv.scan_data_to_msg(s, topics.LASER_FRAME))


@pytest.fixture
def base_process(ros):
    ctx, add = ros
    probe = add(OffsetProbe(ctx))
    probe.scans_sent = []
    # odom_timeout 1.0 s instead of 0.5: the odometry thread of this test can be late by some
    # tens of ms on the shared CPU, which on top of 0.45 s would make the odometry stale
    proc = start_node("base_controller", odom_timeout=1.0)
    try:
        assert wait_until(lambda: probe.pub_action.get_subscription_count() >= 1
                          and probe.count_publishers(probe.resolve_topic_name(topics.CMD_VEL)) >= 1, 60.0)
        yield probe
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()


def start_forward(probe, base, seq) -> int:
    """Send FORWARDs until one runs (the first may come before the base has a scan)."""
    x_start = base.pose.x
    for _ in range(10):
        seq += 1
        send_action(probe, Action.FORWARD, seq)
        if wait_until(lambda: base.pose.x > x_start + 0.03 or final(probe, seq) is not None, 10.0) \
                and final(probe, seq) is None:
            return seq
        time.sleep(0.5)
    raise AssertionError(f"no FORWARD ran: {final(probe, seq).message if final(probe, seq) else 'no report'}")


def test_collision_monitor_stops_within_a_scan_whatever_the_clock_offsets(base_process):
    """A wall appears 0.30 m ahead during a FORWARD (0.10 m of clearance for the 0.20 m
    robot) with odometry 0.45 s behind and the laser 0.19 s ahead: the monitor stops the
    robot on the first scan that shows the wall, before it reaches the wall. Before issue
    28 that scan waited 0.64 s for odometry to reach its stamp: 0.12-0.16 m travelled."""
    probe = base_process
    probe.scan_offset = SCAN_AHEAD
    base = Base(probe)
    base.odom_fn = lambda pose, t: (pose, t - ODOM_BEHIND)
    seq = 0
    try:
        for trial in range(2):
            base.wall_x = None
            time.sleep(0.3)
            seq = start_forward(probe, base, seq)
            x0, n_scan = base.pose.x, len(probe.scans_sent)
            base.wall_x = x0 + 0.30
            assert wait_until(lambda: final(probe, seq) is not None, 10.0)
            rep = final(probe, seq)
            assert rep.state == 3 and "collision monitor" in rep.message, rep.message
            assert wait_until(lambda: probe.cmds[-1].linear.x == 0.0, 2.0)
            assert base.settle()
            travel = base.pose.x - x0
            n_wall = sum(1 for _, s in probe.scans_sent[n_scan:] if np.isfinite(s.ranges).any())
            print(f"\ntrial {trial}: {rep.message!r}; {travel:.3f} m after the wall appeared, "
                  f"{n_wall} scans of the wall sent by then")
            assert travel < 0.10      # the robot never reaches the wall
    finally:
        base.stop()


def test_heading_drift_ends_a_forward_before_the_robot_veers(base_process):
    """Odometry whose heading drifts at 0.2 rad/s (every message plausible on its own): the
    FORWARD ends with a heading reason after at most forward_max_turn (5.7 deg) of real
    turn plus a control period or two. Before issue 28 the heading hold steered the robot
    off course by the drift and the FORWARD SUCCEEDED."""
    probe = base_process
    start = Pose2D(2.0, 1.0, 0.4)
    base = Base(probe, start)
    drift = OdometryFault("heading_drift")
    base.odom_fn = drift
    try:
        seq = start_forward(probe, base, 0)
        drift.start = probe.now()
        assert wait_until(lambda: final(probe, seq) is not None, 15.0)
        rep = final(probe, seq)
        assert wait_until(lambda: probe.cmds[-1].linear.x == 0.0 and probe.cmds[-1].angular.z == 0.0, 3.0)
        assert base.settle()
        veer = math.degrees(abs(wrap_angle(base.pose.yaw - start.yaw)))
        print(f"\nheading drift: {rep.message!r}; the robot turned {veer:.1f} deg")
        assert rep.state == 3 and "heading" in rep.message, rep.message
        assert veer <= 8.0
    finally:
        base.stop()


def test_scan_heading_ends_a_forward_whose_odometry_hides_the_veer(base_process):
    """The base veers at the heading_drift rate (0.2 rad/s, the existing odometry fault applied
    to the real heading) while its odometry and the commanded turn show a straight line: only
    the laser sees it. The base controller registers each scan of the FORWARD against its
    first one (scanreg) and ends it with the reason once the two turns differ by more than
    scan_heading_mismatch (2.9 deg). Before: the FORWARD SUCCEEDED, veering 14-19 deg."""
    from test_nav_safety import room_scan

    probe = base_process
    base = Base(probe)
    drift = OdometryFault("heading_drift")
    driven = {"t": 0.0, "last": None}      # a clock that runs while the base moves: the veer

    def odom(pose, t):
        c = probe.cmds[-1] if probe.cmds else None
        if driven["last"] is not None and c is not None and (c.linear.x or c.angular.z):
            driven["t"] += t - driven["last"]
        driven["last"] = t
        return pose, t

    def real(pose):
        return drift(pose, driven["t"])[0]

    base.odom_fn = odom
    base.scan_fn = lambda: room_scan(real(base.pose))
    # the Base's first scan (before scan_fn) saw nothing: let scans of the room reach the
    # controller so that one is the motion's reference (the blind reference is a core test)
    time.sleep(0.3)
    try:
        seq = start_forward(probe, base, 0)
        start_yaw = real(base.pose).yaw
        drift.start = driven["t"]
        assert wait_until(lambda: final(probe, seq) is not None, 15.0)
        rep = final(probe, seq)
        assert wait_until(lambda: probe.cmds[-1].linear.x == 0.0 and probe.cmds[-1].angular.z == 0.0, 3.0)
        assert base.settle()
        veer = math.degrees(abs(wrap_angle(real(base.pose).yaw - start_yaw)))
        print(f"\nveering base, straight odometry: {rep.message!r}; the robot turned {veer:.1f} deg")
        assert rep.state == 3 and "laser shows" in rep.message, rep.message
        # what the controller decides: it ends the motion at the first scan past the
        # mismatch (2.9 deg; scans every ~1.2 deg of this veer, more apart under load) ...
        # (the message gives the turn to 0.1 deg: a decision at 2.93 deg reads "2.9")
        seen = float(re.search(r"laser shows ([0-9.]+) deg", rep.message).group(1))
        assert 2.9 - 0.05 <= seen <= 2.9 + 3.0, rep.message
        # ... and the base stops well short of the unprotected 14-19 deg; what it turns after
        # the decision is the stop's latency on this machine (3.3-7.4 deg seen, the most
        # under a loaded `make test`), measured in docs/RUNTIME.md, not asserted to the degree
        assert veer <= 11.0
    finally:
        base.stop()


def _grey_goal_msg(t, frame, h=4000, w=6000):
    from sensor_msgs.msg import Image

    m = Image()
    ros_conv.fill_header(m.header, t, frame)
    m.height, m.width, m.encoding, m.step = h, w, "mono8", w
    m.data = np.random.default_rng(len(frame)).integers(0, 255, h * w, dtype=np.uint8).tobytes()
    return m


def test_status_keeps_publishing_while_a_large_goal_is_converted(ros, model_dir):  # noqa: F811
    """A 6000x4000 grey goal pair (two 24 MP camera frames) sent to the navigator in a process
    of its own (status at 50 Hz): its images are decoded and shrunk to the model input in a
    worker thread, so the status goes on meanwhile; only rclpy's deserialisation of the
    request (about 0.1 s here) holds the executor. Before issue 28 the conversion ran in the
    service callback and the status stopped for it too."""
    from o4a_msgs.srv import SetGoal

    ctx, add = ros
    probe = add(Probe(ctx))
    proc = start_node("navigator", model_path=model_dir, status_rate=50.0, torch_threads=1)
    try:
        assert wait_until(lambda: len(probe.statuses) > 20, 60.0)
        cli = probe.create_client(SetGoal, topics.SET_GOAL)
        assert cli.wait_for_service(timeout_sec=30.0)
        gaps = []
        for trial in range(3):
            req = SetGoal.Request()
            req.front, req.rear = _grey_goal_msg(probe.now(), "front"), _grey_goal_msg(probe.now(), "rear")
            time.sleep(0.5)
            n0 = len(probe.statuses)
            fut = cli.call_async(req)
            assert wait_until(fut.done, 30.0) and fut.result().accepted, fut.result()
            time.sleep(0.3)
            stamps = [ros_conv.stamp_to_sec(s.header.stamp) for s in probe.statuses[n0 - 1:]]
            gaps.append(float(np.max(np.diff(stamps))))
        print(f"\nlongest status gap while a 2 x 6000x4000 goal was received and converted: "
              f"{', '.join(f'{g * 1e3:.0f}' for g in gaps)} ms")
        assert min(gaps) < 0.4   # before: 687-2251 ms
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
