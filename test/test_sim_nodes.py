"""The sim and explorer nodes under real rclpy (in-process executor, own context)."""
import threading
import time

import pytest
from rclpy.node import Node
from rclpy.parameter import Parameter

from o4a_nav import ros_conv, topics
from o4a_nav.errors import UserError
from o4a_nav.nodes._common import SENSOR_QOS, reliable
from o4a_nav.sim import load_world
from o4a_nav.types import Action, wrap_angle

from conftest import wait_until  # noqa: E402

pytestmark = pytest.mark.ros






class Probe(Node):
    def __init__(self, ctx):
        super().__init__("probe", context=ctx)
        from geometry_msgs.msg import PoseStamped, Twist
        from nav_msgs.msg import Odometry
        from o4a_msgs.msg import DiscreteAction, MotionState
        from sensor_msgs.msg import CameraInfo, Image, LaserScan
        from std_msgs.msg import String

        from o4a_nav.nodes.sim import camera_info_topic

        self.Twist = Twist
        self.info = []
        self.create_subscription(CameraInfo, camera_info_topic(topics.FRONT_IMAGE), self.info.append, SENSOR_QOS)
        self.front, self.rear, self.scans, self.odom, self.gt, self.world = [], [], [], [], [], []
        self.world_def = []
        self.actions, self.motion = [], []
        self.create_subscription(Image, topics.FRONT_IMAGE, self.front.append, SENSOR_QOS)
        self.create_subscription(Image, topics.REAR_IMAGE, self.rear.append, SENSOR_QOS)
        self.create_subscription(LaserScan, topics.SCAN, self.scans.append, SENSOR_QOS)
        self.create_subscription(Odometry, topics.ODOM, self.odom.append, SENSOR_QOS)
        self.create_subscription(PoseStamped, topics.GROUND_TRUTH_POSE, self.gt.append, reliable(10))
        self.create_subscription(String, topics.WORLD_NAME, self.world.append, reliable(1, latched=True))
        self.create_subscription(String, topics.WORLD_DEFINITION, self.world_def.append, reliable(1, latched=True))
        self.create_subscription(DiscreteAction, topics.ACTION, self.actions.append, reliable(10))
        self.create_subscription(MotionState, topics.MOTION_STATE, self.motion.append, reliable(10))
        self.pub_cmd = self.create_publisher(Twist, topics.CMD_VEL, reliable(10))

    def cmd(self, v, w):
        m = self.Twist()
        m.linear.x, m.angular.z = float(v), float(w)
        self.pub_cmd.publish(m)


def _odom_xy(msg):
    return msg.pose.pose.position.x, msg.pose.pose.position.y


def test_sim_node_publishes_sensors_and_answers_cmd_vel(ros):
    from o4a_nav.nodes.sim import SimNode

    ctx, add = ros
    # west room of two_rooms, facing east towards the wall at x = 4 (3 m ahead at y = 1)
    sim = add(SimNode(context=ctx, parameter_overrides=[
        Parameter("world", value="two_rooms"), Parameter("initial_pose", value=[1.0, 1.0, 0.0])]))
    probe = add(Probe(ctx))
    assert wait_until(lambda: probe.front and probe.rear and probe.scans and probe.odom and probe.world)
    img = probe.front[-1]
    assert (img.height, img.width, img.encoding, img.header.frame_id) == (96, 96, "rgb8", topics.FRONT_CAMERA_FRAME)
    assert probe.world[0].data == "two_rooms"
    assert wait_until(lambda: probe.world_def)
    assert probe.world_def[0].data == load_world("two_rooms").text   # latched: a late recorder gets it too
    assert wait_until(lambda: probe.info)
    info = probe.info[-1]
    # 90 deg horizontal FOV over 96 px: fx = 48 / tan(45 deg) = 48
    assert (info.width, info.height, info.header.frame_id) == (96, 96, topics.FRONT_CAMERA_FRAME)
    assert info.k[0] == pytest.approx(48.0) and info.k[4] == pytest.approx(48.0)
    scan = ros_conv.scan_msg_to_data(probe.scans[-1])
    assert probe.scans[-1].header.frame_id == topics.LASER_FRAME
    i0 = int(round(-scan.angle_min / scan.angle_increment))
    # the east wall at x = 4 is solid: its face is half a wall thickness nearer than x = 4
    half = load_world("two_rooms").wall_thickness / 2
    assert scan.ranges[i0] == pytest.approx(3.0 - half, abs=1e-3)
    assert probe.odom[-1].header.frame_id == "odom" and probe.odom[-1].child_frame_id == "base_link"
    assert _odom_xy(probe.odom[-1]) == pytest.approx((0.0, 0.0), abs=1e-9)
    # drive forward at 0.5 m/s: odometry and ground truth advance along +x
    stop = threading.Event()

    def drive(v, w):
        while not stop.is_set():
            probe.cmd(v, w)
            time.sleep(0.05)

    t = threading.Thread(target=drive, args=(0.5, 0.0), daemon=True)
    t.start()
    try:
        assert wait_until(lambda: _odom_xy(probe.odom[-1])[0] > 0.5)
        assert abs(_odom_xy(probe.odom[-1])[1]) < 1e-6
        assert any(m.twist.twist.linear.x == pytest.approx(0.5) for m in list(probe.odom))
        # keep driving: the robot stops at the wall (x = 4 - radius), never inside it
        assert wait_until(lambda: sim.blocked_moves > 0)
        assert sim.robot.pose.x <= 4.0 - 0.2 + 1e-9
        assert sim.robot.pose.x > 3.6
    finally:
        stop.set()
        t.join(2.0)
    # commands stop: once the last cmd_vel is older than cmd_vel_timeout the robot stands
    # still. At the wall FORWARD is blocked, so turn in place (free) to see that it stops.
    yaw0 = sim.robot.pose.yaw
    stop.clear()
    t = threading.Thread(target=drive, args=(0.0, 1.0), daemon=True)
    t.start()
    try:
        assert wait_until(lambda: abs(wrap_angle(sim.robot.pose.yaw - yaw0)) > 0.2)   # it was turning
    finally:
        stop.set()
        t.join(2.0)
    assert wait_until(lambda: probe.odom[-1].twist.twist.linear.x == 0.0 and probe.odom[-1].twist.twist.angular.z == 0.0)
    x, yaw = sim.robot.pose.x, sim.robot.pose.yaw
    n = len(probe.odom)
    assert wait_until(lambda: len(probe.odom) >= n + 10)   # ten more physics periods without commands
    assert (sim.robot.pose.x, sim.robot.pose.yaw) == (x, yaw)
    # ground truth in the map frame follows the robot
    assert wait_until(lambda: abs(probe.gt[-1].pose.position.x - sim.robot.pose.x) < 1e-9)
    # ~/respawn teleports to a free pose and restarts odometry there
    from std_srvs.srv import Trigger

    cli = probe.create_client(Trigger, "/sim/respawn")
    assert cli.wait_for_service(timeout_sec=10.0)
    fut = cli.call_async(Trigger.Request())
    assert wait_until(fut.done)
    assert fut.result().success and "respawned" in fut.result().message
    p = sim.robot.pose
    assert not sim.robot.world.collides(p.x, p.y) and (p.x, p.y) != (x, 1.0)
    assert wait_until(lambda: _odom_xy(probe.odom[-1]) == pytest.approx((0.0, 0.0), abs=1e-9))


def test_sim_node_refuses_a_pose_inside_a_wall(ros):
    from o4a_nav.nodes.sim import SimNode

    ctx, _ = ros
    with pytest.raises(UserError, match="initial_pose"):
        SimNode(context=ctx, parameter_overrides=[Parameter("initial_pose", value=[0.05, 1.0, 0.0])])


def test_explorer_drives_the_sim_through_the_base_controller(ros):
    from o4a_nav.nodes.base_controller import BaseControllerNode
    from o4a_nav.nodes.explorer import ExplorerNode
    from o4a_nav.nodes.sim import SimNode

    ctx, add = ros
    probe = add(Probe(ctx))
    sim = add(SimNode(context=ctx, parameter_overrides=[
        Parameter("world", value="two_rooms"), Parameter("initial_pose", value=[2.0, 2.0, 0.0]),
        Parameter("physics_rate", value=100.0), Parameter("scan_rate", value=20.0)]))
    # generous staleness limits: on a loaded CPU odometry and commands can be late (the
    # timeouts themselves are tested in test_runtime_nodes / test_runtime_safety)
    base = add(BaseControllerNode(context=ctx, parameter_overrides=[
        Parameter("max_linear_speed", value=1.0), Parameter("max_angular_speed", value=3.0),
        Parameter("odom_timeout", value=2.0), Parameter("command_timeout", value=2.0),
        Parameter("scan_timeout", value=2.0)]))
    # the explorer only starts deciding once everyone hears everyone: a first action sent
    # before the base's subscription is matched would be lost (and re-decided after
    # motion_timeout, which would make the count below wrong); motion_timeout long for the
    # same reason
    explorer = ExplorerNode(context=ctx, parameter_overrides=[
        Parameter("trajectory_length", value=6), Parameter("trajectories", value=2), Parameter("seed", value=1),
        Parameter("motion_timeout", value=120.0), Parameter("max_scan_age", value=2.0)])
    assert wait_until(lambda: explorer.pub.get_subscription_count() >= 2            # base + probe
                      and base.pub_state.get_subscription_count() >= 2              # explorer + probe
                      and base.ctl.pose is not None and base.ctl.scan is not None, timeout=60.0)
    add(explorer)
    start = sim.robot.pose
    assert wait_until(lambda: explorer.finished and explorer.pending is None, timeout=300.0)
    n = explorer.actions_sent
    assert wait_until(lambda: len(probe.actions) == n, timeout=60.0)
    acts = [m.action for m in probe.actions]
    # two trajectories of 6 decisions, each ending with STOP (a FORWARD the base aborted
    # is not counted as a decision of the trajectory)
    assert acts.count(Action.STOP) == 2 and acts[-1] == Action.STOP
    aborted = {m.sequence for m in probe.motion if m.state == m.ABORTED}
    # (only an aborted FORWARD is replaced; a rotation the base aborted on this loaded CPU,
    # stale odometry or the commanded-angle cap, still counts as a decision)
    assert n == 12 + len({m.sequence for m in probe.motion if m.state == m.ABORTED and m.action == Action.FORWARD})
    assert [m.sequence for m in probe.actions] == list(range(1, n + 1))
    # every motion was executed by the base on the simulated robot
    done = {m.sequence for m in probe.motion if m.state in (m.SUCCEEDED, m.ABORTED)}
    assert {m.sequence for m in probe.actions if m.action != Action.STOP} <= done
    assert len(done - aborted) >= 8
    end = sim.robot.pose
    assert (end.x, end.y, end.yaw) != (start.x, start.y, start.yaw)
    assert sim.blocked_moves == 0
