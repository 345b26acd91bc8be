"""Training report: metrics (ground-truth poses are used here only, never for learning),
report.json with plain keys, report.md and figures. ROS-free.
"""
from __future__ import annotations

import json
import math
import time
from pathlib import Path

import numpy as np
import torch

from o4a_nav.learning.config import CLASSES
from o4a_nav.learning.graph import CONNECTED_SHARE
from o4a_nav.plotting import pyplot, save_figure
from o4a_nav.types import FORWARD_STEP_M, ROTATE_STEP_RAD, wrap_angle

# A loop-closure edge i -> j is counted correct when the frames are physically within one
# action of each other (with tolerance): positions <= 0.5 m apart, headings <= 30 deg apart.
LC_MAX_DIST_M = 2 * FORWARD_STEP_M
LC_MAX_YAW_RAD = 2 * ROTATE_STEP_RAD


def _yaw_diff(a, b):
    return np.abs(wrap_angle(a - b))


def loop_closure_metrics(graph: dict, poses: np.ndarray | None, traj: np.ndarray) -> dict:
    """Precision / recall of the loop-closure (non-chain) edges against ground-truth poses."""
    if poses is None:
        return {"available": False, "reason": "no ground-truth poses in the bags"}
    from scipy.spatial import cKDTree

    loop = ~graph["chain"]
    s, d = graph["src"][loop], graph["dst"][loop]
    dist = np.hypot(*(poses[s, :2] - poses[d, :2]).T)
    dyaw = _yaw_diff(poses[s, 2], poses[d, 2])
    correct = (dist <= LC_MAX_DIST_M) & (dyaw <= LC_MAX_YAW_RAD)
    n = len(poses)
    # true neighbour pairs (ordered), excluding a frame with itself and consecutive frames of one trajectory
    pairs = cKDTree(poses[:, :2]).query_pairs(LC_MAX_DIST_M, output_type="ndarray")
    if len(pairs):
        pairs = np.concatenate([pairs, pairs[:, ::-1]])
        ok = _yaw_diff(poses[pairs[:, 0], 2], poses[pairs[:, 1], 2]) <= LC_MAX_YAW_RAD
        ok &= ~((traj[pairs[:, 0]] == traj[pairs[:, 1]]) & (np.abs(pairs[:, 0] - pairs[:, 1]) <= 1))
        pairs = pairs[ok]
    true_keys = pairs[:, 0].astype(np.int64) * n + pairs[:, 1] if len(pairs) else np.zeros(0, np.int64)
    pred_keys = s.astype(np.int64) * n + d
    found = np.isin(true_keys, pred_keys).sum() if len(true_keys) else 0
    exact = exact_closures(poses, s, d, graph["action"][loop]) if "action" in graph else None
    ideal = ideal_pairs(poses, traj)
    ideal_keys = ideal[0].astype(np.int64) * n + ideal[1]
    ideal_found = int(np.isin(ideal_keys, pred_keys).sum())
    return {
        "available": True,
        "exact_precision": float(exact.mean()) if exact is not None and len(exact) else None,
        "ideal_pairs": int(len(ideal_keys)),
        "ideal_recall": float(ideal_found / len(ideal_keys)) if len(ideal_keys) else None,
        "exact_criterion": f"exact if the true displacement is the claimed action within {EXACT_TOL_M:.2f} m and "
                           f"{math.degrees(EXACT_TOL_RAD):.0f} deg; ideal pairs: every ordered pair of frames one "
                           f"action apart by the true poses (within 0.1 m, 7.5 deg), chain transitions excluded",
        "edges": int(loop.sum()), "chain_edges": int(graph["chain"].sum()),
        "precision": float(correct.mean()) if len(correct) else None,
        "recall": float(found / len(true_keys)) if len(true_keys) else None,
        "true_neighbour_pairs": int(len(true_keys)),
        "wrong_place_rate_1m": float((dist > 1.0).mean()) if len(dist) else None,
        "wrong_place_rate_2m": float((dist > 2.0).mean()) if len(dist) else None,
        "median_error_m": float(np.median(dist)) if len(dist) else None,
        "criterion": f"correct if positions <= {LC_MAX_DIST_M:.2f} m and headings <= "
                     f"{math.degrees(LC_MAX_YAW_RAD):.0f} deg apart",
    }


EXACT_TOL_M = 0.15
EXACT_TOL_RAD = math.radians(10.0)


def relative_poses(poses: np.ndarray, s: np.ndarray, d: np.ndarray):
    """(x, y, yaw) of frame d in frame s by the true poses."""
    P = poses.astype(np.float64)
    dx, dy = P[d, 0] - P[s, 0], P[d, 1] - P[s, 1]
    c, si = np.cos(P[s, 2]), np.sin(P[s, 2])
    return c * dx + si * dy, -si * dx + c * dy, wrap_angle(P[d, 2] - P[s, 2])


def exact_closures(poses: np.ndarray, s: np.ndarray, d: np.ndarray, action: np.ndarray) -> np.ndarray:
    """Per edge: is the true displacement the action it claims (within EXACT_TOL_M and
    EXACT_TOL_RAD)? (The targets' rule for a correct closure.)"""
    x, y, yaw = relative_poses(poses, s, d)
    a = np.asarray(action)
    want_x = np.where(a == 1, FORWARD_STEP_M, 0.0)
    want_yaw = np.select([a == 2, a == 3], [ROTATE_STEP_RAD, -ROTATE_STEP_RAD], 0.0)
    return (np.hypot(x - want_x, y) <= EXACT_TOL_M) & (np.abs(wrap_angle(yaw - want_yaw)) <= EXACT_TOL_RAD)


def ideal_pairs(poses: np.ndarray, traj: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every ordered pair (s, d) one action apart by the true poses (scanreg.one_action,
    0.1 m / 7.5 deg: the graph a perfect verifier builds), recorded chain transitions
    t -> t+1 excluded: (src, dst, action)."""
    from scipy.spatial import cKDTree

    from o4a_nav.learning.scanreg import one_action

    pr = cKDTree(poses[:, :2]).query_pairs(0.36, output_type="ndarray")
    if not len(pr):
        return (np.zeros(0, np.int64),) * 3
    pr = np.concatenate([pr, pr[:, ::-1]]).astype(np.int64)
    a = one_action(*relative_poses(poses, pr[:, 0], pr[:, 1]))
    keep = (a >= 0) & ~((pr[:, 1] == pr[:, 0] + 1) & (traj[pr[:, 0]] == traj[pr[:, 1]]))
    return pr[keep, 0], pr[keep, 1], a[keep].astype(np.int64)


def ideal_connectivity(poses: np.ndarray, traj: np.ndarray) -> dict:
    """graph.connectivity of the best graph these frames allow: the recorded chains plus
    every `ideal_pairs` edge (what a perfect verifier of one-action closures would add).
    Its largest strongly connected part bounds any training graph's of the same frames."""
    from o4a_nav.learning import graph as G

    s, d, _ = ideal_pairs(poses, traj)
    chain = np.flatnonzero(traj[1:] == traj[:-1])
    return G.connectivity({"n_nodes": len(poses), "src": np.concatenate([s, chain]),
                           "dst": np.concatenate([d, chain + 1])})


def place_metrics(codes: torch.Tensor, poses: np.ndarray, traj: np.ndarray, knn: int = 20, far_m: float = 2.0,
                  threshold: float = 3.5, far_pairs: int = 200000, seed: int = 0) -> dict:
    """What h gives a building before any registration (ground truth: the poses): the
    share of the `ideal` one-action pairs among each frame's ``knn`` nearest codes
    (candidate recall: the revisits the laser can verify), and the arrival test's errors
    at d_h < ``threshold``: view pairs more than ``far_m`` apart taken for the goal
    (``far_below``) and same-place pairs (ideal STOP pairs) recognised (``same_below``);
    ``same_p90``: the 90th percentile of d_h over the same-place pairs."""
    from o4a_nav.learning.closures import knn_pairs

    n = len(codes)
    s, d, a = ideal_pairs(poses, traj)
    cs, cd = knn_pairs(codes, knn)
    keys = np.union1d(cs.astype(np.int64) * n + cd, cd.astype(np.int64) * n + cs)
    recall = float(np.isin(s * n + d, keys).mean()) if len(s) else float("nan")
    same = a == 0
    dh_same = torch.linalg.vector_norm(codes[s[same]] - codes[d[same]], dim=1).numpy()
    rng = np.random.default_rng(seed)
    i, j = rng.integers(0, n, far_pairs), rng.integers(0, n, far_pairs)
    far = np.hypot(*(poses[i, :2] - poses[j, :2]).T) > far_m
    dh_far = torch.linalg.vector_norm(codes[i[far]] - codes[j[far]], dim=1).numpy()
    return {"frames": int(n), "ideal_pairs": int(len(s)), "knn": int(knn), "candidate_recall": recall,
            "far_below": float((dh_far < threshold).mean()) if len(dh_far) else float("nan"),
            "same_below": float((dh_same < threshold).mean()) if len(dh_same) else float("nan"),
            "same_p90": float(np.quantile(dh_same, 0.9)) if len(dh_same) else float("nan"),
            "threshold": float(threshold), "far_m": float(far_m)}


def _load_sim_world(world_data):
    """The simulator world of a WorldData: from the world file's text the bag carries
    (any world file given to `o4a collect`), else a built-in world of that name."""
    try:
        from o4a_nav.sim.world import load_world, world_from_text
        if world_data.world_text:
            return world_from_text(world_data.world_text, f"<world file of {world_data.name} in the bags>")
        return load_world(world_data.name)
    except Exception:
        return None


def graph_pose_check(model_dir, world_data, episodes: int) -> dict:
    """The graph-pose diagnostic (o4a_nav/bench/diagnose.py, graph_pose_outcome) of the
    model in `model_dir` (weights and graph_<world>.npz written) on world_data's world, or
    {"available": False, "reason": ...}."""
    if episodes <= 0:
        return {"available": False, "reason": "train.report_graph_episodes = 0"}
    if world_data.poses is None:
        return {"available": False, "reason": "the bags have no true poses"}
    world = _load_sim_world(world_data)
    if world is None:
        return {"available": False, "reason": "no simulator world of this name or in the bags"}
    from o4a_nav.bench.diagnose import graph_pose_outcome

    t0 = time.perf_counter()
    out = graph_pose_outcome(model_dir, world_data.name, world, world_data.poses, episodes)
    return {"available": True, **out, "seconds": time.perf_counter() - t0}


def _pairs_by_goal(frames: np.ndarray, n_goals: int, per_goal: int, rng) -> tuple[np.ndarray, np.ndarray]:
    goals = rng.choice(frames, min(n_goals, len(frames)), replace=False)
    src = np.concatenate([rng.choice(frames, per_goal) for _ in goals])
    dst = np.repeat(goals, per_goal)
    return src, dst


@torch.no_grad()
def geodesic_metrics(world_data, codes: torch.Tensor, head, dist_rows: np.ndarray | None = None,
                     row_sources: np.ndarray | None = None, seed: int = 0, n_goals: int = 40,
                     per_goal: int = 50) -> dict:
    """Spearman of p+ with the true geodesic distance on held-out pairs (both frames from
    validation trajectories, never used to train p+), and MAE in metres after a
    least-squares scale fitted on training pairs. Needs a simulator world + poses."""
    from scipy.stats import spearmanr

    if world_data.poses is None:
        return {"available": False, "reason": "no ground-truth poses in the bags"}
    world = _load_sim_world(world_data) if world_data.known_world else None
    if world is None:
        return {"available": False, "reason": f"world {world_data.name!r} is not a simulator world "
                                              "(real robot?): true geodesic distances unknown"}
    rng = np.random.default_rng(seed)
    poses = world_data.poses

    def truth(src, dst):
        order = np.argsort(dst, kind="stable")   # group by goal: one Dijkstra field per goal
        out = np.empty(len(src))
        for k in order:
            out[k] = world.geodesic((poses[src[k], 0], poses[src[k], 1]), (poses[dst[k], 0], poses[dst[k], 1]))
        return out

    def predict(src, dst):
        return head(codes[torch.as_tensor(src)], codes[torch.as_tensor(dst)]).numpy()

    val_frames = world_data.frames(val=True)
    train_frames = world_data.frames(val=False)
    if len(val_frames) < 10 or len(train_frames) < 10:
        return {"available": False, "reason": "too few validation or training frames"}
    cs, cd = _pairs_by_goal(train_frames, n_goals // 2, per_goal, rng)     # calibration (scale)
    hs, hd = _pairs_by_goal(val_frames, n_goals, per_goal, rng)            # held-out
    ct, ht = truth(cs, cd), truth(hs, hd)
    cp, hp = predict(cs, cd), predict(hs, hd)
    cok, hok = np.isfinite(ct), np.isfinite(ht)
    scale = float(np.sum(cp[cok] * ct[cok]) / max(np.sum(cp[cok] ** 2), 1e-12))
    rho = float(spearmanr(hp[hok], ht[hok]).statistic)
    mae = float(np.mean(np.abs(scale * hp[hok] - ht[hok])))
    out = {"available": True, "spearman": rho, "mae_m": mae, "scale_m_per_unit": scale,
           "pairs": int(hok.sum()), "mean_true_geodesic_m": float(np.mean(ht[hok])),
           "_pred": hp[hok], "_true": ht[hok]}
    # graph quality: d_G against the truth on training-source rows
    if dist_rows is not None and row_sources is not None and len(row_sources):
        k = rng.choice(len(row_sources), min(40, len(row_sources)), replace=False)
        gs = np.repeat(row_sources[k], per_goal)
        gd = np.concatenate([rng.choice(train_frames, per_goal) for _ in k])
        dg = dist_rows[np.repeat(k, per_goal), gd]
        tg = truth(gs, gd)
        ok = np.isfinite(dg) & np.isfinite(tg)
        out["graph_spearman"] = float(spearmanr(dg[ok], tg[ok]).statistic) if ok.sum() > 2 else None
        out["graph_reachable_fraction"] = float(np.isfinite(dg).mean())
    return out


def latent_map(path, world_data, codes: torch.Tensor, head, max_points: int = 4000, seed: int = 0) -> Path | None:
    """2-D PCA of g(h(o)) coloured by true position, next to the true positions."""
    if world_data.poses is None:
        return None
    plt = pyplot()

    rng = np.random.default_rng(seed)
    idx = rng.choice(len(codes), min(max_points, len(codes)), replace=False)
    with torch.no_grad():
        g = head.g(codes[torch.as_tensor(idx)]).numpy()
    g = g - g.mean(0)
    _, _, vt = np.linalg.svd(g, full_matrices=False)
    proj = g @ vt[:2].T
    xy = world_data.poses[idx, :2]
    lo, hi = xy.min(0), xy.max(0)
    nrm = (xy - lo) / np.maximum(hi - lo, 1e-9)
    colour = np.stack([nrm[:, 0], nrm[:, 1], 1.0 - 0.5 * (nrm[:, 0] + nrm[:, 1])], 1).clip(0, 1)
    fig, ax = plt.subplots(1, 2, figsize=(10, 4.6))
    ax[0].scatter(xy[:, 0], xy[:, 1], c=colour, s=3)
    ax[0].set_title(f"{world_data.name}: true positions")
    ax[0].set_aspect("equal")
    ax[0].set_xlabel("x [m]")
    ax[0].set_ylabel("y [m]")
    ax[1].scatter(proj[:, 0], proj[:, 1], c=colour, s=3)
    ax[1].set_title("latent map: PCA of g(h(o)), same colours")
    ax[1].set_aspect("equal")
    fig.tight_layout()
    return save_figure(fig, path, dpi=90)


def loss_figure(path, history: dict) -> Path:
    plt = pyplot()

    fig, ax = plt.subplots(1, 3, figsize=(14, 3.8))
    s1 = history.get("stage1") or {}
    if s1.get("step"):
        for key in ("loss", "ce", "contrastive"):
            ax[0].plot(s1["step"], s1[key], label=key, lw=0.8)
        ev = s1.get("epoch_val", [])
        if ev and s1["step"]:
            per = (s1["step"][-1] + 1) / max(len(ev), 1)
            xs = [(e["epoch"]) * per for e in ev if e.get("val_loss") is not None]
            ys = [e["val_loss"] for e in ev if e.get("val_loss") is not None]
            ax[0].plot(xs, ys, "o-", label="val loss")
        ax[0].set_yscale("log")
        ax[0].legend()
    ax[0].set_title("stage 1: h + f-dagger")
    ax[0].set_xlabel("step")
    s3 = history.get("stage3") or {}
    if s3.get("step"):
        ax[1].plot(s3["step"], s3["loss"], lw=0.8)
        ax[1].set_yscale("log")
    ax[1].set_title("stage 3: f (MSE)")
    ax[1].set_xlabel("step")
    for world, s4 in (history.get("stage4") or {}).items():
        if s4.get("step"):
            ax[2].plot(s4["step"], s4["loss"], label=world, lw=0.8)
    ax[2].set_yscale("log")
    ax[2].set_title("stage 4: p+ (MSE on d_G)")
    ax[2].set_xlabel("step")
    if history.get("stage4"):
        ax[2].legend()
    fig.tight_layout()
    return save_figure(fig, path, dpi=90)


def accuracy_figure(path, per_world: dict) -> Path:
    plt = pyplot()

    fig, ax = plt.subplots(figsize=(7, 3.5))
    names = list(per_world)
    width = 0.8 / max(len(names), 1)
    for k, w in enumerate(names):
        pc = per_world[w].get("per_class", {})
        vals = [pc.get(c, {}).get("accuracy", np.nan) for c in CLASSES]
        ax.bar(np.arange(len(CLASSES)) + k * width, vals, width, label=w)
    ax.set_xticks(np.arange(len(CLASSES)) + 0.4 - width / 2)
    ax.set_xticklabels(CLASSES, fontsize=8)
    ax.set_ylim(0, 1)
    ax.set_ylabel("validation accuracy")
    ax.set_title("f-dagger accuracy per class")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return save_figure(fig, path, dpi=90)


def geodesic_figure(path, per_world: dict) -> Path | None:
    items = [(w, m) for w, m in per_world.items() if m.get("available") and "_true" in m]
    if not items:
        return None
    plt = pyplot()

    fig, ax = plt.subplots(1, len(items), figsize=(4.5 * len(items), 4), squeeze=False)
    for a, (w, m) in zip(ax[0], items):
        a.scatter(m["_true"], m["_pred"] * m["scale_m_per_unit"], s=3, alpha=0.5)
        lim = max(np.max(m["_true"]), 1.0)
        a.plot([0, lim], [0, lim], "k--", lw=0.8)
        a.set_xlabel("true geodesic [m]")
        a.set_ylabel("scaled p+ [m]")
        a.set_title(f"{w}: Spearman {m['spearman']:.3f}, MAE {m['mae_m']:.2f} m")
    fig.tight_layout()
    return save_figure(fig, path, dpi=90)


def label_summary(world_data) -> dict:
    """Per bag of a world: how its transitions were labelled (the line `o4a train` logs)
    and the counts behind it (odometry labels: the laser cross-check and, with poses, the
    labels true to the ground truth)."""
    return {src: {"how": how, "counts": world_data.label_stats.get(src, {})}
            for src, how in world_data.labelling.items()}


def _clean(obj):
    """JSON-safe: drop private keys (leading _), numpy -> python, NaN -> None."""
    if isinstance(obj, dict):
        return {k: _clean(v) for k, v in obj.items() if not str(k).startswith("_")}
    if isinstance(obj, (list, tuple)):
        return [_clean(v) for v in obj]
    if isinstance(obj, np.generic):
        obj = obj.item()
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj


def _mean(vals):
    vals = [v for v in vals if v is not None]
    return float(np.mean(vals)) if vals else None


def write_report(out_dir, summary: dict) -> dict:
    """summary: {'worlds': {name: {'fdagger':..., 'loop_closure':..., 'geodesic':..., ...}},
    'history': {...}, 'timings_s': {...}, ...}. Writes report.json, report.md, figures."""
    out_dir = Path(out_dir)
    worlds = summary["worlds"]
    loss_name = "report_losses.png" if summary.get("base") is None else "report_losses_base_run.png"
    figures = {"losses": loss_figure(out_dir / loss_name, summary.get("history", {})).name,
               "fdagger_accuracy": accuracy_figure(out_dir / "report_fdagger_accuracy.png",
                                                   {w: m.get("fdagger", {}) for w, m in worlds.items()}).name}
    gfig = geodesic_figure(out_dir / "report_geodesic.png", {w: m.get("geodesic", {}) for w, m in worlds.items()})
    if gfig:
        figures["geodesic"] = gfig.name
    for w, m in worlds.items():
        if m.get("latent_map"):
            figures[f"latent_map_{w}"] = m["latent_map"]
    geo = [m.get("geodesic", {}) for m in worlds.values()]
    lc = [m.get("loop_closure", {}) for m in worlds.values()]
    fd = [m.get("fdagger", {}) for m in worlds.values()]
    top = {
        "fdagger_val_balanced_accuracy": _mean([f.get("balanced_accuracy") for f in fd]),
        "fdagger_val_motion_accuracy": _mean([f.get("motion_accuracy") for f in fd]),
        "loop_closure_precision": _mean([l.get("precision") for l in lc]),
        "loop_closure_recall": _mean([l.get("recall") for l in lc]),
        "loop_closure_exact_precision": _mean([l.get("exact_precision") for l in lc]),
        "loop_closure_exact_precision_min": min([l["exact_precision"] for l in lc
                                                 if l.get("exact_precision") is not None], default=None),
        "loop_closure_ideal_recall": _mean([l.get("ideal_recall") for l in lc]),
        "loop_closure_ideal_recall_min": min([l["ideal_recall"] for l in lc if l.get("ideal_recall") is not None],
                                             default=None),
        "geodesic_spearman": _mean([g.get("spearman") for g in geo]),
        "geodesic_spearman_min": min([g["spearman"] for g in geo if g.get("spearman") is not None], default=None),
        "geodesic_mae_m": _mean([g.get("mae_m") for g in geo]),
        "graph_geodesic_spearman": _mean([g.get("graph_spearman") for g in geo]),
    }
    report = {**top, **{k: v for k, v in summary.items() if k not in ("worlds", "history")},
              "worlds": worlds, "figures": figures,
              "history": {"stage1_epochs": (summary.get("history", {}).get("stage1") or {}).get("epoch_val", []),
                          "stage3": summary.get("history", {}).get("stage3"),
                          }}
    report = _clean(report)
    (out_dir / "report.json").write_text(json.dumps(report, indent=2, sort_keys=False))
    (out_dir / "report.md").write_text(_markdown(report))
    return report


def _fmt(v, spec=".3f"):
    return "n/a" if v is None else format(v, spec)


def _markdown(r: dict) -> str:
    lines = ["# O4A training report", ""]
    lines += [f"- f-dagger balanced validation accuracy: {_fmt(r.get('fdagger_val_balanced_accuracy'))} "
              f"(motion classes: {_fmt(r.get('fdagger_val_motion_accuracy'))})",
              f"- loop-closure precision / recall: {_fmt(r.get('loop_closure_precision'))} / "
              f"{_fmt(r.get('loop_closure_recall'))}",
              f"- loop closures exact (the claimed action within 0.15 m, 10 deg) / recall of the ideal one-action "
              f"pairs: {_fmt(r.get('loop_closure_exact_precision'))} / {_fmt(r.get('loop_closure_ideal_recall'))} "
              f"(worst world {_fmt(r.get('loop_closure_exact_precision_min'))} / "
              f"{_fmt(r.get('loop_closure_ideal_recall_min'))})",
              f"- p+ vs true geodesic on held-out pairs: Spearman {_fmt(r.get('geodesic_spearman'))}, "
              f"MAE {_fmt(r.get('geodesic_mae_m'), '.2f')} m after scaling",
              f"- graph d_G vs true geodesic: Spearman {_fmt(r.get('graph_geodesic_spearman'))}", ""]
    if r.get("timings_s"):
        lines += ["## Timings (s)", ""] + [f"- {k}: {v:.1f}" for k, v in r["timings_s"].items() if v is not None] + [""]
    for w, m in r.get("worlds", {}).items():
        lines += [f"## World `{w}`", ""]
        lines += [f"- frames {m.get('frames')}, trajectories {m.get('trajectories')} "
                  f"({m.get('val_trajectories')} held out), bags: {', '.join(m.get('bags', []))}"]
        for src, lab in (m.get("labels") or {}).items():
            lines += [f"- labels of {src}: {lab['how']}"]
        f = m.get("fdagger", {})
        if f.get("per_class"):
            lines += ["- f-dagger validation accuracy per class: " +
                      ", ".join(f"{c} {v['accuracy']:.3f} (n={v['count']})" for c, v in f["per_class"].items())]
        cl = m.get("closures") or {}
        if cl.get("rule") == "laser":
            lines += [f"- loop closures: laser ({cl.get('why')}): {cl.get('candidates')} candidate pairs, "
                      f"{cl.get('after_precheck')} after the range pre-check, {cl.get('grown')} grown along the "
                      f"trajectories, {cl.get('accepted')} of {cl.get('registered')} registrations accepted, "
                      f"{cl.get('edges')} one-action edges in {_fmt(cl.get('seconds'), '.1f')} s (registration "
                      f"{_fmt(cl.get('register_seconds'), '.1f')} s)"]
        elif cl.get("rule"):
            lines += [f"- loop closures: image ({cl.get('why')})"]
        conn = m.get("graph_connectivity")
        if conn:
            lines += [f"- graph connectivity: the largest strongly connected part holds "
                      f"{conn['largest_share']:.1%} of the frames ({conn['components']} parts)"
                      + (" - FRAGMENTED: record more of this place" if conn["largest_share"] < CONNECTED_SHARE else "")]
        lc = m.get("loop_closure", {})
        if lc.get("available") and lc.get("exact_precision") is not None:
            lines += [f"- loop closures exact {_fmt(lc['exact_precision'])}, ideal-pair recall "
                      f"{_fmt(lc.get('ideal_recall'))} of {lc.get('ideal_pairs')}"]
        if lc.get("available"):
            lines += [f"- graph: {lc['chain_edges']} chain + {lc['edges']} loop-closure edges; precision "
                      f"{_fmt(lc['precision'])}, recall {_fmt(lc['recall'])} ({lc['criterion']}); "
                      f"loop edges > 1 m wrong: {_fmt(lc['wrong_place_rate_1m'])}"]
        else:
            lines += [f"- loop closure metrics: not available ({lc.get('reason', 'no poses')})"]
        gp = m.get("graph_pose") or {}
        if gp.get("available"):
            per = ", ".join(f"{d} {k}/{n}" for d, (k, n) in gp["per_difficulty"].items())
            lines += [f"- graph check (the rule on d_G of this graph at perfect localisation, `o4a diagnose "
                      f"--mode graph-pose`, seed {gp['seed']}): {gp['succeeded']}/{gp['episodes']} ({per}), "
                      f"{_fmt(gp['rotations_per_forward'], '.2f')} rotations per forward"]
        elif gp:
            lines += [f"- graph check: not run ({gp.get('reason')})"]
        g = m.get("geodesic", {})
        if g.get("available"):
            lines += [f"- p+: Spearman {g['spearman']:.3f}, MAE {g['mae_m']:.2f} m (scale {g['scale_m_per_unit']:.3f} "
                      f"m per unit, {g['pairs']} held-out pairs, mean true distance {g['mean_true_geodesic_m']:.2f} m); "
                      f"graph Spearman {_fmt(g.get('graph_spearman'))}"]
        else:
            lines += [f"- geodesic metrics: not available ({g.get('reason', '')})"]
        lines += [""]
    for name, fig in r.get("figures", {}).items():
        lines += [f"![{name}]({fig})", ""]
    return "\n".join(lines)
