"""A_free from a planar laser scan (ROS-free).

FORWARD is blocked when any obstacle return lies inside the box swept in front of the
robot (base frame, x forward, y left):

    box_x_min < x < box_x_max  and  |y| < box_half_width

The paper uses 0 < x < 0.5 m, |y| < 0.17 m. Our default half-width is 0.22 m: at least as
wide as a robot of radius 0.20 m (the simulated robot), since a box narrower than the robot
lets an obstacle graze the robot's sides, plus 2 cm because a door jamb seen edge-on can fall
between two laser rays (with exactly 0.20 m the benchmark's oracle hit a jamb in 13 of 175
episodes, with 0.22 m in 1). The constructor refuses a box
narrower than the footprint's half-width or shorter than the footprint's front plus one
FORWARD step (0.25 m).

Rotations in place: with a circular footprint centred on the base origin (the default,
``footprint`` empty) rotations sweep no new area and are always free, as in the paper.
With a polygonal footprint (``footprint`` = [x1, y1, x2, y2, ...] in the base frame) a
rotation by ``rotation_step`` rad is blocked when an obstacle point enters the area
swept by the polygon. The sweep is checked by sampling the rotation so that no point
moves more than ``rotation_resolution`` (default 1 cm) between samples. Returns that lie
inside the current footprint cannot be outside obstacles (they are self-hits, or the
robot is already in contact) and are ignored for the rotation check only; FORWARD still
counts them.

Range semantics (sensor_msgs/LaserScan, REP 117), per ray:
- finite, range_min <= r <= range_max: a valid return, an obstacle point.
- +inf, or finite r > range_max: no return within range: free along the ray.
- -inf: an object closer than range_min. Its exact distance is unknown, so the whole
  segment (0, range_min] of the ray counts as occupied (``neg_inf_is_obstacle``, default
  true). A laser mounted so that this segment reaches into the box therefore blocks
  FORWARD on any -inf there.
- finite r < range_min (drivers that do not follow REP 117 report "too close" like this):
  treated like -inf when ``below_min_is_obstacle`` (default true), else ignored.
- NaN: an invalid measurement (REP 117). Ignored by default (``nan_is_obstacle`` false)
  and counted in ``n_invalid``; with ``nan_is_obstacle`` true the whole ray segment
  (0, range_max] counts as occupied, which is the conservative choice for sensors that
  report NaN for dark or transparent surfaces.

A scan with a non-finite angle_min, angle_increment, range_min or range_max clears
nothing: FORWARD (and with a polygon footprint the rotations) are blocked.

STOP is never part of A_free (it is always possible).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from o4a_nav.errors import UserError
from o4a_nav.params import Params, param
from o4a_nav.topics import LASER_FRAME
from o4a_nav.types import FORWARD_STEP_M, ROTATE_STEP_RAD, Action, ScanData

COVERAGE_RESOLUTION = 0.01  # m: spacing of the box points that the rays must prove free


@dataclass
class FootprintParams(Params):
    """Geometry used by :class:`CollisionChecker` (collision_checker, the navigator's safety
    gate, the explorer). Lengths in metres, angles in rad, in the base frame."""
    OWNER: ClassVar[str] = "collision checker"

    laser_x: float = param(0.0, "x of the laser origin in the base frame [m]", (-5.0, 5.0))
    laser_y: float = param(0.0, "y of the laser origin in the base frame [m]", (-5.0, 5.0))
    laser_yaw: float = param(0.0, "yaw of the laser frame relative to the base frame [rad]", (-math.pi, math.pi))
    box_x_min: float = param(0.0, "FORWARD swept box: near edge, base frame x [m] (paper 0)", (-1.0, 5.0))
    box_x_max: float = param(0.5, "FORWARD swept box: far edge, base frame x [m] (paper 0.5); "
                                  ">= robot front + 0.25", (0.0, 5.0))
    # paper 0.17; robot half-width (radius 0.20 here) + 2 cm margin
    box_half_width: float = param(0.22, "FORWARD swept box half-width [m] (paper 0.17); >= robot half-width",
                                  (0.01, 5.0))
    robot_radius: float = param(0.20, "radius of a circular footprint [m] (used when footprint is empty)",
                                (0.01, 5.0))
    footprint: list[float] = param([], "polygon footprint x1, y1, x2, y2, ... in the base frame [m]; "
                                       "empty = circle (rotations then always free)")
    rotation_step: float = param(ROTATE_STEP_RAD, "rotation checked for ROTATE_LEFT/RIGHT with a polygon "
                                                  "footprint [rad]", (0.0, math.pi))
    rotation_resolution: float = param(0.01, "largest point displacement between rotation samples [m]",
                                       (0.001, 0.5))
    neg_inf_is_obstacle: bool = param(True, "-inf ranges (closer than range_min, REP 117) occupy "
                                            "(0, range_min] of the ray")
    below_min_is_obstacle: bool = param(True, "finite ranges below range_min count like -inf "
                                              "(drivers without REP 117)")
    nan_is_obstacle: bool = param(False, "NaN ranges occupy the whole ray up to range_max (default: ignored)")
    laser_frame: str = param(LASER_FRAME, "frame_id the scans must carry (the laser mounted at laser_x/y/yaw; "
                                          "tf2 is not used); scans from another frame are refused; empty = no check")
    max_angle_increment: float = param(0.035, "coarser scans cannot prove the swept box free and are refused "
                                              "[rad] (0.035 = 2 deg)", (0.0001, 1.0))

    def _check(self) -> None:
        p = self
        if p.box_x_max <= p.box_x_min:
            raise UserError(f"collision checker: box_x_max ({p.box_x_max}) must exceed box_x_min ({p.box_x_min})")
        fp = list(p.footprint)
        if fp and (len(fp) % 2 or len(fp) < 6):
            raise UserError(
                f"collision checker: footprint must list at least 3 points as x1, y1, x2, y2, ... "
                f"(got {len(fp)} numbers)")
        if fp:
            pts = np.asarray(fp, dtype=np.float64).reshape(-1, 2)
            if not np.all(np.isfinite(pts)):
                raise UserError(f"collision checker: footprint must hold finite numbers, got {fp}")
            half_w = float(np.max(np.abs(pts[:, 1])))
            front = float(np.max(pts[:, 0]))
        else:
            half_w = front = p.robot_radius
        if p.box_half_width + 1e-9 < half_w:
            raise UserError(
                f"collision checker: box_half_width ({p.box_half_width} m) is narrower than the robot "
                f"({half_w} m half-width); obstacles beside the box would hit the robot")
        if p.box_x_max + 1e-9 < front + FORWARD_STEP_M:
            raise UserError(
                f"collision checker: box_x_max ({p.box_x_max} m) must cover the robot front ({front} m) "
                f"plus one FORWARD step ({FORWARD_STEP_M} m)")


@dataclass(frozen=True)
class FreeActionsResult:
    """A_free and what it was computed from."""

    free: frozenset          # frozenset[Action], never contains STOP
    forward_clearance: float  # x distance [m] from box_x_min to the nearest occupied point in
    #                           the corridor |y| < box_half_width ahead of box_x_min; +inf if none
    points_in_box: int        # rays whose obstacle (point or -inf segment) lies in the box
    n_invalid: int            # NaN rays
    stamp: float              # stamp of the scan
    uncovered: int = 0        # box points (1 cm grid outside the footprint) that no ray proves free
    fault: str = ""           # why the scan cannot be used at all ("" = consistent)
    reason: str = ""          # why FORWARD is blocked ("" = free)

    @property
    def forward(self) -> bool:
        return Action.FORWARD in self.free

    @property
    def rotate_left(self) -> bool:
        return Action.ROTATE_LEFT in self.free

    @property
    def rotate_right(self) -> bool:
        return Action.ROTATE_RIGHT in self.free


def _points_in_polygon(px: np.ndarray, py: np.ndarray, poly: np.ndarray) -> np.ndarray:
    """Even-odd rule, vectorised over points. poly: (k, 2)."""
    inside = np.zeros(px.shape, dtype=bool)
    xj, yj = poly[-1]
    for xi, yi in poly:
        cond = (yi > py) != (yj > py)
        with np.errstate(divide="ignore", invalid="ignore"):
            xcross = (xj - xi) * (py - yi) / (yj - yi) + xi
        inside ^= cond & (px < xcross)
        xj, yj = xi, yi
    return inside


class CollisionChecker:
    """Computes A_free from a :class:`~o4a_nav.types.ScanData`. Stateless apart from the
    geometry; cheap enough to run on every scan (vectorised numpy)."""

    def __init__(self, params: FootprintParams | None = None, **overrides):
        p = params or FootprintParams()
        if overrides:
            p = FootprintParams(**{**p.__dict__, **overrides})
        self.params = p   # validated by FootprintParams
        fp = np.asarray(p.footprint, dtype=np.float64)
        self.polygon: np.ndarray | None = fp.reshape(-1, 2) if fp.size else None
        if self.polygon is not None:
            self._circumradius = float(np.max(np.hypot(self.polygon[:, 0], self.polygon[:, 1])))
        else:
            self._circumradius = p.robot_radius
        self._samples_cache: dict = {}  # x_max -> box sample points (the monitor shrinks the box)

    # ------------------------------------------------------------------ geometry
    def box_polygon(self) -> list[tuple[float, float]]:
        """Corners of the FORWARD swept box in the base frame (for RViz)."""
        p = self.params
        return [(p.box_x_min, -p.box_half_width), (p.box_x_max, -p.box_half_width),
                (p.box_x_max, p.box_half_width), (p.box_x_min, p.box_half_width)]

    def _to_base(self, angles: np.ndarray, r: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        p = self.params
        a = angles + p.laser_yaw
        return p.laser_x + r * np.cos(a), p.laser_y + r * np.sin(a)

    def _segment_hits(self, angles: np.ndarray, r0: float, r1: np.ndarray, x_max: float):
        """Open-box intersection of ray segments [r0, r1] (Liang-Barsky). Returns
        (hit mask, x of the entry point or +inf) for the box with the given x_max."""
        p = self.params
        a = angles + p.laser_yaw
        dx, dy = np.cos(a), np.sin(a)
        t0 = np.full(angles.shape, float(r0))
        t1 = np.asarray(r1, dtype=np.float64).copy()
        for p0, d, lo, hi in ((p.laser_x, dx, p.box_x_min, x_max),
                              (p.laser_y, dy, -p.box_half_width, p.box_half_width)):
            with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
                ta = (lo - p0) / d
                tb = (hi - p0) / d
            par = np.abs(d) < 1e-12
            enter = np.where(par, -np.inf, np.minimum(ta, tb))
            exit_ = np.where(par, np.inf, np.maximum(ta, tb))
            outside = par & ~((p0 > lo) & (p0 < hi))
            t0 = np.maximum(t0, enter)
            t1 = np.where(outside, -np.inf, np.minimum(t1, exit_))
        hit = t0 < t1
        x_entry = np.where(hit, p.laser_x + t0 * dx, np.inf)
        return hit, x_entry

    # ------------------------------------------------------------------ scan checks
    def scan_fault(self, scan: ScanData) -> str:
        """Why the scan cannot be used at all ("" when it is consistent): another frame than
        ``laser_frame``, no rays, non-finite or absurd geometry, an angle_max that disagrees
        with the ray count."""
        p = self.params
        n = int(np.asarray(scan.ranges).size)
        if p.laser_frame and scan.frame_id is not None and scan.frame_id != p.laser_frame:
            return f"scan frame_id {scan.frame_id!r} is not the configured laser_frame {p.laser_frame!r}"
        if n == 0:
            return "empty scan (no rays)"
        vals = (scan.angle_min, scan.angle_increment, scan.range_min, scan.range_max)
        if not all(math.isfinite(float(v)) for v in vals):
            return "non-finite scan geometry (angle_min, angle_increment, range_min or range_max)"
        inc = abs(float(scan.angle_increment))
        if inc == 0.0 and n > 1:
            return "angle_increment is 0"
        if inc > p.max_angle_increment:
            return (f"angle_increment {math.degrees(inc):.2f} deg is coarser than max_angle_increment "
                    f"{math.degrees(p.max_angle_increment):.2f} deg")
        if inc * (n - 1) > 2.0 * math.pi + inc:
            return f"{n} rays of {math.degrees(inc):.3f} deg span more than a full turn"
        if not 0.0 <= float(np.float32(scan.range_min)) < float(np.float32(scan.range_max)):
            return f"range_min {scan.range_min} / range_max {scan.range_max} inconsistent"
        if scan.reported_angle_max is not None:
            am = float(scan.reported_angle_max)
            expect = float(scan.angle_min) + float(scan.angle_increment) * (n - 1)
            if not math.isfinite(am) or abs(am - expect) > inc + 1e-4:
                return (f"angle_max {am:.4f} rad disagrees with {n} rays from angle_min {scan.angle_min:.4f} "
                        f"by {scan.angle_increment:.5f} (expected {expect:.4f})")
        return ""

    def _rays(self, scan: ScanData):
        """Per-ray classification in the laser frame (REP 117, see the module doc)."""
        p = self.params
        r = np.asarray(scan.ranges, dtype=np.float64).ravel()
        angles = scan.angle_min + scan.angle_increment * np.arange(r.size, dtype=np.float64)
        # LaserScan carries range_min/range_max as float32: compare in that precision (a value
        # that is non-zero only in float64, e.g. a denormal, is 0 on the wire)
        rmin, rmax = float(np.float32(scan.range_min)), float(np.float32(scan.range_max))
        nan = np.isnan(r)
        valid = np.isfinite(r) & (r >= rmin) & (r <= rmax)
        close = np.zeros_like(valid)
        if p.neg_inf_is_obstacle:
            close |= np.isneginf(r)
        if p.below_min_is_obstacle:
            close |= np.isfinite(r) & (r < rmin)
        seg_end = np.where(close, max(rmin, 1e-3), np.nan)
        if p.nan_is_obstacle:
            seg_end = np.where(nan, rmax, seg_end)
        seg = close | (nan & p.nan_is_obstacle)
        # how far along each ray the scan proves the space free: up to a valid return, or up
        # to range_max for +inf (no return); nothing for NaN, -inf, below range_min and finite
        # values above range_max (REP 117: to be discarded)
        proven = np.where(valid, r, np.where(np.isposinf(r), rmax, 0.0))
        return r, angles, valid, nan, seg, seg_end, proven

    def _box_samples(self, x_max: float) -> tuple[np.ndarray, np.ndarray]:
        """Centres of a grid of at most COVERAGE_RESOLUTION over the open box
        box_x_min < x < x_max, |y| < box_half_width, outside the current footprint (the
        robot's own body cannot hide an obstacle, and a laser cannot see through it)."""
        key = round(float(x_max), 6)
        cache = self._samples_cache
        if key in cache:
            return cache[key]
        p = self.params
        nx = max(1, int(math.ceil((x_max - p.box_x_min) / COVERAGE_RESOLUTION)))
        ny = max(1, int(math.ceil(2 * p.box_half_width / COVERAGE_RESOLUTION)))
        xs = p.box_x_min + (np.arange(nx) + 0.5) * (x_max - p.box_x_min) / nx
        ys = -p.box_half_width + (np.arange(ny) + 0.5) * (2 * p.box_half_width) / ny
        gx, gy = np.meshgrid(xs, ys, indexing="ij")
        gx, gy = gx.ravel(), gy.ravel()
        if self.polygon is None:
            outside = np.hypot(gx, gy) > self.params.robot_radius
        else:
            outside = ~_points_in_polygon(gx, gy, self.polygon)
        if len(cache) > 64:
            cache.clear()
        cache[key] = (gx[outside], gy[outside])
        return cache[key]

    def _uncovered(self, scan: ScanData, angles: np.ndarray, proven: np.ndarray, x_max: float) -> int:
        """Box points (x < x_max) that the scan does not prove free: the ray nearest to the
        point's bearing (within half an angle_increment) must be free beyond the point."""
        p = self.params
        # the box length rounded up to whole centimetres (conservative; few cached grids)
        bx, by = self._box_samples(min(math.ceil(x_max * 100.0 - 1e-9) / 100.0, max(x_max, p.box_x_max)))
        if bx.size == 0:
            return 0
        n = proven.size
        dx, dy = bx - p.laser_x, by - p.laser_y
        dist = np.hypot(dx, dy)
        bearing = np.arctan2(dy, dx) - p.laser_yaw
        inc = float(scan.angle_increment)
        step = abs(inc)
        if n == 1 or step < 1e-9:
            return int(bx.size)  # one direction cannot cover an area
        # angle from the first ray in the scan's own direction of rotation, in [-step/2, 2 pi - step/2)
        rel = np.sign(inc) * (bearing - float(scan.angle_min))
        rel = np.mod(rel + step / 2.0, 2.0 * math.pi) - step / 2.0
        idx = np.rint(rel / step).astype(np.int64)
        full_turn = step * n >= 2.0 * math.pi - 1e-6
        if full_turn:
            idx = np.mod(idx, n)
        inside = (idx >= 0) & (idx < n)
        ok = np.zeros(bx.shape, dtype=bool)
        ok[inside] = proven[idx[inside]] >= dist[inside]
        return int((~ok).sum())

    def _forward_check(self, scan: ScanData, x_max: float):
        """(points in the box x < x_max, clearance, uncovered box points, NaN rays, rays)."""
        p = self.params
        r, angles, valid, nan, seg, seg_end, proven = self._rays(scan)
        vx, vy = self._to_base(angles[valid], r[valid])
        in_box = (vx > p.box_x_min) & (vx < x_max) & (np.abs(vy) < p.box_half_width)
        corridor = (vx > p.box_x_min) & (np.abs(vy) < p.box_half_width)
        clearance = float(np.min(vx[corridor])) - p.box_x_min if corridor.any() else math.inf
        n_in_box = int(in_box.sum())
        if seg.any():  # unknown-distance rays as segments
            hit, _ = self._segment_hits(angles[seg], 0.0, seg_end[seg], x_max)
            n_in_box += int(hit.sum())
            _, x_entry = self._segment_hits(angles[seg], 0.0, seg_end[seg], math.inf)
            if x_entry.size:
                clearance = min(clearance, float(np.min(x_entry)) - p.box_x_min)
        uncovered = self._uncovered(scan, angles, proven, x_max)
        return n_in_box, clearance, uncovered, int(nan.sum()), (r, angles, valid, seg, seg_end, vx, vy)

    # ------------------------------------------------------------------ main entry
    def free_actions(self, scan: ScanData) -> FreeActionsResult:
        p = self.params
        fault = self.scan_fault(scan)
        if fault:
            # a scan that cannot be trusted clears nothing: FORWARD blocked (and with a
            # polygon footprint the rotations)
            rot = {Action.ROTATE_LEFT, Action.ROTATE_RIGHT} if self.polygon is None else set()
            return FreeActionsResult(frozenset(rot), 0.0, 0, int(np.asarray(scan.ranges).size), float(scan.stamp),
                                     fault=fault, reason=f"scan fault: {fault}")
        n_in_box, clearance, uncovered, n_nan, (r, angles, valid, seg, seg_end, vx, vy) = \
            self._forward_check(scan, p.box_x_max)
        free = set()
        reason = ""
        if n_in_box:
            reason = f"{n_in_box} return(s) in the swept box"
        elif uncovered:
            reason = f"the scan does not prove the swept box free ({uncovered} box points without a valid ray)"
        else:
            free.add(Action.FORWARD)
        if self.polygon is None:
            free.update((Action.ROTATE_LEFT, Action.ROTATE_RIGHT))
        else:
            px, py = self._obstacle_points(angles, vx, vy, seg, seg_end)
            if not self._rotation_blocked(px, py, +1.0):
                free.add(Action.ROTATE_LEFT)
            if not self._rotation_blocked(px, py, -1.0):
                free.add(Action.ROTATE_RIGHT)
        return FreeActionsResult(frozenset(free), max(clearance, 0.0), n_in_box, n_nan, float(scan.stamp),
                                 uncovered=uncovered, reason=reason)

    def _obstacle_points(self, angles, vx, vy, seg, seg_end):
        if seg.any():
            sx, sy = self._sample_segments(angles[seg], seg_end[seg])
            return np.concatenate([vx, sx]), np.concatenate([vy, sy])
        return vx, vy

    # ------------------------------------------------------------------ motion monitor
    def forward_rest_blocked(self, scan: ScanData, travelled: float) -> str:
        """Collision monitor for a running FORWARD: why the rest of it is not clear ("" when
        it is). The box still to be swept is the swept box shortened by the distance
        already travelled (never below the robot's own front)."""
        p = self.params
        fault = self.scan_fault(scan)
        if fault:
            return f"scan fault: {fault}"
        x_max = max(p.box_x_max - max(float(travelled), 0.0), p.box_x_min + COVERAGE_RESOLUTION)
        n_in_box, _, uncovered, _, _ = self._forward_check(scan, x_max)
        if n_in_box:
            return f"{n_in_box} return(s) in the {x_max - p.box_x_min:.2f} m still to be swept"
        if uncovered:
            return (f"the scan does not prove the {x_max - p.box_x_min:.2f} m still to be swept free "
                    f"({uncovered} box points without a valid ray)")
        return ""

    def rotation_rest_blocked(self, scan: ScanData, sign: float, angle: float) -> str:
        """Collision monitor for a running rotation (sign +1 left, -1 right) with ``angle``
        rad still to turn: "" when the footprint sweeps no return. A circular footprint
        sweeps nothing new; the scan must still be consistent."""
        fault = self.scan_fault(scan)
        if fault:
            return f"scan fault: {fault}"
        if self.polygon is None or angle <= 0:
            return ""
        r, angles, valid, nan, seg, seg_end, _ = self._rays(scan)
        vx, vy = self._to_base(angles[valid], r[valid])
        px, py = self._obstacle_points(angles, vx, vy, seg, seg_end)
        if self._rotation_blocked(px, py, sign, angle):
            return f"a return in the area the footprint sweeps over the {math.degrees(angle):.1f} deg still to turn"
        return ""

    def _sample_segments(self, angles: np.ndarray, ends: np.ndarray):
        res = self.params.rotation_resolution
        xs, ys = [], []
        for a, e in zip(angles, ends):
            e = min(float(e), self._circumradius + abs(self.params.laser_x) + abs(self.params.laser_y) + 1.0)
            ts = np.linspace(0.0, e, max(2, int(math.ceil(e / res)) + 1))
            x, y = self._to_base(np.full(ts.shape, a), ts)
            xs.append(x)
            ys.append(y)
        return np.concatenate(xs), np.concatenate(ys)

    def _rotation_blocked(self, x: np.ndarray, y: np.ndarray, sign: float, step: float | None = None) -> bool:
        """True when rotating the footprint by sign * step (default rotation_step) sweeps over a point."""
        poly = self.polygon
        rr = np.hypot(x, y)
        near = rr <= self._circumradius + 1e-9
        if not near.any():
            return False
        x, y = x[near], y[near]
        # points inside the current footprint are self-hits (ignored here, see module doc)
        outside = ~_points_in_polygon(x, y, poly)
        x, y = x[outside], y[outside]
        if x.size == 0:
            return False
        step = self.params.rotation_step if step is None else float(step)
        n = max(2, int(math.ceil(step * self._circumradius / self.params.rotation_resolution)) + 1)
        for phi in np.linspace(0.0, step, n)[1:]:
            # robot rotated by sign*phi: a world point q is covered when R(-sign*phi) q is in the polygon
            c, s = math.cos(sign * phi), math.sin(sign * phi)
            qx = c * x + s * y
            qy = -s * x + c * y
            if _points_in_polygon(qx, qy, poly).any():
                return True
        return False
