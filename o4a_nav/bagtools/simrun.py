"""A navigation run in the simulator written as a navigation-run bag (ROS-free).

The robot (o4a_nav.sim) starts at a random free pose; the goal images are rendered at
another random free pose; the O4A navigator core (o4a_nav.nav.navigator) decides from
the rendered images and A_free of the one collision checker, stop-and-go, until it
calls STOP or `max_steps` decisions have been taken. The bag holds exactly what a
recording of the ROS stack holds (layout in navrun.py): goal images on the goal topics,
then per step front / rear / scan stamped t, the DiscreteAction stamped t (the stamp of
the images it was decided on) and the MotionState that ended the motion.

Used by the replay-check tests and as a quick way to make a sample bag:
    from o4a_nav.bagtools.simrun import write_sim_navigation_bag
"""
from __future__ import annotations

import numpy as np

from o4a_nav import bagio, topics
from o4a_nav.frames import sim_sensor_mounts
from o4a_nav.ros_conv import image_msg_to_rgb
from o4a_nav.bagtools import navrun
from o4a_nav.types import Action, MotionStatus


def _motion_state_msg(sequence: int, action: int, state: int, t: float, message: str = ""):
    T = bagio.typestore().types
    return T["o4a_msgs/msg/MotionState"](header=bagio._header(t, topics.BASE_FRAME), sequence=int(sequence),
                                         action=int(action), state=int(state), message=message)


def write_sim_navigation_bag(out, model, world: str, *, max_steps: int = 30, seed: int = 0,
                             storage: str = "mcap", params=None, dt: float = 0.5, t0: float = 100.0,
                             compressed: bool = False) -> dict:
    """Run the navigator core in the sim and write the run to `out`. Returns a summary
    {steps, actions, world, start, goal}. `model` is a loaded model (model_io API).
    `compressed`: the cameras are JPEG CompressedImage on `<topic>/compressed` and the
    navigator decides on the decoded images, as a navigator with image_transport
    compressed does."""
    import torch

    from o4a_nav.nav.collision import CollisionChecker
    from o4a_nav.nav.navigator import NavigatorParams, O4ANavigator
    from o4a_nav.sim.robot import SimRobot

    torch.manual_seed(seed)
    rng = np.random.default_rng([seed, 7])    # not the robot's stream: the goal differs from the start
    robot = SimRobot(world, seed=seed)
    try:
        goal_pose = robot.world.sample_free_pose(rng)
        start = robot.pose
        robot.set_pose(goal_pose)
        goal_front, goal_rear = robot.render()
        robot.set_pose(start)
        worlds = list(getattr(model, "worlds", []) or [])
        head = robot.world.name if robot.world.name in worlds else None   # p+ head of this world
        nav = O4ANavigator(model, world=head, params=params or NavigatorParams(max_steps=max_steps))
        nav.set_goal(goal_front, goal_rear)
        checker = CollisionChecker()
        actions = []
        fr, rr, sc = navrun.FRONT, navrun.REAR, navrun.SCAN
        img_type = "sensor_msgs/msg/CompressedImage" if compressed else "sensor_msgs/msg/Image"
        if compressed:
            fr, rr = fr + "/compressed", rr + "/compressed"
        with bagio.BagWriter(out, storage=storage, latched_topics=[navrun.GOAL_FRONT, navrun.GOAL_REAR]) as w:
            w.write(topics.WORLD_NAME, "std_msgs/msg/String", t0, bagio.string_msg(robot.world.name))
            w.write(topics.WORLD_DEFINITION, "std_msgs/msg/String", t0, bagio.string_msg(robot.world.text))
            bagio.write_tf_static(w, sim_sensor_mounts(robot.camera.mount_height), t0)
            w.write(navrun.GOAL_FRONT, "sensor_msgs/msg/Image", t0, bagio.image_msg(goal_front, t0, "goal_front"))
            w.write(navrun.GOAL_REAR, "sensor_msgs/msg/Image", t0, bagio.image_msg(goal_rear, t0, "goal_rear"))
            for i in range(max_steps):
                t = t0 + dt * (i + 1)
                front, rear, scan = robot.observe(stamp=t)
                msgs = [(bagio.compressed_image_msg if compressed else bagio.image_msg)(img, t, frame)
                        for img, frame in ((front, topics.FRONT_CAMERA_FRAME), (rear, topics.REAR_CAMERA_FRAME))]
                w.write(fr, img_type, t, msgs[0])
                w.write(rr, img_type, t, msgs[1])
                if compressed:      # what the navigator sees: the decoded JPEG
                    front, rear = (image_msg_to_rgb(m) for m in msgs)
                w.write(sc, "sensor_msgs/msg/LaserScan", t, bagio.scan_msg(scan, topics.LASER_FRAME))
                w.write(topics.GROUND_TRUTH_POSE, "geometry_msgs/msg/PoseStamped", t, bagio.pose_msg(robot.pose, t))
                decision = nav.step(front, rear, checker.free_actions(scan).free)
                a = Action(decision.action)
                actions.append(a)
                w.write(navrun.ACTION, "o4a_msgs/msg/DiscreteAction", t + 0.01, bagio.action_msg(a, t, i))
                if a == Action.STOP:
                    w.write(navrun.MOTION_STATE, "o4a_msgs/msg/MotionState", t + 0.02,
                            _motion_state_msg(i, a, MotionStatus.SUCCEEDED, t + 0.02))
                    break
                moved = robot.step(a)
                state = MotionStatus.SUCCEEDED if moved else MotionStatus.ABORTED
                w.write(navrun.MOTION_STATE, "o4a_msgs/msg/MotionState", t + dt / 2, _motion_state_msg(
                    i, a, state, t + dt / 2, "" if moved else "blocked"))
        return {"steps": len(actions), "actions": [a.name for a in actions], "world": robot.world.name,
                "start": start, "goal": goal_pose}
    finally:
        robot.close()
