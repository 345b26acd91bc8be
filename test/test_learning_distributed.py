"""`o4a train` under torchrun with 2 CPU processes (torch.distributed, gloo) and
train.data_shards=2: each process holds only its data shard's images, the same global
batch gives the same stage-1 loss curve as one process with the same shards, a resumed
run continues it, rank 0 alone writes the model and report; the sharded embedding and
all-pairs graph stage find the same graph as one process. Bad shard settings are refused."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest
import torch

from o4a_nav.errors import UserError
from o4a_nav.learning import graph as G
from o4a_nav.learning.config import ModelConfig, TrainConfig, graph_logit_offset, make_configs
from o4a_nav.learning.dataset import assign_shards, from_arrays, load_worlds
from o4a_nav.learning.distributed import DistContext
from o4a_nav.learning.model_io import load_model
from o4a_nav.learning.pipeline import _prepare_work_dir
from o4a_nav.learning.models import InverseHead
from o4a_nav.learning.synthetic import RingWorld, write_bag
from o4a_nav.learning.training import Stage1Data, ShardedSampler, embed_frames

TINY = ["--set", "model.compact_channels=8,8,16,16,16", "--set", "model.image_feature_dim=32",
        "--set", "model.fusion_hidden=32", "--set", "model.embed_dim=16", "--set", "model.inverse_hidden=16,8",
        "--set", "model.forward_hidden=32", "--set", "model.geodesic_dim=16", "--set", "model.geodesic_hidden=16",
        "--set", "train.batch_size=16", "--set", "train.geodesic_steps=20", "--set", "train.geodesic_batch=32",
        "--set", "train.forward_steps=10", "--set", "train.geodesic_sources=20", "--threads", "1",
        "--set", "train.graph_block=32", "--set", "train.graph_logit_adjust=0"]   # (loop edges from the tiny model)
# Stated tolerance: the per-epoch mean training and validation losses and the loss every
# 10 steps of two processes match one process within a relative 1e-4 (float sums in
# another order, amplified by Adam; measured 2.1e-6, 9.9e-6 and 1.7e-5); the trained h and
# f-dagger give the same codes and logits within 1e-2 of their largest magnitude (measured
# 3.2e-3 and 1.0e-5; the code before data shards, 1 vs 2 processes on this bag: 2.4e-3).
RTOL = 1e-4
OUT_TOL = 1e-2


def _train(args, nproc, tmp_path, tag):
    env = dict(os.environ, OMP_NUM_THREADS="1")
    if nproc == 1:
        cmd = [sys.executable, "-m", "o4a_nav.cli", "train"]
    else:
        cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", str(nproc),
               "--master_port", str(29500 + os.getpid() % 1000), "-m", "o4a_nav.cli", "train"]
    out = subprocess.run(cmd + args, capture_output=True, text=True, timeout=900, env=env, cwd=tmp_path)
    (tmp_path / f"{tag}.log").write_text(out.stdout + out.stderr)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    return out.stdout + out.stderr


def _epochs(work):
    ck = torch.load(work / "stage1.pt", map_location="cpu", weights_only=False)
    return [e["train_loss"] for e in ck["history"]["epoch_val"]], ck


@pytest.fixture(scope="module")
def bag(tmp_path_factory):
    path = tmp_path_factory.mktemp("ddp") / "ring"
    write_bag(path, RingWorld(8, seed=2).explore(160, traj_len=20, seed=3), world_name="ring")
    return path


@pytest.mark.slow
def test_two_processes_match_one_and_resume(bag, tmp_path):
    common = ["--bags", str(bag)] + TINY + ["--set", "train.data_shards=2"]
    one_w, two_w = tmp_path / "w1", tmp_path / "w2"
    log = _train(common + ["--out", str(tmp_path / "m1"), "--work-dir", str(one_w),
                           "--set", "train.local_epochs=3", "--set", "train.freeze_h_epochs=1"], 1, tmp_path, "one")
    [w] = load_worlds([bag])
    assign_shards([w], 2)
    sizes = np.bincount(w.shard)
    assert sizes.sum() == 160 and abs(int(sizes[0]) - int(sizes[1])) <= 20      # whole 20-frame trajectories
    assert "images held per process: 160 of 160 frames" in log
    # two processes: 2 epochs, then the run is extended to 3 (resumes from rank 0's checkpoint;
    # its last epoch trains f-dagger with h frozen, as in the one-process run)
    log = _train(common + ["--out", str(tmp_path / "m2"), "--work-dir", str(two_w),
                           "--set", "train.local_epochs=2", "--set", "train.freeze_h_epochs=0"], 2, tmp_path, "two_a")
    assert "torch.distributed: 2 processes, backend gloo" in log
    # what each process decoded and kept: its shard's frames only
    assert f"images held per process: {sizes[0]}, {sizes[1]} of 160 frames" in log
    assert log.count("; report: ") == 1                              # rank 0 alone reports
    log = _train(common + ["--out", str(tmp_path / "m2"), "--work-dir", str(two_w), "--force",
                           "--set", "train.local_epochs=3", "--set", "train.freeze_h_epochs=1"], 2, tmp_path, "two_b")
    assert "stage 1: resumed from" in log and "after epoch 2" in log
    l1, ck1 = _epochs(one_w)
    l2, ck2 = _epochs(two_w)
    assert len(l1) == len(l2) == 3 and ck2["data_shards"] == 2
    v1 = [e["val_loss"] for e in ck1["history"]["epoch_val"]]
    v2 = [e["val_loss"] for e in ck2["history"]["epoch_val"]]
    assert None not in v1
    np.testing.assert_allclose(v2, v1, rtol=RTOL)
    np.testing.assert_allclose(l2, l1, rtol=RTOL)
    s1, s2 = ck1["history"]["loss"], ck2["history"]["loss"]
    np.testing.assert_allclose(s2, s1, rtol=RTOL)
    # the trained networks compute the same functions: codes h(o) and f-dagger logits
    # (weights are not compared one by one: a conv bias before GroupNorm has no gradient, so
    # Adam moves it by float noise, differently in each run, without changing any output)
    m1, m2 = load_model(tmp_path / "m1"), load_model(tmp_path / "m2")
    x1, x2 = m1.embed(w.front[:64], w.rear[:64]), m2.embed(w.front[:64], w.rear[:64])
    scale = float(x1.abs().max())
    assert float((x1 - x2).abs().max()) <= OUT_TOL * scale
    l1, l2 = m1.inverse_logits(x1[:-1], x1[1:]), m2.inverse_logits(x1[:-1], x1[1:])
    assert float((l1 - l2).abs().max()) <= OUT_TOL * float(l1.abs().max())
    # the model directory and report come from rank 0, complete
    rep = json.loads((tmp_path / "m2" / "report.json").read_text())
    assert rep["worlds"]["ring"]["frames"] == 160
    # the graph of the two processes (each embedded its shard) is the graph one process
    # builds with the same model: same codes, identical edge list
    g2 = G.load_graph(tmp_path / "m2" / "graph_ring.npz")
    codes = embed_frames(m2, w)
    g1 = G.build_graph(m2.inverse, codes, w.actions, w.next_ok, 32,
                       nc_offset=graph_logit_offset(TrainConfig(batch_size=16, graph_logit_adjust=0)))
    assert np.array_equal(codes.numpy().astype(np.float16), g2["codes"])
    assert int((~g1["chain"]).sum()) > 0
    for k in ("src", "dst", "action", "chain", "weight"):
        assert np.array_equal(g1[k], g2[k]), k
    # the work dir refuses to resume with other shards (the batches were drawn per shard):
    # the checkpoints are moved aside and the log says why
    msgs = []
    _prepare_work_dir(two_w, "another", 4, True, msgs.append)
    assert "train.data_shards changed from 2 to 4; starting over" in msgs[0]
    assert (two_w / "previous" / "stage1.pt").is_file() and not (two_w / "stage1.pt").exists()


def test_data_shards_hold_whole_trajectories_and_only_their_images(bag):
    full = load_worlds([bag], val_fraction=0.3)[0]
    parts = [load_worlds([bag], val_fraction=0.3, data_shards=2, held=slice(k, k + 1))[0] for k in range(2)]
    for k, w in enumerate(parts):
        held = np.flatnonzero(w.shard == k)
        assert np.array_equal(w.held_frames, held) and len(w.front) == len(held) < len(full)
        assert np.array_equal(w.images("front", held), full.front[held])
        assert np.array_equal(w.images("rear", held), full.rear[held])
        with pytest.raises(IndexError, match="not held by this process"):
            w.images("front", np.flatnonzero(w.shard != k)[:1])
        for t in np.unique(w.traj):                      # whole trajectories
            assert len(np.unique(w.shard[w.traj == t])) == 1
        val = np.isin(w.traj, list(w.val_traj))
        assert set(w.shard[val]) == {0, 1}             # validation trajectories dealt to both shards
    # one process with 2 shards: batch rows are B/2 from shard 0, then B/2 from shard 1
    assign_shards([full], 2)
    data = Stage1Data([full], val=False)
    sampler = ShardedSampler(data, 2, 16, seed=0, augment=True)
    sampler.epoch()
    sel, jitter = sampler.batch(0)
    assert list(full.shard[data.index[sel]]) == [0] * 8 + [1] * 8 and jitter[0].shape == (32, 1, 1, 1)
    # a process's rows are built from its own images alone, jittered as in the whole batch
    whole = data.batch(sel, jitter)
    mine = Stage1Data(parts[1:], val=False).batch(sel, jitter, rows=slice(8, 16))
    assert torch.equal(mine[0], torch.cat([whole[0][8:16], whole[0][24:32]]))
    assert all(torch.equal(a, b) for a, b in zip(mine[2:], whole[2:]))


def test_bad_shard_settings_are_refused():
    with pytest.raises(UserError, match=r"train.data_shards \(3\) must be a multiple of the number of processes \(2\)"):
        DistContext(rank=0, world_size=2).data_shards(3)
    assert DistContext(rank=1, world_size=2).data_shards(4) == slice(2, 4)
    with pytest.raises(UserError, match=r"train.batch_size \(16\) must be a multiple of train.data_shards \(3\)"):
        make_configs("compact", ["train.batch_size=16", "train.data_shards=3"])
    with pytest.raises(UserError, match="train.data_shards must be >= 1"):
        make_configs("compact", ["train.data_shards=0"])
    w = from_arrays("w", np.zeros((30, 96, 96, 3), np.uint8), np.zeros((30, 96, 96, 3), np.uint8),
                    np.ones(30), np.arange(30) // 10, val_fraction=0.0)
    with pytest.raises(UserError, match="the bags hold 3 training trajectories.*at most 3 shards"):
        assign_shards([w], 4)


class _TwoRanks:
    """Rank 0 of two, for the graph unit: all_gather returns this rank's result and the
    result of the same call as rank 1 (what torch.distributed would deliver)."""

    enabled, rank, world_size = True, 0, 2

    def __init__(self, inverse, codes, block, offset):
        self.other = G.all_pairs_edges(inverse, codes, block, nc_offset=offset, rows=(1, 2))

    def all_gather(self, mine):
        return [mine, self.other]


def test_graph_row_blocks_sharded_give_the_one_process_graph():
    torch.manual_seed(0)
    cfg = ModelConfig(embed_dim=8, inverse_hidden=(16, 8))
    inverse = InverseHead(cfg).eval()
    codes = torch.randn(300, 8)
    actions = np.random.default_rng(0).integers(0, 4, 300).astype(np.int8)
    next_ok = np.ones(300, bool)
    next_ok[-1] = False
    one = G.build_graph(inverse, codes, actions, next_ok, block=32, nc_offset=-1.0)
    two = G.build_graph(inverse, codes, actions, next_ok, block=32, nc_offset=-1.0,
                        dist=_TwoRanks(inverse, codes, 32, -1.0))
    assert int((~one["chain"]).sum()) > 100
    for k in ("src", "dst", "action", "chain", "weight"):
        assert np.array_equal(one[k], two[k]), k


def test_a_resumed_stage1_draws_the_batches_of_an_uninterrupted_one(tmp_path):
    """The checkpoint keeps every shard generator's state: 1 epoch + resume to 2 gives the
    uninterrupted 2-epoch loss curve bit for bit."""
    from o4a_nav.learning.model_io import O4AModel
    from o4a_nav.learning.training import train_stage1

    d = RingWorld(8, seed=2).explore(120, traj_len=20, seed=3)
    mcfg = ModelConfig(compact_channels=(8, 8, 16, 16, 16), image_feature_dim=32, fusion_hidden=32, embed_dim=16,
                       inverse_hidden=(16, 8))

    def run(epochs, ck):
        w = from_arrays("ring", d["front"], d["rear"], d["actions"], d["traj"], val_fraction=0.3)
        torch.manual_seed(0)
        model = O4AModel(mcfg, ["ring"])
        for e in epochs:
            cfg = TrainConfig(batch_size=8, local_epochs=e, freeze_h_epochs=0, data_shards=2)
            h = train_stage1(model, [w], cfg, checkpoint=ck, log=lambda *a: None)
        return h["loss"], h["epoch_val"]

    whole, resumed = run([2], tmp_path / "a.pt"), run([1, 2], tmp_path / "b.pt")
    assert len(whole[1]) == 2 and whole == resumed
