"""o4a record: write ROS 2 topics into a rosbag2 folder (MCAP or sqlite3)."""
from __future__ import annotations

from pathlib import Path

HELP = "record topics into a rosbag2 folder (MCAP by default), like `ros2 bag record`"

EXAMPLES = """examples:
  o4a record -a -o data/bags/run1              # every topic, until Ctrl-C
  o4a record front_camera/image_raw rear_camera/image_raw scan odom o4a/action -o data/bags/run2
  o4a record -a -o data/bags/nav1 --goal front.png rear.png   # a navigation run, for replay-check
"""


def add_arguments(p) -> None:
    p.add_argument("topics", nargs="*", metavar="TOPIC", help="topics to record (or use --topics / --all)")
    p.add_argument("--topics", dest="topic_opt", nargs="+", default=[], metavar="TOPIC",
                   help="topics to record (same as the positional list)")
    p.add_argument("-a", "--all", action="store_true", help="record every topic (except /rosout, /parameter_events)")
    p.add_argument("-o", "--out", required=True, metavar="DIR", help="output bag folder (must not exist)")
    p.add_argument("-s", "--storage", choices=["mcap", "sqlite3"], default="mcap",
                   help="storage format (default mcap, as ros2 bag on Jazzy)")
    p.add_argument("-d", "--duration", type=float, default=0.0, metavar="S",
                   help="stop after S seconds (default: until Ctrl-C / SIGTERM)")
    p.add_argument("--namespace", default="", metavar="NS",
                   help="namespace for relative topic names and the --goal topics (as o4a bringup --namespace)")
    p.add_argument("--goal", nargs=2, default=None, metavar=("FRONT", "REAR"),
                   help="also write these goal images (PNG/JPEG files, as given to the navigator) on "
                        "o4a/goal/front_image and o4a/goal/rear_image at the start, for replay-check")
    p.add_argument("-q", "--quiet", action="store_true", help="no running message counter")
    p.add_argument("--use-sim-time", action="store_true",
                   help="stamp messages with /clock time instead of wall time")
    p.add_argument("--flush-period", type=float, default=1.0, metavar="S",
                   help="make the messages durable on disk every S seconds (closed MCAP chunk / sqlite3 commit), "
                        "so a killed recorder loses at most the last S seconds; `o4a bag repair` recovers "
                        "such a bag (default 1)")
    p.add_argument("--transport", choices=["auto", "udp", "default"], default="auto",
                   help="how large messages reach the recorder with Fast DDS: auto/udp receive over UDP with a "
                        "large socket buffer instead of the publishers' shared memory, which drops large "
                        "best-effort images (auto: unless a Fast DDS profile of yours is set); default: as the "
                        "middleware is configured (docs/BAGS.md)")


def run(args) -> int:
    import sys

    from o4a_nav.errors import UserError

    ns = "/" + args.namespace.strip("/") if args.namespace.strip("/") else ""
    topics = [t if t.startswith("/") else f"{ns}/{t}" for t in list(args.topics) + list(args.topic_opt)]
    if args.all and topics:
        raise UserError("give either topics or --all, not both")
    if not args.all and not topics:
        raise UserError("no topics to record: name them (o4a record scan front_camera/image_raw ...) or use --all")
    if args.duration < 0:
        raise UserError(f"--duration must be >= 0 (got {args.duration})")
    if not args.flush_period > 0:
        raise UserError(f"--flush-period must be > 0 (got {args.flush_period})")

    import os

    from o4a_nav.bagtools.transport import recorder_environment

    dds_env, notes = recorder_environment(args.transport)   # before rclpy starts the middleware
    saved = {k: os.environ.get(k) for k in dds_env}
    os.environ.update(dds_env)
    for note in notes:
        print(f"note: {note}", file=sys.stderr)
    try:
        return _record(args, topics, ns)
    finally:
        for k, v in saved.items():
            os.environ.pop(k) if v is None else os.environ.__setitem__(k, v)
        for path in {v for v in dds_env.values() if v.endswith(".xml")}:
            Path(path).unlink(missing_ok=True)


def _record(args, topics, ns) -> int:
    import sys
    import time

    import rclpy
    from rclpy.executors import SingleThreadedExecutor
    from rclpy.signals import SignalHandlerOptions
    from tqdm import tqdm

    from o4a_nav import bagio
    from o4a_nav.errors import UserError
    from o4a_nav.goal_images import load_image_file   # the one image-file reader
    from o4a_nav.nodes._common import now_sec, stop_on_signals
    from o4a_nav.nodes.recorder import Recorder

    goal = [load_image_file(f) for f in args.goal] if args.goal else None
    with stop_on_signals() as stop:
        writer = bagio.BagWriter(args.out, storage=args.storage, flush_period=args.flush_period)
        writer.__enter__()
        rclpy.init(signal_handler_options=SignalHandlerOptions.NO)
        node = None
        try:
            node = Recorder(writer, None if args.all else topics, use_sim_time=args.use_sim_time)
            if goal is not None:
                from o4a_nav.bagtools import navrun

                t0 = now_sec(node)
                for topic, img in zip((ns + navrun.GOAL_FRONT, ns + navrun.GOAL_REAR), goal):
                    writer.connection(topic, "sensor_msgs/msg/Image", latched=True)
                    writer.write(topic, "sensor_msgs/msg/Image", t0, bagio.image_msg(img, t0, "goal"))
            executor = SingleThreadedExecutor()
            executor.add_node(node)
            print(f"recording to {args.out} ({args.storage}); Ctrl-C to stop", file=sys.stderr, flush=True)
            t_end = time.monotonic() + args.duration if args.duration > 0 else float("inf")
            with tqdm(unit="msg", desc="record", disable=args.quiet, file=sys.stderr) as bar:
                while not stop.is_set() and time.monotonic() < t_end and node.error is None:
                    executor.spin_once(timeout_sec=0.05)
                    writer.maybe_flush()
                    bar.update(sum(node.counts.values()) - bar.n)
            if node.error is not None:
                raise UserError(f"recording to {args.out} failed: {node.error}")
            executor.spin_once(timeout_sec=0.05)     # lost-message events still queued
            counts = dict(node.counts)
            types = dict(node.types)
            lost = dict(node.lost)
        finally:
            if node is not None:
                node.destroy_node()
            rclpy.try_shutdown()
            writer.close()
    total = sum(counts.values())
    print(f"wrote {total} messages to {args.out}", file=sys.stderr)
    for t in sorted(counts):
        drop = f", {lost[t]} lost before reaching the recorder" if lost.get(t) else ""
        print(f"  {t}: {counts[t]} ({types.get(t, 'never published')}){drop}", file=sys.stderr)
    for t in sorted(t for t, n in lost.items() if n):
        print(f"warning: {lost[t]} messages on {t} were lost in transport ({lost[t] / (lost[t] + counts[t]):.0%} of "
              f"what was published); see `o4a record --transport` in docs/BAGS.md", file=sys.stderr)
    if not any(lost.values()):
        print("no message reported lost by the middleware", file=sys.stderr)
    for t in sorted(t for t, n in counts.items() if n == 0):
        print(f"warning: no message received on topic {t}", file=sys.stderr)
    return 0
