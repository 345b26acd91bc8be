"""The graph's distances against the true geodesic distances, with its own weights (d_h)
and with train.graph_weights=actions (1 per motion edge), on graphs a model directory
holds: is the graph's metric the limit once its closures are exact?
Usage: .venv/bin/python research/backbone/graph_weights.py MODEL_DIR BAG [WORLD_NAME]"""
import sys
from pathlib import Path

import numpy as np
from scipy.stats import spearmanr

from o4a_nav.learning import graph as G
from o4a_nav.learning.dataset import scan_bag
from o4a_nav.sim.world import world_from_text

mdir, bag = Path(sys.argv[1]), sys.argv[2]
bf = scan_bag(bag)
name = sys.argv[3] if len(sys.argv) > 3 else bf.world
world = world_from_text(bf.world_text)
z = dict(np.load(mdir / G.graph_name(name), allow_pickle=True))
rng = np.random.default_rng(0)
src = np.sort(rng.choice(len(bf.poses), 40, replace=False))
dst = rng.choice(len(bf.poses), (40, 50))
P = bf.poses
truth = np.array([[world.geodesic((P[s, 0], P[s, 1]), (P[d, 0], P[d, 1])) for d in row] for s, row in zip(src, dst)])
line = [name]
from o4a_nav.learning.report import ideal_pairs  # noqa: E402

s_, d_, a_ = ideal_pairs(P, bf.traj)
ch = np.flatnonzero(bf.traj[1:] == bf.traj[:-1])
chain_a = bf.actions[ch]
ideal = {"src": np.concatenate([ch, s_]), "dst": np.concatenate([ch + 1, d_]),
         "weight": G.action_weights(np.concatenate([chain_a, a_]))}
for label, g in (("d_h", {**z, "weight": z["weight"]}), ("actions", {**z, "weight": G.action_weights(z["action"])}),
                 ("ideal graph, actions", ideal)):
    g = {**g, "n_nodes": len(bf.poses)}
    rows = G.shortest_paths(g, src)
    dg = np.take_along_axis(rows, dst, axis=1)
    ok = np.isfinite(dg) & np.isfinite(truth)
    line.append(f"{label}: Spearman {spearmanr(dg[ok], truth[ok]).statistic:.3f}")
print(" | ".join(line), flush=True)
