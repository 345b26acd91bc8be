"""NavigatorRuntime (o4a_nav/nav/runtime.py): stop-and-go, staleness, safety gate, goals."""
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from o4a_nav.nav import runtime as rt
from o4a_nav.nav.collision import CollisionChecker
from o4a_nav.nav.navigator import NavigatorParams, O4ANavigator
from o4a_nav.types import Action, MotionStatus, NavState, ScanData
from test_nav_doubles import GridModel, grid_obs

ALL = {Action.FORWARD, Action.ROTATE_LEFT, Action.ROTATE_RIGHT}


def clear_scan(t, n=91):
    return ScanData(np.full(n, np.inf, np.float32), -math.pi / 2, math.pi / (n - 1), 0.05, 10.0, stamp=t)


def blocked_scan(t, n=91):
    s = clear_scan(t, n)
    s.ranges[n // 2] = 0.3
    return s


class Harness:
    def __init__(self, model=True, **params):
        self.actions, self.statuses, self.done, self.feedback = [], [], [], []
        nav = O4ANavigator(GridModel(), params=NavigatorParams(stop_threshold=0.5, repulsion_margin=1.5)) \
            if model else None
        self.rt = rt.NavigatorRuntime(
            nav, CollisionChecker(), rt.RuntimeParams(**params), model_error="" if model else "model dir missing",
            publish_action=lambda a, s: self.actions.append((a, s)),
            publish_status=lambda s: self.statuses.append((s.state, list(s.stale_inputs), s.message)),
            on_feedback=lambda gid, s: self.feedback.append((gid, s.step)),
            on_goal_done=lambda gid, r: self.done.append((gid, r)))

    def observe(self, t, state=(0, 0, 0), scan=None, free=ALL):
        f, r = grid_obs(*state)
        self.rt.on_scan(scan if scan is not None else clear_scan(t), t)
        self.rt.on_free_actions(free, t, t)
        self.rt.on_image("front", f, t, t)
        self.rt.on_image("rear", r, t, t)

    def start(self, goal, t, state=(0, 0, 0), goal_id=None, **kw):
        """Inputs streaming, then the goal: the first decision is taken at once."""
        self.observe(t, state, **kw)
        ok, msg = self.rt.set_goal(*grid_obs(*goal), now=t, goal_id=goal_id)
        assert ok, msg

    def finish_motion(self, t, state=MotionStatus.SUCCEEDED):
        self.rt.on_motion_state(self.actions[-1][1], state, t, "", t)


def test_stop_and_go_waits_for_motion_and_fresh_images():
    h = Harness()
    h.observe(0.05)
    assert h.actions == []  # no goal, no motion
    h.start((5, 0, 0), 0.1, goal_id="g1")
    assert h.actions == [(Action.FORWARD, 1)]
    assert h.rt.status.state == NavState.WAITING_MOTION
    h.observe(0.2, (1, 0, 0))  # fresh images but the motion has not finished
    assert len(h.actions) == 1
    h.finish_motion(0.3)
    assert len(h.actions) == 1  # images of 0.2 predate the end of the motion
    h.observe(0.4, (1, 0, 0))
    assert h.actions[-1] == (Action.FORWARD, 2)
    h.finish_motion(0.5)
    h.observe(0.6, (1, 0, 0))
    h.rt.on_image("front", grid_obs(1, 0, 0)[0], 0.6, 0.6)  # same stamp again: no second decision
    assert len(h.actions) == 3


def test_reaches_goal_reports_success():
    h = Harness()
    t, s = 0.1, (0, 0, 0)
    h.start((2, 0, 0), t, s, goal_id="g")
    for _ in range(5):
        if t > 0.1:
            h.observe(t, s)
        a = h.actions[-1][0]
        if a == Action.STOP:
            break
        s = (s[0] + 1, s[1], s[2]) if a == Action.FORWARD else s
        h.finish_motion(t + 0.05)
        t += 0.1
    assert h.actions[-1][0] == Action.STOP
    gid, res = h.done[-1]
    assert gid == "g" and res.success and res.forwards == 2 and res.steps == 3
    assert h.rt.status.state == NavState.REACHED
    assert [f[1] for f in h.feedback] == [1, 2, 3]


def test_stale_input_stops_names_it_and_resumes():
    h = Harness(stale_timeout=0.5)
    h.start((5, 0, 0), 1.0)
    assert h.actions[-1][0] == Action.FORWARD
    h.finish_motion(1.1)
    # images keep coming, the scan stops at 1.0
    f, r = grid_obs(1, 0, 0)
    h.rt.on_free_actions(ALL, 1.6, 1.6)
    h.rt.on_image("front", f, 1.6, 1.6)
    h.rt.on_image("rear", r, 1.6, 1.6)
    assert h.actions[-1][0] == Action.STOP
    assert h.rt.status.state == NavState.STALE_INPUT and h.rt.status.stale_inputs == ["scan"]
    n = len(h.actions)
    h.rt.tick(1.7)
    assert len(h.actions) == n  # STOP once, not a flood
    h.observe(1.8, (1, 0, 0))
    assert h.rt.status.stale_inputs == [] and h.actions[-1][0] == Action.FORWARD


def test_missing_inputs_are_stale():
    h = Harness()
    h.rt.set_goal(*grid_obs(5, 0, 0), now=0.0)
    h.rt.tick(0.1)
    assert h.actions == [(Action.STOP, 1)]
    assert set(h.rt.status.stale_inputs) == {"front_camera", "rear_camera", "scan", "free_actions"}


def test_no_model_refuses_goals_and_never_moves():
    h = Harness(model=False)
    ok, msg = h.rt.set_goal(*grid_obs(5, 0, 0), now=0.0)
    assert not ok and "model dir missing" in msg
    h.observe(0.1)
    assert h.actions == [] and h.rt.status.state == NavState.NO_MODEL


def test_bad_goal_rejected_current_goal_kept():
    h = Harness()
    h.rt.set_goal(*grid_obs(5, 0, 0), now=0.0, goal_id="g1")
    f, r = grid_obs(0, 0, 0)
    ok, msg = h.rt.set_goal(f, r[:50], now=0.1, goal_id="g2")
    assert not ok and "differ in size" in msg
    ok, msg = h.rt.set_goal(np.zeros((0, 0, 3), np.uint8), r, now=0.1, goal_id="g3")
    assert not ok and "empty" in msg
    assert h.rt.goal_id == "g1" and h.rt.active and h.done == []
    assert h.rt.nav.goal_distance(*grid_obs(5, 0, 0)) == 0.0


def test_new_goal_preempts_and_clears_memory():
    h = Harness()
    h.start((5, 0, 0), 0.1, goal_id="g1")
    assert h.rt.nav.memory_len == 1
    ok, _ = h.rt.set_goal(*grid_obs(-5, 0, 0), now=0.2, goal_id="g2")
    assert ok
    assert h.done[-1][0] == "g1" and not h.done[-1][1].success and "pre-empted" in h.done[-1][1].reason
    assert h.rt.nav.memory_len == 0 and h.rt.goal_id == "g2" and h.rt.active


def test_cancel_publishes_stop():
    h = Harness()
    h.start((5, 0, 0), 0.1, goal_id="g1")
    h.rt.cancel("other")
    assert h.rt.active
    h.rt.cancel("g1")
    assert h.actions[-1][0] == Action.STOP
    assert h.done[-1][1].reason == "canceled" and not h.rt.active


def test_motion_timeout_stops_and_goes_on():
    h = Harness(motion_timeout=1.0)
    h.start((5, 0, 0), 0.1)
    for t in (0.3, 0.5, 0.7, 0.9, 1.1):
        h.observe(t, (1, 0, 0))
    assert [a for a, _ in h.actions] == [Action.FORWARD]
    h.observe(1.3, (1, 0, 0))  # no MotionState for 1.2 s: STOP
    assert [a for a, _ in h.actions] == [Action.FORWARD, Action.STOP]
    h.observe(1.5, (1, 0, 0))  # then decide again on fresh data
    assert [a for a, _ in h.actions] == [Action.FORWARD, Action.STOP, Action.FORWARD]


def test_free_actions_topic_and_scan_gate_both_restrict():
    h = Harness()
    h.start((5, 0, 0), 0.1, free={Action.ROTATE_LEFT, Action.ROTATE_RIGHT})  # topic says blocked
    assert h.actions[-1][0] != Action.FORWARD
    h.finish_motion(0.15)
    h.observe(0.2, scan=blocked_scan(0.2))  # topic says free, the scan says blocked
    assert h.actions[-1][0] != Action.FORWARD


def test_runtime_params_validated():
    with pytest.raises(Exception):
        rt.RuntimeParams(stale_timeout=0)
    with pytest.raises(Exception):
        rt.RuntimeParams(use_free_actions=False, use_scan_gate=False)


ray = st.one_of(st.floats(0.0, 2.0, allow_nan=False), st.just(math.inf), st.just(-math.inf), st.just(math.nan))


@settings(max_examples=150, deadline=None)
@given(ranges=st.lists(ray, min_size=1, max_size=60), angle_min=st.floats(-math.pi, 0.0),
       inc=st.floats(0.01, 0.2), goal_x=st.integers(1, 6), topic_free=st.booleans())
def test_property_forward_never_published_with_return_in_box(ranges, angle_min, inc, goal_x, topic_free):
    """Whatever the FreeActions topic says, FORWARD is not published while the latest scan
    has a valid return in the swept box."""
    h = Harness()
    scan = ScanData(np.asarray(ranges, np.float32), angle_min, inc, 0.05, 10.0, stamp=0.1)
    free = ALL if topic_free else {Action.ROTATE_LEFT}
    h.start((goal_x, 0, 0), 0.1, scan=scan, free=free)
    assert h.actions, "a decision was taken"
    a = h.actions[-1][0]
    valid = np.isfinite(scan.ranges) & (scan.ranges >= 0.05)
    r = np.where(valid, scan.ranges, 0.0)
    x, y = r * np.cos(scan.angles), r * np.sin(scan.angles)
    in_box = valid & (x > 0) & (x < 0.5) & (np.abs(y) < 0.2)
    if in_box.any():
        assert a != Action.FORWARD
    if not topic_free:
        assert a != Action.FORWARD


def test_unusable_images_show_in_the_stale_reason():
    h = Harness(stale_timeout=0.5)
    h.start((5, 0, 0), 1.0)
    h.finish_motion(1.05)
    f, r = grid_obs(1, 0, 0)
    h.rt.on_scan(clear_scan(1.6), 1.6)
    h.rt.on_free_actions(ALL, 1.6, 1.6)
    h.rt.on_image_error("front", "unsupported image encoding 'yuv422'", 1.6)
    h.rt.on_image("rear", r, 1.6, 1.6)
    assert h.rt.status.state == NavState.STALE_INPUT and h.rt.status.stale_inputs == ["front_camera"]
    assert "front_camera (unsupported image encoding 'yuv422')" in h.rt.status.message
    assert h.actions[-1][0] == Action.STOP


def test_model_failure_stops_without_crashing():
    h = Harness()
    h.start((5, 0, 0), 0.1)
    h.finish_motion(0.15)

    def broken(*a, **k):
        raise RuntimeError("boom")

    h.rt.nav.model.forward_kinematics = broken
    h.observe(0.2, (1, 0, 0))
    assert h.actions[-1][0] == Action.STOP and "decision failed" in h.rt.status.message
    h.rt.nav.model.embed = broken
    ok, msg = h.rt.set_goal(*grid_obs(3, 0, 0), now=0.3)
    assert not ok and "boom" in msg and h.rt.active
