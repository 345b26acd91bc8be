"""Managed nodes and the lifecycle_manager, as real rclpy nodes in this process: nothing
moves before activation, the manager brings the nodes up in order, pause (deactivate)
stops a running motion and ends a navigation goal, a failing configure is reported."""
import math
import os
import time

import pytest
from rclpy.parameter import Parameter

from conftest import wait_until
from o4a_nav.types import Action, MotionStatus

pytestmark = pytest.mark.ros

NS = f"/o4a_lifecycle_{os.getpid()}"


def _state(node) -> str:
    return node._state_machine.current_state[1]


class Robot:
    """Publishes odometry that follows cmd_vel (a unicycle) and a clear 10 Hz scan (the base
    controller's collision monitor needs one), records cmd_vel and MotionState."""

    def __init__(self, ctx, add, name):
        from geometry_msgs.msg import Twist
        from nav_msgs.msg import Odometry
        from o4a_msgs.msg import DiscreteAction, MotionState
        from rclpy.node import Node

        from o4a_nav import topics
        from o4a_nav.nodes._common import SENSOR_QOS, reliable

        self.node = add(Node(name, namespace=NS, context=ctx))
        self.cmd, self.states = [], []
        self.x = self.yaw = 0.0
        self.v = self.w = 0.0
        self.node.create_subscription(Twist, topics.CMD_VEL, self._on_cmd, reliable(10))
        self.node.create_subscription(MotionState, topics.MOTION_STATE, self.states.append, reliable(10))
        self.pub_odom = self.node.create_publisher(Odometry, topics.ODOM, SENSOR_QOS)
        self.pub_action = self.node.create_publisher(DiscreteAction, topics.ACTION, reliable(10))
        from sensor_msgs.msg import LaserScan

        self.pub_scan = self.node.create_publisher(LaserScan, topics.SCAN, SENSOR_QOS)
        self.ticks = 0
        self._Odometry, self._DiscreteAction = Odometry, DiscreteAction
        self.node.create_timer(0.02, self._tick)

    def _on_cmd(self, msg):
        self.cmd.append((msg.linear.x, msg.angular.z))
        self.v, self.w = msg.linear.x, msg.angular.z

    def _tick(self):
        self.x += self.v * 0.02 * math.cos(self.yaw)
        self.yaw += self.w * 0.02
        m = self._Odometry()
        m.header.stamp = self.node.get_clock().now().to_msg()
        m.pose.pose.position.x = self.x
        m.pose.pose.orientation.z, m.pose.pose.orientation.w = math.sin(self.yaw / 2), math.cos(self.yaw / 2)
        self.pub_odom.publish(m)
        self.ticks += 1
        if self.ticks % 5 == 0:
            import numpy as np

            from o4a_nav import ros_conv, topics
            from o4a_nav.types import ScanData

            t = self.node.get_clock().now().nanoseconds * 1e-9
            scan = ScanData(np.full(181, np.inf, np.float32), -math.pi / 2, math.pi / 180, 0.05, 10.0, stamp=t)
            self.pub_scan.publish(ros_conv.scan_data_to_msg(scan, topics.LASER_FRAME))

    def send(self, action, seq):
        m = self._DiscreteAction()
        m.header.stamp = self.node.get_clock().now().to_msg()
        m.action, m.sequence = int(action), seq
        self.pub_action.publish(m)


def _call(node, srv_type, name, timeout=60.0):
    cli = node.create_client(srv_type, name)
    assert cli.wait_for_service(timeout_sec=timeout), name
    fut = cli.call_async(srv_type.Request())
    assert wait_until(fut.done, timeout), f"{name} did not answer"
    node.destroy_client(cli)
    return fut.result()


def _fresh_scan(base):
    """Wait until the (just activated) base controller holds a scan received while active:
    its collision monitor rightly refuses a motion commanded before one came."""
    t = time.time()
    assert wait_until(lambda: base.ctl.scan is not None and base.ctl.scan_arrival >= t, 10.0)


def test_manager_brings_up_and_pause_stops_the_robot(ros):
    from std_srvs.srv import Trigger

    from o4a_nav.nodes.base_controller import BaseControllerNode
    from o4a_nav.nodes.lifecycle_manager import LifecycleManagerNode

    ctx, add = ros
    robot = Robot(ctx, add, "fake_base")
    base = add(BaseControllerNode(context=ctx, namespace=NS, parameter_overrides=[Parameter("autostart", value=False)]))
    assert _state(base) == "unconfigured" and not base.active
    # unconfigured: no subscription to o4a/action yet, nothing moves
    robot.send(Action.FORWARD, 1)
    time.sleep(0.5)
    assert not robot.cmd and not robot.states

    manager = add(LifecycleManagerNode(context=ctx, namespace=NS, parameter_overrides=[
        Parameter("node_names", value=["base_controller"]), Parameter("autostart", value=False)]))
    res = _call(robot.node, Trigger, f"{NS}/lifecycle_manager/startup")
    assert res.success and _state(base) == "active", res.message
    assert wait_until(lambda: robot.pub_action.get_subscription_count() > 0, 10.0)

    _fresh_scan(base)
    robot.send(Action.FORWARD, 2)
    assert wait_until(lambda: any(v > 0 for v, _ in robot.cmd), 10.0)
    res = _call(robot.node, Trigger, f"{NS}/lifecycle_manager/pause")
    assert res.success and _state(base) == "inactive", res.message
    assert wait_until(lambda: any(s.sequence == 2 and s.state == MotionStatus.ABORTED for s in robot.states), 10.0)
    assert wait_until(lambda: robot.cmd and robot.cmd[-1] == (0.0, 0.0), 10.0)   # left standing
    aborted = next(s for s in robot.states if s.sequence == 2 and s.state == MotionStatus.ABORTED)
    assert "deactivated" in aborted.message
    n = len(robot.cmd)
    robot.send(Action.FORWARD, 3)   # inactive: refused, nothing published
    time.sleep(0.5)
    assert len(robot.cmd) == n and not any(s.sequence == 3 for s in robot.states)

    res = _call(robot.node, Trigger, f"{NS}/lifecycle_manager/resume")
    assert res.success and _state(base) == "active"
    _fresh_scan(base)
    robot.send(Action.ROTATE_LEFT, 4)
    assert wait_until(lambda: any(s.sequence == 4 and s.state == MotionStatus.SUCCEEDED for s in robot.states), 20.0)
    assert manager.state == "active"


def test_navigator_serves_goals_only_when_active_and_bad_configure_is_reported(ros, tmp_path):
    from o4a_msgs.srv import SetGoal
    from std_srvs.srv import Trigger

    from o4a_nav.nodes.lifecycle_manager import LifecycleManagerNode
    from o4a_nav.nodes.navigator import NavigatorNode
    from o4a_nav.types import NavState

    ctx, add = ros
    nav = add(NavigatorNode(context=ctx, namespace=NS, parameter_overrides=[
        Parameter("autostart", value=False), Parameter("model_path", value=str(tmp_path / "missing"))]))
    assert _state(nav) == "unconfigured" and nav.runtime is None
    manager = add(LifecycleManagerNode(context=ctx, namespace=NS, parameter_overrides=[
        Parameter("node_names", value=["navigator", "nonexistent_node"]), Parameter("autostart", value=True),
        Parameter("transition_timeout", value=3.0)]))
    # autostart: the navigator is configured (NO_MODEL is a configured state), the missing node fails the sequence
    assert wait_until(lambda: manager.state == "failed", 60.0)
    assert _state(nav) == "inactive" and nav.runtime.status.state == NavState.NO_MODEL
    assert "nonexistent_node" in manager.message
    assert nav.action_server is None       # goals are served from the first activation on
    nav.trigger_activate()                 # NO_MODEL: it refuses to become active
    assert _state(nav) == "inactive" and not nav.active and "NO_MODEL" in nav.activate_error
    nav.runtime.nav = object()             # (stand-in for a loaded model: goals are served once active)
    nav.trigger_activate()
    assert nav.active and nav.action_server is not None
    nav.runtime.nav = None
    from rclpy.node import Node

    probe = add(Node("probe", namespace=NS, context=ctx))
    res = _call(probe, SetGoal, f"{NS}/o4a/set_goal")
    assert not res.accepted and "goal rejected" in res.message   # active: the (empty) images are checked
    nav.trigger_deactivate()
    res = _call(probe, SetGoal, f"{NS}/o4a/set_goal")
    assert not res.accepted and "inactive" in res.message
    res = _call(probe, Trigger, f"{NS}/lifecycle_manager/reset", timeout=30.0)
    assert not res.success and "nonexistent_node" in res.message   # reverse order: the missing node first


def test_autostart_configure_error_is_one_line(ros):
    from o4a_nav.errors import UserError
    from o4a_nav.nodes.collision_checker import CollisionCheckerNode

    ctx, _ = ros
    with pytest.raises(UserError, match="box_x_max"):
        CollisionCheckerNode(context=ctx, namespace=NS, parameter_overrides=[Parameter("box_x_max", value=0.3)])


def test_heartbeat_reports_a_restarted_node_stops_the_others_and_brings_all_back(ros):
    """A node found unconfigured after bring-up (as a respawned process is) is reported lost,
    the other node is deactivated (robot stopped), and, with autostart, all are brought up
    again once the node answers."""
    from o4a_nav.nodes.base_controller import BaseControllerNode
    from o4a_nav.nodes.collision_checker import CollisionCheckerNode
    from o4a_nav.nodes.lifecycle_manager import LifecycleManagerNode

    ctx, add = ros
    off = [Parameter("autostart", value=False)]
    cc = add(CollisionCheckerNode(context=ctx, namespace=NS, parameter_overrides=off))
    base = add(BaseControllerNode(context=ctx, namespace=NS, parameter_overrides=off))
    manager = add(LifecycleManagerNode(context=ctx, namespace=NS, parameter_overrides=[
        Parameter("node_names", value=["collision_checker", "base_controller"]), Parameter("autostart", value=True),
        Parameter("heartbeat_period", value=0.2)]))
    assert wait_until(lambda: manager.state == "active", 60.0)
    lost = []
    manager._lose = _spy(manager._lose, lost, lambda: _state(base))
    assert cc.trigger_deactivate() and cc.trigger_cleanup()   # "restarted": unconfigured
    assert wait_until(lambda: len(lost) == 1 and len(lost[0]) == 3, 20.0)
    name, why, base_after = lost[0]
    assert name == "collision_checker" and "restarted" in why and base_after == "inactive"
    # the other node was made safe, then the returned node and it were brought up again
    assert wait_until(lambda: manager.state == "active" and _state(cc) == "active" and _state(base) == "active", 60.0)
    assert not manager._lost


def _spy(fn, calls, after):
    """Record each call's arguments, then after() once it has returned."""
    async def wrapper(*args):
        calls.append(list(args))
        out = await fn(*args)
        calls[-1].append(after())
        return out
    return wrapper
