"""O4A navigation in the simulator: sim + collision_checker + navigator + base_controller.

    ros2 launch o4a_nav sim_navigation.launch.py world:=two_rooms model_path:=models/o4a_default

Then send a goal with `o4a goal FRONT.png REAR.png` (or `ros2 action send_goal
o4a/navigate o4a_msgs/action/NavigateToImage ...`). `o4a bringup --sim` starts the same
nodes with the same parameter files in one process.
"""
import os

from ament_index_python.packages import get_package_share_directory
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, IncludeLaunchDescription
from launch.launch_description_sources import PythonLaunchDescriptionSource
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node
from launch_ros.parameter_descriptions import ParameterValue

PACKAGE = "o4a_nav"


def generate_launch_description():
    share = get_package_share_directory(PACKAGE)
    world = LaunchConfiguration("world")
    seed = LaunchConfiguration("seed")

    args = [
        DeclareLaunchArgument("sim_params_file", default_value=os.path.join(share, "config", "sim.yaml"),
                              description="parameter YAML for the sim node"),
        DeclareLaunchArgument("params_file", default_value=os.path.join(share, "config", "navigation.yaml"),
                              description="parameter YAML for the navigation nodes"),
        DeclareLaunchArgument("world", default_value="two_rooms", description="world name or world .yaml"),
        DeclareLaunchArgument("seed", default_value="0", description="spawn / noise seed"),
        DeclareLaunchArgument("model_path", default_value="models/o4a_default",
                              description="model directory written by `o4a train`"),
        DeclareLaunchArgument("use_sim_time", default_value="false",
                              description="the sim publishes /clock and every node runs on simulated time"),
    ]
    sim = Node(
        package=PACKAGE,
        executable="sim",
        name="sim",
        output="screen",
        emulate_tty=True,
        parameters=[LaunchConfiguration("sim_params_file"),
                    {"world": ParameterValue(world, value_type=str), "seed": ParameterValue(seed, value_type=int),
                     "publish_clock": ParameterValue(LaunchConfiguration("use_sim_time"), value_type=bool)}],
    )
    navigation = IncludeLaunchDescription(
        PythonLaunchDescriptionSource(os.path.join(share, "launch", "navigation.launch.py")),
        launch_arguments={
            "params_file": LaunchConfiguration("params_file"),
            "model_path": LaunchConfiguration("model_path"),
            "world": world,   # the navigator's p+ head follows the simulated world
            "use_sim_time": LaunchConfiguration("use_sim_time"),
        }.items(),
    )
    return LaunchDescription(args + [sim, navigation])
