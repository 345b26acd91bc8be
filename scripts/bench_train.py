#!/usr/bin/env python
"""Benchmark of the learning pipeline's offline cost (stage 2, the training graph).

Measures, in one run on this machine:
  * all-pairs f-dagger (N^2 ordered pairs) with the split first layer + blocked buffers
    (o4a_nav.learning.graph.all_pairs_edges) against the naive per-pair evaluation
    (graph.naive_pairs_edges: full first layer on concat(x_i, x_j) for every pair), same N;
  * the blocked version at N = 10,000 (and more with --sizes), its peak memory, and what a
    dense float64 N x N matrix would need;
  * chunked many-source Dijkstra (2,000 sources, K x N float32 kept).
Codes are real (`--model` + `--bag`: h of the bag's frames) or random with an untrained,
NOT_CONNECTED-biased head (default; similar edge sparsity to a trained model).

    .venv/bin/python scripts/bench_train.py                       # ~5-10 min on 2 cores
    .venv/bin/python scripts/bench_train.py --model models/o4a_default --bag data/bags/two_rooms_s0
    .venv/bin/python scripts/bench_train.py --pipeline data/bags/two_rooms_s0   # + whole `o4a train` on one world
"""
from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from o4a_nav.learning import graph as G  # noqa: E402
from o4a_nav.learning.config import ModelConfig, TrainConfig, graph_logit_offset  # noqa: E402
from o4a_nav.learning.models import InverseHead  # noqa: E402


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def codes_and_head(args, n: int):
    if args.model and args.bag:
        from o4a_nav.learning.dataset import load_worlds
        from o4a_nav.learning.model_io import load_model
        from o4a_nav.learning.training import embed_frames

        model = load_model(args.model)
        [w] = load_worlds([args.bag])
        codes = embed_frames(model, w)
        reps = int(np.ceil(n / len(codes)))
        codes = torch.cat([codes] * reps)[:n] + 0.01 * torch.randn(reps * len(codes), codes.shape[1])[:n]
        return codes, model.inverse
    torch.manual_seed(0)
    cfg = ModelConfig()
    head = InverseHead(cfg).eval()
    with torch.no_grad():
        head.rest[-1].bias[0] -= 2.0     # with the pipeline's offset: ~1 % of pairs connected
    return torch.randn(n, cfg.embed_dim) * 3, head


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", type=int, nargs="+", default=[10000])
    ap.add_argument("--compare-n", type=int, default=2000, help="N for the blocked vs naive comparison")
    ap.add_argument("--sources", type=int, default=2000)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--model")
    ap.add_argument("--bag")
    ap.add_argument("--pipeline", metavar="BAG", help="also time `o4a train` on this one-world bag")
    ap.add_argument("--json", default="runs/bench_train.json")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    res = {"threads": args.threads, "torch": torch.__version__}

    n = args.compare_n
    codes, head = codes_and_head(args, n)
    t = time.perf_counter()
    off = graph_logit_offset(TrainConfig())      # the pipeline's decision rule
    res["nc_offset"] = off
    fast = G.all_pairs_edges(head, codes, nc_offset=off)
    t_fast = time.perf_counter() - t
    t = time.perf_counter()
    slow = G.naive_pairs_edges(head, codes, nc_offset=off)
    t_slow = time.perf_counter() - t
    same = set(zip(*(a.tolist() for a in fast))) == set(zip(*(a.tolist() for a in slow)))
    res["compare"] = {"n": n, "pairs": n * n, "blocked_s": t_fast, "naive_s": t_slow,
                      "speedup": t_slow / t_fast, "identical_edges": same, "edges": int(len(fast[0]))}
    print(f"N={n}: blocked {t_fast:.2f}s, naive {t_slow:.2f}s -> {t_slow / t_fast:.1f}x faster, "
          f"identical edges: {same} ({len(fast[0])} edges)", flush=True)

    res["sizes"] = []
    for n in args.sizes:
        codes, head = codes_and_head(args, n)
        rss0 = peak_rss_mb()
        t = time.perf_counter()
        actions = np.ones(n, np.int8)
        next_ok = np.ones(n, bool)
        next_ok[-1] = False
        g = G.build_graph(head, codes, actions, next_ok, nc_offset=off)
        t_graph = time.perf_counter() - t
        rng = np.random.default_rng(0)
        sources = np.sort(rng.choice(n, min(args.sources, n), replace=False))
        t = time.perf_counter()
        rows = G.shortest_paths(g, sources)
        t_dij = time.perf_counter() - t
        entry = {"n": n, "graph_s": t_graph, "pairs_per_s": n * n / t_graph, "edges": int(len(g["src"])),
                 "dijkstra_s": t_dij, "dijkstra_sources": len(sources),
                 "dist_rows_mb": rows.nbytes / 2**20, "peak_rss_mb": peak_rss_mb(), "peak_rss_before_mb": rss0,
                 "dense_float64_nxn_mb": n * n * 8 / 2**20}
        res["sizes"].append(entry)
        print(f"N={n}: all-pairs f-dagger + edges {t_graph:.1f}s ({n * n / t_graph / 1e6:.1f} M pairs/s, "
              f"{entry['edges']} edges); Dijkstra from {len(sources)} sources {t_dij:.1f}s "
              f"(rows {entry['dist_rows_mb']:.0f} MiB); peak RSS {entry['peak_rss_mb']:.0f} MiB "
              f"(a dense float64 N x N matrix alone: {entry['dense_float64_nxn_mb']:.0f} MiB)", flush=True)

    if args.pipeline:
        out = ROOT / "runs" / "bench_pipeline_model"
        t = time.perf_counter()
        subprocess.run([sys.executable, "-m", "o4a_nav.cli", "train", "--bags", args.pipeline, "--out", str(out),
                        "--work-dir", str(ROOT / "runs" / "bench_pipeline_work"), "--no-resume",
                        "--threads", str(args.threads)], check=True, cwd=ROOT)
        wall = time.perf_counter() - t
        rep = json.loads((out / "report.json").read_text())
        res["pipeline"] = {"bag": args.pipeline, "wall_s": wall, "timings_s": rep.get("timings_s")}
        print(f"o4a train on {args.pipeline}: {wall / 60:.1f} min wall; stages {rep.get('timings_s')}")

    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps(res, indent=2))
    print(f"results in {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
