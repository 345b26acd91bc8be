"""The navigation nodes under real rclpy (in-process MultiThreadedExecutor, own context):
collision_checker, base_controller and navigator with a real (randomly initialised) model
directory."""
import math
import os
import threading
import time

import numpy as np
import pytest
from rclpy.node import Node
from rclpy.parameter import Parameter

from o4a_nav import ros_conv, topics
from o4a_nav.nav.collision import FootprintParams
from o4a_nav.nodes._common import SENSOR_QOS, reliable
from o4a_nav.types import FINAL_MOTION_STATES, Action, MotionStatus, NavState, Pose2D, ScanData
from o4a_nav.nodes.goal_client import ImageGoalClient

from conftest import wait_until  # noqa: E402

pytestmark = pytest.mark.ros

# A namespace of our own on top of the per-process ROS domain: test processes of other
# suites that happen to share the domain cannot cross-talk with these nodes.
NS = f"/o4a_test_{os.getpid()}"






class Probe(Node):
    """Plays the robot around the node under test and records what it publishes."""

    def __init__(self, ctx):
        super().__init__("probe", context=ctx, namespace=NS)
        from geometry_msgs.msg import PolygonStamped, Twist
        from nav_msgs.msg import Odometry
        from o4a_msgs.msg import DiscreteAction, FreeActions, MotionState, NavigatorStatus
        from sensor_msgs.msg import Image, LaserScan

        self.Odometry, self.FreeActions, self.MotionState, self.DiscreteAction = Odometry, FreeActions, MotionState, DiscreteAction
        self.pub_front = self.create_publisher(Image, topics.FRONT_IMAGE, SENSOR_QOS)
        self.pub_rear = self.create_publisher(Image, topics.REAR_IMAGE, SENSOR_QOS)
        self.pub_scan = self.create_publisher(LaserScan, topics.SCAN, SENSOR_QOS)
        self.pub_free = self.create_publisher(FreeActions, topics.FREE_ACTIONS, reliable(1))
        self.pub_odom = self.create_publisher(Odometry, topics.ODOM, SENSOR_QOS)
        self.pub_motion = self.create_publisher(MotionState, topics.MOTION_STATE, reliable(10))
        self.pub_action = self.create_publisher(DiscreteAction, topics.ACTION, reliable(10))
        self.actions, self.statuses, self.cmds, self.free, self.boxes, self.motion = [], [], [], [], [], []
        self.create_subscription(DiscreteAction, topics.ACTION, self.actions.append, reliable(10))
        self.create_subscription(NavigatorStatus, topics.STATUS, self.statuses.append, reliable(10))
        self.create_subscription(Twist, topics.CMD_VEL, self.cmds.append, reliable(10))
        self.create_subscription(FreeActions, topics.FREE_ACTIONS, self.free.append, reliable(1))
        self.create_subscription(PolygonStamped, topics.SWEPT_BOX, self.boxes.append, reliable(1, latched=True))
        self.create_subscription(MotionState, topics.MOTION_STATE, self.motion.append, reliable(10))

    def now(self):
        return self.get_clock().now().nanoseconds * 1e-9

    def images(self, front, rear=None, encoding="rgb8"):
        t = self.now()
        self.pub_front.publish(ros_conv.rgb_to_image_msg(front, t, "front", encoding))
        self.pub_rear.publish(ros_conv.rgb_to_image_msg(front if rear is None else rear, t, "rear", encoding))

    def scan(self, ranges=None):
        r = np.full(181, np.inf, np.float32) if ranges is None else np.asarray(ranges, np.float32)
        n = len(r)
        s = ScanData(r, -math.pi / 2, math.pi / max(n - 1, 1), 0.05, 10.0, stamp=self.now())
        self.pub_scan.publish(ros_conv.scan_data_to_msg(s, topics.LASER_FRAME))

    def free_all(self, forward=True):
        m = self.FreeActions()
        ros_conv.fill_header(m.header, self.now(), "laser")
        m.forward, m.rotate_left, m.rotate_right = forward, True, True
        self.pub_free.publish(m)

    def odom(self, pose: Pose2D):
        m = self.Odometry()
        ros_conv.fill_header(m.header, self.now(), topics.ODOM_FRAME)
        ros_conv.set_pose_msg(m.pose.pose, pose)
        self.pub_odom.publish(m)


# ------------------------------------------------------------------ collision checker
def test_collision_checker_node_publishes_free_actions_and_box(ros):
    from o4a_nav.nodes.collision_checker import CollisionCheckerNode

    ctx, add = ros
    add(CollisionCheckerNode(context=ctx, namespace=NS))
    probe = add(Probe(ctx))
    assert wait_until(lambda: probe.boxes, 5.0)
    xs = sorted({round(p.x, 3) for p in probe.boxes[-1].polygon.points})
    assert xs == [0.0, 0.5] and probe.boxes[-1].header.frame_id == topics.BASE_FRAME
    assert wait_until(lambda: (probe.scan() or True) and probe.free, 5.0)
    assert probe.free[-1].forward and math.isinf(probe.free[-1].forward_clearance)
    r = np.full(181, np.inf, np.float32)
    r[90] = 0.3
    n = len(probe.free)
    probe.scan(r)
    assert wait_until(lambda: len(probe.free) > n, 5.0)
    last = probe.free[-1]
    assert not last.forward and last.points_in_box == 1 and last.rotate_left and last.rotate_right
    assert last.forward_clearance == pytest.approx(0.3, abs=1e-5)


def test_collision_checker_node_rejects_bad_geometry(ros):
    from o4a_nav.errors import UserError
    from o4a_nav.nodes.collision_checker import CollisionCheckerNode

    ctx, _ = ros
    with pytest.raises(UserError, match="box_half_width"):
        CollisionCheckerNode(context=ctx, namespace=NS, parameter_overrides=[Parameter("box_half_width", value=0.1)])


# ------------------------------------------------------------------ base controller
class Unicycle:
    """Integrates cmd_vel into odometry, like a base would (test harness, not a mock of our code)."""

    def __init__(self, probe, blocked=False):
        self.probe, self.pose, self.blocked = probe, Pose2D(0.0, 0.0, 0.0), blocked
        self.running, self.publish_odom = True, True
        self.ticks = 0  # a clear 10 Hz scan too: the base controller's collision monitor needs one
        self.th = threading.Thread(target=self.run, daemon=True)
        self.th.start()

    def run(self):
        last = time.monotonic()
        while self.running:
            now = time.monotonic()
            dt, last = now - last, now  # the time that really passed: a late loop must not slow the base
            if self.probe.cmds and not self.blocked:
                c = self.probe.cmds[-1]
                p = self.pose
                self.pose = Pose2D(p.x + c.linear.x * dt * math.cos(p.yaw), p.y + c.linear.x * dt * math.sin(p.yaw),
                                   p.yaw + c.angular.z * dt)
            if self.publish_odom:
                self.probe.odom(self.pose)
            if self.ticks % 5 == 0:
                self.probe.scan()
            self.ticks += 1
            time.sleep(0.02)

    def stop(self):
        self.running = False
        self.th.join(2.0)


def base_ready(node, probe, timeout=30.0) -> bool:
    """The base controller can execute a command from the probe: both ends of o4a/action,
    o4a/motion_state and cmd_vel matched, and it holds odometry and a scan."""
    return wait_until(lambda: probe.pub_action.get_subscription_count() >= 1
                      and node.pub_state.get_subscription_count() >= 1 and node.pub_cmd.get_subscription_count() >= 1
                      and node.ctl.pose is not None and node.ctl.scan is not None, timeout)


def send_action(probe, action, seq, stamp=None):
    m = probe.DiscreteAction()
    ros_conv.fill_header(m.header, probe.now() if stamp is None else stamp, "base_link")
    m.action, m.sequence = int(action), seq
    probe.pub_action.publish(m)


def test_base_controller_node_executes_and_stops_on_stale_odom(ros):
    from o4a_nav.nodes.base_controller import BaseControllerNode

    ctx, add = ros
    # 1.5 s: the odometry and scan threads of this test can be late by more than 0.5 s on a busy CPU
    node = add(BaseControllerNode(context=ctx, namespace=NS, parameter_overrides=[
        Parameter("odom_timeout", value=1.5), Parameter("scan_timeout", value=1.5)]))
    probe = add(Probe(ctx))
    base = Unicycle(probe)
    try:
        assert base_ready(node, probe)
        send_action(probe, Action.FORWARD, 1)
        assert wait_until(lambda: any(m.sequence == 1 and m.state in FINAL_MOTION_STATES for m in probe.motion), 10.0)
        assert [m.message for m in probe.motion if m.sequence == 1 and m.state in FINAL_MOTION_STATES] == [""]  # SUCCEEDED
        assert wait_until(lambda: probe.cmds[-1].linear.x == 0.0, 2.0)  # cmd_vel and motion_state: no order
        assert math.hypot(base.pose.x, base.pose.y) == pytest.approx(0.25, abs=0.03)
        send_action(probe, Action.ROTATE_LEFT, 2)
        assert wait_until(lambda: any(m.sequence == 2 and m.state == MotionStatus.SUCCEEDED for m in probe.motion), 10.0)
        assert base.pose.yaw == pytest.approx(math.radians(15), abs=0.04)
        # stale odometry during a motion: ABORTED and zero velocity
        send_action(probe, Action.FORWARD, 3)
        assert wait_until(lambda: any(m.sequence == 3 and m.state == MotionStatus.EXECUTING for m in probe.motion), 5.0)
        base.publish_odom = False
        assert wait_until(lambda: any(m.sequence == 3 and m.state == MotionStatus.ABORTED for m in probe.motion), 8.0)
        msg = [m for m in probe.motion if m.sequence == 3 and m.state == MotionStatus.ABORTED][0].message
        assert "odometry" in msg
        assert wait_until(lambda: probe.cmds[-1].linear.x == 0.0 and probe.cmds[-1].angular.z == 0.0, 2.0)
        # stale command refused
        last_odom = node.ctl.odom_arrival
        base.publish_odom = True
        assert wait_until(lambda: node.ctl.odom_arrival > last_odom, 10.0)   # fresh odometry again
        send_action(probe, Action.FORWARD, 4, stamp=probe.now() - 5.0)
        assert wait_until(lambda: any(m.sequence == 4 and m.state == MotionStatus.ABORTED for m in probe.motion), 5.0)
        assert "stale command" in [m for m in probe.motion if m.sequence == 4][-1].message
    finally:
        base.stop()


# ------------------------------------------------------------------ navigator
@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    import torch

    from o4a_nav.learning.config import ModelConfig
    from o4a_nav.learning.model_io import O4AModel, save_model

    torch.manual_seed(0)
    return str(save_model(O4AModel(ModelConfig(), ["test_world"]), tmp_path_factory.mktemp("model") / "m"))


def nav_node(ctx, model_path, **params):
    from o4a_nav.nodes.navigator import NavigatorNode

    over = [Parameter("model_path", value=model_path), Parameter("torch_threads", value=1)]
    over += [Parameter(k, value=v) for k, v in params.items()]
    return NavigatorNode(context=ctx, namespace=NS, parameter_overrides=over)


def call_set_goal(probe, front, rear, enc_front="rgb8", enc_rear="rgb8"):
    from o4a_msgs.srv import SetGoal

    cli = probe.create_client(SetGoal, topics.SET_GOAL)
    assert cli.wait_for_service(timeout_sec=10.0)
    req = SetGoal.Request()
    req.front = ros_conv.rgb_to_image_msg(front, probe.now(), "front", enc_front)
    req.rear = ros_conv.rgb_to_image_msg(rear, probe.now(), "rear", enc_rear)
    fut = cli.call_async(req)
    assert wait_until(fut.done, 20.0)
    probe.destroy_client(cli)
    return fut.result()


def rand_img(seed, h=96, w=96):
    return np.random.default_rng(seed).integers(0, 255, (h, w, 3), dtype=np.uint8)


def test_navigator_without_model_refuses_and_never_moves(ros, tmp_path):
    """A corrupt model: started on its own (autostart) the node refuses to come up with one
    line; managed, it is configured in NO_MODEL, says so on o4a/status while inactive,
    refuses to activate (no manager reports it active) and never publishes an action."""
    from o4a_nav.errors import UserError

    ctx, add = ros
    corrupt = tmp_path / "corrupt"
    corrupt.mkdir()
    (corrupt / "meta.json").write_text("{not json")
    with pytest.raises(UserError, match="NO_MODEL.*corrupt"):
        nav_node(ctx, str(corrupt))
    node = add(nav_node(ctx, str(corrupt), autostart=False))
    probe = add(Probe(ctx))
    node.trigger_configure()
    assert node.runtime.status.state == NavState.NO_MODEL
    node.trigger_activate()
    assert not node.active and "corrupt" in node.activate_error
    assert node._state_machine.current_state[1] == "inactive"
    for _ in range(5):
        probe.images(rand_img(3))
        probe.scan()
        probe.free_all()
        time.sleep(0.05)
    assert wait_until(lambda: probe.statuses, 5.0)
    assert probe.statuses[-1].state == NavState.NO_MODEL and "corrupt" in probe.statuses[-1].message
    assert probe.actions == []


def test_navigator_goal_validation_and_stale_inputs(ros, model_dir):
    ctx, add = ros
    node = add(nav_node(ctx, model_dir, stale_timeout=0.3, stop_threshold=0.0))  # random model: codes are close
    probe = add(Probe(ctx))
    # bad goals: wrong encoding, mismatched sizes, empty image
    res = call_set_goal(probe, rand_img(1), rand_img(2), enc_front="rgb16")
    assert not res.accepted and "encoding" in res.message
    res = call_set_goal(probe, rand_img(1, 96, 96), rand_img(2, 120, 160))
    assert not res.accepted and "differ in size" in res.message
    res = call_set_goal(probe, np.zeros((0, 0, 3), np.uint8), rand_img(2))
    assert not res.accepted and "empty" in res.message
    assert not node.runtime.active
    res = call_set_goal(probe, rand_img(1, 120, 160), rand_img(2, 120, 160), enc_front="bgr8")
    assert res.accepted, res.message
    # no inputs yet: STOP and status names the stale inputs
    assert wait_until(lambda: probe.actions and probe.statuses and probe.statuses[-1].state == NavState.STALE_INPUT, 5.0)
    assert probe.actions[-1].action == Action.STOP
    assert set(probe.statuses[-1].stale_inputs) == {"front_camera", "rear_camera", "scan", "free_actions"}
    # data flows: a motion is decided
    n = len(probe.actions)
    for _ in range(20):
        probe.images(rand_img(5))
        probe.scan()
        probe.free_all()
        if len(probe.actions) > n:
            break
        time.sleep(0.05)
    assert wait_until(lambda: len(probe.actions) > n, 5.0)
    assert probe.actions[-1].action in (Action.FORWARD, Action.ROTATE_LEFT, Action.ROTATE_RIGHT)
    assert wait_until(lambda: probe.statuses[-1].state == NavState.WAITING_MOTION, 5.0)
    st = probe.statuses[-1]
    assert len(st.candidate_actions) == 3 and st.step == 1 and st.decision_latency_ms > 0
    # a bad goal now keeps the current one
    res = call_set_goal(probe, rand_img(1, 96, 96), rand_img(2, 48, 48))
    assert not res.accepted and node.runtime.active
    # the scan stops: STOP naming "scan"
    n = len(probe.actions)
    for _ in range(12):
        probe.images(rand_img(5))
        probe.free_all()
        time.sleep(0.05)
    assert wait_until(lambda: probe.statuses[-1].state == NavState.STALE_INPUT, 5.0)
    assert list(probe.statuses[-1].stale_inputs) == ["scan"]
    assert probe.actions[-1].action == Action.STOP and len(probe.actions) == n + 1


def test_navigator_forward_gate_follows_latest_scan(ros, model_dir):
    """Several random scans through the node: FORWARD is never published when the scan
    the node last received has a return in the swept box."""
    ctx, add = ros
    node = add(nav_node(ctx, model_dir, stop_threshold=0.0))
    probe = add(Probe(ctx))
    probe.images(rand_img(7))
    probe.scan()
    probe.free_all()
    assert call_set_goal(probe, rand_img(1), rand_img(2)).accepted
    rng = np.random.default_rng(0)
    seen = 0
    for k in range(8):
        ranges = np.where(rng.random(181) < 0.03, rng.uniform(0.06, 1.0, 181), np.inf).astype(np.float32)
        rf = np.where(np.isfinite(ranges), ranges, 0.0)
        x = rf * np.cos(np.linspace(-math.pi / 2, math.pi / 2, 181))
        y = rf * np.sin(np.linspace(-math.pi / 2, math.pi / 2, 181))
        blocked = bool(np.any(np.isfinite(ranges) & (x > 0) & (x < 0.5) & (np.abs(y) < FootprintParams().box_half_width)))
        n = len(probe.actions)
        # the previous motion finished
        if probe.actions:
            m = probe.MotionState()
            ros_conv.fill_header(m.header, probe.now(), "base_link")
            m.sequence, m.state, m.action = probe.actions[-1].sequence, 2, probe.actions[-1].action
            probe.pub_motion.publish(m)
            assert wait_until(lambda: node.runtime.pending_seq is None, 10.0)   # the node took the report
        t = probe.now()
        probe.scan(ranges)
        probe.free_all(forward=True)  # a lagging checker says free: the gate must still hold
        assert wait_until(lambda: node.runtime.inputs["scan"].stamp >= t
                          and node.runtime.inputs["free_actions"].stamp >= t, 10.0)
        probe.images(rand_img(10 + k))
        assert wait_until(lambda: len(probe.actions) > n, 5.0)
        a = probe.actions[-1].action
        seen += 1
        if blocked:
            assert a != Action.FORWARD
    assert seen == 8 and node.runtime.nav.steps >= 8


@pytest.mark.parametrize("ros", ["multi", "single"], indirect=True)
def test_navigate_action_success_and_cancel(ros, model_dir):
    ctx, add = ros
    # a random model puts different images ~0.05 apart: a tiny threshold separates "here" from elsewhere
    add(nav_node(ctx, model_dir, stop_threshold=0.01))
    probe = add(Probe(ctx))
    client = ImageGoalClient(probe)   # the fixture's executor spins the probe
    assert client.wait_for_server(10.0)
    here = rand_img(11)
    stop = threading.Event()

    def stream():
        while not stop.is_set():
            probe.images(here)
            probe.scan()
            probe.free_all()
            time.sleep(0.05)

    th = threading.Thread(target=stream, daemon=True)
    th.start()
    try:
        # goal = the current view: d_h = 0 < threshold -> success at the first decision
        fb = []
        assert client.send(here, here, stamp=probe.now(), feedback_callback=fb.append)
        assert client.wait(15.0)
        res = client.result()
        assert res.success and res.steps == 1 and res.final_goal_distance < 1e-3
        assert probe.actions[-1].action == Action.STOP
        assert wait_until(lambda: fb, 5.0) and fb[-1].step == 1 and client.feedback.step == 1
        # far goal, then cancel: result canceled, STOP published
        assert client.send(rand_img(12), rand_img(13), stamp=probe.now())
        assert wait_until(lambda: probe.actions[-1].action != Action.STOP, 10.0)
        assert not client.is_complete()
        assert client.cancel(10.0)
        assert client.status == 5  # GoalStatus.STATUS_CANCELED
        assert not client.result().success and client.result().reason == "canceled"
        assert probe.actions[-1].action == Action.STOP
        # bad goal through the action: aborted with the reason
        assert client.send(rand_img(12), rand_img(13, 50, 50), stamp=probe.now())
        assert client.wait(10.0)
        assert not client.result().success and "differ in size" in client.result().reason
    finally:
        stop.set()
        th.join(2.0)
        client.destroy()


def test_parameters_change_at_run_time_or_are_refused(ros, model_dir):
    from o4a_nav.nodes.base_controller import BaseControllerNode
    from o4a_nav.nodes.collision_checker import CollisionCheckerNode

    ctx, add = ros
    cc = add(CollisionCheckerNode(context=ctx, namespace=NS))
    r = cc.set_parameters([Parameter("box_half_width", value=0.1)])[0]
    assert not r.successful and "narrower than the robot" in r.reason
    half = FootprintParams().box_half_width  # unchanged: the bad value was refused
    assert cc.checker.params.box_half_width == half and cc.get_parameter("box_half_width").value == half
    assert cc.set_parameters([Parameter("box_x_max", value=0.8)])[0].successful
    assert cc.checker.params.box_x_max == 0.8
    base = add(BaseControllerNode(context=ctx, namespace=NS))
    assert base.set_parameters([Parameter("max_linear_speed", value=0.4)])[0].successful
    assert base.ctl.params.max_linear_speed == 0.4
    r = base.set_parameters([Parameter("control_rate", value=10.0)])[0]
    assert not r.successful and "read-only" in r.reason
    r = base.set_parameters([Parameter("min_linear_speed", value=2.0)])[0]  # above max: invalid
    assert not r.successful and base.ctl.params.min_linear_speed == 0.03
    nav = add(nav_node(ctx, model_dir))
    assert nav.set_parameters([Parameter("stop_threshold", value=2.0)])[0].successful
    assert nav.runtime.nav.params.stop_threshold == 2.0 and nav.runtime.status.stop_threshold == 2.0
    assert nav.set_parameters([Parameter("stale_timeout", value=1.0)])[0].successful
    assert nav.runtime.params.stale_timeout == 1.0
    assert nav.set_parameters([Parameter("box_half_width", value=0.25)])[0].successful
    assert nav.runtime.checker.params.box_half_width == 0.25
    r = nav.set_parameters([Parameter("model_path", value="/elsewhere")])[0]
    assert not r.successful and "read-only" in r.reason
    r = nav.set_parameters([Parameter("stop_threshold", value=-1.0)])[0]  # outside the declared range
    assert not r.successful and nav.runtime.nav.params.stop_threshold == 2.0
