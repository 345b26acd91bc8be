#!/usr/bin/env python3
"""Diagnostic (session 9, issue 12; not a policy): how well does each STOP signal tell
"within the 1 m success radius" from "not yet"? For the benchmark's goals (the goal views
of `o4a bench --seed S --episodes N`), robot poses are drawn around each goal (uniform
position within --radius m, free, uniform heading) and three signals are computed from the
robot's two views: d_h(x, x_g) (the paper's STOP rule: d_h < 3.5), p+(x, x_g) (the world's
geodesic head) and f-dagger's probability that x and x_g are connected. Prints, per world,
the precision and recall of "geodesic < 1 m" for each signal at the threshold of each
signal that keeps the precision of the paper's rule, and the rule's own figures.

  .venv/bin/python scripts/stop_detector_diagnostic.py --seed 1 --episodes 4 --out runs/stop_detect_s1.json
"""
from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main(argv=None) -> int:
    from o4a_nav.bench.episodes import sample_episodes
    from o4a_nav.bench.runner import render_goal
    from o4a_nav.learning.model_io import load_model
    from o4a_nav.sim import SimRobot, load_world
    from o4a_nav.types import Pose2D

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="models/o4a_default")
    ap.add_argument("--worlds", nargs="+", default=None, help="default: the model's worlds")
    ap.add_argument("--episodes", type=int, default=4)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--poses", type=int, default=60, help="robot poses per goal")
    ap.add_argument("--radius", type=float, default=2.5)
    ap.add_argument("--out", required=True)
    args = ap.parse_args(argv)
    torch.set_num_threads(2)
    model = load_model(args.model)
    rng = np.random.default_rng(args.seed)
    out = {}
    for wname in args.worlds or model.worlds:
        world = load_world(wname)
        robot = SimRobot(world, seed=args.seed)
        rows = []
        for ep in sample_episodes(world, wname, args.episodes, args.seed,
                                  ("easy", "medium", "hard", "very_hard")).episodes:
            goal = render_goal(robot, ep)
            with torch.inference_mode():
                xg = model.embed(goal.front, goal.rear).reshape(1, -1).float()
            fr, rr, geo = [], [], []
            while len(geo) < args.poses:
                r, a = args.radius * math.sqrt(rng.uniform()), rng.uniform(-math.pi, math.pi)
                x, y = ep.goal.x + r * math.cos(a), ep.goal.y + r * math.sin(a)
                if world.collides(x, y):
                    continue
                g = float(world.geodesic((x, y), (ep.goal.x, ep.goal.y)))
                if not math.isfinite(g):
                    continue
                robot.set_pose(Pose2D(x, y, rng.uniform(-math.pi, math.pi)))
                f, b = robot.render()
                fr.append(f)
                rr.append(b)
                geo.append(g)
            with torch.inference_mode():
                xs = model.embed(np.stack(fr), np.stack(rr)).float()
                dh = torch.linalg.vector_norm(xs - xg, dim=1)
                pp = model.geodesic(xs, xg.expand(len(xs), -1), wname).float()
                conn = 1.0 - torch.softmax(model.inverse_logits(xs, xg.expand(len(xs), -1)).float(), 1)[:, 0]
            rows += [[g, float(d), float(p), float(c)] for g, d, p, c in zip(geo, dh, pp, conn)]
        a = np.array(rows)
        inside = a[:, 0] < 1.0
        res = {"poses": len(a), "inside": int(inside.sum())}

        def pr(mask):
            tp = int((mask & inside).sum())
            return {"stops": int(mask.sum()), "precision": tp / max(1, int(mask.sum())), "recall": tp / max(1, int(inside.sum()))}

        res["d_h < 3.5 (paper)"] = pr(a[:, 1] < 3.5)
        target = res["d_h < 3.5 (paper)"]["precision"]
        for name, col, sign in (("d_h", 1, 1), ("p+", 2, 1), ("1 - P(NOT_CONNECTED)", 3, -1)):
            best = None
            for t in np.unique(a[:, col]):
                m = (a[:, col] <= t) if sign > 0 else (a[:, col] >= t)
                s = pr(m)
                if s["precision"] >= target and (best is None or s["recall"] > best[1]["recall"]):
                    best = (float(t), s)
            res[f"{name} at the paper's precision"] = {"threshold": best[0], **best[1]} if best else None
        out[wname] = res
        print(wname, json.dumps(res, indent=1), flush=True)
        # rank correlation of each signal with the geodesic, within 2.5 m
        from scipy.stats import spearmanr
        print(f"  Spearman with geodesic: d_h {spearmanr(a[:, 0], a[:, 1])[0]:.3f}, p+ {spearmanr(a[:, 0], a[:, 2])[0]:.3f}")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps({"args": vars(args), "worlds": out}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
