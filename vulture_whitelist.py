# Names the dead-code check of `make lint` (vulture) must not report: code that is used, but
# by something vulture cannot see. Each line names its reason; anything else it reports is
# dead code to delete. Not imported by anything; vulture reads it as the places of use.
# ruff does not lint this file (`_` is vulture's stand-in for any object).

# Called by frameworks, not by our code
generate_launch_description  # launch/*.launch.py: ros2 launch calls it
pytest_collection_modifyitems  # test/conftest.py: a pytest hook
pytestmark  # test modules: pytest reads the module's marks
_.on_configure  # nodes/_common.py: rclpy lifecycle transition callbacks
_.on_activate
_.on_error
_._gen_world  # sim/render.py: MiniWorld's environment calls it
_.is_static  # sim/render.py: MiniWorld reads it of each entity
_.dir  # sim/render.py: an entity's heading, read by MiniWorld
signum  # nodes/_common.py: the signal handler's signature
mtime  # sim/world.py: the lru_cache key (reload a world file that changed)

# Message fields set for the subscribers (ROS messages are read elsewhere)
_.additional_constraints  # rcl_interfaces/ParameterDescriptor
_.candidate_potentials  # o4a_msgs/NavigatorStatus
_.candidate_attraction
_.candidate_repulsion
_.covariance  # nav_msgs/Odometry
_.distortion_model  # sensor_msgs/CameraInfo
_.is_bigendian  # sensor_msgs/Image
_.time_increment  # sensor_msgs/LaserScan

# Held so that the object lives as long as its owner
_._timer  # nodes/recorder.py: rclpy timer
_._physics_timer  # nodes/sim.py: rclpy timer

# Protocol constants kept complete
STALE  # nav/diagnostics.py: diagnostic_msgs/DiagnosticStatus levels
