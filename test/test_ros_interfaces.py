"""The ROS layer is real: generated o4a_msgs interfaces round-trip between two processes."""
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

rclpy = pytest.importorskip("rclpy")
from rclpy.action import ActionClient  # noqa: E402

from o4a_msgs.action import NavigateToImage  # noqa: E402
from o4a_msgs.msg import DiscreteAction  # noqa: E402
from o4a_msgs.srv import SetGoal  # noqa: E402
from o4a_nav.ros_conv import rgb_to_image_msg  # noqa: E402

pytestmark = pytest.mark.ros
SERVER = Path(__file__).with_name("ros_interface_server.py")


@pytest.fixture(scope="module")
def server():
    proc = subprocess.Popen([sys.executable, str(SERVER)], stdout=subprocess.PIPE, env=dict(os.environ), text=True)
    try:
        assert proc.stdout.readline().strip() == "ready"
        yield proc
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()


@pytest.fixture()
def node():
    rclpy.init()
    n = rclpy.create_node("interface_client")
    yield n
    n.destroy_node()
    rclpy.shutdown()


def _wait(node, future, timeout=15.0):
    deadline = time.monotonic() + timeout
    while not future.done() and time.monotonic() < deadline:
        rclpy.spin_once(node, timeout_sec=0.1)
    assert future.done(), "no answer from the server process"
    return future.result()


def _img(w=64, h=48, value=10):
    return rgb_to_image_msg(np.full((h, w, 3), value, np.uint8), 0.0, "front_camera_optical")


def test_set_goal_round_trip(server, node):
    cli = node.create_client(SetGoal, "o4a/set_goal")
    assert cli.wait_for_service(timeout_sec=15.0)
    ok = _wait(node, cli.call_async(SetGoal.Request(front=_img(), rear=_img())))
    assert ok.accepted and ok.message == "goal 64x48 rgb8"
    bad = _wait(node, cli.call_async(SetGoal.Request(front=_img(), rear=_img(w=32))))
    assert not bad.accepted and "sizes differ" in bad.message


def test_navigate_action_feedback_and_result(server, node):
    client = ActionClient(node, NavigateToImage, "o4a/navigate")
    assert client.wait_for_server(timeout_sec=15.0)
    feedback = []
    goal = NavigateToImage.Goal(front=_img(), rear=_img(), max_steps=4)
    handle = _wait(node, client.send_goal_async(goal, feedback_callback=lambda m: feedback.append(m.feedback)))
    assert handle.accepted
    result = _wait(node, handle.get_result_async()).result
    assert result.success and result.steps == 4 and result.reason == "reached"
    assert [f.step for f in feedback] == [1, 2, 3, 4]
    assert feedback[-1].last_action == DiscreteAction.FORWARD and feedback[-1].goal_distance == 0.0


def test_navigate_action_cancel(server, node):
    client = ActionClient(node, NavigateToImage, "o4a/navigate")
    assert client.wait_for_server(timeout_sec=15.0)
    handle = _wait(node, client.send_goal_async(NavigateToImage.Goal(front=_img(), rear=_img(), max_steps=200)))
    time.sleep(0.2)
    _wait(node, handle.cancel_goal_async())
    result = _wait(node, handle.get_result_async()).result
    assert not result.success and result.reason == "canceled" and result.steps < 200
