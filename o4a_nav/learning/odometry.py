"""Discrete transitions from continuous driving (joystick / teleop recordings). ROS-free.

A robot driven with continuous velocities has no DiscreteAction messages. Its odometry
says how it moved between camera frames, so frames can be picked where the motion since
the last kept frame equals one O4A primitive:

- FORWARD: advanced `forward_m` (0.25 m) while turning less than `max_turn_deg` and
  drifting sideways less than `max_lateral_m`;
- ROTATE_LEFT / ROTATE_RIGHT: turned `rotate_deg` (15 deg) while moving less than
  `max_shift_m`;
- anything else that crosses a threshold (arcs, driving backwards, sideways slides) is no
  primitive: the chain breaks there and a new one starts at that frame.

Which frame ends a primitive: when a frame crosses a threshold, the candidates are that
frame and every frame since the last kept one whose motion is within `tolerance` (a
fraction, default 15 %) of a primitive; the one nearest the primitive (0.25 m, 15 deg) is
kept, the next primitive is measured from it. So a frame whose pose falls a little short
of 0.25 m (the odometry is interpolated at a camera stamp that is some milliseconds early,
or 10 Hz odometry lags the motion) still ends its FORWARD, instead of the threshold being
crossed only during the next motion (which would label 0.5 m, or a turn and a straight
move, as one primitive); and a frame that overshoots by more than the tolerance (frames
dropped) is no primitive. A kept frame in a stretch of frames at rest (stop-and-go
driving: the same pose within `still_m` / `still_deg`) is moved to the middle of that
stretch, where a stamp error of tens of milliseconds cannot put it in a motion.

Frames while the robot stands still or has not yet moved enough are skipped. A gap in the
odometry or the images also breaks the chain. The last kept frame of a chain is labelled
STOP (the dataset's end-of-trajectory marker).
"""
from __future__ import annotations

import bisect
import math
from dataclasses import dataclass

import numpy as np

from o4a_nav.errors import UserError
from o4a_nav.types import Action, wrap_angle


@dataclass
class SegmentParams:
    forward_m: float = 0.25          # advance that makes a FORWARD
    rotate_deg: float = 15.0         # turn that makes a ROTATE
    max_turn_deg: float = 5.0        # a FORWARD turns less than this
    max_lateral_m: float = 0.05      # ... and drifts sideways less than this
    max_shift_m: float = 0.05        # a ROTATE moves less than this
    max_odom_gap: float = 0.5        # seconds without odometry around a frame break the chain
    tolerance: float = 0.15          # a frame within this fraction of a primitive may end it
    still_m: float = 0.002           # frames within this of each other (and still_deg) are at rest
    still_deg: float = 0.2

    def validate(self) -> "SegmentParams":
        if not 0 <= self.tolerance < 0.5:
            raise UserError(f"odometry segmentation: tolerance must be in [0, 0.5) (got {self.tolerance})")
        for name in ("forward_m", "rotate_deg", "max_turn_deg", "max_lateral_m", "max_shift_m", "max_odom_gap",
                     "still_m", "still_deg"):
            if not getattr(self, name) > 0:
                raise UserError(f"odometry segmentation: {name} must be > 0 (got {getattr(self, name)})")
        if self.max_turn_deg >= self.rotate_deg:
            raise UserError(f"odometry segmentation: max_turn_deg ({self.max_turn_deg}) must be below "
                            f"rotate_deg ({self.rotate_deg})")
        if self.max_shift_m >= self.forward_m:
            raise UserError(f"odometry segmentation: max_shift_m ({self.max_shift_m}) must be below "
                            f"forward_m ({self.forward_m})")
        return self


def interpolate_poses(times: np.ndarray, odom_t: np.ndarray, odom_xyyaw: np.ndarray, max_gap: float
                      ) -> tuple[np.ndarray, np.ndarray]:
    """Odometry poses at `times` (linear in x, y and unwrapped yaw). Returns (poses (N, 3),
    ok (N,) bool): False where no odometry sample lies within `max_gap` on both sides."""
    times = np.asarray(times, float)
    out = np.full((len(times), 3), np.nan)
    ok = np.zeros(len(times), bool)
    if len(odom_t) == 0:
        return out, ok
    yaw = np.unwrap(odom_xyyaw[:, 2])
    for k, t in enumerate(times):
        i = bisect.bisect_right(odom_t, t)        # odom_t[i-1] <= t < odom_t[i]
        if i == 0 or i == len(odom_t):
            j = 0 if i == 0 else len(odom_t) - 1
            if abs(odom_t[j] - t) <= 1e-3:       # exactly at the first / last sample
                out[k] = (odom_xyyaw[j, 0], odom_xyyaw[j, 1], yaw[j])
                ok[k] = True
            continue
        t0, t1 = odom_t[i - 1], odom_t[i]
        if t - t0 > max_gap or t1 - t > max_gap:
            continue
        a = 0.0 if t1 <= t0 else (t - t0) / (t1 - t0)
        out[k, :2] = (1 - a) * odom_xyyaw[i - 1, :2] + a * odom_xyyaw[i, :2]
        out[k, 2] = (1 - a) * yaw[i - 1] + a * yaw[i]
        ok[k] = True
    return out, ok


def relative(p0, p1) -> tuple[float, float, float]:
    """Motion from pose p0 to p1 in p0's frame: (ahead, left, turn)."""
    dx, dy = p1[0] - p0[0], p1[1] - p0[1]
    c, s = math.cos(p0[2]), math.sin(p0[2])
    return c * dx + s * dy, -s * dx + c * dy, wrap_angle(p1[2] - p0[2])


def classify(ahead: float, left: float, turn: float, p: SegmentParams):
    """The primitive for a motion that crossed a threshold; None when it is no primitive
    (arc, backwards, sideways); 'wait' when no threshold is crossed yet."""
    dist = math.hypot(ahead, left)
    rot = math.radians(p.rotate_deg)
    if dist >= p.forward_m:
        if ahead > 0 and abs(turn) < math.radians(p.max_turn_deg) and abs(left) < p.max_lateral_m:
            return Action.FORWARD
        return None
    if abs(turn) >= rot:
        if dist < p.max_shift_m:
            return Action.ROTATE_LEFT if turn > 0 else Action.ROTATE_RIGHT
        return None
    return "wait"


def near_primitive(ahead: float, left: float, turn: float, p: SegmentParams):
    """(action, error) when the motion is within `p.tolerance` of a primitive, else None.
    error: the relative distance to the ideal primitive (0.25 m ahead, 0 sideways, 0 turn;
    or 15 deg in place), 0 = exact."""
    dist = math.hypot(ahead, left)
    rot = math.radians(p.rotate_deg)
    if abs(dist - p.forward_m) <= p.tolerance * p.forward_m and ahead > 0 \
            and abs(turn) < math.radians(p.max_turn_deg) and abs(left) < p.max_lateral_m:
        return Action.FORWARD, abs(ahead - p.forward_m) / p.forward_m + abs(left) / p.forward_m + abs(turn) / rot
    if abs(abs(turn) - rot) <= p.tolerance * rot and dist < p.max_shift_m:
        return (Action.ROTATE_LEFT if turn > 0 else Action.ROTATE_RIGHT), abs(abs(turn) - rot) / rot + dist / p.forward_m
    return None


def is_true_primitive(action, ahead: float, left: float, turn: float) -> bool:
    """Is a (true) displacement between two frames the primitive `action`, within the
    tolerances a discrete robot's own motions show: FORWARD 0.25 +- 0.05 m ahead, under
    0.05 m sideways and 5 deg of turn; ROTATE 15 +- 3 deg the right way, under 0.05 m moved.
    The scoring rule of labels against ground truth (training report, sim/teleop.py)."""
    if action == Action.FORWARD:
        return abs(ahead - 0.25) <= 0.05 and abs(left) < 0.05 and abs(math.degrees(turn)) < 5.0
    if action not in (Action.ROTATE_LEFT, Action.ROTATE_RIGHT):
        return False
    sign = 1.0 if action == Action.ROTATE_LEFT else -1.0
    return abs(sign * math.degrees(turn) - 15.0) <= 3.0 and math.hypot(ahead, left) < 0.05


def _small(ahead: float, left: float, turn: float, p: SegmentParams) -> bool:
    """Within the tolerance of no motion at all."""
    return math.hypot(ahead, left) <= p.tolerance * p.forward_m and abs(turn) <= p.tolerance * math.radians(p.rotate_deg)


def _still(ahead: float, left: float, turn: float, p: SegmentParams) -> bool:
    return math.hypot(ahead, left) <= p.still_m and abs(turn) <= math.radians(p.still_deg)


class _Segmenter:
    """segment's state: the frames kept so far (index, action, chain id) and the motion
    since the last one (the anchor)."""

    def __init__(self, frame_poses: np.ndarray, frame_ok: np.ndarray, params: SegmentParams):
        self.P, self.ok, self.params = frame_poses, frame_ok, params
        self.kept, self.actions, self.chains = [], [], []
        self.chain = 0
        self.anchor = None       # the frame the current motion is measured from (the last kept one)
        self.run_end = None      # the last frame of the stretch at rest that begins at the anchor
        self.rest = None         # the first frame of the latest stretch at rest since then
        self.first_rest = None   # ... and of the first one
        self.cands: list = []    # (error, frame, action): frames since the anchor near a primitive
        self.stats = {"forward": 0, "rotate": 0, "breaks": 0}

    def settle(self):
        """The anchor's kept frame: the middle of its stretch at rest."""
        if self.anchor is not None and self.kept:
            self.kept[-1] = (self.anchor + self.run_end) // 2

    def close_chain(self):
        self.settle()
        if self.kept and self.chains[-1] == self.chain:
            self.actions[-1] = Action.STOP
            self.chain += 1

    def start(self, k):
        self.kept.append(k), self.actions.append(Action.STOP), self.chains.append(self.chain)
        self.anchor, self.run_end, self.rest, self.first_rest, self.cands = k, k, None, None, []

    def label(self, k, action):
        self.settle()
        self.actions[-1] = action
        self.stats["forward" if action == Action.FORWARD else "rotate"] += 1
        self.start(k)

    def still(self, a: int, b: int) -> bool:
        return _still(*relative(self.P[a], self.P[b]), self.params)

    def step(self, i: int) -> int:
        """Takes in frame i -> the next frame to take in."""
        if not self.ok[i]:
            if self.anchor is not None:
                self.stats["breaks"] += 1
            self.close_chain()
            self.anchor = None
            return i + 1
        if self.anchor is None:
            self.start(i)
            return i + 1
        if self.run_end == i - 1 and self.still(self.anchor, i):
            self.run_end = i                # still at the anchor's pose
            return i + 1
        return self._moved(i)

    def _moved(self, i: int) -> int:
        """Frame i away from the anchor's stretch at rest."""
        P, params = self.P, self.params
        rel = relative(P[(self.anchor + self.run_end) // 2], P[i])   # from the kept frame: the middle of the stretch
        stopped = self.ok[i - 1] and i - 1 > self.run_end and self.still(i - 1, i)
        if stopped and (self.rest is None or not self.still(self.rest, i)):
            self.rest = i - 1               # stopped (again): a stretch at rest starts at i - 1
            self.first_rest = self.rest if self.first_rest is None else self.first_rest
        near = near_primitive(*rel, params)
        if near is not None and stopped:    # stopped one primitive from the anchor: that ends it
            end = self.rest
            self.label(end, near[0])
            return end + 1
        if stopped and _small(*rel, params) and self._stop_keeps_transition():
            # stopped just past the anchor (a frame in the motion was kept): the stop is the
            # kept frame, if the transition into the anchor still holds from there
            end = self.rest
            self.kept[-1] = end
            self.anchor, self.run_end, self.rest, self.first_rest, self.cands = end, end, None, None, []
            return end + 1
        act = classify(*rel, params)
        if act == "wait":
            if near is not None:
                self.cands.append((near[1], i, near[0]))
            return i + 1
        return self._crossed(i, act, near)

    def _stop_keeps_transition(self) -> bool:
        """Is the transition into the anchor (if any in this chain) still its action when it
        ends at the latest stop instead?"""
        if len(self.kept) == 1 or self.chains[-2] != self.chain:
            return True
        prev = near_primitive(*relative(self.P[self.kept[-2]], self.P[self.rest]), self.params)
        return prev is not None and prev[0] == self.actions[-2]

    def _crossed(self, i: int, act, near) -> int:
        """Frame i crossed a threshold (act: the primitive or None): label the candidate frame
        nearest the primitive, else end the chain."""
        options = self.cands + ([(near[1], i, near[0])] if near is not None and near[0] == act else [])
        if options:
            _, best, action = min(options)  # nearest the primitive; ties: the earliest frame
            self.label(best, action)
            return best + 1                 # the frames after it are measured from it
        self.stats["breaks"] += 1           # no primitive: end the chain; a new one starts at the
        restart = self.first_rest if self.first_rest is not None else i   # first stop since the anchor, else here
        self.close_chain()
        self.start(restart)
        return restart + 1


def segment(frame_poses: np.ndarray, frame_ok: np.ndarray, params: SegmentParams = SegmentParams()):
    """Frames (N, 3) odometry poses -> (kept frame indices, their actions, chain ids, stats).

    frame_ok[i] False (no odometry or images near frame i) breaks the chain before i."""
    s = _Segmenter(frame_poses, frame_ok, params)
    i, n = 0, len(frame_poses)
    while i < n:
        i = s.step(i)
    s.close_chain()
    return np.asarray(s.kept, np.int64), np.asarray(s.actions, np.int8), np.asarray(s.chains, np.int64), s.stats


@dataclass
class LaserCheckParams:
    """The laser cross-check of odometry labels (laser_check)."""

    tol_m: float = 0.05              # scanreg.one_action tolerances: the laser's displacement is
    tol_deg: float = 3.0             # the label's primitive within these (sim: registration error < 1 cm, 0.5 deg)


def laser_check(actions: np.ndarray, chains: np.ndarray, ranges: np.ndarray, geometry, mount=None,
                params: LaserCheckParams = LaserCheckParams(), reg_params=None):
    """Cross-check each odometry label with the laser: the scans of the two frames of a
    transition are registered (learning/scanreg.py, from no initial motion, so the
    odometry does not steer it) and the displacement they give must be the labelled
    primitive (scanreg.one_action). A transition the laser contradicts is dropped (the
    chain is cut there); one the registration cannot judge (too few points, a poor fit) is
    kept and counted as unchecked.

    actions, chains: segment's labels and chain ids of the kept frames; ranges: (N, R) the
    scan of each kept frame (a NaN row: none near it); geometry: (angle_min,
    angle_increment, range_min, range_max) of the scans; mount: the laser's Pose2D in the
    base frame (default: at the base origin).
    Returns (actions, chains, counts) with counts {checked, agree, disagree, unchecked}."""
    from o4a_nav.learning import scanreg
    from o4a_nav.types import Pose2D

    mount = mount or Pose2D(0.0, 0.0, 0.0)
    reg_params = reg_params or scanreg.RegParams()
    actions, chains = np.array(actions, np.int8), np.array(chains, np.int64)
    clouds: dict[int, object] = {}

    def cloud(k):
        if k not in clouds:
            r = ranges[k]
            clouds[k] = None if np.isnan(r).all() else \
                scanreg.prepare(scanreg.scan_points(r, *geometry, mount=mount), reg_params)
        return clouds[k]

    counts = {"checked": 0, "agree": 0, "disagree": 0, "unchecked": 0}
    cut = np.zeros(len(actions), bool)           # cut[k]: the chain breaks between k and k + 1
    for k in range(len(actions) - 1):
        if actions[k] == Action.STOP or chains[k] != chains[k + 1]:
            continue
        a, b = cloud(k), cloud(k + 1)
        r = scanreg.register(a, b, params=reg_params) if a is not None and b is not None else None
        if r is None or not r.ok:
            counts["unchecked"] += 1
            continue
        counts["checked"] += 1
        seen = int(scanreg.one_action(r.x, r.y, r.yaw, params.tol_m, params.tol_deg))
        if seen == int(actions[k]):
            counts["agree"] += 1
        else:
            counts["disagree"] += 1
            actions[k] = Action.STOP
            cut[k] = True
    new = np.zeros(len(actions), np.int64)
    for k in range(1, len(actions)):
        new[k] = new[k - 1] + int(chains[k] != chains[k - 1] or cut[k - 1])
    return actions, new, counts


# ---- camera stamps against odometry: the offset between the two clocks, per bag ----------

@dataclass
class LagParams:
    """The camera-to-odometry stamp offset estimate (estimate_image_lag)."""

    max_lag: float = 0.15            # [s] offsets searched: -max_lag .. +max_lag
    step: float = 0.0025             # [s] grid step (then refined to the parabola's vertex)
    min_turning: int = 20            # frame pairs that turn (odometry) needed for an estimate
    min_corr: float = 0.8            # image turn vs odometry turn correlation needed at the best offset
    width: int = 160                 # images are compared at this width (grey)


def image_shift(a: np.ndarray, b: np.ndarray) -> float:
    """Horizontal shift (pixels, + = the scene moved right, the camera turned left) from
    grey image a to grey image b (phase correlation, Hann window)."""
    import cv2

    win = cv2.createHanningWindow(a.shape[::-1], cv2.CV_32F)
    (dx, _), _ = cv2.phaseCorrelate(a.astype(np.float32), b.astype(np.float32), win)
    return float(dx)


def estimate_image_lag(img_t: np.ndarray, shifts: np.ndarray, odom_t: np.ndarray, odom_xyyaw: np.ndarray,
                       params: LagParams = LagParams(), max_gap: float = 0.5) -> tuple[float, dict]:
    """The offset L (seconds) to add to the camera stamps so that they read on the
    odometry's clock: the L whose odometry turn between consecutive frames, yaw(t_k+1 + L)
    - yaw(t_k + L), best explains the images' horizontal shift between them (a linear fit,
    its correlation maximised over -max_lag..max_lag). Turning in place starts and stops
    sharply, so the frames around each start and stop fix L to a few milliseconds.

    img_t: (N,) the images' stamps; shifts: (N-1,) image_shift from frame k to k+1 (NaN:
    not measured). Returns (L, info): info has corr, turning (pairs that turn), and
    `why` when no estimate was made (then L = 0)."""
    img_t = np.asarray(img_t, float)
    shifts = np.asarray(shifts, float)
    odom_t = np.asarray(odom_t, float)
    yaw = np.unwrap(np.asarray(odom_xyyaw, float).reshape(-1, 3)[:, 2])
    info: dict = {"pairs": int(np.isfinite(shifts).sum())}
    if len(odom_t) < 2 or len(img_t) < 3:
        return 0.0, {**info, "why": "too few images or odometry messages"}
    # pairs whose odometry is dense enough around both frames at every lag searched
    near = np.searchsorted(odom_t, img_t)
    gap = np.full(len(img_t), np.inf)
    inside = (near > 0) & (near < len(odom_t))
    gap[inside] = (odom_t[np.minimum(near, len(odom_t) - 1)] - odom_t[np.maximum(near - 1, 0)])[inside]
    ok = np.isfinite(shifts) & (gap[:-1] <= max_gap) & (gap[1:] <= max_gap) & \
        (img_t[:-1] - params.max_lag > odom_t[0]) & (img_t[1:] + params.max_lag < odom_t[-1])
    turn0 = np.diff(np.interp(img_t, odom_t, yaw))
    turning = ok & (np.abs(turn0) > math.radians(0.5))
    info["turning"] = int(turning.sum())
    if info["turning"] < params.min_turning:
        return 0.0, {**info, "why": f"{info['turning']} frame pairs turn (need {params.min_turning})"}
    lags = np.arange(-params.max_lag, params.max_lag + params.step / 2, params.step)
    s = shifts[ok]
    corr = np.empty(len(lags))
    for i, lag in enumerate(lags):
        d = np.diff(np.interp(img_t + lag, odom_t, yaw))[ok]
        corr[i] = np.corrcoef(d, s)[0, 1] if d.std() > 0 and s.std() > 0 else 0.0
    best = int(np.argmax(np.abs(corr)))
    info["corr"] = float(abs(corr[best]))
    if info["corr"] < params.min_corr:
        return 0.0, {**info, "why": f"the images' shift follows the odometry's turn poorly (correlation "
                                    f"{info['corr']:.2f} < {params.min_corr})"}
    if best in (0, len(lags) - 1):
        return 0.0, {**info, "why": f"the best offset is at the edge of the search (+-{params.max_lag} s)"}
    a, b, c = np.abs(corr[best - 1:best + 2])
    den = a - 2 * b + c
    frac = 0.5 * (a - c) / den if den < 0 else 0.0
    return float(lags[best] + frac * params.step), info
