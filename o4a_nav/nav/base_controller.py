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
from dataclasses import dataclass, field
from typing import ClassVar

from o4a_nav.errors import UserError
from o4a_nav.params import Params, param
from o4a_nav.types import FORWARD_STEP_M, ROTATE_STEP_RAD, Action, MotionStatus, Pose2D



def wrap_angle(a: float) -> float:
    return (a + math.pi) % (2.0 * math.pi) - math.pi


@dataclass
class BaseControllerParams(Params):
    OWNER: ClassVar[str] = "base_controller"
    forward_distance: float = param(FORWARD_STEP_M, "distance driven by one FORWARD [m] (paper 0.25)", (0.01, 5.0))
    rotation_angle: float = param(ROTATE_STEP_RAD, "angle turned by one ROTATE_LEFT/RIGHT [rad] "
                                                   "(paper 15 deg = 0.2618)", (0.01, math.pi))
    max_linear_speed: float = param(0.25, "top forward speed [m/s]", (0.01, 3.0))
    min_linear_speed: float = param(0.03, "floor of the forward speed ramp-down [m/s]", (0.0, 3.0))
    max_angular_speed: float = param(0.8, "top turn rate [rad/s]", (0.01, 6.0))
    min_angular_speed: float = param(0.1, "floor of the turn-rate ramp-down [rad/s]", (0.0, 6.0))
    linear_gain: float = param(2.0, "v = gain * remaining distance, clamped [1/s]", (0.0, 100.0))
    angular_gain: float = param(3.0, "w = gain * remaining angle, clamped [1/s]", (0.0, 100.0))
    heading_gain: float = param(2.0, "heading hold during FORWARD [1/s]", (0.0, 100.0))
    distance_tolerance: float = param(0.01, "FORWARD succeeds within this distance of its target [m]",
                                      (0.001, 0.5))
    angle_tolerance: float = param(0.02, "ROTATE succeeds within this angle of its target [rad] (~1.1 deg)",
                                   (0.001, 0.5))
    odom_timeout: float = param(0.5, "odometry older than this stops the robot [s]", (0.01, 10.0))
    command_timeout: float = param(0.5, "a DiscreteAction older than this on arrival is refused [s]", (0.01, 10.0))
    action_timeout: float = param(0.0, "a motion not finished after this is aborted [s]; 0 = 3x nominal + 2 s",
                                  (0.0, 120.0))

    def _check(self):
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
    state: MotionStatus
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
        self.state = MotionStatus.IDLE
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

    def _finish(self, state: MotionStatus, message: str) -> ControlOutput:
        self.state = state
        self.last_message = message
        return ControlOutput(0.0, 0.0, [MotionReport(self.sequence, self.action, state, message)])

    def command(self, action: Action | int, sequence: int, now: float, stamp: float | None = None) -> ControlOutput:
        """A new DiscreteAction. Pre-empts the running motion. Returns the first output."""
        action = Action(int(action))
        pre = None
        if self.state == MotionStatus.EXECUTING:
            pre = MotionReport(self.sequence, self.action, MotionStatus.ABORTED, "pre-empted by a new command")
        self.action, self.sequence = action, int(sequence)
        if stamp is not None and now - stamp > self.params.command_timeout:
            out = self._finish(MotionStatus.ABORTED, f"stale command: {now - stamp:.3f} s old (command_timeout "
                                        f"{self.params.command_timeout} s)")
        elif action == Action.STOP:
            out = self._finish(MotionStatus.SUCCEEDED, "stopped")
        elif not self.odom_fresh(now):
            out = self._finish(MotionStatus.ABORTED, "no odometry" if self.pose is None else
                               f"stale odometry: {now - self.odom_stamp:.3f} s old")
        else:
            self.state = MotionStatus.EXECUTING
            self.last_message = ""
            self._start = self.pose
            self._t_start = now
            sign = 1.0 if action == Action.ROTATE_LEFT else -1.0
            self._target_yaw = wrap_angle(self.pose.yaw + sign * self.params.rotation_angle)
            out = self.update(now)
            out.reports.insert(0, MotionReport(self.sequence, action, MotionStatus.EXECUTING, ""))
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
        if self.state != MotionStatus.EXECUTING:
            return ControlOutput(0.0, 0.0)
        if not self.odom_fresh(now):
            return self._finish(MotionStatus.ABORTED, f"stale odometry: {now - self.odom_stamp:.3f} s old "
                                         f"(odom_timeout {p.odom_timeout} s)")
        if now - self._t_start > p.timeout_for(self.action):
            return self._finish(MotionStatus.ABORTED, f"motion not finished after {now - self._t_start:.1f} s (blocked?)")
        rem = self.remaining()
        if self.action == Action.FORWARD:
            if rem <= p.distance_tolerance:
                return self._finish(MotionStatus.SUCCEEDED, "")
            v = min(p.max_linear_speed, max(p.min_linear_speed, p.linear_gain * rem))
            yaw_err = wrap_angle(self._start.yaw - self.pose.yaw)
            w = max(-p.max_angular_speed, min(p.max_angular_speed, p.heading_gain * yaw_err))
            return ControlOutput(v, w)
        if rem <= p.angle_tolerance:
            return self._finish(MotionStatus.SUCCEEDED, "")
        w = min(p.max_angular_speed, max(p.min_angular_speed, p.angular_gain * rem))
        return ControlOutput(0.0, w if self.action == Action.ROTATE_LEFT else -w)

    def stop(self, message: str) -> ControlOutput:
        """Abort whatever runs (zero velocity)."""
        if self.state == MotionStatus.EXECUTING:
            return self._finish(MotionStatus.ABORTED, message)
        return ControlOutput(0.0, 0.0)
