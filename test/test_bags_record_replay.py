"""o4a record / o4a replay under real rclpy, on bags written in set-up (MCAP and sqlite3),
and the errors for missing topics, unknown types and corrupted bags."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from o4a_nav import bagio, cli
from o4a_nav.bagtools import qos as qosmod
from o4a_nav.bagtools import topics as topicmod
from o4a_nav.bagtools.schedule import Schedule, parse_rate
from o4a_nav.errors import BagError, UserError
from o4a_nav.topics import absolute
from o4a_nav.types import ScanData

REPO = Path(__file__).resolve().parent.parent
PY = sys.executable
N_STEPS = 15
T0 = 1000.0
DT = 0.04
NS = f"bagtest{os.getpid()}"   # topics of the ROS tests: no cross-talk with other nodes on the domain


def make_bag(path: Path, storage: str) -> Path:
    """A small bag like a recording: latched world name, images, scans, o4a_msgs actions."""
    with bagio.BagWriter(path, storage=storage, latched_topics=[f"{NS}/o4a/world_name"]) as w:
        w.write(f"{NS}/o4a/world_name", "std_msgs/msg/String", T0, bagio.string_msg("test_room"))
        for i in range(N_STEPS):
            t = T0 + DT * (i + 1)
            img = np.full((96, 96, 3), i, np.uint8)
            img[0, 0] = (255, 0, 0)
            w.write(f"{NS}/front_camera/image_raw", "sensor_msgs/msg/Image", t, bagio.image_msg(img, t, "front"))
            scan = ScanData(np.linspace(0.5, 2.0 + i, 30).astype(np.float32), -2.0, 0.14, 0.05, 10.0, t)
            w.write(f"{NS}/scan", "sensor_msgs/msg/LaserScan", t, bagio.scan_msg(scan, "laser"))
            w.write(f"{NS}/o4a/action", "o4a_msgs/msg/DiscreteAction", t, bagio.action_msg(i % 4, t, i))
    return path


def bag_raw(path, topics=None) -> dict[str, list[bytes]]:
    out: dict[str, list[bytes]] = {}
    for topic, _, _, raw in bagio.read(path, topics=topics, raw=True):
        out.setdefault(absolute(topic), []).append(raw)
    return out


# ---- ROS-free units ------------------------------------------------------------------------

def test_topic_selection_matches_with_or_without_leading_slash():
    assert topicmod.select(["scan", "/o4a/action"], ["/scan", "o4a/action"]) == ["scan", "/o4a/action"]
    assert topicmod.select(["scan", "x"], None) == ["scan", "x"]
    with pytest.raises(BagError, match="/nope"):
        topicmod.select(["scan"], ["nope"], "bag B")


def test_topic_names_have_one_normal_form():
    assert absolute("scan") == absolute("/scan") == absolute(" /scan/ ") == "/scan"
    assert absolute("o4a/action") == "/o4a/action"
    for bad in ("", " ", "/"):
        with pytest.raises(UserError, match="invalid topic name"):
            absolute(bad)


def test_schedule_scales_time_by_rate():
    s = Schedule(10.0, 100.0, rate=2.0)
    assert s.due(12.0) == pytest.approx(101.0)
    assert s.bag_time(101.0) == pytest.approx(12.0)
    assert Schedule(10.0, 100.0, rate=parse_rate("max")).due(50.0) == 100.0
    for bad in ("-1", "abc", "nan"):
        with pytest.raises(UserError, match="--rate"):
            parse_rate(bad)


def test_recording_qos_is_compatible_with_every_publisher():
    assert qosmod.for_recording([(True, True)]) .transient_local
    mixed = qosmod.for_recording([(True, True), (False, False)])
    assert not mixed.reliable and not mixed.transient_local
    assert qosmod.for_replay("sensor_msgs/msg/Image").reliable is False
    assert qosmod.for_replay("std_msgs/msg/String", [(True, True, 1)]).transient_local


def same_messages(got: list[bytes], expected: list[bytes], msgtype: str) -> bool:
    """Equal after decoding (the transport may add CDR alignment padding at the end)."""
    from rclpy.serialization import deserialize_message

    from o4a_nav.nodes.player import msg_class

    cls = msg_class(msgtype)
    return [deserialize_message(r, cls) for r in got] == [deserialize_message(r, cls) for r in expected]


# ---- replay under rclpy --------------------------------------------------------------------

class Listener:
    """A real rclpy node that records raw messages on the bag's topics (and /clock)."""

    def __init__(self, topics_types: dict[str, str]):
        import rclpy
        from rclpy.executors import SingleThreadedExecutor
        from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy

        from o4a_nav.nodes.player import msg_class

        self.ctx = rclpy.Context()
        rclpy.init(context=self.ctx)
        self.node = rclpy.create_node("bag_test_listener", context=self.ctx)
        self.got: dict[str, list[bytes]] = {}
        for topic, msgtype in topics_types.items():
            latched = topic.endswith("/o4a/world_name")
            qos = QoSProfile(depth=1000,
                             reliability=ReliabilityPolicy.RELIABLE if latched else ReliabilityPolicy.BEST_EFFORT,
                             durability=DurabilityPolicy.TRANSIENT_LOCAL if latched else DurabilityPolicy.VOLATILE)
            self.node.create_subscription(msg_class(msgtype), topic,
                                          lambda raw, t=topic: self.got.setdefault(t, []).append(raw), qos, raw=True)
        self.executor = SingleThreadedExecutor(context=self.ctx)
        self.executor.add_node(self.node)

    def spin_until(self, done, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if done():
                return True
            self.executor.spin_once(timeout_sec=0.05)
        return done()

    def close(self):
        self.executor.shutdown()
        self.node.destroy_node()
        self.ctx.try_shutdown()


def o4a(*argv, **kw):
    return subprocess.Popen([PY, "-m", "o4a_nav.cli", *argv], cwd=REPO, env=dict(os.environ),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kw)


@pytest.mark.ros
@pytest.mark.parametrize("storage", ["mcap", "sqlite3"])
def test_replay_publishes_every_message_unchanged_with_clock(tmp_path, storage):
    bag = make_bag(tmp_path / "bag", storage)
    expected = bag_raw(bag)
    types = {absolute(t): ty for t, (ty, _) in bagio.topics(bag).items()}
    clock = f"/{NS}/clock"                 # /clock remapped like any topic
    listener = Listener({**types, clock: "rosgraph_msgs/msg/Clock"})
    try:
        proc = o4a("replay", str(bag), "--rate", "2", "--clock", "--delay", "5", "-q", "--remap", f"/clock:={clock}")
        ok = listener.spin_until(
            lambda: proc.poll() is not None and all(len(listener.got.get(t, [])) == len(v) for t, v in expected.items()),
            timeout=60)
        out, err = proc.communicate(timeout=30)
        assert proc.returncode == 0, err
        assert ok, f"received {[(t, len(v)) for t, v in listener.got.items()]}"
    finally:
        listener.close()
    from rclpy.serialization import deserialize_message
    from rosgraph_msgs.msg import Clock

    for topic, raws in expected.items():                    # same messages, in order
        assert same_messages(listener.got[topic], raws, types[topic]), topic

    clocks = [deserialize_message(r, Clock).clock for r in listener.got[clock]]
    secs = [c.sec + c.nanosec * 1e-9 for c in clocks]
    assert secs[0] == pytest.approx(T0, abs=1e-6)           # bag time, not wall time
    assert max(secs) == pytest.approx(T0 + DT * N_STEPS, abs=1e-6)
    assert all(b >= a for a, b in zip(secs, secs[1:]))


@pytest.mark.ros
def test_replay_topic_filter_and_remap(tmp_path):
    bag = make_bag(tmp_path / "bag", "mcap")
    expected = bag_raw(bag, [f"{NS}/o4a/action"])
    types = {absolute(t): ty for t, (ty, _) in bagio.topics(bag).items()}
    remapped = f"/{NS}/remapped/action"
    types[remapped] = types[f"/{NS}/o4a/action"]
    listener = Listener(types)
    try:
        proc = o4a("replay", str(bag), "--rate", "max", "--topics", f"/{NS}/o4a/action", f"{NS}/scan", "--delay", "5",
                   "-q", "--remap", f"{NS}/scan:=/{NS}/remapped/scan_unused", f"{NS}/o4a/action:={remapped}")
        listener.spin_until(lambda: proc.poll() is not None and len(listener.got.get(remapped, [])) == N_STEPS,
                            timeout=60)
        listener.spin_until(lambda: False, timeout=0.3)
        _, err = proc.communicate(timeout=30)
        assert proc.returncode == 0, err
    finally:
        listener.close()
    assert same_messages(listener.got[remapped], expected[f"/{NS}/o4a/action"], "o4a_msgs/msg/DiscreteAction")
    assert set(listener.got) == {remapped}     # nothing on the original names, no images


# ---- record under rclpy --------------------------------------------------------------------

@pytest.mark.ros
@pytest.mark.parametrize("storage", ["mcap", "sqlite3"])
def test_record_writes_sensor_reliable_and_latched_topics(tmp_path, storage):
    import rclpy
    from rclpy.qos import DurabilityPolicy, QoSProfile, qos_profile_sensor_data
    from sensor_msgs.msg import Image, LaserScan
    from std_msgs.msg import String

    from o4a_msgs.msg import DiscreteAction
    from o4a_nav import ros_conv

    ctx = rclpy.Context()
    rclpy.init(context=ctx)
    node = rclpy.create_node("bag_test_talker", context=ctx)
    out = tmp_path / "rec"
    try:
        latched = node.create_publisher(String, f"{NS}/o4a/world_name", QoSProfile(depth=1, durability=DurabilityPolicy.TRANSIENT_LOCAL))
        latched.publish(String(data="room_before_recorder"))       # sent before the recorder exists
        images = node.create_publisher(Image, f"{NS}/front_camera/image_raw", qos_profile_sensor_data)
        scans = node.create_publisher(LaserScan, f"{NS}/scan", qos_profile_sensor_data)
        actions = node.create_publisher(DiscreteAction, f"{NS}/o4a/action", 10)
        proc = o4a("record", "front_camera/image_raw", f"/{NS}/scan", "o4a/action", "o4a/world_name", "late_topic",
                   "--namespace", NS, "-q",
                   "-o", str(out), "-s", storage)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not all(
                p.get_subscription_count() > 0 for p in (latched, images, scans, actions)):
            time.sleep(0.05)
        assert proc.poll() is None, proc.communicate()[1]
        late = node.create_publisher(String, f"{NS}/late_topic", 10)      # appears after the recorder started
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and late.get_subscription_count() == 0:
            time.sleep(0.05)
        time.sleep(0.3)
        late.publish(String(data="late"))
        sent_actions = []
        for i in range(10):
            images.publish(ros_conv.rgb_to_image_msg(np.full((8, 8, 3), i, np.uint8), float(i), "front"))
            scans.publish(ros_conv.scan_data_to_msg(ScanData(np.full(5, 1.0 + i, np.float32), -1, 0.5, 0.1, 10, i), "laser"))
            a = DiscreteAction(action=i % 4, sequence=i)
            actions.publish(a)
            sent_actions.append((i % 4, i))
            time.sleep(0.02)
        time.sleep(1.0)
        proc.send_signal(signal.SIGINT)                             # Ctrl-C closes the bag cleanly
        _, err = proc.communicate(timeout=30)
        assert proc.returncode == 0, err
    finally:
        node.destroy_node()
        ctx.try_shutdown()
    assert any(out.glob("*.mcap" if storage == "mcap" else "*.db3"))
    info = bagio.topics(out)
    assert info[f"/{NS}/o4a/action"] == ("o4a_msgs/msg/DiscreteAction", 10)
    msgs: dict[str, list] = {}
    for topic, _, _, msg in bagio.read(out):
        msgs.setdefault(topic, []).append(msg)
    assert [m.data for m in msgs[f"/{NS}/o4a/world_name"]] == ["room_before_recorder"]
    assert [m.data for m in msgs[f"/{NS}/late_topic"]] == ["late"]
    assert [(m.action, m.sequence) for m in msgs[f"/{NS}/o4a/action"]] == sent_actions
    assert [int(m.data[0]) for m in msgs[f"/{NS}/front_camera/image_raw"]] == list(range(10))
    assert [float(m.ranges[0]) for m in msgs[f"/{NS}/scan"]] == [1.0 + i for i in range(10)]
    qos = bagio.offered_qos(out)
    assert qos[f"/{NS}/o4a/world_name"][0].durability.name == "TRANSIENT_LOCAL"   # replays latched
    assert qos[f"/{NS}/scan"][0].reliability.name == "BEST_EFFORT"


# ---- errors (in process, through the CLI) --------------------------------------------------

def run_cli(capsys, *argv) -> tuple[int, str]:
    code = cli.main(list(argv))
    return code, capsys.readouterr().err


def test_replay_missing_topic_names_it(tmp_path, capsys):
    bag = make_bag(tmp_path / "bag", "sqlite3")
    code, err = run_cli(capsys, "replay", str(bag), "--topics", f"/{NS}/front_camera/image_raw", "rear_camera/image_raw")
    assert code == 2
    assert "rear_camera/image_raw" in err and "not in" in err and "Traceback" not in err


def test_replay_of_missing_bag_and_record_into_existing_folder(tmp_path, capsys):
    code, err = run_cli(capsys, "replay", str(tmp_path / "nothing"))
    assert code == 2 and "does not exist" in err
    (tmp_path / "exists").mkdir()
    code, err = run_cli(capsys, "record", "scan", "-o", str(tmp_path / "exists"), "-d", "0.1")
    assert code == 2 and "exists" in err
    code, err = run_cli(capsys, "record", "-o", str(tmp_path / "new"))
    assert code == 2 and "no topics" in err
    code, err = run_cli(capsys, "record", "scan", "--goal", str(tmp_path / "f.png"), str(tmp_path / "r.png"),
                        "-o", str(tmp_path / "new"))
    assert code == 2 and "f.png" in err and not (tmp_path / "new").exists()


def test_replay_unknown_message_type_names_topic_and_type(tmp_path, capsys):
    from rosbags.typesys import get_types_from_msg

    store = bagio.typestore()
    store.register(get_types_from_msg("float64 value", "unknown_pkg/msg/Thing"))
    bag = tmp_path / "bag"
    with bagio.BagWriter(bag) as w:
        w.write("scan", "sensor_msgs/msg/LaserScan", 1.0,
                bagio.scan_msg(ScanData(np.ones(3, np.float32), 0, 0.1, 0.1, 5, 1.0), "laser"))
        w.write("strange", "unknown_pkg/msg/Thing", 1.0, store.types["unknown_pkg/msg/Thing"](value=1.0))
    code, err = run_cli(capsys, "replay", str(bag))
    assert code == 2
    assert "/strange" in err and "unknown_pkg/msg/Thing" in err and "--topics" in err
    # the other topics still play when the unknown one is left out
    code, err = run_cli(capsys, "replay", str(bag), "--topics", "scan", "--rate", "max", "--delay", "0", "-q")
    assert code == 0, err


@pytest.mark.parametrize("storage", ["mcap", "sqlite3"])
def test_replay_corrupted_message_names_topic(tmp_path, capsys, storage):
    bag = tmp_path / "bag"
    good = bagio.scan_msg(ScanData(np.ones(40, np.float32), 0, 0.1, 0.1, 5, 1.0), "laser")
    raw = bytes(bagio.typestore().serialize_cdr(good, "sensor_msgs/msg/LaserScan"))
    with bagio.BagWriter(bag, storage=storage) as w:
        w.write("o4a/action", "o4a_msgs/msg/DiscreteAction", 1.0, bagio.action_msg(1, 1.0, 0))
        w.write("scan", "sensor_msgs/msg/LaserScan", 1.0, raw)
        w.write("scan", "sensor_msgs/msg/LaserScan", 1.1, raw[: len(raw) // 2])     # truncated
    code, err = run_cli(capsys, "replay", str(bag), "--rate", "max", "--delay", "0", "-q")
    assert code == 2
    assert "/scan" in err and "message 2" in err and "corrupted" in err


def test_replay_damaged_storage_file_is_a_clear_error(tmp_path, capsys):
    bag = make_bag(tmp_path / "bag", "mcap")
    mcap = next(bag.glob("*.mcap"))
    data = mcap.read_bytes()
    mcap.write_bytes(data[: len(data) // 3])                       # cut off mid-way
    code, err = run_cli(capsys, "replay", str(bag), "--rate", "max", "--delay", "0", "-q")
    assert code == 2 and str(bag) in err and "Traceback" not in err
    (tmp_path / "nobag").mkdir()
    code, err = run_cli(capsys, "replay", str(tmp_path / "nobag"))
    assert code == 2 and "metadata.yaml" in err


@pytest.mark.ros
def test_record_keeps_a_robot_shaped_stream_and_reports_losses(tmp_path):
    """issue 29: two 640x480 bgr8 cameras at 15 Hz + odometry at 30 Hz (28 MB/s, sensor-data
    QoS, published by a separate process). Through the publishers' shared memory (Fast DDS
    default, `--transport default`) large images are lost before any subscriber sees them,
    and the recorder says how many per topic; with its default transport (UDP receive, a
    large socket buffer) it keeps every message."""
    import json
    import re

    env = dict(os.environ, ROS_DOMAIN_ID=str(150 + os.getpid() % 80))     # the bench topics are absolute
    topics = ["/front_camera/image_raw", "/rear_camera/image_raw", "/odom"]
    results = {}
    for transport in ("auto", "default"):
        out = tmp_path / transport
        rec = subprocess.Popen([PY, "-m", "o4a_nav.cli", "record", *topics, "-o", str(out), "-q", "--transport",
                                transport], cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        pub = subprocess.run([PY, str(REPO / "scripts" / "bench_record.py"), "--role", "publisher", "--seconds", "4"],
                             cwd=REPO, env=env, capture_output=True, text=True, timeout=120)   # waits for the recorder
        assert pub.returncode == 0, pub.stderr[-2000:]
        published = json.loads(pub.stdout.strip().splitlines()[-1])["published"]
        rec.send_signal(signal.SIGINT)
        _, err = rec.communicate(timeout=60)
        assert rec.returncode == 0, err
        recorded = {t: n for t, (_, n) in bagio.topics(out).items()}
        lost = {t: int(m.group(1)) for t in topics
                for m in [re.search(rf"  {re.escape(t)}: \d+ \(.*\), (\d+) lost before reaching", err)] if m}
        results[transport] = (published, recorded, lost, err)
    published, recorded, lost, err = results["auto"]
    assert recorded == published and not lost and "no message reported lost" in err, err
    published, recorded, lost, err = results["default"]
    for t in topics:
        assert recorded[t] + lost.get(t, 0) <= published[t]
    assert any(lost.get(t, 0) > 0 for t in topics[:2]), err          # the images the shared memory dropped
    assert "were lost in transport" in err
