#!/usr/bin/env python3
"""Safety figures of docs/RUNTIME.md (issue 14), measured with the nodes as separate
processes (their console scripts, as deployed) around a probe in this process that plays
the base (a unicycle integrating cmd_vel in real time, 50 Hz odometry) and the laser (10 Hz
scans of a wall across the path). A measurement, not a test.

  intrusion   a wall appears 0.30 m ahead while a FORWARD runs: time from the first scan
              that shows it to cmd_vel = 0 at the probe, travel after the wall appeared
  offsets     the same at the accepted clock limits (issue 28): odometry stamped 0.45 s
              behind (odom_timeout 0.5 s), the laser 0.19 s ahead (max_clock_skew 0.2 s)
  odometry    frozen pose with fresh stamps, reset to zero, stamped 3 s ahead then lost,
              frozen during a rotation: distance and angle moved, the base's reason
  skew        navigator with max_clock_skew 5 s, all inputs stamped 3 s ahead at 10 Hz, then
              the scan dies: time from the last scan to STOP on o4a/action; and with the
              default max_clock_skew 0.2 s: time from the first skewed input to STOP
  nan         collision_checker + navigator + base_controller on all-NaN scans for --nan-s
              seconds: FORWARDs published, forward velocity

Usage:
  .venv/bin/python scripts/measure_safety.py [--trials 10] [--nan-s 20] [--json runs/safety.json]
                                             [--cases intrusion,offsets,odometry,skew,nan]
"""
from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("ROS_DOMAIN_ID", str(150 + os.getpid() % 80))
os.environ["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"
NS = f"/o4a_safety_{os.getpid()}"


def start(script: str, *params: str) -> subprocess.Popen:
    args = [str(ROOT / ".venv/bin" / script), "--ros-args", "-r", f"__ns:={NS}",
            "--params-file", str(ROOT / "config/navigation.yaml")]
    if params:   # a second file under the node's own key: a plain -p loses to that section of the first
        values = dict(p.split(":=", 1) for p in params)
        extra = Path(tempfile.mkdtemp()) / f"{script}.yaml"
        extra.write_text(f"/**/{script}:\n  ros__parameters:\n"
                         + "".join(f"    {k}: {v}\n" for k, v in values.items()))
        args += ["--params-file", str(extra)]
    return subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def wait(pred, timeout):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if pred():
            return True
        time.sleep(0.005)
    return pred()


class Probe:
    """The base and the laser around the nodes under test: a unicycle integrating cmd_vel
    (drive, 50 Hz odometry) and 10 Hz scans of a wall across the path (scans); it also
    publishes images, A_free, actions and motion ends, and records what the nodes publish."""

    def __init__(self):
        import rclpy
        from geometry_msgs.msg import Twist
        from nav_msgs.msg import Odometry
        from o4a_msgs.msg import DiscreteAction, FreeActions, MotionState, NavigatorStatus
        from sensor_msgs.msg import Image, LaserScan

        from o4a_nav import topics
        from o4a_nav.nodes._common import SENSOR_QOS, reliable
        from o4a_nav.types import Pose2D

        self.node = node = rclpy.create_node("safety_probe", namespace=NS)
        self.pose, self.wall_x, self.scan_fn, self.odom_fn = Pose2D(0, 0, 0), None, None, None
        self.scan_offset = 0.0   # the laser's clock minus the others' [s]
        self.cmd = (0.0, 0.0)
        self.cmd_log, self.scan_log, self.motion, self.actions, self.status = [], [], [], [], []
        self.pub_odom = node.create_publisher(Odometry, topics.ODOM, SENSOR_QOS)
        self.pub_scan = node.create_publisher(LaserScan, topics.SCAN, SENSOR_QOS)
        self.pub_front = node.create_publisher(Image, topics.FRONT_IMAGE, SENSOR_QOS)
        self.pub_rear = node.create_publisher(Image, topics.REAR_IMAGE, SENSOR_QOS)
        self.pub_free = node.create_publisher(FreeActions, topics.FREE_ACTIONS, reliable(1))
        self.pub_action = node.create_publisher(DiscreteAction, topics.ACTION, reliable(10))
        self.pub_motion = node.create_publisher(MotionState, topics.MOTION_STATE, reliable(10))
        node.create_subscription(Twist, topics.CMD_VEL, self._on_cmd, reliable(10))
        node.create_subscription(MotionState, topics.MOTION_STATE, self.motion.append, reliable(10))
        node.create_subscription(DiscreteAction, topics.ACTION,
                                 lambda m: self.actions.append((time.monotonic(), m)), reliable(10))
        node.create_subscription(NavigatorStatus, topics.STATUS, self.status.append, reliable(10))
        self.running = {"base": True, "scan": True}
        self.seq = 0   # of the last DiscreteAction sent

    def now(self):
        return self.node.get_clock().now().nanoseconds * 1e-9

    def _on_cmd(self, m):
        self.cmd = (m.linear.x, m.angular.z)
        self.cmd_log.append((time.monotonic(), m.linear.x, m.angular.z))

    def ranges(self):
        from o4a_nav.sim.robot import cast_rays

        if self.scan_fn is not None:
            return self.scan_fn()
        r = np.full(181, np.inf, np.float32)
        if self.wall_x is not None:
            wall = np.array([[[self.wall_x, -5.0], [self.wall_x, 5.0]]])  # the simulator's ray caster
            r = cast_rays(wall, self.pose.x, self.pose.y, self.pose.yaw + np.linspace(-math.pi / 2, math.pi / 2, 181))
            r = np.where(r <= 10.0, r, np.inf).astype(np.float32)
        return r

    def scan(self, ranges=None, stamp=None):
        from o4a_nav import ros_conv, topics
        from o4a_nav.types import ScanData

        s = ScanData(self.ranges() if ranges is None else ranges, -math.pi / 2, math.pi / 180, 0.05, 10.0,
                     stamp=self.now() + self.scan_offset if stamp is None else stamp)
        self.scan_log.append((time.monotonic(), self.wall_x))
        self.pub_scan.publish(ros_conv.scan_data_to_msg(s, topics.LASER_FRAME))

    def action(self, a, seq):
        from o4a_msgs.msg import DiscreteAction

        from o4a_nav import ros_conv

        m = DiscreteAction()
        ros_conv.fill_header(m.header, self.now(), "base_link")
        m.action, m.sequence = int(a), seq
        self.pub_action.publish(m)

    def final(self, seq):
        done = [m for m in self.motion if m.sequence == seq and m.state in (2, 3)]
        return done[-1] if done else None

    def drive(self):
        """The base: integrates cmd_vel and publishes odometry (odom_fn may fault it) at 50 Hz."""
        from nav_msgs.msg import Odometry

        from o4a_nav import ros_conv, topics
        from o4a_nav.types import Pose2D, wrap_angle

        last = time.monotonic()
        while self.running["base"]:
            now = time.monotonic()
            h, last = now - last, now
            v, w = self.cmd
            p = self.pose
            self.pose = Pose2D(p.x + v * h * math.cos(p.yaw), p.y + v * h * math.sin(p.yaw), wrap_angle(p.yaw + w * h))
            o = (self.pose, self.now()) if self.odom_fn is None else self.odom_fn(self.pose, self.now())
            if o is not None:
                m = Odometry()
                ros_conv.fill_header(m.header, o[1], topics.ODOM_FRAME)
                ros_conv.set_pose_msg(m.pose.pose, o[0])
                self.pub_odom.publish(m)
            time.sleep(0.02)

    def scans(self):
        """The laser: a scan every 0.1 s while running["scan"]."""
        while self.running["base"]:
            if self.running["scan"]:
                self.scan()
            time.sleep(0.1)


def goal_request(probe: Probe, img):
    """A SetGoal request for the images img[1], img[2]."""
    from o4a_msgs.srv import SetGoal

    from o4a_nav import ros_conv

    req = SetGoal.Request()
    req.front = ros_conv.rgb_to_image_msg(img[1], probe.now(), "f")
    req.rear = ros_conv.rgb_to_image_msg(img[2], probe.now(), "r")
    return req


def intrusion(probe: Probe, case: str, odom_behind: float, scan_ahead: float, trials: int):
    """A wall 0.30 m ahead during a FORWARD (odometry stamped odom_behind s late, the laser
    scan_ahead s early) -> (ms from the scan to cmd_vel 0, travel after the wall appeared,
    the base's reports) per trial."""
    from o4a_nav.types import Pose2D

    probe.odom_fn = (lambda pose, t, b=odom_behind: (pose, t - b)) if odom_behind else None
    probe.scan_offset = scan_ahead
    lat, after, msgs = [], [], []
    for k in range(trials):
        probe.wall_x = None
        time.sleep(0.5)
        x_start = probe.pose.x
        for _ in range(5):  # the first command can come before the base has its first scan
            probe.seq += 1
            seq = probe.seq
            probe.action(1, seq)
            if wait(lambda: probe.pose.x > x_start + 0.03 or probe.final(seq) is not None, 10) \
                    and probe.final(seq) is None:
                break
            time.sleep(0.5)
        x0 = probe.pose.x
        n_scan, n_cmd = len(probe.scan_log), len(probe.cmd_log)
        probe.wall_x = x0 + 0.30
        wait(lambda: probe.final(seq) is not None, 10)
        time.sleep(0.3)
        t_seen = next(t for t, w in probe.scan_log[n_scan:] if w is not None)
        t_zero = next((t for t, v, w in probe.cmd_log[n_cmd:] if v == 0.0 and t >= t_seen), math.nan)
        lat.append((t_zero - t_seen) * 1e3)
        after.append(probe.pose.x - x0)
        msgs.append(probe.final(seq).message if probe.final(seq) else "no report")
        print(f"{case} {k}: {msgs[-1]!r}: cmd_vel 0 {lat[-1]:.1f} ms after the scan, "
              f"{after[-1] * 100:.1f} cm after the wall appeared")
        probe.pose = Pose2D(0.0, 0.0, 0.0)
    return lat, after, msgs


def odometry_fault(probe: Probe, fault: str, trials: int):
    """A FORWARD (ROTATE_LEFT for frozen_rotation) with the odometry fault from 0.1 s into
    the motion -> (distance, degrees moved, the base's report) per trial."""
    from o4a_nav.sim.faults import OdometryFault
    from o4a_nav.types import Pose2D, wrap_angle

    rows = []
    for k in range(max(1, trials // 2)):
        probe.wall_x = None
        probe.pose = Pose2D(2.0, 1.0, 0.4)
        probe.odom_fn = None
        time.sleep(0.5)
        start_pose = probe.pose
        odom = OdometryFault(fault)

        probe.odom_fn = odom
        probe.seq += 1
        seq = probe.seq
        probe.action(2 if fault == "frozen_rotation" else 1, seq)
        wait(lambda: any(m.sequence == seq and m.state == 1 for m in probe.motion), 10)
        odom.start = probe.now() + 0.1
        wait(lambda: probe.final(seq) is not None, 15)
        time.sleep(0.5)
        d = math.hypot(probe.pose.x - start_pose.x, probe.pose.y - start_pose.y)
        a = math.degrees(abs(wrap_angle(probe.pose.yaw - start_pose.yaw)))
        rep = probe.final(seq)
        rows.append((d, a, rep.message if rep else "no report"))
        probe.odom_fn = None
    print(f"{fault}: max {max(r[0] for r in rows):.3f} m, {max(r[1] for r in rows):.1f} deg; {rows[0][2]!r}")
    return rows


def random_model():
    """A randomly initialised default model directory and 8 random images."""
    import torch

    from o4a_nav.learning.config import ModelConfig
    from o4a_nav.learning.model_io import O4AModel, save_model

    torch.manual_seed(0)
    model = save_model(O4AModel(ModelConfig(), ["w"]), Path(tempfile.mkdtemp()) / "m")
    rng = np.random.default_rng(0)
    img = [rng.integers(0, 255, (96, 96, 3), dtype=np.uint8) for _ in range(8)]
    return model, img


def skewed_stream(probe: Probe, img, stop_stream, scan_alive, last_scan, first_pub):
    """Images, A_free and (while scan_alive) scans stamped 3 s ahead at 10 Hz until
    stop_stream; the base ends every motion at once."""
    from o4a_msgs.msg import FreeActions, MotionState

    from o4a_nav import ros_conv

    k = 0
    while not stop_stream.is_set():
        t = probe.now() + 3.0
        probe.pub_front.publish(ros_conv.rgb_to_image_msg(img[k % 8], t, "front"))
        probe.pub_rear.publish(ros_conv.rgb_to_image_msg(img[(k + 3) % 8], t, "rear"))
        m = FreeActions()
        ros_conv.fill_header(m.header, t, "laser")
        m.forward = m.rotate_left = m.rotate_right = True
        probe.pub_free.publish(m)
        if scan_alive.is_set():
            probe.scan(np.full(181, np.inf, np.float32), stamp=t)
            last_scan[0] = time.monotonic()
        if first_pub[0] is None:
            first_pub[0] = time.monotonic()
        # the base: every motion ends at once
        for _, a in list(probe.actions):
            if a.action != 0 and not any(mm.sequence == a.sequence for mm in probe.motion):
                ms = MotionState()
                ros_conv.fill_header(ms.header, probe.now(), "base_link")
                ms.sequence, ms.action, ms.state = a.sequence, a.action, 2
                probe.pub_motion.publish(ms)
        k += 1
        time.sleep(0.1)


def skew_accepted(probe: Probe, max_skew: float, trials: int, n_act: int, scan_alive, last_scan):
    """The navigator moves on the skewed inputs; the scan dies -> ms from the last scan to
    STOP per trial."""
    rows = []
    for k in range(max(1, trials // 2)):
        scan_alive.set()
        if not wait(lambda: len([a for t, a in probe.actions[n_act:] if a.action != 0]) >= 2, 30):
            print("skew: the navigator did not move on the skewed inputs; trial skipped")
            n_act = len(probe.actions)
            continue
        time.sleep(0.3)
        scan_alive.clear()
        t_dead = last_scan[0]
        wait(lambda: any(t > t_dead and a.action == 0 for t, a in probe.actions), 10)
        t_stop = next((t for t, a in probe.actions if t > t_dead and a.action == 0), math.nan)
        rows.append((t_stop - t_dead) * 1e3)
        print(f"skew 3 s accepted (max_clock_skew {max_skew}): STOP {rows[-1]:.0f} ms after the last scan")
        n_act = len(probe.actions)
    return rows


def skew_refused(probe: Probe, max_skew: float, n_act: int):
    """STOP was published at the goal (no inputs yet); the skewed inputs must not move it ->
    [motions published in 3 s]."""
    time.sleep(3.0)
    motions = [a for t, a in probe.actions[n_act:] if a.action != 0]
    reason = probe.status[-1].message if probe.status else ""
    print(f"skew 3 s refused (max_clock_skew {max_skew}): {len(motions)} motions in 3 s; "
          f"status {probe.status[-1].state_text if probe.status else ''} {reason!r}")
    return [len(motions)]


def skew(probe: Probe, model, img, max_skew: float, trials: int, procs: list):
    """The navigator (max_clock_skew max_skew) on inputs stamped 3 s ahead: accepted above
    1 s (skew_accepted), refused below (skew_refused)."""
    from o4a_msgs.srv import SetGoal

    from o4a_nav import topics

    nav = start("navigator", f"model_path:={model}", "stop_threshold:=0.0", f"max_clock_skew:={max_skew}")
    procs.append(nav)
    cli = probe.node.create_client(SetGoal, topics.SET_GOAL)
    assert cli.wait_for_service(timeout_sec=60)
    stop_stream = threading.Event()
    scan_alive = threading.Event()
    scan_alive.set()
    last_scan = [0.0]
    first_pub = [None]
    fut = cli.call_async(goal_request(probe, img))
    wait(fut.done, 30)
    n_act = len(probe.actions)
    th = threading.Thread(target=skewed_stream, args=(probe, img, stop_stream, scan_alive, last_scan, first_pub),
                          daemon=True)
    th.start()
    if max_skew > 1.0:
        rows = skew_accepted(probe, max_skew, trials, n_act, scan_alive, last_scan)
    else:
        rows = skew_refused(probe, max_skew, n_act)
    stop_stream.set()
    th.join(2)
    probe.node.destroy_client(cli)
    nav.terminate()
    nav.wait(10)
    procs.remove(nav)
    return rows


def image_stream(probe: Probe, img, stop_stream):
    """Images stamped now at 10 Hz until stop_stream."""
    from o4a_nav import ros_conv

    k = 0
    while not stop_stream.is_set():
        t = probe.now()
        probe.pub_front.publish(ros_conv.rgb_to_image_msg(img[k % 8], t, "front"))
        probe.pub_rear.publish(ros_conv.rgb_to_image_msg(img[(k + 5) % 8], t, "rear"))
        k += 1
        time.sleep(0.1)


def all_nan(probe: Probe, model, img, seconds: float, procs: list) -> dict:
    """collision_checker + base_controller + navigator on all-NaN scans for `seconds`: the
    FORWARDs and rotations published, the largest forward cmd_vel."""
    from o4a_msgs.srv import SetGoal

    from o4a_nav import topics
    from o4a_nav.types import Pose2D

    probe.running["scan"] = True
    probe.scan_fn = lambda: np.full(181, np.nan, np.float32)
    probe.pose = Pose2D(0.0, 0.0, 0.0)
    for script, params in (("collision_checker", ()), ("base_controller", ()),
                           ("navigator", (f"model_path:={model}", "stop_threshold:=0.0"))):
        procs.append(start(script, *params))
    cli = probe.node.create_client(SetGoal, topics.SET_GOAL)
    assert cli.wait_for_service(timeout_sec=60)
    stop_stream = threading.Event()
    th = threading.Thread(target=image_stream, args=(probe, img, stop_stream), daemon=True)
    th.start()
    req = goal_request(probe, img)
    t0 = time.monotonic()
    n_act = len(probe.actions)
    fut = cli.call_async(req)
    wait(fut.done, 30)
    time.sleep(seconds)
    acts = [a.action for t, a in probe.actions[n_act:]]
    fwd_v = max([v for t, v, w in probe.cmd_log if t > t0] or [0.0])
    print(f"all-NaN scans for {seconds:.0f} s: {acts.count(1)} FORWARD, {acts.count(2) + acts.count(3)} "
          f"rotations published, max forward cmd_vel {fwd_v:.3f} m/s")
    stop_stream.set()
    th.join(2)
    return {"seconds": seconds, "forward": acts.count(1), "rotations": acts.count(2) + acts.count(3),
            "max_linear_cmd": fwd_v}


def with_base(probe: Probe, args, cases: set, out: dict, procs: list) -> None:
    """The cases of the base_controller alone: intrusion, offsets, odometry."""
    from o4a_nav import topics
    from o4a_nav.sim.faults import ODOM_FAULTS

    base = start("base_controller")
    procs.append(base)
    node = probe.node
    assert wait(lambda: node.count_subscribers(node.resolve_topic_name(topics.ACTION)) > 0
                and node.count_subscribers(node.resolve_topic_name(topics.SCAN)) > 0, 60)
    time.sleep(1.5)
    for case, odom_behind, scan_ahead in (("intrusion", 0.0, 0.0), ("offsets", 0.45, 0.19)):
        if case in cases:
            out[f"{case}_ms"], out[f"{case}_travel_m"], out[f"{case}_messages"] = \
                intrusion(probe, case, odom_behind, scan_ahead, args.trials)
    probe.odom_fn, probe.scan_offset = None, 0.0
    out["odometry"] = {fault: odometry_fault(probe, fault, args.trials)
                       for fault in (ODOM_FAULTS if "odometry" in cases else ())}
    base.terminate()
    base.wait(10)
    procs.remove(base)


def stop_all(probe: Probe, procs: list, ex) -> None:
    """Stop the probe's threads, the node processes (killed after 10 s), the executor and
    rclpy."""
    import rclpy

    probe.running["base"] = False
    for p in procs:
        p.terminate()
    for p in procs:
        try:
            p.wait(10)
        except subprocess.TimeoutExpired:
            p.kill()
    ex.shutdown()
    probe.node.destroy_node()
    rclpy.shutdown()


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--trials", type=int, default=10)
    ap.add_argument("--nan-s", type=float, default=20.0)
    ap.add_argument("--json", default=None)
    ap.add_argument("--cases", default="intrusion,offsets,odometry,skew,nan",
                    help="comma-separated subset of intrusion, offsets, odometry, skew, nan")
    args = ap.parse_args()
    cases = set(args.cases.split(","))

    import rclpy
    from rclpy.executors import SingleThreadedExecutor

    rclpy.init()
    probe = Probe()
    ex = SingleThreadedExecutor()
    ex.add_node(probe.node)
    threading.Thread(target=ex.spin, daemon=True).start()
    threading.Thread(target=probe.drive, daemon=True).start()
    threading.Thread(target=probe.scans, daemon=True).start()
    out: dict = {"trials": args.trials}
    procs = []
    try:
        with_base(probe, args, cases, out, procs)
        model, img = random_model()
        probe.running["scan"] = False
        out["skew_ms"] = {str(max_skew): skew(probe, model, img, max_skew, args.trials, procs)
                          for max_skew in ((5.0, 0.2) if "skew" in cases else ())}
        if "nan" in cases:
            out["nan"] = all_nan(probe, model, img, args.nan_s, procs)
    finally:
        stop_all(probe, procs, ex)
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(out, indent=2))
    lat = [x for x in out.get("intrusion_ms", []) if math.isfinite(x)]
    if lat:
        print(f"\nintrusion: scan -> cmd_vel 0 median {np.median(lat):.1f} ms, max {max(lat):.1f} ms; travel after "
              f"the wall appeared max {max(out['intrusion_travel_m']) * 100:.1f} cm")
    return 0


if __name__ == "__main__":
    sys.exit(main())
