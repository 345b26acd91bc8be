"""Training stages 1, 3 and 4 (stage 2, the graph, is in graph.py). ROS-free.

Stage 1: h + f-dagger jointly (time-contrastive + class-weighted CE, in-batch negatives),
         the last `freeze_h_epochs` epochs fine-tune f-dagger alone with h frozen.
Stage 3: f on the graph's motion edges (chain edges with the recorded action, loop
         closures with f-dagger's action), MSE to x_j, h frozen.
Stage 4: p+ per world: regress d_G on sampled (source, target) pairs, h frozen, Gaussian
         noise on the codes.
"""
from __future__ import annotations

import contextlib
import math
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from o4a_nav.errors import UserError
from o4a_nav.learning.config import CLASSES, NOT_CONNECTED, TrainConfig
from o4a_nav.learning.dataset import WorldData, assign_shards
from o4a_nav.learning.losses import batch_class_weights, contrastive_loss, pair_labels, weighted_ce
from o4a_nav.learning.models import images_to_tensor
from o4a_nav.types import Action


def _tqdm(progress):
    return progress if progress is not None else default_progress()


def default_progress():
    """tqdm; when stderr is not a terminal (background runs logging to a file) it prints
    a line every 60 s instead of redrawing."""
    import functools
    import sys

    from tqdm import tqdm

    if sys.stderr.isatty():
        return tqdm
    return functools.partial(tqdm, mininterval=60, maxinterval=120)


class Stage1Data:
    """Positive pairs (o_i, o_j, a) of all worlds with globally unique frame / trajectory
    ids: the recorded transitions (j = i + 1), plus, with `revisit_share` > 0, revisit
    positives: pairs of frames on different visits that the laser verified as one action
    apart (WorldData.revisits, set by the pipeline from a graph built with laser closures),
    at most that share of all pairs (a seeded draw), both frames in the split and in one
    data shard. With none, the pairs and batches are exactly the transitions'."""

    def __init__(self, worlds: list[WorldData], val: bool, revisit_share: float = 0.0, seed: int = 0):
        self.worlds = worlds
        idx, part, wid, fid, pfid, tid, ptid, act, shard = [], [], [], [], [], [], [], [], []
        frame_off, traj_off = 0, 0
        self.revisits = 0
        for k, w in enumerate(worlds):
            t = w.transitions(val)
            p = t + 1
            rv = _revisit_pairs(w, val, len(t), revisit_share, seed + k)
            self.revisits += len(rv)
            t, p, a = np.concatenate([t, rv[:, 0]]), np.concatenate([p, rv[:, 1]]), \
                np.concatenate([w.actions[t].astype(np.int64), rv[:, 2]])
            idx.append(t)
            part.append(p)
            wid.append(np.full(len(t), k))
            fid.append(t + frame_off)
            pfid.append(p + frame_off)
            tid.append(w.traj[t].astype(np.int64) + traj_off)
            ptid.append(w.traj[p].astype(np.int64) + traj_off)
            act.append(a)
            shard.append(w.shards[t])
            frame_off += len(w)
            traj_off += int(w.traj.max()) + 1 if len(w) else 0
        cat = lambda parts: np.concatenate(parts).astype(np.int64) if parts else np.zeros(0, np.int64)
        self.index, self.partner, self.world = cat(idx), cat(part), cat(wid)
        self.frame, self.partner_frame = cat(fid), cat(pfid)
        self.trajid, self.partner_traj = cat(tid), cat(ptid)
        self.action = cat(act)
        self.shard = cat(shard)   # data shard of each

    def __len__(self):
        return len(self.index)

    def batch(self, sel: np.ndarray, jitter: tuple | None = None, rows: slice | None = None):
        """-> front (2b), rear (2b) float images (o_t first, then o_t+1), frame ids, traj ids,
        actions of the B transitions `sel`.

        jitter: brightness/contrast draws of the whole batch (jitter_draws; None: none).
        rows: the transitions (a slice of the B) whose images are built, b of them (one
        process's share under torch.distributed; default all); ids and actions stay the
        whole batch's."""
        b = len(sel)
        rows = slice(0, b) if rows is None else rows
        local = sel[rows]
        imgs = {cam: images_to_tensor(np.concatenate([self._images(cam, local, 0), self._images(cam, local, 1)]))
                for cam in ("front", "rear")}
        if jitter is not None:
            both = np.concatenate([np.arange(b)[rows], b + np.arange(b)[rows]])   # of the 2B images
            for k, cam in enumerate(("front", "rear")):
                imgs[cam] = _apply_jitter(imgs[cam], jitter[2 * k][both], jitter[2 * k + 1][both])
        return (imgs["front"], imgs["rear"], torch.as_tensor(self.frame[sel]), torch.as_tensor(self.trajid[sel]),
                torch.as_tensor(self.action[sel]), torch.as_tensor(self.partner_frame[sel]),
                torch.as_tensor(self.partner_traj[sel]))

    def _images(self, cam: str, sel: np.ndarray, second: int) -> np.ndarray:
        """uint8 (len(sel), 96, 96, 3): camera `cam` at the first (0) or second (1) frame of
        the pairs sel (one fancy-indexed copy per world)."""
        out = np.empty((len(sel), 96, 96, 3), np.uint8)
        wid = self.world[sel]
        frames = self.partner if second else self.index
        for k in np.unique(wid):
            m = wid == k
            out[m] = self.worlds[k].images(cam, frames[sel[m]])
        return out


def _revisit_pairs(w: WorldData, val: bool, n_transitions: int, share: float, seed: int) -> np.ndarray:
    """(K, 3) int64 rows (i, j, action) of w.revisits usable as stage-1 positives of this
    split: both frames in it, in one data shard, at most share / (1 - share) x the
    transitions (a seeded draw)."""
    rv = getattr(w, "revisits", None)
    if share <= 0 or rv is None or not len(rv):
        return np.zeros((0, 3), np.int64)
    rv = np.asarray(rv, np.int64)
    in_split = (w.is_val[rv[:, 0]] == val) & (w.is_val[rv[:, 1]] == val)
    rv = rv[in_split & (w.shards[rv[:, 0]] == w.shards[rv[:, 1]])]
    cap = int(round(share / (1.0 - share) * n_transitions)) if share < 1 else len(rv)
    if len(rv) > cap:
        rv = rv[np.sort(np.random.default_rng(seed).choice(len(rv), cap, replace=False))]
    return rv


class ShardedSampler:
    """Stage-1 batches whose content does not depend on the number of processes.

    The transitions fall into S = `shards` data shards (the worlds' `shard`, assign_shards:
    whole trajectories). A global batch of B transitions is B / S from each shard, in
    shard order; shard s draws its permutation (every epoch) and its jitter (every step)
    from its own generator, seeded train.seed + s. One process holding all shards and m
    processes holding S / m each therefore build the same batches, row for row. With one
    shard this is one permutation of all transitions per epoch and the jitter of the whole
    batch from one generator seeded train.seed."""

    def __init__(self, data: Stage1Data, shards: int, batch_size: int, seed: int, augment: bool):
        self.members = [np.flatnonzero(data.shard == s) for s in range(shards)]
        self.sizes = [len(m) for m in self.members]
        self.per_shard = min(batch_size // shards, min(self.sizes))   # 0: a shard without transitions
        self.steps = min(self.sizes) // self.per_shard if self.per_shard else 0   # steps per epoch
        self.gens = [np.random.default_rng(seed + s) for s in range(shards)]
        self.augment = augment
        self._perms: list = []

    def epoch(self) -> None:
        """Draw each shard's permutation for the next epoch."""
        self._perms = [m[g.permutation(len(m))] for m, g in zip(self.members, self.gens)]

    def batch(self, step: int) -> tuple[np.ndarray, tuple | None]:
        """(sel: the B transitions of step `step` of this epoch, jitter draws or None)."""
        b = self.per_shard
        sel = np.concatenate([p[step * b:(step + 1) * b] for p in self._perms])
        if not self.augment:
            return sel, None
        draws = [jitter_draws(g, b) for g in self.gens]   # per shard: 2b images per camera
        jitter = tuple(np.concatenate([d[k][:b] for d in draws] + [d[k][b:] for d in draws]) for k in range(4))
        return sel, jitter

    def state(self) -> list:
        return [g.bit_generator.state for g in self.gens]

    def set_state(self, states: list) -> None:
        for g, st in zip(self.gens, states):
            g.bit_generator.state = st


def jitter_draws(rng: np.random.Generator, b: int) -> tuple[np.ndarray, ...]:
    """Brightness gain and contrast of the 2b images of b transitions, front then rear
    camera: (front gain, front contrast, rear gain, rear contrast), each (2b, 1, 1, 1)."""
    return _jitter_draws(rng, 2 * b) + _jitter_draws(rng, 2 * b)


def _jitter_draws(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    return rng.uniform(0.8, 1.2, (n, 1, 1, 1)), rng.uniform(0.8, 1.2, (n, 1, 1, 1))


def _apply_jitter(img: torch.Tensor, gain: np.ndarray, contrast: np.ndarray) -> torch.Tensor:
    """Per-image brightness (x0.8..1.2) and contrast jitter."""
    gain = torch.as_tensor(gain, dtype=img.dtype)
    contrast = torch.as_tensor(contrast, dtype=img.dtype)
    mean = img.mean(dim=(1, 2, 3), keepdim=True)
    return ((img - mean) * contrast + mean * gain).clamp_(0.0, 1.0)


def autocast(cfg: TrainConfig, device: torch.device | str = "cpu"):
    """The context stage-1 forward passes run in: bf16 autocast when cfg.precision is
    "bf16", else nothing (fp32)."""
    if cfg.precision == "bf16":
        return torch.autocast(device_type=torch.device(device).type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


def stage1_step(model, batch, cfg: TrainConfig, freeze_h: bool = False):
    """Loss of one batch -> (total, ce, contrastive) tensors (float32; the forward passes in
    cfg.precision)."""
    front, rear, frames, trajs, actions, partners, partner_trajs = batch
    b = frames.shape[0]
    with autocast(cfg, front.device):
        if freeze_h:
            with torch.no_grad():
                codes = model.backbone(front, rear)
        else:
            codes = model.backbone(front, rear)
        return _pair_losses(model.inverse, codes[:b], codes[b:], frames, trajs, actions, partners, partner_trajs,
                            cfg, freeze_h)


def _pair_losses(inverse, x, x_next, frames, trajs, actions, partners, partner_trajs, cfg: TrainConfig,
                 freeze_h: bool):
    """Stage-1 losses of the in-batch pairs of codes x (o_i) and x_next (their partners)."""
    labels, neg_mask = pair_labels(frames, trajs, actions, partner_ids=partners, partner_traj=partner_trajs)
    weights = batch_class_weights(labels, cfg.not_connected_share)
    if x.device.type != "cpu":
        labels, neg_mask, weights = labels.to(x.device), neg_mask.to(x.device), weights.to(x.device)
    logits = inverse.pairwise(x, torch.cat([x, x_next], 0))
    with torch.autocast(device_type=x.device.type, enabled=False):   # losses in float32
        ce = weighted_ce(logits.float(), labels, weights)
        if freeze_h:
            con = torch.zeros(())
        else:
            con = contrastive_loss(x.float(), x_next.float(), neg_mask, cfg.margin_pos, cfg.margin_neg)
    total = cfg.ce_weight * ce + cfg.contrastive_weight * con
    return total, ce, con


class _ShardedStage1(torch.nn.Module):
    """The stage-1 loss of one global batch under torch.distributed, as one module for
    DistributedDataParallel: this rank encodes its share of the images, the codes of all
    ranks are gathered (with autograd) and the loss covers the whole batch's pairs. With
    h frozen the backbone is not a parameter of the module (nothing of it to reduce)."""

    def __init__(self, backbone, inverse, cfg: TrainConfig, ctx, freeze_h: bool):
        super().__init__()
        self.inverse = inverse
        if freeze_h:
            self._frozen = [backbone]
        else:
            self.backbone = backbone
        self.cfg, self.ctx, self.freeze_h = cfg, ctx, freeze_h

    def forward(self, front, rear, frames, trajs, actions, partners, partner_trajs):
        from o4a_nav.learning.distributed import gather_codes

        with autocast(self.cfg, front.device):
            if self.freeze_h:
                with torch.no_grad():
                    local = self._frozen[0](front, rear)
            else:
                local = self.backbone(front, rear)
        local = local.float()                            # codes cross ranks in float32
        half = local.shape[0] // 2                       # rows: this rank's o_t, then its o_t+1
        x, x_next = gather_codes(local[:half], self.ctx), gather_codes(local[half:], self.ctx)
        with autocast(self.cfg, front.device):
            return _pair_losses(self.inverse, x, x_next, frames, trajs, actions, partners, partner_trajs, self.cfg,
                                self.freeze_h)


def stage1_lr(cfg: TrainConfig, step: int, total_steps: int) -> float:
    """Stage-1 learning rate at optimizer step ``step`` of ``total_steps`` (train.lr_schedule)."""
    if cfg.lr_schedule == "constant" or total_steps <= 1:
        return cfg.lr
    frac = min(1.0, max(0.0, step / (total_steps - 1)))
    return cfg.lr_min + 0.5 * (cfg.lr - cfg.lr_min) * (1.0 + math.cos(math.pi * frac))


def _stage1_data(worlds: list[WorldData], cfg: TrainConfig, log):
    """The training transitions, their sampler and the validation transitions; refuses too
    few transitions or a data shard without any."""
    assign_shards(worlds, cfg.data_shards)    # (as load_worlds did when it read only this process's shards)
    data = Stage1Data(worlds, val=False, revisit_share=cfg.revisit_share, seed=cfg.seed)
    if data.revisits:
        log(f"stage 1: {data.revisits} revisit positives (laser-verified pairs on different visits) among "
            f"{len(data)} positive pairs")
    if len(data) < 2:
        raise ValueError("stage 1 needs at least 2 training transitions")
    sampler = ShardedSampler(data, cfg.data_shards, cfg.batch_size, cfg.seed, cfg.augment)
    if sampler.steps == 0:
        raise UserError(f"train.data_shards={cfg.data_shards}: a shard has no training transition (transitions per "
                        f"shard: {', '.join(map(str, sampler.sizes))}); use fewer shards")
    val = Stage1Data(worlds, val=True, revisit_share=cfg.revisit_share, seed=cfg.seed)
    val_sizes = ShardedSampler(val, cfg.data_shards, cfg.batch_size, 0, False).sizes
    if len(val) >= 2 and min(val_sizes) == 0:
        log(f"stage 1: no validation loss: a data shard has no validation transition (validation transitions per "
            f"shard: {', '.join(map(str, val_sizes))}; more trajectories or fewer shards)")
    return data, sampler, val


def _resume_stage1(model, opt, sampler: ShardedSampler, cfg: TrainConfig, checkpoint: Path | None, dist,
                   log) -> tuple[dict, int]:
    """(history, epochs done): from the checkpoint when there is one (rank 0's on every rank;
    model, optimizer and sampler restored), else an empty history."""
    history = {"step": [], "loss": [], "ce": [], "contrastive": [], "epoch_val": []}
    ck = None
    if checkpoint is not None and Path(checkpoint).is_file() and (dist is None or dist.is_main):
        ck = torch.load(checkpoint, map_location="cpu", weights_only=False)
    if dist is not None and dist.enabled:   # rank 0's checkpoint (or none) on every rank
        ck = dist.broadcast(ck)
    if ck is None:
        return history, 0
    if ck.get("data_shards", 1) != cfg.data_shards:
        raise UserError(f"stage-1 checkpoint {checkpoint} was trained with train.data_shards="
                        f"{ck.get('data_shards', 1)}, this run has {cfg.data_shards}: its batches continue only "
                        f"with the same shards (set it back, or start over with --no-resume)")
    model.backbone.load_state_dict(ck["backbone"])
    model.inverse.load_state_dict(ck["inverse"])
    opt.load_state_dict(ck["opt"])
    history, start_epoch = ck["history"], ck["epoch"]
    if "sampler_state" in ck:    # the generators as they were: the run continues as if never stopped
        sampler.set_state(ck["sampler_state"])
    else:                        # a checkpoint written before the sampler's state was kept
        sampler.gens[0] = np.random.default_rng(ck.get("rng_seed", cfg.seed + start_epoch))
    log(f"stage 1: resumed from {checkpoint} after epoch {start_epoch}")
    return history, start_epoch


class _Stage1Loss:
    """The stage-1 losses of the batch of sampler rows `sel`: in this process, or under
    torch.distributed with one DistributedDataParallel module per h frozen or not (built at
    its first batch), this rank giving the rows of its data shards."""

    def __init__(self, model, data: Stage1Data, cfg: TrainConfig, dist, device):
        self.model, self.data, self.cfg, self.dist, self.device = model, data, cfg, dist, device
        self.ddp: dict = {}

    def __call__(self, sel, jitter, freeze: bool):
        if self.dist is not None and self.dist.enabled:   # this rank's rows: its data shards' (shard order = rank)
            return self._sharded(self.data.batch(sel, jitter, rows=self.dist.shard(len(sel))), freeze)
        batch = self.data.batch(sel, jitter)
        if self.device.type != "cpu":
            batch = tuple(t.to(self.device) for t in batch)
        return stage1_step(self.model, batch, self.cfg, freeze_h=freeze)

    def _sharded(self, batch, freeze: bool):
        if freeze not in self.ddp:
            from torch.nn.parallel import DistributedDataParallel

            model, device = self.model, self.device
            self.ddp[freeze] = DistributedDataParallel(
                _ShardedStage1(model.backbone, model.inverse, self.cfg, self.dist, freeze),
                device_ids=[device.index] if device.type == "cuda" else None)
        return self.ddp[freeze](*[t.to(self.device) for t in batch])


def _stage1_epoch(model, opt, sampler: ShardedSampler, loss: _Stage1Loss, cfg: TrainConfig, epoch: int,
                  step: int, freeze: bool, history: dict, tqdm):
    """The optimizer steps of one epoch -> (sums of the (total, ce, contrastive) losses, the
    last learning rate, the next step). Every 10th step's losses go into history."""
    steps_per_epoch = sampler.steps
    model.train()
    if freeze:
        model.backbone.eval()
    sampler.epoch()
    sums = np.zeros(3)
    bar = tqdm(range(steps_per_epoch), desc=f"stage 1 h+f-dagger epoch {epoch + 1}/{cfg.local_epochs}"
               + (" (h frozen)" if freeze else ""), unit="batch", leave=False)
    for s in bar:
        sel, jitter = sampler.batch(s)
        total, ce, con = loss(sel, jitter, freeze)
        lr = stage1_lr(cfg, step, steps_per_epoch * cfg.local_epochs)
        for group in opt.param_groups:
            group["lr"] = lr
        opt.zero_grad(set_to_none=True)
        total.backward()
        opt.step()
        vals = (total.item(), ce.item(), con.item())
        sums += vals
        if step % 10 == 0:
            history["step"].append(step)
            history["loss"].append(vals[0])
            history["ce"].append(vals[1])
            history["contrastive"].append(vals[2])
        bar.set_postfix(loss=f"{vals[0]:.3f}", ce=f"{vals[1]:.3f}", con=f"{vals[2]:.3f}", lr=f"{lr:.1e}",
                        refresh=False)
        step += 1
    bar.close()
    return sums, lr, step


def _save_stage1(checkpoint: Path, model, opt, sampler: ShardedSampler, history: dict, epochs: int,
                 cfg: TrainConfig, main: bool):
    """The checkpoint after `epochs` epochs (written by rank 0 only, via a .tmp file)."""
    # a draw kept from the checkpoints before the sampler: runs give the batches they gave then
    rng_seed = int(sampler.gens[0].integers(1 << 31))   # on every rank: the generators stay equal
    if main:
        tmp = Path(str(checkpoint) + ".tmp")
        torch.save({"backbone": model.backbone.state_dict(), "inverse": model.inverse.state_dict(),
                    "opt": opt.state_dict(), "history": history, "epoch": epochs,
                    "rng_seed": rng_seed, "sampler_state": sampler.state(),
                    "data_shards": cfg.data_shards}, tmp)
        tmp.replace(checkpoint)


def train_stage1(model, worlds: list[WorldData], cfg: TrainConfig, checkpoint: Path | None = None,
                 progress=None, log=print, dist=None) -> dict:
    """Train h + f-dagger. Resumes from `checkpoint` (saved after every epoch). Returns history.

    Batches come from ShardedSampler over cfg.data_shards shards of whole trajectories.
    dist: a o4a_nav.learning.distributed.DistContext to train data-parallel (every rank
    calls this with the same arguments, its worlds holding the images of its data shards,
    load_worlds; rank 0 writes the checkpoint); None: one process."""
    tqdm = _tqdm(progress)
    data, sampler, val = _stage1_data(worlds, cfg, log)
    device = dist.device if dist is not None else torch.device("cpu")
    if device.type != "cpu":
        model.backbone.to(device)
        model.inverse.to(device)
    # the batch's images are channels-last (NHWC pixels permuted), so are the conv weights
    # here (stage-1 samples/s on the 2 CPU cores: x1.10 against 9be204e where the batch
    # gathering alone gives x1.05; scripts/measure_stage1_throughput.py, docs/LEARNING.md)
    model.backbone.to(memory_format=torch.channels_last)
    torch.manual_seed(cfg.seed)
    opt = torch.optim.Adam(list(model.backbone.parameters()) + list(model.inverse.parameters()), lr=cfg.lr)
    history, start_epoch = _resume_stage1(model, opt, sampler, cfg, checkpoint, dist, log)
    steps_per_epoch = sampler.steps
    step = start_epoch * steps_per_epoch   # (a resumed run continues the step count of the history)
    loss = _Stage1Loss(model, data, cfg, dist, device)
    for epoch in range(start_epoch, cfg.local_epochs):
        freeze = epoch >= cfg.local_epochs - cfg.freeze_h_epochs and cfg.local_epochs > cfg.freeze_h_epochs
        sums, lr, step = _stage1_epoch(model, opt, sampler, loss, cfg, epoch, step, freeze, history, tqdm)
        val_loss = validation_loss(model, val, cfg, dist=dist) if len(val) >= 2 else None
        history["epoch_val"].append({"epoch": epoch + 1, "train_loss": float(sums[0] / steps_per_epoch),
                                     "train_ce": float(sums[1] / steps_per_epoch),
                                     "train_contrastive": float(sums[2] / steps_per_epoch),
                                     "val_loss": val_loss, "h_frozen": bool(freeze), "lr_end": lr})
        log(f"stage 1 epoch {epoch + 1}/{cfg.local_epochs}: train loss {sums[0] / steps_per_epoch:.4f} "
            f"(ce {sums[1] / steps_per_epoch:.4f}, contrastive {sums[2] / steps_per_epoch:.4f})"
            + (f", val loss {val_loss:.4f}" if val_loss is not None else ""))
        if checkpoint is not None:
            _save_stage1(checkpoint, model, opt, sampler, history, epoch + 1, cfg, dist is None or dist.is_main)
    model.eval()
    model.backbone.to(memory_format=torch.contiguous_format)
    if device.type != "cpu":   # the later stages run on the CPU
        model.backbone.to("cpu")
        model.inverse.to("cpu")
    return history


@torch.no_grad()
def validation_loss(model, val: Stage1Data, cfg: TrainConfig, max_batches: int = 8, dist=None) -> float | None:
    """Mean stage-1 loss of the first `max_batches` batches of validation transitions
    (ShardedSampler seeded 1234, no jitter); None when a data shard has no validation
    transition. dist: every rank builds its rows and the loss covers the whole batch."""
    model.eval()
    sampler = ShardedSampler(val, cfg.data_shards, cfg.batch_size, 1234, augment=False)
    if sampler.steps == 0:
        return None
    sampler.epoch()
    device = next(model.backbone.parameters()).device
    losses = []
    for s in range(min(max_batches, sampler.steps)):
        sel, _ = sampler.batch(s)
        if dist is not None and dist.enabled:
            batch = val.batch(sel, rows=dist.shard(len(sel)))
            total, _, _ = _ShardedStage1(model.backbone, model.inverse, cfg, dist, False)(
                *[t.to(device) for t in batch])
        else:
            total, _, _ = stage1_step(model, tuple(t.to(device) for t in val.batch(sel)), cfg)
        losses.append(float(total))
    return float(np.mean(losses))


@torch.no_grad()
def embed_frames(model, world: WorldData, batch: int = 256, progress=None, desc="embedding",
                 dist=None) -> torch.Tensor:
    """h of every frame of a world -> (N, n) float32. The frames are embedded data shard by
    data shard (world.shard), in batches of up to `batch` frames of one shard, so that the
    codes do not depend on which process embeds which shard. dist (a DistContext): every
    rank embeds the shards it holds and all ranks get all codes; without it this process
    must hold every frame's images."""
    tqdm = _tqdm(progress)
    model.eval()
    shard = world.shards
    mine = np.unique(shard if world.held_frames is None else shard[world.held_frames])
    chunks = []
    for s in mine.tolist():
        frames = np.flatnonzero(shard == s)
        chunks += [frames[k:k + batch] for k in range(0, len(frames), batch)]
    out = [torch.zeros(0, model.embed_dim)]
    for f in tqdm(chunks, desc=f"{desc} {world.name}", unit="batch", leave=False):
        out.append(model.backbone(images_to_tensor(world.images("front", f)), images_to_tensor(world.images("rear", f))))
    codes, frames = torch.cat(out), np.concatenate([np.zeros(0, np.int64)] + chunks)
    if dist is not None and dist.enabled:
        parts = dist.all_gather((codes, frames))
        codes, frames = torch.cat([p[0] for p in parts]), np.concatenate([p[1] for p in parts])
    if len(frames) != len(world):
        raise ValueError(f"world {world.name}: {len(frames)} of {len(world)} frames embedded; without dist this "
                         f"process must hold the images of every frame")
    if np.array_equal(frames, np.arange(len(world))):
        return codes
    return codes[torch.as_tensor(np.argsort(frames, kind="stable"))]


@torch.no_grad()
def inverse_accuracy(model, world: WorldData, codes: torch.Tensor, n_negative: int = 5000, seed: int = 0,
                     neg_min_distance_m: float = 1.0) -> dict:
    """f-dagger accuracy per class on the validation trajectories of one world.

    Motion classes: recorded transitions; STOP: a frame with itself; NOT_CONNECTED: random
    pairs of validation frames that are not within 2 steps on one trajectory and, when
    ground-truth poses exist, at least `neg_min_distance_m` apart (poses used only here).
    """
    rng = np.random.default_rng(seed)
    t = world.transitions(val=True)
    frames = world.frames(val=True)
    if len(frames) < 2:
        return {}
    src = [t, frames]
    dst = [t + 1, frames]
    lab = [world.actions[t].astype(np.int64) + 1, np.full(len(frames), 1)]
    i = rng.choice(frames, n_negative)
    j = rng.choice(frames, n_negative)
    ok = ~((world.traj[i] == world.traj[j]) & (np.abs(i - j) <= 2))
    if world.poses is not None:
        ok &= np.hypot(*(world.poses[i, :2] - world.poses[j, :2]).T) >= neg_min_distance_m
    src.append(i[ok])
    dst.append(j[ok])
    lab.append(np.full(int(ok.sum()), NOT_CONNECTED))
    src, dst, lab = map(np.concatenate, (src, dst, lab))
    pred = []
    for s in range(0, len(src), 4096):
        pred.append(model.inverse(codes[src[s:s + 4096]], codes[dst[s:s + 4096]]).argmax(1).numpy())
    pred = np.concatenate(pred)
    conf = np.zeros((len(CLASSES), len(CLASSES)), int)
    np.add.at(conf, (lab, pred), 1)
    out = {"per_class": {}, "confusion": conf.tolist()}
    for c, name in enumerate(CLASSES):
        n = int((lab == c).sum())
        if n:
            out["per_class"][name] = {"accuracy": float((pred[lab == c] == c).mean()), "count": n}
    motion = lab >= 2
    out["motion_accuracy"] = float((pred[motion] == lab[motion]).mean()) if motion.any() else None
    out["balanced_accuracy"] = float(np.mean([v["accuracy"] for v in out["per_class"].values()]))
    return out


def train_forward(model, codes_list: list[torch.Tensor], edges_list: list[dict], cfg: TrainConfig,
                  progress=None, log=print) -> dict:
    """Stage 3: f on motion edges of all worlds' graphs. codes frozen (h is not touched)."""
    tqdm = _tqdm(progress)
    xs, xt, acts = [], [], []
    for codes, e in zip(codes_list, edges_list):
        m = (e["action"] >= Action.FORWARD) & (e["action"] <= Action.ROTATE_RIGHT)
        xs.append(codes[torch.as_tensor(e["src"][m], dtype=torch.long)])
        xt.append(codes[torch.as_tensor(e["dst"][m], dtype=torch.long)])
        acts.append(torch.as_tensor(e["action"][m].astype(np.int64)))
    xs, xt, acts = torch.cat(xs), torch.cat(xt), torch.cat(acts)
    history = {"step": [], "loss": [], "n_edges": int(len(acts))}
    if len(acts) == 0:
        log("stage 3: no motion edges; f left untrained")
        return history
    gen = torch.Generator().manual_seed(cfg.seed)
    torch.manual_seed(cfg.seed)
    opt = torch.optim.Adam(model.forward_model.parameters(), lr=cfg.geodesic_lr)
    bsz = min(cfg.forward_batch, len(acts))
    model.forward_model.train()
    bar = tqdm(range(cfg.forward_steps), desc="stage 3 f", unit="step", leave=False)
    for step in bar:
        sel = torch.randint(len(acts), (bsz,), generator=gen)
        loss = F.mse_loss(model.forward_model(xs[sel], acts[sel]), xt[sel])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if step % 20 == 0:
            history["step"].append(step)
            history["loss"].append(loss.item())
    bar.close()
    model.forward_model.eval()
    with torch.no_grad():
        k = torch.randperm(len(acts), generator=gen)[:50000]
        history["final_mse"] = float(F.mse_loss(model.forward_model(xs[k], acts[k]), xt[k]))
        history["identity_mse"] = float(F.mse_loss(xs[k], xt[k]))   # baseline: predict no motion
    log(f"stage 3 f: {len(acts)} motion edges, MSE {history['final_mse']:.4f} "
        f"(no-motion baseline {history['identity_mse']:.4f})")
    return history


@torch.no_grad()
def chain_predictions(forward_model, codes: torch.Tensor, world: WorldData) -> torch.Tensor:
    """(N, n): f(x_{t-1}, a_{t-1}) for every frame t reached from t-1 by a recorded motion;
    NaN rows for the others (trajectory starts, STOP, gaps)."""
    pred = torch.full_like(codes, float("nan"))
    t = np.flatnonzero(world.next_ok)
    acts = world.actions[t].astype(np.int64)
    motion = (acts >= Action.FORWARD) & (acts <= Action.ROTATE_RIGHT)
    t, acts = t[motion], acts[motion]
    if len(t):
        forward_model.eval()
        pred[torch.as_tensor(t + 1)] = forward_model(codes[torch.as_tensor(t)], torch.as_tensor(acts))
    return pred


def train_geodesic(head, codes: torch.Tensor, dist_rows: np.ndarray, sources: np.ndarray, targets: np.ndarray,
                   cfg: TrainConfig, progress=None, log=print, desc="stage 4 p+", predicted: torch.Tensor | None = None) -> dict:
    """Stage 4: regress d_G(source, target) for sampled pairs; unreachable pairs masked.

    dist_rows: (K, N) float32 d_G from each of `sources` (K) to every node; `targets`:
    node indices a pair may end at. predicted: chain_predictions(...) (N, n); with
    cfg.geodesic_predicted_share > 0 that share of the sources (those that have a
    prediction) is given as f's prediction instead of h's code.
    """
    tqdm = _tqdm(progress)
    gen = torch.Generator().manual_seed(cfg.seed)
    rows = torch.as_tensor(dist_rows[:, targets])                    # (K, T)
    finite = torch.isfinite(rows)
    if not bool(finite.any()):
        raise ValueError("no reachable (source, target) pair in the training graph")
    pairs = finite.nonzero()                                         # reachable pairs (row, col)
    src_nodes = torch.as_tensor(sources, dtype=torch.long)
    tgt_nodes = torch.as_tensor(targets, dtype=torch.long)
    scale = float(rows[finite].mean().clamp(min=1e-3))
    head.distance_scale.fill_(scale)                                 # regress d_G / scale = O(1)
    opt = torch.optim.Adam(head.parameters(), lr=cfg.geodesic_lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, cfg.geodesic_steps)
    history = {"step": [], "loss": [], "n_pairs": int(len(pairs)), "distance_scale": scale,
               "loss_units": "MSE of d_G / distance_scale"}
    use_pred = predicted is not None and cfg.geodesic_predicted_share > 0
    if use_pred:
        history["predicted_sources"] = float(torch.isfinite(predicted[src_nodes][:, 0]).float().mean())
    head.train()
    bar = tqdm(range(cfg.geodesic_steps), desc=desc, unit="step", leave=False)
    running = None
    for step in bar:
        sel = pairs[torch.randint(len(pairs), (cfg.geodesic_batch,), generator=gen)]
        target = rows[sel[:, 0], sel[:, 1]]
        xs = codes[src_nodes[sel[:, 0]]]
        xg = codes[tgt_nodes[sel[:, 1]]]
        if use_pred:
            alt = predicted[src_nodes[sel[:, 0]]]
            swap = (torch.rand(len(sel), generator=gen) < cfg.geodesic_predicted_share) & torch.isfinite(alt[:, 0])
            xs = torch.where(swap[:, None], alt, xs)
        if cfg.geodesic_noise > 0:
            xs = xs + cfg.geodesic_noise * torch.randn(xs.shape, generator=gen)
            xg = xg + cfg.geodesic_noise * torch.randn(xg.shape, generator=gen)
        loss = F.mse_loss(head(xs, xg) / scale, target / scale)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        lv = loss.item()
        running = lv if running is None else 0.98 * running + 0.02 * lv
        if step % 20 == 0:
            history["step"].append(step)
            history["loss"].append(lv)
            bar.set_postfix(loss=f"{running:.3f}", refresh=False)
    bar.close()
    head.eval()
    log(f"{desc}: {len(pairs)} reachable pairs, final MSE ~{running:.4f}")
    return history
