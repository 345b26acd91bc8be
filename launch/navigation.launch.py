"""O4A navigation on a robot: collision_checker, navigator, base_controller (managed
nodes) and the lifecycle_manager that configures and activates them (autostart).

    ros2 launch o4a_nav navigation.launch.py
    ros2 launch o4a_nav navigation.launch.py model_path:=/abs/path/to/model world:=office \
        namespace:=robot1 scan_topic:=base_scan params_file:=my_robot.yaml use_sim_time:=true

The robot's driver provides front_camera/image_raw, rear_camera/image_raw, scan and odom
and consumes cmd_vel; the *_topic arguments remap them. `ros2 launch ... --show-args`
lists every argument. `o4a bringup` starts the same nodes with the same parameter file in
one process (`--ros-args -r scan:=base_scan` remaps there).
"""
from launch import LaunchDescription
from launch.actions import OpaqueFunction

from o4a_nav.nodes import launching

NODES = ("collision_checker", "navigator", "base_controller")
ARGUMENTS = ("params_file", "model_path", "world", "use_sim_time", "namespace", "log_level", "use_respawn",
             "autostart", *launching.TOPIC_ARGUMENTS)


def _nodes(context):
    nav = {k: launching.value(context, k) for k in ("model_path", "world") if launching.value(context, k)}
    return launching.nodes(context, NODES, [launching.value(context, "params_file")], {"navigator": nav})


def generate_launch_description():
    return LaunchDescription(launching.declare(ARGUMENTS) + [OpaqueFunction(function=_nodes)])
