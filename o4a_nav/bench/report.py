"""Benchmark outputs: results.json, a markdown table, a bar plot and top-down
trajectory pictures. Matplotlib is imported lazily with the Agg backend."""
from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np

from o4a_nav.plotting import pyplot, save_figure

from .episodes import DIFFICULTY_NAMES

DIFF_LABEL = {"easy": "easy", "medium": "medium", "hard": "hard", "very_hard": "very hard"}


def _fmt(v, digits=2) -> str:
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return "-"
    return f"{v:.{digits}f}"


def write_json(path, payload: dict) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(payload, indent=1, default=_json_default))
    tmp.replace(path)
    return path


def _json_default(o):
    if isinstance(o, (np.integer,)):
        return int(o)
    if isinstance(o, (np.floating,)):
        return float(o)
    if isinstance(o, np.ndarray):
        return o.tolist()
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")


def _records_index(records):
    return {(r["policy"], r["world"], r["difficulty"]): r for r in records}


def markdown_table(records: list[dict], world: str = "all", difficulties=DIFFICULTY_NAMES) -> str:
    """SR / SPL per difficulty, then overall soft SR, dtg, CFT, motions and latency,
    one row per policy, for ``world`` ('all' = pooled over worlds)."""
    idx = _records_index(records)
    policies = list(dict.fromkeys(r["policy"] for r in records))
    diffs = [d for d in difficulties if any((p, world, d) in idx for p in policies)]
    head = ["policy"] + [f"{DIFF_LABEL.get(d, d)} SR/SPL" for d in diffs] + [
        "soft SR", "dtg [m]", "CFT", "fwd/ep", "rot/ep", "rot/fwd", "latency med/p95 [ms]", "episodes"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for p in policies:
        group = [idx[(p, world, d)] for d in diffs if (p, world, d) in idx]
        if not group:
            continue
        cells = [p]
        for d in diffs:
            r = idx.get((p, world, d))
            cells.append(f"{_fmt(r['sr'])}/{_fmt(r['spl'])}" if r else "n/a")
        n = sum(g["episodes"] for g in group)

        def wmean(key):
            vals = [(g[key], g["episodes"]) for g in group if g.get(key) is not None]
            w = sum(c for _, c in vals)
            return sum(v * c for v, c in vals) / w if w else None

        fwd = wmean("forwards_per_episode")
        rot = wmean("rotations_per_episode")
        cells += [
            _fmt(wmean("soft_sr")), _fmt(wmean("dtg")), _fmt(wmean("cft")),
            _fmt(fwd, 1), _fmt(rot, 1), _fmt(rot / fwd if fwd else None),
            f"{_fmt(wmean('latency_median_ms'), 1)}/{_fmt(max((g['latency_p95_ms'] or 0) for g in group), 1)}",
            str(n),
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def markdown_report(payload: dict) -> str:
    cfg = payload["config"]
    out = [
        "# o4a bench results" + (" (PARTIAL: run still going or stopped early)" if payload.get("partial") else ""),
        "",
        f"Command: `{cfg.get('command', '')}`",
        "",
        f"Model `{cfg.get('model')}`, worlds {', '.join(cfg.get('worlds', []))}, "
        f"{cfg.get('episodes')} episodes per world and difficulty, seed {cfg.get('seed')}, "
        f"max {cfg.get('max_steps')} steps, success = STOP within 1 m (geodesic). "
        f"Wall time {_fmt(payload.get('wall_time_s'), 0)} s.",
        "",
        "SR = success rate, SPL = success weighted by path length, soft SR = within 1 m at any time, "
        "dtg = final geodesic distance to goal, CFT = share of collision-free episodes, "
        "fwd/rot = executed FORWARD / rotations per episode, latency = one policy decision "
        "(embedding included where the policy embeds; decisions that re-used an exactly identical "
        "view's code from the run's cache are not counted in the latency).",
        "",
        "## All worlds",
        "",
        markdown_table(payload["records"], "all"),
    ]
    if payload.get("ros_agreement"):
        from .agreement import markdown

        out += ["", "## Through the ROS stack: decision agreement with the core", "",
                "Policy `o4a` is the in-process core, `o4a-ros` the same episodes through the sim, collision_checker, "
                "navigator and base_controller nodes with the simulator in lockstep. A step agrees when both took the "
                "same decision at that step; SE = binomial standard error.", "",
                markdown(payload["ros_agreement"])]
    for w in cfg.get("worlds", []):
        out += ["", f"## {w}", "", markdown_table(payload["records"], w)]
    if payload.get("notes"):
        out += ["", "## Notes", ""] + [f"- {n}" for n in payload["notes"]]
    return "\n".join(out) + "\n"


def plot_sr_spl(records: list[dict], path, world: str = "all", title: str | None = None) -> Path:
    plt = pyplot()

    idx = _records_index(records)
    policies = list(dict.fromkeys(r["policy"] for r in records))
    diffs = [d for d in DIFFICULTY_NAMES if any((p, world, d) in idx for p in policies)]
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2), sharey=True)
    width = 0.8 / max(1, len(policies))
    x = np.arange(len(diffs))
    for ax, key, label in ((axes[0], "sr", "success rate"), (axes[1], "spl", "SPL")):
        for i, p in enumerate(policies):
            vals = [idx[(p, world, d)][key] if (p, world, d) in idx else np.nan for d in diffs]
            ax.bar(x + (i - (len(policies) - 1) / 2) * width, vals, width, label=p)
        ax.set_xticks(x, [DIFF_LABEL.get(d, d) for d in diffs])
        ax.set_ylim(0, 1.05)
        ax.set_title(label)
        ax.grid(axis="y", alpha=0.3)
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, fontsize=8, loc="lower center", ncol=min(len(policies), 7), frameon=False)
    fig.suptitle(title or f"o4a bench ({world})")
    fig.tight_layout(rect=(0, 0.08, 1, 1))
    return save_figure(fig, path, dpi=110)


def plot_trajectories(world_map, episode, results: dict, path) -> Path:
    """Top-down picture of one episode: the occupancy map, start (circle + heading),
    goal (star + heading) and each policy's path.

    ``world_map``: (occupancy 2-D bool array, extent (xmin, xmax, ymin, ymax)) or None.
    ``results``: policy name -> EpisodeResult with a trajectory.
    """
    plt = pyplot()

    fig, ax = plt.subplots(figsize=(6.4, 7.2))
    if world_map is not None:
        occ, extent = world_map
        ax.imshow(np.asarray(occ, dtype=float), origin="lower", extent=extent, cmap="Greys", vmin=0, vmax=1.2,
                  interpolation="nearest")
    s, g = episode.start, episode.goal
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for i, (name, r) in enumerate(results.items()):
        if not r.trajectory:
            continue
        t = np.asarray(r.trajectory)
        tag = "success" if r.success else ("stopped" if r.stopped else "timeout")
        ax.plot(t[:, 0], t[:, 1], "-", lw=1.6, color=colors[i % len(colors)], alpha=0.85,
                label=f"{name}: {tag}, {r.forwards} fwd / {r.rotations} rot")
        ax.plot(t[-1, 0], t[-1, 1], "x", color=colors[i % len(colors)], ms=8)
    ax.plot(s.x, s.y, "o", color="tab:green", ms=10, label="start")
    ax.arrow(s.x, s.y, 0.4 * math.cos(s.yaw), 0.4 * math.sin(s.yaw), color="tab:green", width=0.03)
    ax.plot(g.x, g.y, "*", color="tab:red", ms=16, label="goal")
    ax.arrow(g.x, g.y, 0.4 * math.cos(g.yaw), 0.4 * math.sin(g.yaw), color="tab:red", width=0.03)
    ax.add_patch(plt.Circle((g.x, g.y), 1.0, fill=False, ls="--", color="tab:red", alpha=0.6))
    ax.set_aspect("equal")
    ax.set_title(f"{episode.world} {DIFF_LABEL.get(episode.difficulty, episode.difficulty)} #{episode.index} "
                 f"(geodesic {episode.geodesic_m:.1f} m)")
    ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.12), ncol=2, frameon=False)
    ax.set_xlabel("x [m]")
    ax.set_ylabel("y [m]")
    fig.tight_layout()
    return save_figure(fig, path, dpi=100, bbox_inches="tight")
