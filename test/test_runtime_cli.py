"""`o4a bringup` and `o4a goal` as real processes (they inherit this test's ROS domain)."""
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

pytestmark = pytest.mark.ros

ROOT = Path(__file__).resolve().parents[1]
O4A = [sys.executable, "-m", "o4a_nav.cli"]
NS = f"/o4a_cli_{os.getpid()}"  # own namespace on top of the per-process domain


def o4a(*args, timeout=60):
    return subprocess.run(O4A + list(args), cwd=ROOT, env=os.environ.copy(), capture_output=True, text=True,
                          timeout=timeout)


def write_png(path, img):
    import cv2

    cv2.imwrite(str(path), cv2.cvtColor(img, cv2.COLOR_RGB2BGR))
    return str(path)


def test_goal_command_input_errors(tmp_path):
    r = o4a("goal", str(tmp_path / "missing.png"), str(tmp_path / "b.png"))
    assert r.returncode == 2 and "missing.png does not exist" in r.stderr
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"not a png")
    r = o4a("goal", str(bad), str(bad))
    assert r.returncode == 2 and "not a readable image" in r.stderr
    r = o4a("goal", "only_one.png")
    assert r.returncode == 2 and "two image files" in r.stderr
    r = o4a("goal", "--bag", str(tmp_path))
    assert r.returncode == 2 and "--time" in r.stderr


def test_goal_command_without_navigator(tmp_path):
    img = np.zeros((60, 80, 3), np.uint8)
    a, b = write_png(tmp_path / "a.png", img), write_png(tmp_path / "b.png", img)
    r = o4a("goal", a, b, "--server-timeout", "1", "--namespace", NS)
    assert r.returncode == 2 and "no navigator answers" in r.stderr


def test_bringup_sim_and_goal_round_trip(tmp_path):
    """`o4a bringup --sim` with a model, then `o4a goal` with two PNGs: the navigator takes
    the goal and the command prints the outcome. With a random model every view is within
    the stop threshold of every other, so the outcome is an immediate success; a mismatched
    pair is rejected with the reason."""
    import torch

    from o4a_nav.learning.config import ModelConfig
    from o4a_nav.learning.model_io import O4AModel, save_model

    torch.manual_seed(0)
    model = save_model(O4AModel(ModelConfig(), ["two_rooms"]), tmp_path / "m")
    log = open(tmp_path / "bringup.log", "w")
    proc = subprocess.Popen(O4A + ["bringup", "--sim", "--model", str(model), "--world", "two_rooms",
                                   "--duration", "120", "--namespace", NS], cwd=ROOT, env=os.environ.copy(), stdout=log,
                            stderr=subprocess.STDOUT)
    try:
        rng = np.random.default_rng(0)
        img = rng.integers(0, 255, (96, 96, 3), dtype=np.uint8)
        a, b = write_png(tmp_path / "a.png", img), write_png(tmp_path / "b.png", img)
        r = o4a("goal", a, b, "--server-timeout", "60", "--timeout", "60", "--namespace", NS, timeout=150)
        assert r.returncode == 0, r.stdout + r.stderr + (tmp_path / "bringup.log").read_text()[-3000:]
        assert "SUCCESS" in r.stdout and "steps 1" in r.stdout
        c = write_png(tmp_path / "c.png", img[:48])
        r = o4a("goal", a, c, "--server-timeout", "30", "--namespace", NS, timeout=90)
        assert r.returncode == 1 and "differ in size" in r.stdout
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()
    assert proc.returncode == 0, (tmp_path / "bringup.log").read_text()[-3000:]


def test_goal_images_from_bag(tmp_path):
    """--bag/--time picks the front and rear images nearest to the time (seconds from the
    first message); a bag without the topics is an error naming it."""
    from o4a_nav import bagio
    from o4a_nav.goal_images import images_from_bag
    from o4a_nav.errors import BagError

    bag = tmp_path / "bag"
    with bagio.BagWriter(bag) as w:
        for k in range(5):
            t = 100.0 + k
            img = np.full((60, 80, 3), 10 * k, np.uint8)
            w.write("/front_camera/image_raw", "sensor_msgs/msg/Image", t, bagio.image_msg(img, t, "front"))
            w.write("/rear_camera/image_raw", "sensor_msgs/msg/Image", t, bagio.image_msg(img + 1, t, "rear"))
    front, rear, t = images_from_bag(bag, 2.2, "/front_camera/image_raw", "/rear_camera/image_raw")
    assert t == pytest.approx(2.0) and front.shape == (60, 80, 3)
    assert int(front[0, 0, 0]) == 20 and int(rear[0, 0, 0]) == 21
    with pytest.raises(BagError, match="/nope"):
        images_from_bag(bag, 0.0, "/nope", "/rear_camera/image_raw")


def test_stop_on_signals_sets_the_flag_and_restores_the_handlers():
    import os
    import signal

    from o4a_nav.nodes._common import stop_on_signals

    before = signal.getsignal(signal.SIGTERM)
    with stop_on_signals() as stop:
        assert not stop.is_set()
        os.kill(os.getpid(), signal.SIGTERM)
        assert stop.wait(5.0)
    assert signal.getsignal(signal.SIGTERM) is before
