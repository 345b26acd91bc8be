#!/usr/bin/env python3
"""Experiment (session 10, issue 12; not a default): fine-tune f-dagger alone, on the frozen
codes of h, with labels composed from the recorded actions for frame pairs 2..K steps
apart on one unbroken chain (stage 1 ignores those pairs): "one FORWARD then one turn" is
NOT_CONNECTED, "LEFT then RIGHT" is STOP, so that a loop closure means exactly one action.
Writes a model directory (the base model with the new inverse head, no graphs).

  .venv/bin/python scripts/inverse_composed_finetune.py --out runs/exp/fd_ft_k4        # 75 s on one core
  .venv/bin/o4a train --base runs/exp/fd_ft_k4 --bags data/bags/{two_rooms,four_rooms,apartment}_s0 --out runs/exp/fdft_pp

Measured in docs/BENCHMARK.md (decision-rule experiments, session 10): precision up, recall
down, navigation not better.
"""
import argparse
import math
import shutil
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from o4a_nav.learning.model_io import load_model, save_model  # noqa: E402
from o4a_nav.learning.dataset import load_worlds  # noqa: E402
from o4a_nav.learning.training import embed_frames  # noqa: E402
from o4a_nav.learning.losses import pair_labels, weighted_ce, batch_class_weights  # noqa: E402
from o4a_nav.learning.config import action_to_class  # noqa: E402
from o4a_nav.learning.config import NOT_CONNECTED  # noqa: E402
from o4a_nav.types import Action  # noqa: E402

ap = argparse.ArgumentParser()
ap.add_argument('--model', default='models/o4a_default')
ap.add_argument('--bags', nargs='+', default=['data/bags/two_rooms_s0', 'data/bags/four_rooms_s0', 'data/bags/apartment_s0'])
ap.add_argument('--steps', type=int, default=3000)
ap.add_argument('--k', type=int, default=4)
ap.add_argument('--hard-weight', type=float, default=1.0)
ap.add_argument('--lr', type=float, default=1e-4)
ap.add_argument('--out', required=True)
a = ap.parse_args()
torch.set_num_threads(1)
torch.manual_seed(0)
rng = np.random.default_rng(0)
m = load_model(a.model)
data = []
for b in a.bags:
    (w,) = load_worlds([b])
    codes = embed_frames(m, w).float()
    n = len(codes)
    nok = np.asarray(w.next_ok, bool)
    acts = np.asarray(w.actions)
    # composed labels for (t, t+k), k = 2..K, where t..t+k is one unbroken chain
    pairs, labels = [], []
    for t in range(n):
        x = y = th = 0.0
        for k in range(1, a.k + 1):
            if t + k - 1 >= n or not nok[t + k - 1]:
                break
            ac = int(acts[t + k - 1])
            if ac == int(Action.FORWARD):
                x += 0.25 * math.cos(th); y += 0.25 * math.sin(th)
            elif ac == int(Action.ROTATE_LEFT):
                th += math.radians(15)
            elif ac == int(Action.ROTATE_RIGHT):
                th -= math.radians(15)
            if k < 2:
                continue
            th_w = (th + math.pi) % (2 * math.pi) - math.pi
            d = math.hypot(x, y)
            if d < 0.05 and abs(th_w) < 1e-3:
                lab = action_to_class(int(Action.STOP))
            elif d < 0.05 and abs(abs(th_w) - math.radians(15)) < 1e-3:
                lab = action_to_class(int(Action.ROTATE_LEFT if th_w > 0 else Action.ROTATE_RIGHT))
            elif abs(x - 0.25) < 0.05 and abs(y) < 0.05 and abs(th_w) < 1e-3:
                lab = action_to_class(int(Action.FORWARD))
            else:
                lab = NOT_CONNECTED
            pairs.append((t, t + k)); labels.append(lab)
    pairs = np.array(pairs); labels = np.array(labels)
    print(b, n, 'hard pairs', len(pairs), 'label counts', np.bincount(labels, minlength=5), flush=True)
    data.append((codes, torch.from_numpy(acts.astype(np.int64)), torch.from_numpy(np.asarray(w.traj, np.int64)),
                 np.flatnonzero(nok), torch.from_numpy(pairs), torch.from_numpy(labels)))
inv = m.inverse
for p in inv.parameters():
    p.requires_grad_(True)
opt = torch.optim.Adam(inv.parameters(), lr=a.lr)
B = 64
t0 = time.time()
for step in range(a.steps):
    codes, acts, traj, valid, hp, hl = data[step % len(data)]
    ids = torch.from_numpy(rng.choice(valid, B, replace=False))
    xi = codes[ids]; z = torch.cat([codes[ids], codes[ids + 1]])
    lab, _ = pair_labels(ids, traj[ids], acts[ids])
    logits = inv(xi[:, None, :].expand(B, 2 * B, -1).reshape(-1, xi.shape[1]), z[None].expand(B, 2 * B, -1).reshape(-1, xi.shape[1])).reshape(B, 2 * B, -1)
    w = batch_class_weights(lab)
    loss = weighted_ce(logits, lab, w)
    if a.hard_weight > 0:
        hs = torch.from_numpy(rng.choice(len(hp), 4 * B, replace=False))
        hpair = hp[hs]; hlab = hl[hs]
        hlog = inv(codes[hpair[:, 0]], codes[hpair[:, 1]])
        loss = loss + a.hard_weight * weighted_ce(hlog, hlab, batch_class_weights(hlab))
    opt.zero_grad(); loss.backward(); opt.step()
    if step % 500 == 0:
        print(step, float(loss.detach()), f'{time.time()-t0:.0f}s', flush=True)
inv.eval()
for p in inv.parameters():
    p.requires_grad_(False)
out = Path(a.out)
if out.exists():
    shutil.rmtree(out)
save_model(m, out)
print('saved', out)
