"""`o4a train` end to end on tiny real `o4a collect` bags: model dir, report, graph files,
resume, --base (new world's p+ only), --init (warm start), CLI errors."""
import json
import shutil

import numpy as np
import pytest
import torch

from o4a_nav.cli import main
from o4a_nav.learning.model_io import load_model, save_model
from o4a_nav.learning.synthetic import RingWorld, write_bag

TINY = ["--set", "model.compact_channels=8,8,16,16,16", "--set", "model.image_feature_dim=32",
        "--set", "model.fusion_hidden=32", "--set", "model.embed_dim=16", "--set", "model.inverse_hidden=16,8",
        "--set", "model.forward_hidden=32", "--set", "model.geodesic_dim=16", "--set", "model.geodesic_hidden=16"]
TRAIN = ["--set", "train.local_epochs=2", "--set", "train.freeze_h_epochs=1", "--set", "train.batch_size=16",
         "--set", "train.geodesic_steps=60", "--set", "train.geodesic_batch=64", "--set", "train.forward_steps=20",
         "--set", "train.geodesic_sources=40", "--set", "train.report_graph_episodes=0", "--threads", "1"]


@pytest.fixture(scope="module")
def bags(tmp_path_factory):
    """A real `o4a collect` bag (simulator world) and a synthetic ring-world bag without a
    simulator world and without poses (like a real-robot recording)."""
    root = tmp_path_factory.mktemp("bags")
    out = {"two_rooms": root / "two_rooms", "lab": root / "lab"}
    assert main(["collect", "--world", "two_rooms", "--steps", "120", "--trajectory-length", "40",
                 "--seed", "1", "--out", str(out["two_rooms"]), "-q"]) == 0
    write_bag(out["lab"], RingWorld(8, seed=2).explore(90, traj_len=30, seed=3), world_name=None, with_pose=False)
    return out


@pytest.fixture(scope="module")
def trained(bags, tmp_path_factory):
    root = tmp_path_factory.mktemp("models")
    model_dir, work = root / "m1", root / "work1"
    assert main(["train", "--bags", str(bags["two_rooms"]), "--out", str(model_dir), "--work-dir", str(work)]
                + TINY + TRAIN + ["--set", "train.report_graph_episodes=1"]) == 0
    return model_dir, work


def test_model_dir_and_report(trained):
    model_dir, _ = trained
    model = load_model(model_dir)
    assert model.worlds == ["two_rooms"]
    meta = json.loads((model_dir / "meta.json").read_text())
    assert meta["input"]["height"] == 96 and meta["worlds"] == ["two_rooms"]
    assert meta["training"]["frames"] == {"two_rooms": 120}
    assert "torch" in meta["versions"]
    rep = json.loads((model_dir / "report.json").read_text())
    for key in ("geodesic_spearman", "geodesic_mae_m", "loop_closure_precision", "loop_closure_recall",
                "fdagger_val_balanced_accuracy", "timings_s", "weights_bytes"):
        assert key in rep
    w = rep["worlds"]["two_rooms"]
    assert w["geodesic"]["available"] is True            # simulator world: true geodesics known
    assert -1.0 <= rep["geodesic_spearman"] <= 1.0 and rep["geodesic_mae_m"] >= 0
    assert set(w["fdagger"]["per_class"]) >= {"NOT_CONNECTED", "STOP", "FORWARD"}
    assert w["loop_closure"]["available"] is True
    conn = w["graph_connectivity"]                      # the graph's strongly connected parts
    assert 1 <= conn["components"] <= 120 and conn["largest_share"] == conn["largest"] / 120
    assert "graph connectivity" in (model_dir / "report.md").read_text()
    for fig in rep["figures"].values():
        assert (model_dir / fig).is_file()
    assert (model_dir / "report.md").is_file()
    assert (model_dir / "graph_two_rooms.npz").is_file()


def test_report_runs_the_graph_check_on_the_benchmark_episodes(trained):
    """The report navigates the benchmark's episodes of each world by d_G of the new graph at
    perfect localisation (`o4a diagnose --mode graph-pose`), one per difficulty here."""
    from o4a_nav.bench.episodes import sample_episodes
    from o4a_nav.sim import load_world

    model_dir, _ = trained
    rep = json.loads((model_dir / "report.json").read_text())
    gp = rep["worlds"]["two_rooms"]["graph_pose"]
    expected = sample_episodes(load_world("two_rooms"), "two_rooms", 1, 1,
                               ("easy", "medium", "hard", "very_hard")).episodes
    assert gp["available"] is True and gp["seed"] == 1
    assert gp["episodes"] == len(expected) == sum(n for _, n in gp["per_difficulty"].values())
    assert set(gp["per_difficulty"]) == {e.difficulty for e in expected}
    assert 0 <= gp["succeeded"] <= gp["episodes"] and gp["rotations_per_forward"] >= 0
    assert "graph check" in (model_dir / "report.md").read_text()
    # the same check from the command line, the graph's poses read from the training bags
    out = model_dir.parent / "graph_pose.json"
    assert main(["diagnose", "--mode", "graph-pose", "--model", str(model_dir), "--worlds", "two_rooms",
                 "--episodes", "1", "--seed", "1", "--out", str(out)]) == 0
    diag = json.loads(out.read_text())["summary"]
    assert (diag["episodes"], diag["succeeded"]) == (gp["episodes"], gp["succeeded"])


def test_graph_baseline_rebuilds_a_missing_graph_file_exactly(trained, tmp_path):
    """Only the benchmark's graph baseline reads graph_<world>.npz (the shipped model keeps
    them out of git): a model directory without it gets it rebuilt from the world's training
    bags, the graph `o4a train` wrote; without the bags the error names them."""
    from o4a_nav.bench.graph_baseline import TrainingGraph, load_training_graph
    from o4a_nav.errors import ModelLoadError

    model_dir, _ = trained
    copy = tmp_path / "m"
    shutil.copytree(model_dir, copy)
    (copy / "graph_two_rooms.npz").unlink()
    rebuilt = load_training_graph(copy, "two_rooms", log=lambda *_: None)
    original = TrainingGraph.load(model_dir / "graph_two_rooms.npz")
    assert (copy / "graph_two_rooms.npz").is_file()
    assert np.array_equal(rebuilt.src, original.src) and np.array_equal(rebuilt.dst, original.dst)
    assert np.array_equal(rebuilt.weight, original.weight) and np.array_equal(rebuilt.codes, original.codes)

    (copy / "graph_two_rooms.npz").unlink()
    report = json.loads((copy / "report.json").read_text())
    report["worlds"]["two_rooms"]["bags"] = [str(tmp_path / "gone")]
    (copy / "report.json").write_text(json.dumps(report))
    with pytest.raises(ModelLoadError, match="training bags, which are missing: .*gone.*o4a collect"):
        load_training_graph(copy, "two_rooms")


def test_resume_reproduces_the_model(trained, bags, tmp_path):
    model_dir, work = trained
    again = tmp_path / "again"
    assert main(["train", "--bags", str(bags["two_rooms"]), "--out", str(again), "--work-dir", str(work)]
                + TINY + TRAIN) == 0
    a, b = load_model(model_dir).state_dict(), load_model(again).state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_base_adds_a_world_keeping_shared_networks(trained, bags, tmp_path):
    """--base with a recording of an unknown place (no world topic, no poses): the world is
    named after the bag folder, only its p+ is trained, pose metrics are skipped with a reason."""
    model_dir, _ = trained
    out = tmp_path / "m2"
    assert main(["train", "--base", str(model_dir), "--bags", str(bags["lab"]), "--out", str(out),
                 "--work-dir", str(tmp_path / "w2")] + TRAIN + ["--set", "train.report_graph_episodes=1"]) == 0
    base, new = load_model(model_dir), load_model(out)
    assert new.worlds == ["two_rooms", "lab"]
    bs, ns = base.state_dict(), new.state_dict()
    for k in bs:   # h, f-dagger, f and the old world's p+ are unchanged
        assert torch.equal(bs[k], ns[k]), k
    assert (out / "graph_two_rooms.npz").is_file() and (out / "graph_lab.npz").is_file()
    rep = json.loads((out / "report.json").read_text())
    assert set(rep["worlds"]) == {"two_rooms", "lab"}
    assert rep["worlds"]["lab"]["geodesic"]["available"] is False
    assert "poses" in rep["worlds"]["lab"]["geodesic"]["reason"]
    assert rep["worlds"]["lab"]["loop_closure"]["available"] is False
    assert rep["worlds"]["lab"]["graph_pose"] == {"available": False, "reason": "the bags have no true poses"}
    # the kept world's picture comes along: every figure the merged report shows exists
    assert "latent_map_two_rooms" in rep["figures"]
    for fig in rep["figures"].values():
        assert (out / fig).is_file(), fig
    x = new.embed(np.zeros((96, 96, 3), np.uint8), np.zeros((96, 96, 3), np.uint8))
    assert new.geodesic(x, x, "lab").shape == (1,)


def test_a_world_given_as_a_file_is_a_simulator_world_in_the_report(trained, tmp_path):
    """A place the model never saw, given to `o4a collect` as a world file (a generated
    one): the bag carries the file's text, so the add-a-place run (--base) reports true
    geodesic metrics for it. A bag without that text (a ring-world recording with poses)
    gets them when `--world FILE.yaml` names the world file."""
    from o4a_nav.sim.generate import write_worlds

    model_dir, _ = trained
    (path, world), = write_worlds(1, seed=0, out=tmp_path / "worlds")
    bag = tmp_path / "gen_bag"
    assert main(["collect", "--world", str(path), "--steps", "120", "--trajectory-length", "40", "--seed", "2",
                 "--out", str(bag), "-q"]) == 0
    out = tmp_path / "m_gen"
    assert main(["train", "--base", str(model_dir), "--bags", str(bag), "--out", str(out),
                 "--work-dir", str(tmp_path / "w_gen")] + TRAIN) == 0
    rep = json.loads((out / "report.json").read_text())
    geo = rep["worlds"][world.name]["geodesic"]
    assert geo["available"] is True, geo
    assert geo["pairs"] > 0 and -1.0 <= geo["spearman"] <= 1.0
    assert rep["worlds"][world.name]["loop_closure"]["available"] is True
    # a bag that does not carry the world file: --world FILE.yaml names and describes the world
    ring = tmp_path / "ring_bag"
    write_bag(ring, RingWorld(8, seed=2).explore(90, traj_len=30, seed=3), world_name=None, with_pose=True)
    out2 = tmp_path / "m_ring"
    assert main(["train", "--base", str(model_dir), "--bags", str(ring), "--world", str(path), "--out", str(out2),
                 "--work-dir", str(tmp_path / "w_ring")] + TRAIN) == 0
    rep = json.loads((out2 / "report.json").read_text())
    assert set(rep["worlds"]) == {"two_rooms", world.name}
    assert rep["worlds"][world.name]["geodesic"]["available"] is True


def test_init_warm_starts_all_networks_and_trains_them(trained, bags, tmp_path):
    """--init: h, f-dagger and f begin from the given model and are trained further on the
    bags (here both worlds, so the p+ heads are new); the start model is left untouched."""
    model_dir, _ = trained
    before = {k: v.clone() for k, v in load_model(model_dir).state_dict().items()}
    out, work = tmp_path / "m3", tmp_path / "w3"
    cmd = ["train", "--init", str(model_dir), "--bags", str(bags["two_rooms"]), str(bags["lab"]),
           "--work-dir", str(work)] + TRAIN
    assert main(cmd + ["--out", str(out)]) == 0
    start, new = load_model(model_dir), load_model(out)
    assert all(torch.equal(before[k], v) for k, v in start.state_dict().items())   # not modified
    assert new.worlds == ["two_rooms", "lab"]
    assert new.config == start.config
    ss, ns = start.state_dict(), new.state_dict()
    shared = [k for k in ss if k.split(".")[0] in ("backbone", "inverse", "forward_model")]
    assert shared and any(not torch.equal(ss[k], ns[k]) for k in shared if k.startswith("backbone"))
    # a different start would give different weights: the warm start is really used
    cold = tmp_path / "cold"
    assert main(["train", "--bags", str(bags["two_rooms"]), str(bags["lab"]), "--out", str(cold),
                 "--work-dir", str(tmp_path / "wc")] + TINY + TRAIN) == 0
    cs = load_model(cold).state_dict()
    assert any(not torch.equal(cs[k], ns[k]) for k in shared)
    rep = json.loads((out / "report.json").read_text())
    assert rep["init"] == str(model_dir) and rep["base"] is None
    # same command again: resumes from the work dir and reproduces the model
    again = tmp_path / "m3b"
    assert main(cmd + ["--out", str(again)]) == 0
    ag = load_model(again).state_dict()
    assert all(torch.equal(ag[k], ns[k]) for k in ns)


def test_init_resume_follows_the_start_weights(trained, bags, tmp_path, capsys):
    """Checkpoints of an --init run belong to the start weights: the same command resumes,
    new weights at the same path start over (old checkpoints kept aside)."""
    model_dir, _ = trained
    start, work = tmp_path / "start", tmp_path / "w5"
    shutil.copytree(model_dir, start)
    cmd = ["train", "--init", str(start), "--bags", str(bags["two_rooms"]), "--out", str(tmp_path / "m5"),
           "--work-dir", str(work), "--force"] + TRAIN     # --force: each run replaces m5
    assert main(cmd) == 0
    capsys.readouterr()
    assert main(cmd) == 0
    assert "resumed" in capsys.readouterr().out
    m = load_model(start)
    with torch.no_grad():
        for p in m.backbone.parameters():
            p.add_(0.01)
    save_model(m, start)
    assert main(cmd) == 0
    out = capsys.readouterr().out
    assert "starting over" in out and "resumed" not in out
    assert any((work / "previous").glob("stage1*.pt"))


def test_init_errors(trained, bags, tmp_path, capsys):
    model_dir, _ = trained
    assert main(["train", "--init", str(model_dir), "--base", str(model_dir), "--bags", str(bags["two_rooms"]),
                 "--out", str(tmp_path / "m")]) == 2
    assert "exclude each other" in capsys.readouterr().err
    assert main(["train", "--init", str(model_dir), "--bags", str(bags["two_rooms"]), "--out", str(model_dir)]) == 2
    assert "must differ" in capsys.readouterr().err
    assert main(["train", "--init", str(model_dir), "--bags", str(bags["two_rooms"]), "--out", str(tmp_path / "m"),
                 "--set", "model.embed_dim=8"]) == 2
    assert "architecture" in capsys.readouterr().err


def test_cli_errors(tmp_path, capsys, bags):
    assert main(["train", "--bags", str(tmp_path / "none"), "--out", str(tmp_path / "m")]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert main(["train", "--base", str(tmp_path / "nomodel"), "--bags", str(bags["two_rooms"]),
                 "--out", str(tmp_path / "m")]) == 2
    assert "model directory" in capsys.readouterr().err
    assert main(["train", "--bags", str(bags["two_rooms"]), "--out", str(tmp_path / "m"),
                 "--set", "train.nope=1"]) == 2
    assert "unknown setting" in capsys.readouterr().err
