"""Procedural worlds (`o4a worlds --generate`): every generated world loads from its file,
is connected on the ground-truth grid, its doors let the robot through, its boxes leave
every room reachable; the same seed writes the same files; the worlds vary; every tool
takes them (collect here; train and the report in test_learning_pipeline.py)."""
import math
import subprocess
import sys

import numpy as np
import pytest
import yaml

from o4a_nav.cli import main
from o4a_nav.errors import UserError
from o4a_nav.sim.generate import door_is_open, dump_world, generate_world, write_worlds
from o4a_nav.sim.world import ROBOT_RADIUS, load_world, world_from_text

# 4 seeds x 8 worlds: small to larger than `office`, both layouts
CASES = [(seed, i) for seed in (0, 1, 2, 3) for i in range(8)]


@pytest.fixture(scope="module")
def worlds():
    out = {}
    for seed, i in CASES:
        spec = generate_world(seed, i)
        out[(seed, i)] = (spec, world_from_text(dump_world(spec), f"gen_{seed}_{i}.yaml"))
    return out


@pytest.mark.slow
def test_every_generated_world_loads_and_is_connected(worlds):
    for (seed, i), (spec, w) in worlds.items():
        where = f"seed {seed} world {i}"
        assert w.name == f"gen_s{seed}_{i:03d}", where
        assert len(w.rooms) >= 2 and len(w.openings) >= len(w.rooms) - 1, where
        # ground-truth geodesic grid: every free cell is reachable from every other
        assert w.free.sum() > 0 and np.array_equal(w.main_component, w.free), where
        for r in w.rooms:   # every room has reachable space for the robot
            row, col = w.cell_of(np.array([r.x0 + 0.3, r.x1 - 0.3]), np.array([r.y0 + 0.3, r.y1 - 0.3]))
            assert w.free[row[0]:row[1] + 1, col[0]:col[1] + 1].any(), (where, r.name)


@pytest.mark.slow
def test_doors_are_wide_enough_and_passable(worlds):
    for (seed, i), (_, w) in worlds.items():
        for o in w.openings:
            assert o.end - o.start >= 2 * ROBOT_RADIUS + 0.5 - 1e-9, (seed, i, o)   # 0.9 m: 0.25 m margin each side
            assert door_is_open(w, o), (seed, i, o)
    # and the path through a door is the straight line through it (first worlds of seed 0)
    for i in range(3):
        w = worlds[(0, i)][1]
        for o in w.openings:
            mid = (o.start + o.end) / 2
            p, q = ((mid, o.coord - 0.5), (mid, o.coord + 0.5)) if o.axis == "x" else ((o.coord - 0.5, mid), (o.coord + 0.5, mid))
            assert w.geodesic(p, q) == pytest.approx(1.0, abs=0.1), (i, o)


@pytest.mark.slow
def test_generated_worlds_vary(worlds):
    specs = [s for s, _ in worlds.values()]
    areas = [w.free_area for _, w in worlds.values()]
    office = load_world("office").free_area
    assert min(areas) < 50 and max(areas) > 1.5 * office          # small ones and bigger than office
    assert {s["description"].split("(")[1].split(" ")[0] for s in specs} == {"corridor", "rooms"}
    assert len({r["wall"] for s in specs for r in s["rooms"]}) >= 10
    assert len({p["texture"] for s in specs for p in s["pictures"]}) >= 30
    assert sum(len(s["boxes"]) for s in specs) >= 2 * len(specs)
    assert len({tuple(s["light_color"]) for s in specs}) == len(specs)
    assert any(len(w.openings) >= len(w.rooms) for _, w in worlds.values())   # some have loops
    # some footprints are not rectangles (border rooms dropped): rooms cover less than the bounds
    def fill(w):
        x0, y0, x1, y1 = w.bounds
        return sum(r.area for r in w.rooms) / ((x1 - x0) * (y1 - y0))
    assert any(fill(w) < 0.95 for _, w in worlds.values())


@pytest.mark.slow
def test_same_seed_same_files_across_processes(tmp_path):
    a, b, c = tmp_path / "a", tmp_path / "b", tmp_path / "c"
    paths = [p for p, _ in write_worlds(3, seed=11, out=a)]
    assert [p.name for p in paths] == ["gen_s11_000.yaml", "gen_s11_001.yaml", "gen_s11_002.yaml"]
    out = subprocess.run([sys.executable, "-m", "o4a_nav.cli", "worlds", "--generate", "3", "--seed", "11",
                          "--out", str(b)], capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr
    assert "gen_s11_002.yaml: " in out.stdout and "m^2 free" in out.stdout
    for p in paths:
        assert (b / p.name).read_bytes() == p.read_bytes()
        assert load_world(p).name == p.stem
    write_worlds(1, seed=12, out=c)
    assert (c / "gen_s12_000.yaml").read_bytes() != paths[0].read_bytes()
    # re-running into the same folder is harmless; a different file of that name is not overwritten
    write_worlds(3, seed=11, out=a)
    (c / "gen_s11_000.yaml").write_text("rooms: []\n")
    with pytest.raises(UserError, match="exists with other contents"):
        write_worlds(1, seed=11, out=c)
    assert (c / "gen_s11_000.yaml").read_text() == "rooms: []\n"


def test_cli_generate_needs_out(capsys):
    assert main(["worlds", "--generate", "2"]) == 2
    assert "--out" in capsys.readouterr().err


def test_world_file_lighting_fields(tmp_path):
    p = tmp_path / "lit.yaml"
    p.write_text("light_color: [0.9, 0.8, 0.7]\nambient: [0.3, 0.3, 0.35]\nrooms:\n  - {rect: [0, 0, 3, 3]}\n")
    w = load_world(p)
    assert w.light_color == (0.9, 0.8, 0.7) and w.ambient == (0.3, 0.3, 0.35)
    assert load_world("two_rooms").light_color is None          # built-ins keep the renderer's default
    p.write_text("ambient: [0.3, 2, 0.3]\nrooms:\n  - {rect: [0, 0, 3, 3]}\n")
    with pytest.raises(Exception, match=r"ambient: expected 3 numbers in \[0, 1\]"):
        load_world(p)


def test_collect_and_bench_in_a_generated_world_and_its_lighting(tmp_path):
    """`o4a collect` and `o4a bench` take a generated world file; the light colour and
    ambient level reach the renderer (a darker light gives darker images from one pose)."""
    import json

    from o4a_nav.sim import SimRobot

    (path, world), = write_worlds(1, seed=0, out=tmp_path / "w")
    bag = tmp_path / "bag"
    assert main(["collect", "--world", str(path), "--steps", "30", "--trajectory-length", "15",
                 "--out", str(bag), "-q"]) == 0
    assert bag.is_dir()
    out = tmp_path / "bench"
    assert main(["bench", "--worlds", str(path), "--episodes", "1", "--difficulties", "easy", "--policy", "oracle",
                 "--max-steps", "200", "--trajectories", "0", "--out", str(out), "--no-progress"]) == 0
    eps = json.loads((out / "results.json").read_text())["episodes"]
    assert [(e["world"], e["policy"], e["success"]) for e in eps] == [(world.name, "oracle", True)]
    spec = yaml.safe_load(path.read_text())
    spec.update(light_color=[0.2, 0.2, 0.2], ambient=[0.1, 0.1, 0.1])
    dark = tmp_path / "dark.yaml"
    dark.write_text(dump_world(spec))
    bright_w, dark_w = load_world(path), load_world(dark)
    assert dark_w.light_color == (0.2, 0.2, 0.2) and dark_w.ambient == (0.1, 0.1, 0.1)
    pose = bright_w.sample_free_pose(np.random.default_rng(0))
    means = []
    for w in (bright_w, dark_w):
        robot = SimRobot(w, seed=0)
        robot.set_pose(pose)
        front, _, _ = robot.observe()
        means.append(float(front.mean()))
        robot.close()
    assert means[1] < 0.8 * means[0]
    assert math.isfinite(means[0])
