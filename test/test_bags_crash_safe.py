"""Recording that survives a crash: `o4a record` makes its messages durable every
--flush-period, and `o4a bag repair` rebuilds a cut-off MCAP or sqlite3 bag keeping every
complete message. The crash is a real SIGKILL of a real recorder process."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from o4a_nav import bagio, cli
from o4a_nav.bagtools.repair import repair
from o4a_nav.errors import BagError

REPO = Path(__file__).resolve().parent.parent
NS = f"crashtest{os.getpid()}"


def _write(path, storage, n, flush_period=None, close=True):
    w = bagio.BagWriter(path, storage=storage, flush_period=flush_period)
    w.__enter__()
    for i in range(n):
        t = 100.0 + 0.1 * i
        w.write("/o4a/action", "o4a_msgs/msg/DiscreteAction", t, bagio.action_msg(i % 4, t, i))
        img = np.full((64, 64, 3), i % 256, np.uint8)
        w.write("/front_camera/image_raw", "sensor_msgs/msg/Image", t, bagio.image_msg(img, t, "front"))
    if close:
        w.close()
    return w


def _sequences(bag):
    return [int(m.sequence) for _, _, _, m in bagio.read(bag, ["/o4a/action"])]


@pytest.mark.parametrize("storage", ["mcap", "sqlite3"])
def test_killed_writer_is_repaired_with_every_flushed_message(tmp_path, storage):
    """A writer process killed with SIGKILL after flushing 40 message pairs (and writing 5
    more that were not flushed): the repaired bag has a gap-free prefix of >= 40."""
    bag = tmp_path / "cut"
    code = (f"import os, signal, sys; sys.path.insert(0, {str(Path(__file__).parent)!r})\n"
            f"from test_bags_crash_safe import _write\n"
            f"w = _write({str(bag)!r}, {storage!r}, 40, flush_period=1e9, close=False)\n"
            f"w.flush()\n"
            f"for i in range(40, 45):\n"
            f"    w.write('/o4a/action', 'o4a_msgs/msg/DiscreteAction', 200.0 + i, "
            f"__import__('o4a_nav.bagio').bagio.action_msg(0, 200.0 + i, i))\n"
            f"os.kill(os.getpid(), signal.SIGKILL)\n")
    proc = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    assert not (bag / "metadata.yaml").exists()
    with pytest.raises(BagError, match="o4a bag repair"):
        bagio.topics(bag)
    res = repair(bag)
    assert res["damaged_kept_in"] and Path(res["damaged_kept_in"]).is_dir()
    seqs = _sequences(bag)
    assert seqs[:40] == list(range(40)) and seqs == list(range(len(seqs)))
    assert res["topics"]["/front_camera/image_raw"] == 40
    frames = [int(m.data[0]) for _, _, _, m in bagio.read(bag, ["/front_camera/image_raw"])]
    assert frames == list(range(40))


def test_mcap_cut_at_any_byte_keeps_the_complete_chunks(tmp_path):
    """A flushed MCAP cut at several byte offsets (a half-written chunk at the end): every
    message of a complete chunk is recovered, in order, and nothing else."""
    full = tmp_path / "full"
    w = bagio.BagWriter(full, storage="mcap", flush_period=0.0)     # a chunk per message pair
    with w:
        for i in range(30):
            t = 10.0 + i
            w.write("/o4a/action", "o4a_msgs/msg/DiscreteAction", t, bagio.action_msg(1, t, i))
    data = next(full.glob("*.mcap")).read_bytes()
    prev = -1
    for cut in (20, len(data) // 3, len(data) // 2, len(data) - 200, len(data) - 1):
        bag = tmp_path / f"cut{cut}"
        bag.mkdir()
        (bag / f"cut{cut}.mcap").write_bytes(data[:cut])
        if cut == 20:
            with pytest.raises(BagError, match="no complete message"):
                repair(bag)
            continue
        repair(bag, out=tmp_path / f"fixed{cut}")
        seqs = _sequences(tmp_path / f"fixed{cut}")
        assert seqs == list(range(len(seqs))) and len(seqs) >= prev
        prev = len(seqs)
    assert prev == 30     # cut inside the summary: every message kept


def test_repair_refuses_intact_and_non_bags(tmp_path, capsys):
    ok = tmp_path / "ok"
    _write(ok, "mcap", 3)
    assert cli.main(["bag", "repair", str(ok)]) == 2
    assert "nothing to repair" in capsys.readouterr().err
    (tmp_path / "empty").mkdir()
    assert cli.main(["bag", "repair", str(tmp_path / "empty")]) == 2
    assert "no .mcap or .db3" in capsys.readouterr().err
    assert cli.main(["bag", "repair", str(tmp_path / "none")]) == 2
    assert "does not exist" in capsys.readouterr().err


def _wait(pred, timeout):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return True
        time.sleep(0.1)
    return False


@pytest.mark.ros
@pytest.mark.parametrize("storage", ["mcap", "sqlite3"])
def test_sigkill_of_o4a_record_then_repair(tmp_path, storage):
    """`o4a record` killed with SIGKILL while recording: once its file has stopped growing
    (the flush period has passed), every message sent so far is recovered by repair."""
    import rclpy
    from rclpy.qos import QoSProfile
    from sensor_msgs.msg import Image

    from o4a_msgs.msg import DiscreteAction
    from o4a_nav import ros_conv

    ctx = rclpy.Context()
    rclpy.init(context=ctx)
    node = rclpy.create_node("crash_test_talker", context=ctx)
    out = tmp_path / "rec"
    proc = subprocess.Popen([sys.executable, "-m", "o4a_nav.cli", "record", f"/{NS}/o4a/action",
                             f"/{NS}/front_camera/image_raw", "-q", "-o", str(out), "-s", storage,
                             "--flush-period", "0.5"], cwd=REPO, env=dict(os.environ),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        actions = node.create_publisher(DiscreteAction, f"/{NS}/o4a/action", QoSProfile(depth=200))
        images = node.create_publisher(Image, f"/{NS}/front_camera/image_raw", QoSProfile(depth=200))
        assert _wait(lambda: actions.get_subscription_count() > 0 and images.get_subscription_count() > 0, 60), \
            proc.stderr.read() if proc.poll() is not None else "recorder did not subscribe"
        n = 120
        for i in range(n):
            actions.publish(DiscreteAction(action=i % 4, sequence=i))
            images.publish(ros_conv.rgb_to_image_msg(np.full((48, 64, 3), i % 256, np.uint8), float(i), "front"))
            time.sleep(0.01)
        storage_file = lambda: next(iter(out.glob("*.mcap" if storage == "mcap" else "*.db3")), None)  # noqa: E731
        sizes = []

        def settled():     # the file has data and kept its size over the last 3 checks (> the flush period)
            f = storage_file()
            sizes.append(f.stat().st_size if f is not None else 0)
            return len(sizes) >= 3 and sizes[-1] > 0 and sizes[-1] == sizes[-2] == sizes[-3]

        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not settled():
            time.sleep(0.7)
        assert proc.poll() is None
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
        assert proc.returncode == -signal.SIGKILL
    finally:
        if proc.poll() is None:
            proc.kill()
        node.destroy_node()
        ctx.try_shutdown()
    assert not (out / "metadata.yaml").exists()
    assert cli.main(["bag", "repair", str(out)]) == 0
    seqs = _sequences_ns(out)
    assert seqs == list(range(n))
    frames = [int(m.data[0]) for _, _, _, m in bagio.read(out, [f"/{NS}/front_camera/image_raw"])]
    assert frames == list(range(n))
    assert bagio.offered_qos(out)[f"/{NS}/o4a/action"][0].reliability.name == "RELIABLE"


def _sequences_ns(bag):
    return [int(m.sequence) for _, _, _, m in bagio.read(bag, [f"/{NS}/o4a/action"])]
