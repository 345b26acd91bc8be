"""o4a replay: publish a rosbag2 folder's messages on their topics."""
from __future__ import annotations

HELP = "play a rosbag2 folder (MCAP or sqlite3) on its topics, like `ros2 bag play`"

EXAMPLES = """examples:
  o4a replay data/bags/run1
  o4a replay data/bags/run1 --rate 2 --topics scan odom --clock
  o4a replay data/bags/run1 --remap scan:=/robot1/scan
"""


def add_arguments(p) -> None:
    p.add_argument("bag", metavar="BAG", help="rosbag2 folder (with metadata.yaml)")
    p.add_argument("-r", "--rate", default="1", metavar="R",
                   help="playback speed factor (2 = twice as fast; 'max' = as fast as possible)")
    p.add_argument("--topics", nargs="+", default=None, metavar="TOPIC", help="only these topics")
    p.add_argument("--remap", nargs="+", default=[], metavar="FROM:=TO",
                   help="publish topic FROM on TO (e.g. scan:=/robot1/scan)")
    p.add_argument("--clock", nargs="?", const=40.0, default=0.0, type=float, metavar="HZ",
                   help="publish /clock (rosgraph_msgs/Clock) at HZ (default 40) with the bag's time, "
                        "for nodes running with use_sim_time")
    p.add_argument("--delay", type=float, default=1.0, metavar="S",
                   help="wait up to S seconds for subscribers to be discovered before playing (default 1)")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")


def run(args) -> int:
    import sys
    import time

    from o4a_nav.bagtools.schedule import parse_rate
    from o4a_nav.errors import UserError

    rate = parse_rate(args.rate)
    if args.clock < 0:
        raise UserError(f"--clock rate must be > 0 (got {args.clock})")
    if args.delay < 0:
        raise UserError(f"--delay must be >= 0 (got {args.delay})")

    import rclpy
    from rclpy.signals import SignalHandlerOptions
    from tqdm import tqdm

    from o4a_nav.nodes._common import stop_on_signals
    from o4a_nav.nodes.player import Player, wait_for_subscribers

    with stop_on_signals() as stop:
        rclpy.init(signal_handler_options=SignalHandlerOptions.NO)
        node = None
        try:
            node = Player(args.bag, topics=args.topics, rate=rate, clock_hz=args.clock, remaps=args.remap)
            wait_for_subscribers(node, args.delay)
            with tqdm(total=node.total, unit="msg", desc="replay", disable=args.quiet, file=sys.stderr) as bar:
                counts = node.play(should_stop=stop.is_set, progress=bar)
            time.sleep(0.2)   # let reliable transports deliver the last messages
        finally:
            if node is not None:
                node.destroy_node()
            rclpy.try_shutdown()
    print(f"published {sum(counts.values())} messages from {args.bag}"
          + (" (interrupted)" if stop.is_set() else ""), file=sys.stderr)
    for t in sorted(counts):
        print(f"  {t}: {counts[t]}", file=sys.stderr)
    return 0
