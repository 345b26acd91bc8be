"""BaseController core (o4a_nav/nav/base_controller.py) against a unicycle integrated here."""
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from o4a_nav.errors import UserError
from o4a_nav.nav.base_controller import BaseController, BaseControllerParams
from o4a_nav.types import wrap_angle
from o4a_nav.types import Action, MotionStatus, Pose2D

DT = 0.02


def drive(ctl, pose, t, n=2000, blocked=False, odom=True):
    """Integrate until the motion ends; returns (pose, t, reports, max |v|)."""
    reports, vmax = [], 0.0
    for _ in range(n):
        if odom:
            ctl.on_odom(pose, t)
        out = ctl.update(t)
        reports += out.reports
        vmax = max(vmax, abs(out.linear))
        if ctl.state != MotionStatus.EXECUTING:
            assert out.linear == 0.0 and out.angular == 0.0
            return pose, t, reports, vmax
        if not blocked:
            yaw = pose.yaw + out.angular * DT
            pose = Pose2D(pose.x + out.linear * DT * math.cos(pose.yaw), pose.y + out.linear * DT * math.sin(pose.yaw),
                          wrap_angle(yaw))
        t += DT
    raise AssertionError("motion did not end")


@settings(max_examples=40, deadline=None)
@given(x=st.floats(-5, 5), y=st.floats(-5, 5), yaw=st.floats(-math.pi, math.pi))
def test_forward_goes_quarter_metre_along_heading(x, y, yaw):
    ctl = BaseController()
    start = Pose2D(x, y, yaw)
    ctl.on_odom(start, 0.0)
    out = ctl.command(Action.FORWARD, 7, now=0.0, stamp=0.0)
    assert out.reports[0].state == MotionStatus.EXECUTING and out.linear > 0
    pose, t, reports, vmax = drive(ctl, start, 0.0)
    assert reports[-1].state == MotionStatus.SUCCEEDED and reports[-1].sequence == 7
    assert math.hypot(pose.x - x, pose.y - y) == pytest.approx(0.25, abs=0.02)
    assert abs(wrap_angle(pose.yaw - yaw)) < 0.02
    assert vmax <= ctl.params.max_linear_speed + 1e-9


@pytest.mark.parametrize("action,sign", [(Action.ROTATE_LEFT, 1), (Action.ROTATE_RIGHT, -1)])
@pytest.mark.parametrize("yaw0", [0.0, 3.1, -3.1])
def test_rotations_turn_fifteen_degrees(action, sign, yaw0):
    ctl = BaseController()
    start = Pose2D(1.0, 2.0, yaw0)
    ctl.on_odom(start, 0.0)
    ctl.command(action, 1, now=0.0)
    pose, _, reports, vmax = drive(ctl, start, 0.0)
    assert reports[-1].state == MotionStatus.SUCCEEDED
    assert wrap_angle(pose.yaw - yaw0) == pytest.approx(sign * math.radians(15), abs=0.03)
    assert (pose.x, pose.y) == (1.0, 2.0) and vmax == 0.0


def test_stop_preempts_with_zero_velocity():
    ctl = BaseController()
    ctl.on_odom(Pose2D(0, 0, 0), 0.0)
    assert ctl.command(Action.FORWARD, 1, now=0.0).linear > 0
    out = ctl.command(Action.STOP, 2, now=0.1)
    assert (out.linear, out.angular) == (0.0, 0.0)
    states = [(r.sequence, r.state) for r in out.reports]
    assert states == [(1, MotionStatus.ABORTED), (2, MotionStatus.SUCCEEDED)]
    assert ctl.update(0.2).linear == 0.0


def test_stale_odometry_aborts_and_zeroes():
    ctl = BaseController()
    ctl.on_odom(Pose2D(0, 0, 0), 0.0)
    ctl.command(Action.FORWARD, 1, now=0.0)
    out = ctl.update(0.4)
    assert out.linear > 0
    out = ctl.update(0.6)  # no odometry since t=0, odom_timeout 0.5
    assert (out.linear, out.angular) == (0.0, 0.0)
    assert out.report.state == MotionStatus.ABORTED and "stale odometry" in out.report.message


def test_command_without_or_with_stale_odometry_refused():
    ctl = BaseController()
    out = ctl.command(Action.ROTATE_LEFT, 1, now=0.0)
    assert out.report.state == MotionStatus.ABORTED and "no odometry" in out.report.message and out.angular == 0.0
    ctl.on_odom(Pose2D(0, 0, 0), 0.0)
    out = ctl.command(Action.ROTATE_LEFT, 2, now=1.0)
    assert out.report.state == MotionStatus.ABORTED and "stale odometry" in out.report.message


def test_stale_command_refused():
    ctl = BaseController()
    ctl.on_odom(Pose2D(0, 0, 0), 5.0)
    out = ctl.command(Action.FORWARD, 3, now=5.0, stamp=4.0)
    assert out.report.state == MotionStatus.ABORTED and "stale command" in out.report.message
    assert out.linear == 0.0 and ctl.state == MotionStatus.ABORTED


def test_blocked_base_times_out():
    # frozen-odometry detection off (1 m): the action timeout ends it
    ctl = BaseController(BaseControllerParams(action_timeout=1.0, frozen_odom_distance=1.0))
    ctl.on_odom(Pose2D(0, 0, 0), 0.0)
    ctl.command(Action.FORWARD, 1, now=0.0)
    _, t, reports, _ = drive(ctl, Pose2D(0, 0, 0), 0.0, blocked=True)
    assert reports[-1].state == MotionStatus.ABORTED and "blocked" in reports[-1].message
    assert 1.0 <= t <= 1.1
    # by default a base whose odometry does not move is found much earlier
    ctl = BaseController()
    ctl.on_odom(Pose2D(0, 0, 0), 0.0)
    ctl.command(Action.FORWARD, 1, now=0.0)
    _, t, reports, _ = drive(ctl, Pose2D(0, 0, 0), 0.0, blocked=True)
    assert reports[-1].state == MotionStatus.ABORTED and "frozen" in reports[-1].message and t < 0.6


def test_new_motion_preempts_running_one():
    ctl = BaseController()
    ctl.on_odom(Pose2D(0, 0, 0), 0.0)
    ctl.command(Action.FORWARD, 1, now=0.0)
    out = ctl.command(Action.ROTATE_RIGHT, 2, now=0.1)
    assert [(r.sequence, r.state) for r in out.reports] == [(1, MotionStatus.ABORTED), (2, MotionStatus.EXECUTING)]
    assert out.linear == 0.0 and out.angular < 0


def test_idle_outputs_zero():
    ctl = BaseController()
    assert ctl.state == MotionStatus.IDLE
    out = ctl.update(0.0)
    assert (out.linear, out.angular, out.reports) == (0.0, 0.0, [])


@pytest.mark.parametrize("kw", [dict(max_linear_speed=0), dict(odom_timeout=-1),
                                dict(min_linear_speed=1.0, max_linear_speed=0.5), dict(angle_tolerance=float("inf"))])
def test_params_validated(kw):
    with pytest.raises(UserError):
        BaseControllerParams(**kw)
    with pytest.raises(UserError, match="unknown"):
        BaseControllerParams.from_dict({"speed": 1})


def test_non_finite_odometry_is_ignored_and_goes_stale():
    ctl = BaseController()
    assert ctl.on_odom(Pose2D(0, 0, 0), 0.0)
    ctl.command(Action.ROTATE_LEFT, 1, now=0.0)
    assert not ctl.on_odom(Pose2D(0, 0, float("nan")), 0.3)
    out = ctl.update(0.4)
    assert math.isfinite(out.angular) and 0 < out.angular <= ctl.params.max_angular_speed
    out = ctl.update(0.6)
    assert out.report.state == MotionStatus.ABORTED and (out.linear, out.angular) == (0.0, 0.0)
