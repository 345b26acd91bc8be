"""Stage 2: all-pairs f-dagger graph (blocked == naive), ring loop closure, Dijkstra, graph file."""
import numpy as np
import pytest
import torch

from o4a_nav.learning import graph as G
from o4a_nav.learning.config import ModelConfig
from o4a_nav.learning.losses import batch_class_weights, weighted_ce
from o4a_nav.learning.models import InverseHead
from o4a_nav.learning.synthetic import RingWorld
from o4a_nav.types import Action

torch.set_num_threads(1)
CFG = ModelConfig(embed_dim=32, inverse_hidden=(64, 32))
K = 16


def _state_id(c, h):
    return c * 4 + h


@pytest.fixture(scope="module")
def oracle():
    """State codes of a 16-cell ring world and an f-dagger fitted to the true transitions
    (a test double for stage 1: here we test the graph, not the learning)."""
    torch.manual_seed(0)
    ring = RingWorld(K)
    n = K * 4
    codes = torch.randn(n, CFG.embed_dim) * 3
    labels = torch.zeros(n, n, dtype=torch.long)
    for c in range(K):
        for h in range(4):
            s = _state_id(c, h)
            labels[s, s] = 1
            for a in Action.motions():
                nc, nh, ok = ring.step(c, h, a)
                if ok:
                    labels[s, _state_id(nc, nh)] = int(a) + 1
    inv = InverseHead(CFG)
    opt = torch.optim.Adam(inv.parameters(), lr=3e-3)
    w = batch_class_weights(labels, 0.5)
    for _ in range(400):
        noisy = codes + 0.05 * torch.randn_like(codes)
        loss = weighted_ce(inv.pairwise(noisy, noisy), labels, w)
        opt.zero_grad()
        loss.backward()
        opt.step()
    inv.eval()
    with torch.no_grad():
        assert (inv.pairwise(codes, codes).argmax(-1) == labels).float().mean() > 0.999
    return codes, inv, ring


def _trajectory(ring, c0, steps):
    states, actions = [], []
    c, h = c0, 0
    for k in range(steps):
        states.append((c, h))
        a = Action.STOP if k == steps - 1 else Action.FORWARD
        actions.append(int(a))
        c, h, _ = ring.step(c, h, a)
    return states, actions


def test_blocked_all_pairs_equals_naive():
    torch.manual_seed(1)
    inv = InverseHead(CFG)
    with torch.no_grad():
        inv.rest[-1].bias[0] += 0.5
    x = torch.randn(300, CFG.embed_dim)
    fast = G.all_pairs_edges(inv, x, block=64)
    slow = G.naive_pairs_edges(inv, x, rows=17)
    a = set(zip(*(v.tolist() for v in fast)))
    b = set(zip(*(v.tolist() for v in slow)))
    assert len(a) > 0 and a == b
    assert all(i != j for i, j, _ in a)


def test_ring_loop_closure_recovered(oracle, tmp_path):
    codes, inv, ring = oracle
    # A: cells 0..10 facing along the ring; B: cells 8..15, 0..3 (passes A's start: closes the ring)
    sa, aa = _trajectory(ring, 0, 11)
    sb, ab = _trajectory(ring, 8, 12)
    states = sa + sb
    actions = np.array(aa + ab, np.int8)
    traj = np.array([0] * len(sa) + [1] * len(sb))
    next_ok = np.zeros(len(states), bool)
    next_ok[:-1] = (traj[:-1] == traj[1:]) & (actions[:-1] != Action.STOP)
    torch.manual_seed(2)
    frame_codes = torch.stack([codes[_state_id(*s)] for s in states]) + 0.01 * torch.randn(len(states), CFG.embed_dim)
    g = G.build_graph(inv, frame_codes, actions, next_ok, block=8)
    assert int(g["chain"].sum()) == int(next_ok.sum())
    loop = ~g["chain"]
    assert loop.sum() > 0
    # every loop-closure edge joins the same state or states one action apart (precision 1)
    for i, j, a in zip(g["src"][loop], g["dst"][loop], g["action"][loop]):
        (ci, hi), (cj, hj) = states[i], states[j]
        if a == Action.STOP:
            assert (ci, hi) == (cj, hj)
        else:
            assert ring.step(ci, hi, int(a))[:2] == (cj, hj)
    # the overlap cells 8, 9, 10, 0, 1, 2, 3 are joined in both directions (recall)
    pairs = set(zip(g["src"][loop].tolist(), g["dst"][loop].tolist()))
    for c in (8, 9, 10, 0, 1, 2, 3):
        i = sa.index((c, 0))
        j = len(sa) + sb.index((c, 0))
        assert (i, j) in pairs and (j, i) in pairs
    # the ring is closed: from B's end (cell 3) the graph reaches A's end (cell 10) ...
    d = G.shortest_paths(g, np.array([len(states) - 1]))[0]
    assert np.isfinite(d[len(sa) - 1])
    # ... in about 7 steps of d_h (3 -> 10), not around the long way
    step = float(np.median(g["weight"][g["chain"]]))
    assert d[len(sa) - 1] < 9 * step
    # without the loop closures B cannot reach A
    chain_only = {k: (v[g["chain"]] if isinstance(v, np.ndarray) else v) for k, v in g.items()}
    d0 = G.shortest_paths(chain_only, np.array([len(states) - 1]))[0]
    assert not np.isfinite(d0[len(sa) - 1])
    # graph file for the benchmark's graph baseline round-trips
    path = G.save_graph(tmp_path / G.graph_name("ring/16"), g, frame_codes, "ring/16")
    assert path.name == "graph_ring_16.npz"
    back = G.load_graph(path)
    assert back["world"] == "ring/16" and back["n_nodes"] == len(states)
    assert back["codes"].dtype == np.float16 and back["codes"].shape == tuple(frame_codes.shape)
    for k in ("src", "dst", "weight", "action", "chain"):
        assert np.array_equal(back[k], g[k])


def test_shortest_paths_chunks_match_scipy():
    from scipy.sparse.csgraph import dijkstra

    rng = np.random.default_rng(0)
    n = 200
    src = rng.integers(0, n, 1500).astype(np.int32)
    dst = rng.integers(0, n, 1500).astype(np.int32)
    g = {"src": src, "dst": dst, "weight": rng.uniform(0.5, 2, 1500).astype(np.float32), "n_nodes": n}
    sources = np.arange(0, n, 3)
    rows = G.shortest_paths(g, sources, chunk=7)
    ref = dijkstra(G.to_csr(g), directed=True, indices=sources)
    assert rows.dtype == np.float32 and rows.shape == (len(sources), n)
    assert np.allclose(rows, ref, rtol=1e-5, equal_nan=False)


def test_connectivity_counts_strong_components():
    """One-way edges do not connect: a chain 0 -> 1 -> 2 with a loop back 2 -> 0 is one
    component; node 3, reached from 2 but with no way back, is a component of its own."""
    g = {"n_nodes": 4, "src": np.array([0, 1, 2, 2]), "dst": np.array([1, 2, 0, 3]),
         "weight": np.ones(4, np.float32)}
    assert G.connectivity(g) == {"components": 2, "largest": 3, "largest_share": 0.75}
    g["src"], g["dst"] = np.append(g["src"], 3), np.append(g["dst"], 2)     # the way back
    assert G.connectivity(g) == {"components": 1, "largest": 4, "largest_share": 1.0}
