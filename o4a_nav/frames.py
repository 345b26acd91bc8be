"""Coordinate frames (TF) as plain data, ROS-free: the robot's sensor mounts, composing a
chain of transforms, and the check of the laser mount against the footprint parameters.

The nodes publish and read /tf and /tf_static (tf2_msgs/TFMessage) through
o4a_nav/nodes/_common.py; message fields are converted in o4a_nav/ros_conv.py.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

from o4a_nav import topics
from o4a_nav.types import Pose2D, wrap_angle


@dataclass(frozen=True)
class Transform:
    """The pose of ``child`` in ``parent`` (as geometry_msgs/TransformStamped): translation
    [m] and rotation quaternion (x, y, z, w)."""

    parent: str
    child: str
    x: float = 0.0
    y: float = 0.0
    z: float = 0.0
    qx: float = 0.0
    qy: float = 0.0
    qz: float = 0.0
    qw: float = 1.0

    @staticmethod
    def planar(parent: str, child: str, pose: Pose2D, z: float = 0.0) -> "Transform":
        return Transform(parent, child, pose.x, pose.y, z, 0.0, 0.0, math.sin(pose.yaw / 2), math.cos(pose.yaw / 2))

    @staticmethod
    def from_rpy(parent: str, child: str, xyz, rpy) -> "Transform":
        r, p, y = (v / 2 for v in rpy)
        cr, sr, cp, sp, cy, sy = math.cos(r), math.sin(r), math.cos(p), math.sin(p), math.cos(y), math.sin(y)
        return Transform(parent, child, *map(float, xyz), sr * cp * cy - cr * sp * sy, cr * sp * cy + sr * cp * sy,
                         cr * cp * sy - sr * sp * cy, cr * cp * cy + sr * sp * sy)


def _qmul(a, b):
    ax, ay, az, aw = a
    bx, by, bz, bw = b
    return (aw * bx + ax * bw + ay * bz - az * by, aw * by - ax * bz + ay * bw + az * bx,
            aw * bz + ax * by - ay * bx + az * bw, aw * bw - ax * bx - ay * by - az * bz)


def _rotate(q, v):
    x, y, z, _ = _qmul(_qmul(q, (*v, 0.0)), (-q[0], -q[1], -q[2], q[3]))
    return x, y, z


def compose(a: Transform, b: Transform) -> Transform:
    """a (parent -> mid) then b (mid -> child): parent -> child."""
    qa = (a.qx, a.qy, a.qz, a.qw)
    tx, ty, tz = _rotate(qa, (b.x, b.y, b.z))
    q = _qmul(qa, (b.qx, b.qy, b.qz, b.qw))
    return Transform(a.parent, b.child, a.x + tx, a.y + ty, a.z + tz, *q)


def yaw_of(t: Transform) -> float:
    return math.atan2(2.0 * (t.qw * t.qz + t.qx * t.qy), 1.0 - 2.0 * (t.qy * t.qy + t.qz * t.qz))


def is_level(t: Transform, tol_rad: float = 0.02) -> bool:
    """Whether the child's z axis is the parent's (no roll or pitch): a planar sensor."""
    _, _, zz = _rotate((t.qx, t.qy, t.qz, t.qw), (0.0, 0.0, 1.0))
    return zz >= math.cos(tol_rad)


class TransformTree:
    """The transforms heard so far (newest per child frame, as tf2 keeps them) and the
    transform between two frames of one tree."""

    def __init__(self):
        self._parent: dict[str, Transform] = {}   # child -> transform from its parent

    def add(self, t: Transform) -> None:
        self._parent[t.child] = t

    def frames(self) -> set[str]:
        return set(self._parent) | {t.parent for t in self._parent.values()}

    def _chain(self, frame: str) -> list[Transform]:
        """root -> ... -> frame."""
        out, seen = [], set()
        while frame in self._parent and frame not in seen:
            seen.add(frame)
            t = self._parent[frame]
            out.append(t)
            frame = t.parent
        return out[::-1]

    def lookup(self, parent: str, child: str) -> Transform | None:
        """The pose of ``child`` in ``parent``, or None when they are not connected."""
        if parent == child:
            return Transform(parent, child)
        up = self._chain(parent)
        down = self._chain(child)
        roots = {up[0].parent if up else parent, down[0].parent if down else child}
        if len(roots) != 1:
            return None

        def to_root(chain, frame):
            t = Transform(chain[0].parent if chain else frame, chain[0].parent if chain else frame)
            for link in chain:
                t = compose(t, link)
            return t

        a, b = to_root(up, parent), to_root(down, child)   # root -> parent, root -> child
        inv_q = (-a.qx, -a.qy, -a.qz, a.qw)
        dx, dy, dz = _rotate(inv_q, (b.x - a.x, b.y - a.y, b.z - a.z))
        q = _qmul(inv_q, (b.qx, b.qy, b.qz, b.qw))
        return Transform(parent, child, dx, dy, dz, *q)


def sim_sensor_mounts(camera_height: float) -> list[Transform]:
    """The simulated robot's static sensor mounts in base_link: the laser at the origin
    (its scans are cast from the robot's centre, x forward), the front and rear cameras at
    ``camera_height`` looking forward and backward, as optical frames (z forward, x right,
    y down; REP 103)."""
    optical = (-math.pi / 2, 0.0, -math.pi / 2)
    return [
        Transform(topics.BASE_FRAME, topics.LASER_FRAME),
        Transform.from_rpy(topics.BASE_FRAME, topics.FRONT_CAMERA_FRAME, (0.0, 0.0, camera_height), optical),
        Transform.from_rpy(topics.BASE_FRAME, topics.REAR_CAMERA_FRAME, (0.0, 0.0, camera_height),
                           (optical[0], 0.0, optical[2] + math.pi)),
    ]


def laser_mount_from_params(base_frame: str, laser_frame: str, x: float, y: float, yaw: float) -> Transform:
    """The laser mount the footprint parameters laser_x/y/yaw describe."""
    return Transform.planar(base_frame, laser_frame, Pose2D(x, y, yaw))


def laser_mount_disagreement(tf: Transform, x: float, y: float, yaw: float, tol_m: float = 0.005,
                             tol_rad: float = 0.01) -> str:
    """'' when the laser pose from TF equals the parameters laser_x/y/yaw (within 5 mm and
    0.01 rad), else why not, naming both (a laser that is not level is refused too: the
    scans are taken as planar)."""
    tf_yaw = yaw_of(tf)
    if not is_level(tf):
        return (f"TF {tf.parent} -> {tf.child} is not level (roll/pitch): the collision checks take scans as "
                f"planar in {tf.parent}")
    if abs(tf.x - x) <= tol_m and abs(tf.y - y) <= tol_m and abs(wrap_angle(tf_yaw - yaw)) <= tol_rad:
        return ""
    return (f"laser mount disagreement: TF {tf.parent} -> {tf.child} is (x {tf.x:.3f} m, y {tf.y:.3f} m, yaw "
            f"{tf_yaw:.3f} rad), the parameters laser_x/laser_y/laser_yaw say ({x:.3f}, {y:.3f}, {yaw:.3f}): "
            f"set them to the TF values (params_file, /** section) or fix the robot description; "
            f"until then no action is free")
