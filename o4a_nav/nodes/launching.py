"""What the launch files (launch/*.launch.py) share: their arguments and the Node actions
for the o4a_nav nodes, for `ros2 launch` (launch / launch_ros, imported when called).

Parameters: each node gets one dict, merged by o4a_nav.params.node_parameters from the
params_file (its `/**` section, then the sections naming the node: `NODE`, `/**/NODE` or
`/NS/NODE`) and the launch arguments that were given (non-empty model_path / world,
use_sim_time). launch_ros writes that dict under `/**`, so nothing in the file can shadow
an argument and nothing is lost under a namespace.
"""
from __future__ import annotations

from o4a_nav import topics
from o4a_nav.errors import UserError

PACKAGE = "o4a_nav"
MANAGED = ("collision_checker", "navigator", "base_controller")   # lifecycle nodes

# launch argument -> the topic name the nodes use (remapped when the argument differs)
TOPIC_ARGUMENTS = {
    "front_image_topic": topics.FRONT_IMAGE,
    "rear_image_topic": topics.REAR_IMAGE,
    "scan_topic": topics.SCAN,
    "odom_topic": topics.ODOM,
    "cmd_vel_topic": topics.CMD_VEL,
}

# name -> (default, description); "share:" defaults are paths in the package share
ARGUMENTS = {
    "params_file": ("share:config/navigation.yaml", "parameter YAML of the nodes (`/**`, NODE or /**/NODE sections)"),
    "sim_params_file": ("share:config/sim.yaml", "parameter YAML of the sim and explorer nodes"),
    "sim_world": ("two_rooms", "world of the simulator: a name (`o4a worlds`) or a world .yaml"),
    "seed": ("0", "seed of the simulator's spawn pose and noise (and of the explorer)"),
    "model_path": ("", "model directory written by `o4a train`; empty: the params_file's, else the shipped "
                       "model (share/o4a_nav/models/o4a_default)"),
    "world": ("", "p+ head of the model, required when it has several (the shipped model: one of the nine "
                  "`o4a worlds`, e.g. two_rooms); empty: the params_file's, else the model's only world"),
    "use_sim_time": ("false", "use /clock (simulated time) on every node"),
    "namespace": ("", "namespace of every node and of their relative topics, e.g. robot1"),
    "log_level": ("info", "ROS log level of the nodes (debug, info, warn, error)"),
    "use_respawn": ("false", "restart a node that exits (false: every node is required, its exit ends the launch)"),
    "autostart": ("true", "the lifecycle_manager configures and activates the managed nodes at start-up "
                          "(false: call its ~/startup service)"),
    **{name: (topic, f"topic remapped to the nodes' {topic}") for name, topic in TOPIC_ARGUMENTS.items()},
}


def declare(names, **defaults) -> list:
    """DeclareLaunchArgument actions for these ARGUMENTS (``defaults`` replace theirs)."""
    import os

    from ament_index_python.packages import get_package_share_directory
    from launch.actions import DeclareLaunchArgument

    share = get_package_share_directory(PACKAGE)
    out = []
    for name in names:
        default, description = ARGUMENTS[name]
        default = defaults.get(name, default)
        if default.startswith("share:"):
            default = os.path.join(share, default[len("share:"):])
        out.append(DeclareLaunchArgument(name, default_value=default, description=description))
    return out


def flag(context, name: str) -> bool:
    """A true/false launch argument (true, false, 1, 0, any case)."""
    from launch.substitutions import LaunchConfiguration

    value = LaunchConfiguration(name).perform(context).strip().lower()
    if value in ("true", "1", "yes", "on"):
        return True
    if value in ("false", "0", "no", "off", ""):
        return False
    raise UserError(f"launch argument {name}:={value}: expected true or false")


def value(context, name: str) -> str:
    from launch.substitutions import LaunchConfiguration

    return LaunchConfiguration(name).perform(context)


def nodes(context, names, params_files: list[str], extra: dict[str, dict] | None = None) -> list:
    """launch_ros Node actions for these o4a_nav nodes (executable = node name) with the
    namespace, log level, respawn, remappings and merged parameters from the arguments;
    the managed ones among them wait for a lifecycle_manager, which is added (last) with
    the autostart argument."""
    from launch_ros.actions import Node

    from o4a_nav.params import node_parameters

    namespace = value(context, "namespace").strip("/")
    common = {"use_sim_time": flag(context, "use_sim_time")}
    remaps = [(topic, value(context, arg)) for arg, topic in TOPIC_ARGUMENTS.items()
              if value(context, arg) and value(context, arg) != topic]
    respawn = flag(context, "use_respawn")
    managed = [n for n in names if n in MANAGED]
    extra = dict(extra or {})
    for name in managed:
        extra[name] = {"autostart": False, **extra.get(name, {})}
    if managed:
        names = [*names, "lifecycle_manager"]
        extra["lifecycle_manager"] = {"node_names": managed, "autostart": flag(context, "autostart")}
    out = []
    for name in names:
        params = node_parameters(params_files, name, {**common, **extra.get(name, {})}, namespace)
        out.append(Node(
            package=PACKAGE, executable=name, name=name, namespace=namespace, output="screen", emulate_tty=True,
            parameters=[params], remappings=remaps, respawn=respawn, respawn_delay=2.0,
            on_exit=None if respawn else _required(name),
            ros_arguments=["--log-level", value(context, "log_level")]))
    return out


class RequiredNodeExited(RuntimeError):
    """Raised in the launch when a required node exits: launch shuts everything down and
    `ros2 launch` ends with status 1 (a Shutdown event alone would end it with 0)."""


def _required(name: str):
    """on_exit of a node without respawn: every node of these launch files is required, so
    its exit (a crash, a bad parameter, the sim on an unknown world) ends the launch with
    the reason and exit status 1 (the others stop; the lifecycle_manager has already
    reported the loss and stopped the robot if it was running). Nothing is done when the
    launch is already ending (Ctrl-C)."""
    def on_exit(event, context):
        from launch.actions import OpaqueFunction

        if context.is_shutdown:
            return None
        why = f"required node {name} exited with status {event.returncode} (use_respawn:=false): ending the launch"

        def fail(_context):
            raise RequiredNodeExited(why)

        return [OpaqueFunction(function=fail)]

    return on_exit
