"""Discrete-action base controller core (ROS-free).

Executes one DiscreteAction at a time on a differential-drive base, closed-loop on
odometry: FORWARD drives ``forward_distance`` along the heading it started with (with a
heading-hold term), ROTATE_* turns ``rotation_angle`` in place. Speeds ramp down near the
target (proportional, clamped between a minimum and a maximum speed) and the motion
succeeds when the remaining distance / angle is within tolerance.

Safety: velocity is zero
- on STOP (which also pre-empts the motion being executed),
- when odometry is older than ``odom_timeout`` by stamp or by arrival, or stamped more than
  ``max_clock_skew`` in the future (the motion is ABORTED),
- when a command arrives already older than ``command_timeout`` or stamped in the future
  (refused, ABORTED),
- when a motion takes longer than ``action_timeout`` (0: twice the duration of the speed
  profile + 1 s; blocked base; ABORTED),
- whenever nothing is being executed.
A new motion command pre-empts the one being executed (ABORTED "pre-empted").

Motions are bounded whatever odometry says (each ends the motion, ABORTED with the reason):
- cap: the distance (angle) commanded so far, the integral of |cmd_vel| over time, may not
  exceed ``forward_distance + distance_cap_margin`` (``rotation_angle + angle_cap_margin``);
- frozen odometry: odometry messages keep arriving with the same pose while
  ``frozen_odom_distance`` (angle) was commanded (a stuck base looks the same);
- jumping or reset odometry: a pose change between two odometry messages larger than the
  commanded speeds allow (x2) plus ``odom_jump_distance`` (``odom_jump_angle``), or a stamp
  that goes backwards;
- heading: odometry's heading change since the start differs from the turn commanded (the
  integral of w up to the odometry's arrival, give or take ``HEADING_LAG_S``) by more than
  ``heading_mismatch``, or a
  FORWARD's heading hold commanded (or odometry reports) more than ``forward_max_turn`` of
  turn (a steadily drifting odometry heading otherwise makes the heading hold steer the
  robot off course);
- heading seen by the laser: each scan of the motion is registered against the scan it
  started from (:class:`~o4a_nav.nav.scan_turn.ScanTurn`, scanreg) and the turn found differs
  from odometry's turn between the two scans' arrivals (give or take ``SCAN_BEFORE_S`` /
  ``ODOM_AFTER_S``) by more than ``scan_heading_mismatch`` (odometry that does not show the
  robot turning, as wheel odometry on a slipping or veering base, or the reverse); fits that
  scanreg does not accept are not used. A motion that reaches its target while the latest
  scan arrived more than ``SCAN_LATE_PERIODS`` scan periods ago (the process was stalled and
  odometry was taken before the scans queued behind it) stops and waits for the next scan:
  it is reported only once the laser has seen where it ended (or ``scan_timeout`` ends it).

Collision monitor (with a :class:`~o4a_nav.nav.collision.CollisionChecker`, as the node
always has unless ``collision_monitor`` is false): a motion starts only on a scan younger
than ``scan_timeout`` that allows it (FORWARD: the swept box holds no return and the rays
prove it free, the same rule as A_free; any motion: the scan is consistent); while it runs,
every scan is checked twice against what the rest of the motion sweeps from where the robot
was when the scan was taken. First on arrival, whatever the clocks: the progress is taken
as the commanded integral at the scan's arrival (or at its stamp when the laser's clock is
ahead, up to ``max_clock_skew``), which the robot cannot have exceeded when the scan was
taken, so the rest of the motion checked is the least it can be and an intrusion into it
stops the robot at once. Then exactly, from the scan's stamp (FORWARD: the box shortened by
the distance travelled at the stamp, the lesser of odometry and the commanded integral;
rotations with a polygon footprint: the rest of the sweep at that stamp); a motion without a
scan for ``scan_timeout`` stops. Odometry at the scan's stamp is the latest odometry message
stamped at or before it; a scan stamped after the latest odometry waits for that second
check until odometry reaches its stamp (:meth:`check_pending_scans`, called after
:meth:`on_odom`, checks it then; a motion whose odometry stops is ended by
``odom_timeout``). Checked against the newest pose instead, a scan taken one
control period into a FORWARD would see the box reach that much beyond the motion's end
and abort a FORWARD that A_free allowed. An intrusion zeroes the velocity at once (the
ControlOutput of :meth:`on_scan` or :meth:`check_pending_scans`).

Readiness: while no motion runs, :meth:`idle_report` says (MotionState IDLE, sequence 0)
whether a motion could start now (``READY``, or ``NOT_READY`` and why: no or stale
odometry), when that changes and every ``READY_REPORT_PERIOD`` s, so that a navigator can
refuse a goal up front instead of sending motions that the base must abort.

The node calls :meth:`on_odom` for each odometry message, :meth:`command` for each
DiscreteAction and :meth:`update` at the control rate; each returns a
:class:`ControlOutput` with the velocity to publish and, when the state changed, the
MotionState to report.
"""
from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field
from typing import ClassVar

from o4a_nav.errors import UserError
from o4a_nav.params import Params, param
from o4a_nav.types import FORWARD_STEP_M, ROTATE_STEP_RAD, Action, MotionStatus, Pose2D, wrap_angle

PREEMPTED = "pre-empted by a new command"  # ABORTED by the commander, not by a failure of the base
READY, NOT_READY = "ready", "not ready: "   # MotionState IDLE messages of idle_report
READY_REPORT_PERIOD = 1.0   # s between two readiness reports while idle (and on every change)
HEADING_LAG_S = 0.25  # s: odometry's heading may trail or lead the commanded turn by this much time
# scan heading check: a scan shows the base at most SCAN_BEFORE_S before it arrives (a 10 Hz
# laser's sweep plus transport), odometry of an instant arrives at most ODOM_AFTER_S after it
SCAN_BEFORE_S = 0.15
ODOM_AFTER_S = 0.05
# a motion's end is judged on a scan that arrived at most this many scan periods (the median
# of the recent intervals between scans) before it; a later one is waited for
SCAN_LATE_PERIODS = 1.5


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
    action_timeout: float = param(0.0, "a motion not finished after this is aborted [s]; 0 = 2x the duration "
                                       "of the speed profile + 1 s", (0.0, 120.0))
    max_clock_skew: float = param(0.2, "odometry, command or scan stamps further ahead of this clock are faults [s]",
                                  (0.0, 10.0))
    distance_cap_margin: float = param(0.04, "FORWARD ends when the commanded distance exceeds forward_distance "
                                             "+ this [m]", (0.0, 1.0))
    angle_cap_margin: float = param(0.07, "ROTATE ends when the commanded angle exceeds rotation_angle + this [rad]",
                                    (0.0, 1.0))
    frozen_odom_distance: float = param(0.08, "commanded distance with an unchanged pose that means frozen "
                                              "odometry [m]", (0.001, 1.0))
    frozen_odom_angle: float = param(0.14, "commanded angle with an unchanged heading that means frozen "
                                           "odometry [rad]", (0.001, 1.0))
    odom_jump_distance: float = param(0.05, "pose change beyond what the speeds allow that means a jump/reset [m]",
                                      (0.0, 5.0))
    odom_jump_angle: float = param(0.1, "heading change beyond what the speeds allow that means a jump/reset [rad]",
                                   (0.0, 3.2))
    forward_max_turn: float = param(0.1, "a FORWARD ends when the turn commanded by the heading hold, or the heading "
                                         "change odometry reports, exceeds this [rad] (~5.7 deg)", (0.001, 1.0))
    heading_mismatch: float = param(0.14, "a motion ends when odometry's heading change and the turn commanded differ "
                                          "by more than this [rad] (drifting odometry, a base not turning as told)",
                                    (0.001, 3.2))
    scan_heading_mismatch: float = param(0.05, "a motion ends when the turn registered between its first scan and a "
                                               "later one (scanreg) and odometry's turn differ by more than this "
                                               "[rad] (~2.9 deg; odometry not showing a veer or slip); 0 = no check",
                                         (0.0, 3.2))
    scan_timeout: float = param(0.5, "collision monitor: a motion needs a scan younger than this [s]", (0.01, 10.0))
    collision_monitor: bool = param(True, "check every scan against the rest of the running motion "
                                          "(false: the base has its own collision monitor)")

    def _check(self):
        if self.min_linear_speed > self.max_linear_speed or self.min_angular_speed > self.max_angular_speed:
            raise UserError("base_controller: min speeds must not exceed max speeds")
        if self.scan_heading_mismatch > 0:
            from o4a_nav.nav.scan_turn import require_registration

            require_registration()

    def profile_duration(self, action: Action) -> float:
        """Duration of the speed profile of one motion on a base that follows cmd_vel exactly
        (full speed, then the proportional ramp-down clamped at the minimum speed)."""
        if action == Action.FORWARD:
            rem, tol, vmax, vmin, k = (self.forward_distance, self.distance_tolerance, self.max_linear_speed,
                                       self.min_linear_speed, self.linear_gain)
        else:
            rem, tol, vmax, vmin, k = (self.rotation_angle, self.angle_tolerance, self.max_angular_speed,
                                       self.min_angular_speed, self.angular_gain)
        t, dt = 0.0, 0.005
        while rem > tol and t < 600.0:
            v = min(vmax, max(vmin, k * rem))
            if v <= 0:
                return math.inf
            rem -= v * dt
            t += dt
        return t

    def timeout_for(self, action: Action) -> float:
        if self.action_timeout > 0:
            return self.action_timeout
        return 2.0 * self.profile_duration(action) + 1.0


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
    """``monitor``: the CollisionChecker of the collision monitor (None: no monitor, motions
    need no scan; the node always passes one unless ``collision_monitor`` is false)."""

    def __init__(self, params: BaseControllerParams | None = None, monitor=None):
        self.params = params or BaseControllerParams()
        self.monitor = monitor
        self.pose: Pose2D | None = None
        self.odom_stamp: float = -math.inf
        self.odom_arrival: float = -math.inf
        self.odom_fault = ""                 # jump / reset / stamp going backwards, since the last command
        self._prev_odom: tuple | None = None  # (pose, stamp) of the previous odometry message
        self.scan = None                     # latest ScanData
        self.scan_arrival: float = -math.inf
        self._scan_gaps: deque = deque(maxlen=21)  # recent intervals between scan arrivals [s]
        self._cmd_dist = 0.0                 # integral of |v| commanded in this motion [m]
        self._cmd_angle = 0.0                # integral of |w| commanded in this motion [rad]
        self._cmd_turn = 0.0                 # integral of w (signed) commanded in this motion [rad]
        self._last_out: tuple = (0.0, 0.0, 0.0)  # (time, v, w) of the last velocity output
        # the running motion's history, for the collision monitor's check of a scan at its stamp
        self._odom_hist: list[tuple[float, Pose2D]] = []       # (stamp, pose), stamps increasing
        self._cmd_hist: list[tuple] = []   # (time, _cmd_dist, _cmd_angle, _cmd_turn, v, w): each output as given
        self._pending_scans: deque = deque(maxlen=32)          # scans newer than the latest odometry
        self._still_since: tuple = (0.0, 0.0)    # (cmd_dist, cmd_angle) when the pose last changed
        self._still_msgs = 0                     # odometry messages with an unchanged pose since then
        self.state = MotionStatus.IDLE
        self.action = Action.STOP
        self.sequence = 0
        self._start: Pose2D | None = None
        self._t_start = 0.0
        self._target_yaw = 0.0
        self.last_message = ""
        # scan heading check: odometry's heading (unwrapped) by arrival, kept across motions
        # (a motion's reference scan arrived before it started), and the motion's registered turns
        self._yaw_hist: deque = deque(maxlen=512)   # (arrival, yaw)
        self._scan_turn = None                       # ScanTurn, made at the first motion that needs it
        self._scan_turns: list[tuple[float, float]] = []  # (scan arrival, registered turn) not yet judged
        self._ready_said: tuple[bool, float] | None = None  # (ready, time) of the last idle_report

    # ---------------------------------------------------------------- inputs
    def on_odom(self, pose: Pose2D, stamp: float, now: float | None = None) -> bool:
        """Store an odometry pose (``now``: its arrival time, default its stamp); a
        non-finite one is ignored (returns False), so that the odometry goes stale and the
        motion stops instead of steering on NaN. Jumps and stamps going backwards are
        recorded in ``odom_fault`` (the running motion is then aborted)."""
        if not all(math.isfinite(v) for v in (pose.x, pose.y, pose.yaw, stamp)):
            return False
        p = self.params
        stamp = float(stamp)
        if self._prev_odom is not None and not self.odom_fault:
            prev, prev_stamp = self._prev_odom
            dt = stamp - prev_stamp
            jump = math.hypot(pose.x - prev.x, pose.y - prev.y)
            turn = abs(wrap_angle(pose.yaw - prev.yaw))
            if dt < 0:
                self.odom_fault = f"odometry stamp went backwards by {-dt:.3f} s (reset?)"
            elif jump > 2.0 * p.max_linear_speed * dt + p.odom_jump_distance:
                self.odom_fault = f"odometry jumped {jump:.3f} m in {dt:.3f} s (reset or fault?)"
            elif turn > 2.0 * p.max_angular_speed * dt + p.odom_jump_angle:
                self.odom_fault = f"odometry heading jumped {math.degrees(turn):.1f} deg in {dt:.3f} s"
            if self.state == MotionStatus.EXECUTING:
                if jump > 1e-4 or turn > 1e-4:
                    self._still_since, self._still_msgs = (self._cmd_dist, self._cmd_angle), 0
                else:
                    self._still_msgs += 1
        yaw = pose.yaw if self._prev_odom is None else self._yaw_hist[-1][1] + wrap_angle(pose.yaw - self._prev_odom[0].yaw)
        self._prev_odom = (pose, stamp)
        self.pose = pose
        self.odom_stamp = stamp
        self.odom_arrival = stamp if now is None else float(now)
        self._yaw_hist.append((self.odom_arrival, yaw))
        if self.state == MotionStatus.EXECUTING and (not self._odom_hist or stamp >= self._odom_hist[-1][0]):
            self._odom_hist.append((stamp, pose))
        return True

    def check_pending_scans(self, now: float) -> ControlOutput | None:
        """Collision monitor: check the scans that waited for odometry to reach their
        stamp and now can be (call after :meth:`on_odom`). Returns the aborting output
        (zero velocity) on an intrusion, None when there is nothing to publish."""
        if self.state != MotionStatus.EXECUTING or self.monitor is None:
            self._pending_scans.clear()
            return None
        while self._pending_scans and float(self._pending_scans[0].stamp) <= self.odom_stamp:
            why = self._rest_blocked(self._pending_scans.popleft())
            if why:
                self._pending_scans.clear()
                return self._finish(MotionStatus.ABORTED, f"collision monitor: {why}")
        return None

    def odom_problem(self, now: float) -> str:
        """Why odometry cannot be used now ("" when it can): missing, older than
        odom_timeout by stamp or by arrival, or stamped beyond max_clock_skew ahead."""
        p = self.params
        if self.pose is None:
            return "no odometry"
        if self.odom_stamp - now > p.max_clock_skew:
            return (f"odometry stamped {self.odom_stamp - now:.3f} s in the future (max_clock_skew "
                    f"{p.max_clock_skew} s): clocks out of sync")
        age = max(now - self.odom_stamp, now - self.odom_arrival)
        if age > p.odom_timeout:
            return f"stale odometry: {age:.3f} s old (odom_timeout {p.odom_timeout} s)"
        return ""

    def idle_report(self, now: float) -> MotionReport | None:
        """While no motion runs: a MotionReport (sequence 0, STOP, IDLE) whose message is
        READY or NOT_READY + why a motion could not start now (odometry), when readiness
        changed or READY_REPORT_PERIOD after the last one; None otherwise."""
        if self.state == MotionStatus.EXECUTING:
            return None
        why = self.odom_problem(now)
        said = self._ready_said
        if said is not None and said[0] == (not why) and 0.0 <= now - said[1] < READY_REPORT_PERIOD:
            return None
        self._ready_said = (not why, now)
        return MotionReport(0, Action.STOP, MotionStatus.IDLE, NOT_READY + why if why else READY)

    def inactive_report(self, why: str) -> MotionReport:
        """The NOT_READY report of a base that stopped executing (``why``); the next
        idle_report is sent whatever it says."""
        self._ready_said = None
        return MotionReport(0, Action.STOP, MotionStatus.IDLE, NOT_READY + why)

    def on_scan(self, scan, now: float) -> ControlOutput:
        """Collision monitor: store the scan (``now``: its arrival) and check the rest of the
        running motion against it; an intrusion aborts the motion with zero velocity."""
        if float(now) > self.scan_arrival > -math.inf:
            self._scan_gaps.append(float(now) - self.scan_arrival)
        self.scan, self.scan_arrival = scan, float(now)
        if self.state != MotionStatus.EXECUTING:
            return ControlOutput(0.0, 0.0)
        if self.monitor is not None:
            why = self._scan_problem(now) or self._rest_blocked(scan, sure_at=self._latest_capture(scan, now))
            if not why and float(scan.stamp) > self.odom_stamp and not self.monitor.scan_fault(scan):
                self._pending_scans.append(scan)   # checked when odometry reaches its stamp
            elif not why:
                why = self._rest_blocked(scan)
            if why:
                return self._finish(MotionStatus.ABORTED, f"collision monitor: {why}")
        self._measure_scan_turn(scan, now)    # after the collision checks: never delays a stop
        return self.update(now)

    # ------------------------------------------------------- scan heading check
    def _scan_turn_for(self, now: float):
        """The ScanTurn of a motion starting now (its reference: the latest scan, when
        fresh), or None when the check is off."""
        if self.params.scan_heading_mismatch <= 0:
            return None
        if self._scan_turn is None:
            from o4a_nav.nav.scan_turn import ScanTurn

            self._scan_turn = ScanTurn()
        m = self.monitor
        if m is not None:
            self._scan_turn.mount = Pose2D(m.params.laser_x, m.params.laser_y, m.params.laser_yaw)
        fresh = self.scan is not None and not self._scan_problem(now) and not (m is not None and m.scan_fault(self.scan))
        self._scan_turn.start(self.scan if fresh else None, self.scan_arrival, self.pose)
        return self._scan_turn

    def _measure_scan_turn(self, scan, now: float) -> None:
        """Register a scan of the running motion against its reference (kept for
        :meth:`_scan_turn_problem` to judge once odometry covers the scan's arrival). While
        the motion has no reference with enough points to register against (its first scan
        saw nothing), this scan becomes the reference: the check covers the motion from
        here on instead of not at all."""
        st = self._scan_turn
        if (st is None or self.params.scan_heading_mismatch <= 0 or self._start is None
                or (self.monitor is not None and self.monitor.scan_fault(scan))):
            return
        if not st.usable():
            st.start(scan, now, self.pose)
            return
        yaw = st.turn(scan, self.pose)
        if yaw is not None:
            self._scan_turns.append((float(now), yaw))

    def _end_unseen(self, now: float) -> bool:
        """Whether the scan heading check of the running motion has not seen its end yet:
        the latest scan arrived more than SCAN_LATE_PERIODS scan periods before ``now``
        (False while the check is off or the period is not known yet, and once the scan is
        older than scan_timeout: the collision monitor ends the motion then; without it,
        the end is judged on the scans there are)."""
        st = self._scan_turn
        if (st is None or st.ref_arrival is None or self.params.scan_heading_mismatch <= 0
                or len(self._scan_gaps) < 3):
            return False
        gaps, late = sorted(self._scan_gaps), now - self.scan_arrival
        return SCAN_LATE_PERIODS * gaps[len(gaps) // 2] < late <= self.params.scan_timeout

    def _odom_yaw_range(self, t0: float, t1: float, final: bool) -> tuple[float, float] | None:
        """Least and greatest odometry heading (unwrapped) of the messages that arrived in
        [t0, t1] and of the last one before and the first one after (the heading between
        two messages lies between theirs); None while no message has arrived after t1 yet
        (``final``: judge with what there is)."""
        h = self._yaw_hist
        if not h or (h[-1][0] < t1 and not final):
            return None
        vals, before = [], None
        for a, yaw in h:
            if a < t0:
                before = yaw
                continue
            vals.append(yaw)
            if a > t1:
                break
        if before is not None:
            vals.append(before)
        return min(vals), max(vals)

    def _scan_turn_problem(self, final: bool = False) -> str:
        """Why the registered turns of the motion's scans contradict odometry ("" when they
        agree or cannot be judged yet; ``final``: judge every one now)."""
        st, p = self._scan_turn, self.params
        if not self._scan_turns or st is None or st.ref_arrival is None:
            return ""
        ref = self._odom_yaw_range(st.ref_arrival - SCAN_BEFORE_S, st.ref_arrival + ODOM_AFTER_S, final)
        if ref is None:
            return ""
        waiting = []
        for arrival, turn in self._scan_turns:
            r = self._odom_yaw_range(arrival - SCAN_BEFORE_S, arrival + ODOM_AFTER_S, final)
            if r is None:
                waiting.append((arrival, turn))
                continue
            lo, hi = r[0] - ref[1], r[1] - ref[0]
            off = max(turn - hi, lo - turn, 0.0)
            if off > p.scan_heading_mismatch:
                self._scan_turns = []
                return (f"heading: the laser shows {math.degrees(turn):.1f} deg of turn during the motion, "
                        f"odometry {math.degrees(lo):.1f} to {math.degrees(hi):.1f} deg (scan_heading_mismatch "
                        f"{math.degrees(p.scan_heading_mismatch):.1f} deg): odometry not showing how the base turns "
                        f"(slipping or veering base, drifting heading)")
        self._scan_turns = waiting
        return ""

    def _scan_problem(self, now: float) -> str:
        p = self.params
        if self.scan is None:
            return "no scan"
        stamp = float(self.scan.stamp)
        if stamp - now > p.max_clock_skew:
            return f"scan stamped {stamp - now:.3f} s in the future (max_clock_skew {p.max_clock_skew} s)"
        age = max(now - stamp, now - self.scan_arrival)
        if age > p.scan_timeout:
            return f"no scan for {age:.3f} s (scan_timeout {p.scan_timeout} s)"
        return ""

    def _at(self, t: float) -> tuple[Pose2D | None, float, float]:
        """The running motion at time ``t``: (odometry pose stamped at or before t, or None
        before the first; commanded distance and angle integrated up to t)."""
        pose = next((p for stamp, p in reversed(self._odom_hist) if stamp <= t), None)
        for tc, dist, ang, _, v, w in reversed(self._cmd_hist):
            if tc <= t:   # output (v, w) given at tc holds until the next one
                return pose, dist + abs(v) * (t - tc), ang + abs(w) * (t - tc)
        return pose, 0.0, 0.0

    def _turn_at(self, t: float) -> float:
        """The turn (signed, rad) commanded in the running motion up to time ``t``."""
        for tc, _, _, turn, _, w in reversed(self._cmd_hist):
            if tc <= t:
                return turn + w * (t - tc)
        return 0.0

    def _turn_range(self, t0: float, t1: float) -> tuple[float, float]:
        """Least and greatest turn commanded up to any time in [t0, t1] (the integral is
        piecewise linear: its ends and the outputs given in between bound it)."""
        vals = [self._turn_at(t0), self._turn_at(t1)] + [turn for tc, _, _, turn, _, _ in self._cmd_hist
                                                         if t0 < tc < t1]
        return min(vals), max(vals)

    def travelled(self, t: float | None = None) -> float:
        """Distance of the running FORWARD at time ``t`` (default: the latest odometry): the
        lesser of odometry and the commanded integral (the larger box still to sweep)."""
        if self.action != Action.FORWARD or self._start is None:
            return 0.0
        pose, cmd, _ = self._at(self.odom_stamp if t is None else t)
        odom = self.params.forward_distance - self.remaining(pose) if pose is not None else 0.0
        return max(0.0, min(odom if math.isfinite(odom) else 0.0, cmd))

    def _latest_capture(self, scan, now: float) -> float:
        """A time, on this node's clock, at or after the moment ``scan`` was taken whatever
        the offset of the laser's clock: its arrival ``now``, or its stamp when that is later
        (a laser clock ahead, up to ``max_clock_skew``; a scan stamped further ahead is a
        fault anyway). The commanded progress at that time bounds the progress at the scan
        from above."""
        return max(now, min(float(scan.stamp), now + self.params.max_clock_skew))

    def _rest_blocked(self, scan, sure_at: float | None = None) -> str:
        """Why ``scan`` shows the rest of the running motion, as it was at the scan's stamp,
        blocked ("" when it is clear).

        ``sure_at``: judge it instead from the commanded progress at that time (the distance
        or angle commanded up to then, an upper bound of the progress at the scan when
        ``sure_at`` is no earlier than the scan was taken, see :meth:`_latest_capture`). The
        rest of the motion is then the least it can be, so an intrusion found this way is
        one whatever the clocks of odometry and laser say, and it needs no odometry: the
        check runs on the scan's arrival. Its box is never larger than the one judged at the
        stamp (which follows, from odometry, when the clocks allow)."""
        m, t = self.monitor, float(scan.stamp)
        if sure_at is not None:
            _, cmd_dist, cmd_angle = self._at(sure_at)
            if self.action == Action.FORWARD:
                return m.forward_rest_blocked(scan, cmd_dist)
            return m.rotation_rest_blocked(scan, 1.0 if self.action == Action.ROTATE_LEFT else -1.0,
                                           max(0.0, self.params.rotation_angle - cmd_angle))
        if self.action == Action.FORWARD:
            return m.forward_rest_blocked(scan, self.travelled(t))
        pose, _, cmd_angle = self._at(t)
        rem = self.remaining(pose) if self._start is not None and pose is not None else self.params.rotation_angle
        rem = self.params.rotation_angle if not math.isfinite(rem) else max(rem, 0.0)
        left = max(rem, self.params.rotation_angle - cmd_angle)
        return m.rotation_rest_blocked(scan, 1.0 if self.action == Action.ROTATE_LEFT else -1.0, left)

    def _finish(self, state: MotionStatus, message: str) -> ControlOutput:
        self.state = state
        self.last_message = message
        return self._out(0.0, 0.0, [MotionReport(self.sequence, self.action, state, message)])

    def _out(self, v: float, w: float, reports=None, now: float | None = None) -> ControlOutput:
        """A velocity output; integrates the previous one over the time since it was given."""
        t0, v0, w0 = self._last_out
        t = t0 if now is None else now
        if self.state == MotionStatus.EXECUTING or reports:
            dt = max(0.0, t - t0)
            self._cmd_dist += abs(v0) * dt
            self._cmd_angle += abs(w0) * dt
            self._cmd_turn += w0 * dt
            self._cmd_hist.append((t, self._cmd_dist, self._cmd_angle, self._cmd_turn, v, w))
        self._last_out = (t, v, w)
        return ControlOutput(v, w, list(reports or []))

    def command(self, action: Action | int, sequence: int, now: float, stamp: float | None = None) -> ControlOutput:
        """A new DiscreteAction. Pre-empts the running motion. Returns the first output."""
        action = Action(int(action))
        pre = None
        if self.state == MotionStatus.EXECUTING:
            pre = MotionReport(self.sequence, self.action, MotionStatus.ABORTED, PREEMPTED)
        self.action, self.sequence = action, int(sequence)
        if pre is not None:  # the velocity given so far counts for the pre-empted motion only
            self._out(0.0, 0.0, now=now)
            self.state = MotionStatus.ABORTED
        odom_why = self.odom_problem(now)
        if stamp is not None and now - stamp > self.params.command_timeout:
            out = self._finish(MotionStatus.ABORTED, f"stale command: {now - stamp:.3f} s old (command_timeout "
                                        f"{self.params.command_timeout} s)")
        elif stamp is not None and stamp - now > self.params.max_clock_skew:
            out = self._finish(MotionStatus.ABORTED, f"command stamped {stamp - now:.3f} s in the future (max_clock_skew "
                                        f"{self.params.max_clock_skew} s)")
        elif action == Action.STOP:
            out = self._finish(MotionStatus.SUCCEEDED, "stopped")
        elif odom_why:
            out = self._finish(MotionStatus.ABORTED, odom_why)
        elif self.monitor is not None and (self._scan_problem(now) or self._start_blocked(action)):
            why = self._scan_problem(now) or self._start_blocked(action)
            out = self._finish(MotionStatus.ABORTED, f"refused by the collision monitor: {why}")
        else:
            self.state = MotionStatus.EXECUTING
            self.last_message = ""
            self.odom_fault = ""
            self._start = self.pose
            self._t_start = now
            self._cmd_dist = self._cmd_angle = self._cmd_turn = 0.0
            self._still_since, self._still_msgs = (0.0, 0.0), 0
            self._last_out = (now, 0.0, 0.0)
            self._odom_hist = [(self.odom_stamp, self.pose)]
            self._cmd_hist = [(now, 0.0, 0.0, 0.0, 0.0, 0.0)]
            self._pending_scans.clear()
            self._scan_turns = []
            self._scan_turn_for(now)
            sign = 1.0 if action == Action.ROTATE_LEFT else -1.0
            self._target_yaw = wrap_angle(self.pose.yaw + sign * self.params.rotation_angle)
            out = self.update(now)
            out.reports.insert(0, MotionReport(self.sequence, action, MotionStatus.EXECUTING, ""))
        if pre is not None:
            out.reports.insert(0, pre)
        return out

    def _start_blocked(self, action: Action) -> str:
        """Why the latest scan does not allow starting this motion ("" when it does)."""
        m = self.monitor
        if action == Action.FORWARD:
            return m.forward_rest_blocked(self.scan, 0.0)
        sign = 1.0 if action == Action.ROTATE_LEFT else -1.0
        return m.rotation_rest_blocked(self.scan, sign, self.params.rotation_angle)

    def remaining(self, pose: Pose2D | None = None) -> float:
        """Distance [m] or angle [rad] still to go for the running motion (signed), from
        ``pose`` (default: the latest odometry)."""
        p, s = self.params, self._start
        pose = self.pose if pose is None else pose
        if pose is None or s is None:
            return math.nan
        if self.action == Action.FORWARD:
            travelled = (pose.x - s.x) * math.cos(s.yaw) + (pose.y - s.y) * math.sin(s.yaw)
            return p.forward_distance - travelled
        err = wrap_angle(self._target_yaw - pose.yaw)
        return err if self.action == Action.ROTATE_LEFT else -err

    def update(self, now: float) -> ControlOutput:
        """Velocity for this control tick."""
        p = self.params
        if self.state != MotionStatus.EXECUTING:
            return ControlOutput(0.0, 0.0)
        self._out(*self._last_out[1:], now=now)  # bring the commanded integrals up to now
        why = self._bound_violation(now)
        if why:
            return self._finish(MotionStatus.ABORTED, why)
        rem = self.remaining()
        if self.action == Action.FORWARD:
            if rem <= p.distance_tolerance:
                return self._succeed(now)
            v = min(p.max_linear_speed, max(p.min_linear_speed, p.linear_gain * rem))
            yaw_err = wrap_angle(self._start.yaw - self.pose.yaw)
            w = max(-p.max_angular_speed, min(p.max_angular_speed, p.heading_gain * yaw_err))
            return self._out(v, w, now=now)
        if rem <= p.angle_tolerance:
            return self._succeed(now)
        w = min(p.max_angular_speed, max(p.min_angular_speed, p.angular_gain * rem))
        return self._out(0.0, w if self.action == Action.ROTATE_LEFT else -w, now=now)

    def _succeed(self, now: float) -> ControlOutput:
        """The motion reached its target: SUCCEEDED, unless a scan registered during it and
        not judged yet contradicts odometry; while the latest scan is late (see
        :meth:`_end_unseen`), zero velocity and no report yet."""
        if self._end_unseen(now):
            return self._out(0.0, 0.0, now=now)
        why = self._scan_turn_problem(final=True)
        return self._finish(MotionStatus.ABORTED, why) if why else self._finish(MotionStatus.SUCCEEDED, "")

    def _bound_violation(self, now: float) -> str:
        """Why the running motion must end now ("" when it may go on)."""
        p = self.params
        why = self.odom_problem(now)
        if why:
            return why
        if self.odom_fault:
            return self.odom_fault
        if self.monitor is not None:
            why = self._scan_problem(now)
            if why:
                return f"collision monitor: {why}"
        if now - self._t_start > p.timeout_for(self.action):
            return (f"motion not finished after {now - self._t_start:.1f} s (action timeout "
                    f"{p.timeout_for(self.action):.1f} s; blocked?)")
        moved, turned = self._cmd_dist - self._still_since[0], self._cmd_angle - self._still_since[1]
        if self._still_msgs < 2:  # frozen = messages keep coming with the same pose (no messages: stale)
            moved = turned = 0.0
        if self.action == Action.FORWARD:
            if self._cmd_dist >= p.forward_distance + p.distance_cap_margin:
                return (f"distance cap: {self._cmd_dist:.3f} m commanded, odometry says "
                        f"{p.forward_distance - self.remaining():.3f} m of {p.forward_distance} m travelled")
            if moved >= p.frozen_odom_distance:
                return f"odometry frozen: pose unchanged while {moved:.3f} m were commanded (or the base is stuck)"
        else:
            if self._cmd_angle >= p.rotation_angle + p.angle_cap_margin:
                return (f"angle cap: {math.degrees(self._cmd_angle):.1f} deg commanded, odometry says "
                        f"{math.degrees(p.rotation_angle - self.remaining()):.1f} of "
                        f"{math.degrees(p.rotation_angle):.1f} deg turned")
            if turned >= p.frozen_odom_angle:
                return (f"odometry frozen: heading unchanged while {math.degrees(turned):.1f} deg were "
                        f"commanded (or the base is stuck)")
        # heading: odometry's turn since the start against the turn commanded up to the
        # odometry's arrival (not its stamp, which may be offset) give or take HEADING_LAG_S
        # (the base's lag, message delays, a lockstep period), and the FORWARD's turn cap
        odom_turn = wrap_angle(self.pose.yaw - self._start.yaw)
        t_odom = min(self.odom_arrival, now)
        lo, hi = self._turn_range(t_odom - HEADING_LAG_S, t_odom + HEADING_LAG_S)
        off = max(lo - odom_turn, odom_turn - hi, 0.0)
        if off > p.heading_mismatch:
            return (f"odometry heading disagrees with the commanded turn by {math.degrees(off):.1f} deg: odometry "
                    f"{math.degrees(odom_turn):.1f} deg, commanded {math.degrees(lo):.1f} to {math.degrees(hi):.1f} deg "
                    f"(heading_mismatch {math.degrees(p.heading_mismatch):.1f} deg): drifting odometry or a base not "
                    f"turning as told")
        if self.action == Action.FORWARD:
            veer = max(abs(self._cmd_turn), abs(odom_turn))
            if veer > p.forward_max_turn:
                return (f"heading: a FORWARD turned {math.degrees(veer):.1f} deg (commanded "
                        f"{math.degrees(self._cmd_turn):.1f}, odometry {math.degrees(odom_turn):.1f}; forward_max_turn "
                        f"{math.degrees(p.forward_max_turn):.1f} deg): drifting odometry heading or a base veering")
        return self._scan_turn_problem()

    def stop(self, message: str) -> ControlOutput:
        """Abort whatever runs (zero velocity)."""
        if self.state == MotionStatus.EXECUTING:
            return self._finish(MotionStatus.ABORTED, message)
        return ControlOutput(0.0, 0.0)
