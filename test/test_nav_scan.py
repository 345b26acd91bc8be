"""stuck_scan: the navigator's look-around with real views (front and rear camera) after
a run of rotations. Unit tests on a 24-heading grid double (15 deg per rotation, the
rear camera sees the heading turned by 180 deg, as on the robot and in the simulator)."""
import math

import numpy as np
import pytest
import torch

from o4a_nav.errors import UserError
from o4a_nav.nav.navigator import HEADINGS, NavigatorParams, O4ANavigator
from o4a_nav.types import Action

R = 0.5 / math.sin(math.pi / HEADINGS)  # one 15 deg rotation moves the code by 1, like a step


def obs(x: int, y: int, k: int):
    """Front image encodes (x, y, heading k); the rear image the same place at k + 12."""
    f = np.zeros((96, 96, 3), np.uint8)
    f[..., 0], f[..., 1], f[..., 2] = x + 100, y + 100, k % HEADINGS
    r = f.copy()
    r[..., 2] = (k + HEADINGS // 2) % HEADINGS
    return f, r


class Grid24:
    """embed -> (x, y, R cos t, R sin t); FORWARD moves one cell along an axis-aligned
    heading (k multiple of 6) and stays put otherwise; p+ = |dx| + |dy|."""

    worlds = ["grid"]

    def embed(self, front, rear):
        f = torch.as_tensor(np.asarray(front))
        if f.ndim == 3:
            f = f[None]
        t = f[:, 0, 0, 2].float() * (2 * math.pi / HEADINGS)
        return torch.stack([f[:, 0, 0, 0].float() - 100, f[:, 0, 0, 1].float() - 100,
                            R * torch.cos(t), R * torch.sin(t)], 1)

    def forward_kinematics(self, x, a):
        a = torch.as_tensor(a).reshape(-1).expand(x.shape[0])
        out = x.clone()
        t = torch.atan2(x[:, 3], x[:, 2])
        k = torch.round(t / (2 * math.pi / HEADINGS)).long() % HEADINGS
        fwd = (a == int(Action.FORWARD)) & (k % 6 == 0)
        out[fwd, 0] += torch.round(torch.cos(t[fwd]))
        out[fwd, 1] += torch.round(torch.sin(t[fwd]))
        for val, sign in ((int(Action.ROTATE_LEFT), 1.0), (int(Action.ROTATE_RIGHT), -1.0)):
            m = a == val
            ang = t[m] + sign * 2 * math.pi / HEADINGS
            out[m, 2], out[m, 3] = R * torch.cos(ang), R * torch.sin(ang)
        return out

    def geodesic(self, x_s, x_g, world):
        return (x_s[:, :2] - x_g[:, :2]).abs().sum(1)


def drive(nav, state, free_fn, max_steps=80):
    """Executes the navigator's actions on a grid robot; returns (actions, decisions, final state)."""
    x, y, k = state
    actions, decisions = [], []
    for _ in range(max_steps):
        d = nav.step(*obs(x, y, k), free_fn(x, y, k))
        actions.append(d.action)
        decisions.append(d)
        if d.action == Action.STOP:
            break
        if d.action == Action.FORWARD:
            t = k * 2 * math.pi / HEADINGS
            x, y = x + round(math.cos(t)), y + round(math.sin(t))
        else:
            k = (k + (1 if d.action == Action.ROTATE_LEFT else -1)) % HEADINGS
    return actions, decisions, (x, y, k)


def only_north(x, y, k):
    """FORWARD is free only facing +y (heading 6): every other way is walled off."""
    return {Action.FORWARD, Action.ROTATE_LEFT, Action.ROTATE_RIGHT} if k == 6 else {
        Action.ROTATE_LEFT, Action.ROTATE_RIGHT}


def test_scan_after_a_rotation_run_looks_around_then_drives_to_the_best_heading():
    nav = O4ANavigator(Grid24(), "grid", NavigatorParams(stuck_scan=3))
    nav.set_goal(*obs(0, 6, 6))
    actions, decisions, final = drive(nav, (0, 0, 18), only_north)  # facing -y, goal behind
    assert actions[-1] == Action.STOP and decisions[-1].reached and final == (0, 3, 6)
    first_fwd = actions.index(Action.FORWARD)
    rotations = actions[:first_fwd]
    assert all(a in (Action.ROTATE_LEFT, Action.ROTATE_RIGHT) for a in rotations)
    # 3 rotations of the plain rule, then the scan's 12 LEFT turns, then the short way to heading 6
    assert rotations[3:15] == [Action.ROTATE_LEFT] * 12
    heading = (18 + sum(1 if a == Action.ROTATE_LEFT else -1 for a in rotations)) % HEADINGS
    assert heading == 6
    assert len(rotations) <= 3 + 12 + 12
    assert actions[first_fwd:] == [Action.FORWARD] * 3 + [Action.STOP]


def test_rear_view_of_the_goal_stops_during_a_scan():
    # at the goal place facing the other way: the front view is 2R from the goal code
    # (> stop_threshold); the rear camera sees the goal view.
    nav = O4ANavigator(Grid24(), "grid", NavigatorParams(stuck_scan=1))
    nav.set_goal(*obs(2, 2, 0))
    actions, decisions, final = drive(nav, (2, 2, 12), lambda *_: {Action.ROTATE_LEFT, Action.ROTATE_RIGHT})
    assert actions[-1] == Action.STOP and decisions[-1].reached
    assert "rear view" in decisions[-1].reason
    assert len(actions) == 2   # one rotation of the plain rule, then the scan's first look


def test_scan_never_drives_a_refused_forward_and_gives_back_to_the_plain_rule():
    blocked = {Action.ROTATE_LEFT, Action.ROTATE_RIGHT}
    nav = O4ANavigator(Grid24(), "grid", NavigatorParams(stuck_scan=2, max_steps=60))
    nav.set_goal(*obs(0, 6, 6))
    actions, decisions, _ = drive(nav, (0, 0, 0), lambda *_: blocked, max_steps=80)
    assert Action.FORWARD not in actions
    assert decisions[-1].failed   # max_steps, never a FORWARD into a wall


def test_scan_turns_only_where_a_free_allows():
    # only RIGHT turns are free: the scan cannot look around LEFT and leaves it to the rule
    nav = O4ANavigator(Grid24(), "grid", NavigatorParams(stuck_scan=2, max_steps=40))
    nav.set_goal(*obs(0, 6, 6))
    actions, decisions, _ = drive(nav, (0, 0, 18), lambda *_: {Action.ROTATE_RIGHT}, max_steps=50)
    assert set(actions[:-1]) == {Action.ROTATE_RIGHT} and decisions[-1].failed


def test_new_goal_ends_a_scan():
    nav = O4ANavigator(Grid24(), "grid", NavigatorParams(stuck_scan=1))
    nav.set_goal(*obs(0, 6, 6))
    drive(nav, (0, 0, 18), only_north, max_steps=4)   # inside the scan
    nav.set_goal(*obs(5, 0, 0))
    d = nav.step(*obs(0, 0, 0), {Action.FORWARD, Action.ROTATE_LEFT, Action.ROTATE_RIGHT})
    assert d.action == Action.FORWARD   # the plain rule again: facing the new goal


@pytest.mark.parametrize("value", [-1, 501])
def test_stuck_scan_validated(value):
    with pytest.raises(UserError, match="stuck_scan"):
        NavigatorParams(stuck_scan=value)
