"""Regression: images must not depend on which thread renders them.

An OpenGL context is current in one thread only. The sim node renders from ROS executor
threads; before the renderer ran all GL work on a thread of its own, those images showed
some other place than the robot's pose, and navigation through ROS was blind.
"""
import threading
import time

import numpy as np
import pytest

from o4a_nav.sim import SimRobot, load_world
from o4a_nav.types import Pose2D

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
def test_sim_node_publishes_what_the_robot_sees_at_its_pose():
    import rclpy
    from rclpy.executors import MultiThreadedExecutor
    from rclpy.parameter import Parameter
    from sensor_msgs.msg import Image

    from o4a_nav import ros_conv, topics
    from o4a_nav.nodes._common import SENSOR_QOS
    from o4a_nav.nodes.sim import SimNode

    expected = SimRobot(load_world("two_rooms"), seed=0, pose=POSE)
    want_front, want_rear = expected.render()
    expected.close()

    ctx = rclpy.Context()
    rclpy.init(context=ctx)
    ns = f"/o4a_render_{id(ctx)}"
    sim = SimNode(node_name="sim", namespace=ns, context=ctx, parameter_overrides=[
        Parameter("world", value="two_rooms"), Parameter("initial_pose", value=[POSE.x, POSE.y, POSE.yaw])])
    probe = rclpy.create_node("probe", namespace=ns, context=ctx)
    got = {}
    probe.create_subscription(Image, topics.FRONT_IMAGE, lambda m: got.setdefault("front", m), SENSOR_QOS)
    probe.create_subscription(Image, topics.REAR_IMAGE, lambda m: got.setdefault("rear", m), SENSOR_QOS)
    ex = MultiThreadedExecutor(num_threads=4, context=ctx)
    ex.add_node(sim)
    ex.add_node(probe)
    th = threading.Thread(target=ex.spin, daemon=True)
    th.start()
    try:
        end = time.monotonic() + 20
        while len(got) < 2 and time.monotonic() < end:
            time.sleep(0.05)
        assert len(got) == 2, "no images from the sim node"
        assert np.array_equal(ros_conv.image_msg_to_rgb(got["front"]), want_front)
        assert np.array_equal(ros_conv.image_msg_to_rgb(got["rear"]), want_rear)
    finally:
        ex.shutdown(timeout_sec=2.0)
        th.join(timeout=5)
        sim.robot.close()
        for n in (sim, probe):
            n.destroy_node()
        rclpy.shutdown(context=ctx)
