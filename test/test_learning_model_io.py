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
