"""`collision_checker` node: sensor_msgs/LaserScan -> o4a_msgs/FreeActions (A_free), and
the FORWARD swept box as geometry_msgs/PolygonStamped for RViz. Logic in
o4a_nav/nav/collision.py (CollisionChecker); this node only converts messages.

Subscribes: scan (sensor data QoS). Publishes: o4a/free_actions (reliable, depth 1),
o4a/swept_box (reliable, transient local, republished every second).
"""
from __future__ import annotations

import math

import rclpy
from rclpy.node import Node

from o4a_nav import ros_conv, topics
from o4a_nav.nav.collision import CollisionChecker, FootprintParams
from o4a_nav.nodes._common import P, SENSOR_QOS, declare, declare_dataclass, on_parameter_changes, reliable

FOOTPRINT_SPECS = {
    "laser_x": P("x of the laser origin in the base frame [m]", (-5.0, 5.0)),
    "laser_y": P("y of the laser origin in the base frame [m]", (-5.0, 5.0)),
    "laser_yaw": P("yaw of the laser frame relative to the base frame [rad]", (-math.pi, math.pi)),
    "box_x_min": P("FORWARD swept box: near edge, base frame x [m] (paper 0)", (-1.0, 5.0)),
    "box_x_max": P("FORWARD swept box: far edge, base frame x [m] (paper 0.5); >= robot front + 0.25", (0.0, 5.0)),
    "box_half_width": P("FORWARD swept box half-width [m] (paper 0.17); >= robot half-width", (0.01, 5.0)),
    "robot_radius": P("radius of a circular footprint [m] (used when footprint is empty)", (0.01, 5.0)),
    "footprint": P("polygon footprint x1, y1, x2, y2, ... in the base frame [m]; empty = circle "
                   "(rotations then always free)"),
    "rotation_step": P("rotation checked for ROTATE_LEFT/RIGHT with a polygon footprint [rad]", (0.0, math.pi)),
    "rotation_resolution": P("largest point displacement between rotation samples [m]", (0.001, 0.5)),
    "neg_inf_is_obstacle": P("-inf ranges (closer than range_min, REP 117) occupy (0, range_min] of the ray"),
    "below_min_is_obstacle": P("finite ranges below range_min count like -inf (drivers without REP 117)"),
    "nan_is_obstacle": P("NaN ranges occupy the whole ray up to range_max (default: ignored)"),
}


class CollisionCheckerNode(Node):
    def __init__(self, node_name: str = "collision_checker", **kwargs):
        super().__init__(node_name, **kwargs)
        values = declare_dataclass(self, FootprintParams(), FOOTPRINT_SPECS)
        self.base_frame = declare(self, "base_frame", topics.BASE_FRAME, P("frame of the swept box polygon"))
        self.checker = CollisionChecker(FootprintParams.from_dict(values))
        from geometry_msgs.msg import PolygonStamped
        from o4a_msgs.msg import FreeActions
        from sensor_msgs.msg import LaserScan

        self._FreeActions, self._PolygonStamped = FreeActions, PolygonStamped
        self.pub_free = self.create_publisher(FreeActions, topics.FREE_ACTIONS, reliable(1))
        self.pub_box = self.create_publisher(PolygonStamped, topics.SWEPT_BOX, reliable(1, latched=True))
        self.sub = self.create_subscription(LaserScan, topics.SCAN, self._on_scan, SENSOR_QOS)
        self.last_result = None
        self._publish_box()
        self._box_timer = self.create_timer(1.0, self._publish_box)

        def build(changes):
            import dataclasses

            checker = CollisionChecker(dataclasses.replace(self.checker.params, **changes))

            def commit():
                self.checker = checker
                self._publish_box()
            return commit

        on_parameter_changes(self, {frozenset(FOOTPRINT_SPECS): build}, restart_only={"base_frame"})
        p = self.checker.params
        self.get_logger().info(
            f"collision checker: box {p.box_x_min:.2f} < x < {p.box_x_max:.2f} m, |y| < {p.box_half_width:.2f} m, "
            f"laser at ({p.laser_x:.2f}, {p.laser_y:.2f}, {p.laser_yaw:.2f} rad), "
            f"footprint {'polygon' if self.checker.polygon is not None else f'circle r={p.robot_radius:.2f} m'}")

    def _publish_box(self):
        from geometry_msgs.msg import Point32

        msg = self._PolygonStamped()
        msg.header.stamp = self.get_clock().now().to_msg()
        msg.header.frame_id = self.base_frame
        msg.polygon.points = [Point32(x=float(x), y=float(y), z=0.0) for x, y in self.checker.box_polygon()]
        self.pub_box.publish(msg)

    def _on_scan(self, msg):
        scan = ros_conv.scan_msg_to_data(msg)
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
