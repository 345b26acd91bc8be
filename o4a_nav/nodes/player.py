"""Bag player node behind `o4a replay` (not a console script; the command starts it).

Publishes a rosbag2 folder's messages on their topics as serialized bytes (no
re-encoding), with the original timing scaled by `rate`, optionally with /clock for
nodes that run with use_sim_time. Each message is checked with the rclpy deserializer
before it is published, so a corrupted message stops playback with an error naming its
topic instead of reaching subscribers.
"""
from __future__ import annotations

import importlib
import math
import time

import rclpy
from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy
from rclpy.serialization import deserialize_message

from o4a_nav import bagio
from o4a_nav.bagtools import qos as qosmod
from o4a_nav.bagtools import topics as topicmod
from o4a_nav.bagtools.schedule import Schedule
from o4a_nav.errors import BagError


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


class Player(Node):
    """Publishes the selected topics of one bag. Call `play()`; it returns message counts."""

    def __init__(self, bag, topics: list[str] | None = None, rate: float = 1.0, clock_hz: float = 0.0,
                 node_name: str = "o4a_player"):
        super().__init__(node_name)
        self.bag = str(bag)
        info = bagio.topics(bag)                      # BagError for a missing / broken bag
        selected = topicmod.select([t for t, (_, n) in info.items()], topics, f"bag {bag}")
        if topics is not None:
            for t in selected:
                if info[t][1] == 0:
                    raise BagError(f"bag {bag} has no messages on topic {topicmod.normalize(t)}")
        recorded = bagio.offered_qos(bag)
        self.topics = selected
        self.total = sum(info[t][1] for t in selected)
        self.rate = rate
        self._classes = {}
        self._pubs = {}
        for t in selected:                             # every type checked before anything is sent
            msgtype = info[t][0]
            self._classes[t] = msg_class(msgtype, topicmod.normalize(t))
        for t in selected:
            choice = qosmod.for_replay(info[t][0], _recorded_qos(recorded.get(t, [])))
            self._pubs[t] = self.create_publisher(self._classes[t], topicmod.normalize(t), qos_profile(choice))
        self._clock_pub = None
        self.clock_hz = float(clock_hz)
        if clock_hz > 0:
            from rosgraph_msgs.msg import Clock

            self._clock_cls = Clock
            self._clock_pub = self.create_publisher(Clock, "/clock", QoSProfile(depth=10))

    def _publish_clock(self, t_bag: float) -> None:
        if self._clock_pub is None:
            return
        from builtin_interfaces.msg import Time

        sec = int(math.floor(t_bag))
        msg = self._clock_cls()
        msg.clock = Time(sec=sec, nanosec=min(999_999_999, int(round((t_bag - sec) * 1e9))))
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
                               f"{topicmod.normalize(topic)} ({msgtype}, t={t_msg:.3f}s) is corrupted "
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

    The driver owns /clock: the nodes under test must run with use_sim_time. Step k is at
    T_k = t0 + k * step_period; inside it the driver
      1. publishes /clock = T_k and the MotionState that ended the previous motion
         (the recorded outcome, stamped T_k), so the navigator's stop-and-go gate opens;
      2. publishes the recorded scan stamped T_k + 1 ms and waits for the collision
         checker's FreeActions for that stamp;
      3. calls o4a/set_goal when the step starts a new goal (before the images if the
         previous goal is over, after the acknowledgement otherwise);
      4. publishes the recorded front and rear images stamped T_k + 1 ms and waits for
         the navigator's DiscreteAction.
    Time only moves when the driver says so, so no input ever goes stale and the outcome
    does not depend on the machine's speed.
    """

    def __init__(self, step_period: float = 0.1, t0: float = 1000.0, timeout: float = 30.0,
                 node_name: str = "o4a_replay_check"):
        super().__init__(node_name)
        import threading

        from o4a_msgs.msg import DiscreteAction, FreeActions, MotionState, NavigatorStatus
        from o4a_msgs.srv import SetGoal
        from rosgraph_msgs.msg import Clock
        from sensor_msgs.msg import Image, LaserScan

        from o4a_nav import topics

        self._MotionState, self._Clock, self._SetGoal = MotionState, Clock, SetGoal
        self.step_period, self.t0, self.timeout = float(step_period), float(t0), float(timeout)
        reliable = QoSProfile(depth=10)
        self._clock_pub = self.create_publisher(Clock, "/clock", reliable)
        self._front_pub = self.create_publisher(Image, topics.FRONT_IMAGE, reliable)
        self._rear_pub = self.create_publisher(Image, topics.REAR_IMAGE, reliable)
        self._scan_pub = self.create_publisher(LaserScan, topics.SCAN, reliable)
        self._motion_pub = self.create_publisher(MotionState, topics.MOTION_STATE, reliable)
        self._goal_client = self.create_client(SetGoal, topics.SET_GOAL)
        self._cond = threading.Condition()
        self._actions: list = []
        self._free: dict = {}
        self._nav_state = 0
        self.create_subscription(DiscreteAction, topics.ACTION, self._on_action, QoSProfile(depth=100))
        self.create_subscription(FreeActions, topics.FREE_ACTIONS, self._on_free, QoSProfile(depth=10))
        self.create_subscription(NavigatorStatus, topics.STATUS, self._on_status, QoSProfile(depth=10))

    # callbacks (executor thread)
    def _on_action(self, msg) -> None:
        with self._cond:
            self._actions.append(msg)
            self._cond.notify_all()

    def _on_free(self, msg) -> None:
        with self._cond:
            self._free[(msg.header.stamp.sec, msg.header.stamp.nanosec)] = msg
            self._cond.notify_all()

    def _on_status(self, msg) -> None:
        with self._cond:
            self._nav_state = int(msg.state)
            self._cond.notify_all()

    # helpers
    @staticmethod
    def _stamp(t: float):
        from builtin_interfaces.msg import Time

        sec = int(math.floor(t))
        return Time(sec=sec, nanosec=min(999_999_999, int(round((t - sec) * 1e9))))

    def _wait(self, predicate, what: str):
        with self._cond:
            if not self._cond.wait_for(predicate, timeout=self.timeout):
                raise TimeoutError(what)

    def wait_ready(self, timeout: float = 30.0) -> None:
        """Until the stack's subscriptions and the goal service are matched."""
        deadline = time.monotonic() + timeout
        pubs = (self._front_pub, self._rear_pub, self._scan_pub, self._motion_pub)
        while time.monotonic() < deadline:
            if all(p.get_subscription_count() > 0 for p in pubs) and self._goal_client.service_is_ready():
                if self.count_publishers("o4a/action") and self.count_publishers("o4a/free_actions"):
                    return
            time.sleep(0.05)
        raise TimeoutError("the navigator / collision checker did not appear (subscriptions, o4a/set_goal)")

    def set_clock(self, t: float) -> None:
        msg = self._Clock()
        msg.clock = self._stamp(t)
        self._clock_pub.publish(msg)

    def _set_goal(self, goal) -> None:
        req = self._SetGoal.Request()
        req.front, req.rear = goal
        future = self._goal_client.call_async(req)
        self._wait(lambda: future.done(), "o4a/set_goal did not answer")
        res = future.result()
        if not res.accepted:
            raise BagError(f"the navigator rejected the recorded goal: {res.message}")

    def _navigator_active(self) -> bool:
        with self._cond:
            return self._nav_state in (1, 2, 3)   # NAVIGATING, WAITING_MOTION, STALE_INPUT

    def run(self, run, progress=None) -> list:
        """Returns the replayed Action (or None after a timeout) for every step of `run`."""
        from o4a_nav.types import Action

        replayed: list = []
        prev_action = None          # DiscreteAction the navigator published last step
        prev_state = 2
        goal_index = -1
        for k, step in enumerate(run.steps):
            t = self.t0 + k * self.step_period
            t_obs = t + 0.001
            self.set_clock(t)
            if prev_action is not None:
                ack = self._MotionState()
                ack.header.stamp = self._stamp(t)
                ack.sequence, ack.action, ack.state = prev_action.sequence, prev_action.action, prev_state
                self._motion_pub.publish(ack)
            new_goal = step.goal != goal_index
            goal_first = new_goal and self._navigator_active()
            if goal_first:
                self._set_goal(run.goals[step.goal])
            with self._cond:
                n_before = len(self._actions)
            step.scan.header.stamp = self._stamp(t_obs)
            key = (step.scan.header.stamp.sec, step.scan.header.stamp.nanosec)
            self._scan_pub.publish(step.scan)
            try:
                self._wait(lambda: key in self._free, f"no o4a/free_actions for the scan of step {k}")
                step.front.header.stamp = self._stamp(t_obs)
                step.rear.header.stamp = self._stamp(t_obs)
                self._front_pub.publish(step.front)
                self._rear_pub.publish(step.rear)
                if new_goal and not goal_first:
                    self._set_goal(run.goals[step.goal])
                goal_index = step.goal
                self._wait(lambda: len(self._actions) > n_before, f"no o4a/action for step {k}")
            except TimeoutError as exc:
                self.get_logger().error(f"replay-check stopped: {exc}")
                replayed.extend([None] * (len(run.steps) - k))
                break
            with self._cond:
                msg = self._actions[n_before]
            replayed.append(Action(int(msg.action)))
            prev_action, prev_state = msg, step.motion_state
            if progress is not None:
                progress.update(1)
        return replayed
