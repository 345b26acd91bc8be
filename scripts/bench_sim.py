#!/usr/bin/env python3
"""Benchmark of the simulator and `o4a collect`: cost per frame of each part, end-to-end
collect throughput, and coverage of 10,000 exploration steps per world.

    .venv/bin/python scripts/bench_sim.py                       # all of it (~3-5 min on 2 cores)
    .venv/bin/python scripts/bench_sim.py --skip-coverage --collect-steps 1000

Writes JSON (default runs/bench_sim.json) and prints Markdown tables (docs/SIM.md quotes them).
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def _timeit(fn, n: int) -> float:
    fn()  # warm-up
    t = time.perf_counter()
    for _ in range(n):
        fn()
    return (time.perf_counter() - t) / n * 1e3  # ms


def parts(world_name: str, n: int) -> dict:
    import numpy as np

    from o4a_nav import bagio
    from o4a_nav.sim import SimRobot, load_world
    from o4a_nav.sim.collector import default_checker
    from o4a_nav.sim.explore import ExplorationPolicy
    from o4a_nav.types import Action

    world = load_world(world_name)
    robot = SimRobot(world, seed=0)
    rng = np.random.default_rng(0)
    poses = [world.sample_free_pose(rng) for _ in range(64)]
    k = [0]

    def next_pose():
        robot.set_pose(poses[k[0] % len(poses)])
        k[0] += 1

    out = {}
    out["render front (1 view)"] = _timeit(lambda: (next_pose(), robot._renderer.view(robot.pose)), n)
    out["render front + rear"] = _timeit(lambda: (next_pose(), robot.render()), n)
    out["laser scan (541 rays)"] = _timeit(lambda: (next_pose(), robot.scan()), n)
    checker = default_checker()
    scan = robot.scan()
    out["collision checker (A_free)"] = _timeit(lambda: checker.free_actions(scan), n)
    pol = ExplorationPolicy(0)
    free = {Action.FORWARD, Action.ROTATE_LEFT, Action.ROTATE_RIGHT}
    out["exploration policy"] = _timeit(lambda: pol.act(free) if not pol.trajectory_done else pol.reset(), n)
    out["motion step (exact collision test)"] = _timeit(lambda: (next_pose(), robot.step(Action.FORWARD)), n)
    front, rear = robot.render()
    pose = robot.pose
    tmp = Path(tempfile.mkdtemp(prefix="bench_sim_"))
    try:
        from o4a_nav import topics as T

        A = T.absolute
        with bagio.BagWriter(tmp / "bag") as w:
            t = [0.0]

            def write():
                t[0] += 0.1
                w.write(A(T.FRONT_IMAGE), "sensor_msgs/msg/Image", t[0], bagio.image_msg(front, t[0], "f"))
                w.write(A(T.REAR_IMAGE), "sensor_msgs/msg/Image", t[0], bagio.image_msg(rear, t[0], "r"))
                w.write(A(T.SCAN), "sensor_msgs/msg/LaserScan", t[0], bagio.scan_msg(scan, "laser"))
                w.write(A(T.GROUND_TRUTH_POSE), "geometry_msgs/msg/PoseStamped", t[0], bagio.pose_msg(pose, t[0]))
                w.write(A(T.ACTION), "o4a_msgs/msg/DiscreteAction", t[0], bagio.action_msg(1, t[0], 0))

            out["bag: build + serialise + write 5 messages"] = _timeit(write, n)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    robot.close()
    return out


def collect(world_name: str, steps: int) -> dict:
    """End-to-end `o4a collect` in a subprocess (cold start included) and its own count."""
    import subprocess

    tmp = Path(tempfile.mkdtemp(prefix="bench_collect_"))
    try:
        t = time.perf_counter()
        out = subprocess.run([sys.executable, "-m", "o4a_nav.cli", "collect", "--world", world_name, "--steps",
                              str(steps), "--out", str(tmp / "bag"), "--seed", "0", "-q"],
                             capture_output=True, text=True, check=True, cwd=ROOT)
        wall = time.perf_counter() - t
        loop_rate = float(out.stdout.strip().rsplit(",", 1)[-1].split()[0])  # "... N steps/s"
        size = sum(p.stat().st_size for p in (tmp / "bag").iterdir())
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return {"world": world_name, "steps": steps, "loop_steps_per_s": loop_rate, "wall_s": wall,
            "startup_s": wall - steps / loop_rate, "bag_bytes_per_step": size / steps}


def coverage_table(steps: int, seeds: list[int]) -> list[dict]:
    import numpy as np

    from o4a_nav.sim import SimRobot, load_world, world_names
    from o4a_nav.sim.collector import coverage, explore
    from o4a_nav.sim.explore import ExplorerParams

    rows = []
    for name in world_names():
        w = load_world(name)
        row = {"world": name, "free_m2": w.free_area}
        for label, traj in (("respawn_every_500", 500), ("one_trajectory", steps)):
            covs = []
            for s in seeds:
                r = SimRobot(w, seed=s, render=False)
                xy = np.array([(f.pose.x, f.pose.y) for f in
                               explore(r, steps, seed=s, params=ExplorerParams(trajectory_length=traj), render=False)])
                covs.append(coverage(w, xy))
            row[label] = float(np.mean(covs))
        rows.append(row)
        print(f"  coverage {name}: {row['respawn_every_500']:.1%} / {row['one_trajectory']:.1%}", file=sys.stderr)
    return rows


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--world", default="apartment")
    ap.add_argument("--n", type=int, default=300, help="repetitions per part")
    ap.add_argument("--collect-steps", type=int, default=3000)
    ap.add_argument("--coverage-steps", type=int, default=10000)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--skip-coverage", action="store_true")
    ap.add_argument("--out", default=str(ROOT / "runs" / "bench_sim.json"))
    args = ap.parse_args()

    res = {"machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()}}
    print("parts ...", file=sys.stderr)
    res["parts_ms"] = parts(args.world, args.n)
    print("collect ...", file=sys.stderr)
    res["collect"] = [collect(w, args.collect_steps) for w in ("two_rooms", args.world)]
    if not args.skip_coverage:
        print("coverage ...", file=sys.stderr)
        res["coverage"] = coverage_table(args.coverage_steps, args.seeds)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(res, indent=2))

    total = sum(v for k, v in res["parts_ms"].items() if k != "render front (1 view)")
    print(f"\n### Cost per frame ({args.world}, mean of {args.n}; share of the sum of parts)\n")
    print("| part | ms / frame | share |\n|---|---:|---:|")
    for k, v in res["parts_ms"].items():
        share = "" if k == "render front (1 view)" else f"{v / total:.0%}"
        print(f"| {k} | {v:.3f} | {share} |")
    print(f"| sum (front+rear, scan, checker, policy, step, bag) | {total:.3f} | 100% |")
    print("\n### `o4a collect` end to end\n")
    print("| world | steps | steps/s (loop) | start-up s | bag bytes / step |\n|---|---:|---:|---:|---:|")
    for c in res["collect"]:
        print(f"| {c['world']} | {c['steps']} | {c['loop_steps_per_s']:.0f} | {c['startup_s']:.1f} | "
              f"{c['bag_bytes_per_step'] / 1e3:.1f} kB |")
    if "coverage" in res:
        print(f"\n### Coverage of {args.coverage_steps} exploration steps (mean over seeds {args.seeds})\n")
        print("| world | free m^2 | respawn every 500 steps | one trajectory |\n|---|---:|---:|---:|")
        for r in res["coverage"]:
            print(f"| {r['world']} | {r['free_m2']:.0f} | {r['respawn_every_500']:.1%} | {r['one_trajectory']:.1%} |")
    print(f"\nJSON: {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
