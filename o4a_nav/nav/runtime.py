"""The navigator node's logic without ROS: inputs, staleness, stop-and-go, safety gate,
goals. The `navigator` node decodes messages (images: ros_conv.image_msg_to_rgb, at the
camera's size, live and goal images alike) and forwards them here; everything that
decides what the robot does is in this module (and in O4ANavigator / CollisionChecker).

Timing: every time is in seconds of the node clock (ROS time, or /clock with
use_sim_time); input times are the header stamps (their arrival time when a stamp is
zero) and the node-clock time they arrived (``received``). ``arrival`` times are
time.perf_counter() values used only to measure the decision latency (newest image
arrival -> action published).

Rules:
- Stop-and-go: after an action is published, no new decision until the base controller
  reported that motion finished (MotionState SUCCEEDED/ABORTED for its sequence) and
  both images and the A_free inputs were stamped after that moment. Each image pair is
  used for at most one decision. A motion with no final report after ``motion_timeout``
  is stopped (STOP published) and treated as finished.
- Stale inputs: with a goal, any of front_camera, rear_camera, scan, free_actions older
  than ``stale_timeout`` by stamp or by arrival, stamped more than ``max_clock_skew`` in
  the future (a clock fault), or missing (a scan the checker finds inconsistent counts as
  missing) -> STOP is published once, state STALE_INPUT with the names and reasons;
  navigation resumes by itself when the data is fresh again. For the stop-and-go rule an
  input must be stamped after the motion ended and have arrived after this node learned
  it (a future stamp cannot make an old image look new).
- Aborted motions: a motion that the base reports ABORTED (or that is stopped here) did
  not happen: the navigator's memory and counters are restored to before that decision.
  ``max_consecutive_aborts`` aborts in a row by the base (pre-emptions by a new command
  not counted) end the goal (FAILED) with the base's reason.
- Model outputs: a decision with a non-finite d_h or potential ends the goal (FAILED,
  STOP) with the reason.
- Safety gate: A_free = (FreeActions topic) & (CollisionChecker on the latest scan seen
  here). FORWARD is therefore never published while the latest scan has a return in the
  swept box, even if the collision checker node lags or is misconfigured.
- No model: goals are refused with the load error; nothing but STOP is ever published.
- No base: a goal is refused with the base controller's reason while its latest readiness
  report (MotionState IDLE, base_controller.idle_report) says it could not start a motion
  (no or stale odometry), so that no motion is sent only to be aborted. A base that never
  reported (a replay driver, a base of another make) is taken as ready. The node waits up
  to ``base_ready_timeout`` for a ready report before it asks (a goal sent while the
  stack starts up).
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import ClassVar

import numpy as np

from o4a_nav.errors import UserError
from o4a_nav.params import Params, param
from o4a_nav.nav.base_controller import NOT_READY, PREEMPTED
from o4a_nav.nav.collision import CollisionChecker
from o4a_nav.nav.navigator import Candidate, Decision, O4ANavigator
from o4a_nav.types import Action, MotionStatus, NavState, ScanData


INPUTS = ("front_camera", "rear_camera", "scan", "free_actions")


@dataclass
class RuntimeParams(Params):
    OWNER: ClassVar[str] = "navigator"
    stale_timeout: float = param(0.5, "images, scan or free_actions older than this stop the robot [s]",
                                 (0.01, 60.0))
    motion_timeout: float = param(10.0, "a motion not reported finished after this is stopped [s]", (0.1, 600.0))
    use_free_actions: bool = param(True, "use A_free from o4a/free_actions (collision_checker node)")
    use_scan_gate: bool = param(True, "also check the latest scan in this node (same CollisionChecker, "
                                      "footprint params)")
    max_clock_skew: float = param(0.2, "inputs stamped further ahead of this node's clock are clock faults "
                                       "(stale) [s]", (0.0, 10.0))
    max_consecutive_aborts: int = param(5, "motions aborted by the base in a row that fail the goal", (1, 1000))
    base_ready_timeout: float = param(2.0, "a goal waits this long (wall clock) for the base controller to report "
                                           "ready (fresh odometry) and is refused with the base's reason if it does "
                                           "not [s]; 0 = refuse at once", (0.0, 60.0))

    def _check(self):
        if not (self.use_free_actions or self.use_scan_gate):
            raise UserError("navigator: use_free_actions and use_scan_gate cannot both be false "
                            "(there would be no collision check)")


@dataclass
class GoalResult:
    success: bool
    reason: str
    steps: int = 0
    forwards: int = 0
    rotations: int = 0
    final_goal_distance: float = math.nan


@dataclass
class _Input:
    value: object = None
    stamp: float = -math.inf
    arrival: float = 0.0          # perf_counter (latency only)
    received: float = -math.inf   # node clock at arrival


@dataclass
class Status:
    state: NavState = NavState.IDLE
    stale_inputs: list = field(default_factory=list)
    goal_distance: float = math.nan
    stop_threshold: float = math.nan
    candidates: list[Candidate] = field(default_factory=list)   # of the last decision, evaluation order
    chosen_action: Action = Action.STOP
    step: int = 0
    forwards: int = 0
    rotations: int = 0
    decision_latency_ms: float = math.nan
    message: str = ""

    @property
    def state_text(self) -> str:
        return NavState(self.state).name


class NavigatorRuntime:
    """Callbacks (all optional): publish_action(action: Action, seq: int),
    publish_status(status: Status), on_feedback(goal_id, status),
    on_goal_done(goal_id, GoalResult), log(level: str, text)."""

    def __init__(self, navigator: O4ANavigator | None, checker: CollisionChecker,
                 params: RuntimeParams | None = None, model_error: str = "",
                 publish_action=None, publish_status=None, on_feedback=None, on_goal_done=None, log=None):
        self.nav = navigator
        self.checker = checker
        self.params = params or RuntimeParams()
        self.model_error = model_error or ("no model loaded" if navigator is None else "")
        self._pub_action = publish_action or (lambda a, s: None)
        self._pub_status = publish_status or (lambda st: None)
        self._on_feedback = on_feedback or (lambda gid, st: None)
        self._on_goal_done = on_goal_done or (lambda gid, res: None)
        self._log = log or (lambda level, text: None)
        self.inputs = {name: _Input() for name in INPUTS}
        self.input_errors: dict[str, str] = {}  # input name -> why its last message was unusable
        self.scan_free: frozenset = frozenset()
        self.topic_free: frozenset = frozenset()
        self.seq = 0
        self.goal_id = None
        self.default_max_steps = navigator.params.max_steps if navigator is not None else 0
        self.pending_seq: int | None = None
        self.pending_since = 0.0
        self.motion_done = -math.inf      # node-clock time the last motion finished
        self.motion_done_received = -math.inf  # node-clock time this node learned it
        self.last_obs_stamp = -math.inf   # newest image stamp already used for a decision
        self.stopped_for_stale = False
        self._undo = None                 # navigator snapshot before the pending motion's decision
        self.consecutive_aborts = 0
        self.base_report: tuple[str, float] | None = None   # (why the base is not ready, "" = ready; received)
        self.status = Status(state=NavState.NO_MODEL if navigator is None else NavState.IDLE, message=self.model_error)
        if navigator is not None:
            self.status.stop_threshold = navigator.params.stop_threshold

    # ------------------------------------------------------------------ helpers
    def _publish(self, action: Action) -> int:
        self.seq += 1
        self._pub_action(Action(action), self.seq)
        return self.seq

    def _set_state(self, state: int, message: str | None = None) -> None:
        changed = state != self.status.state or (message is not None and message != self.status.message)
        self.status.state = state
        if message is not None:
            self.status.message = message
        if changed:
            self._pub_status(self.status)

    def input_problem(self, name: str, now: float) -> str:
        """Why an input is not usable now ("" when it is)."""
        p, inp = self.params, self.inputs[name]
        if inp.stamp - inp.received > p.max_clock_skew:
            return f"stamped {inp.stamp - inp.received:.2f} s in the future: clock skew"
        age = max(now - inp.stamp, now - inp.received)
        if age > p.stale_timeout:
            return "missing" if not math.isfinite(age) else f"{age:.2f} s old"
        return ""

    def stale_inputs(self, now: float) -> list[str]:
        names = ["front_camera", "rear_camera"]
        if self.params.use_scan_gate:
            names.append("scan")
        if self.params.use_free_actions:
            names.append("free_actions")
        return [n for n in names if self.input_problem(n, now)]

    def free_set(self) -> set:
        free = set(Action.motions())
        if self.params.use_scan_gate:
            free &= set(self.scan_free)
        if self.params.use_free_actions:
            free &= set(self.topic_free)
        return free

    # ------------------------------------------------------------------ inputs
    def on_image(self, which: str, img: np.ndarray, stamp: float, now: float, arrival: float | None = None) -> None:
        """A decoded camera image (RGB or grey, any size: the navigator core converts it to
        the model input when it decides)."""
        key = "front_camera" if which == "front" else "rear_camera"
        self.inputs[key] = _Input(img, stamp, time.perf_counter() if arrival is None else arrival, now)
        self.input_errors.pop(key, None)
        self.tick(now)

    def on_image_error(self, which: str, error: str, now: float) -> None:
        """An image that could not be converted: the input stays stale, with the reason."""
        self.input_errors["front_camera" if which == "front" else "rear_camera"] = error
        self.tick(now)

    def on_scan(self, scan: ScanData, now: float) -> None:
        res = self.checker.free_actions(scan)
        self.scan_free = res.free
        if res.fault:  # an inconsistent scan (geometry, frame) counts as a missing one
            self.input_errors["scan"] = res.fault
        else:
            self.input_errors.pop("scan", None)
            self.inputs["scan"] = _Input(res, scan.stamp, time.perf_counter(), now)
        self.tick(now)

    def on_free_actions(self, free: set, stamp: float, now: float) -> None:
        self.topic_free = frozenset(a for a in free if a != Action.STOP)
        self.inputs["free_actions"] = _Input(self.topic_free, stamp, time.perf_counter(), now)
        self.tick(now)

    def _motion_ended(self, ok: bool, why: str = "", count: bool = True) -> None:
        """The pending motion is over: an aborted one is undone in the navigator (not
        counted, its waypoint forgotten); with ``count``, aborts in a row fail the goal."""
        self.pending_seq = None
        undo, self._undo = self._undo, None
        if ok:
            self.consecutive_aborts = 0
            return
        if undo is not None and self.nav is not None and self.nav.has_goal:
            self.nav.restore(undo)
        if count:
            self.consecutive_aborts += 1
            if self.consecutive_aborts >= self.params.max_consecutive_aborts and self.active:
                n, self.consecutive_aborts = self.consecutive_aborts, 0
                self._publish(Action.STOP)
                self._finish(GoalResult(False, f"{n} motions in a row aborted by the base, last: {why}",
                                        *self._counts()), state=NavState.FAILED)

    def on_motion_state(self, seq: int, state: int, stamp: float, message: str, now: float) -> None:
        if state == MotionStatus.IDLE:   # the base's readiness (idle_report)
            self.base_report = (message[len(NOT_READY):] if message.startswith(NOT_READY) else "", now)
            return
        if self.pending_seq is not None and seq == self.pending_seq and state in (MotionStatus.SUCCEEDED, MotionStatus.ABORTED):
            self.motion_done = max(stamp, self.pending_since)
            self.motion_done_received = now
            if state == MotionStatus.ABORTED:
                self._log("warn", f"motion {seq} aborted by the base: {message}")
            # a pre-emption (a STOP or another command) is not a failure of the base
            self._motion_ended(state == MotionStatus.SUCCEEDED, message, count=not message.startswith(PREEMPTED))
            self.tick(now)

    # ------------------------------------------------------------------ goals
    def base_problem(self, now: float) -> str:
        """Why the base controller cannot execute a motion, from its latest readiness
        report ("" when it reported ready or never reported)."""
        if self.base_report is None or not self.base_report[0]:
            return ""
        why, at = self.base_report
        return f"the base controller is not ready: {why} (reported {max(now - at, 0.0):.1f} s ago)"

    def set_goal(self, front_rgb, rear_rgb, now: float, goal_id=None, max_steps: int = 0) -> tuple[bool, str]:
        """Accept (True, msg) or reject (False, reason) a goal; a rejected goal keeps the old one."""
        if self.nav is None:
            return False, f"navigator has no usable model: {self.model_error}"
        if self.base_problem(now):
            return False, f"goal refused: {self.base_problem(now)}"
        old_counts, was_active = self._counts(), self.active
        try:
            self.nav.set_goal(front_rgb, rear_rgb)
        except UserError as exc:
            return False, f"goal rejected: {exc}"
        except Exception as exc:  # model-side failure: refuse the goal, never crash the node
            return False, f"goal rejected: the model failed on it ({type(exc).__name__}: {exc})"
        if was_active:
            self._finish(GoalResult(False, "pre-empted by a new goal", *old_counts), notify_state=False,
                         clear_goal=False)
        self.goal_id = goal_id
        self.nav.params.max_steps = int(max_steps) if max_steps and max_steps > 0 else self.default_max_steps
        self.last_obs_stamp = -math.inf
        self.stopped_for_stale = False
        self._undo, self.consecutive_aborts = None, 0
        self.status.candidates = []
        self.status.step = self.status.forwards = self.status.rotations = 0
        self.status.goal_distance = math.nan
        self._set_state(NavState.NAVIGATING, "new goal")
        self._log("info", "new goal accepted (repulsive memory cleared)")
        self.tick(now)
        return True, "goal accepted"

    def cancel(self, goal_id=None, reason: str = "canceled") -> None:
        if not self.active or (goal_id is not None and goal_id != self.goal_id):
            return
        self._publish(Action.STOP)
        self.pending_seq = None
        self._finish(GoalResult(False, reason, *self._counts()), state=NavState.IDLE)

    def _counts(self):
        n = self.nav
        return (n.steps, n.forwards, n.rotations, self.status.goal_distance) if n else (0, 0, 0, math.nan)

    def _finish(self, result: GoalResult, state: NavState = NavState.IDLE, notify_state: bool = True,
                clear_goal: bool = True) -> None:
        gid, self.goal_id = self.goal_id, None
        if self.nav is not None:
            self._log("info", f"goal finished: {result.reason}; steps {result.steps}, forwards {result.forwards}, "
                              f"rotations {result.rotations}")
            if clear_goal:
                self.nav.clear_goal()
        if notify_state:
            self._set_state(state, result.reason)
        self._on_goal_done(gid, result)

    @property
    def active(self) -> bool:
        return self.nav is not None and self.nav.has_goal

    # ------------------------------------------------------------------ control
    def tick(self, now: float) -> None:
        """Re-evaluate; called on every input and by the node's timer."""
        if self.nav is None:
            return
        if not self.active:
            return
        p = self.params
        stale = self.stale_inputs(now)
        if self.pending_seq is not None and now - self.pending_since > p.motion_timeout:
            self._log("warn", f"motion {self.pending_seq} not reported finished after {p.motion_timeout} s: STOP")
            self._publish(Action.STOP)
            self.motion_done = self.motion_done_received = now
            self._motion_ended(False, f"no report from the base after {p.motion_timeout} s")
            if not self.active:
                return
        if stale:
            self.status.stale_inputs = stale
            if not self.stopped_for_stale:
                self._publish(Action.STOP)
                self.stopped_for_stale = True
                if self.pending_seq is not None:
                    self.motion_done = self.motion_done_received = now
                    self._motion_ended(False, count=False)
            why = [f"{n} ({self.input_errors.get(n) or self.input_problem(n, now)})" for n in stale]
            self._set_state(NavState.STALE_INPUT, "stale or missing input: " + ", ".join(why))
            return
        if self.stopped_for_stale:
            self.stopped_for_stale = False
            self.status.stale_inputs = []
            self._log("info", "inputs fresh again: resuming")
            self._set_state(NavState.NAVIGATING, "inputs fresh again")
        if self.pending_seq is not None:
            self._set_state(NavState.WAITING_MOTION)
            return
        front, rear = self.inputs["front_camera"], self.inputs["rear_camera"]
        obs_stamp = min(front.stamp, rear.stamp)
        if (obs_stamp <= self.motion_done or obs_stamp <= self.last_obs_stamp
                or min(front.received, rear.received) < self.motion_done_received):
            self._set_state(NavState.NAVIGATING)
            return
        for name in ("scan", "free_actions"):
            enabled = p.use_scan_gate if name == "scan" else p.use_free_actions
            inp = self.inputs[name]
            if enabled and (inp.stamp <= self.motion_done or inp.received < self.motion_done_received):
                self._set_state(NavState.NAVIGATING)
                return
        self._decide(front, rear, obs_stamp, now)

    def _decide(self, front: _Input, rear: _Input, obs_stamp: float, now: float) -> None:
        free = self.free_set()
        self.last_obs_stamp = obs_stamp
        undo = self.nav.snapshot()
        try:
            d: Decision = self.nav.step(front.value, rear.value, free)
        except Exception as exc:  # a failing model must not take the node down: STOP, retry on new data
            self.nav.restore(undo)
            self._publish(Action.STOP)
            self._log("error", f"decision failed: {type(exc).__name__}: {exc}")
            self._set_state(NavState.NAVIGATING, f"decision failed ({type(exc).__name__}: {exc}); STOP")
            return
        bad = not math.isfinite(d.goal_distance) or any(not math.isfinite(c.potential) for c in d.candidates)
        if bad:  # NaN/inf from the model: no decision can be trusted
            self.nav.restore(undo)
            self._publish(Action.STOP)
            why = (f"model output is not finite (d_h {d.goal_distance}, potentials "
                   f"{[c.potential for c in d.candidates]}): corrupt weights? STOP")
            self._log("error", why)
            self._finish(GoalResult(False, why, *self._counts()), state=NavState.FAILED)
            return
        st = self.status
        st.goal_distance = d.goal_distance
        st.candidates = list(d.candidates)
        st.chosen_action = Action(d.action)
        st.step, st.forwards, st.rotations = self.nav.steps, self.nav.forwards, self.nav.rotations
        action = d.action  # a member of `free` (the gate) or STOP
        self._publish(action)
        st.decision_latency_ms = (time.perf_counter() - max(front.arrival, rear.arrival)) * 1e3
        if action != Action.STOP:
            self.pending_seq = self.seq
            self.pending_since = now
            self._undo = undo
            self._set_state(NavState.WAITING_MOTION, f"{action.name} (step {st.step})")
            self._pub_status(st)
            self._on_feedback(self.goal_id, st)
            return
        self._on_feedback(self.goal_id, st)
        if d.reached:
            self._finish(GoalResult(True, d.reason, *self._counts()), state=NavState.REACHED)
        elif d.failed:
            self._finish(GoalResult(False, d.reason, *self._counts()), state=NavState.FAILED)
        else:  # no free motion: wait for new observations
            self._set_state(NavState.NAVIGATING, d.reason)
            self._pub_status(st)
