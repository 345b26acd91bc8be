"""QoS choices for recording and replay (ROS-free: the nodes map them to rclpy QoSProfile).

Recording adapts to the publishers, as `ros2 bag record` does: a subscription is only
compatible with every publisher when it is RELIABLE only if all publishers are reliable
and TRANSIENT_LOCAL only if all publishers are transient local. So sensor-data (best
effort) publishers are recorded best effort, and latched topics (e.g. o4a/world_name,
transient local) are recorded transient local so that the message sent before the
recorder started still arrives.

Replay offers the QoS the recording saw (from the bag's offered_qos_profiles); bags
without that information get the project conventions (sensor data for images, scans and
odometry, reliable depth 10 for the rest).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable

SENSOR_TYPES = frozenset({
    "sensor_msgs/msg/Image", "sensor_msgs/msg/CompressedImage", "sensor_msgs/msg/LaserScan",
    "sensor_msgs/msg/PointCloud2", "sensor_msgs/msg/Imu", "nav_msgs/msg/Odometry",
})


@dataclass(frozen=True)
class QosChoice:
    reliable: bool = True
    transient_local: bool = False
    depth: int = 10


def for_recording(publishers: Iterable[tuple[bool, bool]], depth: int = 100) -> QosChoice:
    """publishers: (reliable, transient_local) of each publisher seen on the topic.

    With no publisher known yet: reliable and volatile would miss best-effort publishers
    that appear later, so best effort volatile (compatible with every publisher) is used.
    The depth is generous because the recorder writes in its callback.
    """
    pubs = list(publishers)
    if not pubs:
        return QosChoice(reliable=False, transient_local=False, depth=depth)
    return QosChoice(reliable=all(r for r, _ in pubs), transient_local=all(t for _, t in pubs), depth=depth)


def for_replay(msgtype: str, recorded: Iterable[tuple[bool, bool, int]] = ()) -> QosChoice:
    """recorded: (reliable, transient_local, depth) of the profiles stored in the bag."""
    rec = list(recorded)
    if rec:
        depth = max(1, max(int(d) for _, _, d in rec))
        return QosChoice(reliable=all(r for r, _, _ in rec), transient_local=any(t for _, t, _ in rec),
                         depth=depth)
    if msgtype in SENSOR_TYPES:
        return QosChoice(reliable=False, transient_local=False, depth=5)
    return QosChoice(reliable=True, transient_local=False, depth=10)
