"""o4a_nav: One-4-All image-goal navigation for ROS 2.

Everything in this package except ``o4a_nav.nodes`` (and the ROS-facing command modules)
is plain Python that never imports rclpy: models, training, planner, collision checking,
image conversion and the simulator. Nodes are thin adapters around those modules.
"""

__version__ = "0.1.0"


def _ensure_ament_prefix() -> None:
    """Inside the project's venv (ROS 2 from wheels, o4a_msgs merge-installed there), the venv
    is an ament prefix: make ament_index lookups find it without a `source` step."""
    import os
    import sys

    prefix = sys.prefix
    if not os.path.isdir(os.path.join(prefix, "share", "ament_index")):
        return
    paths = [p for p in os.environ.get("AMENT_PREFIX_PATH", "").split(os.pathsep) if p]
    if prefix not in paths:
        os.environ["AMENT_PREFIX_PATH"] = os.pathsep.join(paths + [prefix])


_ensure_ament_prefix()
