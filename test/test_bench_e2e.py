"""End-to-end benchmark runs with the real simulator, collision checker and navigator
core. The model is models/o4a_default when it exists (and knows two_rooms), else a tiny
randomly initialised model saved with model_io (plumbing only: its decisions are
meaningless, so only the ground-truth policies' outcomes are asserted)."""
import json
from pathlib import Path

import numpy as np
import pytest

from o4a_nav import cli
from o4a_nav.bench.policies import OraclePolicy
from o4a_nav.types import FORWARD_STEP_M

REPO = Path(__file__).resolve().parents[1]
SHIPPED = REPO / "models" / "o4a_default"


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    import torch

    from o4a_nav.learning.model_io import load_model

    if (SHIPPED / "meta.json").is_file() and (SHIPPED / "graph_two_rooms.npz").is_file():
        if "two_rooms" in load_model(SHIPPED).worlds:
            return SHIPPED
    from o4a_nav.learning.config import ModelConfig
    from o4a_nav.learning.model_io import O4AModel, save_model
    from o4a_nav.sim import SimRobot, load_world
    from o4a_nav.types import Action

    torch.manual_seed(0)
    d = tmp_path_factory.mktemp("tiny_model")
    model = save_model(O4AModel(ModelConfig(compact_channels=(8, 8, 8, 8, 8), image_feature_dim=32, fusion_hidden=32,
                                            embed_dim=16, inverse_hidden=(16,), forward_hidden=32, geodesic_dim=16,
                                            geodesic_hidden=16), ["two_rooms"]), d)
    model = load_model(d)
    # A small chain graph from a real random walk in the sim, for the graph baseline.
    robot = SimRobot(load_world("two_rooms"), seed=1)
    rng = np.random.default_rng(1)
    fronts, rears = [], []
    for _ in range(40):
        f, r, _ = robot.observe()
        fronts.append(f)
        rears.append(r)
        robot.step(Action(int(rng.integers(1, 4))))
    robot.close()
    codes = model.embed(np.stack(fronts), np.stack(rears)).numpy()
    src = np.arange(39)
    np.savez_compressed(d / "graph_two_rooms.npz", codes=codes.astype(np.float16), src=src, dst=src + 1,
                        weight=np.linalg.norm(codes[1:] - codes[:-1], axis=1).astype(np.float32))
    return d


ALL = "o4a,o4a-no-repulsor,o4a-no-attractor,o4a-anti-oscillation,o4a-lookahead,random,graph,oracle"


@pytest.mark.slow
def test_tiny_benchmark_all_policies_end_to_end(model_dir, tmp_path, capsys):
    out = tmp_path / "bench"
    rc = cli.main(["bench", "--model", str(model_dir), "--worlds", "two_rooms", "--episodes", "1",
                   "--difficulties", "easy", "medium", "--max-steps", "80", "--out", str(out), "--policy", ALL,
                   "--no-progress", "--graph-scaling", "--scaling-sizes", "8", "32", "100"])
    assert rc == 0
    res = json.loads((out / "results.json").read_text())
    policies = ALL.split(",")
    recs = {(r["policy"], r["world"], r["difficulty"]): r for r in res["records"]}
    for p in policies:
        for w in ("two_rooms", "all"):
            for d in ("easy", "medium"):
                r = recs[(p, w, d)]
                assert r["episodes"] == 1
                for k in ("sr", "soft_sr", "spl", "cft", "forwards_per_episode", "rotations_per_episode",
                          "latency_median_ms", "latency_p95_ms"):
                    assert r[k] is not None, (p, d, k)
                assert 0.0 <= r["spl"] <= r["sr"] <= r["soft_sr"] <= 1.0
    # The same two episodes for every policy.
    eps = res["episodes"]
    assert len(eps) == 2 * len(policies)
    for d in ("easy", "medium"):
        assert len({e["geodesic_m"] for e in eps if e["difficulty"] == d}) == 1
    # The ground-truth shortest path reaches both goals, collision-free, SPL near 1.
    for d in ("easy", "medium"):
        o = recs[("oracle", "two_rooms", d)]
        assert o["sr"] == 1.0 and o["cft"] == 1.0 and o["spl"] > 0.85
        # the oracle stops as soon as it is inside its stop radius (0.9 m): at most one
        # FORWARD (plus the 5 cm geodesic grid) inside it
        radius = OraclePolicy().stop_radius_m
        assert radius - FORWARD_STEP_M - 0.1 <= o["dtg"] < radius
    md = (out / "results.md").read_text()
    assert "| oracle |" in md and "o4a bench --model" in md
    assert (out / "sr_spl.png").read_bytes()[:4] == b"\x89PNG"
    assert sorted(res["trajectory_pictures"]) == ["traj_two_rooms_easy_00.png", "traj_two_rooms_medium_00.png"]
    for name in res["trajectory_pictures"]:
        assert (out / name).read_bytes()[:4] == b"\x89PNG"
    scal = json.loads((out / "graph_scaling.json").read_text())
    nodes = [r["nodes"] for r in scal["rows"]]
    assert nodes == [8, 32, 100]
    assert scal["rows"][-1]["synthetic"] == (100 > scal["config"]["full_graph_nodes"])
    mem = [r["graph_structure_mb"] for r in scal["rows"]]
    assert mem[0] < mem[1] < mem[2]  # the graph baseline's memory grows with the graph
    assert len({round(r["o4a_memory_mb"], 6) for r in scal["rows"]}) == 1  # O4A's does not
    assert (out / "graph_scaling.png").is_file()
    assert "graph nodes" in capsys.readouterr().out


def test_ground_truth_policies_are_deterministic_and_need_no_model(tmp_path):
    outs = []
    for k, jobs in enumerate(("1", "1", "2")):  # a parallel run gives the same episodes and outcomes
        out = tmp_path / f"r{k}"
        rc = cli.main(["bench", "--model", str(tmp_path / "no_model"), "--worlds", "two_rooms", "--episodes", "1",
                       "--difficulties", "easy", "hard", "--max-steps", "60", "--out", str(out),
                       "--policy", "random", "oracle", "--trajectories", "0", "--no-progress", "--jobs", jobs])
        assert rc == 0
        eps = json.loads((out / "results.json").read_text())["episodes"]
        outs.append([{k: v for k, v in e.items() if k != "latency_median_ms"} for e in eps])
    assert outs[0] == outs[1] == outs[2]
    assert {e["policy"] for e in outs[0]} == {"random", "oracle"}


def test_too_small_world_is_a_note_and_bad_input_is_a_user_error(tmp_path, capsys):
    out = tmp_path / "r"
    rc = cli.main(["bench", "--worlds", "two_rooms", "--episodes", "1", "--difficulties", "very_hard",
                   "--policy", "oracle", "--out", str(out), "--no-progress"])
    assert rc == 0
    res = json.loads((out / "results.json").read_text())
    assert res["records"] == [] and any("too small" in n for n in res["notes"])
    assert "too small" in (out / "results.md").read_text()
    assert cli.main(["bench", "--worlds", "two_rooms", "--policy", "teleport", "--out", str(out)]) == 2
    assert "unknown policy teleport" in capsys.readouterr().err
    assert cli.main(["bench", "--worlds", "no_such_world", "--policy", "oracle", "--out", str(out)]) == 2
    assert cli.main(["bench", "--model", str(tmp_path / "missing"), "--worlds", "two_rooms", "--policy", "o4a",
                     "--out", str(out)]) == 2


def test_caches_do_not_change_decisions(model_dir):
    """The exact embed/view caches give the same trajectory as the plain model."""
    from o4a_nav.bench.cache import EmbedCache, ViewCache
    from o4a_nav.bench.episodes import sample_episodes
    from o4a_nav.bench.policies import O4APolicy
    from o4a_nav.bench.runner import render_goal, run_episode
    from o4a_nav.learning.model_io import load_model
    from o4a_nav.nav.collision import CollisionChecker
    from o4a_nav.sim import SimRobot, load_world

    world = load_world("two_rooms")
    robot = SimRobot(world, seed=0)
    ep = sample_episodes(world, "two_rooms", 1, seed=5, difficulties=("medium",)).episodes[0]
    goal = render_goal(robot, ep)
    model = load_model(model_dir)
    runs = []
    for cached in (False, True):
        m = EmbedCache(model) if cached else model
        pol = O4APolicy("o4a-no-repulsor", m, "two_rooms", stop_threshold=0.0)  # never stops (d_h < 0 is impossible)
        r = run_episode(world, robot, CollisionChecker(), pol, ep, goal, 0, max_steps=40,
                        views=ViewCache(robot) if cached else None)
        runs.append(r)
    robot.close()
    assert runs[0].trajectory == runs[1].trajectory and runs[0].steps == runs[1].steps == 40
    assert runs[0].cached_steps == 0 and len(runs[0].latencies_s) == 40
    assert runs[1].cached_steps + len(runs[1].latencies_s) == 40
    assert m.hits == runs[1].cached_steps and m.misses >= 1


def test_partial_checkpoints_are_written_while_running(tmp_path, monkeypatch):
    from o4a_nav.bench import report
    from o4a_nav.bench.run import BenchConfig, run_benchmark

    seen = []
    real = report.write_json
    monkeypatch.setattr(report, "write_json", lambda path, payload: (seen.append(
        (payload["partial"], len(payload["episodes"]), list(payload["notes"]))), real(path, payload))[1])
    cfg = BenchConfig(model=None, worlds=["two_rooms"], out=str(tmp_path), episodes=2, policies=["oracle"],
                      difficulties=["easy"], max_steps=50)
    payload = run_benchmark(cfg, progress=False, checkpoint_s=1e-9)
    assert seen[0][0] is True and seen[0][1] == 1 and "PARTIAL" in seen[0][2][0]
    assert seen[-1][0] is False and seen[-1][1] == 2 and not payload["partial"]
    assert "PARTIAL" not in (tmp_path / "results.md").read_text()
