#!/usr/bin/env python
"""Stage-1 training throughput (h + f-dagger): samples/s, as ratios within one run.

A sample is one transition (o_t, o_t+1: 4 images); one step = build the batch (with the
brightness jitter), forward, backward, Adam. Each variant runs in its own subprocess,
`--rounds` times, interleaved (A B C A B C ...), so a busy machine slows all of them alike;
the figure is the median over rounds and the ratio is against the first variant.

Variants: `base` = the code of a git commit (`--base-commit`, default the commit before the
stage-1 speed work) exported with `git archive` to a temporary folder; `fp32` and `bf16` =
this tree as train_stage1 runs it (backbone weights channels-last) with train.precision
fp32 / bf16; a `-nchw` suffix (`fp32-nchw`) keeps the weights in the default format.  --accuracy also trains the same model from the
same start on the same batches in fp32 and in bf16 on a real bag, and reports the losses.

    .venv/bin/python scripts/measure_stage1_throughput.py --steps 20 --rounds 3   # ~3 min on 2 idle cores
    .venv/bin/python scripts/measure_stage1_throughput.py --variants fp32,bf16 --steps 6 --rounds 1
    .venv/bin/python scripts/measure_stage1_throughput.py --preset paper      # ResNet-18
    .venv/bin/python scripts/measure_stage1_throughput.py --accuracy data/bags/two_rooms_s0 --accuracy-steps 300
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BASE_COMMIT = "9be204e"   # main before the stage-1 speed work (session 6)


def _worker(args) -> None:
    """One variant: time `--steps` stage-1 steps on random images. Prints one JSON line."""
    import numpy as np
    import torch

    from o4a_nav.learning.config import PRESETS, ModelConfig, TrainConfig
    from o4a_nav.learning.dataset import from_arrays
    from o4a_nav.learning.model_io import O4AModel
    from o4a_nav.learning.training import Stage1Data, stage1_step
    try:
        from o4a_nav.learning.training import jitter_draws

        def make_batch(sel):
            return data.batch(sel, jitter_draws(rng, len(sel)))
    except ImportError:   # a --base-commit from before the sharded sampler
        def make_batch(sel):
            return data.batch(sel, True, rng)

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    worlds = []
    for k in range(args.worlds):   # several worlds: the batch gathers across them as in training
        n = args.frames
        img = rng.integers(0, 256, (2, n, 96, 96, 3), dtype=np.uint8)
        worlds.append(from_arrays(f"w{k}", img[0], img[1], rng.integers(1, 4, n), np.arange(n) // 500))
    precision, _, fmt = (args.precision or "").partition("-")
    tcfg = TrainConfig(batch_size=args.batch) if not precision else TrainConfig(batch_size=args.batch, precision=precision)
    model = O4AModel(ModelConfig(**PRESETS[args.preset]))
    if precision and fmt != "nchw":   # as train_stage1 does since the channels-last change
        model.backbone.to(memory_format=torch.channels_last)
    model.train()
    opt = torch.optim.Adam(list(model.backbone.parameters()) + list(model.inverse.parameters()), lr=1e-4)
    data = Stage1Data(worlds, val=False)
    perm = rng.permutation(len(data))
    build = 0.0
    t0 = None
    for s in range(args.warmup + args.steps):
        if s == args.warmup:
            t0, build = time.perf_counter(), 0.0
        tb = time.perf_counter()
        batch = make_batch(perm[s * args.batch:(s + 1) * args.batch])
        build += time.perf_counter() - tb
        total, _, _ = stage1_step(model, batch, tcfg)
        opt.zero_grad(set_to_none=True)
        total.backward()
        opt.step()
    wall = time.perf_counter() - t0
    print(json.dumps({"samples_per_s": args.steps * args.batch / wall, "batch_build_share": build / wall}))


def _accuracy(args) -> dict:
    """fp32 vs bf16 from the same start on the same batches of a real bag."""
    import copy

    import numpy as np
    import torch

    sys.path.insert(0, str(ROOT))
    from o4a_nav.learning.config import PRESETS, ModelConfig, TrainConfig
    from o4a_nav.learning.dataset import load_worlds
    from o4a_nav.learning.model_io import O4AModel
    from o4a_nav.learning.training import Stage1Data, jitter_draws, stage1_step, validation_loss

    torch.set_num_threads(args.threads)
    worlds = load_worlds([args.accuracy])
    data, val = Stage1Data(worlds, val=False), Stage1Data(worlds, val=True)
    torch.manual_seed(0)
    start = O4AModel(ModelConfig(**PRESETS[args.preset]))
    out = {}
    for prec in ("fp32", "bf16"):
        tcfg = TrainConfig(batch_size=args.batch, precision=prec)
        model = copy.deepcopy(start)
        model.train()
        opt = torch.optim.Adam(list(model.backbone.parameters()) + list(model.inverse.parameters()), lr=3e-4)
        rng = np.random.default_rng(0)
        perm = np.concatenate([rng.permutation(len(data)) for _ in range(1 + args.accuracy_steps * args.batch // len(data))])
        losses = []
        t0 = time.perf_counter()
        for s in range(args.accuracy_steps):
            batch = data.batch(perm[s * args.batch:(s + 1) * args.batch], jitter_draws(rng, args.batch))
            total, _, _ = stage1_step(model, batch, tcfg)
            opt.zero_grad(set_to_none=True)
            total.backward()
            opt.step()
            losses.append(float(total))
        # validation in float32 for both, so the numbers compare the learned weights
        v = validation_loss(model, val, TrainConfig(batch_size=args.batch), max_batches=16)
        out[prec] = {"train_loss_last50": float(np.mean(losses[-50:])), "val_loss_fp32": v,
                     "wall_s": time.perf_counter() - t0}
        print(f"accuracy {prec}: {out[prec]}", flush=True)
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--precision", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--variants", default="base,fp32-nchw,fp32")
    ap.add_argument("--base-commit", default=BASE_COMMIT)
    ap.add_argument("--preset", default="compact", choices=["compact", "paper"])
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--steps", type=int, default=30)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--worlds", type=int, default=3)
    ap.add_argument("--frames", type=int, default=2000, help="random frames per world")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--accuracy", metavar="BAG", help="also compare fp32 and bf16 training on this bag")
    ap.add_argument("--accuracy-steps", type=int, default=300)
    ap.add_argument("--json", default="runs/stage1_throughput.json")
    args = ap.parse_args()
    if args.worker:
        _worker(args)
        return 0

    variants = [v.strip() for v in args.variants.split(",") if v.strip()]
    trees = {}
    tmp = tempfile.TemporaryDirectory(prefix="o4a_base_")
    if "base" in variants:
        base = Path(tmp.name)
        archive = subprocess.run(["git", "-C", str(ROOT), "archive", args.base_commit, "o4a_nav"],
                                 check=True, capture_output=True).stdout
        subprocess.run(["tar", "-x", "-C", str(base)], input=archive, check=True)
        trees["base"] = base
    common = ["--preset", args.preset, "--batch", str(args.batch), "--steps", str(args.steps), "--warmup",
              str(args.warmup), "--worlds", str(args.worlds), "--frames", str(args.frames), "--threads", str(args.threads)]
    runs: dict[str, list] = {v: [] for v in variants}
    for r in range(args.rounds):
        for v in variants:
            tree = trees.get(v, ROOT)
            cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", *common]
            if v != "base":
                cmd += ["--precision", v]
            env = dict(os.environ, PYTHONPATH=str(tree))
            res = subprocess.run(cmd, cwd=tree, env=env, check=True, capture_output=True, text=True)
            rec = json.loads(res.stdout.strip().splitlines()[-1])
            runs[v].append(rec)
            print(f"round {r + 1}/{args.rounds} {v}: {rec['samples_per_s']:.1f} samples/s "
                  f"(batch building {100 * rec['batch_build_share']:.0f} % of the wall time)", flush=True)
    ref = statistics.median(x["samples_per_s"] for x in runs[variants[0]])
    summary = {}
    print(f"\nstage 1, preset {args.preset}, batch {args.batch}, {args.threads} threads, median of {args.rounds} rounds:")
    for v in variants:
        med = statistics.median(x["samples_per_s"] for x in runs[v])
        summary[v] = {"samples_per_s": med, "ratio": med / ref,
                      "batch_build_share": statistics.median(x["batch_build_share"] for x in runs[v])}
        print(f"  {v:5s} {med:7.1f} samples/s  x{med / ref:.2f}  (batch building {100 * summary[v]['batch_build_share']:.0f} %)")
    result = {"args": vars(args), "runs": runs, "summary": summary}
    if args.accuracy:
        result["accuracy"] = _accuracy(args)
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps(result, indent=1))
    print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
