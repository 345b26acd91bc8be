"""o4a_nav.bagio: bags in both storage formats, o4a_msgs types, clear errors."""
import numpy as np
import pytest

from o4a_nav import bagio
from o4a_nav.errors import BagError
from o4a_nav.types import Action, Pose2D, ScanData


def _write(path, storage, steps=5):
    with bagio.BagWriter(path, storage=storage, latched_topics=["o4a/world_name"]) as w:
        w.write("o4a/world_name", "std_msgs/msg/String", 0.0, bagio.string_msg("ring"))
        for i in range(steps):
            t = 0.1 * i
            img = np.full((96, 96, 3), i, np.uint8)
            w.write("front_camera/image_raw", "sensor_msgs/msg/Image", t, bagio.image_msg(img, t, "front"))
            scan = ScanData(np.full(10, 1.0 + i, np.float32), -1.0, 0.2, 0.05, 10.0, t)
            w.write("scan", "sensor_msgs/msg/LaserScan", t, bagio.scan_msg(scan, "laser"))
            w.write("ground_truth/pose", "geometry_msgs/msg/PoseStamped", t, bagio.pose_msg(Pose2D(i, 0, 0.5), t))
            w.write("o4a/action", "o4a_msgs/msg/DiscreteAction", t, bagio.action_msg(Action.FORWARD, t, i))


@pytest.mark.parametrize("storage", bagio.STORAGES)
def test_round_trip_both_storages(tmp_path, storage):
    path = tmp_path / storage
    _write(path, storage)
    assert bagio.topics(path)["o4a/action"] == ("o4a_msgs/msg/DiscreteAction", 5)
    msgs = list(bagio.read(path, topics=["front_camera/image_raw", "o4a/action"]))
    assert [m[0] for m in msgs[:2]] == ["front_camera/image_raw", "o4a/action"]
    last_img = [m for m in msgs if m[0] == "front_camera/image_raw"][-1][3]
    assert last_img.encoding == "rgb8" and int(last_img.data[0]) == 4
    actions = [m[3] for m in msgs if m[0] == "o4a/action"]
    assert [a.sequence for a in actions] == list(range(5)) and actions[0].action == Action.FORWARD
    assert msgs[-1][2] == pytest.approx(0.4)


def test_rclpy_reads_our_cdr(tmp_path):
    """What rosbags writes for o4a_msgs deserialises with the colcon-generated rclpy type."""
    from rclpy.serialization import deserialize_message
    from o4a_msgs.msg import DiscreteAction

    _write(tmp_path / "b", "mcap", steps=2)
    raw = [m for m in bagio.read(tmp_path / "b", topics=["o4a/action"], raw=True)][-1][3]
    msg = deserialize_message(raw, DiscreteAction)
    assert (msg.action, msg.sequence) == (DiscreteAction.FORWARD, 1)


def test_type_hash_matches_generated_interface():
    import json
    from ament_index_python.packages import get_package_share_directory

    share = get_package_share_directory("o4a_msgs")
    with open(f"{share}/msg/DiscreteAction.json") as f:
        hashes = {h["type_name"]: h["hash_string"] for h in json.load(f)["type_hashes"]}
    assert bagio.typestore().hash_rihs01("o4a_msgs/msg/DiscreteAction") == hashes["o4a_msgs/msg/DiscreteAction"]


def test_errors_name_the_problem(tmp_path):
    with pytest.raises(BagError, match="does not exist"):
        list(bagio.read(tmp_path / "nope"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(BagError, match="not a rosbag2 folder"):
        bagio.topics(tmp_path / "empty")
    _write(tmp_path / "b", "mcap")
    with pytest.raises(BagError, match="rear_camera/image_raw"):
        list(bagio.read(tmp_path / "b", topics=["rear_camera/image_raw"]))
    with pytest.raises(BagError, match="exists already"):
        bagio.BagWriter(tmp_path / "b")
