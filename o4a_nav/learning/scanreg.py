"""2D laser-scan registration: the one place the project aligns two scans. ROS-free.

Used by stage 2 (`graph.closures: laser`: which candidate pairs of frames are one action
apart, and which action) and by odometry labelling (an independent displacement between
consecutive frames).

The registration itself is small_gicp's GICP (C++, PyPI `small_gicp`, pinned
in requirements-robot.txt; chosen over kiss-icp and open3d in docs/journal/learning.md, "Laser
loop closures"). small_gicp works on 3D points: a planar scan is lifted to a three-layer
wall (z = -0.1, 0, +0.1 m), which keeps the problem well-posed, and the result is projected
back to the plane (x, y, yaw). Points are given in the robot's base frame (the laser's
mount applied: `scan_points(..., mount=)`), so a registered pose is a base-to-base pose.

    pts_i = scan_points(ranges_i, angle_min, angle_increment, range_min, range_max, mount)
    ci, cj = prepare(pts_i), prepare(pts_j)        # once per frame (downsampled, KD-tree)
    r = register(ci, cj)                            # pose of frame j in frame i's base frame
    r.x, r.y, r.yaw, r.rms, r.overlap, r.ok         # r.ok: rms and overlap pass RegParams
    one_action(r.x, r.y, r.yaw)                     # Action it amounts to, or -1

Fit quality is judged here, not by small_gicp's cost: after alignment every source point
is matched to its nearest target point (KD-tree); `overlap` is the share of source points
within `max_corr_m`, `rms` the RMS distance of those matches. A pair is accepted when
rms <= max_rms_m and overlap >= min_overlap, and when the fit constrains the translation
in every direction (min_constraint: not a featureless corridor).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from o4a_nav.types import FORWARD_STEP_M, ROTATE_STEP_RAD, Action, Pose2D, wrap_angle

LAYERS_M = (-0.1, 0.0, 0.1)


@dataclass(frozen=True)
class RegParams:
    """Registration and acceptance settings (defaults measured in docs/journal/learning.md)."""

    method: str = "GICP"           # small_gicp registration type: GICP, ICP or PLANE_ICP
    voxel_m: float = 0.1           # downsampling of each scan before registration
    max_corr_m: float = 0.3        # correspondence gate
    max_iterations: int = 15
    max_rms_m: float = 0.05        # accepted: RMS of matched points after alignment ...
    min_overlap: float = 0.8       # ... and at least this share of points matched
    min_points: int = 30           # a scan with fewer valid points is never registered
    # ... and the fit must pin the translation down in every direction: the smallest
    # eigenvalue of the registration's translational information (small_gicp's H), per
    # matched point, at least this. A straight corridor constrains nothing along its axis
    # (an exact-looking fit anywhere along it); measured: right poses >= 55, such fits ~0.5.
    min_constraint: float = 20.0

    def validate(self) -> RegParams:
        for k in ("voxel_m", "max_corr_m", "max_rms_m"):
            if not getattr(self, k) > 0:
                raise ValueError(f"scan registration: {k} must be > 0, got {getattr(self, k)}")
        if not 0 < self.min_overlap <= 1:
            raise ValueError(f"scan registration: min_overlap must be in (0, 1], got {self.min_overlap}")
        if self.method not in ("GICP", "ICP", "PLANE_ICP"):
            raise ValueError(f"scan registration: method must be GICP, ICP or PLANE_ICP, not {self.method!r}")
        if self.max_iterations < 1 or self.min_points < 3:
            raise ValueError("scan registration: max_iterations >= 1 and min_points >= 3 required")
        return self


@dataclass(frozen=True)
class Registration:
    """Pose of the source frame in the target frame (base frames), and the fit."""

    x: float
    y: float
    yaw: float
    rms: float
    overlap: float
    ok: bool


def scan_points(ranges, angle_min: float, angle_increment: float, range_min: float, range_max: float,
                mount: Pose2D = Pose2D(0.0, 0.0, 0.0)) -> np.ndarray:
    """Finite returns within [range_min, range_max] as (P, 2) float64 points in the base
    frame (the laser's mount pose in the base frame applied)."""
    r = np.asarray(ranges, np.float64)
    a = angle_min + angle_increment * np.arange(len(r)) + mount.yaw
    ok = np.isfinite(r) & (r >= range_min) & (r <= range_max)
    r, a = r[ok], a[ok]
    return np.stack([mount.x + r * np.cos(a), mount.y + r * np.sin(a)], axis=1)


class Cloud:
    """One scan prepared for registration: downsampled 3-layer points and a KD-tree."""

    __slots__ = ("pc", "tree", "n", "xy", "normals")

    def __init__(self, pc, tree, xy: np.ndarray, normals: np.ndarray):
        self.pc, self.tree, self.xy, self.normals = pc, tree, xy, normals
        self.n = len(xy)


def _lift(xy: np.ndarray) -> np.ndarray:
    out = np.empty((len(xy) * len(LAYERS_M), 3))
    for k, z in enumerate(LAYERS_M):
        out[k::len(LAYERS_M), :2] = xy
        out[k::len(LAYERS_M), 2] = z
    return out


def prepare(points_xy: np.ndarray, params: RegParams = RegParams()) -> Cloud | None:
    """A Cloud, or None when the scan has fewer than params.min_points valid points."""
    import small_gicp

    xy = np.asarray(points_xy, np.float64).reshape(-1, 2)
    if len(xy) < params.min_points:
        return None
    pc, tree = small_gicp.preprocess_points(_lift(xy), downsampling_resolution=params.voxel_m, num_threads=1)
    pts = np.asarray(pc.points())
    if len(pts) < params.min_points:
        return None
    return Cloud(pc, tree, pts[:, :2].copy(), np.asarray(pc.normals())[:, :2].copy())


def _se3(x: float, y: float, yaw: float) -> np.ndarray:
    T = np.eye(4)
    c, s = math.cos(yaw), math.sin(yaw)
    T[:2, :2] = [[c, -s], [s, c]]
    T[:2, 3] = (x, y)
    return T


def register(target: Cloud, source: Cloud, init: tuple[float, float, float] = (0.0, 0.0, 0.0),
             params: RegParams = RegParams()) -> Registration:
    """Align `source` to `target` from the initial pose `init` (x, y, yaw of the source in
    the target frame): the registered pose and its fit."""
    import small_gicp

    res = small_gicp.align(target.pc, source.pc, target.tree, init_T_target_source=_se3(*init),
                           registration_type=params.method, max_correspondence_distance=params.max_corr_m,
                           max_iterations=params.max_iterations, num_threads=1)
    T = np.asarray(res.T_target_source)
    yaw = math.atan2(T[1, 0], T[0, 0])
    x, y = float(T[0, 3]), float(T[1, 3])
    rms, overlap = fit_quality(target, source, x, y, yaw, params.max_corr_m)
    ok = bool(np.isfinite(rms) and rms <= params.max_rms_m and overlap >= params.min_overlap)
    if ok and params.min_constraint > 0:
        H = np.asarray(res.H)[3:5, 3:5] / max(int(res.num_inliers), 1)
        ok = bool(np.linalg.eigvalsh(H)[0] >= params.min_constraint)
    return Registration(x, y, yaw, rms, overlap, ok)


def fit_quality(target: Cloud, source: Cloud, x: float, y: float, yaw: float, gate: float) -> tuple[float, float]:
    """(rms, overlap) with the source moved by (x, y, yaw) into the target frame: overlap is
    the share of source points within `gate` of a target point, rms the RMS point-to-line
    distance of those (along the target point's normal: independent of the downsampling)."""
    c, s = math.cos(yaw), math.sin(yaw)
    p = source.pc.points()[:, :3].copy()
    p[:, :2] = p[:, :2] @ np.array([[c, s], [-s, c]]) + (x, y)
    idx, sq = target.tree.batch_nearest_neighbor_search(p, num_threads=1)
    idx, sq = np.asarray(idx), np.asarray(sq, np.float64)
    hit = (idx >= 0) & (sq <= gate * gate)
    if not hit.any():
        return math.inf, 0.0
    k = idx[hit]
    tp = target.pc.points()[k, :2]
    res = ((p[hit, :2] - tp) * target.normals[k]).sum(1)
    return float(math.sqrt(np.mean(res * res))), float(hit.mean())


def one_action(x, y, yaw, tol_m: float = 0.1, tol_deg: float = 7.5):
    """Which single action moves a robot from a frame to one whose pose in that frame is
    (x, y, yaw): STOP (same place and heading), FORWARD (FORWARD_STEP_M ahead),
    ROTATE_LEFT / ROTATE_RIGHT (same place, turned by +/- ROTATE_STEP_RAD), each within
    tol_m and tol_deg; -1 for none. Vectorised over arrays."""
    x, y, yaw = (np.asarray(v, np.float64) for v in (x, y, yaw))
    yaw = wrap_angle(yaw)
    tol = math.radians(tol_deg)
    here = np.hypot(x, y) < tol_m
    out = np.full(np.broadcast(x, y, yaw).shape, -1, np.int8)
    out[here & (np.abs(yaw) < tol)] = int(Action.STOP)
    out[here & (np.abs(yaw - ROTATE_STEP_RAD) < tol)] = int(Action.ROTATE_LEFT)
    out[here & (np.abs(yaw + ROTATE_STEP_RAD) < tol)] = int(Action.ROTATE_RIGHT)
    out[(np.hypot(x - FORWARD_STEP_M, y) < tol_m) & (np.abs(yaw) < tol)] = int(Action.FORWARD)
    return out


def inverse_pose(x, y, yaw):
    """(x, y, yaw) of frame i in frame j, given frame j's pose (x, y, yaw) in frame i."""
    c, s = np.cos(yaw), np.sin(yaw)
    return -(c * x + s * y), (s * x - c * y), -np.asarray(yaw)
