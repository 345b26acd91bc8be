"""Can a per-building STOP threshold fix arrivals in a building h never saw? For each bag:
d_h of same-place pairs (the `ideal` STOP pairs: < 0.1 m, < 7.5 deg; what the laser
verifies without poses) and of random view pairs > 2 m apart; the threshold that keeps
far pairs taken for the goal <= 0.1 %, and thresholds set at quantiles of the same-place
d_h (what a calibration from laser-verified pairs would pick).
Usage: .venv/bin/python research/laser_closures/arrival.py MODEL BAG..."""
import sys

import numpy as np
import torch

from o4a_nav.learning.dataset import load_worlds
from o4a_nav.learning.model_io import load_model
from o4a_nav.learning.report import ideal_pairs
from o4a_nav.learning.training import embed_frames

torch.set_num_threads(1)
model = load_model(sys.argv[1])
rng = np.random.default_rng(0)
for bag in sys.argv[2:]:
    (w,) = load_worlds([bag])
    codes = embed_frames(model, w)
    n = len(w)
    s, d, a = ideal_pairs(w.poses, w.traj)
    same = torch.linalg.vector_norm(codes[s[a == 0]] - codes[d[a == 0]], dim=1).numpy()
    i, j = rng.integers(0, n, 400000), rng.integers(0, n, 400000)
    far_m = np.hypot(*(w.poses[i, :2] - w.poses[j, :2]).T) > 2.0
    far = torch.linalg.vector_norm(codes[i[far_m]] - codes[j[far_m]], dim=1).numpy()
    t_ok = float(np.quantile(far, 0.001))
    row = [f"{w.name}: same-place d_h median {np.median(same):.2f}, p90 {np.quantile(same, 0.9):.2f}; "
           f"far pairs d_h p0.1 {t_ok:.2f} -> at that threshold same place recognised {(same < t_ok).mean():.3f}; "
           f"at 3.5: far {(far < 3.5).mean():.4f}, same {(same < 3.5).mean():.3f}"]
    for q in (0.5, 0.8, 0.9):
        t = float(np.quantile(same, q))
        row.append(f"q{q}: t {t:.2f} far {(far < t).mean():.4f}")
    print("; ".join(row), flush=True)
