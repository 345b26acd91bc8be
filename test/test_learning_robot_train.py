"""`o4a train` on robot-style recordings (JPEG CompressedImage cameras; joystick driving with
odometry and no actions) and the model directory's safety: --out checked before any work,
an existing model replaced only with --force, an interrupted run leaves the old model."""
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from o4a_nav.cli import main
from o4a_nav.learning import model_io
from o4a_nav.learning.model_io import load_model
from test_learning_pipeline import TINY, TRAIN

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def robot_bags(tmp_path_factory):
    root = tmp_path_factory.mktemp("robot_bags")
    out = {"jpeg": root / "two_rooms_jpeg", "teleop": root / "two_rooms_joystick"}
    assert main(["collect", "--world", "two_rooms", "--steps", "120", "--trajectory-length", "40", "--seed", "1",
                 "--compressed", "--out", str(out["jpeg"]), "-q"]) == 0
    # 40 s of joystick-like driving: camera 15 Hz (JPEG), odom + cmd_vel 30 Hz, no o4a/action
    assert main(["collect", "--world", "two_rooms", "--drive", "teleop", "--steps", "600", "--seed", "2",
                 "--compressed", "--out", str(out["teleop"]), "-q"]) == 0
    return out


def test_compressed_image_bag_trains(robot_bags, tmp_path):
    from o4a_nav import bagio

    types = {t: v[0] for t, v in bagio.topics(robot_bags["jpeg"]).items()}
    assert types["/front_camera/image_raw/compressed"] == "sensor_msgs/msg/CompressedImage"
    assert "/front_camera/image_raw" not in types
    out = tmp_path / "m_jpeg"
    assert main(["train", "--bags", str(robot_bags["jpeg"]), "--out", str(out), "--work-dir", str(tmp_path / "w")]
                + TINY + TRAIN) == 0
    model = load_model(out)
    assert model.worlds == ["two_rooms"]
    assert json.loads((out / "meta.json").read_text())["training"]["frames"] == {"two_rooms": 120}


def test_teleop_bag_trains_from_odometry_with_no_option(robot_bags, tmp_path, capsys):
    from o4a_nav import bagio

    assert "/o4a/action" not in bagio.topics(robot_bags["teleop"])
    out = tmp_path / "m_teleop"
    assert main(["train", "--bags", str(robot_bags["teleop"]), "--out", str(out), "--work-dir", str(tmp_path / "w")]
                + TINY + TRAIN) == 0
    log = capsys.readouterr().out
    assert "labels from odometry:" in log
    # the laser cross-check, the camera stamp offset and the framing are in the log and the report
    assert "laser cross-check of the" in log and "camera stamps" in log and "images framed:" in log
    model = load_model(out)
    frames = json.loads((out / "meta.json").read_text())["training"]["frames"]["two_rooms"]
    assert 20 < frames < 600          # only the frames one primitive apart are kept
    rep = json.loads((out / "report.json").read_text())
    assert rep["worlds"]["two_rooms"]["geodesic"]["available"] is True     # ground truth in the bag: scored
    [labels] = rep["worlds"]["two_rooms"]["labels"].values()
    lc = labels["counts"]["laser"]
    assert lc["checked"] > 0 and lc["agree"] + lc["disagree"] == lc["checked"] and "true" in lc
    assert f"- labels of {robot_bags['teleop']}: odometry:" in (out / "report.md").read_text()
    assert model.worlds == ["two_rooms"]


def _tiny_model(path, seed):
    torch.manual_seed(seed)
    from o4a_nav.learning.config import make_configs

    args = [v for v in TINY if v != "--set"]
    mcfg, _ = make_configs("compact", args)
    return model_io.save_model(model_io.O4AModel(mcfg, ["two_rooms"]), path)


def _snapshot(path):
    return {f.name: f.read_bytes() for f in sorted(Path(path).iterdir())}


def test_out_is_checked_before_any_work(robot_bags, tmp_path, capsys):
    a_file = tmp_path / "model.txt"
    a_file.write_text("not a model")
    work = tmp_path / "w"
    args = ["--bags", str(robot_bags["jpeg"]), "--work-dir", str(work)] + TINY + TRAIN
    assert main(["train", "--out", str(a_file)] + args) == 2
    assert "is an existing file" in capsys.readouterr().err
    assert not (work / "stage1.pt").exists() and a_file.read_text() == "not a model"
    old = _tiny_model(tmp_path / "old", seed=1)
    before = _snapshot(old)
    assert main(["train", "--out", str(old)] + args) == 2
    err = capsys.readouterr().err
    assert "is a model already" in err and "--force" in err
    assert _snapshot(old) == before and not (work / "stage1.pt").exists()
    # --force replaces it, in one swap
    assert main(["train", "--out", str(old), "--force"] + args) == 0
    assert _snapshot(old) != before and load_model(old).worlds == ["two_rooms"]
    assert not list(tmp_path.glob(".old.*"))


def test_killed_train_leaves_the_old_model_intact(robot_bags, tmp_path):
    """SIGKILL while the new model's files are being written (stage 2 on): the old model
    directory is untouched and loads; the next run cleans up and installs its model."""
    old = _tiny_model(tmp_path / "m", seed=3)
    before = _snapshot(old)
    cmd = [sys.executable, "-u", "-m", "o4a_nav.cli", "train", "--bags", str(robot_bags["jpeg"]), "--out", str(old),
           "--force", "--work-dir", str(tmp_path / "w")] + TINY + TRAIN
    proc = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env={**os.environ, "PYTHONPATH": str(REPO)})
    seen = []
    for line in proc.stdout:
        seen.append(line)
        if "loop-closure edges in" in line:      # stage 2 log: the new graph file is in the staging directory
            proc.send_signal(signal.SIGKILL)
            break
    proc.wait(timeout=60)
    assert proc.returncode == -signal.SIGKILL, "".join(seen)[-2000:]
    staged = list(tmp_path.glob(".m.new-*"))
    assert len(staged) == 1 and any(f.name.startswith("graph_") for f in staged[0].iterdir())
    assert _snapshot(old) == before
    load_model(old)
    # the rerun resumes from the checkpoints, removes the dead run's staging dir, installs its model
    assert main(["train", "--bags", str(robot_bags["jpeg"]), "--out", str(old), "--force",
                 "--work-dir", str(tmp_path / "w")] + TINY + TRAIN) == 0
    assert not list(tmp_path.glob(".m.*")) and (old / "report.json").is_file()


def test_swap_killed_between_its_renames_is_recovered(tmp_path, monkeypatch):
    old = _tiny_model(tmp_path / "m", seed=4)
    before = _snapshot(old)
    stage = model_io.begin_model_dir(old)
    _tiny_model(stage, seed=5)
    calls = []
    real = os.replace

    def dies_on_second(a, b):
        calls.append((a, b))
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real(a, b)

    monkeypatch.setattr(model_io.os, "replace", dies_on_second)
    with pytest.raises(KeyboardInterrupt):
        model_io.commit_model_dir(stage, old)
    monkeypatch.setattr(model_io.os, "replace", real)
    assert not old.exists()
    assert model_io.check_model_out(old, force=True) == old       # the next run puts the old model back first
    assert _snapshot(old) == before
