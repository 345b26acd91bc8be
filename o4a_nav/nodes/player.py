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
