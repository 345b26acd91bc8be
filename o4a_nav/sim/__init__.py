"""Simulated robot and worlds (ROS-free). Rendering (MiniWorld/OpenGL) is imported only
when a SimRobot with cameras is created, so geometry and geodesics work without GL.

    from o4a_nav.sim import load_world, SimRobot
    world = load_world("two_rooms")            # or a path to a world .yaml
    robot = SimRobot(world, seed=0)
    front, rear, scan = robot.observe()
    robot.step(Action.FORWARD)
    world.geodesic(robot.pose, (1.0, 2.0))
"""
from o4a_nav.sim.robot import CameraParams, LaserParams, SimRobot, cast_rays
from o4a_nav.sim.world import World, load_world, resolve_world_path, world_names

__all__ = ["CameraParams", "LaserParams", "SimRobot", "World", "cast_rays", "load_world",
           "resolve_world_path", "world_names"]
