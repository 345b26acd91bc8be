"""O4ANavigator core (o4a_nav/nav/navigator.py): decision rule, memory, goals, ablations."""
import numpy as np
import pytest
import torch

from o4a_nav.errors import ImageFormatError, ModelLoadError, UserError
from o4a_nav.nav.navigator import Decision, NavigatorParams, O4ANavigator
from o4a_nav.types import Action
from test_nav_doubles import GridModel, grid_apply, grid_obs

ALL = {Action.FORWARD, Action.ROTATE_LEFT, Action.ROTATE_RIGHT}


def run_episode(nav, start, goal, blocked=frozenset(), max_iter=200):
    nav.set_goal(*grid_obs(*goal))
    s = start
    trace = []
    for _ in range(max_iter):
        free = set(ALL)
        if grid_apply(s, 1, blocked) == s:
            free.discard(Action.FORWARD)
        d = nav.step(*grid_obs(*s), free)
        trace.append((s, d))
        if d.action == Action.STOP:
            return s, d, trace
        s = grid_apply(s, int(d.action), blocked)
    return s, None, trace


def test_reaches_goal_and_stops():
    nav = O4ANavigator(GridModel(), params=NavigatorParams(stop_threshold=0.5, repulsion_margin=1.5))
    assert nav.world == "grid"  # single world picked automatically
    s, d, trace = run_episode(nav, (0, 0, 0), (4, 3, 1))
    assert d is not None and d.reached and d.action == Action.STOP
    assert s[:2] == (4, 3)
    assert d.goal_distance < 0.5
    assert nav.forwards == 7 and nav.forwards + nav.rotations == len(trace) - 1


def test_decision_fields_and_candidates_follow_free_set():
    nav = O4ANavigator(GridModel(), params=NavigatorParams(stop_threshold=0.5, repulsion_margin=1.5))
    nav.set_goal(*grid_obs(3, 0, 0))
    d = nav.step(*grid_obs(0, 0, 0), {Action.ROTATE_LEFT, Action.ROTATE_RIGHT})
    assert isinstance(d, Decision)
    assert [c.action for c in d.candidates] == [Action.ROTATE_LEFT, Action.ROTATE_RIGHT]
    assert d.action in (Action.ROTATE_LEFT, Action.ROTATE_RIGHT)
    for a, pot, att, rep in d.candidates:
        assert pot == pytest.approx(att + rep)
    assert d.goal_distance == pytest.approx(3.0)
    assert d.latency_s > 0 and d.step == 1
    d2 = nav.step(*grid_obs(0, 0, 0), ALL)
    assert d2.action == Action.FORWARD  # p+ 2 after FORWARD vs 3 for rotations
    assert d2.step == 2


def test_forward_never_chosen_when_not_free():
    nav = O4ANavigator(GridModel(), params=NavigatorParams(stop_threshold=0.5, repulsion_margin=1.5))
    nav.set_goal(*grid_obs(5, 0, 0))
    for _ in range(20):
        d = nav.step(*grid_obs(0, 0, 0), {Action.ROTATE_LEFT, Action.ROTATE_RIGHT})
        assert d.action != Action.FORWARD


def test_no_free_motion_gives_stop_not_reached():
    nav = O4ANavigator(GridModel(), params=NavigatorParams(stop_threshold=0.5, repulsion_margin=1.5))
    nav.set_goal(*grid_obs(5, 0, 0))
    d = nav.step(*grid_obs(0, 0, 0), set())
    assert d.action == Action.STOP and not d.reached and not d.failed
    assert "no collision-free" in d.reason


def test_repulsor_escapes_dead_end_that_traps_greedy_rule():
    # wall at x = 2 between the robot and the goal, open at y = 4; greedy p+ oscillates
    wall = frozenset((2, y) for y in range(-10, 4))
    params = NavigatorParams(stop_threshold=0.5, repulsion_margin=1.5)
    s, d, _ = run_episode(O4ANavigator(GridModel(), params=params), (0, 0, 0), (4, 0, 0), wall, 300)
    assert d is not None and d.reached
    no_rep = NavigatorParams(stop_threshold=0.5, use_repulsor=False)
    s2, d2, _ = run_episode(O4ANavigator(GridModel(), params=no_rep), (0, 0, 0), (4, 0, 0), wall, 300)
    assert d2 is None  # never reaches it within the budget


def test_new_goal_clears_memory_and_counters():
    nav = O4ANavigator(GridModel(), params=NavigatorParams(stop_threshold=0.5, repulsion_margin=1.5))
    nav.set_goal(*grid_obs(5, 5, 0))
    for _ in range(3):
        nav.step(*grid_obs(0, 0, 0), ALL)
    assert nav.memory_len == 3 and nav.steps == 3
    nav.set_goal(*grid_obs(-5, 0, 0))
    assert nav.memory_len == 0 and nav.steps == 0 and nav.forwards == 0 and nav.rotations == 0


def test_memory_is_a_bounded_ring():
    nav = O4ANavigator(GridModel(), params=NavigatorParams(stop_threshold=0.5, memory_size=4))
    nav.set_goal(*grid_obs(50, 0, 0))
    for _ in range(10):
        nav.step(*grid_obs(0, 0, 0), ALL)
    assert nav.memory_len == 4


def test_repulsion_grows_for_revisited_waypoints():
    nav = O4ANavigator(GridModel(), params=NavigatorParams(stop_threshold=0.5, repulsion_margin=1.5))
    nav.set_goal(*grid_obs(5, 0, 0))
    d1 = nav.step(*grid_obs(0, 0, 0), {Action.FORWARD})
    d2 = nav.step(*grid_obs(0, 0, 0), {Action.FORWARD})
    assert d1.candidates[0].repulsion == 0.0
    assert d2.candidates[0].repulsion == pytest.approx(1.5)  # m_r - 0


def test_no_attractor_ablation_ignores_goal_potential():
    model = GridModel()
    nav = O4ANavigator(model, params=NavigatorParams(stop_threshold=0.5, use_attractor=False))
    nav.set_goal(*grid_obs(-5, 0, 0))
    d = nav.step(*grid_obs(0, 0, 0), ALL)
    assert all(c.attraction == 0.0 for c in d.candidates)
    assert d.action == Action.FORWARD  # tie -> first candidate, although the goal is behind
    assert model.calls["geodesic"] == 0


def test_anti_oscillation_drops_undoing_rotation():
    nav = O4ANavigator(GridModel(), params=NavigatorParams(stop_threshold=0.5, anti_oscillation=True))
    nav.set_goal(*grid_obs(5, 0, 0))
    d = nav.step(*grid_obs(0, 0, 0), {Action.ROTATE_RIGHT})
    assert d.action == Action.ROTATE_RIGHT
    d = nav.step(*grid_obs(0, 0, 3), {Action.ROTATE_LEFT, Action.ROTATE_RIGHT})
    assert [c.action for c in d.candidates] == [Action.ROTATE_RIGHT]
    # the undoing rotation stays available when it is the only free motion
    d = nav.step(*grid_obs(0, 0, 2), {Action.ROTATE_LEFT})
    assert d.action == Action.ROTATE_LEFT


def test_lookahead_turns_towards_the_goal_the_short_way():
    # goal on the robot's right: the greedy rule cannot tell LEFT from RIGHT (p+ ignores the
    # heading) and takes the tie, LEFT, three times; "rotate k then FORWARD" plans see that
    # one RIGHT leads to a step towards the goal
    greedy = O4ANavigator(GridModel(), params=NavigatorParams(stop_threshold=0.5, repulsion_margin=1.5))
    s, d, trace = run_episode(greedy, (0, 0, 0), (0, -3, 3))
    assert d is not None and d.reached and greedy.rotations == 3
    look = O4ANavigator(GridModel(), params=NavigatorParams(stop_threshold=0.5, repulsion_margin=1.5,
                                                            lookahead_rotations=2))
    s, d, trace = run_episode(look, (0, 0, 0), (0, -3, 3))
    assert d is not None and d.reached and s[:2] == (0, -3)
    assert [t[1].action for t in trace] == [Action.ROTATE_RIGHT] + [Action.FORWARD] * 3 + [Action.STOP]
    # one candidate per first action, scored by its best plan: RIGHT then FORWARD -> p+ 2
    first = trace[0][1]
    assert [c.action for c in first.candidates] == [Action.FORWARD, Action.ROTATE_LEFT, Action.ROTATE_RIGHT]
    scores = {c.action: c.potential for c in first.candidates}
    assert scores[Action.ROTATE_RIGHT] == pytest.approx(2.0)
    assert scores[Action.FORWARD] == pytest.approx(4.0)
    assert scores[Action.ROTATE_LEFT] > 2.0


def test_lookahead_respects_free_set_and_escapes_dead_end():
    params = NavigatorParams(stop_threshold=0.5, repulsion_margin=1.5, lookahead_rotations=2)
    nav = O4ANavigator(GridModel(), params=params)
    nav.set_goal(*grid_obs(5, 0, 0))
    for _ in range(20):  # the best plan starts with FORWARD, but FORWARD is not free
        d = nav.step(*grid_obs(0, 0, 0), {Action.ROTATE_LEFT, Action.ROTATE_RIGHT})
        assert d.action in (Action.ROTATE_LEFT, Action.ROTATE_RIGHT)
    wall = frozenset((2, y) for y in range(-10, 4))
    s, d, _ = run_episode(O4ANavigator(GridModel(), params=params), (0, 0, 0), (4, 0, 0), wall, 300)
    assert d is not None and d.reached and s[:2] == (4, 0)


def test_max_steps_fails():
    nav = O4ANavigator(GridModel(), params=NavigatorParams(stop_threshold=0.5, max_steps=3))
    nav.set_goal(*grid_obs(50, 0, 0))
    actions = [nav.step(*grid_obs(0, 0, 0), ALL) for _ in range(4)]
    assert [d.action == Action.STOP for d in actions] == [False, False, False, True]
    assert actions[-1].failed and not actions[-1].reached


def test_stop_on_connected():
    nav = O4ANavigator(GridModel(), params=NavigatorParams(stop_threshold=0.0, stop_on_connected=True))
    nav.set_goal(*grid_obs(0, 0, 0))
    assert nav.step(*grid_obs(0, 0, 0), ALL).reached
    assert not nav.step(*grid_obs(1, 0, 0), ALL).reached


def test_bad_goal_keeps_current_goal():
    nav = O4ANavigator(GridModel(), params=NavigatorParams(stop_threshold=0.5, repulsion_margin=1.5))
    nav.set_goal(*grid_obs(2, 0, 0))
    front, rear = grid_obs(0, 0, 0)
    with pytest.raises(ImageFormatError, match="differ in size"):
        nav.set_goal(front, rear[:48])
    with pytest.raises(ImageFormatError, match="empty"):
        nav.set_goal(np.zeros((0, 0, 3), np.uint8), rear)
    with pytest.raises(ImageFormatError):
        nav.set_goal(front.astype(np.float32), rear)
    assert nav.goal_distance(*grid_obs(0, 0, 0)) == pytest.approx(2.0)


def test_step_without_goal_and_world_checks():
    nav = O4ANavigator(GridModel())
    with pytest.raises(UserError, match="no goal"):
        nav.step(*grid_obs(0, 0, 0), ALL)
    with pytest.raises(UserError, match="no p\\+ head"):
        O4ANavigator(GridModel(), world="elsewhere")
    m = GridModel()
    m.worlds = ["a", "b"]
    with pytest.raises(UserError, match="several worlds"):
        O4ANavigator(m)
    m.worlds = []
    with pytest.raises(ModelLoadError):
        O4ANavigator(m)
    O4ANavigator(m, params=NavigatorParams(use_attractor=False))  # fine without p+


@pytest.mark.parametrize("kw", [dict(stop_threshold=-1), dict(memory_size=0), dict(max_steps=0),
                                dict(repulsion_margin=float("nan")), dict(lookahead_rotations=-1),
                                dict(lookahead_rotations=25)])
def test_params_validated(kw):
    with pytest.raises(UserError):
        NavigatorParams(**kw)
    with pytest.raises(UserError, match="unknown"):
        NavigatorParams.from_dict({"stop_treshold": 1.0})


def test_with_real_model_api(tmp_path):
    """The real O4AModel (random weights, saved and loaded) through the navigator."""
    from o4a_nav.learning.config import ModelConfig
    from o4a_nav.learning.model_io import O4AModel, load_model, save_model

    torch.manual_seed(0)
    save_model(O4AModel(ModelConfig(), ["w0"]), tmp_path / "m")
    model = load_model(tmp_path / "m")
    nav = O4ANavigator(model, params=NavigatorParams(stop_threshold=0.0))
    rng = np.random.default_rng(0)
    goal = rng.integers(0, 255, (2, 120, 160, 3), dtype=np.uint8)  # any size is converted
    nav.set_goal(goal[0], goal[1])
    obs = rng.integers(0, 255, (2, 96, 96, 3), dtype=np.uint8)
    d1 = nav.step(obs[0], obs[1], ALL)
    assert d1.action in ALL and len(d1.candidates) == 3
    assert all(c.attraction >= 0 for c in d1.candidates)
    d2 = nav.step(obs[0], obs[1], ALL)
    assert sum(c.repulsion for c in d2.candidates) > 0
    assert np.isfinite(d2.goal_distance)
    assert nav.step(goal[0], goal[1], ALL).goal_distance == pytest.approx(0.0, abs=1e-3)
