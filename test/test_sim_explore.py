"""Exploration policy core (ROS-free) and coverage."""
import numpy as np
import pytest

from o4a_nav.errors import UserError
from o4a_nav.sim import SimRobot, load_world
from o4a_nav.sim.collector import coverage, explore
from o4a_nav.sim.explore import ExplorationPolicy, ExplorerParams
from o4a_nav.types import Action

ALL = {Action.FORWARD, Action.ROTATE_LEFT, Action.ROTATE_RIGHT}
TURNS = {Action.ROTATE_LEFT, Action.ROTATE_RIGHT}


def test_never_forward_when_blocked_and_stop_ends_trajectories():
    p = ExplorationPolicy(seed=0, params=ExplorerParams(trajectory_length=50))
    rng = np.random.default_rng(1)
    acts = []
    for i in range(200):
        free = ALL if rng.random() < 0.7 else TURNS
        a = p.act(free)
        assert a in free or a == Action.STOP
        acts.append(a)
        if a == Action.STOP:
            p.reset()
    assert [i for i, a in enumerate(acts) if a == Action.STOP] == [49, 99, 149, 199]


def test_persistence_long_forward_runs_and_turn_bursts_keep_direction():
    p = ExplorationPolicy(seed=2, params=ExplorerParams(trajectory_length=100000, forward_prob=0.9))
    acts = [p.act(ALL) for _ in range(5000)]
    runs, cur = [], 0
    for a in acts:
        if a == Action.FORWARD:
            cur += 1
        elif cur:
            runs.append(cur)
            cur = 0
    assert np.mean(runs) == pytest.approx(10.0, rel=0.2)      # 1 / (1 - forward_prob)
    # no immediate left-right reversal inside a burst
    flips = sum(1 for a, b in zip(acts, acts[1:]) if {a, b} == TURNS)
    assert flips < 0.02 * len(acts)
    # blocked: keeps turning one way until forward is free
    p2 = ExplorationPolicy(seed=3)
    first = p2.act(TURNS)
    assert all(p2.act(TURNS) == first for _ in range(20))


def test_same_seed_same_decisions():
    seq = [ALL, TURNS, ALL, ALL, TURNS] * 40
    a = ExplorationPolicy(seed=5)
    b = ExplorationPolicy(seed=5)
    c = ExplorationPolicy(seed=6)
    ra, rb, rc = ([x.act(f) for f in seq] for x in (a, b, c))
    assert ra == rb and ra != rc


def test_blocked_turns_away_and_does_not_count_as_a_step():
    p = ExplorationPolicy(seed=0)
    p.act(ALL)
    n = p.step_in_trajectory
    p.blocked()
    assert p.step_in_trajectory == n - 1
    assert p.act(ALL) in TURNS


def test_bad_params():
    with pytest.raises(UserError, match="forward_prob"):
        ExplorationPolicy(params=ExplorerParams(forward_prob=1.0))
    with pytest.raises(UserError, match="trajectory_length"):
        ExplorationPolicy(params=ExplorerParams(trajectory_length=1))


def test_exploration_covers_a_world_without_collisions():
    w = load_world("four_rooms")
    r = SimRobot(w, seed=0, render=False)
    frames = list(explore(r, 3000, seed=0, render=False))
    xy = np.array([(f.pose.x, f.pose.y) for f in frames])
    assert all(not w.collides(x, y) for x, y in xy[::10])
    assert coverage(w, xy) > 0.6
    assert sum(f.action == Action.STOP for f in frames) == 6
