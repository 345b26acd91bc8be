"""`base_controller` node: executes o4a_msgs/DiscreteAction on a differential-drive base.

Subscribes o4a/action (reliable), odom (nav_msgs/Odometry, best effort: accepts
sensor-data and reliable publishers) and scan (the collision monitor: every scan is checked
against the rest of the running motion with the footprint parameters shared with the
collision_checker, and a motion starts only when the latest scan allows it); publishes cmd_vel (geometry_msgs/Twist, or
TwistStamped with use_stamped) and o4a/motion_state (o4a_msgs/MotionState) on every state
change (and with publish_odom_tf odom -> base_link on /tf from each odometry message,
for an odometry source that does not publish it). While no motion runs it also says on
o4a/motion_state whether it could start one (IDLE, sequence 0, "ready" or "not ready: no
odometry" ...; on every change and once a second), so that the navigator refuses a goal up
front instead of sending motions to be aborted. Closed loop on odometry; zero velocity on STOP, on stale odometry or commands and
when a motion does not finish in time. Logic in o4a_nav/nav/base_controller.py.
"""
from __future__ import annotations

import math

from o4a_nav import ros_conv, topics
from o4a_nav.nav import diagnostics as diag
from o4a_nav.nav.base_controller import BaseController, BaseControllerParams, MotionReport
from o4a_nav.nav.collision import CollisionChecker, FootprintParams
from o4a_nav.nav.node_params import BaseControllerNodeParams
from o4a_nav.nodes._common import (SENSOR_QOS, ManagedNode, declare_params, now_sec, on_parameter_changes,
                                   publish_tf, read_params, reliable, scan_at, stamp_or, tf_publisher)
from o4a_nav.types import Action, MotionStatus


class BaseControllerNode(ManagedNode):
    """Managed node: configure reads the parameters and creates the topics; commands are
    executed only while active; deactivate aborts the motion and stops the robot."""

    def __init__(self, node_name: str = "base_controller", **kwargs):
        super().__init__(node_name, **kwargs)
        self.ctl = BaseController(declare_params(self, BaseControllerParams))
        self._checker = CollisionChecker(declare_params(self, FootprintParams))  # the collision monitor's
        declare_params(self, BaseControllerNodeParams)
        self._was_moving = False
        self._tf = None   # odom -> base_link publisher (publish_odom_tf), from configure on

        def set_params(params, _changes):
            self.ctl.params = params  # applies from the next control tick
            self.ctl.monitor = self._checker if params.collision_monitor else None
            if not params.collision_monitor:
                self.get_logger().warning("collision monitor switched off: motions no longer check the scan")

        def set_footprint(params, _changes):
            self._checker = CollisionChecker(params)
            if self.ctl.monitor is not None:
                self.ctl.monitor = self._checker

        on_parameter_changes(self, [(lambda: self.ctl.params, set_params),
                                    (lambda: self._checker.params, set_footprint)])
        self.start()

    def configure(self):
        from geometry_msgs.msg import Twist, TwistStamped
        from nav_msgs.msg import Odometry
        from o4a_msgs.msg import DiscreteAction, MotionState
        from sensor_msgs.msg import LaserScan

        params = read_params(self, BaseControllerParams)
        self._checker = CollisionChecker(read_params(self, FootprintParams))
        self.ctl = BaseController(params, self._checker if params.collision_monitor else None)
        setup = read_params(self, BaseControllerNodeParams)
        rate = setup.control_rate
        self.use_stamped, self.base_frame = setup.use_stamped, setup.base_frame
        self._Twist, self._TwistStamped, self._MotionState = Twist, TwistStamped, MotionState
        self.pub_cmd = self.pub(TwistStamped if self.use_stamped else Twist, topics.CMD_VEL, reliable(10))
        self.pub_state = self.pub(MotionState, topics.MOTION_STATE, reliable(10))
        self.sub(Odometry, topics.ODOM, self._on_odom, SENSOR_QOS)
        self._tf = tf_publisher(self, static=False, create=self.pub) if setup.publish_odom_tf else None
        self.sub(DiscreteAction, topics.ACTION, self._on_action, reliable(10))
        self.sub(LaserScan, topics.SCAN, self._on_scan, SENSOR_QOS)
        self.timer(1.0 / rate, self._tick)
        self.faults, self.last_fault, self.last_failed = 0, "", False
        self.diagnostics(self._diagnostics)
        self.get_logger().info(
            f"base controller: FORWARD {self.ctl.params.forward_distance} m, ROTATE "
            f"{math.degrees(self.ctl.params.rotation_angle):.1f} deg, {rate:.0f} Hz, "
            f"cmd_vel as {'TwistStamped' if self.use_stamped else 'Twist'}")

    def _diagnostics(self):
        executing = self.ctl.state == MotionStatus.EXECUTING
        return [diag.lifecycle(self.active),
                diag.input_freshness({"odom": self.ctl.odom_stamp}, now_sec(self), self.ctl.params.odom_timeout,
                                     required=executing),
                diag.motion(MotionStatus(self.ctl.state).name, self.faults, self.last_fault, self.last_failed)]

    def deactivate(self):
        """Abort the motion (reported ABORTED) and leave the robot standing."""
        now = now_sec(self)
        self._emit(self.ctl.stop("base_controller deactivated"), now)
        self._publish_cmd(0.0, 0.0, now)
        self._publish_state(self.ctl.inactive_report("base_controller inactive"), now)

    def _on_odom(self, msg):
        now = now_sec(self)
        stamp = stamp_or(ros_conv.stamp_to_sec(msg.header.stamp), now)
        if self._tf is not None and self.active:
            from o4a_nav.frames import Transform

            pose = ros_conv.pose_msg_to_pose2d(msg.pose.pose)
            parent = msg.header.frame_id or topics.ODOM_FRAME
            publish_tf(self._tf, [Transform.planar(parent, msg.child_frame_id or self.base_frame, pose)], stamp)
        if not self.ctl.on_odom(ros_conv.pose_msg_to_pose2d(msg.pose.pose), stamp, now):
            self.get_logger().error(f"{topics.ODOM}: non-finite pose ignored", throttle_duration_sec=5.0)
        elif self.active:   # scans that waited for odometry to reach their stamp (collision monitor)
            out = self.ctl.check_pending_scans(now)
            if out is not None:
                self._emit(out, now)
            self._report_ready(now)

    def _on_scan(self, msg):
        """Collision monitor: an intrusion stops the robot from here, not at the next tick."""
        if not self.active:
            return
        now = now_sec(self)
        scan = scan_at(msg, now)
        self._emit(self.ctl.on_scan(scan, now), now)

    def _on_action(self, msg):
        now = now_sec(self)
        if not self.active:
            self.get_logger().warning(f"{topics.ACTION}: inactive (lifecycle), command {msg.sequence} ignored",
                                      throttle_duration_sec=5.0)
            return
        try:
            action = Action(int(msg.action))
        except ValueError:
            self.get_logger().error(f"{topics.ACTION}: unknown action value {msg.action}; stopping")
            action = Action.STOP
        stamp = ros_conv.stamp_to_sec(msg.header.stamp)
        out = self.ctl.command(action, int(msg.sequence), now, stamp if stamp > 0 else None)
        self._emit(out, now)

    def _tick(self):
        if not self.active:
            return
        now = now_sec(self)
        self._emit(self.ctl.update(now), now)
        self._report_ready(now)

    def _report_ready(self, now: float):
        report = self.ctl.idle_report(now)
        if report is not None:
            self._publish_state(report, now)

    def _emit(self, out, now: float):
        moving = out.linear != 0.0 or out.angular != 0.0
        if moving or self._was_moving or out.reports:
            self._publish_cmd(out.linear, out.angular, now)
        self._was_moving = moving
        for r in out.reports:
            if r.state == MotionStatus.ABORTED:
                self.faults, self.last_fault, self.last_failed = self.faults + 1, r.message, True
            elif r.state == MotionStatus.SUCCEEDED:
                self.last_failed = False
            self._publish_state(r, now)
            if r.state != MotionStatus.EXECUTING:
                text = f"motion {r.sequence} {Action(r.action).name}: {MotionStatus(r.state).name} {r.message}"
                if r.state == MotionStatus.ABORTED:
                    self.get_logger().warning(text)
                else:
                    self.get_logger().debug(text)

    def _publish_state(self, r: MotionReport, now: float):
        m = self._MotionState()
        ros_conv.fill_header(m.header, now, self.base_frame)
        m.sequence, m.action, m.state, m.message = int(r.sequence), int(r.action), int(r.state), r.message
        self.pub_state.publish(m)

    def _publish_cmd(self, v: float, w: float, now: float):
        if self.use_stamped:
            msg = self._TwistStamped()
            ros_conv.fill_header(msg.header, now, self.base_frame)
            twist = msg.twist
        else:
            msg = twist = self._Twist()
        twist.linear.x, twist.angular.z = float(v), float(w)
        self.pub_cmd.publish(msg)

    def shutdown(self):
        """Leave the robot standing."""
        try:
            self._publish_cmd(0.0, 0.0, now_sec(self))
        except Exception:  # context already shut down
            pass


def main(args=None):
    from o4a_nav.nodes._common import spin_node

    return spin_node(BaseControllerNode, args)


if __name__ == "__main__":
    main()
