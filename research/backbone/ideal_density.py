"""Is the data the limit in a new building? The `ideal` graph (chains + every true
one-action pair, action weights) of the first N frames of an exploration run, navigated
at perfect localisation (`o4a diagnose --mode graph-pose`, 4 episodes per difficulty,
seed 1) with MODEL's arrival test, for each N. The run is the exploration policy of
`o4a collect` (seed 1, no rendering: the graph needs only poses and actions).
Usage: .venv/bin/python research/backbone/ideal_density.py MODEL_DIR WORLD_FILE N..."""
import sys
from pathlib import Path

import numpy as np

from o4a_nav.bench.diagnose import DiagnoseConfig, diagnose
from o4a_nav.learning import graph as G
from o4a_nav.learning.report import ideal_connectivity, ideal_pairs
from o4a_nav.sim import load_world
from o4a_nav.sim.collector import explore
from o4a_nav.sim.robot import SimRobot

mdir, wfile = sys.argv[1:3]
sizes = [int(a) for a in sys.argv[3:]]
world = load_world(wfile)
robot = SimRobot(wfile, seed=1)
n = max(sizes)
poses, actions, traj = np.zeros((n, 3)), np.zeros(n, np.int8), np.zeros(n, np.int64)
for f in explore(robot, n, seed=1, render=False):
    poses[f.index] = (f.pose.x, f.pose.y, f.pose.yaw)
    actions[f.index], traj[f.index] = int(f.action), f.trajectory
robot.close()
cache = Path("runs/diag") / f"density_{world.name}"
cache.mkdir(parents=True, exist_ok=True)
for m in sizes:
    P, A, T = poses[:m], actions[:m], traj[:m]
    s, d, a = ideal_pairs(P, T)
    ch = np.flatnonzero(T[1:] == T[:-1])
    np.savez(cache / f"graph_n{m}_ideal_classw.npz", codes=np.zeros((m, 1), np.float32),
             src=np.concatenate([ch, s]), dst=np.concatenate([ch + 1, d]),
             weight=G.action_weights(np.concatenate([A[ch], a])), poses=P)
    cfg = DiagnoseConfig(model=mdir, worlds=[world.name], episodes=4, seed=1, mode="graph-pose",
                         graph_variant="ideal,classw", graph_bags=[f"n{m}"], cache_dir=str(cache))
    r = diagnose(cfg, log=lambda *x, **k: None, sim_worlds={world.name: world})
    s_ = r["summary"]
    c = ideal_connectivity(P, T)
    print(f"{world.name} {m} frames ({m / world.free_area:.0f} per m^2, largest part {c['largest_share']:.3f}): "
          f"{s_['succeeded']}/{s_['episodes']}, rotations per forward {s_['rotations_per_forward']:.2f}", flush=True)
