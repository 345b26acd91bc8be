"""World files, geometry and ground-truth geodesics (no rendering)."""
import math

import numpy as np
import pytest

from o4a_nav.errors import WorldFileError
from o4a_nav.sim.world import WORLDS_DIR, load_world, world_names
from o4a_nav.types import Pose2D


def test_at_least_eight_builtin_worlds_load():
    names = world_names()
    assert len(names) >= 8
    for n in names:
        w = load_world(n)
        assert w.name == n
        assert w.free_area > 10.0
        # the reachable component holds (almost) all free space: no room is cut off
        assert w.main_component.sum() >= 0.99 * w.free.sum()


def test_path_works_like_a_name():
    by_name = load_world("two_rooms")
    by_path = load_world(str(WORLDS_DIR / "two_rooms.yaml"))
    assert np.array_equal(by_name.segments, by_path.segments)


def test_geodesic_straight_line_and_detour():
    w = load_world("two_rooms")
    # inside one room, in the open: close to the straight-line distance
    d = w.geodesic((1.0, 1.0), (3.0, 3.0))
    assert d == pytest.approx(math.hypot(2, 2), rel=0.03)
    # symmetric
    assert w.geodesic((3.0, 3.0), (1.0, 1.0)) == pytest.approx(d, abs=1e-9)
    # from the west room's north-west corner to the east room's north-east corner the
    # path must go through the door (y in 1.5..2.5), so it is longer than the straight line
    a, b = Pose2D(0.5, 3.5, 0.0), Pose2D(7.5, 3.5, 0.0)
    straight = 7.0
    # around the door post at (4, 2.5) with the robot radius as clearance
    via_door = 2 * math.hypot(4.0 - 0.5, 3.5 - 2.5) + 0.2
    g = w.geodesic(a, b)
    assert g > straight + 0.5
    assert g == pytest.approx(via_door, rel=0.04)


def test_geodesic_unreachable_is_inf(tmp_path):
    p = tmp_path / "split.yaml"
    p.write_text("rooms:\n  - {name: a, rect: [0, 0, 3, 3]}\n  - {name: b, rect: [3, 0, 5, 3]}\n")
    w = load_world(p)
    # no opening: the larger room is the reachable component, the other is unreachable
    assert math.isinf(w.geodesic((1.5, 1.5), (4.0, 1.5))) or math.isinf(w.geodesic((4.0, 1.5), (1.5, 1.5)))


def test_collision_geometry():
    w = load_world("two_rooms")
    assert not w.collides(2.0, 2.0)
    assert w.collides(0.1, 2.0)                     # closer than the radius to the west wall
    assert w.collides(3.7, 0.5, 4.3, 0.5)           # through the wall between the rooms
    assert not w.collides(3.7, 2.0, 4.3, 2.0)       # through the door
    assert w.collides(6.0, 3.0, 6.3, 3.0)           # into the red box at (6.5, 3.0)


def test_sample_free_pose_is_free_and_deterministic():
    w = load_world("office")
    a = [w.sample_free_pose(np.random.default_rng(3)) for _ in range(2)]
    assert a[0] == a[1]
    rng = np.random.default_rng(0)
    for _ in range(200):
        p = w.sample_free_pose(rng)
        assert not w.collides(p.x, p.y)
        assert math.isfinite(w.geodesic(p, (7.0, 4.0)))


def _write(tmp_path, text):
    p = tmp_path / "bad.yaml"
    p.write_text(text)
    return p


@pytest.mark.parametrize("text, field", [
    ("rooms: []\n", "rooms"),
    ("rooms:\n  - {name: a, rect: [0, 0, 3]}\n", "rooms[0].rect"),
    ("rooms:\n  - {name: a, rect: [0, 0, 3, 3], wall: no_such_texture}\n", "rooms[0].wall"),
    ("rooms:\n  - {name: a, rect: [0, 0, 3, 3]}\n  - {name: b, rect: [2, 0, 5, 3]}\n", "rooms[1].rect"),
    ("rooms:\n  - {name: a, rect: [0, 0, 3, 3]}\n  - {name: b, rect: [3, 0, 5, 3]}\n"
     "openings:\n  - {rooms: [a, c], from: 1, to: 2}\n", "openings[0].rooms"),
    ("rooms:\n  - {name: a, rect: [0, 0, 3, 3]}\n  - {name: b, rect: [4, 0, 5, 3]}\n"
     "openings:\n  - {rooms: [a, b], from: 1, to: 2}\n", "openings[0].rooms"),
    ("rooms:\n  - {name: a, rect: [0, 0, 3, 3]}\n  - {name: b, rect: [3, 0, 5, 3]}\n"
     "openings:\n  - {rooms: [a, b], from: 1, to: 1.2}\n", "openings[0]"),
    ("rooms:\n  - {name: a, rect: [0, 0, 3, 3]}\nboxes:\n  - {pos: [1, 1], size: [1, 1], color: red}\n", "boxes[0].size"),
    ("rooms:\n  - {name: a, rect: [0, 0, 3, 3]}\nboxes:\n  - {pos: [1, 1], size: [1, 1, 1], color: pink}\n", "boxes[0].color"),
    ("rooms:\n  - {name: a, rect: [0, 0, 3, 3]}\npictures:\n  - {room: a, wall: up, at: 1, texture: wood}\n", "pictures[0].wall"),
    ("rooms:\n  - {name: a, rect: [0, 0, 3, 3], colour: red}\n", "rooms[0]"),
    ("rooms: [\n", "not valid YAML"),
])
def test_world_file_errors_name_file_and_field(tmp_path, text, field):
    p = _write(tmp_path, text)
    with pytest.raises(WorldFileError) as e:
        load_world(p)
    msg = str(e.value)
    assert str(p) in msg
    assert field in msg


def test_unknown_world_name_lists_builtins():
    with pytest.raises(WorldFileError, match="two_rooms"):
        load_world("no_such_world")
    with pytest.raises(WorldFileError, match="not found"):
        load_world("/nonexistent/dir/w.yaml")
