"""Odometry faults injected by the safety tests and scripts/measure_safety.py (ROS-free)."""
from __future__ import annotations

from o4a_nav.types import Pose2D, wrap_angle

ODOM_FAULTS = ("frozen", "reset", "future_then_lost", "frozen_rotation", "heading_drift")
HEADING_DRIFT_RATE = 0.2   # rad/s (11.5 deg/s) added to the reported heading by "heading_drift"


class OdometryFault:
    """Turns the true odometry (pose, stamp) into a faulty one from time `start` on (None:
    not yet): "frozen"/"frozen_rotation" repeat the pose at the fault with fresh stamps,
    "reset" jumps to the origin, "future_then_lost" stamps 3 s ahead for 0.3 s and then
    publishes nothing (None), "heading_drift" adds a heading growing at HEADING_DRIFT_RATE
    (each message plausible on its own: far below the jump check's limit)."""

    def __init__(self, kind: str):
        if kind not in ODOM_FAULTS:
            raise ValueError(f"unknown odometry fault {kind!r}; one of {', '.join(ODOM_FAULTS)}")
        self.kind = kind
        self.start: float | None = None
        self._frozen: Pose2D | None = None

    def __call__(self, pose: Pose2D, t: float):
        if self.start is None or t < self.start:
            return pose, t
        if self.kind.startswith("frozen"):
            if self._frozen is None:
                self._frozen = pose
            return self._frozen, t
        if self.kind == "reset":
            return Pose2D(0.0, 0.0, 0.0), t
        if self.kind == "heading_drift":
            return Pose2D(pose.x, pose.y, wrap_angle(pose.yaw + HEADING_DRIFT_RATE * (t - self.start))), t
        return (pose, t + 3.0) if t < self.start + 0.3 else None
