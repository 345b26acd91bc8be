"""Experiment: stage 4 (p+) of the three worlds again on m_laser3's laser graphs with train.graph_weights=actions
(the graphs' edges and actions unchanged, weights by action), h/f-dagger/f unchanged. Same functions as the pipeline."""
import sys, shutil, json, time
sys.path.insert(0, '/work/main')
import numpy as np, torch
from o4a_nav.learning import graph as G
from o4a_nav.learning.config import make_configs
from o4a_nav.learning.dataset import load_worlds
from o4a_nav.learning.model_io import load_model, save_model
from o4a_nav.learning.training import embed_frames, train_geodesic, chain_predictions
src, out = sys.argv[1], sys.argv[2]
torch.set_num_threads(2)
model = load_model(src)
_, tcfg = make_configs('compact', ['train.graph_weights=actions'])
rng = np.random.default_rng(tcfg.seed)
for w in load_worlds([f'data/bags/{n}_s0' for n in ('two_rooms', 'four_rooms', 'apartment')]):
    t0 = time.time()
    g = G.load_graph(f'{src}/graph_{w.name}.npz')
    g['weight'] = G.action_weights(g['action'])
    codes = embed_frames(model, w)
    train_frames = w.frames(val=False)
    sources = np.sort(rng.choice(train_frames, min(tcfg.geodesic_sources, len(train_frames)), replace=False))
    rows = G.shortest_paths(g, sources)
    k = model.worlds.index(w.name)
    model.geodesic_heads[k] = type(model.geodesic_head(w.name))(model.config)
    head = model.geodesic_head(w.name)
    train_geodesic(head, codes, rows, sources, train_frames, tcfg, predicted=chain_predictions(model.forward_model, codes, w))
    print(w.name, 'reachable', float(np.isfinite(rows[:, train_frames]).mean()), f'{time.time()-t0:.0f}s', flush=True)
shutil.copytree(src, out, dirs_exist_ok=True)
model.eval()
save_model(model, out, {"experiment": "laser graphs of m_laser3 with train.graph_weights=actions, p+ retrained"})
print('saved', out)
