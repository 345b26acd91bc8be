"""Connectivity of the `ideal` one-action graph (every pair one action apart by the true
poses, plus the recorded chains: report.ideal_connectivity) of bags: how connected a graph
of this data can be at best. Usage: .venv/bin/python research/laser_closures/ideal_scc.py BAG..."""
import sys

from o4a_nav.learning.dataset import load_worlds
from o4a_nav.learning.report import ideal_connectivity

for b in sys.argv[1:]:
    (w,) = load_worlds([b])
    print(b, len(w), ideal_connectivity(w.poses, w.traj), flush=True)
