"""Model directory: bit-exact save/load round trip, API shapes, clear errors on bad dirs."""
import json

import numpy as np
import pytest
import torch

from o4a_nav.errors import ModelLoadError
from o4a_nav.learning.config import ModelConfig, make_configs
from o4a_nav.learning.model_io import O4AModel, load_model, save_model
from o4a_nav.types import Action


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    torch.manual_seed(0)
    model = O4AModel(ModelConfig(), ["room_a", "maze.b"])
    path = save_model(model, tmp_path_factory.mktemp("m") / "model")
    return model, path


def test_round_trip_is_bit_exact(saved):
    model, path = saved
    loaded = load_model(path)
    assert loaded.worlds == ["room_a", "maze.b"]
    a, b = model.state_dict(), loaded.state_dict()
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k
    rng = np.random.default_rng(1)
    front = rng.integers(0, 256, (3, 96, 96, 3), dtype=np.uint8)
    rear = rng.integers(0, 256, (3, 96, 96, 3), dtype=np.uint8)
    assert torch.equal(model.embed(front, rear), loaded.embed(front, rear))


def test_api_shapes_and_ranges(saved):
    _, path = saved
    model = load_model(path)
    rng = np.random.default_rng(2)
    img = rng.integers(0, 256, (96, 96, 3), dtype=np.uint8)
    x1 = model.embed(img, img)
    assert x1.shape == (1, model.embed_dim) and x1.dtype == torch.float32
    xs = model.embed(np.stack([img] * 4), np.stack([img] * 4))
    assert xs.shape == (4, model.embed_dim)
    assert torch.allclose(xs[0], x1[0], atol=1e-5)
    assert model.inverse_logits(xs, x1).shape == (4, 5)
    a = torch.tensor([Action.FORWARD, Action.ROTATE_LEFT, Action.ROTATE_RIGHT, Action.FORWARD])
    assert model.forward_kinematics(xs, a).shape == (4, model.embed_dim)
    with pytest.raises(ValueError):
        model.forward_kinematics(xs, torch.tensor([0, 1, 1, 1]))
    p = model.geodesic(xs, x1, "maze.b")
    assert p.shape == (4,) and bool((p >= 0).all())
    with pytest.raises(KeyError, match="room_a"):
        model.geodesic(xs, x1, "unknown_world")


def test_inverse_split_equals_concat_linear(saved):
    """The split first layer is one Linear on concat(x_i, x_j); pairwise == per-pair."""
    model, _ = saved
    x = torch.randn(5, model.embed_dim)
    y = torch.randn(7, model.embed_dim)
    inv = model.inverse
    W = torch.cat([inv.first_src.weight, inv.first_dst.weight], 1)
    first = torch.cat([x[2:3], y[4:5]], 1) @ W.T + inv.first_src.bias
    assert torch.allclose(inv.rest(first), inv(x[2:3], y[4:5]), atol=1e-5)
    pw = inv.pairwise(x, y)
    assert pw.shape == (5, 7, 5)
    assert torch.allclose(pw[2, 4], inv(x[2:3], y[4:5])[0], atol=1e-5)


def test_paper_preset_is_one_config_away():
    mcfg, _ = make_configs("paper")
    model = O4AModel(mcfg, ["w"])
    assert mcfg.backbone == "resnet18" and mcfg.embed_dim == 256
    x = model.embed(np.zeros((2, 96, 96, 3), np.uint8), np.zeros((2, 96, 96, 3), np.uint8))
    assert x.shape == (2, 256)


def test_missing_dir(tmp_path):
    with pytest.raises(ModelLoadError, match="does not exist"):
        load_model(tmp_path / "nope")


def test_missing_meta(tmp_path):
    (tmp_path / "m").mkdir()
    with pytest.raises(ModelLoadError, match="meta.json is missing"):
        load_model(tmp_path / "m")


def test_corrupt_meta(saved, tmp_path):
    _, path = saved
    bad = tmp_path / "m"
    bad.mkdir()
    (bad / "weights.pt").write_bytes((path / "weights.pt").read_bytes())
    (bad / "meta.json").write_text("{not json")
    with pytest.raises(ModelLoadError, match="corrupt"):
        load_model(bad)


def test_corrupt_weights(saved, tmp_path):
    _, path = saved
    bad = tmp_path / "m"
    bad.mkdir()
    (bad / "meta.json").write_text((path / "meta.json").read_text())
    (bad / "weights.pt").write_bytes(b"garbage" * 10)
    with pytest.raises(ModelLoadError, match="weights.pt"):
        load_model(bad)
    (bad / "weights.pt").unlink()
    with pytest.raises(ModelLoadError, match="weights.pt is missing"):
        load_model(bad)


def test_incompatible(saved, tmp_path):
    _, path = saved
    bad = tmp_path / "m"
    bad.mkdir()
    (bad / "weights.pt").write_bytes((path / "weights.pt").read_bytes())
    meta = json.loads((path / "meta.json").read_text())
    meta["config"]["embed_dim"] = 64
    (bad / "meta.json").write_text(json.dumps(meta))
    with pytest.raises(ModelLoadError, match="does not match"):
        load_model(bad)
    meta["format_version"] = 99
    (bad / "meta.json").write_text(json.dumps(meta))
    with pytest.raises(ModelLoadError, match="version"):
        load_model(bad)


# ---- a model swap killed half-way (issue 29): real SIGKILLs at the two dangerous points ----

_KILL_SWAP = """
import os, shutil, signal, sys
from o4a_nav.learning import model_io
src, out, point = sys.argv[1], sys.argv[2], sys.argv[3]
stage = model_io.begin_model_dir(out)
shutil.copytree(src, stage, dirs_exist_ok=True)
real_replace, calls = os.replace, []
def replace(a, b):
    calls.append(a)
    if point == "between_renames" and len(calls) == 2:
        os.kill(os.getpid(), signal.SIGKILL)
    return real_replace(a, b)
def rmtree(*a, **k):
    os.kill(os.getpid(), signal.SIGKILL)
model_io.os.replace = replace
if point == "before_delete":
    shutil.rmtree = rmtree
model_io.commit_model_dir(stage, out)
"""


def _killed_swap(src, out, point):
    import signal
    import subprocess
    import sys
    from pathlib import Path

    repo = Path(__file__).resolve().parent.parent
    proc = subprocess.run([sys.executable, "-c", _KILL_SWAP, str(src), str(out), point], cwd=repo,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == -signal.SIGKILL, proc.stderr[-2000:]


def test_load_recovers_a_swap_killed_between_its_renames(saved, tmp_path):
    import shutil

    _, src = saved
    out = tmp_path / "m"
    shutil.copytree(src, out)
    (out / "previous.txt").write_text("the model before the swap")
    _killed_swap(src, out, "between_renames")
    [old] = tmp_path.glob(".m.old-*")
    assert not out.exists() and (old / "previous.txt").is_file()
    with pytest.warns(UserWarning, match=r"moved back from .*\.m\.old-"):
        model = load_model(out)
    assert model.worlds == ["room_a", "maze.b"] and (out / "previous.txt").is_file()
    assert not list(tmp_path.glob(".m.old-*"))


def test_a_copy_left_after_the_swap_is_cleaned_by_the_next_training(saved, tmp_path):
    import shutil

    from o4a_nav.learning import model_io

    _, src = saved
    out = tmp_path / "m"
    shutil.copytree(src, out)
    (out / "previous.txt").write_text("the model before the swap")
    _killed_swap(src, out, "before_delete")
    [old] = tmp_path.glob(".m.old-*")
    assert (old / "previous.txt").is_file() and not (out / "previous.txt").exists()
    load_model(out)                                        # the new model is complete
    stage = model_io.begin_model_dir(out)                 # the next `o4a train`
    assert not list(tmp_path.glob(".m.old-*")) and list(tmp_path.glob(".m.new-*")) == [stage]


def test_load_during_a_running_swap_says_where_the_model_is(saved, tmp_path):
    import shutil
    import subprocess

    _, src = saved
    out = tmp_path / "m"
    swapper = subprocess.Popen(["sleep", "60"])        # a live process owns the swap
    try:
        old = tmp_path / f".m.old-{swapper.pid}"
        shutil.copytree(src, old)                      # the on-disk state between the two renames
        with pytest.raises(ModelLoadError, match=rf"swapping in a new model; the previous model is in {old}"):
            load_model(out)
        assert old.is_dir() and not out.exists()      # a running swap is not touched
    finally:
        swapper.kill()
        swapper.wait()
    with pytest.warns(UserWarning, match="moved back"):                     # owner gone: recovered
        assert load_model(out).worlds == ["room_a", "maze.b"] and not old.exists()
