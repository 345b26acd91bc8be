"""Unit tests of the benchmark pieces that need no simulator or model: episode sampling
and difficulty bins, metrics on hand-made outcomes, aggregation, tables and JSON."""
import json
import math

import numpy as np
import pytest

from o4a_nav.bench import episodes as E
from o4a_nav.bench import metrics as M
from o4a_nav.bench import report as R
from o4a_nav.types import Pose2D


class RectWorld:
    """Unit-test double: an empty rectangle, geodesic = euclidean distance."""

    def __init__(self, w, h):
        self.w, self.h = w, h
        self.calls = 0

    def sample_free_pose(self, rng):
        return Pose2D(float(rng.uniform(0, self.w)), float(rng.uniform(0, self.h)), float(rng.uniform(-math.pi, math.pi)))

    def geodesic(self, p, q):
        self.calls += 1
        return math.hypot(p[0] - q[0], p[1] - q[1])


@pytest.mark.parametrize("d,name", [(1.49, None), (1.5, "easy"), (2.99, "easy"), (3.0, "medium"), (4.99, "medium"),
                                    (5.0, "hard"), (9.99, "hard"), (10.0, "very_hard"), (55.0, "very_hard"),
                                    (math.inf, None), (math.nan, None)])
def test_difficulty_bins(d, name):
    assert E.difficulty_of(d) == name


def test_sampling_fills_bins_with_matching_distances_and_is_deterministic():
    world = RectWorld(16, 6)
    a = E.sample_episodes(world, "rect", 5, seed=3)
    b = E.sample_episodes(RectWorld(16, 6), "rect", 5, seed=3)
    c = E.sample_episodes(RectWorld(16, 6), "rect", 5, seed=4)
    assert not a.notes
    assert [e.to_dict() for e in a.episodes] == [e.to_dict() for e in b.episodes]
    assert [e.to_dict() for e in a.episodes] != [e.to_dict() for e in c.episodes]
    for name, lo, hi in E.DIFFICULTIES:
        eps = a.by_difficulty(name)
        assert len(eps) == 5 and [e.index for e in eps] == list(range(5))
        for e in eps:
            assert lo <= e.geodesic_m < hi
            assert e.geodesic_m == pytest.approx(math.hypot(e.start.x - e.goal.x, e.start.y - e.goal.y))
    # a different world name gives other episodes for the same seed
    d = E.sample_episodes(RectWorld(16, 6), "other", 5, seed=3)
    assert [e.to_dict()["start"] for e in d.episodes] != [e.to_dict()["start"] for e in a.episodes]


def test_world_too_small_for_a_bin_is_reported_not_raised():
    es = E.sample_episodes(RectWorld(3.5, 3.5), "tiny", 3, seed=0, max_tries=300)
    assert len(es.by_difficulty("easy")) == 3
    assert es.by_difficulty("very_hard") == [] and es.by_difficulty("hard") == []
    text = " ".join(es.notes)
    assert "very_hard" in text and "too small" in text and "tiny" in text
    assert es.tries == 300


def test_unreachable_pairs_are_never_episodes():
    class Split(RectWorld):
        def geodesic(self, p, q):
            return math.inf if (p[0] < 8) != (q[0] < 8) else super().geodesic(p, q)

    es = E.sample_episodes(Split(16, 4), "split", 4, seed=1)
    for e in es.episodes:
        assert (e.start.x < 8) == (e.goal.x < 8)


def _res(**kw):
    base = dict(policy="p", world="w", difficulty="easy", index=0, geodesic_m=2.0)
    base.update(kw)
    return M.EpisodeResult(**base)


def test_episode_metrics_on_hand_made_outcomes():
    ok = _res(stopped=True, success=True, soft_success=True, final_distance_m=0.5, path_length_m=4.0,
              forwards=16, rotations=8, latencies_s=[0.01, 0.02, 0.03])
    assert ok.spl == pytest.approx(0.5)  # 2 m shortest / 4 m travelled
    short = _res(success=True, path_length_m=1.0)
    assert short.spl == pytest.approx(1.0)  # capped at 1 when stopping early within 1 m
    fail = _res(stopped=True, final_distance_m=3.0, path_length_m=2.0, collisions=2)
    assert fail.spl == 0.0 and not fail.collision_free and ok.collision_free
    agg = M.aggregate([ok, fail])
    assert agg["episodes"] == 2
    assert agg["sr"] == 0.5 and agg["soft_sr"] == 0.5 and agg["spl"] == pytest.approx(0.25)
    assert agg["dtg"] == pytest.approx(1.75)
    assert agg["cft"] == 0.5
    assert agg["forwards_per_episode"] == 8 and agg["rotations_per_episode"] == 4
    assert agg["rotations_per_forward"] == pytest.approx(0.5)
    assert agg["latency_median_ms"] == pytest.approx(20.0)
    assert 20.0 < agg["latency_p95_ms"] <= 30.0


def test_group_records_per_policy_world_difficulty_and_pooled():
    rs = [_res(policy="a", world="w1", success=True, path_length_m=2.0),
          _res(policy="a", world="w2"),
          _res(policy="a", world="w1", difficulty="hard", geodesic_m=6.0),
          _res(policy="b", world="w1")]
    recs = M.group_records(rs, ["easy", "hard"])
    keys = {(r["policy"], r["world"], r["difficulty"]) for r in recs}
    assert keys == {("a", "w1", "easy"), ("a", "w2", "easy"), ("a", "all", "easy"), ("a", "w1", "hard"),
                    ("a", "all", "hard"), ("b", "w1", "easy"), ("b", "all", "easy")}
    pooled = next(r for r in recs if r["policy"] == "a" and r["world"] == "all" and r["difficulty"] == "easy")
    assert pooled["episodes"] == 2 and pooled["sr"] == 0.5
    for r in recs:
        for k in ("sr", "soft_sr", "spl", "dtg", "cft", "forwards_per_episode", "rotations_per_episode"):
            assert k in r


def test_table_json_and_plot(tmp_path):
    rs = [_res(policy="o4a", success=True, soft_success=True, stopped=True, final_distance_m=0.4, path_length_m=2.5,
               forwards=10, rotations=5, latencies_s=[0.01]),
          _res(policy="random", final_distance_m=2.0, forwards=100, rotations=300, collisions=1, latencies_s=[0.001]),
          _res(policy="o4a", difficulty="hard", geodesic_m=7.0, final_distance_m=4.0, latencies_s=[0.01])]
    recs = M.group_records(rs, list(E.DIFFICULTY_NAMES))
    table = R.markdown_table(recs, "all")
    lines = table.splitlines()
    assert lines[0].startswith("| policy | easy SR/SPL | hard SR/SPL |")  # medium/very hard absent: no column
    o4a = next(l for l in lines if l.startswith("| o4a "))
    assert "1.00/0.80" in o4a and "0.00/0.00" in o4a
    rnd = next(l for l in lines if l.startswith("| random "))
    assert "| n/a |" in rnd and "3.00" in rnd  # no hard episode; 300 rotations / 100 forwards
    payload = {"config": {"worlds": ["w"], "model": "m", "episodes": 1, "seed": 0, "max_steps": 500},
               "records": recs, "notes": ["world 'w': too small"], "wall_time_s": 1.0}
    md = R.markdown_report(payload)
    assert "## All worlds" in md and "## w" in md and "too small" in md
    R.write_json(tmp_path / "r.json", {**payload, "x": np.float32(1.5), "n": np.int64(3)})
    back = json.loads((tmp_path / "r.json").read_text())
    assert back["x"] == 1.5 and back["n"] == 3 and back["records"][0]["policy"] == "o4a"
    png = R.plot_sr_spl(recs, tmp_path / "p.png")
    assert png.read_bytes()[:4] == b"\x89PNG"


def test_graph_planner_follows_shortest_path_and_localises(tmp_path):
    from o4a_nav.bench.graph_baseline import GraphPlanner, TrainingGraph
    from o4a_nav.errors import ModelLoadError

    codes = np.eye(5, dtype=np.float32) * 10  # node i at 10 * e_i
    src = np.array([0, 1, 2, 0, 3])
    dst = np.array([1, 2, 3, 3, 4])
    w = np.array([1.0, 1.0, 1.0, 5.0, 1.0], dtype=np.float32)
    np.savez(tmp_path / "g.npz", codes=codes.astype(np.float16), src=src, dst=dst, weight=w)
    g = TrainingGraph.load(tmp_path / "g.npz")
    assert (g.n_nodes, g.n_edges) == (5, 5)
    p = GraphPlanner(g)
    p.plan(4)
    assert p.path_from(0, 10) == [1, 2, 3, 4]  # 3 hops of 1 beat the direct edge of 5
    assert p.path_from(0, 2) == [1, 2]
    assert p.dist_to_goal[0] == pytest.approx(4.0)
    p.plan(0)
    assert p.path_from(4, 10) == [] and not math.isfinite(p.dist_to_goal[4])  # directed: no way back
    assert p.localise(np.array([0, 0, 9, 1, 0], dtype=np.float32)) == 2
    sub = g.subsample(3, np.random.default_rng(0))
    assert sub.n_nodes == 3 and (sub.src < 3).all() and (sub.dst < 3).all()
    assert GraphPlanner(sub).memory_bytes < p.memory_bytes
    np.savez(tmp_path / "bad.npz", nodes=codes)
    with pytest.raises(ModelLoadError, match="no node codes"):
        TrainingGraph.load(tmp_path / "bad.npz")
    with pytest.raises(ModelLoadError, match="not found"):
        TrainingGraph.load(tmp_path / "missing.npz")
