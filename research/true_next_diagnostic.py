#!/usr/bin/env python3
"""Diagnostic (session 8, issue 12; not a policy): the paper's rule with f replaced by the
TRUE next code h(o') of each candidate action, o' being the views rendered where the
action leads. If this navigates far better than the plain rule, f limits navigation.

  .venv/bin/python scripts/true_next_diagnostic.py --worlds apartment --episodes 4 --seed 1 --out runs/true_next_s1.json
  .venv/bin/python scripts/true_next_diagnostic.py --mode f --worlds apartment --episodes 4 --seed 1 --out runs/f_s1.json

The episodes, simulator, collision checker and episode loop are those of `o4a bench --seed S
--episodes N --policy o4a` (o4a_nav.bench.runner.run_episode); --mode f (the control) gives
the benchmark's outcomes. Measured in docs/BENCHMARK.md (decision-rule experiments, the diagnostic row).
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


class TrueNext:
    """A loaded model whose forward_kinematics renders where each action leads from the
    robot's true pose and embeds those views (h); everything else is the model's."""

    def __init__(self, model, robot):
        self.m, self.robot = model, robot

    def __getattr__(self, k):
        return getattr(self.m, k)

    def forward_kinematics(self, x, a):
        from o4a_nav.types import Action

        fr, rr = [], []
        here = self.robot.pose
        for act in torch.as_tensor(a).reshape(-1).tolist():
            pose, _ = self.robot.motion_result(Action(int(act)))
            self.robot.snap(pose)
            f, r = self.robot.render()
            fr.append(f)
            rr.append(r)
        self.robot.snap(here)
        return self.m.embed(np.stack(fr), np.stack(rr)).float()


def main(argv=None) -> int:
    from o4a_nav.bench.cache import ViewCache
    from o4a_nav.bench.episodes import sample_episodes
    from o4a_nav.bench.policies import O4APolicy
    from o4a_nav.bench.runner import render_goal, run_episode
    from o4a_nav.learning.model_io import load_model
    from o4a_nav.nav.collision import CollisionChecker
    from o4a_nav.sim import SimRobot, load_world

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="models/o4a_default")
    ap.add_argument("--worlds", nargs="+", default=["apartment"])
    ap.add_argument("--episodes", type=int, default=4, help="per world and difficulty")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--mode", choices=["true", "f"], default="true", help="true: true next codes; f: the plain rule")
    ap.add_argument("--max-steps", type=int, default=500)
    ap.add_argument("--out", required=True, help="JSON file of per-episode outcomes")
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    raw = load_model(args.model)
    records, t0 = [], time.time()
    for wname in args.worlds:
        world = load_world(wname)
        robot = SimRobot(world, seed=args.seed)
        views, checker = ViewCache(robot), CollisionChecker()
        policy = O4APolicy("o4a", TrueNext(raw, robot) if args.mode == "true" else raw, wname, max_steps=args.max_steps)
        for ep in sample_episodes(world, wname, args.episodes, args.seed,
                                  ("easy", "medium", "hard", "very_hard")).episodes:
            goal = render_goal(robot, ep)
            res = run_episode(world, robot, checker, policy, ep, goal, args.seed, args.max_steps,
                              record_trajectory=False, views=views)
            records.append({"world": wname, "difficulty": ep.difficulty, "index": ep.index, "success": res.success,
                            "stopped": res.stopped, "final_m": res.final_distance_m, "forwards": res.forwards,
                            "rotations": res.rotations})
            print(f"{wname} {ep.difficulty} {ep.index}: {'OK' if res.success else 'FAIL'} {res.steps} steps "
                  f"({res.forwards} F, {res.rotations} R), {res.final_distance_m:.2f} m, {time.time() - t0:.0f} s",
                  flush=True)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps({"args": vars(args), "episodes": records}, indent=1))
    print(f"{args.mode}: {sum(r['success'] for r in records)}/{len(records)} succeed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
