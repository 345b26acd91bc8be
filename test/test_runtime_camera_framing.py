"""The navigator node frames camera images as training does (issue 29): a 640x480, 120 deg
camera is cropped to the model's square 90 deg view with its camera_info (or the
*_camera_hfov parameters), by the same image_conv.to_model_input, under real rclpy."""
import math
import os
import time

import numpy as np
import pytest
from rclpy.node import Node
from rclpy.parameter import Parameter

from o4a_nav import ros_conv, topics
from o4a_nav.nodes._common import SENSOR_QOS, reliable
from o4a_nav.types import NavState, ScanData

from conftest import wait_until  # noqa: E402

pytestmark = pytest.mark.ros
NS = f"/o4a_test_framing_{os.getpid()}"
W, H, HFOV = 640, 480, 120.0


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    import torch

    from o4a_nav.learning.config import ModelConfig
    from o4a_nav.learning.model_io import O4AModel, save_model

    torch.manual_seed(0)
    return str(save_model(O4AModel(ModelConfig(), ["test_world"]), tmp_path_factory.mktemp("model") / "m"))


def _camera_info(stamp: float, frame: str):
    from sensor_msgs.msg import CameraInfo

    f = (W / 2) / math.tan(math.radians(HFOV) / 2)
    msg = CameraInfo()
    ros_conv.fill_header(msg.header, stamp, frame)
    msg.width, msg.height, msg.distortion_model = W, H, "plumb_bob"
    msg.k = [f, 0.0, (W - 1) / 2, 0.0, f, (H - 1) / 2, 0.0, 0.0, 1.0]
    msg.p = [f, 0.0, (W - 1) / 2, 0.0, 0.0, f, (H - 1) / 2, 0.0, 0.0, 0.0, 1.0, 0.0]
    return msg


@pytest.mark.parametrize("how", ["camera_info", "parameters", "none"])
def test_navigator_frames_a_4_3_camera_as_training_does(ros, model_dir, how):
    """Goal: the 96x96 model input that training makes of a 640x480 frame with its
    camera_info (dataset: ros_conv.image_msg_to_model_input with the bag's CameraInfo).
    Live: that 640x480 frame. With the camera's camera_info (or its field of view as
    parameters) the node's live code is the goal's (d_h = 0); without either the node takes
    the centred square, another view (d_h > 0). (Before: camera_info was not read.)"""
    from o4a_msgs.msg import FreeActions, NavigatorStatus
    from o4a_msgs.srv import SetGoal
    from sensor_msgs.msg import CameraInfo, Image, LaserScan

    from o4a_nav.nodes.navigator import NavigatorNode

    ctx, add = ros
    params = [Parameter("model_path", value=model_dir), Parameter("torch_threads", value=1),
              Parameter("stop_threshold", value=0.0)]
    if how == "parameters":
        params += [Parameter("front_camera_hfov", value=HFOV), Parameter("rear_camera_hfov", value=HFOV)]
    node = add(NavigatorNode(context=ctx, namespace=NS, parameter_overrides=params))
    probe = add(Node("probe", context=ctx, namespace=NS))
    img_pubs = {name: probe.create_publisher(Image, name, SENSOR_QOS) for name in (topics.FRONT_IMAGE, topics.REAR_IMAGE)}
    info_pubs = {name: probe.create_publisher(CameraInfo, name, SENSOR_QOS)
                 for name in (topics.FRONT_CAMERA_INFO, topics.REAR_CAMERA_INFO)}
    pub_scan = probe.create_publisher(LaserScan, topics.SCAN, SENSOR_QOS)
    pub_free = probe.create_publisher(FreeActions, topics.FREE_ACTIONS, reliable(1))
    statuses = []
    probe.create_subscription(NavigatorStatus, topics.STATUS, statuses.append, reliable(10))
    now = lambda: probe.get_clock().now().nanoseconds * 1e-9  # noqa: E731
    yy, xx = np.indices((H, W))
    frames = {topics.FRONT_IMAGE: np.stack([xx * 255 // (W - 1), yy * 255 // (H - 1), ((xx // 37 + yy // 23) % 2) * 220],
                                           -1).astype(np.uint8),
              topics.REAR_IMAGE: np.stack([((xx // 29) % 2) * 200, xx * 255 // (W - 1), yy * 255 // (H - 1)],
                                          -1).astype(np.uint8)}
    camera = ros_conv.camera_info_to_view(_camera_info(0.0, "cam"))
    # the model input training makes of these frames with their camera_info
    goal = {name: ros_conv.image_msg_to_model_input(ros_conv.rgb_to_image_msg(img, 0.0, "cam"), camera)
            for name, img in frames.items()}

    def inputs():
        t = now()
        pub_scan.publish(ros_conv.scan_data_to_msg(
            ScanData(np.full(181, np.inf, np.float32), -np.pi / 2, np.pi / 180, 0.05, 10.0, stamp=t), topics.LASER_FRAME))
        m = FreeActions()
        ros_conv.fill_header(m.header, t, "laser")
        m.forward = m.rotate_left = m.rotate_right = True
        pub_free.publish(m)
        for name, pub in img_pubs.items():
            if how == "camera_info":     # a camera driver publishes its camera_info with every image
                info_pubs[topics.FRONT_CAMERA_INFO if name == topics.FRONT_IMAGE else topics.REAR_CAMERA_INFO].publish(
                    _camera_info(t, name))
            pub.publish(ros_conv.rgb_to_image_msg(frames[name], t, name))

    if how == "camera_info":
        assert wait_until(lambda: (inputs(), time.sleep(0.05), node.runtime.nav.cameras == (camera, camera))[-1], 10.0), \
            node.runtime.nav.cameras
    elif how == "parameters":
        assert node.runtime.nav.cameras == (HFOV, HFOV)
    else:
        assert node.runtime.nav.cameras == (None, None)
    cli = probe.create_client(SetGoal, topics.SET_GOAL)
    assert cli.wait_for_service(timeout_sec=10.0)
    req = SetGoal.Request()
    req.front = ros_conv.rgb_to_image_msg(goal[topics.FRONT_IMAGE], now(), "front")
    req.rear = ros_conv.rgb_to_image_msg(goal[topics.REAR_IMAGE], now(), "rear")
    fut = cli.call_async(req)
    assert wait_until(fut.done, 20.0) and fut.result().accepted, fut.result()

    def decided():
        inputs()
        time.sleep(0.05)
        return any(s.step >= 1 and s.state != NavState.STALE_INPUT for s in statuses)

    assert wait_until(decided, 15.0), statuses[-1:]
    d_h = next(s.goal_distance for s in statuses if s.step >= 1)     # the first decision's d_h
    if how == "none":
        assert d_h > 1e-2, d_h
    else:
        assert d_h < 1e-4, d_h
