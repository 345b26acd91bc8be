"""Model integrity (issue 14): the weights' sha256 in meta.json, non-finite weights or
outputs refused at load, and the navigator node, `o4a bench` and `o4a replay-check` on
such a model."""
import json
import warnings
from pathlib import Path

import pytest
import torch

from o4a_nav.errors import ModelLoadError
from o4a_nav.learning.config import ModelConfig
from o4a_nav.learning.model_io import META_FILE, WEIGHTS_FILE, O4AModel, load_model, save_model, weights_sha256

ROOT = Path(__file__).resolve().parents[1]


def fresh(tmp_path, name="m", poison=None):
    torch.manual_seed(0)
    model = O4AModel(ModelConfig(), ["test_world"])
    if poison is not None:
        with torch.no_grad():
            next(model.parameters()).view(-1)[:10] = poison
    return save_model(model, tmp_path / name)


def test_checksum_written_and_verified(tmp_path):
    path = fresh(tmp_path)
    meta = json.loads((path / META_FILE).read_text())
    assert meta["weights_sha256"] == weights_sha256(path / WEIGHTS_FILE)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert load_model(path).integrity_warning == ""
    # 200 flipped bytes in the middle of the file: refused, whatever torch.load would make of it
    data = bytearray((path / WEIGHTS_FILE).read_bytes())
    mid = len(data) // 2
    for i in range(mid, mid + 200):
        data[i] ^= 0xFF
    (path / WEIGHTS_FILE).write_bytes(bytes(data))
    with pytest.raises(ModelLoadError, match="sha256"):
        load_model(path)


def test_model_without_checksum_loads_with_a_warning(tmp_path):
    path = fresh(tmp_path)
    meta = json.loads((path / META_FILE).read_text())
    del meta["weights_sha256"]
    (path / META_FILE).write_text(json.dumps(meta))
    with pytest.warns(UserWarning, match="weights_sha256"):
        model = load_model(path)
    assert "cannot be verified" in model.integrity_warning


@pytest.mark.parametrize("poison", [float("nan"), float("inf")])
def test_non_finite_weights_refused(tmp_path, poison):
    with pytest.raises(ModelLoadError, match="non-finite"):
        load_model(fresh(tmp_path, poison=poison))


def test_weights_that_overflow_are_refused_by_the_probe_batch(tmp_path):
    torch.manual_seed(0)
    model = O4AModel(ModelConfig(), ["test_world"])
    with torch.no_grad():
        for prm in model.parameters():
            prm.mul_(1e30).clamp_(-3e38, 3e38)  # finite weights, outputs overflow to inf/NaN
    with pytest.raises(ModelLoadError, match="probe batch"):
        load_model(save_model(model, tmp_path / "big"))


def test_shipped_model_has_its_checksum():
    meta = json.loads((ROOT / "models/o4a_default" / META_FILE).read_text())
    assert meta["weights_sha256"] == weights_sha256(ROOT / "models/o4a_default" / WEIGHTS_FILE)


def test_bench_and_replay_check_fail_on_a_nan_model(tmp_path, capsys):
    from o4a_nav.cli import main

    bad = fresh(tmp_path, "nan", poison=float("nan"))
    rc = main(["bench", "--model", str(bad), "--worlds", "two_rooms", "--episodes", "1", "--policy", "o4a",
               "--out", str(tmp_path / "bench"), "--no-progress"])
    assert rc != 0 and "non-finite" in capsys.readouterr().err
    bag = tmp_path / "bag"
    bag.mkdir()
    rc = main(["replay-check", str(bag), "--model", str(bad), "-q"])
    assert rc != 0 and "non-finite" in capsys.readouterr().err


@pytest.mark.ros
def test_navigator_node_on_a_nan_model_stays_in_no_model(ros, tmp_path):
    from o4a_nav.types import NavState
    from test_runtime_nodes import nav_node

    ctx, add = ros
    node = add(nav_node(ctx, str(fresh(tmp_path, poison=float("nan"))), autostart=False))
    node.trigger_configure()
    node.trigger_activate()
    assert not node.active and "non-finite" in node.activate_error
    assert node.runtime.status.state == NavState.NO_MODEL and "non-finite" in node.runtime.status.message
    ok, msg = node.runtime.set_goal(None, None, 0.0)
    assert not ok and "non-finite" in msg


@pytest.mark.ros
@pytest.mark.parametrize("allow", [False, True])
def test_navigator_node_refuses_a_model_without_checksum_unless_asked(ros, tmp_path, allow):
    """A model whose meta.json has no weights_sha256: the navigator refuses it (NO_MODEL with
    the reason, goals refused; before issue 28 it loaded with a warning and drove) unless
    allow_unverified_model is set, which loads it."""
    from o4a_nav.types import NavState
    from test_runtime_nodes import nav_node

    path = fresh(tmp_path)
    meta = json.loads((path / META_FILE).read_text())
    del meta["weights_sha256"]
    (path / META_FILE).write_text(json.dumps(meta))
    ctx, add = ros
    node = add(nav_node(ctx, str(path), autostart=False, allow_unverified_model=allow))
    node.trigger_configure()
    node.trigger_activate()
    if allow:
        assert node.active and node.runtime.nav is not None
        assert node.runtime.status.state != NavState.NO_MODEL
        return
    assert not node.active and "weights_sha256" in node.activate_error
    assert node.runtime.status.state == NavState.NO_MODEL and "allow_unverified_model" in node.runtime.status.message
    ok, msg = node.runtime.set_goal(None, None, 0.0)
    assert not ok and "weights_sha256" in msg
