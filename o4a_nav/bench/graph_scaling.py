"""Memory and per-step latency of the graph baseline as its graph grows, next to O4A.

The graph baseline keeps the training graph at run time: its memory (node codes + CSR
adjacency) and its per-step localisation (nearest of N codes) grow with the number of
nodes N; O4A keeps only the networks and a fixed-size waypoint memory (|B| = 500), so
its memory and latency do not depend on how much data it was trained on.

Graph sizes up to the real training graph(s) are random induced subgraphs; larger sizes
(marked ``synthetic``) tile the real graph with small code noise, to extrapolate to the
paper's 30,000 frames per scene. Both policies decide on the same rendered observation.
"""
from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from o4a_nav.plotting import pyplot, save_figure
from o4a_nav.types import Action

from .graph_baseline import GraphPolicy, TrainingGraph, load_training_graph
from .policies import EpisodeContext, O4APolicy


def merged_graph(graphs) -> TrainingGraph:
    """Training graphs side by side (node ids offset): the graph an SPTM-like agent would
    keep to navigate in all of their worlds."""
    codes, src, dst, wt, off = [], [], [], [], 0
    for g in graphs:
        codes.append(g.codes)
        src.append(g.src + off)
        dst.append(g.dst + off)
        wt.append(g.weight)
        off += g.n_nodes
    return TrainingGraph(np.concatenate(codes), np.concatenate(src), np.concatenate(dst), np.concatenate(wt))


def tiled(graph: TrainingGraph, n_nodes: int, rng: np.random.Generator, noise: float = 0.05) -> TrainingGraph:
    """A synthetic graph of ``n_nodes`` nodes: copies of ``graph`` with Gaussian code
    noise (sigma ``noise``), truncated to the size wanted."""
    reps = -(-n_nodes // graph.n_nodes)
    codes, src, dst, wt = [], [], [], []
    for k in range(reps):
        codes.append(graph.codes + (rng.normal(0, noise, graph.codes.shape).astype(np.float32) if k else 0))
        src.append(graph.src + k * graph.n_nodes)
        dst.append(graph.dst + k * graph.n_nodes)
        wt.append(graph.weight)
    big = TrainingGraph(np.concatenate(codes), np.concatenate(src), np.concatenate(dst), np.concatenate(wt))
    if big.n_nodes == n_nodes:
        return big
    keep = np.arange(n_nodes)
    mask = (big.src < n_nodes) & (big.dst < n_nodes)
    return TrainingGraph(big.codes[keep], big.src[mask], big.dst[mask], big.weight[mask])


def _param_bytes(modules) -> int:
    return int(sum(p.numel() * p.element_size() for m in modules for p in m.parameters()))


def _time_steps(policy, front, rear, free, repeats: int) -> np.ndarray:
    out = np.empty(repeats)
    for i in range(repeats):
        t0 = time.perf_counter()
        policy.act(front, rear, free)
        out[i] = time.perf_counter() - t0
    return out


def run_graph_scaling(cfg, sizes=None, repeats: int = 40, progress: bool = True) -> dict:
    import torch
    from tqdm import tqdm

    from o4a_nav.learning.model_io import load_model
    from o4a_nav.sim import SimRobot, load_world

    from . import report
    from .episodes import sample_episodes

    torch.set_num_threads(max(1, cfg.threads))
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    model = load_model(cfg.model)
    from o4a_nav.errors import ModelLoadError

    graphs, why = {}, []
    for w in cfg.worlds:   # (a missing graph file is rebuilt from the world's training bags)
        try:
            graphs[w] = load_training_graph(cfg.model, w)
        except ModelLoadError as exc:
            why.append(str(exc))
    if not graphs:
        raise ModelLoadError(f"{cfg.model}: no training graph for worlds {', '.join(cfg.worlds)}: {'; '.join(why)}")
    worlds = list(graphs)
    full = merged_graph(graphs.values())
    rng = np.random.default_rng(cfg.seed)
    if not sizes:
        sizes, n = [], 256
        while n < full.n_nodes:
            sizes.append(n)
            n *= 4
        sizes += [full.n_nodes, 2 * full.n_nodes, 8 * full.n_nodes]  # the last two: synthetic (tiled)
    sizes = sorted(set(int(s) for s in sizes if s >= 2))

    # One observation and one goal from the first world's episodes.
    world = load_world(worlds[0])
    ep = sample_episodes(world, worlds[0], 1, cfg.seed, ("medium",)).episodes[0]
    robot = SimRobot(world, seed=cfg.seed)
    robot.set_pose(ep.goal)
    gf, gr, _ = robot.observe()
    robot.set_pose(ep.start)
    front, rear, _ = robot.observe()
    robot.close()
    free = {Action.FORWARD, Action.ROTATE_LEFT, Action.ROTATE_RIGHT}
    ctx = EpisodeContext(gf, gr, np.random.SeedSequence(cfg.seed))

    o4a = O4APolicy("o4a", model, worlds[0])
    o4a.reset(ctx)
    # Fill the waypoint memory to |B| through the navigator's own steps, so that the
    # repulsor term costs what it costs late in a long episode; never STOP while measuring.
    o4a.nav.params.stop_threshold = 0.0
    while o4a.nav.memory_len < o4a.params.memory_size:
        o4a.act(front, rear, free)
        o4a.nav.steps = 0  # keep clear of max_steps
    x = model.embed(front, rear).reshape(1, -1)
    o4a_bytes = _param_bytes([model.backbone, model.forward_model, model.geodesic_head(worlds[0])]) + \
        o4a.params.memory_size * int(x.shape[1]) * 4
    graph_net_bytes = _param_bytes([model.backbone, model.inverse])

    rows = []
    for n in tqdm(sizes, desc="graph scaling", disable=not progress):
        g = full.subsample(n, rng) if n <= full.n_nodes else tiled(full, n, rng)
        pol = GraphPolicy(model, g, lookahead=cfg.graph_lookahead)
        plan = []
        for _ in range(3):
            pol.reset(ctx)
            plan.append(pol.plan_time_s)
        pol.stop_threshold = -1.0  # measure the full decision (never the early STOP)
        gl = _time_steps(pol, front, rear, free, repeats)
        ol = _time_steps(o4a, front, rear, free, repeats)
        o4a.nav.steps = 0  # keep clear of max_steps
        rows.append({
            "nodes": g.n_nodes, "edges": g.n_edges, "synthetic": n > full.n_nodes,
            "graph_memory_mb": (pol.planner.memory_bytes + graph_net_bytes) / 2**20,
            "graph_structure_mb": pol.planner.memory_bytes / 2**20,
            "graph_step_ms_median": float(np.median(gl)) * 1e3, "graph_step_ms_p95": float(np.percentile(gl, 95)) * 1e3,
            "graph_plan_ms": float(np.median(plan)) * 1e3,
            "o4a_memory_mb": o4a_bytes / 2**20,
            "o4a_step_ms_median": float(np.median(ol)) * 1e3, "o4a_step_ms_p95": float(np.percentile(ol, 95)) * 1e3,
        })
    table = scaling_table(rows)
    payload = {"config": {"model": cfg.model, "worlds": worlds, "full_graph_nodes": full.n_nodes,
                          "full_graph_edges": full.n_edges, "repeats": repeats, "threads": cfg.threads,
                          "lookahead": cfg.graph_lookahead},
               "rows": rows, "table": table}
    report.write_json(out / "graph_scaling.json", payload)
    (out / "graph_scaling.md").write_text(table + "\n")
    plot_scaling(rows, out / "graph_scaling.png")
    return payload


def scaling_table(rows) -> str:
    lines = ["| graph nodes | edges | graph baseline memory [MB] | graph step median/p95 [ms] | graph plan per goal [ms] "
             "| O4A memory [MB] | O4A step median/p95 [ms] |", "|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['nodes']}{' (synthetic)' if r['synthetic'] else ''} | {r['edges']} | {r['graph_memory_mb']:.2f} "
                     f"| {r['graph_step_ms_median']:.2f}/{r['graph_step_ms_p95']:.2f} | {r['graph_plan_ms']:.1f} "
                     f"| {r['o4a_memory_mb']:.2f} | {r['o4a_step_ms_median']:.2f}/{r['o4a_step_ms_p95']:.2f} |")
    return "\n".join(lines)


def plot_scaling(rows, path) -> Path:
    plt = pyplot()

    n = [r["nodes"] for r in rows]
    fig, (a, b) = plt.subplots(1, 2, figsize=(10, 3.8))
    a.plot(n, [r["graph_memory_mb"] for r in rows], "o-", label="graph baseline (nets + graph)")
    a.plot(n, [r["o4a_memory_mb"] for r in rows], "s-", label="O4A (nets + |B|=500 memory)")
    b.plot(n, [r["graph_step_ms_median"] for r in rows], "o-", label="graph baseline, per step")
    b.plot(n, [r["o4a_step_ms_median"] for r in rows], "s-", label="O4A, per step")
    b.plot(n, [r["graph_plan_ms"] for r in rows], "^--", alpha=0.6, label="graph baseline, Dijkstra per goal")
    synth = [r["nodes"] for r in rows if r["synthetic"]]
    for ax, title, unit in ((a, "run-time memory", "MB"), (b, "decision latency (median)", "ms")):
        ax.set_xscale("log")
        ax.set_xlabel("graph nodes (training frames kept)")
        ax.set_ylabel(unit)
        ax.set_title(title)
        ax.grid(alpha=0.3)
        if synth:
            ax.axvspan(min(synth) * 0.9, max(synth) * 1.1, color="grey", alpha=0.12, label="synthetic (tiled) graphs")
        ax.legend(fontsize=7)
    fig.tight_layout()
    return save_figure(fig, path, dpi=110)
