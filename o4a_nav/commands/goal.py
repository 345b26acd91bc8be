"""o4a goal: send an image goal to a running navigator (o4a/navigate action) and print
the outcome."""
from __future__ import annotations

HELP = "send a goal (front + rear image files, or a bag and a time) to a running navigator and print the outcome"


def add_arguments(p) -> None:
    p.add_argument("images", nargs="*", metavar="IMAGE", help="FRONT.png REAR.png (any size; colour or grey)")
    p.add_argument("--bag", metavar="DIR", help="take the goal images from a rosbag2 folder instead")
    p.add_argument("--time", type=float, default=None, metavar="S",
                   help="with --bag: seconds from the start of the bag (the nearest front and rear images)")
    p.add_argument("--front-topic", default="/front_camera/image_raw", help="front image topic in the bag")
    p.add_argument("--rear-topic", default="/rear_camera/image_raw", help="rear image topic in the bag")
    p.add_argument("--max-steps", type=int, default=0, help="decision budget (0: the navigator's max_steps)")
    p.add_argument("--timeout", type=float, default=0.0, metavar="S",
                   help="give up (and cancel the goal) after S seconds (default: wait for the result)")
    p.add_argument("--server-timeout", type=float, default=10.0, metavar="S",
                   help="how long to wait for the navigator's action server (default 10)")
    p.add_argument("--quiet", action="store_true", help="no per-step feedback lines")
    p.add_argument("--namespace", default="", metavar="NS", help="namespace of the navigator (as in o4a bringup)")


def load_image_file(path) -> "np.ndarray":  # noqa: F821
    """Image file -> (H, W, 3) uint8 RGB. UserError names the file."""
    from pathlib import Path

    import cv2

    from o4a_nav.errors import ImageFormatError, UserError

    path = Path(path)
    if not path.is_file():
        raise UserError(f"image file {path} does not exist")
    img = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if img is None or img.size == 0:
        raise ImageFormatError(f"image file {path} is not a readable image")
    return cv2.cvtColor(img, cv2.COLOR_BGR2RGB)


def make_goal(front, rear, stamp: float, max_steps: int = 0):
    """NavigateToImage goal from two RGB images (any size)."""
    from o4a_msgs.action import NavigateToImage
    from o4a_nav import ros_conv, topics

    return NavigateToImage.Goal(front=ros_conv.rgb_to_image_msg(front, stamp, topics.FRONT_CAMERA_FRAME),
                                rear=ros_conv.rgb_to_image_msg(rear, stamp, topics.REAR_CAMERA_FRAME),
                                max_steps=int(max_steps))


def images_from_bag(bag, t_rel: float, front_topic: str, rear_topic: str):
    """Nearest front and rear images to `t_rel` seconds after the bag's first message
    (sensor_msgs/Image, or CompressedImage also found on `<topic>/compressed`)."""
    from o4a_nav import bagio, ros_conv
    from o4a_nav.errors import BagError

    present = bagio.topics(bag)
    front_topic, rear_topic = (t if t in present or t + "/compressed" not in present else t + "/compressed"
                               for t in (front_topic, rear_topic))   # image_transport's compressed topic
    best: dict = {}
    t0 = None
    for topic, _, t, msg in bagio.read(bag, topics=[front_topic, rear_topic]):
        t0 = t if t0 is None else t0
        d = abs((t - t0) - t_rel)
        if topic not in best or d < best[topic][0]:
            best[topic] = (d, msg, t - t0)
    for topic in (front_topic, rear_topic):
        if topic not in best:
            raise BagError(f"bag {bag} has no messages on {topic}")
    return (ros_conv.image_msg_to_rgb(best[front_topic][1]), ros_conv.image_msg_to_rgb(best[rear_topic][1]),
            best[front_topic][2])


def run(args) -> int:
    import sys
    import time

    from o4a_nav.errors import UserError

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
    from rclpy.action import ActionClient
    from rclpy.executors import SingleThreadedExecutor

    from o4a_msgs.action import NavigateToImage
    from o4a_nav import topics

    rclpy.init()
    node = rclpy.create_node("o4a_goal", namespace=args.namespace or "")
    executor = SingleThreadedExecutor()
    executor.add_node(node)
    client = ActionClient(node, NavigateToImage, topics.NAVIGATE)
    try:
        if not client.wait_for_server(timeout_sec=args.server_timeout):
            raise UserError(f"no navigator answers on action {topics.NAVIGATE} after {args.server_timeout} s "
                            f"(start one with `o4a bringup` or `ros2 launch o4a_nav navigation.launch.py`)")
        goal = make_goal(front, rear, node.get_clock().now().nanoseconds * 1e-9, args.max_steps)

        from o4a_nav.types import Action, NavState

        def on_feedback(msg):
            if not args.quiet:
                fb = msg.feedback
                action = Action(fb.last_action).name if fb.last_action in set(Action) else str(fb.last_action)
                state = NavState(fb.state).name if fb.state in set(NavState) else str(fb.state)
                print(f"step {fb.step:4d}  d_h {fb.goal_distance:8.3f}  {action:12s} {state}", flush=True)

        send = client.send_goal_async(goal, feedback_callback=on_feedback)
        executor.spin_until_future_complete(send, timeout_sec=args.server_timeout)
        handle = send.result()
        if handle is None or not handle.accepted:
            print("goal rejected by the navigator", file=sys.stderr)
            return 1
        result_future = handle.get_result_async()
        t_end = time.monotonic() + args.timeout if args.timeout > 0 else float("inf")
        try:
            while not result_future.done() and time.monotonic() < t_end:
                executor.spin_once(timeout_sec=0.1)
        except KeyboardInterrupt:
            t_end = 0.0
        if not result_future.done():
            print("timeout or interrupt: cancelling the goal", file=sys.stderr)
            cancel = handle.cancel_goal_async()
            executor.spin_until_future_complete(cancel, timeout_sec=5.0)
            executor.spin_until_future_complete(result_future, timeout_sec=5.0)
            if not result_future.done():
                return 1
        res = result_future.result().result
        print(f"{'SUCCESS' if res.success else 'FAILED'}: {res.reason}; steps {res.steps} "
              f"(forwards {res.forwards}, rotations {res.rotations}), final d_h {res.final_goal_distance:.3f}")
        return 0 if res.success else 1
    finally:
        client.destroy()
        executor.shutdown()
        node.destroy_node()
        if rclpy.ok():
            rclpy.shutdown()
