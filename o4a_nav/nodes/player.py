"""Bag player node behind `o4a replay` (not a console script; the command starts it).

Publishes a rosbag2 folder's messages on their topics as serialized bytes (no
re-encoding), with the original timing scaled by `rate`, optionally with /clock for
nodes that run with use_sim_time. Each message is checked with the rclpy deserializer
before it is published, so a corrupted message stops playback with an error naming its
topic instead of reaching subscribers.
"""
from __future__ import annotations

import importlib
import time

from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy
from rclpy.serialization import deserialize_message

from o4a_nav import bagio, ros_conv
from o4a_nav import topics as o4a_topics
from o4a_nav.bagtools import qos as qosmod
from o4a_nav.bagtools import topics as topicmod
from o4a_nav.bagtools.schedule import Schedule
from o4a_nav.errors import BagError, UserError
from o4a_nav.types import MotionStatus, NavState


def msg_class(msgtype: str, topic: str = ""):
    """rclpy message class for 'pkg/msg/Name'; BagError naming the topic and type when the
    interface package is not installed for this Python (importlib on 'pkg.msg')."""
    pkg, kind, name = topicmod.split_type(msgtype)
    where = f"topic {topic}: " if topic else ""
    try:
        module = importlib.import_module(f"{pkg}.{kind}")
        return getattr(module, name)
    except (ImportError, AttributeError):
        raise BagError(
            f"{where}message type {msgtype} is unknown to rclpy (no installed Python interface "
            f"package {pkg} with {kind} {name}); install or build {pkg} and source it, "
            f"or leave the topic out with --topics") from None


def qos_profile(choice: qosmod.QosChoice) -> QoSProfile:
    return QoSProfile(
        history=HistoryPolicy.KEEP_LAST, depth=int(choice.depth),
        reliability=ReliabilityPolicy.RELIABLE if choice.reliable else ReliabilityPolicy.BEST_EFFORT,
        durability=DurabilityPolicy.TRANSIENT_LOCAL if choice.transient_local else DurabilityPolicy.VOLATILE)


def _recorded_qos(profiles) -> list[tuple[bool, bool, int]]:
    out = []
    for q in profiles:
        try:
            out.append((q.reliability.name == "RELIABLE", q.durability.name == "TRANSIENT_LOCAL", int(q.depth)))
        except AttributeError:
            continue
    return out


def _time_msg(t: float):
    """builtin_interfaces/Time of `t` seconds."""
    from builtin_interfaces.msg import Time

    sec, nanosec = ros_conv.sec_to_stamp_fields(t)
    return Time(sec=sec, nanosec=nanosec)


class Player(Node):
    """Publishes the selected topics of one bag. Call `play()`; it returns message counts."""

    def __init__(self, bag, topics: list[str] | None = None, rate: float = 1.0, clock_hz: float = 0.0,
                 remaps: list[str] = (), node_name: str = "o4a_player"):
        cli_args = []
        for r in remaps:
            old, sep, new = r.partition(":=")
            if not sep or not old or not new:
                raise UserError(f"--remap {r!r}: expected FROM:=TO")
            cli_args += ["-r", f"{o4a_topics.absolute(old)}:={o4a_topics.absolute(new)}"]
        super().__init__(node_name, cli_args=["--ros-args", *cli_args] if cli_args else None)
        self.bag = str(bag)
        info = bagio.topics(bag)                      # BagError for a missing / broken bag
        selected = topicmod.select([t for t, (_, n) in info.items()], topics, f"bag {bag}")
        if topics is not None:
            for t in selected:
                if info[t][1] == 0:
                    raise BagError(f"bag {bag} has no messages on topic {o4a_topics.absolute(t)}")
        recorded = bagio.offered_qos(bag)
        self.topics = selected
        self.total = sum(info[t][1] for t in selected)
        self.rate = rate
        self._classes = {}
        self._pubs = {}
        for t in selected:                             # every type checked before anything is sent
            msgtype = info[t][0]
            self._classes[t] = msg_class(msgtype, o4a_topics.absolute(t))
        for t in selected:
            choice = qosmod.for_replay(info[t][0], _recorded_qos(recorded.get(t, [])))
            self._pubs[t] = self.create_publisher(self._classes[t], o4a_topics.absolute(t), qos_profile(choice))
        self._clock_pub = None
        self.clock_hz = float(clock_hz)
        if clock_hz > 0:
            from rosgraph_msgs.msg import Clock

            self._clock_cls = Clock
            self._clock_pub = self.create_publisher(Clock, o4a_topics.CLOCK, QoSProfile(depth=10))

    def _publish_clock(self, t_bag: float) -> None:
        if self._clock_pub is None:
            return
        msg = self._clock_cls()
        msg.clock = _time_msg(t_bag)
        self._clock_pub.publish(msg)

    def _wait_until(self, schedule: Schedule, due: float, should_stop) -> bool:
        """Sleep until `due` (wall), publishing /clock meanwhile. False if asked to stop."""
        period = 1.0 / self.clock_hz if self._clock_pub is not None else 0.05
        while True:
            if should_stop():
                return False
            now = time.monotonic()
            if now >= due:
                return True
            if self._clock_pub is not None:
                self._publish_clock(schedule.bag_time(now))
            time.sleep(min(period, due - now))

    def play(self, should_stop=lambda: False, progress=None) -> dict[str, int]:
        counts = {t: 0 for t in self.topics}
        schedule = None
        t_msg = None
        stream = bagio.read(self.bag, topics=self.topics, raw=True, require=False)
        while True:
            try:
                topic, msgtype, t_msg_next, raw = next(stream)
            except StopIteration:
                break
            except BagError:
                raise
            except Exception as exc:  # rosbags storage errors: a truncated or damaged file
                after = f" after t={t_msg:.3f}s" if t_msg is not None else ""
                raise BagError(f"bag {self.bag}: storage is damaged{after} ({exc})") from exc
            t_msg = t_msg_next
            if schedule is None:
                schedule = Schedule(t_msg, time.monotonic(), self.rate)
            if not self._wait_until(schedule, schedule.due(t_msg), should_stop):
                break
            try:
                deserialize_message(raw, self._classes[topic])
            except Exception as exc:
                raise BagError(f"bag {self.bag}: message {counts[topic] + 1} on topic "
                               f"{o4a_topics.absolute(topic)} ({msgtype}, t={t_msg:.3f}s) is corrupted "
                               f"and cannot be decoded ({exc})") from exc
            self._publish_clock(t_msg)
            self._pubs[topic].publish(raw)
            counts[topic] += 1
            if progress is not None:
                progress.update(1)
        return counts


def wait_for_subscribers(node: Player, timeout: float) -> None:
    """Give discovery time to match the publishers with existing subscribers."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if all(p.get_subscription_count() > 0 for p in node._pubs.values()):
            return
        time.sleep(0.05)


# ---- step-by-step driver for `o4a replay-check` ----------------------------------------------

class StepDriver(Node):
    """Feeds a recorded navigation run (bagtools.navrun.NavRun of rclpy messages) to a
    running navigator + collision checker, one decision at a time, on simulated time.

    The driver owns /clock: the nodes under test run with use_sim_time, so time only
    moves when the driver says so; no input goes stale and nothing depends on the
    machine's speed. For each goal of the run the driver jumps the clock past the
    navigator's stale_timeout and calls o4a/set_goal: with no fresh input the navigator
    publishes one STOP and waits in STALE_INPUT (status), which the driver lets pass.
    Then, for each step k at time T_k (+step_period per step) it
      1. publishes /clock = T_k and the MotionState that ended the previous motion (the
         recorded outcome, stamped T_k), which opens the stop-and-go gate;
      2. publishes the recorded scan stamped T_k + 1 ms and waits for the collision
         checker's FreeActions for that stamp;
      3. publishes the recorded front and rear images stamped T_k + 1 ms and takes the
         next DiscreteAction as the navigator's decision.
    After a STOP that ends the goal (status REACHED / FAILED) the remaining steps of that
    goal have no replayed decision (None).
    """

    TERMINAL = (NavState.IDLE, NavState.REACHED, NavState.FAILED)
    STALE_INPUT = NavState.STALE_INPUT

    def __init__(self, stale_timeout: float = 0.5, step_period: float = 0.1, t0: float = 1000.0,
                 timeout: float = 30.0, node_name: str = "o4a_replay_check", image_transport: str = "raw",
                 **node_kwargs):
        super().__init__(node_name, **node_kwargs)
        import threading

        from o4a_msgs.msg import DiscreteAction, FreeActions, MotionState, NavigatorStatus
        from o4a_msgs.srv import SetGoal
        from rosgraph_msgs.msg import Clock
        from sensor_msgs.msg import CompressedImage, Image, LaserScan

        from o4a_nav import topics

        self._MotionState, self._Clock, self._SetGoal = MotionState, Clock, SetGoal
        self.stale_timeout = float(stale_timeout)
        self.step_period, self.t0, self.timeout = float(step_period), float(t0), float(timeout)
        reliable = QoSProfile(depth=10)
        self._clock_pub = self.create_publisher(Clock, topics.CLOCK, reliable)
        # the recorded camera messages as they are: raw, or image_transport's <topic>/compressed
        img, suffix = (CompressedImage, "/compressed") if image_transport == "compressed" else (Image, "")
        self._front_pub = self.create_publisher(img, topics.FRONT_IMAGE + suffix, reliable)
        self._rear_pub = self.create_publisher(img, topics.REAR_IMAGE + suffix, reliable)
        self._scan_pub = self.create_publisher(LaserScan, topics.SCAN, reliable)
        self._motion_pub = self.create_publisher(MotionState, topics.MOTION_STATE, reliable)
        self._goal_client = self.create_client(SetGoal, topics.SET_GOAL)
        self._cond = threading.Condition()
        self._actions: list = []
        self._free: set = set()
        self._states: list[int] = []
        self.create_subscription(DiscreteAction, topics.ACTION, self._on_action, QoSProfile(depth=100))
        self.create_subscription(FreeActions, topics.FREE_ACTIONS, self._on_free, QoSProfile(depth=10))
        self.create_subscription(NavigatorStatus, topics.STATUS, self._on_status, QoSProfile(depth=100))

    # callbacks (executor thread)
    def _on_action(self, msg) -> None:
        with self._cond:
            self._actions.append(msg)
            self._cond.notify_all()

    def _on_free(self, msg) -> None:
        with self._cond:
            self._free.add((msg.header.stamp.sec, msg.header.stamp.nanosec))
            self._cond.notify_all()

    def _on_status(self, msg) -> None:
        with self._cond:
            self._states.append(int(msg.state))
            self._cond.notify_all()

    def _notify(self) -> None:
        with self._cond:
            self._cond.notify_all()

    # helpers
    def _wait(self, predicate, what: str, timeout: float | None = None) -> bool:
        with self._cond:
            ok = self._cond.wait_for(predicate, timeout=self.timeout if timeout is None else timeout)
        if not ok and timeout is None:
            raise TimeoutError(what)
        return ok

    def wait_ready(self, timeout: float = 30.0) -> None:
        """Until the stack's subscriptions and the goal service are matched."""
        deadline = time.monotonic() + timeout
        pubs = (self._front_pub, self._rear_pub, self._scan_pub, self._motion_pub, self._clock_pub)
        while time.monotonic() < deadline:
            if (all(p.get_subscription_count() > 0 for p in pubs) and self._goal_client.service_is_ready()
                    and self.count_publishers(self.resolve_topic_name(o4a_topics.ACTION))
                    and self.count_publishers(self.resolve_topic_name(o4a_topics.FREE_ACTIONS))):
                return
            time.sleep(0.05)
        raise TimeoutError("the navigator / collision checker did not appear (subscriptions, o4a/set_goal)")

    def set_clock(self, t: float) -> None:
        msg = self._Clock()
        msg.clock = _time_msg(t)
        self._clock_pub.publish(msg)

    def _start_goal(self, goal) -> None:
        """o4a/set_goal with stale inputs: let the navigator's STOP / STALE_INPUT pass."""
        with self._cond:
            n_states = len(self._states)
        req = self._SetGoal.Request()
        req.front, req.rear = goal
        future = self._goal_client.call_async(req)
        future.add_done_callback(lambda _: self._notify())
        self._wait(lambda: future.done(), "o4a/set_goal did not answer")
        res = future.result()
        if not res.accepted:
            raise UserError(f"the navigator rejected the recorded goal: {res.message}")
        self._wait(lambda: self.STALE_INPUT in self._states[n_states:],
                   "the navigator did not report STALE_INPUT after the goal")
        time.sleep(0.2)      # the STOP published with it is in flight: let it land

    def _goal_over(self, n_states: int) -> bool:
        """After a STOP decision: did the navigator end the goal (REACHED / FAILED)?"""
        return self._wait(lambda: any(s in self.TERMINAL for s in self._states[n_states:]), "", timeout=1.0)

    def run(self, run, progress=None) -> list:
        """Returns the replayed Action (or None) for every step of `run`."""
        from o4a_nav.types import Action

        replayed: list = []
        prev_action = None          # DiscreteAction the navigator published last step
        prev_state, prev_message = MotionStatus.SUCCEEDED, ""
        goal_index = -1
        goal_over = False
        t = self.t0
        for k, step in enumerate(run.steps):
            if step.goal != goal_index:
                t += self.stale_timeout + 1.0
                self.set_clock(t)
                self._start_goal(run.goals[step.goal])
                goal_index, goal_over, prev_action = step.goal, False, None
            else:
                t += self.step_period
                self.set_clock(t)
            if goal_over:
                replayed.append(None)
                if progress is not None:
                    progress.update(1)
                continue
            if prev_action is not None:
                ack = self._MotionState()
                ack.header.stamp = _time_msg(t)
                ack.sequence, ack.action, ack.state = prev_action.sequence, prev_action.action, prev_state
                if prev_state != MotionStatus.SUCCEEDED:  # the recorded reason (a pre-emption is not a failure)
                    ack.message = prev_message or "replay-check: the recorded motion ended this way"
                self._motion_pub.publish(ack)
            with self._cond:
                n_actions, n_states = len(self._actions), len(self._states)
            t_obs = t + 0.001
            step.scan.header.stamp = _time_msg(t_obs)
            key = (step.scan.header.stamp.sec, step.scan.header.stamp.nanosec)
            self._scan_pub.publish(step.scan)
            try:
                self._wait(lambda: key in self._free, f"no o4a/free_actions for the scan of step {k}")
                step.front.header.stamp = _time_msg(t_obs)
                step.rear.header.stamp = _time_msg(t_obs)
                self._front_pub.publish(step.front)
                self._rear_pub.publish(step.rear)
                self._wait(lambda: len(self._actions) > n_actions, f"no o4a/action for step {k}")
            except TimeoutError as exc:
                self.get_logger().error(f"replay-check stopped: {exc}")
                replayed.extend([None] * (len(run.steps) - k))
                break
            with self._cond:
                msg = self._actions[n_actions]
            action = Action(int(msg.action))
            replayed.append(action)
            prev_action, prev_state, prev_message = msg, step.motion_state, step.motion_message
            if action == Action.STOP and self._goal_over(n_states):
                goal_over = True
            if progress is not None:
                progress.update(1)
        return replayed
