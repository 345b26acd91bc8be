"""Stage 2 only (laser closures with the shipped h) on worlds' bags: exact precision, ideal recall, time.
Usage: graphs.py OUT.json BAG... ; a comma-separated BAG,BAG,... is one world of several bags (30,000 frames)."""
import json, sys, time
sys.path.insert(0, '/work/main')
import numpy as np, torch
from o4a_nav.learning import closures as C
from o4a_nav.learning.dataset import load_worlds
from o4a_nav.learning.model_io import load_model
from o4a_nav.learning.pipeline import closure_rule
from o4a_nav.learning.config import make_configs
from o4a_nav.learning.report import exact_closures, ideal_pairs
from o4a_nav.learning.training import embed_frames
torch.set_num_threads(1)
model = load_model('models/o4a_default')
_, tcfg = make_configs('compact', ['train.graph_closures=auto'])
out = {}
for bag in sys.argv[2:]:
    t0 = time.time()
    (w,) = load_worlds(bag.split(','))
    codes = embed_frames(model, w)
    rule, mount, why = closure_rule(w, tcfg)
    lc = C.laser_closures(codes, w.laser.ranges, w.laser.geometry, mount, C.ClosureParams(), traj=w.traj)
    ex = exact_closures(w.poses, lc['src'], lc['dst'], lc['action'])
    s, d, _ = ideal_pairs(w.poses, w.traj); n = len(w)
    rec = float(np.isin(s * n + d, lc['src'].astype(np.int64) * n + lc['dst']).mean())
    # knn candidate recall of ideal pairs (either direction)
    cs, cd = C.knn_pairs(codes, 20); ck = set((cs * n + cd).tolist()) | set((cd * n + cs).tolist())
    crec = float(np.mean([k in ck for k in (s * n + d).tolist()]))
    out[bag] = {"world": w.name, "frames": n, "exact_precision": float(ex.mean()), "wrong": int((~ex).sum()),
                "edges": int(len(ex)), "ideal_recall": rec, "knn20_candidate_recall": crec, **lc['stats'],
                "wall_s": time.time() - t0}
    print(json.dumps(out[bag]), flush=True)
    json.dump(out, open(sys.argv[1], 'w'), indent=1)
