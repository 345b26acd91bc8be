"""O4A navigation in the simulator: sim + collision_checker + navigator + base_controller.

    ros2 launch o4a_nav sim_navigation.launch.py world:=two_rooms
    ros2 launch o4a_nav sim_navigation.launch.py world:=four_rooms use_sim_time:=true namespace:=sim1

`world` is the simulated world and the navigator's p+ head. Then send a goal with `o4a goal
FRONT.png REAR.png`. `o4a bringup --sim` starts the same nodes in one process.
"""
from launch import LaunchDescription
from launch.actions import OpaqueFunction

from o4a_nav.nodes import launching

NODES = ("sim", "collision_checker", "navigator", "base_controller")
ARGUMENTS = ("params_file", "sim_params_file", "model_path", "world", "seed", "use_sim_time", "namespace",
             "log_level", "use_respawn", "autostart", *launching.TOPIC_ARGUMENTS)


def _nodes(context):
    value = launching.value
    world = value(context, "world")
    nav = {"world": world, **({"model_path": value(context, "model_path")} if value(context, "model_path") else {})}
    # with use_sim_time the sim publishes /clock; it keeps its own clock
    sim = {"world": world, "seed": int(value(context, "seed")),
           "publish_clock": launching.flag(context, "use_sim_time"), "use_sim_time": False}
    files = [value(context, "sim_params_file"), value(context, "params_file")]
    # the sim publishes its sensor mounts on /tf_static itself
    return launching.nodes(context, NODES, files, {"navigator": nav, "sim": sim,
                                                   "collision_checker": {"publish_laser_tf": False}})


def generate_launch_description():
    return LaunchDescription(launching.declare(ARGUMENTS, world="two_rooms") + [OpaqueFunction(function=_nodes)])
