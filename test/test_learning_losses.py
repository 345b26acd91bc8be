"""Each training loss decreases on a fixed batch (small synthetic ring-world data)."""
import numpy as np
import pytest
import torch

from o4a_nav.learning.config import ModelConfig, TrainConfig
from o4a_nav.learning.dataset import from_arrays
from o4a_nav.learning.losses import batch_class_weights, contrastive_loss, pair_labels
from o4a_nav.learning.model_io import O4AModel
from o4a_nav.learning.synthetic import RingWorld
from o4a_nav.learning.training import Stage1Data, stage1_step, train_forward, train_geodesic

torch.set_num_threads(1)
SMALL = ModelConfig(compact_channels=(8, 16, 16, 32, 32), image_feature_dim=64, fusion_hidden=64,
                    embed_dim=32, inverse_hidden=(32, 16), forward_hidden=64, geodesic_dim=32, geodesic_hidden=32)


@pytest.fixture(scope="module")
def world():
    d = RingWorld(8, seed=3).explore(120, traj_len=40, seed=4)
    return from_arrays("ring", d["front"], d["rear"], d["actions"], d["traj"], d["poses"], val_fraction=0.0)


def test_pair_labels():
    frames = torch.tensor([10, 20, 11])
    trajs = torch.tensor([0, 0, 0])
    actions = torch.tensor([1, 2, 3])
    labels, neg = pair_labels(frames, trajs, actions)
    # z = [10, 20, 11, 11, 21, 12]
    assert labels[0, 0] == 1            # same frame: STOP
    assert labels[0, 3] == 2            # 10 -> 11 with FORWARD (class 2)
    assert labels[0, 2] == 2            # z_2 is frame 11 too
    assert labels[0, 1] == 0            # 10 vs 20: NOT_CONNECTED
    assert labels[0, 5] == -1           # 10 vs 12: near on the same trajectory, ignored
    assert labels[1, 4] == 3            # 20 -> 21 with ROTATE_LEFT
    assert bool(neg[0, 1]) and not bool(neg[0, 0])


def test_class_weights_balance():
    labels = torch.tensor([[0, 0, 0, 0, 0, 0, 1, 2]])
    w = batch_class_weights(labels, 0.5)
    assert torch.isclose(w[0] * 6, torch.tensor(0.5))
    assert torch.isclose(w[1] * 1 + w[2] * 1, torch.tensor(0.5))
    assert w[3] == 0 and w[4] == 0


def test_contrastive_loss_zero_at_margins():
    x = torch.zeros(2, 3)
    x_next = torch.tensor([[1.0, 0, 0], [0, 1.0, 0]])
    x[1] = torch.tensor([20.0, 0, 0])
    x_next[1] = x[1] + torch.tensor([0, 1.0, 0])
    neg = torch.tensor([[False, True, False, True], [True, False, True, False]])
    assert float(contrastive_loss(x, x_next, neg, 1.0, 10.0)) == pytest.approx(0.0, abs=1e-6)
    assert float(contrastive_loss(x * 0.1, x_next * 0.1, neg, 1.0, 10.0)) > 1.0


def test_stage1_losses_decrease_on_fixed_batch(world):
    torch.manual_seed(0)
    model = O4AModel(SMALL, ["ring"])
    cfg = TrainConfig(batch_size=16, augment=False)
    data = Stage1Data([world], val=False)
    batch = data.batch(np.arange(16))
    opt = torch.optim.Adam(list(model.backbone.parameters()) + list(model.inverse.parameters()), lr=1e-3)
    _, ce0, con0 = stage1_step(model, batch, cfg)
    for _ in range(60):
        total, ce, con = stage1_step(model, batch, cfg)
        opt.zero_grad()
        total.backward()
        opt.step()
    _, ce1, con1 = stage1_step(model, batch, cfg)
    assert float(ce1) < 0.9 * float(ce0)
    assert float(con1) < 0.8 * float(con0)


def test_forward_loss_decreases():
    torch.manual_seed(0)
    model = O4AModel(SMALL, ["ring"])
    codes = torch.randn(50, SMALL.embed_dim)
    src = np.arange(49, dtype=np.int32)
    edges = {"src": src, "dst": src + 1, "action": (src % 3 + 1).astype(np.int8)}
    hist = train_forward(model, [codes], [edges], TrainConfig(forward_steps=400, forward_batch=16), log=lambda *_: None)
    assert hist["loss"][-1] < 0.7 * hist["loss"][0]
    assert hist["final_mse"] < hist["identity_mse"]


def test_geodesic_head_fits_known_distances():
    """p+ regresses known distances on a line of 40 nodes (d = |i - j| in one direction)."""
    from scipy.stats import spearmanr

    torch.manual_seed(0)
    model = O4AModel(SMALL, ["line"])
    n = 40
    codes = torch.randn(n, SMALL.embed_dim)
    i = np.arange(n)
    dist = np.abs(i[:, None] - i[None, :]).astype(np.float32)
    head = model.geodesic_head("line")
    hist = train_geodesic(head, codes, dist, i, i, TrainConfig(geodesic_steps=1500, geodesic_batch=256, geodesic_noise=0.0),
                          log=lambda *_: None)
    assert hist["loss"][-1] < 0.1 * hist["loss"][0]
    with torch.no_grad():
        pred = head(codes[:, None].expand(n, n, -1).reshape(-1, SMALL.embed_dim),
                    codes[None].expand(n, n, -1).reshape(-1, SMALL.embed_dim)).numpy()
    assert spearmanr(pred, dist.reshape(-1)).statistic > 0.95
    assert np.abs(pred - dist.reshape(-1)).mean() < 2.0
    assert (pred >= 0).all()


def test_stage1_batch_gathers_each_transitions_frames_across_worlds(world):
    """The batch holds o_t then o_t+1 of each selected transition, from the right world."""
    other = from_arrays("ring2", world.front[::-1].copy(), world.rear[::-1].copy(), world.actions, world.traj,
                        val_fraction=0.0)
    data = Stage1Data([world, other], val=False)
    sel = np.array([0, len(data) - 1, 5, len(data) // 2 + 3])
    front, rear, frames, _, actions, partners, _ = data.batch(sel)
    assert torch.equal(partners, frames + 1)                # recorded transitions: the partner is o_t+1
    b = len(sel)
    for k, s in enumerate(sel):
        w = (world, other)[data.world[s]]
        t = data.index[s]
        for shift in (0, 1):
            expect_f = torch.as_tensor(w.front[t + shift]).permute(2, 0, 1).float() / 255
            expect_r = torch.as_tensor(w.rear[t + shift]).permute(2, 0, 1).float() / 255
            assert torch.equal(front[shift * b + k], expect_f)
            assert torch.equal(rear[shift * b + k], expect_r)
        assert int(actions[k]) == int(w.actions[t])
    assert data.world[sel].tolist() == [0, 1, 0, 1]


def test_precision_is_validated_and_bf16_trains_close_to_fp32(world):
    from o4a_nav.errors import UserError

    with pytest.raises(UserError, match="precision"):
        TrainConfig(precision="fp16")
    data = Stage1Data([world], val=False)
    batch = data.batch(np.arange(16))
    losses = {}
    for prec in ("fp32", "bf16"):
        torch.manual_seed(0)
        model = O4AModel(SMALL, ["ring"])
        cfg = TrainConfig(batch_size=16, augment=False, precision=prec)
        opt = torch.optim.Adam(list(model.backbone.parameters()) + list(model.inverse.parameters()), lr=1e-3)
        first = None
        for _ in range(30):
            total, ce, con = stage1_step(model, batch, cfg)
            assert total.dtype == torch.float32 and torch.isfinite(total)
            first = float(total) if first is None else first
            opt.zero_grad()
            total.backward()
            opt.step()
        losses[prec] = (first, float(stage1_step(model, batch, TrainConfig(batch_size=16, augment=False))[0]))
    # same start: the bf16 forward differs by rounding only; both learn the batch
    assert losses["bf16"][0] == pytest.approx(losses["fp32"][0], rel=0.05)
    assert losses["bf16"][1] < 0.8 * losses["bf16"][0]
    assert losses["bf16"][1] == pytest.approx(losses["fp32"][1], rel=0.3)


def test_chain_predictions_are_f_of_the_recorded_predecessor(world):
    from o4a_nav.learning.training import chain_predictions

    torch.manual_seed(0)
    model = O4AModel(SMALL, ["ring"])
    codes = torch.randn(len(world), SMALL.embed_dim)
    pred = chain_predictions(model.forward_model, codes, world)
    has = torch.isfinite(pred[:, 0]).numpy()
    for t in range(1, len(world)):
        moved = bool(world.next_ok[t - 1]) and 1 <= int(world.actions[t - 1]) <= 3
        assert has[t] == moved
        if moved:
            with torch.no_grad():
                expect = model.forward_model(codes[t - 1:t], int(world.actions[t - 1]))
            assert torch.allclose(pred[t], expect[0], atol=1e-6)
    assert not has[0] and has.sum() > len(world) // 2


def test_geodesic_head_learns_distances_from_predicted_sources():
    """With geodesic_predicted_share = 1, p+ is fitted where it is queried (f's predictions,
    here the codes shifted by a fixed offset), not on h's codes."""
    from scipy.stats import spearmanr

    torch.manual_seed(0)
    n = 40
    codes = torch.randn(n, SMALL.embed_dim)
    predicted = codes + 2.0 * torch.randn(n, SMALL.embed_dim)
    predicted[0] = float("nan")                    # a trajectory start: keeps h's code
    i = np.arange(n)
    dist = np.abs(i[:, None] - i[None, :]).astype(np.float32)
    cfg = TrainConfig(geodesic_steps=1500, geodesic_batch=256, geodesic_noise=0.0, geodesic_predicted_share=1.0)
    head = O4AModel(SMALL, ["line"]).geodesic_head("line")
    hist = train_geodesic(head, codes, dist, i, i, cfg, log=lambda *_: None, predicted=predicted)
    assert hist["predicted_sources"] == pytest.approx((n - 1) / n)
    with torch.no_grad():
        src = predicted[1:, None].expand(n - 1, n, -1).reshape(-1, SMALL.embed_dim)
        pred = head(src, codes[None].expand(n - 1, n, -1).reshape(-1, SMALL.embed_dim)).numpy()
    assert spearmanr(pred, dist[1:].reshape(-1)).statistic > 0.95
    with pytest.raises(Exception, match="geodesic_predicted_share"):
        TrainConfig(geodesic_predicted_share=1.5)


def test_stage1_cosine_schedule_runs_from_lr_to_lr_min_and_constant_stays():
    from o4a_nav.learning.training import stage1_lr

    cfg = TrainConfig(lr=3e-4, lr_schedule="cosine", lr_min=1e-5)
    lrs = [stage1_lr(cfg, s, 101) for s in range(101)]
    assert lrs[0] == pytest.approx(3e-4) and lrs[-1] == pytest.approx(1e-5)
    assert lrs[50] == pytest.approx((3e-4 + 1e-5) / 2)
    assert all(a >= b for a, b in zip(lrs, lrs[1:]))          # never rises
    assert {stage1_lr(TrainConfig(lr=3e-4), s, 101) for s in range(101)} == {3e-4}
    with pytest.raises(Exception, match="lr_schedule"):
        TrainConfig(lr_schedule="step")
    with pytest.raises(Exception, match="lr_min"):
        TrainConfig(lr=1e-4, lr_min=1e-3)
