"""o4a collect: explore a simulated world and record a rosbag2 (MCAP) for training."""
from __future__ import annotations

HELP = "explore a simulated world with the random-walk policy and record a rosbag2 for `o4a train`"

EXAMPLES = """examples:
  o4a collect --world two_rooms --steps 10000 --seed 0 --out data/bags/two_rooms_s0
  o4a collect --world data/worlds/my_world.yaml --steps 2000 --out data/bags/my_world_s0
"""

from o4a_nav.sim.collector import ACTION, FRONT, POSE, REAR, SCAN, WORLD, WORLD_DEFINITION  # noqa: F401 (the bag's topics)


def add_arguments(p) -> None:
    p.add_argument("--world", required=True, help="built-in world name (see `o4a worlds`) or path to a world .yaml")
    p.add_argument("--steps", type=int, default=10000, metavar="N",
                   help="frames to record, trajectory-final STOP frames included (default 10000)")
    p.add_argument("--out", required=True, metavar="DIR", help="output bag folder (must not exist)")
    p.add_argument("--seed", type=int, default=0, help="seed of the spawn poses and the policy (default 0)")
    p.add_argument("--trajectory-length", type=int, default=500, metavar="T",
                   help="frames per trajectory; the last is STOP and the robot respawns (default 500, the paper's)")
    p.add_argument("--forward-prob", type=float, default=0.9,
                   help="probability of keeping on FORWARD when it is free (persistence, default 0.9)")
    p.add_argument("--dt", type=float, default=0.1, help="seconds between frames in the bag's stamps (default 0.1)")
    p.add_argument("--storage", choices=["mcap", "sqlite3"], default="mcap", help="bag storage (default mcap)")
    p.add_argument("--drive", choices=["explore", "teleop"], default="explore",
                   help="explore: discrete actions (o4a/action); teleop: continuous joystick-like driving "
                        "recorded like a robot (camera 15 Hz, odom and cmd_vel 30 Hz, no actions; "
                        "--steps counts camera frames)")
    p.add_argument("--compressed", action="store_true",
                   help="write the camera images as JPEG sensor_msgs/CompressedImage on <topic>/compressed")
    p.add_argument("--motion-noise", default="", metavar="FRAC,DEG",
                   help="explore: executed-motion error, e.g. 0.05,2 (each FORWARD travels 0.25 m x (1 + N(0, FRAC)), "
                        "each motion adds N(0, DEG) to the heading; default exact motions)")
    p.add_argument("--laser-noise", type=float, default=0.0, metavar="SIGMA",
                   help="Gaussian range noise of the simulated laser [m] (default 0; e.g. 0.01)")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")


def run(args) -> int:
    import sys

    from o4a_nav.errors import UserError

    if args.steps < 1:
        raise UserError(f"--steps must be >= 1 (got {args.steps})")
    if args.dt <= 0:
        raise UserError(f"--dt must be > 0 (got {args.dt})")
    from pathlib import Path

    from o4a_nav.sim.robot import noise_options

    noise, laser = noise_options(args.motion_noise, args.laser_noise)
    if (noise.active or args.laser_noise) and args.drive == "teleop":
        raise UserError("--motion-noise and --laser-noise apply to --drive explore (teleop records its own "
                        "stream; see o4a_nav/sim/teleop.py)")
    if Path(args.out).exists():
        raise UserError(f"--out {args.out} exists already; choose a new folder (a bag is never overwritten)")

    from tqdm import tqdm

    from o4a_nav.sim.collector import write_exploration_bag
    from o4a_nav.sim.explore import ExplorerParams

    if args.drive == "teleop":
        return _teleop(args)
    params = ExplorerParams(trajectory_length=args.trajectory_length, forward_prob=args.forward_prob)
    with tqdm(total=args.steps, unit="step", desc=f"collect {Path(args.world).stem}", disable=args.quiet,
              file=sys.stderr) as bar:
        res = write_exploration_bag(args.out, args.world, args.steps, seed=args.seed, params=params, dt=args.dt,
                                    storage=args.storage, compressed=args.compressed, laser=laser,
                                    motion_noise=noise, progress=bar)
    print(f"{args.out}: world {res['world']}, {args.steps} frames in {res['trajectories']} trajectories, "
          f"{res['collisions']} rejected moves, coverage {res['coverage']:.1%} of {res['free_area']:.0f} m^2, "
          f"{args.steps / res['seconds']:.0f} steps/s")
    print(_graph_advice(res, args.steps))
    return 0


# Frames per m^2 of free space at which the best one-action graph held >= 95 % of the frames
# in 9 of 10 generated worlds (research/backbone/data_per_area.py; docs/LEARNING.md, "How much
# to record").
FRAMES_PER_M2 = 200


def _graph_advice(res: dict, steps: int) -> str:
    """How connected the best graph of this bag can be (report.ideal_connectivity on the true
    poses) and, when it is fragmented, how many frames to record."""
    import math

    from o4a_nav.learning.graph import CONNECTED_SHARE
    from o4a_nav.learning.report import ideal_connectivity

    conn = ideal_connectivity(res["poses"], res["trajectory"])
    density = steps / max(res["free_area"], 1e-9)
    line = (f"best one-action graph of this bag: its largest strongly connected part holds "
            f"{conn['largest_share']:.1%} of the frames ({conn['components']} parts); {density:.0f} frames per m^2")
    if conn["largest_share"] >= CONNECTED_SHARE:
        return line
    want = math.ceil(FRAMES_PER_M2 * res["free_area"] / 1000.0) * 1000
    return (line + f"\nWARNING fragmented: goals outside the largest part cannot be reached on the training graph; "
            f"record more of this place (about {FRAMES_PER_M2} frames per m^2 of free space, here "
            f"{max(want, steps + 1000)} frames in all)")


def _teleop(args) -> int:
    import sys
    import time

    from tqdm import tqdm

    from o4a_nav.sim.teleop import TeleopParams, write_teleop_bag

    params = TeleopParams()
    t0 = time.perf_counter()
    with tqdm(total=args.steps, unit="frame", desc="teleop", disable=args.quiet, file=sys.stderr) as bar:
        res = write_teleop_bag(args.out, args.world, args.steps / params.camera_hz, seed=args.seed, params=params,
                               compressed=args.compressed, storage=args.storage, progress=bar)
    dt = time.perf_counter() - t0
    print(f"{args.out}: world {res['world']}, {len(res['cameras'])} camera frames, "
          f"{len(res['ticks'])} odometry messages ({len(res['ticks']) / params.control_hz:.0f} s of driving), "
          f"{res['collisions']} blocked moves, {len(res['cameras']) / dt:.0f} frames/s")
    return 0
