#!/usr/bin/env python
"""Trace O4A episodes step by step, to see why the robot does or does not get there.

Runs the navigator core on the benchmark's episodes (same sampling, simulator, collision
checker and episode loop as `o4a bench`: o4a_nav.bench.runner.run_episode) and records per
step the true pose and geodesic distance to the goal, d_h, A_free, every candidate's
attraction p+ and repulsion, the chosen action and what the ground-truth oracle would have
done. Prints one line per episode and a summary of the failures:
  * agreement with the oracle, and when the oracle wanted FORWARD (and it was free) but
    O4A turned: was it the attractor or the repulsor that decided;
  * left/right reversals per episode;
  * per failed episode: closest approach, the most visited 25 cm cell, min d_h.

    .venv/bin/python scripts/trace_nav.py --episodes 4 --seed 1 --out runs/trace/plain_s1.json
    .venv/bin/python scripts/trace_nav.py --episodes 4 --seed 1 --nav-param stuck_scan=12 --out runs/trace/scan_s1.json
    .venv/bin/python scripts/trace_nav.py --analyze runs/trace/plain_s1.json     # summary of a saved trace
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from collections import Counter
from pathlib import Path

import numpy as np
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from o4a_nav.types import Action  # noqa: E402


def trace(args) -> list[dict]:
    import torch

    from o4a_nav.bench.cache import EmbedCache, ViewCache
    from o4a_nav.bench.episodes import sample_episodes
    from o4a_nav.bench.policies import EpisodeContext, GroundTruth, O4APolicy, OraclePolicy
    from o4a_nav.bench.runner import render_goal, run_episode
    from o4a_nav.learning.model_io import load_model
    from o4a_nav.nav.collision import CollisionChecker
    from o4a_nav.nav.navigator import NavigatorParams
    from o4a_nav.sim import SimRobot, load_world

    torch.set_num_threads(1)
    params = {k: yaml.safe_load(v) for k, _, v in (kv.partition("=") for kv in args.nav_param)}
    NavigatorParams.from_dict(dict(params))   # a one-line error for an unknown or invalid parameter
    model = EmbedCache(load_model(args.model))
    records, t0 = [], time.time()
    for wname in args.worlds or model.worlds:
        world = load_world(wname)
        robot = SimRobot(world, seed=args.seed)
        views, checker = ViewCache(robot), CollisionChecker()
        policy = O4APolicy("o4a", model, wname, max_steps=args.max_steps, **params)
        for ep in sample_episodes(world, wname, args.episodes, args.seed, tuple(args.difficulties)).episodes:
            goal = render_goal(robot, ep)
            truth = GroundTruth(world, robot, ep.goal)
            oracle = OraclePolicy()
            oracle.reset(EpisodeContext(None, None, None, truth))
            steps = []
            act = O4APolicy.act.__get__(policy)

            def traced(front, rear, free, act=act, truth=truth, oracle=oracle, steps=steps):
                p = robot.pose
                o = oracle.act(None, None, free)
                a = act(front, rear, free)
                d = policy.last_decision
                steps.append({"x": p.x, "y": p.y, "yaw": p.yaw, "geo": truth.distance(p.x, p.y), "a": int(a),
                              "o": int(o), "dh": d.goal_distance, "free": sorted(int(f) for f in free),
                              "c": [(int(c.action), c.attraction, c.repulsion) for c in d.candidates]})
                return a

            policy.act = traced
            res = run_episode(world, robot, checker, policy, ep, goal, args.seed, args.max_steps,
                              record_trajectory=False, views=views)
            records.append({"world": wname, "difficulty": ep.difficulty, "index": ep.index, "geodesic_m": ep.geodesic_m,
                            "success": res.success, "stopped": res.stopped, "final_m": res.final_distance_m,
                            "forwards": res.forwards, "rotations": res.rotations, "path_m": res.path_length_m,
                            "steps": steps})
            print(f"{wname} {ep.difficulty} {ep.index}: {'OK' if res.success else 'FAIL'} {res.steps} steps "
                  f"({res.forwards} F, {res.rotations} R), {res.final_distance_m:.2f} m, {time.time() - t0:.0f} s",
                  flush=True)
    return records


def analyze(records: list[dict]) -> None:
    n = len(records)
    wins = sum(r["success"] for r in records)
    spl = np.mean([r["success"] * r["geodesic_m"] / max(r["geodesic_m"], r["path_m"]) for r in records])
    rot_fwd = sum(r["rotations"] for r in records) / max(1, sum(r["forwards"] for r in records))
    se = (wins / n * (1 - wins / n) / n) ** 0.5
    print(f"SR {wins}/{n} = {wins / n:.3f} +- {se:.3f} (binomial SE), SPL {spl:.3f}, rotations per forward {rot_fwd:.2f}")
    F, L, R = int(Action.FORWARD), int(Action.ROTATE_LEFT), int(Action.ROTATE_RIGHT)
    for label, group in (("successes", [r for r in records if r["success"]]),
                         ("failures", [r for r in records if not r["success"]])):
        if not group:
            continue
        agree, by_att, by_rep, reversals = [], 0, 0, []
        for r in group:
            prev, rev = None, 0
            for s in r["steps"]:
                if s["a"] == int(Action.STOP):
                    continue
                agree.append(s["a"] == s["o"])
                cands = {a: (att, rep) for a, att, rep in s["c"]}
                if s["o"] == F and s["a"] != F and F in cands and s["a"] in cands:
                    (att_f, _), (att_c, _) = cands[F], cands[s["a"]]
                    if att_f > att_c:   # p+ alone already preferred the turn
                        by_att += 1
                    else:               # p+ preferred FORWARD; the repulsion turned it round
                        by_rep += 1
                if s["a"] in (L, R):
                    rev += prev in (L, R) and prev != s["a"]
                prev = s["a"]
            reversals.append(rev)
        print(f"{label}: {len(group)} episodes, agreement with the oracle {np.mean(agree):.2f}, oracle FORWARD "
              f"but O4A turned {by_att + by_rep} times (p+ preferred the turn {by_att}, p+ preferred FORWARD but the repulsion won {by_rep}), "
              f"median L/R reversals {np.median(reversals):.0f}")
    for r in records:
        if r["success"]:
            continue
        cells = Counter((round(s["x"] * 4), round(s["y"] * 4)) for s in r["steps"])
        cell, visits = cells.most_common(1)[0]
        geo = np.mean([s["geo"] for s in r["steps"] if (round(s["x"] * 4), round(s["y"] * 4)) == cell])
        print(f"  FAIL {r['world']} {r['difficulty']} {r['index']}: start {r['geodesic_m']:.1f} m, closest "
              f"{min(s['geo'] for s in r['steps']):.1f} m, final {r['final_m']:.1f} m, most visited cell {visits} "
              f"steps at {geo:.1f} m, min d_h {min(s['dh'] for s in r['steps']):.1f}, "
              f"{'STOP' if r['stopped'] else 'no STOP'}")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="models/o4a_default")
    ap.add_argument("--worlds", nargs="+", help="default: the model's worlds")
    ap.add_argument("--episodes", type=int, default=4, help="per world and difficulty")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--difficulties", nargs="+", default=["easy", "medium", "hard", "very_hard"])
    ap.add_argument("--nav-param", action="append", default=[], metavar="KEY=VALUE")
    ap.add_argument("--max-steps", type=int, default=500)
    ap.add_argument("--out", default="runs/trace/trace.json")
    ap.add_argument("--analyze", metavar="FILE", help="only summarise a saved trace")
    args = ap.parse_args(argv)
    if args.analyze:
        analyze(json.loads(Path(args.analyze).read_text()))
        return 0
    records = trace(args)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(records))
    analyze(records)
    return 0


if __name__ == "__main__":
    sys.exit(main())
