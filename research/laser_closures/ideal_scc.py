"""Connectivity of the `ideal` one-action graph (every pair one action apart by the true
poses, plus the recorded chains) of bags: how connected a graph of this data can be at
best. Usage: .venv/bin/python research/laser_closures/ideal_scc.py BAG..."""
import sys

import numpy as np

from o4a_nav.learning import graph as G
from o4a_nav.learning import report as R
from o4a_nav.learning.dataset import load_worlds

for b in sys.argv[1:]:
    (w,) = load_worlds([b])
    s, d, _ = R.ideal_pairs(w.poses, w.traj)
    same = np.flatnonzero(w.traj[1:] == w.traj[:-1])
    g = {"n_nodes": len(w), "src": np.concatenate([s, same]), "dst": np.concatenate([d, same + 1])}
    print(b, len(w), "ideal pairs", len(s), G.connectivity(g), flush=True)
