"""rosbag2 reading and writing on the pure-Python `rosbags` package. ROS-free.

One place for: the type store (ROS 2 Jazzy standard types + the o4a_msgs messages,
registered from their .msg files), writing MCAP or sqlite3 bags that `ros2 bag play`
accepts, reading them back with clear errors, and building the rosbags message objects
the simulator records.
"""
from __future__ import annotations

import math
import os
import time
from functools import lru_cache
from pathlib import Path
from typing import Iterable, Iterator

import numpy as np

from o4a_nav.errors import BagError
from o4a_nav.types import Pose2D, ScanData

STORAGES = ("mcap", "sqlite3")
_REPO_MSGS = Path(__file__).resolve().parent.parent / "o4a_msgs" / "msg"


def _o4a_msg_dir() -> Path:
    """The o4a_msgs .msg files: the installed share dir, else the source tree."""
    try:
        from ament_index_python.packages import get_package_share_directory

        installed = Path(get_package_share_directory("o4a_msgs")) / "msg"
        if installed.is_dir():
            return installed
    except Exception:  # not installed through ament: use the sources beside the package
        pass
    if _REPO_MSGS.is_dir():
        return _REPO_MSGS
    raise BagError("cannot find the o4a_msgs .msg definitions (build o4a_msgs with `make setup`)")


@lru_cache(maxsize=1)
def typestore():
    """rosbags Typestore with ROS 2 Jazzy's standard types and o4a_msgs registered."""
    from rosbags.typesys import Stores, get_typestore, get_types_from_msg

    store = get_typestore(Stores.ROS2_JAZZY)
    types = {}
    for path in sorted(_o4a_msg_dir().glob("*.msg")):
        types.update(get_types_from_msg(path.read_text(), f"o4a_msgs/msg/{path.stem}"))
    store.register(types)
    return store


# ---- QoS offered by the recording, so that `ros2 bag play` republishes correctly --------

def _qos(reliable: bool, transient_local: bool = False, depth: int = 10):
    from rosbags.interfaces import Qos, QosDurability, QosHistory, QosLiveliness, QosReliability, QosTime

    zero = QosTime(0, 0)
    return Qos(
        QosHistory.KEEP_LAST, depth,
        QosReliability.RELIABLE if reliable else QosReliability.BEST_EFFORT,
        QosDurability.TRANSIENT_LOCAL if transient_local else QosDurability.VOLATILE,
        zero, zero, QosLiveliness.AUTOMATIC, zero, False,
    )


def qos_for(msgtype: str, latched: bool = False):
    """Sensor data (best effort) for images, scans and odometry; reliable for the rest."""
    if latched:
        return _qos(True, True, 1)
    sensor = msgtype in ("sensor_msgs/msg/Image", "sensor_msgs/msg/LaserScan", "nav_msgs/msg/Odometry")
    return _qos(not sensor, False, 5 if sensor else 10)


class BagWriter:
    """Write a rosbag2 folder. Topics are added on first write.

    `msg` is a rosbags message object (see the builders below) or raw CDR bytes.
    """

    def __init__(self, path, storage: str = "mcap", latched_topics: Iterable[str] = (),
                 flush_period: float | None = None):
        """flush_period: seconds (monotonic) after which written messages are made durable
        (MCAP: the pending chunk is closed and the file flushed and fsynced; sqlite3: the
        transaction is committed), so a killed recorder loses at most that much. The file
        then lacks only its summary and metadata.yaml: `o4a bag repair` rebuilds them."""
        from rosbags.rosbag2 import StoragePlugin, Writer

        if storage not in STORAGES:
            raise BagError(f"unknown bag storage {storage!r}; use one of {', '.join(STORAGES)}")
        self.path = Path(path)
        if self.path.exists():
            raise BagError(f"{self.path} exists already; choose a new output folder (a bag is never overwritten)")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        plugin = StoragePlugin.MCAP if storage == "mcap" else StoragePlugin.SQLITE3
        self._writer = Writer(self.path, version=9, storage_plugin=plugin)
        self._latched = set(latched_topics)
        self._connections: dict[str, object] = {}
        self._store = typestore()
        self.count = 0
        self.storage = storage
        self.flush_period = flush_period
        self._last_flush = time.monotonic()

    def __enter__(self) -> "BagWriter":
        self._writer.open()
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None

    def connection(self, topic: str, msgtype: str, latched: bool = False):
        """The topic's connection, added on first use (`latched`: record transient-local QoS)."""
        conn = self._connections.get(topic)
        if conn is None:
            if msgtype not in self._store.fielddefs:
                raise BagError(f"topic {topic}: message type {msgtype} is unknown to the bag type store")
            conn = self._writer.add_connection(
                topic, msgtype, typestore=self._store,
                offered_qos_profiles=[qos_for(msgtype, latched or topic in self._latched)])
            self._connections[topic] = conn
        elif conn.msgtype != msgtype:
            raise BagError(f"topic {topic} has type {conn.msgtype}, not {msgtype}")
        return conn

    def write(self, topic: str, msgtype: str, t_sec: float, msg) -> None:
        conn = self.connection(topic, msgtype)
        data = msg if isinstance(msg, (bytes, bytearray, memoryview)) else self._store.serialize_cdr(msg, msgtype)
        self._writer.write(conn, int(round(t_sec * 1e9)), data)
        self.count += 1
        self.maybe_flush()

    def maybe_flush(self) -> None:
        """flush() when flush_period has passed since the last one (call it also when idle)."""
        if self.flush_period is not None and time.monotonic() - self._last_flush >= self.flush_period:
            self.flush()

    def flush(self) -> None:
        """Make every message written so far durable in the storage file."""
        self._last_flush = time.monotonic()
        storage = getattr(self._writer, "storage", None) if self._writer is not None else None
        if storage is None:
            return
        if self.storage == "mcap":
            if storage.chunk.bio.tell():
                storage.close_chunk()
            storage.bio.flush()
            os.fsync(storage.bio.fileno())
        else:
            storage.conn.commit()


def _open_reader(path):
    from rosbags.rosbag2 import Reader

    path = Path(path)
    if not path.exists():
        raise BagError(f"bag {path} does not exist")
    if not (path / "metadata.yaml").is_file():
        if path.is_dir() and (any(path.glob("*.mcap")) or any(path.glob("*.db3"))):
            raise BagError(f"{path} has no metadata.yaml: a recording that was cut off (killed, power loss)? "
                           f"Recover its complete messages with `o4a bag repair {path}`")
        raise BagError(f"{path} is not a rosbag2 folder (no metadata.yaml)")
    try:
        reader = Reader(path)
        reader.open()
    except Exception as exc:  # rosbags raises several types for broken bags
        raise BagError(f"cannot open bag {path}: {exc}") from exc
    return reader


def topics(path) -> dict[str, tuple[str, int]]:
    """{topic: (msgtype, message count)} of a bag."""
    reader = _open_reader(path)
    try:
        return {c.topic: (c.msgtype, c.msgcount) for c in reader.connections}
    finally:
        reader.close()


def offered_qos(path) -> dict[str, list]:
    """{topic: [rosbags Qos, ...]}: the QoS profiles the recorded publishers offered
    (empty list when the bag does not say)."""
    reader = _open_reader(path)
    try:
        out: dict[str, list] = {}
        for c in reader.connections:
            out.setdefault(c.topic, []).extend(getattr(c.ext, "offered_qos_profiles", None) or [])
        return out
    finally:
        reader.close()


def read(path, topics: Iterable[str] | None = None, raw: bool = False, require: bool = True
         ) -> Iterator[tuple[str, str, float, object]]:
    """Yield (topic, msgtype, t_sec, msg) in time order (msg = CDR bytes when raw).

    With `require`, every named topic must exist and hold messages: BagError names the
    missing one. A message that fails to deserialise raises BagError naming its topic.
    """
    reader = _open_reader(path)
    store = typestore()
    try:
        wanted = None if topics is None else list(dict.fromkeys(topics))
        conns = list(reader.connections)
        if wanted is not None:
            present = {c.topic for c in conns if c.msgcount > 0}
            missing = [t for t in wanted if t not in present]
            if require and missing:
                have = ", ".join(sorted({c.topic for c in conns})) or "none"
                raise BagError(f"bag {path} has no messages on topic {missing[0]} (topics in the bag: {have})")
            conns = [c for c in conns if c.topic in wanted]
        for conn, ts, data in reader.messages(connections=conns):
            if raw:
                yield conn.topic, conn.msgtype, ts * 1e-9, bytes(data)
                continue
            if conn.msgtype not in store.fielddefs:
                raise BagError(f"topic {conn.topic}: message type {conn.msgtype} is unknown; cannot decode it")
            try:
                msg = store.deserialize_cdr(data, conn.msgtype)
            except Exception as exc:
                raise BagError(f"bag {path}: cannot decode a {conn.msgtype} message on topic {conn.topic} "
                               f"at t={ts * 1e-9:.3f}s ({exc})") from exc
            yield conn.topic, conn.msgtype, ts * 1e-9, msg
    finally:
        reader.close()


# ---- rosbags message builders (what the simulator records) --------------------------------

def _types():
    return typestore().types


def _header(t: float, frame_id: str):
    from o4a_nav.ros_conv import sec_to_stamp_fields

    T = _types()
    sec, nanosec = sec_to_stamp_fields(t)
    return T["std_msgs/msg/Header"](stamp=T["builtin_interfaces/msg/Time"](sec=sec, nanosec=nanosec),
                                    frame_id=frame_id)


def image_msg(rgb: np.ndarray, t: float, frame_id: str):
    rgb = np.ascontiguousarray(rgb, dtype=np.uint8)
    h, w = rgb.shape[:2]
    return _types()["sensor_msgs/msg/Image"](
        header=_header(t, frame_id), height=h, width=w, encoding="rgb8", is_bigendian=0,
        step=w * 3, data=rgb.reshape(-1))


def compressed_image_msg(rgb: np.ndarray, t: float, frame_id: str, fmt: str = "jpeg"):
    """sensor_msgs/CompressedImage as image_transport's compressed publisher writes it."""
    from o4a_nav.image_conv import rgb_to_compressed

    data, format_string = rgb_to_compressed(rgb, fmt)
    return _types()["sensor_msgs/msg/CompressedImage"](
        header=_header(t, frame_id), format=format_string, data=np.frombuffer(data, np.uint8))


def scan_msg(scan: ScanData, frame_id: str, scan_time: float = 0.0):
    return _types()["sensor_msgs/msg/LaserScan"](
        header=_header(scan.stamp, frame_id), angle_min=float(scan.angle_min),
        angle_max=float(scan.angle_max), angle_increment=float(scan.angle_increment),
        time_increment=0.0, scan_time=float(scan_time), range_min=float(scan.range_min),
        range_max=float(scan.range_max), ranges=np.asarray(scan.ranges, dtype=np.float32),
        intensities=np.zeros(0, dtype=np.float32))


def pose_msg(pose: Pose2D, t: float, frame_id: str = "map"):
    T = _types()
    q = T["geometry_msgs/msg/Quaternion"](x=0.0, y=0.0, z=math.sin(pose.yaw / 2), w=math.cos(pose.yaw / 2))
    p = T["geometry_msgs/msg/Point"](x=float(pose.x), y=float(pose.y), z=0.0)
    return T["geometry_msgs/msg/PoseStamped"](
        header=_header(t, frame_id), pose=T["geometry_msgs/msg/Pose"](position=p, orientation=q))


def odom_msg(pose: Pose2D, t: float, frame_id: str = "odom", child_frame_id: str = "base_link"):
    """nav_msgs/Odometry with the pose filled (twist zero), as a base driver publishes it."""
    T = _types()
    pose_stamped = pose_msg(pose, t, frame_id)
    return T["nav_msgs/msg/Odometry"](
        header=pose_stamped.header, child_frame_id=child_frame_id,
        pose=T["geometry_msgs/msg/PoseWithCovariance"](pose=pose_stamped.pose, covariance=np.zeros(36)),
        twist=T["geometry_msgs/msg/TwistWithCovariance"](twist=twist_msg(0.0, 0.0), covariance=np.zeros(36)))


def twist_msg(v: float, w: float):
    T = _types()
    return T["geometry_msgs/msg/Twist"](linear=T["geometry_msgs/msg/Vector3"](x=float(v), y=0.0, z=0.0),
                                        angular=T["geometry_msgs/msg/Vector3"](x=0.0, y=0.0, z=float(w)))


def action_msg(action: int, t: float, sequence: int, frame_id: str = "base_link"):
    return _types()["o4a_msgs/msg/DiscreteAction"](header=_header(t, frame_id), action=int(action),
                                                  sequence=int(sequence))


def tf_message(transforms):
    """tf2_msgs/TFMessage (rosbags) of o4a_nav.frames.Transforms (their stamps are 0: static)."""
    T = _types()
    out = []
    for t in transforms:
        out.append(T["geometry_msgs/msg/TransformStamped"](
            header=_header(0.0, t.parent), child_frame_id=t.child,
            transform=T["geometry_msgs/msg/Transform"](
                translation=T["geometry_msgs/msg/Vector3"](x=float(t.x), y=float(t.y), z=float(t.z)),
                rotation=T["geometry_msgs/msg/Quaternion"](x=float(t.qx), y=float(t.qy), z=float(t.qz),
                                                          w=float(t.qw)))))
    return T["tf2_msgs/msg/TFMessage"](transforms=out)


def write_tf_static(writer: "BagWriter", transforms, t_sec: float = 0.0) -> None:
    """The static transforms (sensor mounts) on /tf_static, recorded transient local as a
    robot's static broadcaster offers them: the learning pipeline reads the laser's mount
    from there."""
    from o4a_nav import topics

    writer.connection(topics.TF_STATIC, "tf2_msgs/msg/TFMessage", latched=True)
    writer.write(topics.TF_STATIC, "tf2_msgs/msg/TFMessage", t_sec, tf_message(transforms))


def string_msg(text: str):
    return _types()["std_msgs/msg/String"](data=text)
