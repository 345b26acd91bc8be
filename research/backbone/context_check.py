"""Do aliases survive when the scans around a closure must agree too? For each loop edge
of a model's graph (i -> j, pose of j in i = the nominal motion of its action), the frames
k = 1..K steps before and after i along i's recorded trajectory are placed in j's frame
(the chain's nominal motions composed) and their scans scored against j's scan at that
pose (scanreg.fit_quality: share of points within 0.3 m), and the same from j's side.
Prints the score's distribution for exact and for wrong edges (true poses) and what a
threshold keeps. Usage: .venv/bin/python research/backbone/context_check.py MODEL_DIR BAG [K [PERCENTILE]]"""
import sys
from pathlib import Path

import numpy as np

from o4a_nav.learning import closures as C
from o4a_nav.learning import graph as G
from o4a_nav.learning import report as R
from o4a_nav.learning import scanreg as S
from o4a_nav.learning.dataset import scan_bag
from o4a_nav.types import FORWARD_STEP_M, ROTATE_STEP_RAD, Action

mdir, bag = Path(sys.argv[1]), sys.argv[2]
K = int(sys.argv[3]) if len(sys.argv) > 3 else 6
PCT = float(sys.argv[4]) if len(sys.argv) > 4 else 10.0   # the percentile of the context scores kept
bf = scan_bag(bag)
z = dict(np.load(mdir / G.graph_name(bf.world), allow_pickle=True))
loop = ~z["chain"] & (z["src"] < z["dst"])
src, dst, act = z["src"][loop].astype(np.int64), z["dst"][loop].astype(np.int64), z["action"][loop]
exact = R.exact_closures(bf.poses, src, dst, act)
n = len(bf.poses)
clouds = C.scan_clouds(bf.laser.ranges, bf.laser.geometry, bf.laser.mount, S.RegParams())


def motion(a):
    return {int(Action.FORWARD): (FORWARD_STEP_M, 0.0, 0.0), int(Action.ROTATE_LEFT): (0.0, 0.0, ROTATE_STEP_RAD),
            int(Action.ROTATE_RIGHT): (0.0, 0.0, -ROTATE_STEP_RAD)}.get(int(a), (0.0, 0.0, 0.0))


def compose(p, q):
    c, s = np.cos(p[2]), np.sin(p[2])
    return (p[0] + c * q[0] - s * q[1], p[1] + s * q[0] + c * q[1], p[2] + q[2])


def inv(p):
    x, y, yaw = S.inverse_pose(p[0], p[1], p[2])
    return (float(x), float(y), float(yaw))


# Q[t]: nominal pose of frame t in its trajectory's first frame
Q = np.zeros((n, 3))
for t in range(1, n):
    Q[t] = compose(Q[t - 1], motion(bf.actions[t - 1])) if bf.traj[t] == bf.traj[t - 1] else (0, 0, 0)


def rel(a, b):           # pose of frame b in frame a, same trajectory
    return compose(inv(tuple(Q[a])), tuple(Q[b]))


def side(i, j, T_ij):    # scans around i, placed in j's frame, against j's scan
    out = []
    T_ji = inv(T_ij)
    for k in list(range(-K, 0)) + list(range(1, K + 1)):
        a = i + k
        if a < 0 or a >= n or bf.traj[a] != bf.traj[i] or clouds[a] is None or clouds[j] is None:
            continue
        x, y, yaw = compose(T_ji, rel(i, a))
        out.append(S.fit_quality(clouds[j], clouds[a], x, y, yaw, 0.3)[1])
    return out


scores = np.ones(len(src))
for e, (i, j, a) in enumerate(zip(src, dst, act)):
    T = motion(a)
    ov = side(i, j, T) + side(j, i, inv(T))
    scores[e] = np.percentile(ov, PCT) if ov else 1.0
print(f"{bf.world}: {len(src)} loop pairs, {int((~exact).sum())} wrong; K={K}")
for name, m in (("exact", exact), ("wrong", ~exact)):
    if m.any():
        print(f"  {name}: score p5/p25/p50 {np.percentile(scores[m], [5, 25, 50]).round(3)}")
for th in (0.3, 0.4, 0.5, 0.6, 0.7):
    keep = scores >= th
    print(f"  threshold {th}: keeps {keep[exact].mean():.3f} of exact, {int(keep[~exact].sum())} of "
          f"{int((~exact).sum())} wrong")
