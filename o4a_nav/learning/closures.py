"""Stage 2's laser loop closures: appearance proposes, the scan disposes. ROS-free.

For one world:
  1. candidates: each frame's `knn` nearest frames in h's code space (exact, blocked
     torch matrix products), as unordered pairs;
  2. a cheap range-profile pre-check drops pairs whose scans cannot be a few centimetres
     and degrees apart (the median range difference, at the best of the rotations within
     +-24 deg, above `precheck_m`);
  3. each remaining pair is registered (o4a_nav.learning.scanreg: small_gicp GICP from the
     identity) and accepted when the fit passes RegParams;
  4. the registered relative pose is labelled STOP / FORWARD / ROTATE_LEFT / ROTATE_RIGHT
     within (tol_m, tol_deg) (scanreg.one_action), in both directions: i -> j by the pose
     of j in i, j -> i by its inverse (a FORWARD pair has no reverse action);
  5. growing (`grow_rounds`): where two trajectories pass the same place, the frames next
     to a verified pair along both of them, (i +- 1, j +- 1) within each recorded chain, are
     likely one action apart too, whether or not their codes are near: they are registered
     in turn (and so on, `grow_rounds` times). h's neighbours seed the places, the
     trajectories fill them in (what h misses in a building it never saw).

    out = laser_closures(codes, scans, geometry, mount, ClosureParams(), progress=...)
    out["src"], out["dst"], out["action"]      # directed one-action edges (int32, int32, int8)
    out["pair_src"], out["pair_dst"], out["pose"], out["ok"]   # every registered pair
    out["stats"]                               # counts and seconds per step

Registration runs in `workers` processes (fork): small_gicp holds the GIL, so threads do
not help. The per-frame clouds are prepared in the parent and inherited.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

import numpy as np
import torch

from o4a_nav.learning import scanreg as S
from o4a_nav.types import Pose2D


@dataclass(frozen=True)
class ScanGeometry:
    """What turns a row of ranges into points (LaserScan fields)."""

    angle_min: float
    angle_increment: float
    range_min: float
    range_max: float


@dataclass(frozen=True)
class ClosureParams:
    knn: int = 20                 # candidates per frame (nearest codes)
    precheck_m: float = 0.3       # range-profile pre-check (median |dr| at the best rotation)
    tol_m: float = 0.1            # labelling tolerance (as the `ideal` rule of the diagnostics)
    tol_deg: float = 7.5
    workers: int = 2              # registration processes
    grow_rounds: int = 2          # rounds of candidates grown along both trajectories from verified pairs
    reg: S.RegParams = field(default_factory=S.RegParams)


def knn_pairs(codes: torch.Tensor, k: int, block: int = 1024) -> tuple[np.ndarray, np.ndarray]:
    """Unordered pairs (i < j) where j is among i's k nearest codes or i among j's."""
    n = codes.shape[0]
    k = min(k, n - 1)
    if k <= 0:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    x = codes.float()
    sq = (x * x).sum(1)
    nn = np.empty((n, k), np.int64)
    with torch.no_grad():
        for s in range(0, n, block):
            d = sq[s:s + block, None] - 2 * x[s:s + block] @ x.T + sq[None]
            r = torch.arange(d.shape[0])
            d[r, r + s] = float("inf")
            nn[s:s + block] = d.topk(k, largest=False).indices.numpy()
    a = np.repeat(np.arange(n, dtype=np.int64), k)
    b = nn.ravel()
    key = np.unique(np.minimum(a, b) * n + np.maximum(a, b))
    return key // n, key % n


def range_profile_check(scans: np.ndarray, src: np.ndarray, dst: np.ndarray, geom: ScanGeometry,
                        threshold: float, max_turn_deg: float = 24.0, bin_deg: float = 2.0,
                        chunk: int = 20000) -> np.ndarray:
    """True where the two scans' range profiles (min range per `bin_deg` bin, no return =
    range_max) agree to a median |difference| below `threshold` at the best relative
    rotation within +-max_turn_deg. One-action pairs pass (they are centimetres apart);
    most places half a metre or more apart do not."""
    r = np.where(np.isfinite(scans), scans, geom.range_max)
    r = np.clip(r, 0.0, geom.range_max).astype(np.float32)
    per = max(1, int(round(math.radians(bin_deg) / geom.angle_increment)))
    nb = r.shape[1] // per
    prof = torch.from_numpy(np.ascontiguousarray(r[:, :nb * per].reshape(len(r), nb, per).min(-1)))
    max_shift = int(round(max_turn_deg / bin_deg))
    out = np.empty(len(src), bool)
    for s in range(0, len(src), chunk):
        pi, pj = prof[src[s:s + chunk]], prof[dst[s:s + chunk]]
        best = torch.full((pi.shape[0],), float("inf"))
        for sh in range(-max_shift, max_shift + 1):
            d = (pi[:, sh:] - pj[:, :nb - sh]) if sh >= 0 else (pi[:, :nb + sh] - pj[:, -sh:])
            best = torch.minimum(best, d.abs().median(1).values)
        out[s:s + chunk] = (best < threshold).numpy()
    return out


_CLOUDS: list = []      # the parent's prepared clouds, inherited by forked workers


def _register_chunk(args) -> np.ndarray:
    src, dst, reg = args
    out = np.full((len(src), 6), np.nan)
    for k, (i, j) in enumerate(zip(src, dst)):
        ci, cj = _CLOUDS[i], _CLOUDS[j]
        if ci is None or cj is None:
            continue
        r = S.register(ci, cj, params=reg)
        out[k] = (r.x, r.y, r.yaw, r.rms, r.overlap, float(r.ok))
    return out


def scan_clouds(scans: np.ndarray, geom: ScanGeometry, mount: Pose2D, reg: S.RegParams, progress=None) -> list:
    """One prepared scanreg.Cloud per frame (None where the scan has too few points)."""
    it = range(len(scans))
    if progress is not None:
        it = progress(it, desc="stage 2 laser: preparing scans", unit="scan", leave=False)
    return [S.prepare(S.scan_points(scans[i], geom.angle_min, geom.angle_increment, geom.range_min, geom.range_max,
                                    mount), reg) for i in it]


def register_pairs(clouds: list, src: np.ndarray, dst: np.ndarray, reg: S.RegParams, workers: int = 1,
                   progress=None, chunk: int = 500) -> np.ndarray:
    """(len(src), 6): x, y, yaw (pose of dst in src), rms, overlap, ok (1.0/0.0); NaN rows
    where a scan had too few points."""
    global _CLOUDS
    jobs = [(src[s:s + chunk], dst[s:s + chunk], reg) for s in range(0, len(src), chunk)]
    bar = progress(total=len(src), desc="stage 2 laser: registering candidates", unit="pair",
                   leave=False) if progress is not None else None
    parts = []
    _CLOUDS = clouds
    try:
        if workers > 1 and len(jobs) > 1:
            import multiprocessing as mp

            with mp.get_context("fork").Pool(workers) as pool:
                for job, res in zip(jobs, pool.imap(_register_chunk, jobs)):
                    parts.append(res)
                    if bar is not None:
                        bar.update(len(job[0]))
        else:
            for job in jobs:
                parts.append(_register_chunk(job))
                if bar is not None:
                    bar.update(len(job[0]))
    finally:
        _CLOUDS = []
        if bar is not None:
            bar.close()
    return np.concatenate(parts) if parts else np.zeros((0, 6))


def label_edges(pair_src, pair_dst, pose: np.ndarray, ok: np.ndarray, tol_m: float, tol_deg: float):
    """Directed one-action edges from registered pairs: (src, dst, action)."""
    s, d, p = pair_src[ok], pair_dst[ok], pose[ok]
    fwd = S.one_action(p[:, 0], p[:, 1], p[:, 2], tol_m, tol_deg)
    rev = S.one_action(*S.inverse_pose(p[:, 0], p[:, 1], p[:, 2]), tol_m, tol_deg)
    src = np.concatenate([s[fwd >= 0], d[rev >= 0]]).astype(np.int32)
    dst = np.concatenate([d[fwd >= 0], s[rev >= 0]]).astype(np.int32)
    act = np.concatenate([fwd[fwd >= 0], rev[rev >= 0]]).astype(np.int8)
    return src, dst, act


def _chain_links(n: int, traj) -> tuple[np.ndarray, np.ndarray]:
    """(prev, next) frame of each frame along its recorded trajectory, -1 at the ends."""
    prev, nxt = np.full(n, -1, np.int64), np.full(n, -1, np.int64)
    if traj is None or n < 2:
        return prev, nxt
    same = np.asarray(traj[1:]) == np.asarray(traj[:-1])
    i = np.flatnonzero(same)
    nxt[i], prev[i + 1] = i + 1, i
    return prev, nxt


def _grow(src, dst, chain, tried_src, tried_dst, n) -> tuple[np.ndarray, np.ndarray]:
    """Unordered pairs (a < b) next to the pairs (src, dst) along both trajectories (each
    end moved by -1, 0 or +1 frames within its chain), not tried before."""
    prev, nxt = chain
    moves = [lambda f: prev[f], lambda f: f, lambda f: nxt[f]]
    cand = []
    for mi in moves:
        for mj in moves:
            a, b = mi(src), mj(dst)
            ok = (a >= 0) & (b >= 0) & (a != b)
            cand.append(np.minimum(a[ok], b[ok]) * n + np.maximum(a[ok], b[ok]))
    keys = np.unique(np.concatenate(cand)) if cand else np.zeros(0, np.int64)
    tried = np.minimum(tried_src, tried_dst).astype(np.int64) * n + np.maximum(tried_src, tried_dst)
    keys = keys[~np.isin(keys, tried)]
    return keys // n, keys % n


def laser_closures(codes: torch.Tensor, scans: np.ndarray, geom: ScanGeometry, mount: Pose2D,
                   params: ClosureParams = ClosureParams(), progress=None, traj: np.ndarray | None = None) -> dict:
    """Verified one-action edges of one world (see the module docstring). traj: (N,)
    trajectory ids (consecutive frames of one id are a recorded chain), for growing."""
    stats: dict = {}
    t0 = time.perf_counter()
    src, dst = knn_pairs(codes, params.knn)
    stats["candidates"] = int(len(src))
    stats["knn_seconds"] = time.perf_counter() - t0
    t1 = time.perf_counter()
    keep = range_profile_check(scans, src, dst, geom, params.precheck_m) if params.precheck_m > 0 else \
        np.ones(len(src), bool)
    src, dst = src[keep], dst[keep]
    stats["after_precheck"] = int(len(src))
    stats["precheck_seconds"] = time.perf_counter() - t1
    t2 = time.perf_counter()
    clouds = scan_clouds(scans, geom, mount, params.reg, progress)
    stats["prepare_seconds"] = time.perf_counter() - t2
    t3 = time.perf_counter()
    res = register_pairs(clouds, src, dst, params.reg, params.workers, progress)
    stats["grown"] = 0
    g_src = np.zeros(0, np.int64)
    chain = _chain_links(len(scans), traj)
    for _ in range(params.grow_rounds if traj is not None else 0):
        seed = (res[:, 5] == 1.0) & (S.one_action(res[:, 0], res[:, 1], res[:, 2], params.tol_m,
                                                      params.tol_deg) >= 0)
        if stats["grown"]:
            seed[:len(seed) - len(g_src)] = False     # only the last round's pairs seed the next
        g_src, g_dst = _grow(src[seed], dst[seed], chain, src, dst, len(scans))
        if not len(g_src):
            break
        g_res = register_pairs(clouds, g_src, g_dst, params.reg, params.workers, progress)
        src, dst, res = np.concatenate([src, g_src]), np.concatenate([dst, g_dst]), np.concatenate([res, g_res])
        stats["grown"] += int(len(g_src))
    stats["register_seconds"] = time.perf_counter() - t3
    ok = res[:, 5] == 1.0
    e_src, e_dst, e_act = label_edges(src, dst, res[:, :3], ok, params.tol_m, params.tol_deg)
    stats["registered"] = int(len(src))
    stats["accepted"] = int(ok.sum())
    stats["edges"] = int(len(e_src))
    stats["seconds"] = time.perf_counter() - t0
    return {"src": e_src, "dst": e_dst, "action": e_act, "pair_src": src.astype(np.int32),
            "pair_dst": dst.astype(np.int32), "pose": res[:, :3].astype(np.float32), "ok": ok, "stats": stats}
