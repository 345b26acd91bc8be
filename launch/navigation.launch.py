"""O4A navigation on a robot: collision_checker, navigator, base_controller.

    ros2 launch o4a_nav navigation.launch.py model_path:=/path/to/models/o4a_default
    ros2 launch o4a_nav navigation.launch.py params_file:=my_robot.yaml use_sim_time:=true

The robot's driver provides front_camera/image_raw, rear_camera/image_raw, scan, odom and
consumes cmd_vel (remap them here or with the driver). `o4a bringup` starts the same nodes
with the same parameter file in one process where `ros2 launch` is not available.
"""
import os

from ament_index_python.packages import get_package_share_directory
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node
from launch_ros.parameter_descriptions import ParameterValue

PACKAGE = "o4a_nav"
NODES = ("collision_checker", "navigator", "base_controller")


def generate_launch_description():
    share = get_package_share_directory(PACKAGE)
    params_file = LaunchConfiguration("params_file")
    model_path = LaunchConfiguration("model_path")
    use_sim_time = LaunchConfiguration("use_sim_time")
    log_level = LaunchConfiguration("log_level")

    args = [
        DeclareLaunchArgument("params_file", default_value=os.path.join(share, "config", "navigation.yaml"),
                              description="parameter YAML for the navigation nodes"),
        DeclareLaunchArgument("model_path", default_value="models/o4a_default",
                              description="model directory written by `o4a train`"),
        DeclareLaunchArgument("world", default_value="",
                              description="p+ head of the model to use (empty: the model's only world)"),
        DeclareLaunchArgument("use_sim_time", default_value="false",
                              description="use /clock (simulated time)"),
        DeclareLaunchArgument("log_level", default_value="info", description="ROS log level"),
    ]
    common = {"use_sim_time": ParameterValue(use_sim_time, value_type=bool)}
    nodes = []
    for name in NODES:
        params = [params_file, common]
        if name == "navigator":
            params.append({"model_path": ParameterValue(model_path, value_type=str),
                           "world": ParameterValue(LaunchConfiguration("world"), value_type=str)})
        nodes.append(Node(
            package=PACKAGE,
            executable=name,
            name=name,
            output="screen",
            emulate_tty=True,
            parameters=params,
            ros_arguments=["--log-level", log_level],
        ))
    return LaunchDescription(args + nodes)
