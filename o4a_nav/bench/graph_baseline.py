"""SPTM-like semi-parametric baseline: the training graph is kept at run time.

Each step: embed the current images with h, localise them at the nearest node code
(L2, all N nodes), follow the shortest path (Dijkstra on the training graph, edge weight
d_h) towards the node nearest the goal code, and take the action f-dagger predicts from
the current code to the next waypoint's code. The shortest-path tree towards the goal
node is computed once per goal (Dijkstra on the reversed graph: the same paths as a
per-step Dijkstra from the current node, without repeating it 500 times); localisation
is per step, so memory and per-step latency grow with the number of nodes N.
"""
from __future__ import annotations

import math
import os
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from o4a_nav.errors import ModelLoadError
from o4a_nav.types import Action

from .policies import MOTIONS, EpisodeContext, Policy

_CODE_KEYS = ("codes", "node_codes", "x", "embeddings")


@dataclass
class TrainingGraph:
    codes: np.ndarray  # (N, n) float32
    src: np.ndarray  # (E,) int
    dst: np.ndarray  # (E,) int
    weight: np.ndarray  # (E,) float32

    @property
    def n_nodes(self) -> int:
        return int(self.codes.shape[0])

    @property
    def n_edges(self) -> int:
        return int(self.src.shape[0])

    @classmethod
    def load(cls, path) -> "TrainingGraph":
        path = Path(path)
        if not path.is_file():
            raise ModelLoadError(f"{path}: training graph file not found (written by `o4a train`)")
        try:
            with np.load(path) as z:
                keys = set(z.files)
                ck = next((k for k in _CODE_KEYS if k in keys), None)
                if ck is None:
                    raise ModelLoadError(f"{path}: no node codes (expected one of {_CODE_KEYS}, found {sorted(keys)})")
                codes = np.asarray(z[ck], dtype=np.float32)
                if {"src", "dst"} <= keys:
                    src, dst = z["src"], z["dst"]
                    weight = z["weight"] if "weight" in keys else z["weights"] if "weights" in keys else None
                elif "edges" in keys:
                    e = z["edges"]
                    src, dst = e[:, 0], e[:, 1]
                    weight = e[:, 2] if e.shape[1] > 2 else None
                else:
                    raise ModelLoadError(f"{path}: no edge list (expected src/dst/weight, found {sorted(keys)})")
        except (OSError, ValueError, KeyError) as exc:
            raise ModelLoadError(f"{path}: unreadable training graph: {exc}") from exc
        src = np.asarray(src, dtype=np.int64)
        dst = np.asarray(dst, dtype=np.int64)
        if weight is None:
            weight = np.linalg.norm(codes[src] - codes[dst], axis=1)
        return cls(codes, src, dst, np.asarray(weight, dtype=np.float32))

    def subsample(self, n_nodes: int, rng: np.random.Generator) -> "TrainingGraph":
        """Induced subgraph on ``n_nodes`` nodes chosen uniformly at random."""
        n_nodes = min(n_nodes, self.n_nodes)
        keep = np.sort(rng.choice(self.n_nodes, size=n_nodes, replace=False))
        remap = np.full(self.n_nodes, -1, dtype=np.int64)
        remap[keep] = np.arange(n_nodes)
        mask = (remap[self.src] >= 0) & (remap[self.dst] >= 0)
        return TrainingGraph(self.codes[keep], remap[self.src[mask]], remap[self.dst[mask]], self.weight[mask])


# Settings added to `o4a train` after models were shipped, with the value that reproduces
# a run whose meta.json predates them (graph_closures: f-dagger's closures were the only rule).
_SETTINGS_BEFORE_THEY_EXISTED = {"graph_closures": "image"}


def load_training_graph(model_dir, world: str, log=print) -> TrainingGraph:
    """The model's training graph of `world`: graph_<world>.npz in the model directory,
    written by `o4a train`. Only this baseline reads it (O4A navigates without it), so a
    model may come without it (the shipped model keeps its graphs out of git): it is then
    rebuilt here (`rebuild_training_graph`) and written beside the weights."""
    from o4a_nav.learning.graph import graph_name

    path = Path(model_dir) / graph_name(world)
    if not path.is_file():
        rebuild_training_graph(model_dir, world, log=log)
    return TrainingGraph.load(path)


def rebuild_training_graph(model_dir, world: str, log=print) -> Path:
    """graph_<world>.npz rebuilt as `o4a train`'s stage 2 built it: the world's training
    bags (report.json) read with the last training run's settings (meta.json), embedded with
    the model's h, closures by the same rule (pipeline.world_graph). ModelLoadError naming
    the bags and how to record them when they are missing."""
    import json
    from dataclasses import fields

    from o4a_nav.learning import graph as G
    from o4a_nav.learning.config import TrainConfig
    from o4a_nav.learning.dataset import load_worlds
    from o4a_nav.learning.model_io import load_model
    from o4a_nav.learning.pipeline import world_graph
    from o4a_nav.learning.training import embed_frames

    model_dir = Path(model_dir)
    path = model_dir / G.graph_name(world)
    try:
        report = json.loads((model_dir / "report.json").read_text())
        meta = json.loads((model_dir / "meta.json").read_text())
    except (OSError, ValueError) as exc:
        raise ModelLoadError(f"{path} not found, and it cannot be rebuilt without the model's report.json and "
                             f"meta.json: {exc}") from exc
    bags = report.get("worlds", {}).get(world, {}).get("bags") or []
    runs = [r for r in meta.get("training_runs", [meta.get("training", {})]) if world in r.get("frames", {})]
    if not bags or not runs:
        raise ModelLoadError(f"{path} not found, and the model's report names no training bags of world {world!r}")
    missing = [b for b in bags if not Path(b).exists()]
    if missing:
        raise ModelLoadError(
            f"{path} not found; it is rebuilt from the world's training bags, which are missing: "
            f"{', '.join(missing)} (record them as the model's training did, e.g. `o4a collect --world {world} "
            f"--steps 10000 --seed 0 --out {missing[0]}` for the shipped model: scripts/train_shipped_model.sh)")
    known = {f.name for f in fields(TrainConfig)}
    settings = {**_SETTINGS_BEFORE_THEY_EXISTED, **runs[-1].get("train_config", {})}
    tcfg = TrainConfig(**{k: v for k, v in settings.items() if k in known})
    log(f"graph baseline: {path} not found; rebuilding it from {', '.join(bags)} (o4a train's stage 2)")
    import torch

    model = load_model(model_dir)
    [w] = [w for w in load_worlds(bags, val_fraction=tcfg.val_fraction, seed=tcfg.seed) if w.name == world]
    threads = torch.get_num_threads()
    torch.set_num_threads(max(1, tcfg.threads))   # as the training ran (the same sums, the same graph)
    try:
        codes = embed_frames(model, w)
        g, _ = world_graph(model, w, codes, tcfg, log=log)
    finally:
        torch.set_num_threads(threads)
    tmp = path.with_name(f"{path.stem}.{os.getpid()}.tmp.npz")   # (bench workers may rebuild it at once)
    G.save_graph(tmp, g, codes, world)
    tmp.replace(path)
    return path


class GraphPlanner:
    """Run-time structures of the baseline: node codes + CSR adjacency of the reversed
    graph, and the per-goal shortest-path tree."""

    def __init__(self, graph: TrainingGraph):
        from scipy.sparse import csr_matrix

        import torch

        self.codes = np.ascontiguousarray(graph.codes, dtype=np.float32)
        self.sq_norms = np.einsum("ij,ij->i", self.codes, self.codes)
        # torch views of the same buffers: its matrix-vector product honours
        # torch.set_num_threads (numpy's BLAS threads oversubscribe a shared 2-core CPU).
        self._codes_t = torch.from_numpy(self.codes)
        self._sq_t = torch.from_numpy(self.sq_norms)
        n = graph.n_nodes
        # Edge weights of exactly 0 would vanish from a sparse matrix: floor them.
        w = np.maximum(graph.weight.astype(np.float64), 1e-6)
        # Reversed graph: Dijkstra from the goal gives, for each node, its successor on
        # the shortest path node -> goal in the original graph.
        self.reversed_adj = csr_matrix((w, (graph.dst, graph.src)), shape=(n, n))
        self.next_hop = np.full(n, -9999, dtype=np.int64)
        self.dist_to_goal = np.full(n, np.inf)
        self.goal_node = -1

    @property
    def memory_bytes(self) -> int:
        a = self.reversed_adj
        return int(self.codes.nbytes + self.sq_norms.nbytes + a.data.nbytes + a.indices.nbytes + a.indptr.nbytes)

    def localise(self, x: np.ndarray) -> int:
        """Index of the node code nearest to x (L2)."""
        import torch

        xt = torch.as_tensor(np.asarray(x, dtype=np.float32).reshape(-1))
        return int(torch.argmin(self._sq_t - 2.0 * torch.mv(self._codes_t, xt)))

    def plan(self, goal_node: int) -> None:
        from scipy.sparse.csgraph import dijkstra

        dist, pred = dijkstra(self.reversed_adj, directed=True, indices=goal_node, return_predecessors=True)
        self.dist_to_goal, self.next_hop, self.goal_node = dist, pred, goal_node

    def path_from(self, node: int, max_hops: int) -> list[int]:
        path = []
        while node != self.goal_node and len(path) < max_hops:
            node = int(self.next_hop[node])
            if node < 0:
                break
            path.append(node)
        return path


def _to_numpy(t) -> np.ndarray:
    return t.detach().cpu().numpy() if hasattr(t, "detach") else np.asarray(t)


class GraphPolicy(Policy):
    """The SPTM-like baseline as a benchmark policy."""

    name = "graph"

    def __init__(self, model, graph: TrainingGraph, stop_threshold: float = 3.5, lookahead: int = 3, seed: int = 0):
        self.model = model
        self.embed_cache = model if hasattr(model, "last_hit") else None
        self.planner = GraphPlanner(graph)
        self.stop_threshold = stop_threshold
        self.lookahead = lookahead
        self.rng = np.random.default_rng(seed)
        self.x_goal: np.ndarray | None = None
        self.plan_time_s = 0.0

    def _embed(self, front, rear) -> np.ndarray:
        import torch

        with torch.no_grad():
            return _to_numpy(self.model.embed(front, rear)).reshape(-1).astype(np.float32)

    def reset(self, ctx: EpisodeContext) -> None:
        self.rng = np.random.default_rng(ctx.seed)
        if self.embed_cache is not None:
            self.embed_cache.clear()
        self.x_goal = self._embed(ctx.goal_front, ctx.goal_rear)
        t0 = time.perf_counter()
        self.planner.plan(self.planner.localise(self.x_goal))
        self.plan_time_s = time.perf_counter() - t0

    def act(self, front, rear, free) -> Action:
        import torch

        x = self._embed(front, rear)
        if float(np.linalg.norm(x - self.x_goal)) < self.stop_threshold:
            return Action.STOP
        options = [a for a in MOTIONS if a in free] or [Action.ROTATE_LEFT]
        node = self.planner.localise(x)
        path = self.planner.path_from(node, self.lookahead)
        if not path or not math.isfinite(self.planner.dist_to_goal[node]):
            return options[int(self.rng.integers(len(options)))]
        # f-dagger from the current code to each waypoint of the short lookahead; take the
        # first waypoint that is not "the same place" (STOP) and its most likely motion.
        xs = torch.from_numpy(np.repeat(x[None], len(path), axis=0))
        xw = torch.from_numpy(self.planner.codes[path])
        with torch.no_grad():
            logits = _to_numpy(self.model.inverse_logits(xs, xw))
        for row in logits:
            if int(np.argmax(row)) != 1 + int(Action.STOP):
                break
        # classes: [NOT_CONNECTED, STOP, FORWARD, LEFT, RIGHT] -> Action value = class - 1
        return max(options, key=lambda a: row[1 + int(a)])
