"""A recorded navigation run and the comparison of replayed decisions (ROS-free).

Layout of a navigation-run bag (what `o4a replay-check` reads; topic names match with or
without a leading '/'):

| topic | type | role |
|---|---|---|
| front_camera/image_raw, rear_camera/image_raw | sensor_msgs/Image | observations |
| scan | sensor_msgs/LaserScan | A_free (through the collision checker) and the safety check |
| o4a/action | o4a_msgs/DiscreteAction | the decisions taken during the run |
| o4a/goal/front_image, o4a/goal/rear_image | sensor_msgs/Image | the goal (SetGoal images), latched |
| o4a/motion_state | o4a_msgs/MotionState | optional: how each motion ended (default SUCCEEDED) |
| o4a/status | o4a_msgs/NavigatorStatus | optional: tells decisions from safety STOPs |

The goal images are written on the two goal topics (transient local) by `o4a record
--goal FRONT REAR` (the navigator node does not publish them); a bag may hold several
goals, each applies to the actions recorded after it.

Each recorded DiscreteAction is one step. The navigator stamps an action with its own
clock when it publishes it (not with the images' stamp), so the observation is the latest
front / rear image recorded before the action (an image whose header stamp equals the
action's, if the bag has one, is taken instead); the scan is the latest scan recorded
before the action.

Not every recorded STOP is a decision: the navigator also publishes STOP when an input
goes stale (and on cancel). With o4a/status in the bag, a STOP counts as a decision only
when the first status stamped at or after it says NAVIGATING (no free motion), REACHED
or FAILED; STOPs followed by STALE_INPUT or IDLE are left out (the navigator publishes
the action and then its status from the same locked tick, both stamped with its clock).
Without o4a/status every recorded action is a step.
"""
from __future__ import annotations

import bisect
import json
import math
from dataclasses import asdict, dataclass, field

from o4a_nav import ros_conv, topics
from o4a_nav.errors import BagError
from o4a_nav.types import FINAL_MOTION_STATES, Action, MotionStatus, NavState

# the topics of a navigation run as a bag stores them
FRONT = topics.absolute(topics.FRONT_IMAGE)
REAR = topics.absolute(topics.REAR_IMAGE)
SCAN = topics.absolute(topics.SCAN)
ACTION = topics.absolute(topics.ACTION)
GOAL_FRONT = topics.absolute(topics.GOAL_FRONT_IMAGE)
GOAL_REAR = topics.absolute(topics.GOAL_REAR_IMAGE)
MOTION_STATE = topics.absolute(topics.MOTION_STATE)
STATUS = topics.absolute(topics.STATUS)
REQUIRED = (FRONT, REAR, SCAN, ACTION, GOAL_FRONT, GOAL_REAR)

SUCCEEDED = MotionStatus.SUCCEEDED
# the status after a STOP decision
DECISION_STATES = (NavState.NAVIGATING, NavState.REACHED, NavState.FAILED)
KEEP_IMAGES = 200  # images per camera kept for matching an action's stamp


def _stamp(msg) -> float:
    return ros_conv.stamp_to_sec(msg.header.stamp)


@dataclass
class Step:
    index: int
    t_bag: float
    goal: int                 # index into NavRun.goals
    front: object             # image message (rosbags or rclpy object)
    rear: object
    scan: object
    action: Action            # recorded decision
    sequence: int
    motion_state: int = SUCCEEDED   # how the recorded motion ended
    motion_message: str = ""        # the base's reason when it did not succeed


@dataclass
class NavRun:
    goals: list = field(default_factory=list)   # [(front msg, rear msg)]
    steps: list = field(default_factory=list)   # [Step]
    skipped_stops: int = 0                       # recorded STOPs that were not decisions
    image_transport: str = "raw"                 # "compressed": the cameras are sensor_msgs/CompressedImage


def extract_run(records, bag: str = "bag") -> NavRun:
    """records: iterable of (topic, t_bag, msg) in bag-time order, topics normalised.

    Raises BagError naming the topic when a required topic has no message, or when an
    action comes before any goal or any observation."""
    run = NavRun()
    seen, motion, statuses, actions = _read(records, run)
    for name in REQUIRED:
        if seen[name] == 0:
            raise BagError(f"bag {bag} has no messages on topic {name}, which replay-check needs "
                           f"(required: {', '.join(REQUIRED)})")
    run.steps, run.skipped_stops = _decisions(actions, motion, statuses, bag)
    if not run.steps:
        raise BagError(f"bag {bag} has no messages on topic {ACTION}")
    return run


def _read(records, run: NavRun):
    """One pass over the records: the goals (into run.goals), and (message counts of the
    required topics, final motion states by sequence, navigator states, the actions with
    the observation each was decided on and its goal's index)."""
    seen = {t: 0 for t in REQUIRED}
    latest: dict[str, object] = {}
    by_stamp: dict[str, dict[float, object]] = {FRONT: {}, REAR: {}}
    pending_goal: dict[str, object] = {}
    motion: dict[int, int] = {}
    statuses: list[tuple[float, int]] = []
    actions = []
    for topic, t, msg in records:
        if topic in seen:
            seen[topic] += 1
        if topic in (FRONT, REAR):
            latest[topic] = msg
            recent = by_stamp[topic]
            recent[round(_stamp(msg), 6)] = msg
            if len(recent) > KEEP_IMAGES:          # bounded memory on long recordings
                del recent[next(iter(recent))]
        elif topic == SCAN:
            latest[SCAN] = msg
        elif topic in (GOAL_FRONT, GOAL_REAR):
            pending_goal[topic] = msg
            if GOAL_FRONT in pending_goal and GOAL_REAR in pending_goal:
                run.goals.append((pending_goal.pop(GOAL_FRONT), pending_goal.pop(GOAL_REAR)))
        elif topic == STATUS:
            statuses.append((_stamp(msg), int(msg.state)))
        elif topic == MOTION_STATE:
            if int(msg.state) in FINAL_MOTION_STATES:
                motion[int(msg.sequence)] = (int(msg.state), str(msg.message))
        elif topic == ACTION:
            key = round(_stamp(msg), 6)
            obs = dict(latest)
            for name in (FRONT, REAR):              # the images the decision was taken on
                if key in by_stamp[name]:
                    obs[name] = by_stamp[name][key]
            actions.append((t, msg, obs, len(run.goals) - 1))
    return seen, motion, statuses, actions


def _decisions(actions, motion: dict, statuses: list, bag: str) -> tuple[list, int]:
    """(the Steps: every recorded action that was a decision, the number of safety /
    cancel STOPs skipped)."""
    statuses.sort()
    stamps = [s for s, _ in statuses]
    skipped, steps = 0, []
    for t, msg, obs, goal in actions:
        if statuses and int(msg.action) == int(Action.STOP):
            i = bisect.bisect_left(stamps, _stamp(msg) - 1e-9)
            if i < len(statuses) and statuses[i][1] not in DECISION_STATES:
                skipped += 1          # a safety / cancel STOP, not a decision
                continue
        if goal < 0:
            raise BagError(f"bag {bag}: action at t={t:.3f}s on {ACTION} comes before any goal on "
                           f"{GOAL_FRONT} / {GOAL_REAR}")
        missing = [n for n in (FRONT, REAR, SCAN) if n not in obs]
        if missing:
            raise BagError(f"bag {bag}: action at t={t:.3f}s on {ACTION} comes before any message on {missing[0]}")
        try:
            action = Action(int(msg.action))
        except ValueError:
            raise BagError(f"bag {bag}: invalid action value {msg.action} on {ACTION} at t={t:.3f}s") from None
        steps.append(Step(len(steps), t, goal, obs[FRONT], obs[REAR], obs[SCAN], action, int(msg.sequence),
                          *motion.get(int(msg.sequence), (SUCCEEDED, ""))))
    return steps, skipped


@dataclass
class StepResult:
    index: int
    t_bag: float
    recorded: str
    replayed: str             # action name, or "none" when the navigator gave no decision
    agree: bool
    forward_free: bool        # FORWARD allowed by the collision checker on the recorded scan
    unsafe: bool              # replayed FORWARD while the swept box holds an obstacle
    recorded_unsafe: bool     # the recorded run did so


@dataclass
class Report:
    bag: str
    model: str
    steps: int
    agreed: int
    unsafe_forwards: int
    recorded_unsafe_forwards: int
    min_agreement: float
    results: list = field(default_factory=list)
    skipped_stops: int = 0          # recorded safety / cancel STOPs that were not decisions

    @property
    def agreement(self) -> float:
        return self.agreed / self.steps if self.steps else float("nan")

    @property
    def passed(self) -> bool:
        return self.unsafe_forwards == 0 and self.steps > 0 and self.agreement >= self.min_agreement

    def summary(self) -> str:
        lines = [f"replay-check {self.bag} with model {self.model}",
                 f"  decisions: {self.steps}, agreement: {self.agreed}/{self.steps} "
                 f"({100 * self.agreement:.1f} %, required {100 * self.min_agreement:.1f} %)",
                 f"  unsafe FORWARD (obstacle in swept box): replayed {self.unsafe_forwards}, "
                 f"recorded {self.recorded_unsafe_forwards}"]
        if self.skipped_stops:
            lines.append(f"  {self.skipped_stops} recorded STOP(s) for stale input or cancel: not decisions, skipped")
        first = next((r for r in self.results if not r.agree), None)
        if first is not None:
            lines.append(f"  first difference at step {first.index} (later ones may follow from it)")
        for r in self.results:
            if not r.agree or r.unsafe:
                lines.append(f"  step {r.index} t={r.t_bag:.3f}s: recorded {r.recorded}, replayed {r.replayed}"
                             + (" UNSAFE" if r.unsafe else ""))
        lines.append("  PASS" if self.passed else "  FAIL")
        return "\n".join(lines)

    def to_json(self) -> str:
        d = asdict(self)
        d["agreement"] = None if math.isnan(self.agreement) else self.agreement
        d["passed"] = self.passed
        return json.dumps(d, indent=2)


def compare(run: NavRun, replayed: list, forward_free: list, bag: str = "bag", model: str = "",
            min_agreement: float = 0.0) -> Report:
    """replayed[i]: Action (or None) the navigator decided at step i; forward_free[i]: bool
    from the collision checker on step i's recorded scan."""
    results = []
    for step, got, free in zip(run.steps, replayed, forward_free):
        results.append(StepResult(
            step.index, step.t_bag, step.action.name, got.name if got is not None else "none",
            got == step.action, bool(free), got == Action.FORWARD and not free,
            step.action == Action.FORWARD and not free))
    return Report(bag, model, len(results), sum(r.agree for r in results), sum(r.unsafe for r in results),
                  sum(r.recorded_unsafe for r in results), min_agreement, results, run.skipped_stops)
