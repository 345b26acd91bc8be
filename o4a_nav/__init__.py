"""o4a_nav: One-4-All image-goal navigation for ROS 2.

Everything in this package except ``o4a_nav.nodes`` (and the ROS-facing command modules)
is plain Python that never imports rclpy: models, training, planner, collision checking,
image conversion and the simulator. Nodes are thin adapters around those modules.
"""

__version__ = "0.1.0"
