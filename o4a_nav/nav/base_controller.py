"""Discrete-action base controller core (ROS-free).

Executes one DiscreteAction at a time on a differential-drive base, closed-loop on
odometry: FORWARD drives ``forward_distance`` along the heading it started with (with a
heading-hold term), ROTATE_* turns ``rotation_angle`` in place. Speeds ramp down near the
target (proportional, clamped between a minimum and a maximum speed) and the motion
succeeds when the remaining distance / angle is within tolerance.

Safety: velocity is zero
- on STOP (which also pre-empts the motion being executed),
- when odometry is older than ``odom_timeout`` (the motion is ABORTED),
- when a command arrives already older than ``command_timeout`` (refused, ABORTED),
- when a motion takes longer than ``action_timeout`` (blocked base; ABORTED),
- whenever nothing is being executed.
A new motion command pre-empts the one being executed (ABORTED "pre-empted").

The node calls :meth:`on_odom` for each odometry message, :meth:`command` for each
DiscreteAction and :meth:`update` at the control rate; each returns a
:class:`ControlOutput` with the velocity to publish and, when the state changed, the
MotionState to report.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field, fields
from typing import ClassVar

from o4a_nav.nav.params import FromDict
from o4a_nav.errors import UserError
from o4a_nav.types import FORWARD_STEP_M, ROTATE_STEP_RAD, Action, Pose2D

IDLE, EXECUTING, SUCCEEDED, ABORTED = 0, 1, 2, 3  # = o4a_msgs/MotionState constants
STATE_NAMES = {IDLE: "IDLE", EXECUTING: "EXECUTING", SUCCEEDED: "SUCCEEDED", ABORTED: "ABORTED"}


def wrap_angle(a: float) -> float:
    return (a + math.pi) % (2.0 * math.pi) - math.pi


@dataclass
class BaseControllerParams(FromDict):
    OWNER: ClassVar[str] = "base_controller"
    forward_distance: float = FORWARD_STEP_M    # m per FORWARD
    rotation_angle: float = ROTATE_STEP_RAD     # rad per ROTATE_*
    max_linear_speed: float = 0.25              # m/s
    min_linear_speed: float = 0.03              # m/s (floor of the ramp-down)
    max_angular_speed: float = 0.8              # rad/s
    min_angular_speed: float = 0.1              # rad/s
    linear_gain: float = 2.0                    # 1/s: v = gain * remaining distance
    angular_gain: float = 3.0                   # 1/s: w = gain * remaining angle
    heading_gain: float = 2.0                   # 1/s: heading hold during FORWARD
    distance_tolerance: float = 0.01            # m
    angle_tolerance: float = 0.02               # rad (~1.1 deg)
    odom_timeout: float = 0.5                   # s: older odometry stops the robot
    command_timeout: float = 0.5                # s: older commands are refused
    action_timeout: float = 0.0                 # s per motion; 0 = 3x nominal duration + 2 s

    def __post_init__(self):
        for f in fields(self):
            v = getattr(self, f.name)
            if not isinstance(v, (int, float)) or not math.isfinite(v) or v < 0:
                raise UserError(f"base_controller: parameter {f.name} must be a finite number >= 0, got {v!r}")
        for name in ("forward_distance", "rotation_angle", "max_linear_speed", "max_angular_speed",
                     "distance_tolerance", "angle_tolerance", "odom_timeout", "command_timeout"):
            if getattr(self, name) <= 0:
                raise UserError(f"base_controller: parameter {name} must be > 0")
        if self.min_linear_speed > self.max_linear_speed or self.min_angular_speed > self.max_angular_speed:
            raise UserError("base_controller: min speeds must not exceed max speeds")

    def timeout_for(self, action: Action) -> float:
        if self.action_timeout > 0:
            return self.action_timeout
        if action == Action.FORWARD:
            nominal = self.forward_distance / self.max_linear_speed
        else:
            nominal = self.rotation_angle / self.max_angular_speed
        return 3.0 * nominal + 2.0


@dataclass
class MotionReport:
    sequence: int
    action: Action
    state: int
    message: str = ""


@dataclass
class ControlOutput:
    linear: float = 0.0
    angular: float = 0.0
    reports: list = field(default_factory=list)  # MotionReports for state changes, in order

    @property
    def report(self) -> MotionReport | None:
        return self.reports[-1] if self.reports else None


class BaseController:
    def __init__(self, params: BaseControllerParams | None = None):
        self.params = params or BaseControllerParams()
        self.pose: Pose2D | None = None
        self.odom_stamp: float = -math.inf
        self.state = IDLE
        self.action = Action.STOP
        self.sequence = 0
        self._start: Pose2D | None = None
        self._t_start = 0.0
        self._target_yaw = 0.0
        self.last_message = ""

    # ---------------------------------------------------------------- inputs
    def on_odom(self, pose: Pose2D, stamp: float) -> bool:
        """Store an odometry pose; a non-finite one is ignored (returns False), so that the
        odometry goes stale and the motion stops instead of steering on NaN."""
        if not all(math.isfinite(v) for v in (pose.x, pose.y, pose.yaw, stamp)):
            return False
        self.pose = pose
        self.odom_stamp = float(stamp)
        return True

    def odom_fresh(self, now: float) -> bool:
        return self.pose is not None and (now - self.odom_stamp) <= self.params.odom_timeout

    def _finish(self, state: int, message: str) -> ControlOutput:
        self.state = state
        self.last_message = message
        return ControlOutput(0.0, 0.0, [MotionReport(self.sequence, self.action, state, message)])

    def command(self, action: Action | int, sequence: int, now: float, stamp: float | None = None) -> ControlOutput:
        """A new DiscreteAction. Pre-empts the running motion. Returns the first output."""
        action = Action(int(action))
        pre = None
        if self.state == EXECUTING:
            pre = MotionReport(self.sequence, self.action, ABORTED, "pre-empted by a new command")
        self.action, self.sequence = action, int(sequence)
        if stamp is not None and now - stamp > self.params.command_timeout:
            out = self._finish(ABORTED, f"stale command: {now - stamp:.3f} s old (command_timeout "
                                        f"{self.params.command_timeout} s)")
        elif action == Action.STOP:
            out = self._finish(SUCCEEDED, "stopped")
        elif not self.odom_fresh(now):
            out = self._finish(ABORTED, "no odometry" if self.pose is None else
                               f"stale odometry: {now - self.odom_stamp:.3f} s old")
        else:
            self.state = EXECUTING
            self.last_message = ""
            self._start = self.pose
            self._t_start = now
            sign = 1.0 if action == Action.ROTATE_LEFT else -1.0
            self._target_yaw = wrap_angle(self.pose.yaw + sign * self.params.rotation_angle)
            out = self.update(now)
            out.reports.insert(0, MotionReport(self.sequence, action, EXECUTING, ""))
        if pre is not None:
            out.reports.insert(0, pre)
        return out

    def remaining(self) -> float:
        """Distance [m] or angle [rad] still to go for the running motion (signed)."""
        p, s = self.params, self._start
        if self.pose is None or s is None:
            return math.nan
        if self.action == Action.FORWARD:
            travelled = (self.pose.x - s.x) * math.cos(s.yaw) + (self.pose.y - s.y) * math.sin(s.yaw)
            return p.forward_distance - travelled
        err = wrap_angle(self._target_yaw - self.pose.yaw)
        return err if self.action == Action.ROTATE_LEFT else -err

    def update(self, now: float) -> ControlOutput:
        """Velocity for this control tick."""
        p = self.params
        if self.state != EXECUTING:
            return ControlOutput(0.0, 0.0)
        if not self.odom_fresh(now):
            return self._finish(ABORTED, f"stale odometry: {now - self.odom_stamp:.3f} s old "
                                         f"(odom_timeout {p.odom_timeout} s)")
        if now - self._t_start > p.timeout_for(self.action):
            return self._finish(ABORTED, f"motion not finished after {now - self._t_start:.1f} s (blocked?)")
        rem = self.remaining()
        if self.action == Action.FORWARD:
            if rem <= p.distance_tolerance:
                return self._finish(SUCCEEDED, "")
            v = min(p.max_linear_speed, max(p.min_linear_speed, p.linear_gain * rem))
            yaw_err = wrap_angle(self._start.yaw - self.pose.yaw)
            w = max(-p.max_angular_speed, min(p.max_angular_speed, p.heading_gain * yaw_err))
            return ControlOutput(v, w)
        if rem <= p.angle_tolerance:
            return self._finish(SUCCEEDED, "")
        w = min(p.max_angular_speed, max(p.min_angular_speed, p.angular_gain * rem))
        return ControlOutput(0.0, w if self.action == Action.ROTATE_LEFT else -w)

    def stop(self, message: str) -> ControlOutput:
        """Abort whatever runs (zero velocity)."""
        if self.state == EXECUTING:
            return self._finish(ABORTED, message)
        return ControlOutput(0.0, 0.0)
