"""Scale-out of `o4a train` on torch.distributed (DDP). ROS-free.

    torchrun --nproc_per_node 2 -m o4a_nav.cli train --set train.data_shards=2 --bags ... --out ...   # gloo, CPU
    torchrun --nproc_per_node 4 -m o4a_nav.cli train --device cuda --set train.data_shards=4 --bags ... --out ...   # NCCL

torchrun sets RANK / WORLD_SIZE / LOCAL_RANK / MASTER_ADDR / MASTER_PORT; without them
(a plain `o4a train`) nothing here is used and training runs exactly as before.

What runs where (docs/LEARNING.md, "Scale-out"):
- data: the frames form train.data_shards = S shards of whole trajectories
  (dataset.assign_shards, the same on every rank); S must be a multiple of the number of
  processes m, and rank k holds the images of shards k S/m .. (k + 1) S/m - 1 only
  (DistContext.data_shards; load_worlds decodes nothing else). Actions, trajectories and
  poses of all frames are on every rank.
- stage 1 (h + f-dagger): every rank draws the same global batch of B transitions, B / S
  from each shard in shard order, each shard from its own generator (training.ShardedSampler:
  the same batches, row for row, in 1 or m processes with the same S); a rank encodes the
  rows of its shards (B / m of them, contiguous); the codes are all-gathered with autograd
  (torch.distributed.nn.functional.all_gather), so every rank computes the loss over the
  whole batch's B x 2B pairs, exactly as one process would; DistributedDataParallel
  averages the gradients. The validation loss is computed the same way. Rank 0 writes the
  checkpoint after each epoch (with S and the generators' state); on resume rank 0 reads it
  and broadcasts it to the others.
- stage 2 (graph): each rank embeds its shards' frames, the codes (small) are gathered on
  every rank in frame order; the all-pairs f-dagger tiles are split by row blocks across
  ranks; the edges are gathered on every rank.
- stages 3 and 4, the model directory and the report: rank 0 only (seconds to minutes);
  they need codes, poses and trajectories, never images.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from datetime import timedelta

import torch

from o4a_nav.errors import UserError


# How long a collective may wait for the slowest rank. Longer than torch's defaults (30 min
# gloo, 10 min NCCL) because the other ranks wait at the end for rank 0's stages 3-4 and
# report, which take minutes per world on a CPU (docs/LEARNING.md).
PROCESS_GROUP_TIMEOUT = timedelta(hours=6)


@dataclass
class DistContext:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def barrier(self) -> None:
        if self.enabled:
            torch.distributed.barrier()

    def broadcast(self, obj, src: int = 0):
        """Rank `src`'s picklable object on every rank."""
        if not self.enabled:
            return obj
        box = [obj if self.rank == src else None]
        torch.distributed.broadcast_object_list(box, src=src)
        return box[0]

    def all_gather(self, obj) -> list:
        """[rank 0's object, rank 1's, ...] on every rank."""
        if not self.enabled:
            return [obj]
        out = [None] * self.world_size
        torch.distributed.all_gather_object(out, obj)
        return out

    def shard(self, n: int) -> slice:
        """This rank's contiguous share of n items (the first ranks take one more)."""
        per, extra = divmod(n, self.world_size)
        start = self.rank * per + min(self.rank, extra)
        return slice(start, start + per + (self.rank < extra))

    def data_shards(self, shards: int) -> slice:
        """The data shards (of train.data_shards) this rank holds: a contiguous share, the
        same number on every rank (UserError unless `shards` is a multiple of world_size)."""
        if shards % self.world_size:
            raise UserError(f"train.data_shards ({shards}) must be a multiple of the number of processes "
                            f"({self.world_size}): every process holds as many shards "
                            f"(e.g. --set train.data_shards={self.world_size})")
        return self.shard(shards)

    def close(self, wait: bool = True) -> None:
        """Leave the process group. With `wait` (a run that ended normally) every rank first
        waits for the others: rank 0 runs stages 3-4 and the report alone, and a rank that
        tore its gloo group down meanwhile could abort the job (3 of 22 runs of the two-process test:
        "terminate called without an active exception", exit -6, and torchrun then stops
        rank 0 too). The wait is bounded by the group's timeout (PROCESS_GROUP_TIMEOUT)."""
        if self.enabled and torch.distributed.is_initialized():
            if wait:
                torch.distributed.barrier()
            torch.distributed.destroy_process_group()


def setup(device: str = "cpu") -> DistContext:
    """A DistContext for this process: single-process unless torchrun's environment is
    set; the process group uses gloo on CPU and NCCL with device cuda."""
    if device not in ("cpu", "cuda"):
        raise UserError(f"--device must be cpu or cuda, not {device!r}")
    if device == "cuda" and not torch.cuda.is_available():
        raise UserError("--device cuda: no CUDA device is available to torch here")
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size <= 1:
        return DistContext(device=torch.device(device))
    rank, local_rank = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
    if device == "cuda":
        torch.cuda.set_device(local_rank)
        dev = torch.device("cuda", local_rank)
    else:
        dev = torch.device("cpu")
    if not torch.distributed.is_initialized():
        torch.distributed.init_process_group("nccl" if device == "cuda" else "gloo", timeout=PROCESS_GROUP_TIMEOUT)
    return DistContext(rank, world_size, local_rank, dev)


def gather_codes(codes: torch.Tensor, ctx: DistContext) -> torch.Tensor:
    """Concatenate every rank's (b, n) codes in rank order, differentiably: the gradient
    of a loss computed on every rank flows back to the rank that encoded each row (summed
    over ranks, which DDP's gradient average turns back into the one-process gradient)."""
    from torch.distributed.nn.functional import all_gather

    return torch.cat(all_gather(codes.contiguous()), 0)
