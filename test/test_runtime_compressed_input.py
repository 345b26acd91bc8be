"""The navigator node on a camera recorded or streamed through image_transport's compressed
plugin (parameter image_transport: compressed), under real rclpy."""
import os
import time

import numpy as np
import pytest
from rclpy.node import Node
from rclpy.parameter import Parameter

from o4a_nav import ros_conv, topics
from o4a_nav.nodes._common import SENSOR_QOS, reliable
from o4a_nav.types import Action, NavState

from conftest import wait_until  # noqa: E402

pytestmark = pytest.mark.ros
NS = f"/o4a_test_comp_{os.getpid()}"


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    import torch

    from o4a_nav.learning.config import ModelConfig
    from o4a_nav.learning.model_io import O4AModel, save_model

    torch.manual_seed(0)
    return str(save_model(O4AModel(ModelConfig(), ["test_world"]), tmp_path_factory.mktemp("model") / "m"))


def test_navigator_decides_on_compressed_images(ros, model_dir):
    from o4a_msgs.msg import DiscreteAction, FreeActions, NavigatorStatus
    from o4a_msgs.srv import SetGoal
    from sensor_msgs.msg import CompressedImage, Image

    from o4a_nav.nodes.navigator import NavigatorNode

    ctx, add = ros
    node = add(NavigatorNode(context=ctx, namespace=NS, parameter_overrides=[
        Parameter("model_path", value=model_dir), Parameter("torch_threads", value=1),
        Parameter("stop_threshold", value=0.0), Parameter("image_transport", value="compressed")]))
    probe = add(Node("probe", context=ctx, namespace=NS))
    pubs = {name: probe.create_publisher(CompressedImage, name + "/compressed", SENSOR_QOS)
            for name in (topics.FRONT_IMAGE, topics.REAR_IMAGE)}
    raw_front = probe.create_publisher(Image, topics.FRONT_IMAGE, SENSOR_QOS)
    pub_free = probe.create_publisher(FreeActions, topics.FREE_ACTIONS, reliable(1))
    actions, statuses = [], []
    probe.create_subscription(DiscreteAction, topics.ACTION, actions.append, reliable(10))
    probe.create_subscription(NavigatorStatus, topics.STATUS, statuses.append, reliable(10))
    from o4a_nav.types import ScanData
    from sensor_msgs.msg import LaserScan

    pub_scan = probe.create_publisher(LaserScan, topics.SCAN, SENSOR_QOS)
    now = lambda: probe.get_clock().now().nanoseconds * 1e-9  # noqa: E731
    rng = np.random.default_rng(0)
    img = rng.integers(0, 255, (240, 320, 3), dtype=np.uint8)

    def inputs(compressed=True):
        t = now()
        s = ScanData(np.full(181, np.inf, np.float32), -np.pi / 2, np.pi / 180, 0.05, 10.0, stamp=t)
        pub_scan.publish(ros_conv.scan_data_to_msg(s, topics.LASER_FRAME))
        m = FreeActions()
        ros_conv.fill_header(m.header, t, "laser")
        m.forward = m.rotate_left = m.rotate_right = True
        pub_free.publish(m)
        if compressed:
            for name, pub in pubs.items():
                pub.publish(ros_conv.rgb_to_compressed_msg(img, t, name))
        else:
            raw_front.publish(ros_conv.rgb_to_image_msg(img, t, "front"))

    cli = probe.create_client(SetGoal, topics.SET_GOAL)
    assert cli.wait_for_service(timeout_sec=10.0)
    req = SetGoal.Request()
    req.front = ros_conv.rgb_to_image_msg(img, now(), "front")
    req.rear = ros_conv.rgb_to_image_msg(img, now(), "rear")
    fut = cli.call_async(req)
    assert wait_until(fut.done, 20.0) and fut.result().accepted
    # raw images on the raw topic do not feed a compressed-input navigator: it stays stale
    for _ in range(10):
        inputs(compressed=False)
        time.sleep(0.05)
    assert wait_until(lambda: statuses and statuses[-1].state == NavState.STALE_INPUT, 5.0)
    assert "front_camera" in statuses[-1].stale_inputs
    n = len(actions)
    for _ in range(40):
        inputs()
        if len(actions) > n and actions[-1].action != Action.STOP:
            break
        time.sleep(0.05)
    assert wait_until(lambda: len(actions) > n and actions[-1].action in Action.motions(), 5.0)
    assert node.runtime.nav.steps >= 1


def test_image_transport_must_be_raw_or_compressed(ros, model_dir):
    from o4a_nav.errors import UserError
    from o4a_nav.nodes.navigator import NavigatorNode

    ctx, _ = ros
    with pytest.raises(UserError, match="image_transport must be raw or compressed"):
        NavigatorNode(context=ctx, namespace=NS, parameter_overrides=[
            Parameter("model_path", value=model_dir), Parameter("image_transport", value="theora")])
