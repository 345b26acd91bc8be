import sys, math, numpy as np, torch
sys.path.insert(0, '/work/main')
import small_gicp
from o4a_nav.learning import scanreg as S
from o4a_nav.learning.dataset import scan_bag
from o4a_nav.learning.report import relative_poses
rows = []
for bag in sys.argv[1:]:
    b = scan_bag(bag); L = b.laser; P = b.poses.astype(np.float64); g = L.geometry
    rng = np.random.default_rng(0)
    from scipy.spatial import cKDTree
    pr = cKDTree(P[:, :2]).query_pairs(1.5, output_type='ndarray')
    pr = pr[rng.choice(len(pr), min(1500, len(pr)), replace=False)]
    for i, j in pr:
        ci = S.prepare(S.scan_points(L.ranges[i], g.angle_min, g.angle_increment, g.range_min, g.range_max))
        cj = S.prepare(S.scan_points(L.ranges[j], g.angle_min, g.angle_increment, g.range_min, g.range_max))
        if ci is None or cj is None: continue
        res = small_gicp.align(ci.pc, cj.pc, ci.tree, registration_type='GICP', max_correspondence_distance=0.3, max_iterations=15, num_threads=1)
        T = np.asarray(res.T_target_source); yaw = math.atan2(T[1, 0], T[0, 0])
        rms, ov = S.fit_quality(ci, cj, T[0, 3], T[1, 3], yaw, 0.3)
        ok = rms <= 0.05 and ov >= 0.8
        if not ok: continue
        H = np.asarray(res.H); n = max(res.num_inliers, 1)
        ev_t = np.linalg.eigvalsh(H[3:5, 3:5]) / n
        ev_all = np.linalg.eigvalsh(H[np.ix_([2, 3, 4], [2, 3, 4])]) / n
        tx, ty, tw = relative_poses(P, np.array([i]), np.array([j]))
        err = math.hypot(T[0, 3] - tx[0], T[1, 3] - ty[0]); errw = abs(math.degrees((yaw - tw[0] + math.pi) % (2 * math.pi) - math.pi))
        rows.append((bag.split('/')[-1], err, errw, ev_t[0], ev_t[1], ev_all[0]))
import collections
for name in sorted({r[0] for r in rows}):
    R = np.array([r[1:] for r in rows if r[0] == name])
    bad = (R[:, 0] > 0.15) | (R[:, 1] > 10)
    print(name, 'accepted', len(R), 'bad', bad.sum())
    for q in (0.001, 0.01, 0.05, 0.1, 0.2, 0.5):
        keep = R[:, 2] > q
        print(f'  min trans eig/n > {q}: kept {keep.sum()} bad kept {(bad & keep).sum()} good lost {(~bad & ~keep).sum()}')
    print('  good min-eig quantiles', np.quantile(R[~bad, 2], [0.01, 0.05, 0.5]) if (~bad).any() else None, 'bad', np.quantile(R[bad, 2], [0.5, 0.95, 0.99]) if bad.any() else None)
