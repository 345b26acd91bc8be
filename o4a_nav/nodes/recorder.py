"""Bag recorder node behind `o4a record` (not a console script; the command starts it).

Subscribes to the requested topics as serialized bytes (raw=True) and writes them
straight into a rosbag2 folder (MCAP by default, sqlite3 on request), stamped with the
receive time (the node clock: wall time, or /clock with use_sim_time). Topics are
discovered from the ROS graph, also after recording has started; the QoS of each
subscription adapts to the publishers (bagtools/qos.py), so sensor-data topics and
latched (transient local) topics are both recorded. Messages the middleware reports lost
before they arrived (the RMW 'message lost' event: a best-effort publisher's sample that
never reached this subscription) are counted per topic (`lost`).
"""
from __future__ import annotations

from functools import partial

from rclpy.event_handler import SubscriptionEventCallbacks
from rclpy.node import Node
from rclpy.parameter import Parameter
from rclpy.qos import DurabilityPolicy, ReliabilityPolicy

from o4a_nav import bagio
from o4a_nav.bagtools import qos as qosmod
from o4a_nav.bagtools import topics as topicmod
from o4a_nav.errors import BagError
from o4a_nav.nodes._common import now_sec
from o4a_nav.nodes.player import msg_class, qos_profile
from o4a_nav.topics import absolute

# Never recorded by --all: ROS internals.
INTERNAL_TOPICS = frozenset({"/rosout", "/parameter_events"})


def _ensure_bag_type(msgtype: str, topic: str) -> None:
    """Register a message type that the bag type store lacks from its installed .msg file."""
    store = bagio.typestore()
    if msgtype in store.fielddefs:
        return
    pkg, kind, name = topicmod.split_type(msgtype)
    try:
        from pathlib import Path

        from ament_index_python.packages import get_package_share_directory
        from rosbags.typesys import get_types_from_msg

        text = (Path(get_package_share_directory(pkg)) / kind / f"{name}.msg").read_text()
        store.register(get_types_from_msg(text, msgtype))
    except Exception as exc:
        raise BagError(f"topic {topic}: cannot record message type {msgtype}: its definition is not "
                       f"available to the bag writer ({exc})") from None


class Recorder(Node):
    """Records `topics` (None: every topic but ROS internals) into an open BagWriter."""

    def __init__(self, writer: bagio.BagWriter, topics: list[str] | None = None,
                 use_sim_time: bool = False, discovery_period: float = 0.2, node_name: str = "o4a_recorder"):
        super().__init__(node_name, parameter_overrides=[Parameter("use_sim_time", value=bool(use_sim_time))])
        self.writer = writer
        self.wanted = None if topics is None else [absolute(t) for t in topics]
        self.counts: dict[str, int] = {} if self.wanted is None else {t: 0 for t in self.wanted}
        self.types: dict[str, str] = {}
        self.lost: dict[str, int] = {}      # messages the middleware reports lost before they arrived
        self.error: Exception | None = None
        self._subs = {}
        self._discover()
        self._timer = self.create_timer(discovery_period, self._discover)

    def _discover(self) -> None:
        for name, types in self.get_topic_names_and_types():
            if name in self._subs:
                continue
            if self.wanted is None:
                if name in INTERNAL_TOPICS:
                    continue
            elif name not in self.wanted:
                continue
            if len(types) != 1:
                self.get_logger().warning(f"topic {name} has several types {types}; not recorded")
                continue
            pubs = self.get_publishers_info_by_topic(name)
            if not pubs:            # only subscribers so far: wait for a publisher to learn its QoS
                continue
            msgtype = types[0]
            try:
                cls = msg_class(msgtype, name)
                _ensure_bag_type(msgtype, name)
            except BagError as exc:
                self.get_logger().error(str(exc))
                self._subs[name] = None
                continue
            choice = qosmod.for_recording(
                (p.qos_profile.reliability == ReliabilityPolicy.RELIABLE,
                 p.qos_profile.durability == DurabilityPolicy.TRANSIENT_LOCAL) for p in pubs)
            self.writer.connection(name, msgtype, latched=choice.transient_local)
            self.types[name] = msgtype
            self.counts.setdefault(name, 0)
            self._subs[name] = self.create_subscription(
                cls, name, partial(self._on_message, name, msgtype), qos_profile(choice), raw=True,
                event_callbacks=SubscriptionEventCallbacks(message_lost=partial(self._on_lost, name)))
            self.get_logger().info(
                f"recording {name} ({msgtype}, {'reliable' if choice.reliable else 'best effort'}"
                f"{', transient local' if choice.transient_local else ''})")

    def _on_message(self, topic: str, msgtype: str, raw: bytes) -> None:
        if self.error is not None:
            return
        try:
            self.writer.write(topic, msgtype, now_sec(self), raw)
            self.counts[topic] += 1
        except Exception as exc:   # disk full, closed writer: stop recording, report it
            self.error = exc

    def _on_lost(self, topic: str, event) -> None:
        """RMW 'message lost' event: samples a publisher sent that never reached this
        subscription (best effort: fragments discarded in transport); total so far."""
        self.lost[topic] = int(event.total_count)

    def missing(self) -> list[str]:
        """Requested topics that received no message."""
        return [t for t, n in self.counts.items() if n == 0]
