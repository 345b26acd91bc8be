"""o4a demo: the main job on the shipped model, end to end through ROS 2.

Starts the simulator and the navigation stack (collision_checker, navigator,
base_controller) in this process with the same nodes and YAML parameters as
`o4a bringup --sim`, renders a goal image pair at a goal sampled with the benchmark's
protocol, sends it through the o4a/navigate action, prints the feedback and the outcome,
and saves a top-down picture of the trajectory (ground truth from the simulator, used
for the picture and the reported distance only).
"""
from __future__ import annotations

HELP = "navigate to a goal image in the simulator with the shipped model, through the ROS 2 stack"

DEFAULT_MODEL = "models/o4a_default"


def add_arguments(p) -> None:
    p.add_argument("--model", default=None, metavar="DIR", help=f"model directory (default: {DEFAULT_MODEL})")
    p.add_argument("--world", default=None, help="world (default: the model's first world)")
    p.add_argument("--difficulty", default="easy", choices=["easy", "medium", "hard", "very_hard"],
                   help="start-goal geodesic distance bin (default easy: 1.5-3 m)")
    p.add_argument("--seed", type=int, default=0, help="episode seed (default 0)")
    p.add_argument("--max-steps", type=int, default=150, help="decision budget (default 150)")
    p.add_argument("--timeout", type=float, default=240.0, metavar="S", help="give up after S seconds (default 240)")
    p.add_argument("--out", default="runs/demo", metavar="DIR",
                   help="where the trajectory picture and goal images go (default runs/demo)")
    p.add_argument("--quiet", action="store_true", help="no per-step lines")


def _model_dir(arg):
    from pathlib import Path

    from o4a_nav.errors import UserError

    if arg:
        return Path(arg)
    here = Path(DEFAULT_MODEL)
    if here.is_dir():
        return here
    src = Path(__file__).resolve().parents[2] / DEFAULT_MODEL
    if src.is_dir():
        return src
    raise UserError(f"the shipped model {DEFAULT_MODEL} is missing; pass --model DIR "
                    "(train one with scripts/train_shipped_model.sh)")


def run(args) -> int:
    import argparse
    import sys
    import threading
    import time
    from pathlib import Path
    from types import SimpleNamespace

    import cv2
    import numpy as np

    from o4a_nav.bench.episodes import sample_episodes
    from o4a_nav.commands import bringup
    from o4a_nav.errors import UserError
    from o4a_nav.learning.model_io import load_model
    from o4a_nav.sim import SimRobot, load_world

    model_dir = _model_dir(args.model)
    model = load_model(model_dir)  # ModelLoadError says what is wrong
    world_name = args.world or model.worlds[0]
    if world_name not in model.worlds:
        raise UserError(f"the model has no potential for world {world_name!r} (it knows: {', '.join(model.worlds)})")
    del model  # the navigator node loads its own copy
    world = load_world(world_name)
    episodes = sample_episodes(world, world_name, per_difficulty=1, seed=args.seed, difficulties=(args.difficulty,))
    if not episodes.episodes:
        raise UserError(f"world {world_name} has no {args.difficulty} start-goal pair ({'; '.join(episodes.notes)})")
    ep = episodes.episodes[0]
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)

    # Goal images: what the robot's cameras see at the goal pose.
    robot = SimRobot(world, seed=args.seed)
    robot.set_pose(ep.goal)
    goal_front, goal_rear, _ = robot.observe()
    robot.close()
    cv2.imwrite(str(out / "goal_front.png"), cv2.cvtColor(goal_front, cv2.COLOR_RGB2BGR))
    cv2.imwrite(str(out / "goal_rear.png"), cv2.cvtColor(goal_rear, cv2.COLOR_RGB2BGR))
    print(f"demo: world {world_name}, {args.difficulty} episode: start ({ep.start.x:.2f}, {ep.start.y:.2f}), "
          f"goal ({ep.goal.x:.2f}, {ep.goal.y:.2f}), geodesic {ep.geodesic_m:.2f} m; model {model_dir}", flush=True)

    plan = bringup.plan(argparse.Namespace(
        sim=True, params=None, model=str(model_dir), world=world_name, seed=args.seed,
        set=[f"sim.initial_pose=[{ep.start.x}, {ep.start.y}, {ep.start.yaw}]"]))

    import rclpy
    from rclpy.action import ActionClient
    from rclpy.executors import SingleThreadedExecutor

    from geometry_msgs.msg import PoseStamped
    from o4a_msgs.action import NavigateToImage
    from o4a_nav import topics
    from o4a_nav.commands.goal import make_goal
    from o4a_nav.types import Action

    rclpy.init()
    nodes, trajectory, client = [], [], None
    # One thread for all callbacks: the navigate action is a coroutine, rendering runs on
    # the GL thread, and rclpy's MultiThreadedExecutor starves itself on 2 cores.
    executor = SingleThreadedExecutor()
    spinner = None
    try:
        for name, module, cls, overrides in plan:
            nodes.append(bringup.make_node(name, module, cls, overrides))
            executor.add_node(nodes[-1])
        client_node = rclpy.create_node("o4a_demo")
        nodes.append(client_node)
        executor.add_node(client_node)
        client_node.create_subscription(
            PoseStamped, topics.GROUND_TRUTH_POSE,
            lambda m: trajectory.append((m.pose.position.x, m.pose.position.y)), 10)
        spinner = threading.Thread(target=executor.spin, daemon=True)
        spinner.start()

        client = ActionClient(client_node, NavigateToImage, topics.NAVIGATE)
        if not client.wait_for_server(timeout_sec=30.0):
            raise UserError("the navigator's action server did not come up")
        goal = make_goal(goal_front, goal_rear, client_node.get_clock().now().nanoseconds * 1e-9, args.max_steps)

        def on_feedback(msg):
            fb = msg.feedback
            if not args.quiet:
                print(f"step {fb.step:4d}  d_h {fb.goal_distance:7.2f}  {Action(fb.last_action).name if fb.last_action in set(Action) else fb.last_action}",
                      flush=True)

        def wait(future, timeout):
            t_end = time.monotonic() + timeout
            while not future.done() and time.monotonic() < t_end:
                time.sleep(0.02)
            return future.result() if future.done() else None

        handle = wait(client.send_goal_async(goal, feedback_callback=on_feedback), 30.0)
        if handle is None or not handle.accepted:
            raise UserError("the navigator did not accept the goal (see its log above)")
        result = wait(handle.get_result_async(), args.timeout)
        if result is None:
            print(f"demo: no result after {args.timeout:.0f} s: cancelling", file=sys.stderr)
            wait(handle.cancel_goal_async(), 5.0)
            res = SimpleNamespace(success=False, reason="timeout", steps=0, forwards=0, rotations=0)
        else:
            res = result.result
        time.sleep(0.2)  # last pose message
    finally:
        if client is not None:
            client.destroy()
        executor.shutdown(timeout_sec=2.0)
        if spinner is not None:
            spinner.join(timeout=5.0)
        bringup.stop_nodes(nodes)
        if rclpy.ok():
            rclpy.shutdown()

    final = trajectory[-1] if trajectory else (ep.start.x, ep.start.y)
    dist = world.geodesic(final, (ep.goal.x, ep.goal.y))
    reached = bool(res.success) and dist <= 1.0
    from o4a_nav.bench.report import plot_trajectories
    from o4a_nav.bench.run import world_map

    picture = plot_trajectories(
        world_map(world), ep,
        {"o4a (ROS)": SimpleNamespace(trajectory=list(trajectory or [final]), success=reached,
                                      stopped=bool(res.success), forwards=int(res.forwards),
                                      rotations=int(res.rotations))},
        out / "trajectory.png")
    verdict = "SUCCESS" if reached else "FAILURE"
    print(f"demo: {verdict}: navigator says {'reached' if res.success else 'not reached'} ({res.reason}); "
          f"{res.steps} steps ({res.forwards} forwards, {res.rotations} rotations); true distance to goal "
          f"{dist:.2f} m (success = STOP within 1 m)")
    print(f"demo: trajectory picture {picture}; goal images {out / 'goal_front.png'}, {out / 'goal_rear.png'}")
    return 0 if reached else 1
