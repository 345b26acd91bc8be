"""o4a goal: send an image goal to a running navigator (o4a/navigate action) and print
the outcome."""
from __future__ import annotations

HELP = "send a goal (front + rear image files, or a bag and a time) to a running navigator and print the outcome"

EXAMPLES = """examples:
  o4a goal front.png rear.png                  # images of the place, seen by the robot's two cameras
  o4a goal --bag data/bags/run1 --time 42.5    # the views recorded 42.5 s into a bag
  o4a goal front.png rear.png --timeout 120 --namespace /robot1
"""


def add_arguments(p) -> None:
    p.add_argument("images", nargs="*", metavar="IMAGE", help="FRONT.png REAR.png (any size; colour or grey)")
    p.add_argument("--bag", metavar="DIR", help="take the goal images from a rosbag2 folder instead")
    p.add_argument("--time", type=float, default=None, metavar="S",
                   help="with --bag: seconds from the start of the bag (the nearest front and rear images)")
    from o4a_nav import topics

    p.add_argument("--front-topic", default=topics.absolute(topics.FRONT_IMAGE), help="front image topic in the bag")
    p.add_argument("--rear-topic", default=topics.absolute(topics.REAR_IMAGE), help="rear image topic in the bag")
    p.add_argument("--max-steps", type=int, default=0, help="decision budget (0: the navigator's max_steps)")
    p.add_argument("--timeout", type=float, default=0.0, metavar="S",
                   help="give up (and cancel the goal) after S seconds (default: wait for the result)")
    p.add_argument("--server-timeout", type=float, default=10.0, metavar="S",
                   help="how long to wait for the navigator's action server (default 10)")
    p.add_argument("--quiet", action="store_true", help="no per-step feedback lines")
    p.add_argument("--namespace", default="", metavar="NS", help="namespace of the navigator (as in o4a bringup)")


def run(args) -> int:
    import sys

    from o4a_nav.errors import UserError
    from o4a_nav.goal_images import images_from_bag, load_image_file

    if args.bag:
        if args.images:
            raise UserError("give either FRONT REAR image files or --bag, not both")
        if args.time is None:
            raise UserError("--bag needs --time S (seconds from the start of the bag)")
        front, rear, t_found = images_from_bag(args.bag, args.time, args.front_topic, args.rear_topic)
        print(f"goal images from {args.bag} at t = {t_found:.2f} s", file=sys.stderr)
    else:
        if len(args.images) != 2:
            raise UserError("expected two image files: FRONT REAR (or --bag DIR --time S)")
        front, rear = load_image_file(args.images[0]), load_image_file(args.images[1])
    if args.max_steps < 0:
        raise UserError("--max-steps must be >= 0")

    import rclpy
    from rclpy.executors import SingleThreadedExecutor

    from o4a_nav import topics
    from o4a_nav.nodes.goal_client import ImageGoalClient, feedback_line, result_line

    rclpy.init()
    node = rclpy.create_node("o4a_goal", namespace=args.namespace or "")
    executor = SingleThreadedExecutor()
    executor.add_node(node)
    client = ImageGoalClient(node, spin=lambda t: executor.spin_once(timeout_sec=t))
    try:
        if not client.wait_for_server(args.server_timeout):
            raise UserError(f"no navigator answers on action {topics.NAVIGATE} after {args.server_timeout} s "
                            f"(start one with `o4a bringup` or `ros2 launch o4a_nav navigation.launch.py`)")
        on_feedback = None if args.quiet else (lambda fb: print(feedback_line(fb), flush=True))
        if not client.send(front, rear, args.max_steps, feedback_callback=on_feedback, timeout=args.server_timeout):
            print("goal rejected by the navigator", file=sys.stderr)
            return 1
        try:
            done = client.wait(args.timeout if args.timeout > 0 else float("inf"))
        except KeyboardInterrupt:
            done = client.is_complete()
        if not done:
            print("timeout or interrupt: cancelling the goal", file=sys.stderr)
            if not client.cancel(5.0):
                return 1
        res = client.result()
        print(result_line(res))
        return 0 if res.success else 1
    finally:
        client.destroy()
        executor.shutdown()
        node.destroy_node()
        if rclpy.ok():
            rclpy.shutdown()
