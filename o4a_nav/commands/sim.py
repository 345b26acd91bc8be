"""o4a sim: run the simulator node (same as `ros2 run o4a_nav sim`)."""
from __future__ import annotations

HELP = "run the simulated robot as a ROS 2 node: cameras, scan, odom, cmd_vel (like `ros2 run o4a_nav sim`)"

EXAMPLES = """examples:
  o4a sim --world office                       # then e.g. ros2 launch o4a_nav navigation.launch.py
  o4a sim --world two_rooms --seed 3 --clock
  o4a sim --pose 1.0 2.0 0.0 --params-file config/sim.yaml
"""
RUNS_SIMULATOR = True   # the CLI ends the help with cli.WHICH_SIM


def add_arguments(p) -> None:
    p.add_argument("--world", default=None, help="built-in world name or path to a world .yaml (default two_rooms)")
    p.add_argument("--seed", type=int, default=None, help="seed of the spawn pose (default 0)")
    p.add_argument("--pose", type=float, nargs=3, metavar=("X", "Y", "YAW"), default=None,
                   help="spawn pose in the map frame (m, m, rad); default: a random free pose")
    p.add_argument("--clock", action="store_true", help="publish /clock and stamp with simulated time")
    p.add_argument("--params-file", action="append", default=[], metavar="YAML",
                   help="ROS 2 parameter file (section `sim` or `/**`); may be repeated")


def run(args) -> int:
    from o4a_nav.nodes._common import node_overrides, spin_node
    from o4a_nav.nodes.sim import SimNode
    from o4a_nav.sim.world import resolve_world_path

    extra = {}
    if args.world is not None:
        resolve_world_path(args.world)          # clear error before ROS starts
        extra["world"] = args.world
    if args.seed is not None:
        extra["seed"] = args.seed
    if args.pose is not None:
        extra["initial_pose"] = [float(v) for v in args.pose]
    if args.clock:
        extra["publish_clock"] = True
    overrides = node_overrides(args.params_file, "sim", extra)
    return spin_node(SimNode, None, parameter_overrides=overrides)
