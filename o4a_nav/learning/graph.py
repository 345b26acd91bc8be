"""Stage 2: the training graph G (offline only). ROS-free.

Nodes: every frame of a world. Edges: the recorded chain transitions (t -> t+1) plus
loop-closure edges, either from f-dagger (an edge i -> j for every ordered pair with argmax
f-dagger(x_i, x_j) != NOT_CONNECTED, the paper's rule, below) or given (`loops`: the laser
rule of o4a_nav/learning/closures.py). Weight = d_h(x_i, x_j). No pruning heuristics.

All N^2 pairs are evaluated in blocks: f-dagger's first layer is split into an x_i part
and an x_j part, each computed once per frame, so a block costs one broadcast add plus
the rest of the MLP; only the edges found are kept (sparse), never an N x N matrix.
Shortest paths: Dijkstra (scipy.sparse.csgraph) from a sample of source nodes in chunks,
keeping only those rows (K x N float32), which is all p+ training needs.
"""
from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import torch

from o4a_nav.learning.config import NOT_CONNECTED


@torch.no_grad()
def all_pairs_edges(inverse, codes: torch.Tensor, block: int = 256, progress=None,
                    nc_offset: float = 0.0, rows: tuple[int, int] = (0, 1)) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every ordered pair (i, j), i != j, whose f-dagger argmax is not NOT_CONNECTED
    (after adding `nc_offset` to the NOT_CONNECTED logit; 0 = plain argmax).

    Returns (src int32, dst int32, cls int8 f-dagger class). The first layer is computed
    once per frame (x_i part, x_j part); each block x block tile reuses preallocated
    buffers (in-place add/ReLU, addmm), so memory is O(block^2 * hidden) plus the edges.
    rows = (k, m): only row blocks k, k + m, k + 2m, ... (one rank's share of m).
    """
    n = codes.shape[0]
    codes = codes.float()
    a = inverse.project_source(codes).contiguous()     # (N, h0)
    b = inverse.project_target(codes).contiguous()
    layers = [m for m in inverse.rest if isinstance(m, torch.nn.Linear)]
    h0 = a.shape[1]
    bufs = [torch.empty(block * block, h0)] + [torch.empty(block * block, l.out_features) for l in layers]
    src, dst, cls = [], [], []
    starts = range(rows[0] * block, n, block * rows[1])
    it = starts
    if progress is not None:
        it = progress(starts, desc="stage 2 graph: f-dagger on all pairs", unit="row block", leave=False)
    for i0 in it:
        ai = a[i0:i0 + block]
        for j0 in range(0, n, block):
            bj = b[j0:j0 + block]
            r, c = ai.shape[0], bj.shape[0]
            h = bufs[0][:r * c]
            torch.add(ai[:, None, :], bj[None, :, :], out=h.view(r, c, h0))
            for k, lin in enumerate(layers):
                h.relu_()
                out = bufs[k + 1][:r * c]
                torch.addmm(lin.bias, h, lin.weight.T, out=out)
                h = out
            logits = h.view(r, c, -1)
            best_conn, best_cls = logits[..., 1:].max(-1)
            conn = best_conn > logits[..., NOT_CONNECTED] + nc_offset
            if i0 == j0:
                conn.fill_diagonal_(False)
            ii, jj = conn.nonzero(as_tuple=True)
            if len(ii):
                src.append((ii + i0).to(torch.int32).numpy())
                dst.append((jj + j0).to(torch.int32).numpy())
                cls.append((best_cls[ii, jj] + 1).to(torch.int8).numpy())
    cat = lambda parts, dt: np.concatenate(parts).astype(dt) if parts else np.zeros(0, dt)
    return cat(src, np.int32), cat(dst, np.int32), cat(cls, np.int8)


@torch.no_grad()
def naive_pairs_edges(inverse, codes: torch.Tensor, rows: int = 64, nc_offset: float = 0.0
                      ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Reference implementation (benchmark baseline): f-dagger on concat(x_i, x_j) row by
    row, full first layer for every pair. Same result as all_pairs_edges."""
    n = codes.shape[0]
    src, dst, cls = [], [], []
    for i0 in range(0, n, rows):
        xi = codes[i0:i0 + rows]
        r = xi.shape[0]
        logits = inverse(xi[:, None, :].expand(r, n, -1).reshape(r * n, -1),
                         codes[None].expand(r, n, -1).reshape(r * n, -1)).reshape(r, n, -1)
        logits[..., NOT_CONNECTED] += nc_offset
        pred = logits.argmax(-1)
        ii, jj = (pred != NOT_CONNECTED).nonzero(as_tuple=True)
        keep = (ii + i0) != jj
        ii, jj = ii[keep], jj[keep]
        src.append((ii + i0).numpy().astype(np.int32))
        dst.append(jj.numpy().astype(np.int32))
        cls.append(pred[ii, jj].numpy().astype(np.int8))
    return np.concatenate(src), np.concatenate(dst), np.concatenate(cls)


def build_graph(inverse, codes: torch.Tensor, actions: np.ndarray, next_ok: np.ndarray, block: int = 256,
                progress=None, nc_offset: float = 0.0, dist=None, loops=None) -> dict:
    """Chain + loop-closure edges of one world.

    loops: (src, dst, action) loop-closure edges found another way (the laser rule,
    o4a_nav.learning.closures); None = f-dagger on all pairs (the paper's rule).

    dist: a DistContext (o4a_nav.learning.distributed): every rank evaluates its share of
    the row blocks and the edges are gathered on every rank, in the one-process order.

    Returns dict of arrays: src, dst (int32), weight (float32, d_h), action (int8: the
    Action of the edge, STOP for 'same place'), chain (bool), seconds (float).
    A pair that is a chain edge keeps the recorded action; other pairs take f-dagger's.
    """
    t0 = time.perf_counter()
    n = codes.shape[0]
    c_src = np.flatnonzero(next_ok).astype(np.int32)
    c_dst = c_src + 1
    c_act = np.asarray(actions)[c_src].astype(np.int8)
    if loops is not None:
        l_src, l_dst = np.asarray(loops[0], np.int32), np.asarray(loops[1], np.int32)
        l_cls = (np.asarray(loops[2], np.int8) + 1).astype(np.int8)
    elif dist is not None and dist.enabled:
        parts = dist.all_gather(all_pairs_edges(inverse, codes, block, progress, nc_offset,
                                                rows=(dist.rank, dist.world_size)))
        l_src, l_dst, l_cls = (np.concatenate([p[k] for p in parts]) for k in range(3))
        order = np.argsort(l_src // block, kind="stable")     # row-block order, as one process finds them
        l_src, l_dst, l_cls = l_src[order], l_dst[order], l_cls[order]
    else:
        l_src, l_dst, l_cls = all_pairs_edges(inverse, codes, block, progress, nc_offset)
    # drop loop edges that duplicate a chain edge
    chain_keys = c_src.astype(np.int64) * n + c_dst
    loop_keys = l_src.astype(np.int64) * n + l_dst
    keep = ~np.isin(loop_keys, chain_keys)
    l_src, l_dst, l_cls = l_src[keep], l_dst[keep], l_cls[keep]
    src = np.concatenate([c_src, l_src])
    dst = np.concatenate([c_dst, l_dst])
    action = np.concatenate([c_act, (l_cls - 1).astype(np.int8)])
    chain = np.concatenate([np.ones(len(c_src), bool), np.zeros(len(l_src), bool)])
    weight = edge_weights(codes, src, dst)
    return {"src": src, "dst": dst, "weight": weight, "action": action, "chain": chain,
            "n_nodes": n, "seconds": time.perf_counter() - t0}


@torch.no_grad()
def edge_weights(codes: torch.Tensor, src: np.ndarray, dst: np.ndarray, chunk: int = 1 << 18) -> np.ndarray:
    out = np.empty(len(src), np.float32)
    for s in range(0, len(src), chunk):
        i = torch.as_tensor(src[s:s + chunk], dtype=torch.long)
        j = torch.as_tensor(dst[s:s + chunk], dtype=torch.long)
        out[s:s + chunk] = (codes[i] - codes[j]).norm(dim=1).numpy()
    # Dijkstra treats an explicit 0 as 'no edge' in some scipy paths: keep weights positive
    return np.maximum(out, 1e-6)


STOP_EDGE_WEIGHT = 0.05


def action_weights(action: np.ndarray) -> np.ndarray:
    """train.graph_weights=actions: 1 per motion edge, STOP_EDGE_WEIGHT per same-place edge."""
    from o4a_nav.types import Action

    return np.where(np.asarray(action) == int(Action.STOP), STOP_EDGE_WEIGHT, 1.0).astype(np.float32)


def to_csr(graph: dict):
    from scipy.sparse import csr_matrix

    n = graph["n_nodes"]
    m = csr_matrix((graph["weight"].astype(np.float64), (graph["src"], graph["dst"])), shape=(n, n))
    m.sum_duplicates()
    return m


# A graph whose largest strongly connected part holds less than this share of the frames
# is reported as fragmented: goals in the other parts cannot be reached on the graph.
CONNECTED_SHARE = 0.95


def connectivity(graph: dict) -> dict:
    """Strongly connected components of the directed graph: {"components", "largest",
    "largest_share"} (nodes of the largest component, and their share of all nodes)."""
    from scipy.sparse import csr_matrix
    from scipy.sparse.csgraph import connected_components

    n = graph["n_nodes"]
    if n == 0:
        return {"components": 0, "largest": 0, "largest_share": 0.0}
    adj = csr_matrix((np.ones(len(graph["src"]), np.int8), (graph["src"], graph["dst"])), shape=(n, n))
    k, labels = connected_components(adj, directed=True, connection="strong")
    largest = int(np.bincount(labels).max())
    return {"components": int(k), "largest": largest, "largest_share": largest / n}


def shortest_paths(graph: dict, sources: np.ndarray, chunk: int = 128, progress=None) -> np.ndarray:
    """d_G from each source to every node: (K, N) float32, inf where unreachable.
    Memory: K x N float32 plus one chunk x N float64."""
    from scipy.sparse.csgraph import dijkstra

    csr = to_csr(graph)
    out = np.empty((len(sources), graph["n_nodes"]), np.float32)
    it = range(0, len(sources), chunk)
    if progress is not None:
        it = progress(it, desc="stage 2 graph: Dijkstra", unit="chunk", leave=False)
    for s in it:
        out[s:s + chunk] = dijkstra(csr, directed=True, indices=sources[s:s + chunk])
    return out


def save_graph(path, graph: dict, codes: torch.Tensor, world: str) -> Path:
    """graph_<world>.npz for the benchmark's graph baseline: node codes (float16) and the
    sparse edge list (src, dst, weight, action, chain)."""
    path = Path(path)
    np.savez_compressed(path, codes=codes.numpy().astype(np.float16), src=graph["src"], dst=graph["dst"],
                        weight=graph["weight"], action=graph["action"], chain=graph["chain"],
                        world=np.array(world))
    return path


def load_graph(path) -> dict:
    with np.load(path, allow_pickle=False) as z:
        d = {k: z[k] for k in z.files}
    d["n_nodes"] = int(d["codes"].shape[0])
    d["world"] = str(d["world"])
    return d


def graph_name(world: str) -> str:
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in world)
    return f"graph_{safe}.npz"
