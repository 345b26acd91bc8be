"""CollisionChecker (o4a_nav/nav/collision.py): box geometry, REP 117 handling, rotations."""
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from o4a_nav.errors import UserError
from o4a_nav.nav.collision import CollisionChecker, FootprintParams
from o4a_nav.types import Action, ScanData
from test_nav_safety import reference_covered

N = 181  # 1 deg rays over [-90, 90] deg


def scan_with(ranges, angle_min=-math.pi / 2, inc=math.pi / 180, rmin=0.05, rmax=10.0):
    return ScanData(np.asarray(ranges, dtype=np.float32), angle_min, inc, rmin, rmax, stamp=1.5)


def empty(n=N):
    return np.full(n, np.inf, dtype=np.float32)


def test_empty_scan_all_motions_free():
    res = CollisionChecker().free_actions(scan_with(empty()))
    assert res.free == {Action.FORWARD, Action.ROTATE_LEFT, Action.ROTATE_RIGHT}
    assert Action.STOP not in res.free
    assert res.forward_clearance == math.inf
    assert res.points_in_box == 0
    assert res.stamp == 1.5


def test_point_straight_ahead_blocks_forward_and_sets_clearance():
    r = empty()
    r[90] = 0.3  # bearing 0
    res = CollisionChecker().free_actions(scan_with(r))
    assert not res.forward
    assert res.points_in_box == 1
    assert res.forward_clearance == pytest.approx(0.3, abs=1e-6)
    assert res.rotate_left and res.rotate_right  # circular footprint


def test_point_beyond_box_is_clearance_but_free():
    r = empty()
    r[90] = 0.8
    res = CollisionChecker().free_actions(scan_with(r))
    assert res.forward
    assert res.forward_clearance == pytest.approx(0.8, abs=1e-6)


def test_default_box_covers_robot_radius_not_only_paper_width():
    # a return at y = 0.19 m: outside the paper's |y| < 0.17 but it would hit a 0.2 m robot
    x, y = 0.3, 0.19
    r = empty()
    ang = math.atan2(y, x)
    i = int(round((ang + math.pi / 2) / (math.pi / 180)))
    r[i] = math.hypot(x, y) / math.cos(ang - (-math.pi / 2 + i * math.pi / 180))  # same x
    res = CollisionChecker().free_actions(scan_with(r))
    assert not res.forward
    paper = CollisionChecker(box_half_width=0.17, robot_radius=0.17)
    assert paper.free_actions(scan_with(r)).forward


def test_rep117_inf_nan_and_out_of_range():
    cc = CollisionChecker()
    r = empty()
    r[90] = np.nan
    res = cc.free_actions(scan_with(r))
    assert res.forward and res.n_invalid == 1
    r[90] = 20.0  # beyond range_max: no return
    assert cc.free_actions(scan_with(r)).forward
    r[90] = -np.inf  # too close: obstacle
    res = cc.free_actions(scan_with(r))
    assert not res.forward and res.points_in_box == 1
    assert res.forward_clearance < 0.06
    r[90] = 0.01  # finite below range_min: treated as too close by default
    assert not cc.free_actions(scan_with(r)).forward
    assert CollisionChecker(below_min_is_obstacle=False).free_actions(scan_with(r)).forward
    r[90] = np.nan
    assert not CollisionChecker(nan_is_obstacle=True).free_actions(scan_with(r)).forward


def test_neg_inf_pointing_backwards_does_not_block():
    # 360 deg laser at the base origin: a -inf ray pointing backwards lies at x < 0
    inc = 2 * math.pi / 360
    r = np.full(360, np.inf, dtype=np.float32)
    r[0] = -np.inf  # bearing -pi
    res = CollisionChecker().free_actions(scan_with(r, angle_min=-math.pi, inc=inc))
    assert res.forward


def full_circle(n=360):
    """A 360 deg scan of +inf from -180 deg; ray k has bearing -180 + k deg."""
    return np.full(n, np.inf, dtype=np.float32), dict(angle_min=-math.pi, inc=2 * math.pi / n)


def test_laser_offset_moves_points_into_box():
    # laser mounted 0.3 m behind the base origin: a return at 0.25 m straight ahead is at
    # x = -0.05, outside the box, but it hides the box behind it: not proven free
    r, geo = full_circle()
    r[180] = 0.25
    res = CollisionChecker(laser_x=-0.3).free_actions(scan_with(r, **geo))
    assert not res.forward and res.points_in_box == 0 and res.uncovered > 0
    r[180] = np.inf
    r[0] = 0.25  # behind the laser: x = -0.55
    assert CollisionChecker(laser_x=-0.3).free_actions(scan_with(r, **geo)).forward
    # and a laser mounted ahead shifts returns forward
    r, geo = full_circle()
    r[180] = 0.35  # x = 0.45 with the laser 0.1 m ahead: inside the box
    assert CollisionChecker().free_actions(scan_with(r, **geo)).forward is False
    r[180] = 0.45  # x = 0.55 with the laser ahead (outside), 0.45 without (inside)
    assert CollisionChecker(laser_x=0.1).free_actions(scan_with(r, **geo)).forward
    assert not CollisionChecker().free_actions(scan_with(r, **geo)).forward
    r[180] = 0.35
    res = CollisionChecker(laser_x=0.1).free_actions(scan_with(r, **geo))
    assert res.points_in_box == 1 and not res.forward
    # a 180 deg fan from a laser 0.1 m ahead does not see the box beside it (outside the body)
    assert not CollisionChecker(laser_x=0.1).free_actions(scan_with(empty())).forward


def test_laser_yaw_rotates_bearings():
    r, geo = full_circle()
    r[90] = 0.3  # bearing -90 deg in the laser frame
    assert CollisionChecker().free_actions(scan_with(r, **geo)).forward
    assert not CollisionChecker(laser_yaw=math.pi / 2).free_actions(scan_with(r, **geo)).forward
    # a 180 deg fan turned by 90 deg covers only half of the box
    assert not CollisionChecker(laser_yaw=math.pi / 2).free_actions(scan_with(empty())).forward


@pytest.mark.parametrize("kw", [dict(box_half_width=0.1), dict(box_x_max=0.3),
                                dict(box_x_min=0.6), dict(footprint=[0.1, 0.1, 0.2])])
def test_invalid_geometry_rejected(kw):
    with pytest.raises(UserError):
        CollisionChecker(**kw)


def test_from_dict_rejects_unknown_names():
    with pytest.raises(UserError, match="bogus"):
        FootprintParams.from_dict({"bogus": 1.0})
    assert FootprintParams.from_dict({"box_x_max": 0.6}).box_x_max == 0.6


def test_rectangular_footprint_blocks_rotation_towards_corner_obstacle():
    # long thin robot: 0.6 m x 0.2 m; an obstacle just left of its front corner
    fp = [0.3, 0.1, -0.3, 0.1, -0.3, -0.1, 0.3, -0.1]
    cc = CollisionChecker(footprint=fp, box_x_max=0.6, box_half_width=0.12)
    # point at (0.28, 0.13): rotating left sweeps the front-left corner through it
    x, y = 0.28, 0.13
    inc = math.pi / 1800
    n = 1801
    r = np.full(n, np.inf, dtype=np.float32)
    ang = math.atan2(y, x)
    i = int(round((ang + math.pi / 2) / inc))
    r[i] = math.hypot(x, y)
    res = cc.free_actions(scan_with(r, inc=inc))
    assert not res.rotate_left
    assert res.rotate_right
    # mirror
    r2 = np.full(n, np.inf, dtype=np.float32)
    i2 = int(round((-ang + math.pi / 2) / inc))
    r2[i2] = math.hypot(x, y)
    res2 = cc.free_actions(scan_with(r2, inc=inc))
    assert res2.rotate_left and not res2.rotate_right
    # far points never block rotations
    r3 = np.full(n, 2.0, dtype=np.float32)
    res3 = cc.free_actions(scan_with(r3, inc=inc))
    assert res3.rotate_left and res3.rotate_right


def test_box_polygon_corners():
    poly = CollisionChecker().box_polygon()
    assert (0.0, -0.22) in poly and (0.5, 0.22) in poly


# ---------------------------------------------------------------- property tests
ranges_st = st.lists(
    st.one_of(st.floats(0.0, 3.0, allow_nan=False), st.just(math.inf), st.just(math.nan),
              st.just(-math.inf), st.floats(10.0, 50.0)),
    min_size=1, max_size=90)


def reference_forward_blocked(scan, p, neg_inf=True, below_min=True):
    """Independent slow reference: any valid return strictly inside the box, or a
    'too close' ray whose segment (0, range_min] passes through the box (sampled finely)."""
    # compare ranges with range_min/max in the scan's own precision (float32), as the
    # checker does: a denormal range_min is 0 there
    rmin, rmax = scan.ranges.dtype.type(scan.range_min), scan.ranges.dtype.type(scan.range_max)
    for i, r32 in enumerate(scan.ranges):
        rv = float(r32)
        a = scan.angle_min + i * scan.angle_increment + p.laser_yaw
        if math.isfinite(rv) and rmin <= r32 <= rmax:
            samples = [rv]
        elif (neg_inf and rv == -math.inf) or (below_min and math.isfinite(rv) and r32 < rmin):
            samples = list(np.linspace(1e-6, max(scan.range_min, 1e-3), 2001))
        else:
            continue
        for t in samples:
            x = p.laser_x + t * math.cos(a)
            y = p.laser_y + t * math.sin(a)
            if p.box_x_min < x < p.box_x_max and abs(y) < p.box_half_width:
                return True
    return False


@settings(max_examples=300, deadline=None)
@given(ranges=ranges_st,
       angle_min=st.floats(-math.pi, math.pi),
       inc=st.one_of(st.floats(0.001, 0.035), st.floats(0.001, 0.2)),  # > max_angle_increment: a fault
       rmin=st.floats(0.0, 0.3),
       laser_x=st.floats(-0.2, 0.3),
       laser_y=st.floats(-0.1, 0.1),
       laser_yaw=st.floats(-math.pi, math.pi))
def test_property_forward_free_iff_no_return_in_box(ranges, angle_min, inc, rmin, laser_x, laser_y, laser_yaw):
    cc = CollisionChecker(laser_x=laser_x, laser_y=laser_y, laser_yaw=laser_yaw)
    scan = scan_with(ranges, angle_min=angle_min, inc=inc, rmin=rmin, rmax=10.0)
    res = cc.free_actions(scan)
    if inc > cc.params.max_angle_increment:
        assert res.fault and not res.forward
        return
    blocked = reference_forward_blocked(scan, cc.params)
    if blocked:
        assert Action.FORWARD not in res.free
        assert res.points_in_box >= 1
    elif res.forward:  # FORWARD needs the box proven free as well (coverage, test_nav_safety)
        assert reference_covered(scan, cc.params)
    else:
        # the reference samples segments; a segment that only grazes the box can be missed
        # by sampling, so only the point-return direction is asserted both ways
        if not any(np.isneginf(scan.ranges)) and not any(np.isfinite(scan.ranges) & (scan.ranges < rmin)):
            assert res.uncovered > 0 or cc.scan_fault(scan)
    assert Action.STOP not in res.free
    assert res.forward_clearance >= 0.0


@settings(max_examples=200, deadline=None)
@given(x=st.floats(-1.0, 1.0), y=st.floats(-1.0, 1.0))
def test_property_single_return_position(x, y):
    """A single return at (x, y) blocks FORWARD exactly when it is inside the box."""
    r = math.hypot(x, y)
    if r < 1e-3:
        return
    # the return on ray 0 of a 0.1 deg 360 deg scan that is clear elsewhere
    ranges = np.full(3600, np.inf, np.float32)
    ranges[0] = r
    scan = ScanData(ranges, math.atan2(y, x), 2 * math.pi / 3600, 0.0, 10.0)
    # use the float32-rounded range for the reference, like the checker does
    rr = float(np.float32(r))
    xr, yr = rr * math.cos(math.atan2(y, x)), rr * math.sin(math.atan2(y, x))
    inside = 0.0 < xr < 0.5 and abs(yr) < FootprintParams().box_half_width
    assert (Action.FORWARD not in CollisionChecker().free_actions(scan).free) == inside


@pytest.mark.parametrize("field", ["angle_min", "angle_increment", "range_min", "range_max"])
def test_scan_with_non_finite_geometry_blocks_forward(field):
    scan = scan_with(empty())
    setattr(scan, field, float("nan"))
    res = CollisionChecker().free_actions(scan)
    assert not res.forward and res.rotate_left and res.rotate_right
    fp = [0.3, 0.1, -0.3, 0.1, -0.3, -0.1, 0.3, -0.1]
    assert CollisionChecker(footprint=fp, box_x_max=0.6, box_half_width=0.12).free_actions(scan).free == set()
