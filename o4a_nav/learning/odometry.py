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

The first frame at or past a threshold is kept (at 15 Hz and 0.3 m/s that overshoots the
0.25 m by at most 2 cm). Frames while the robot stands still or has not yet moved enough
are skipped. A gap in the odometry or the images also breaks the chain. The last kept
frame of a chain is labelled STOP (the dataset's end-of-trajectory marker).
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

    def validate(self) -> "SegmentParams":
        for name in ("forward_m", "rotate_deg", "max_turn_deg", "max_lateral_m", "max_shift_m", "max_odom_gap"):
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


def segment(frame_poses: np.ndarray, frame_ok: np.ndarray, params: SegmentParams = SegmentParams()):
    """Frames (N, 3) odometry poses -> (kept frame indices, their actions, chain ids).

    frame_ok[i] False (no odometry or images near frame i) breaks the chain before i."""
    kept, actions, chains = [], [], []
    chain = 0
    anchor = None            # index of the last kept frame of the current chain
    stats = {"forward": 0, "rotate": 0, "breaks": 0}

    def close_chain():
        nonlocal chain
        if kept and chains[-1] == chain:
            actions[-1] = Action.STOP
            chain += 1

    for i in range(len(frame_poses)):
        if not frame_ok[i]:
            if anchor is not None:
                stats["breaks"] += 1
            close_chain()
            anchor = None
            continue
        if anchor is None:
            kept.append(i), actions.append(Action.STOP), chains.append(chain)
            anchor = i
            continue
        label = classify(*relative(frame_poses[anchor], frame_poses[i]), params)
        if label == "wait":
            continue
        if label is None:                  # no primitive: end the chain, start a new one here
            stats["breaks"] += 1
            close_chain()
        else:
            actions[-1] = label
            stats["forward" if label == Action.FORWARD else "rotate"] += 1
        kept.append(i), actions.append(Action.STOP), chains.append(chain)
        anchor = i
    return np.asarray(kept, np.int64), np.asarray(actions, np.int8), np.asarray(chains, np.int64), stats
