"""Conversions between ROS 2 messages and the core types.

Readers only touch message attributes, so they work on rclpy messages and on the
message objects that `rosbags` deserialises. Builders need the rclpy message classes and
import them lazily; this module never imports rclpy itself.
"""
from __future__ import annotations

import math

import numpy as np

from o4a_nav import image_conv
from o4a_nav.types import Pose2D, ScanData


def stamp_to_sec(stamp) -> float:
    return float(stamp.sec) + float(stamp.nanosec) * 1e-9


def sec_to_stamp_fields(t: float) -> tuple[int, int]:
    sec = int(math.floor(t))
    nanosec = int(round((t - sec) * 1e9))
    if nanosec >= 1_000_000_000:
        sec, nanosec = sec + 1, nanosec - 1_000_000_000
    return sec, nanosec


IMAGE_TYPES = ("sensor_msgs/msg/Image", "sensor_msgs/msg/CompressedImage")


def is_compressed_image(msg) -> bool:
    """A sensor_msgs/CompressedImage (format + data, no width/height/encoding)."""
    return hasattr(msg, "format") and not hasattr(msg, "encoding")


def image_msg_to_rgb(msg) -> np.ndarray:
    """sensor_msgs/Image or sensor_msgs/CompressedImage -> (H, W, 3) uint8 RGB at its own size."""
    if is_compressed_image(msg):
        return image_conv.compressed_to_rgb(msg.data, msg.format)
    return image_conv.to_rgb(msg.data, int(msg.height), int(msg.width), msg.encoding, int(msg.step) or None)


def image_msg_to_model_input(msg, camera: image_conv.CameraView | None = None) -> np.ndarray:
    """sensor_msgs/Image or CompressedImage -> (96, 96, 3) uint8 RGB, the model input
    (cropped to the model's view with the camera's intrinsics, image_conv.crop_box)."""
    return image_conv.to_model_input(image_msg_to_rgb(msg), camera)


def camera_info_to_view(msg) -> image_conv.CameraView:
    """sensor_msgs/CameraInfo -> image_conv.CameraView (its K, for its width x height)."""
    return image_conv.CameraView.from_k(msg.k, int(msg.width), int(msg.height))


def scan_msg_to_data(msg) -> ScanData:
    return ScanData(
        ranges=np.asarray(msg.ranges, dtype=np.float32),
        angle_min=float(msg.angle_min),
        angle_increment=float(msg.angle_increment),
        range_min=float(msg.range_min),
        range_max=float(msg.range_max),
        stamp=stamp_to_sec(msg.header.stamp),
        frame_id=str(msg.header.frame_id),
        reported_angle_max=float(msg.angle_max),
    )


def yaw_from_quaternion(q) -> float:
    return math.atan2(2.0 * (q.w * q.z + q.x * q.y), 1.0 - 2.0 * (q.y * q.y + q.z * q.z))


def pose_msg_to_pose2d(pose) -> Pose2D:
    """geometry_msgs/Pose -> Pose2D."""
    return Pose2D(float(pose.position.x), float(pose.position.y), yaw_from_quaternion(pose.orientation))


# ---- builders (rclpy message classes) -------------------------------------------------

def fill_header(header, t: float, frame_id: str):
    header.stamp.sec, header.stamp.nanosec = sec_to_stamp_fields(t)
    header.frame_id = frame_id
    return header


def rgb_to_image_msg(img: np.ndarray, t: float, frame_id: str, encoding: str = "rgb8"):
    from sensor_msgs.msg import Image

    img = np.ascontiguousarray(img, dtype=np.uint8)
    msg = Image()
    fill_header(msg.header, t, frame_id)
    msg.height, msg.width = int(img.shape[0]), int(img.shape[1])
    channels = 1 if img.ndim == 2 else int(img.shape[2])
    msg.encoding = encoding
    msg.is_bigendian = 0
    msg.step = msg.width * channels
    msg.data = img.tobytes()
    return msg


def rgb_to_compressed_msg(img: np.ndarray, t: float, frame_id: str, fmt: str = "jpeg"):
    """(H, W, 3) RGB -> rclpy sensor_msgs/CompressedImage (image_transport's layout)."""
    from sensor_msgs.msg import CompressedImage

    msg = CompressedImage()
    fill_header(msg.header, t, frame_id)
    data, msg.format = image_conv.rgb_to_compressed(img, fmt)
    msg.data = data
    return msg


def scan_data_to_msg(scan: ScanData, frame_id: str, scan_time: float = 0.0):
    from sensor_msgs.msg import LaserScan

    msg = LaserScan()
    fill_header(msg.header, scan.stamp, frame_id)
    msg.angle_min = float(scan.angle_min)
    msg.angle_max = float(scan.angle_max)
    msg.angle_increment = float(scan.angle_increment)
    msg.time_increment = 0.0
    msg.scan_time = float(scan_time)
    msg.range_min = float(scan.range_min)
    msg.range_max = float(scan.range_max)
    msg.ranges = np.asarray(scan.ranges, dtype=np.float32).tolist()
    return msg


def set_pose_msg(pose_msg, p: Pose2D):
    """Fill a geometry_msgs/Pose from a Pose2D."""
    pose_msg.position.x, pose_msg.position.y, pose_msg.position.z = float(p.x), float(p.y), 0.0
    pose_msg.orientation.x = pose_msg.orientation.y = 0.0
    pose_msg.orientation.z = math.sin(p.yaw / 2.0)
    pose_msg.orientation.w = math.cos(p.yaw / 2.0)
    return pose_msg


def transform_msg(t, stamp: float):
    """o4a_nav.frames.Transform -> rclpy geometry_msgs/TransformStamped."""
    from geometry_msgs.msg import TransformStamped

    msg = TransformStamped()
    fill_header(msg.header, stamp, t.parent)
    msg.child_frame_id = t.child
    tr, q = msg.transform.translation, msg.transform.rotation
    tr.x, tr.y, tr.z = float(t.x), float(t.y), float(t.z)
    q.x, q.y, q.z, q.w = float(t.qx), float(t.qy), float(t.qz), float(t.qw)
    return msg


def transform_from_msg(msg):
    """geometry_msgs/TransformStamped (rclpy or rosbags) -> o4a_nav.frames.Transform."""
    from o4a_nav.frames import Transform

    tr, q = msg.transform.translation, msg.transform.rotation
    return Transform(str(msg.header.frame_id).lstrip("/"), str(msg.child_frame_id).lstrip("/"), float(tr.x),
                     float(tr.y), float(tr.z), float(q.x), float(q.y), float(q.z), float(q.w))
