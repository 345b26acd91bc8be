"""o4a bringup: start the navigation nodes (and optionally the simulator) in one process,
with the same nodes and parameter files as launch/navigation.launch.py and
launch/sim_navigation.launch.py, for machines without `ros2 launch`."""
from __future__ import annotations

import argparse

HELP = "start collision_checker, navigator, base_controller (and with --sim the simulator) in one process"

EXAMPLES = """examples:
  o4a bringup --sim --world two_rooms         # stack + simulator; then `o4a goal FRONT.png REAR.png`
  o4a bringup --model models/my_model          # on a robot: its drivers publish the cameras, scan, odom
  o4a bringup --sim --set navigator.stop_threshold=3.0 --duration 60
"""
RUNS_SIMULATOR = True   # the CLI ends the help with cli.WHICH_SIM

def add_arguments(p) -> None:
    p.add_argument("--sim", action="store_true", help="also start the simulator (sim node, config/sim.yaml)")
    p.add_argument("--params", action="append", default=None, metavar="YAML",
                   help="ROS 2 parameter file(s), later ones win (default: config/navigation.yaml, "
                        "plus config/sim.yaml with --sim)")
    p.add_argument("--model", metavar="DIR", help="navigator model_path (default: from the parameter file)")
    p.add_argument("--world", metavar="NAME", help="sim world (with --sim)")
    p.add_argument("--seed", type=int, help="sim seed (with --sim)")
    p.add_argument("--set", action="append", default=[], metavar="NODE.PARAM=VALUE",
                   help="override one parameter, e.g. --set navigator.stop_threshold=3.0 (YAML value syntax)")
    p.add_argument("--duration", type=float, default=0.0, metavar="S",
                   help="stop after S seconds (default: until Ctrl-C / SIGTERM)")
    p.add_argument("--threads", type=int, default=1,
                   help="executor threads of the navigation nodes (default 1: a SingleThreadedExecutor; on a "
                        "2-core machine rclpy's MultiThreadedExecutor starves the simulator and the controller)")
    p.add_argument("--namespace", default="", metavar="NS",
                   help="ROS namespace for all nodes and their (relative) topics, e.g. /robot1")
    p.add_argument("--ros-args", dest="ros_args", nargs=argparse.REMAINDER, default=[], metavar="ARGS",
                   help="ROS arguments for every node, last on the line, as after `ros2 run ... --ros-args`: "
                        "e.g. --ros-args -r scan:=base_scan -r odom:=wheel_odom --log-level debug")


def run(args) -> int:
    import sys
    import threading
    import time

    from o4a_nav.errors import UserError

    if args.duration < 0:
        raise UserError(f"--duration must be >= 0 (got {args.duration})")
    if (args.world or args.seed is not None) and not args.sim:
        raise UserError("--world and --seed need --sim")
    from o4a_nav.nodes._common import stop_on_signals
    from o4a_nav.nodes.stack import SIM_NODES, init_ros, make_node, plan, stop_nodes, with_lifecycle_manager

    todo = with_lifecycle_manager(plan(sim=args.sim, params=args.params, model=args.model, world=args.world,
                                       seed=args.seed, sets=args.set, namespace=args.namespace))

    import rclpy
    from rclpy.executors import MultiThreadedExecutor, SingleThreadedExecutor
    from rclpy.signals import SignalHandlerOptions

    with stop_on_signals() as stop:
        init_ros(args.ros_args, signal_handler_options=SignalHandlerOptions.NO)
        nodes = []
        spinner = None
        # The navigation nodes share one executor in a background thread (single-threaded by
        # default: the navigate action is a coroutine); the simulator gets its own, spun here
        # in the main thread, so its timer never waits behind a decision.
        executor = (SingleThreadedExecutor() if int(args.threads) <= 1
                    else MultiThreadedExecutor(num_threads=int(args.threads)))
        main_executor = SingleThreadedExecutor()
        try:
            for name, module, cls, overrides in todo:
                nodes.append(make_node(name, module, cls, overrides, args.namespace))
                (main_executor if name in SIM_NODES else executor).add_node(nodes[-1])
            print(f"o4a bringup: running {', '.join(n for n, *_ in todo)}; Ctrl-C to stop", file=sys.stderr,
                  flush=True)
            spinner = threading.Thread(target=executor.spin, name="o4a-bringup-executor", daemon=True)
            spinner.start()
            t_end = time.monotonic() + args.duration if args.duration > 0 else float("inf")
            while not stop.is_set() and time.monotonic() < t_end and spinner.is_alive():
                main_executor.spin_once(timeout_sec=0.05)
            return 0
        finally:
            executor.shutdown(timeout_sec=2.0)
            main_executor.shutdown(timeout_sec=2.0)
            if spinner is not None:
                spinner.join(timeout=5.0)
            stop_nodes(nodes)
            if rclpy.ok():
                rclpy.shutdown()
