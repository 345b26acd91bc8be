"""Regression: images must not depend on which thread renders them.

An OpenGL context is current in one thread only. The sim node renders from ROS executor
threads; before the renderer ran all GL work on a thread of its own, those images showed
some other place than the robot's pose, and navigation through ROS was blind.
"""
import os
import threading

import numpy as np
import pytest

from o4a_nav.sim import SimRobot, load_world
from o4a_nav.types import Pose2D
from conftest import wait_until

POSE = Pose2D(5.05, 0.44, -2.9)


def _render_in_thread(robot):
    out = {}
    th = threading.Thread(target=lambda: out.setdefault("img", robot.render()))
    th.start()
    th.join(timeout=30)
    return out["img"]


def test_render_is_the_same_from_any_thread():
    robot = SimRobot(load_world("two_rooms"), seed=0, pose=POSE)
    try:
        front, rear = robot.render()
        f2, r2 = _render_in_thread(robot)
        assert np.array_equal(front, f2) and np.array_equal(rear, r2)
        robot.set_pose(Pose2D(1.0, 1.0, 0.0))
        assert not np.array_equal(_render_in_thread(robot)[0], front)  # it does follow the pose
    finally:
        robot.close()


@pytest.mark.ros
def test_sim_node_publishes_what_the_robot_sees_at_its_pose(ros):
    import rclpy
    from rclpy.parameter import Parameter
    from sensor_msgs.msg import Image

    from o4a_nav import ros_conv, topics
    from o4a_nav.nodes._common import SENSOR_QOS
    from o4a_nav.nodes.sim import SimNode

    expected = SimRobot(load_world("two_rooms"), seed=0, pose=POSE)
    want_front, want_rear = expected.render()
    expected.close()

    ctx, add = ros
    ns = f"/o4a_render_{os.getpid()}"
    sim = add(SimNode(node_name="sim", namespace=ns, context=ctx, parameter_overrides=[
        Parameter("world", value="two_rooms"), Parameter("initial_pose", value=[POSE.x, POSE.y, POSE.yaw])]))
    probe = add(rclpy.create_node("probe", namespace=ns, context=ctx))
    got = {}
    probe.create_subscription(Image, topics.FRONT_IMAGE, lambda m: got.setdefault("front", m), SENSOR_QOS)
    probe.create_subscription(Image, topics.REAR_IMAGE, lambda m: got.setdefault("rear", m), SENSOR_QOS)
    assert wait_until(lambda: len(got) == 2), "no images from the sim node"
    assert np.array_equal(ros_conv.image_msg_to_rgb(got["front"]), want_front)
    assert np.array_equal(ros_conv.image_msg_to_rgb(got["rear"]), want_rear)
    sim.robot.close()
