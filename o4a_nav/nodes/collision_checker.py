"""`collision_checker` node: sensor_msgs/LaserScan -> o4a_msgs/FreeActions (A_free), and
the FORWARD swept box as geometry_msgs/PolygonStamped for RViz. Logic in
o4a_nav/nav/collision.py (CollisionChecker); this node only converts messages.

Subscribes: scan (sensor data QoS), /tf_static (the laser mount). Publishes:
o4a/free_actions (reliable, depth 1), o4a/swept_box (reliable, transient local,
republished every second) and, with publish_laser_tf, the laser mount of the parameters
laser_x/y/yaw as the static transform base_frame -> laser_frame on /tf_static.

The laser pose is read from TF when it exists: a transform base_frame -> laser_frame on
/tf_static (robot description, the sim, this node) that disagrees with laser_x/y/yaw is
refused with an ERROR (log and /diagnostics "laser mount") and no action is free until
the parameters or the description are fixed.
"""
from __future__ import annotations

import math

from o4a_nav import ros_conv, topics
from o4a_nav.nav import diagnostics as diag
from o4a_nav.nav.collision import CollisionChecker, FootprintParams
from o4a_nav.nav.node_params import CollisionCheckerNodeParams
from o4a_nav.nodes._common import (SENSOR_QOS, LaserMountCheck, ManagedNode, declare_params, now_sec,
                                   on_parameter_changes, publish_tf, read_params, reliable, stamp_or, tf_publisher)

SCAN_STALE_S = 0.5   # /diagnostics: a scan older than this is reported stale


class CollisionCheckerNode(ManagedNode):
    """Managed node: configure reads the parameters and creates the topics; scans are
    checked and A_free published only while active."""

    def __init__(self, node_name: str = "collision_checker", **kwargs):
        super().__init__(node_name, **kwargs)
        self.base_frame = declare_params(self, CollisionCheckerNodeParams).base_frame
        self.checker = CollisionChecker(declare_params(self, FootprintParams))

        self.mount = None   # LaserMountCheck, from configure to cleanup
        self._tf_static = None
        self._own_mount = None

        def set_footprint(params, _changes):
            self.checker = CollisionChecker(params)
            if self.mount is not None:
                self._publish_mount()
                self.mount.recheck()
            if self.active:
                self._publish_box()

        on_parameter_changes(self, [(lambda: self.checker.params, set_footprint)])
        self.start()

    def configure(self):
        from geometry_msgs.msg import PolygonStamped
        from o4a_msgs.msg import FreeActions
        from sensor_msgs.msg import LaserScan

        setup = read_params(self, CollisionCheckerNodeParams)
        self.base_frame = setup.base_frame
        self.checker = CollisionChecker(read_params(self, FootprintParams))
        self.mount = LaserMountCheck(self, lambda: self.checker.params, self.base_frame, self._on_mount, self.sub)
        self._tf_static = tf_publisher(self, static=True, create=self.pub) if setup.publish_laser_tf else None
        self._own_mount = None
        self._publish_mount()
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

    def on_cleanup(self, state):
        self.mount, self._tf_static = None, None   # their subscription and publisher are destroyed
        return super().on_cleanup(state)

    def on_shutdown(self, state):
        self.mount, self._tf_static = None, None
        return super().on_shutdown(state)

    def _publish_mount(self):
        """publish_laser_tf: the parameters' laser mount on /tf_static (again after a change)."""
        from o4a_nav.frames import laser_mount_from_params

        if self._tf_static is None:
            return
        p = self.checker.params
        t = laser_mount_from_params(self.base_frame, p.laser_frame, p.laser_x, p.laser_y, p.laser_yaw)
        if self._own_mount is not None and self._own_mount != t:
            self.mount.forget(self._own_mount)
        self._own_mount = t
        publish_tf(self._tf_static, [t], now_sec(self))

    def _on_mount(self, error: str):
        if error:
            self.get_logger().error(error)
        else:
            self.get_logger().info(f"laser mount: TF {self.base_frame} -> {self.checker.params.laser_frame} "
                                   f"agrees with laser_x/laser_y/laser_yaw")

    def _diagnostics(self):
        d = [diag.lifecycle(self.active),
             diag.input_freshness({"scan": self.last_scan}, now_sec(self), SCAN_STALE_S, required=self.active)]
        m, p = self.mount, self.checker.params
        source = "TF (agrees with the parameters)" if m.from_tf is not None else "parameters (no TF for it yet)"
        d.append(diag.Diagnostic("laser mount", diag.ERROR if m.error else diag.OK, m.error or source, {
            "laser_x": f"{p.laser_x:g}", "laser_y": f"{p.laser_y:g}", "laser_yaw": f"{p.laser_yaw:g}",
            "frames": f"{self.base_frame} -> {p.laser_frame}"}))
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
        refused = bool(self.mount.error)   # the scan's geometry is not known: nothing is free
        out = self._FreeActions()
        out.header.stamp = msg.header.stamp
        out.header.frame_id = msg.header.frame_id
        out.forward = res.forward and not refused
        out.rotate_left = res.rotate_left and not refused
        out.rotate_right = res.rotate_right and not refused
        out.forward_clearance = float(res.forward_clearance)
        out.points_in_box = int(res.points_in_box)
        self.pub_free.publish(out)


def main(args=None):
    from o4a_nav.nodes._common import spin_node

    return spin_node(CollisionCheckerNode, args)


if __name__ == "__main__":
    main()
