"""Orchestration of a benchmark run: sample the episodes once per world, run every
policy on the same episodes, aggregate, write the outputs."""
from __future__ import annotations

import math
import os
import platform
import subprocess
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from o4a_nav.errors import UserError

from .episodes import DIFFICULTY_NAMES, sample_episodes
from .metrics import group_records
from .policies import O4A_VARIANTS, OraclePolicy, RandomPolicy
from .runner import MAX_STEPS, render_goal, run_episode

ALL_POLICIES = ("o4a", "o4a-no-repulsor", "o4a-no-attractor", "o4a-anti-oscillation", "random", "graph", "oracle")
DEFAULT_POLICIES = ("o4a", "o4a-no-repulsor", "o4a-no-attractor", "random", "graph", "oracle")


@dataclass
class BenchConfig:
    model: str | None
    worlds: list[str]
    out: str
    episodes: int = 20
    seed: int = 0
    policies: list[str] = field(default_factory=lambda: list(DEFAULT_POLICIES))
    difficulties: list[str] = field(default_factory=lambda: list(DIFFICULTY_NAMES))
    max_steps: int = MAX_STEPS
    trajectories: int = 1  # episodes drawn per world and difficulty
    threads: int = 1
    graph_lookahead: int = 3
    command: str = ""


def _git_commit() -> str | None:
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, timeout=5,
                              cwd=Path(__file__).resolve().parent).stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None


def check_config(cfg: BenchConfig) -> None:
    bad = [p for p in cfg.policies if p not in ALL_POLICIES]
    if bad:
        raise UserError(f"unknown policy {', '.join(bad)}; choose from {', '.join(ALL_POLICIES)}")
    bad = [d for d in cfg.difficulties if d not in DIFFICULTY_NAMES]
    if bad:
        raise UserError(f"unknown difficulty {', '.join(bad)}; choose from {', '.join(DIFFICULTY_NAMES)}")
    if cfg.episodes < 1:
        raise UserError(f"--episodes must be >= 1 (got {cfg.episodes})")
    if cfg.max_steps < 1:
        raise UserError(f"--max-steps must be >= 1 (got {cfg.max_steps})")
    if not cfg.worlds:
        raise UserError("no world given (--worlds)")
    needs_model = any(p in O4A_VARIANTS or p == "graph" for p in cfg.policies)
    if needs_model and not cfg.model:
        raise UserError("policies o4a*/graph need a model: give --model DIR")


def make_policies(cfg: BenchConfig, model, world_name: str, notes: list[str]) -> list:
    from .graph_baseline import GraphPolicy, TrainingGraph

    policies = []
    for name in cfg.policies:
        if name in O4A_VARIANTS:
            if world_name not in model.worlds:
                raise UserError(f"model {cfg.model} has no p+ head for world '{world_name}' "
                                f"(it knows: {', '.join(model.worlds)}); train on it or drop it from --worlds")
            from .policies import O4APolicy

            try:
                policies.append(O4APolicy(name, model, world_name, max_steps=max(cfg.max_steps, 1)))
            except TypeError as exc:  # e.g. anti_oscillation not supported by this navigator
                notes.append(f"policy {name} skipped: {exc}")
        elif name == "graph":
            gpath = Path(cfg.model) / f"graph_{world_name}.npz"
            if not gpath.is_file():
                notes.append(f"policy graph skipped in world '{world_name}': {gpath} not found")
                continue
            from o4a_nav.nav.navigator import NavigatorParams

            policies.append(GraphPolicy(model, TrainingGraph.load(gpath), stop_threshold=NavigatorParams().stop_threshold,
                                        lookahead=cfg.graph_lookahead))
        elif name == "random":
            policies.append(RandomPolicy())
        elif name == "oracle":
            policies.append(OraclePolicy())
    return policies


def run_benchmark(cfg: BenchConfig, progress: bool = True) -> dict:
    """Run the benchmark and write results.json, results.md, the SR/SPL plot and the
    trajectory pictures into cfg.out. Returns the results payload."""
    check_config(cfg)
    import torch
    from tqdm import tqdm

    from o4a_nav.nav.collision import CollisionChecker
    from o4a_nav.sim import SimRobot, load_world

    from . import report
    from .cache import ViewCache

    torch.set_num_threads(max(1, cfg.threads))
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    t_start = time.perf_counter()
    model = None
    if cfg.model and any(p in O4A_VARIANTS or p == "graph" for p in cfg.policies):
        from o4a_nav.learning.model_io import load_model

        from .cache import EmbedCache

        model = EmbedCache(load_model(cfg.model))

    notes: list[str] = []
    worlds, episode_sets = {}, {}
    for name in cfg.worlds:
        world = load_world(name)
        wname = getattr(world, "name", None) or Path(name).stem
        worlds[wname] = world
        es = sample_episodes(world, wname, cfg.episodes, cfg.seed, tuple(cfg.difficulties))
        episode_sets[wname] = es
        notes.extend(es.notes)
    world_policies = {w: make_policies(cfg, model, w, notes) for w in worlds}
    total = sum(len(episode_sets[w].episodes) * len(world_policies[w]) for w in worlds)

    results, episode_list, pictures, per_policy_time = [], [], [], {}
    bar = tqdm(total=total, desc="o4a bench", unit="ep", disable=not progress, dynamic_ncols=True)
    for wname, world in worlds.items():
        robot = SimRobot(world, seed=cfg.seed)
        views = ViewCache(robot)
        checker = CollisionChecker()
        try:
            for ep in episode_sets[wname].episodes:
                episode_list.append(ep.to_dict())
                goal = render_goal(robot, ep)
                draw = ep.index < cfg.trajectories
                by_policy = {}
                for pol in world_policies[wname]:
                    t0 = time.perf_counter()
                    r = run_episode(world, robot, checker, pol, ep, goal, cfg.seed, cfg.max_steps,
                                    record_trajectory=draw, views=views)
                    per_policy_time[pol.name] = per_policy_time.get(pol.name, 0.0) + time.perf_counter() - t0
                    results.append(r)
                    by_policy[pol.name] = r
                    bar.update(1)
                    bar.set_postfix_str(f"{wname} {ep.difficulty} {pol.name}: {'ok' if r.success else 'fail'}")
                if draw:
                    path = out / f"traj_{wname}_{ep.difficulty}_{ep.index:02d}.png"
                    report.plot_trajectories(world_map(world), ep, by_policy, path)
                    pictures.append(path.name)
        finally:
            close = getattr(robot, "close", None)
            if close:
                close()
    bar.close()

    records = group_records(results, cfg.difficulties)
    n_eps = {p: sum(1 for r in results if r.policy == p) for p in per_policy_time}
    cache_stats = {"embed_hits": getattr(model, "hits", 0), "embed_misses": getattr(model, "misses", 0)}
    payload = {
        "config": {**asdict(cfg), "worlds": list(worlds), "git_commit": _git_commit(),
                   "host": platform.node(), "cpu_count": os.cpu_count(),
                   "model_meta": {k: (getattr(model, "meta", None) or {}).get(k) for k in ("saved_at", "worlds", "embed_dim")} if model else None},
        "wall_time_s": time.perf_counter() - t_start,
        "seconds_per_episode": {p: per_policy_time[p] / max(1, n_eps[p]) for p in per_policy_time},
        "embed_cache": cache_stats,
        "notes": notes,
        "records": records,
        "episodes": [r.summary() for r in results],
        "episode_list": episode_list,
        "trajectory_pictures": pictures,
    }
    report.write_json(out / "results.json", payload)
    (out / "results.md").write_text(report.markdown_report(payload))
    if records:
        report.plot_sr_spl(records, out / "sr_spl.png", "all")
    return payload


def world_map(world):
    """(image, extent) of a world for the trajectory pictures: 1 = wall/box (within 3 cm),
    0.45 = where the robot's centre cannot be (robot radius), 0 = free. None when the world
    has no occupancy grid."""
    import numpy as np

    clearance = getattr(world, "clearance", None)
    if clearance is None:
        return None
    free = getattr(world, "main_component", getattr(world, "free", clearance > 0))
    img = np.where(free, 0.0, 0.45)
    img[np.asarray(clearance) < 0.03] = 1.0
    x0, y0 = world.origin
    h, w = world.shape
    return img, (x0, x0 + w * world.resolution, y0, y0 + h * world.resolution)
