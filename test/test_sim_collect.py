"""`o4a collect` and `o4a worlds`: real simulator, real MCAP bags read back with rosbags."""
import math
import subprocess
import sys

import numpy as np
import pytest

from o4a_nav import bagio
from o4a_nav.cli import main
from o4a_nav.commands import collect as C
from o4a_nav.sim import load_world
from o4a_nav.sim.world import world_from_text
from o4a_nav.types import FORWARD_STEP_M, ROTATE_STEP_RAD, Action

N, TRAJ = 45, 20


@pytest.fixture(scope="module")
def bag(tmp_path_factory):
    out = tmp_path_factory.mktemp("collect") / "bag"
    assert main(["collect", "--world", "two_rooms", "--steps", str(N), "--out", str(out), "--seed", "3",
                 "--trajectory-length", str(TRAJ), "-q"]) == 0
    return out


def test_bag_has_n_steps_with_standard_types(bag):
    t = bagio.topics(bag)
    assert t[C.FRONT] == ("sensor_msgs/msg/Image", N)
    assert t[C.REAR] == ("sensor_msgs/msg/Image", N)
    assert t[C.SCAN] == ("sensor_msgs/msg/LaserScan", N)
    assert t[C.POSE] == ("geometry_msgs/msg/PoseStamped", N)
    assert t[C.ACTION] == ("o4a_msgs/msg/DiscreteAction", N)
    assert t[C.WORLD] == ("std_msgs/msg/String", 1)
    assert t[C.WORLD_DEFINITION] == ("std_msgs/msg/String", 1)
    assert (bag / "metadata.yaml").is_file() and list(bag.glob("*.mcap"))


def test_bag_layout_per_step(bag):
    msgs = list(bagio.read(bag))
    assert msgs[0][0] == C.WORLD and msgs[0][3].data == "two_rooms"
    # the world file's text travels with the bag: the same geometry without the file
    assert msgs[1][0] == C.WORLD_DEFINITION
    assert np.array_equal(world_from_text(msgs[1][3].data).segments, load_world("two_rooms").segments)
    # the sensor mounts (base_link -> laser at the origin, the cameras), where training reads the laser's pose
    assert msgs[2][0] == "/tf_static"
    mounts = {t.child_frame_id: t for t in msgs[2][3].transforms}
    assert mounts["laser"].header.frame_id == "base_link" and mounts["laser"].transform.translation.x == 0.0
    assert mounts["laser"].transform.rotation.w == 1.0
    order = [C.FRONT, C.REAR, C.SCAN, C.POSE, C.ACTION]
    steps = [msgs[3 + 5 * i: 8 + 5 * i] for i in range(N)]
    poses, actions = [], []
    for i, step in enumerate(steps):
        assert [m[0] for m in step] == order
        stamps = {(m[3].header.stamp.sec, m[3].header.stamp.nanosec) for m in step}
        assert len(stamps) == 1                                  # one stamp per step
        assert all(m[2] == pytest.approx(step[0][2]) for m in step)
        img = step[0][3]
        assert (img.height, img.width, img.encoding) == (96, 96, "rgb8")
        scan = step[2][3]
        assert len(scan.ranges) >= 541 and scan.angle_max - scan.angle_min >= math.radians(270) - 1e-6
        q = step[3][3].pose
        poses.append((q.position.x, q.position.y, 2 * math.atan2(q.orientation.z, q.orientation.w)))
        actions.append(step[4][3].action)
        assert step[4][3].sequence == i
    # trajectories of TRAJ frames end with STOP; the bag ends with STOP
    stops = [i for i, a in enumerate(actions) if a == Action.STOP]
    assert stops == [TRAJ - 1, 2 * TRAJ - 1, N - 1]
    # every recorded action was executed exactly: the next pose is its result
    for i in range(N - 1):
        (x0, y0, a0), (x1, y1, a1) = poses[i], poses[i + 1]
        dyaw = (a1 - a0 + math.pi) % (2 * math.pi) - math.pi
        if actions[i] == Action.FORWARD:
            assert math.hypot(x1 - x0, y1 - y0) == pytest.approx(FORWARD_STEP_M, abs=1e-6)
            assert dyaw == pytest.approx(0, abs=1e-6)
        elif actions[i] == Action.ROTATE_LEFT:
            assert (x1, y1, dyaw) == pytest.approx((x0, y0, ROTATE_STEP_RAD), abs=1e-6)
        elif actions[i] == Action.ROTATE_RIGHT:
            assert (x1, y1, dyaw) == pytest.approx((x0, y0, -ROTATE_STEP_RAD), abs=1e-6)
    world = load_world("two_rooms")
    assert all(not world.collides(x, y) for x, y, _ in poses)


def test_same_seed_same_bag_across_processes(bag, tmp_path):
    out = tmp_path / "again"
    subprocess.run([sys.executable, "-m", "o4a_nav.cli", "collect", "--world", "two_rooms", "--steps", str(N),
                    "--out", str(out), "--seed", "3", "--trajectory-length", str(TRAJ), "-q"],
                   check=True, timeout=120, capture_output=True)
    a = [(t, ts, bytes(d)) for t, _, ts, d in bagio.read(bag, raw=True)]
    b = [(t, ts, bytes(d)) for t, _, ts, d in bagio.read(out, raw=True)]
    assert a == b


def test_collect_refuses_bad_input(tmp_path, capsys, bag):
    assert main(["collect", "--world", "nowhere", "--steps", "5", "--out", str(tmp_path / "x")]) == 2
    assert "unknown world 'nowhere'" in capsys.readouterr().err
    assert main(["collect", "--world", "two_rooms", "--steps", "5", "--out", str(bag)]) == 2
    assert "exists" in capsys.readouterr().err
    assert main(["collect", "--world", "two_rooms", "--steps", "0", "--out", str(tmp_path / "y")]) == 2


def test_worlds_lists_names(capsys):
    assert main(["worlds"]) == 0
    names = capsys.readouterr().out.split()
    assert len(names) >= 8 and "two_rooms" in names and names == sorted(names)


def test_ideal_connectivity_joins_a_turn_on_the_spot_and_splits_a_one_way_drive():
    from o4a_nav.learning.report import ideal_connectivity

    # 24 left turns of 15 degrees on the spot: the last frame is the first place and heading
    # again, so the laser would close the loop and every frame reaches every other
    yaw = np.arange(25) * ROTATE_STEP_RAD
    turn = np.stack([np.zeros(25), np.zeros(25), yaw], axis=1)
    c = ideal_connectivity(turn, np.zeros(25, np.int64))
    assert (c["components"], c["largest"], c["largest_share"]) == (1, 25, 1.0)
    # a straight one-way drive: no frame can get back to an earlier one
    line = np.stack([np.arange(10) * FORWARD_STEP_M, np.zeros(10), np.zeros(10)], axis=1)
    c = ideal_connectivity(line, np.zeros(10, np.int64))
    assert (c["components"], c["largest"]) == (10, 1)


def test_collect_says_how_connected_the_graph_can_be_and_how_much_to_record(tmp_path, capsys):
    assert main(["collect", "--world", "two_rooms", "--steps", "60", "--out", str(tmp_path / "b"), "--seed", "3",
                 "--trajectory-length", "20", "-q"]) == 0
    out = capsys.readouterr().out
    assert "best one-action graph of this bag: its largest strongly connected part holds" in out
    # 60 frames in two rooms are far too few: the advice names a frame count for the free area
    free = load_world("two_rooms").free_area
    assert "WARNING fragmented" in out
    want = int(out.split("here ")[1].split(" frames")[0])
    assert want >= C.FRAMES_PER_M2 * free and want > 60
