"""o4a demo: the main job on the shipped model, end to end through ROS 2.

Starts the simulator and the navigation stack (collision_checker, navigator,
base_controller) in this process with the same nodes and YAML parameters as
`o4a bringup --sim`, the simulator in lockstep (simulated time advances when the stack
has acted, motions exact: the same seed gives the same run on any machine, under any
load), renders a goal image pair at a goal sampled with the benchmark's protocol, sends
it through the o4a/navigate action, prints the feedback, the outcome, the steps and the
wall time, and saves a top-down picture of the trajectory and a record of the run
(episode.json: outcome, steps, final distance, the decisions as a string). Ground truth
from the simulator is used for the picture and the reported distance only.
"""
from __future__ import annotations

HELP = "navigate to a goal image in the simulator with the shipped model, through the ROS 2 stack"

EXAMPLES = """examples:
  o4a demo                                     # two_rooms, easy, seed 0, the shipped model
  o4a demo --seed 3 --difficulty medium
  o4a demo --model models/my_model --world apartment --out runs/demo_apartment
"""
RUNS_SIMULATOR = True   # the CLI ends the help with cli.WHICH_SIM

DEFAULT_MODEL = "models/o4a_default"


def add_arguments(p) -> None:
    p.add_argument("--model", default=None, metavar="DIR", help=f"model directory (default: {DEFAULT_MODEL})")
    p.add_argument("--world", default=None, help="world (default: the model's first world)")
    p.add_argument("--difficulty", default="easy", choices=["easy", "medium", "hard", "very_hard"],
                   help="start-goal geodesic distance bin (default easy: 1.5-3 m)")
    p.add_argument("--seed", type=int, default=0, help="episode seed (default 0)")
    p.add_argument("--max-steps", type=int, default=500, help="decision budget (default 500: the paper's, the benchmark's and the navigator's)")
    p.add_argument("--timeout", type=float, default=600.0, metavar="S",
                   help="give up after S seconds of wall time (default 600)")
    p.add_argument("--out", default="runs/demo", metavar="DIR",
                   help="where the trajectory picture, goal images and episode.json go (default runs/demo)")
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
    import json
    from pathlib import Path
    from types import SimpleNamespace

    import cv2

    from o4a_nav.bench.agreement import action_string
    from o4a_nav.bench.episodes import sample_episodes
    from o4a_nav.nodes import lockstep
    from o4a_nav.errors import UserError
    from o4a_nav.learning.model_io import load_model
    from o4a_nav.nodes.goal_client import feedback_line
    from o4a_nav.sim import SimRobot, load_world

    if args.max_steps < 1:
        raise UserError(f"--max-steps must be >= 1 (got {args.max_steps})")
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
    print(f"demo: world {world_name}, {args.difficulty} episode (seed {args.seed}): start ({ep.start.x:.2f}, "
          f"{ep.start.y:.2f}), goal ({ep.goal.x:.2f}, {ep.goal.y:.2f}), geodesic {ep.geodesic_m:.2f} m; "
          f"model {model_dir}; simulator in lockstep", flush=True)
    on_feedback = None if args.quiet else (lambda fb: print(feedback_line(fb), flush=True))
    res = lockstep.run_episode(world_name, ep.start, goal_front, goal_rear, model_dir, args.max_steps,
                                seed=args.seed, timeout=args.timeout, on_feedback=on_feedback)
    final = res.final_pose
    dist = world.geodesic((final.x, final.y), (ep.goal.x, ep.goal.y))
    reached = res.reached and dist <= 1.0
    from o4a_nav.bench.report import plot_trajectories
    from o4a_nav.bench.run import world_map

    picture = plot_trajectories(
        world_map(world), ep,
        {"o4a (ROS, lockstep)": SimpleNamespace(trajectory=res.trajectory(), success=reached, stopped=res.reached,
                                                forwards=res.forwards, rotations=res.rotations)},
        out / "trajectory.png")
    verdict = "SUCCESS" if reached else "FAILURE"
    outcome = "success" if reached else ("stopped short" if res.reached else
                                         ("timeout" if res.timed_out else "out of steps"))
    (out / "episode.json").write_text(json.dumps({
        "world": world_name, "difficulty": args.difficulty, "seed": args.seed, "model": str(model_dir),
        "max_steps": args.max_steps, "geodesic_m": ep.geodesic_m, "outcome": outcome, "success": reached,
        "steps": res.steps, "forwards": res.forwards, "rotations": res.rotations, "final_distance_m": dist,
        "reason": res.reason, "wall_s": round(res.wall_s, 2), "sim_s": round(res.sim_s, 2),
        "actions": action_string(res.decisions)}, indent=1) + "\n")
    print(f"demo: {verdict}: navigator says {'reached' if res.reached else 'not reached'} ({res.reason}); "
          f"{res.steps} steps ({res.forwards} forwards, {res.rotations} rotations); true distance to goal "
          f"{dist:.2f} m (success = STOP within 1 m); wall time {res.wall_s:.1f} s ({res.sim_s:.1f} s simulated)")
    print(f"demo: trajectory picture {picture}; goal images {out / 'goal_front.png'}, {out / 'goal_rear.png'}; "
          f"run record {out / 'episode.json'}")
    return 0 if reached else 1
