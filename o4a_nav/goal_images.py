"""Goal images for the o4a/navigate action from where users keep them: image files, or the
nearest front and rear frames of a rosbag2 folder. ROS-free; used by `o4a goal` and
`o4a record --goal`."""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from o4a_nav import bagio, ros_conv
from o4a_nav.errors import BagError, ImageFormatError, UserError


def load_image_file(path) -> np.ndarray:
    """Image file -> (H, W, 3) uint8 RGB. UserError names the file."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"image file {path} does not exist")
    img = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if img is None or img.size == 0:
        raise ImageFormatError(f"image file {path} is not a readable image")
    return cv2.cvtColor(img, cv2.COLOR_BGR2RGB)


def images_from_bag(bag, t_rel: float, front_topic: str, rear_topic: str):
    """Nearest front and rear images to `t_rel` seconds after the bag's first message
    (sensor_msgs/Image, or CompressedImage also found on `<topic>/compressed`)."""
    present = bagio.topics(bag)
    front_topic, rear_topic = (t if t in present or t + "/compressed" not in present else t + "/compressed"
                               for t in (front_topic, rear_topic))   # image_transport's compressed topic
    best: dict = {}
    t0 = None
    for topic, _, t, msg in bagio.read(bag, topics=[front_topic, rear_topic]):
        t0 = t if t0 is None else t0
        d = abs((t - t0) - t_rel)
        if topic not in best or d < best[topic][0]:
            best[topic] = (d, msg, t - t0)
    for topic in (front_topic, rear_topic):
        if topic not in best:
            raise BagError(f"bag {bag} has no messages on {topic}")
    return (ros_conv.image_msg_to_rgb(best[front_topic][1]), ros_conv.image_msg_to_rgb(best[rear_topic][1]),
            best[front_topic][2])
