"""o4a bringup: start the navigation nodes (and optionally the simulator) in one process,
with the same nodes and parameter files as launch/navigation.launch.py and
launch/sim_navigation.launch.py, for machines without `ros2 launch`."""
from __future__ import annotations

import argparse

HELP = "start collision_checker, navigator, base_controller (and with --sim the simulator) in one process"

# node name -> (module, class); the order of the launch files
NAV_NODES = {
    "collision_checker": ("o4a_nav.nodes.collision_checker", "CollisionCheckerNode"),
    "navigator": ("o4a_nav.nodes.navigator", "NavigatorNode"),
    "base_controller": ("o4a_nav.nodes.base_controller", "BaseControllerNode"),
}
SIM_NODES = {"sim": ("o4a_nav.nodes.sim", "SimNode")}
MANAGER = ("lifecycle_manager", "o4a_nav.nodes.lifecycle_manager", "LifecycleManagerNode")


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


def init_ros(ros_args: list[str], **kwargs) -> None:
    """rclpy.init with `--ros-args ...` for every node of the process (remaps, -p, log
    level); bad arguments are one UserError line."""
    import rclpy

    from o4a_nav.errors import UserError

    try:
        rclpy.init(args=["o4a", "--ros-args", *ros_args] if ros_args else None, **kwargs)
    except Exception as exc:  # rcl reports malformed arguments as RCLError / ValueError
        reason = str(exc).split(", at /")[0]   # rcl appends source locations
        raise UserError(f"--ros-args {' '.join(ros_args)}: {reason}") from None


def make_node(name: str, module: str, cls: str, overrides: list, namespace: str | None = None, context=None):
    """One node of a plan() entry (rclpy must be initialised)."""
    import importlib

    kw = {"namespace": namespace} if namespace else {}
    if context is not None:
        kw["context"] = context
    return getattr(importlib.import_module(module), cls)(node_name=name, parameter_overrides=overrides, **kw)


def stop_nodes(nodes: list) -> None:
    """Leave the robot standing (each node's shutdown(): STOP, zero cmd_vel), newest first,
    then destroy the nodes. Call after the executors have stopped."""
    for n in reversed(nodes):
        sd = getattr(n, "shutdown", None)
        if sd is not None:
            try:
                sd()
            except Exception:
                pass
    for n in nodes:
        n.destroy_node()


def plan(args) -> list[tuple[str, str, str, list]]:
    """[(node name, module, class, rclpy Parameter overrides)] from the arguments (no rclpy
    context needed; raises UserError for bad files or --set syntax)."""
    import yaml

    from o4a_nav.errors import UserError
    from o4a_nav.nodes._common import node_overrides
    from o4a_nav.params import load_param_file

    from o4a_nav.package_data import data_path

    cfg = data_path("config")
    files = list(args.params) if args.params else [cfg / "navigation.yaml"] + ([cfg / "sim.yaml"] if args.sim else [])
    for f in files:
        load_param_file(f)  # validates early, names the file
    nodes = dict(NAV_NODES)
    if args.sim:
        nodes.update(SIM_NODES)
    extra: dict[str, dict] = {name: {} for name in nodes}
    if args.model:
        extra["navigator"]["model_path"] = str(args.model)
    if args.sim and args.world:
        extra["sim"]["world"] = args.world
    if args.sim and args.seed is not None:
        extra["sim"]["seed"] = int(args.seed)
    for item in args.set:
        key, sep, value = item.partition("=")
        node, dot, param = key.partition(".")
        if not sep or not dot or not param:
            raise UserError(f"--set {item!r}: expected NODE.PARAM=VALUE")
        if node not in nodes:
            raise UserError(f"--set {item!r}: no node {node!r} here (nodes: {', '.join(nodes)})")
        try:
            extra[node][param] = yaml.safe_load(value)
        except yaml.YAMLError as exc:
            raise UserError(f"--set {item!r}: bad value ({exc})") from None
    out = []
    for name, (module, cls) in nodes.items():
        out.append((name, module, cls, node_overrides(files, name, extra[name], getattr(args, "namespace", ""))))
    # the navigator's p+ head follows the simulated world unless it was set explicitly
    if args.sim:
        sim_world = next((p.value for n, _, _, ov in out if n == "sim" for p in ov if p.name == "world"), None)
        nav_ov = next(ov for n, _, _, ov in out if n == "navigator")
        if sim_world and not any(p.name == "world" and p.value for p in nav_ov) and "world" not in extra["navigator"]:
            from rclpy.parameter import Parameter

            nav_ov[:] = [p for p in nav_ov if p.name != "world"] + [Parameter("world", value=str(sim_world))]
    # a simulator that publishes /clock (lockstep implies it): every other node runs on simulated time
    sim_clock = any(p.name in ("publish_clock", "lockstep") and p.value is True
                    for n, _, _, ov in out if n == "sim" for p in ov)
    if sim_clock:
        from rclpy.parameter import Parameter

        for n, _, _, ov in out:
            if n != "sim" and not any(p.name == "use_sim_time" for p in ov):
                ov.append(Parameter("use_sim_time", value=True))
    return out


def with_lifecycle_manager(todo: list) -> list:
    """The plan with the managed nodes waiting (autostart false, unless --set) for a
    lifecycle_manager that brings them up, as the launch files do."""
    from rclpy.parameter import Parameter

    managed = [name for name, *_ in todo if name in NAV_NODES]
    for name, _, _, overrides in todo:
        if name in managed and not any(p.name == "autostart" for p in overrides):
            overrides.append(Parameter("autostart", value=False))
    return todo + [(*MANAGER, [Parameter("node_names", value=managed), Parameter("autostart", value=True)])]


def run(args) -> int:
    import signal
    import sys
    import threading
    import time

    from o4a_nav.errors import UserError

    if args.duration < 0:
        raise UserError(f"--duration must be >= 0 (got {args.duration})")
    if (args.world or args.seed is not None) and not args.sim:
        raise UserError("--world and --seed need --sim")
    todo = with_lifecycle_manager(plan(args))

    import rclpy
    from rclpy.executors import MultiThreadedExecutor, SingleThreadedExecutor
    from rclpy.signals import SignalHandlerOptions

    stop = {"flag": False}

    def _stop(signum, frame):
        stop["flag"] = True

    old = {s: signal.signal(s, _stop) for s in (signal.SIGINT, signal.SIGTERM)}
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
        print(f"o4a bringup: running {', '.join(n for n, *_ in todo)}; Ctrl-C to stop", file=sys.stderr, flush=True)
        spinner = threading.Thread(target=executor.spin, name="o4a-bringup-executor", daemon=True)
        spinner.start()
        t_end = time.monotonic() + args.duration if args.duration > 0 else float("inf")
        while not stop["flag"] and time.monotonic() < t_end and spinner.is_alive():
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
        for s, h in old.items():
            signal.signal(s, h)
