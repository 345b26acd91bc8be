"""`collision_checker` node: sensor_msgs/LaserScan -> o4a_msgs/FreeActions (A_free), and
the FORWARD swept box as geometry_msgs/PolygonStamped for RViz. Logic in
o4a_nav/nav/collision.py (CollisionChecker); this node only converts messages.

Subscribes: scan (sensor data QoS). Publishes: o4a/free_actions (reliable, depth 1),
o4a/swept_box (reliable, transient local, republished every second).
"""
from __future__ import annotations

import math

from o4a_nav import ros_conv, topics
from o4a_nav.nav import diagnostics as diag
from o4a_nav.nav.collision import CollisionChecker, FootprintParams
from o4a_nav.nav.node_params import CollisionCheckerNodeParams
from o4a_nav.nodes._common import (SENSOR_QOS, ManagedNode, declare_params, now_sec, on_parameter_changes,
                                   read_params, reliable, stamp_or)

SCAN_STALE_S = 0.5   # /diagnostics: a scan older than this is reported stale


class CollisionCheckerNode(ManagedNode):
    """Managed node: configure reads the parameters and creates the topics; scans are
    checked and A_free published only while active."""

    def __init__(self, node_name: str = "collision_checker", **kwargs):
        super().__init__(node_name, **kwargs)
        self.base_frame = declare_params(self, CollisionCheckerNodeParams).base_frame
        self.checker = CollisionChecker(declare_params(self, FootprintParams))

        def set_footprint(params, _changes):
            self.checker = CollisionChecker(params)
            if self.active:
                self._publish_box()

        on_parameter_changes(self, [(lambda: self.checker.params, set_footprint)])
        self.start()

    def configure(self):
        from geometry_msgs.msg import PolygonStamped
        from o4a_msgs.msg import FreeActions
        from sensor_msgs.msg import LaserScan

        self.base_frame = read_params(self, CollisionCheckerNodeParams).base_frame
        self.checker = CollisionChecker(read_params(self, FootprintParams))
        self._FreeActions, self._PolygonStamped = FreeActions, PolygonStamped
        self.pub_free = self.pub(FreeActions, topics.FREE_ACTIONS, reliable(1))
        self.pub_box = self.pub(PolygonStamped, topics.SWEPT_BOX, reliable(1, latched=True))
        self.sub(LaserScan, topics.SCAN, self._on_scan, SENSOR_QOS)
        self.last_result = None
        self.last_scan = -math.inf   # node-clock time of the newest scan
        self.timer(1.0, lambda: self.active and self._publish_box())
        self.diagnostics(self._diagnostics)
        p = self.checker.params
        self.get_logger().info(
            f"collision checker: box {p.box_x_min:.2f} < x < {p.box_x_max:.2f} m, |y| < {p.box_half_width:.2f} m, "
            f"laser at ({p.laser_x:.2f}, {p.laser_y:.2f}, {p.laser_yaw:.2f} rad), "
            f"footprint {'polygon' if self.checker.polygon is not None else f'circle r={p.robot_radius:.2f} m'}")

    def activate(self):
        self._publish_box()

    def _diagnostics(self):
        d = [diag.lifecycle(self.active),
             diag.input_freshness({"scan": self.last_scan}, now_sec(self), SCAN_STALE_S, required=self.active)]
        r = self.last_result
        if r is not None:
            d.append(diag.Diagnostic("free actions", diag.OK, "FORWARD " + ("free" if r.forward else "blocked"), {
                "forward": str(r.forward).lower(), "rotate_left": str(r.rotate_left).lower(),
                "rotate_right": str(r.rotate_right).lower(), "forward clearance [m]": f"{r.forward_clearance:.3f}",
                "points in box": str(r.points_in_box), "NaN rays": str(r.n_invalid)}))
        return d

    def _publish_box(self):
        from geometry_msgs.msg import Point32

        msg = self._PolygonStamped()
        msg.header.stamp = self.get_clock().now().to_msg()
        msg.header.frame_id = self.base_frame
        msg.polygon.points = [Point32(x=float(x), y=float(y), z=0.0) for x, y in self.checker.box_polygon()]
        self.pub_box.publish(msg)

    def _on_scan(self, msg):
        if not self.active:
            return
        scan = ros_conv.scan_msg_to_data(msg)
        self.last_scan = stamp_or(scan.stamp, now_sec(self))
        res = self.checker.free_actions(scan)
        self.last_result = res
        out = self._FreeActions()
        out.header.stamp = msg.header.stamp
        out.header.frame_id = msg.header.frame_id
        out.forward = res.forward
        out.rotate_left = res.rotate_left
        out.rotate_right = res.rotate_right
        out.forward_clearance = float(res.forward_clearance)
        out.points_in_box = int(res.points_in_box)
        self.pub_free.publish(out)


def main(args=None):
    from o4a_nav.nodes._common import spin_node

    return spin_node(CollisionCheckerNode, args)


if __name__ == "__main__":
    main()
