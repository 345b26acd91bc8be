"""o4a replay-check: replay a recorded navigation run through the real navigator and
collision checker nodes and compare their decisions with the recorded ones."""
from __future__ import annotations

HELP = "replay a recorded navigation run through the navigator and compare its decisions"

EXAMPLES = """examples:
  o4a replay-check data/bags/nav1 --model models/o4a_default
  o4a replay-check data/bags/nav1 --model models/o4a_default --min-agreement 99 --report runs/nav1.json
"""


def add_arguments(p) -> None:
    p.add_argument("bag", metavar="BAG", help="navigation-run bag (layout: docs/BAGS.md)")
    p.add_argument("--model", required=True, metavar="DIR", help="model directory (o4a train output)")
    p.add_argument("--namespace", default="", metavar="NS",
                   help="namespace of the recorded topics (e.g. /robot1 for /robot1/scan, ...)")
    p.add_argument("--world", default="",
                   help="p+ head to use when the model has several worlds (default: the bag's o4a/world_name "
                        "when the model has a head for it)")
    p.add_argument("--params-file", default=None, metavar="YAML",
                   help="ROS 2 parameter file for the navigator / collision_checker (as for the nodes)")
    p.add_argument("--safety-params", default=None, metavar="YAML",
                   help="ROS 2 parameter file whose collision_checker (or /**) section gives the robot's "
                        "true footprint for the safety check (default: the built-in footprint); "
                        "independent of --params-file, so a misconfigured stack is caught")
    p.add_argument("--min-agreement", type=float, default=0.0, metavar="PCT",
                   help="fail when fewer than PCT %% of the decisions agree (default 0: report only; "
                        "100 for a strict regression check)")
    p.add_argument("--report", default=None, metavar="FILE", help="write the per-step report as JSON")
    p.add_argument("--threads", type=int, default=1, help="torch threads (default 1, deterministic)")
    p.add_argument("--seed", type=int, default=0, help="torch / numpy seed (default 0)")
    p.add_argument("--timeout", type=float, default=30.0, metavar="S",
                   help="give up when the stack answers a step in no S seconds (default 30)")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")


def load_run(bag, namespace: str = ""):
    """The NavRun of a bag, as rclpy messages (so the driver can republish them). With a
    namespace, the bag's topics are looked up under it (/robot1/scan for scan)."""
    from rclpy.serialization import deserialize_message

    from o4a_nav import bagio
    from o4a_nav.bagtools import navrun
    from o4a_nav.errors import BagError
    from o4a_nav.nodes.player import msg_class
    from o4a_nav.topics import absolute

    info = bagio.topics(bag)
    prefix = absolute(namespace) if namespace.strip("/") else ""
    wanted = {absolute(t)[len(prefix):]: t for t in info
              if absolute(t).startswith(prefix + "/")}
    compressed = {}
    for name in (navrun.FRONT, navrun.REAR):    # cameras recorded through image_transport's compressed plugin
        if (name not in wanted or info[wanted[name]][1] == 0) and name + "/compressed" in wanted:
            wanted[name] = wanted.pop(name + "/compressed")
        compressed[name] = name in wanted and info[wanted[name]][0] == "sensor_msgs/msg/CompressedImage"
    if compressed[navrun.FRONT] != compressed[navrun.REAR]:
        raise BagError(f"bag {bag}: one camera is recorded compressed and the other raw; replay-check needs "
                       f"both the same (the navigator's image_transport applies to both)")
    for name in navrun.REQUIRED:
        if name not in wanted or info[wanted[name]][1] == 0:
            have = ", ".join(sorted(absolute(t) for t in info)) or "none"
            raise BagError(f"bag {bag} has no messages on topic {prefix}{name}, which replay-check needs "
                           f"(topics in the bag: {have})")
    names = [wanted[n] for n in (*navrun.REQUIRED, navrun.MOTION_STATE, navrun.STATUS) if n in wanted]
    classes = {t: msg_class(info[t][0], absolute(t)) for t in names}
    local = {t: n for n, t in wanted.items()}
    for t in names:
        expected = {navrun.ACTION: "o4a_msgs/msg/DiscreteAction", navrun.SCAN: "sensor_msgs/msg/LaserScan",
                    navrun.MOTION_STATE: "o4a_msgs/msg/MotionState",
                    navrun.STATUS: "o4a_msgs/msg/NavigatorStatus"}.get(local[t], "sensor_msgs/msg/Image")
        if local[t] in (navrun.FRONT, navrun.REAR) and compressed[local[t]]:
            expected = "sensor_msgs/msg/CompressedImage"
        if info[t][0] != expected:
            raise BagError(f"bag {bag}: topic {absolute(t)} has type {info[t][0]}, expected {expected}")

    def records():
        for topic, msgtype, t, raw in bagio.read(bag, topics=names, raw=True):
            try:
                msg = deserialize_message(raw, classes[topic])
            except Exception as exc:
                raise BagError(f"bag {bag}: a {msgtype} message on topic {absolute(topic)} at "
                               f"t={t:.3f}s is corrupted and cannot be decoded ({exc})") from exc
            yield local[topic], t, msg

    run = navrun.extract_run(records(), str(bag))
    run.image_transport = "compressed" if compressed[navrun.FRONT] else "raw"
    return run


def recorded_world(bag, namespace: str = "") -> str:
    """The first o4a/world_name in the bag ('' when there is none)."""
    from o4a_nav import bagio, topics

    prefix = topics.absolute(namespace) if namespace.strip("/") else ""
    name = prefix + topics.absolute(topics.WORLD_NAME)
    for t in bagio.topics(bag):
        if topics.absolute(t) == name:
            for _, _, _, msg in bagio.read(bag, topics=[t]):
                return str(msg.data)
    return ""


def run(args) -> int:
    import sys

    from o4a_nav.errors import UserError

    if not 0.0 <= args.min_agreement <= 100.0:
        raise UserError(f"--min-agreement must be a percentage in 0..100 (got {args.min_agreement})")
    if args.threads < 1:
        raise UserError(f"--threads must be >= 1 (got {args.threads})")

    import rclpy
    from rclpy.signals import SignalHandlerOptions
    from tqdm import tqdm

    from o4a_nav import ros_conv
    from o4a_nav.bagtools import navrun
    from o4a_nav.learning.model_io import load_model
    from o4a_nav.types import Action

    model = load_model(args.model)        # a clear ModelLoadError before anything starts
    if not args.world and len(model.worlds) > 1:
        recorded = recorded_world(args.bag, args.namespace)
        if recorded in model.worlds:
            args.world = recorded
    del model
    rclpy.init(signal_handler_options=SignalHandlerOptions.NO)
    stack = None
    try:
        the_run = load_run(args.bag, args.namespace)
        import numpy as np
        import torch

        torch.set_num_threads(args.threads)     # deterministic: fixed threads and seeds
        torch.manual_seed(args.seed)
        np.random.seed(args.seed)
        stack = Stack(args, the_run.image_transport)
        reference = safety_checker(args.safety_params)
        forward_free = [Action.FORWARD in reference.free_actions(ros_conv.scan_msg_to_data(s.scan)).free
                        for s in the_run.steps]
        with tqdm(total=len(the_run.steps), unit="step", desc="replay-check", disable=args.quiet,
                  file=sys.stderr) as bar:
            replayed = stack.driver.run(the_run, progress=bar)
    finally:
        if stack is not None:
            stack.close()
        rclpy.try_shutdown()
    report = navrun.compare(the_run, replayed, forward_free, bag=str(args.bag), model=str(args.model),
                            min_agreement=args.min_agreement / 100.0)
    print(report.summary())
    if args.report:
        from pathlib import Path

        Path(args.report).write_text(report.to_json())
    return 0 if report.passed else 1


def safety_checker(path):
    """The one CollisionChecker with the robot's true footprint: built-in defaults, or the
    collision_checker / `/**` section of a ROS 2 parameter file."""
    from dataclasses import fields

    from o4a_nav.nav.collision import CollisionChecker, FootprintParams
    from o4a_nav.params import node_parameters

    if not path:
        return CollisionChecker()
    merged = node_parameters([path], "collision_checker")
    names = {f.name for f in fields(FootprintParams)}
    return CollisionChecker(FootprintParams.from_dict({k: v for k, v in merged.items() if k in names}))


class Stack:
    """The navigator and collision checker nodes (in this process, on simulated time) and
    the step driver, spun by one executor thread.

    Everything lives in a private namespace (/o4a_replay_check_<pid>, /clock remapped
    into it), so a replay never reaches a robot or simulator running on the same ROS
    domain: its images, clock and motion states stay here, and its DiscreteActions are
    never seen by a real base controller."""

    def __init__(self, args, image_transport: str = "raw"):
        import os
        import threading

        from rclpy.executors import SingleThreadedExecutor

        from o4a_nav.errors import ModelLoadError
        from o4a_nav.nodes._common import node_overrides
        from o4a_nav.nodes.collision_checker import CollisionCheckerNode
        from o4a_nav.nodes.navigator import NavigatorNode
        from o4a_nav.nodes.player import StepDriver

        self.namespace = f"/o4a_replay_check_{os.getpid()}"
        private = {"namespace": self.namespace,
                   "cli_args": ["--ros-args", "-r", f"/clock:={self.namespace}/clock"]}
        files = [args.params_file] if args.params_file else []
        nav_extra = {"use_sim_time": True, "model_path": str(args.model), "torch_threads": int(args.threads),
                     "image_transport": image_transport}
        if args.world:
            nav_extra["world"] = args.world
        self.nodes = []
        try:
            self.checker_node = CollisionCheckerNode(
                parameter_overrides=node_overrides(files, "collision_checker", {"use_sim_time": True}), **private)
            self.nodes.append(self.checker_node)
            self.nav_node = NavigatorNode(parameter_overrides=node_overrides(files, "navigator", nav_extra), **private)
            self.nodes.append(self.nav_node)
            if self.nav_node.runtime.nav is None:
                raise ModelLoadError(self.nav_node.runtime.model_error)
            self.driver = StepDriver(stale_timeout=float(self.nav_node.get_parameter("stale_timeout").value),
                                     timeout=args.timeout, image_transport=image_transport, **private)
            self.nodes.append(self.driver)
        except BaseException:
            for n in self.nodes:
                n.destroy_node()
            raise
        # one thread: the driver waits from the caller's thread, and rclpy's
        # MultiThreadedExecutor starves itself on a 2-core machine
        self.executor = SingleThreadedExecutor()
        for n in self.nodes:
            self.executor.add_node(n)
        self._thread = threading.Thread(target=self.executor.spin, daemon=True)
        self._thread.start()
        try:
            self.driver.wait_ready(timeout=args.timeout)
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        self.executor.shutdown(timeout_sec=2.0)
        self._thread.join(timeout=2.0)
        self.nav_node.shutdown()
        for n in self.nodes:
            n.destroy_node()
