"""What h gives a building, without registration: the share of the `ideal` one-action pairs
among each frame's 20 nearest codes (candidate recall), and the arrival test's errors:
share of view pairs > 2 m apart with d_h < 3.5 (false arrivals) and of same-place pairs
(< 0.1 m, < 7.5 deg) with d_h < 3.5. Usage, from the repository root:
    .venv/bin/python research/laser_closures/h_metrics.py MODEL OUT.json BAG...
"""
import json
import sys
import time

import numpy as np
import torch

from o4a_nav.learning import closures as C
from o4a_nav.learning.dataset import load_worlds
from o4a_nav.learning.model_io import load_model
from o4a_nav.learning.report import ideal_pairs
from o4a_nav.learning.training import embed_frames

torch.set_num_threads(1)
model = load_model(sys.argv[1])
out = {}
rng = np.random.default_rng(0)
for bag in sys.argv[3:]:
    t0 = time.time()
    (w,) = load_worlds([bag])
    codes = embed_frames(model, w)
    n = len(w)
    s, d, a = ideal_pairs(w.poses, w.traj)
    cs, cd = C.knn_pairs(codes, 20)
    ck = np.union1d(cs.astype(np.int64) * n + cd, cd.astype(np.int64) * n + cs)
    crec = float(np.isin(s * n + d, ck).mean())
    same = a == 0
    dh_same = torch.linalg.vector_norm(codes[s[same]] - codes[d[same]], dim=1).numpy()
    i, j = rng.integers(0, n, 200000), rng.integers(0, n, 200000)
    far = np.hypot(*(w.poses[i, :2] - w.poses[j, :2]).T) > 2.0
    dh_far = torch.linalg.vector_norm(codes[i[far]] - codes[j[far]], dim=1).numpy()
    out[bag] = {"world": w.name, "frames": n, "ideal_pairs": int(len(s)), "knn20_candidate_recall": crec,
                "same_place_dh_below_3.5": float((dh_same < 3.5).mean()),
                "far_2m_dh_below_3.5": float((dh_far < 3.5).mean()), "wall_s": time.time() - t0}
    print(json.dumps(out[bag]), flush=True)
    json.dump(out, open(sys.argv[2], "w"), indent=1)
