"""Dataset from bags: pairing, trajectories, splits, topic names, clear errors on bad bags."""
import numpy as np
import pytest

from o4a_nav import bagio, topics as T
from o4a_nav.errors import BagError
from o4a_nav.learning.dataset import TopicNames, load_worlds, read_bag, split_trajectories
from o4a_nav.learning.synthetic import RingWorld, write_bag
from o4a_nav.types import Action


@pytest.fixture(scope="module")
def explore():
    return RingWorld(8, seed=1).explore(90, traj_len=30, seed=2)


@pytest.fixture(scope="module")
def good_bag(tmp_path_factory, explore):
    return write_bag(tmp_path_factory.mktemp("b") / "bag", explore, "ring8")


def test_bag_round_trip(good_bag, explore):
    [w] = load_worlds([good_bag], val_fraction=0.34, seed=0)
    assert w.name == "ring8" and len(w) == 90
    assert np.array_equal(w.front, explore["front"]) and np.array_equal(w.rear, explore["rear"])
    assert np.array_equal(w.actions, explore["actions"])
    assert len(np.unique(w.traj)) == 3 and len(w.val_traj) == 1
    assert np.allclose(w.poses, explore["poses"], atol=1e-5)
    # transitions never cross a STOP (trajectory end)
    t = np.flatnonzero(w.next_ok)
    assert (w.actions[t] != Action.STOP).all() and (w.traj[t] == w.traj[t + 1]).all()
    assert len(w.transitions(True)) + len(w.transitions(False)) == len(t)


def test_world_name_falls_back_to_option_or_folder(tmp_path, explore):
    bag = write_bag(tmp_path / "my_lab", explore, world_name=None, with_pose=False)
    [w] = load_worlds([bag])
    assert w.name == "my_lab" and w.poses is None and not w.known_world
    [w] = load_worlds([bag], world_override="lab2")
    assert w.name == "lab2"


def test_two_bags_same_world_are_merged(tmp_path, explore):
    a = write_bag(tmp_path / "a", explore, "ring8")
    b = write_bag(tmp_path / "b", explore, "ring8")
    [w] = load_worlds([a, b])
    assert len(w) == 180 and len(np.unique(w.traj)) == 6


def test_any_size_and_encoding_images(tmp_path):
    """bgr8 / mono8 images of other sizes, real-robot style stamps (action after the image)."""
    rng = np.random.default_rng(0)
    types = bagio.typestore().types
    path = tmp_path / "robot"
    with bagio.BagWriter(path) as wr:
        for k in range(6):
            t = 1.0 + k
            bgr = rng.integers(0, 256, (120, 160, 3), dtype=np.uint8)
            msg = bagio.image_msg(bgr, t, "front")
            msg.encoding = "bgr8"
            wr.write("/front_cam", "sensor_msgs/msg/Image", t, msg)
            mono = rng.integers(0, 256, (48, 64), dtype=np.uint8)
            m2 = types["sensor_msgs/msg/Image"](header=msg.header, height=48, width=64, encoding="mono8",
                                                 is_bigendian=0, step=64, data=mono.reshape(-1))
            wr.write("/rear_cam", "sensor_msgs/msg/Image", t, m2)
            wr.write(T.ACTION, "o4a_msgs/msg/DiscreteAction", t + 0.2, bagio.action_msg(1 if k < 5 else 0, t + 0.2, k))
    d = read_bag(path, TopicNames(front="front_cam", rear="/rear_cam"))
    assert d.front.shape == (6, 96, 96, 3) and d.rear.shape == (6, 96, 96, 3)
    assert list(d.actions) == [1, 1, 1, 1, 1, 0]
    # mono8 comes out grey RGB
    assert (d.rear[..., 0] == d.rear[..., 1]).all()


def test_missing_topic_is_named(tmp_path, explore):
    bag = write_bag(tmp_path / "norear", explore, "ring8", drop_topics=(T.REAR_IMAGE,))
    with pytest.raises(BagError, match="rear camera topic rear_camera/image_raw"):
        load_worlds([bag])


def test_camera_topic_without_messages_is_named(tmp_path, explore):
    """issue 29: a camera topic recorded with 0 messages is reported as such, not as absent."""
    bag = tmp_path / "silent_rear"
    with bagio.BagWriter(bag) as wr:
        wr.connection("/" + T.REAR_IMAGE, "sensor_msgs/msg/Image")     # subscribed, never received
        for k in range(3):
            t = 1.0 + k
            wr.write("/" + T.FRONT_IMAGE, "sensor_msgs/msg/Image", t, bagio.image_msg(explore["front"][k], t, "f"))
            wr.write(T.ACTION, "o4a_msgs/msg/DiscreteAction", t, bagio.action_msg(1, t, k))
    with pytest.raises(BagError, match="rear camera topic /rear_camera/image_raw has no messages") as err:
        load_worlds([bag])
    assert "has no rear camera topic" not in str(err.value)


def test_not_a_bag(tmp_path):
    with pytest.raises(BagError, match="does not exist"):
        load_worlds([tmp_path / "nothing"])
    (tmp_path / "empty").mkdir()
    with pytest.raises(BagError, match="not a rosbag2 folder"):
        load_worlds([tmp_path / "empty"])
    with pytest.raises(BagError, match="no bags"):
        load_worlds([])


def test_unusable_image(tmp_path):
    path = tmp_path / "bad"
    with bagio.BagWriter(path) as wr:
        msg = bagio.image_msg(np.zeros((10, 10, 3), np.uint8), 1.0, "f")
        msg.encoding = "32FC1"
        wr.write(T.FRONT_IMAGE, "sensor_msgs/msg/Image", 1.0, msg)
        wr.write(T.REAR_IMAGE, "sensor_msgs/msg/Image", 1.0, bagio.image_msg(np.zeros((10, 10, 3), np.uint8), 1.0, "r"))
        wr.write(T.ACTION, "o4a_msgs/msg/DiscreteAction", 1.0, bagio.action_msg(0, 1.0, 0))
    with pytest.raises(BagError, match="unusable image on topic front_camera/image_raw.*32fc1"):
        load_worlds([path])


def test_actions_without_images(tmp_path):
    path = tmp_path / "late"
    with bagio.BagWriter(path) as wr:
        wr.write(T.FRONT_IMAGE, "sensor_msgs/msg/Image", 5.0, bagio.image_msg(np.zeros((96, 96, 3), np.uint8), 5.0, "f"))
        wr.write(T.REAR_IMAGE, "sensor_msgs/msg/Image", 5.0, bagio.image_msg(np.zeros((96, 96, 3), np.uint8), 5.0, "r"))
        wr.write(T.ACTION, "o4a_msgs/msg/DiscreteAction", 1.0, bagio.action_msg(1, 1.0, 0))
    with pytest.raises(BagError, match="no action on o4a/action could be paired"):
        load_worlds([path])


def test_split_keeps_a_training_trajectory():
    assert split_trajectories(np.zeros(10, int), 0.3, 0) == set()
    s = split_trajectories(np.repeat(np.arange(10), 5), 0.3, 0)
    assert len(s) == 3
    assert len(split_trajectories(np.repeat(np.arange(2), 5), 0.9, 0)) == 1
