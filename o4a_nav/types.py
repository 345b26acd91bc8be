"""Plain data types shared by the ROS-free core modules (no rclpy, no message classes)."""
from __future__ import annotations

import math
from dataclasses import dataclass
from enum import IntEnum

import numpy as np


class Action(IntEnum):
    """Discrete O4A actions. Values equal the o4a_msgs/DiscreteAction constants."""

    STOP = 0
    FORWARD = 1
    ROTATE_LEFT = 2
    ROTATE_RIGHT = 3

    @classmethod
    def motions(cls) -> tuple["Action", ...]:
        return (cls.FORWARD, cls.ROTATE_LEFT, cls.ROTATE_RIGHT)


class NavState(IntEnum):
    """Navigator states. Values equal the o4a_msgs/NavigatorStatus constants."""

    IDLE = 0             # no goal
    NAVIGATING = 1       # deciding / waiting for fresh observations
    WAITING_MOTION = 2   # last action sent, waiting for the base to finish it
    STALE_INPUT = 3      # an input is stale or missing: STOP until it returns
    REACHED = 4          # goal reached
    FAILED = 5           # step budget exhausted or aborted
    NO_MODEL = 6         # model missing or unusable: refuses to navigate


class MotionStatus(IntEnum):
    """Base controller motion states. Values equal the o4a_msgs/MotionState constants."""

    IDLE = 0
    EXECUTING = 1
    SUCCEEDED = 2
    ABORTED = 3      # blocked, stale odometry or commands, or pre-empted


FINAL_MOTION_STATES = frozenset({MotionStatus.SUCCEEDED, MotionStatus.ABORTED})   # how a motion ends


# Motion primitives of the paper (FORWARD 0.25 m, ROTATE 15 deg).
FORWARD_STEP_M = 0.25
ROTATE_STEP_RAD = float(np.deg2rad(15.0))


@dataclass
class ScanData:
    """A planar laser scan with sensor_msgs/LaserScan semantics (REP 117 for no-returns).

    ranges[i] is measured at bearing angle_min + i * angle_increment in the laser frame
    (x forward, y left). +inf: no return within range_max; -inf: closer than range_min;
    NaN: invalid measurement.
    """

    ranges: np.ndarray  # float32, shape (n,)
    angle_min: float
    angle_increment: float
    range_min: float
    range_max: float
    stamp: float = 0.0  # seconds
    # from a sensor_msgs/LaserScan (None when the scan did not come from a message, e.g.
    # the simulator's own rays): its header.frame_id and its angle_max field, which the
    # collision checker compares with the configured laser frame and with the ray count
    frame_id: str | None = None
    reported_angle_max: float | None = None

    @property
    def angles(self) -> np.ndarray:
        return self.angle_min + self.angle_increment * np.arange(len(self.ranges), dtype=np.float64)

    @property
    def angle_max(self) -> float:
        return self.angle_min + self.angle_increment * (len(self.ranges) - 1)


def wrap_angle(a):
    """Angle (radians; a float or a numpy array) wrapped into [-pi, pi)."""
    return (a + math.pi) % (2.0 * math.pi) - math.pi


@dataclass
class Pose2D:
    """Planar pose in metres / radians (x forward-east, y left-north, yaw CCW from x)."""

    x: float
    y: float
    yaw: float
