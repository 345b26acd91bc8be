"""Data collection: the exploration policy (explorer) and the base controller that executes
its actions, optionally with the simulator (sim:=true).

    ros2 launch o4a_nav explore.launch.py scan_topic:=base_scan odom_topic:=wheel_odom
    ros2 launch o4a_nav explore.launch.py sim:=true sim_world:=office seed:=3
    o4a record -a -o data/bags/my_place     # in another shell; `o4a train --bags` reads it

The explorer takes A_free from the scan with the footprint of params_file (the same `/**`
section as the collision checker) and stops after `trajectories` (sim_params_file,
explorer section; 0 = never).
"""
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, OpaqueFunction

from o4a_nav.nodes import launching

ARGUMENTS = ("params_file", "sim_params_file", "sim_world", "seed", "use_sim_time", "namespace", "log_level",
             "use_respawn", "autostart", *launching.TOPIC_ARGUMENTS)


def _nodes(context):
    value = launching.value
    seed = int(value(context, "seed"))
    with_sim = launching.flag(context, "sim")
    extra = {"explorer": {"seed": seed},
             "sim": {"world": value(context, "sim_world"), "seed": seed,
                     "publish_clock": launching.flag(context, "use_sim_time"), "use_sim_time": False}}
    names = (("sim",) if with_sim else ()) + ("explorer", "base_controller")
    files = [value(context, "sim_params_file"), value(context, "params_file")]
    return launching.nodes(context, names, files, extra)


def generate_launch_description():
    return LaunchDescription(
        launching.declare(ARGUMENTS)
        + [DeclareLaunchArgument("sim", default_value="false", description="also start the simulator (sim node)"),
           OpaqueFunction(function=_nodes)])
