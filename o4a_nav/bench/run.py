"""Orchestration of a benchmark run: sample the episodes once per world, run every
policy on the same episodes, aggregate, write the outputs."""
from __future__ import annotations

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

ALL_POLICIES = (*O4A_VARIANTS, "random", "graph", "oracle")
# every policy, in the order of the tables (the method, our flags, the ablations, baselines)
DEFAULT_POLICIES = ("o4a", "o4a-anti-oscillation", "o4a-lookahead", "o4a-scan", "o4a-no-repulsor", "o4a-no-attractor", "random",
                    "graph", "oracle")


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
    nav_params: dict = field(default_factory=dict)  # NavigatorParams overrides for the o4a* policies
    command: str = ""
    motion_noise: str = ""    # "FRAC,DEG": the simulated robot's executed-motion error (sim.robot.MotionNoise)
    laser_noise: float = 0.0  # the simulated laser's range noise [m]


def check_noise(cfg: BenchConfig) -> None:
    """UserError for a bad --motion-noise / --laser-noise."""
    from o4a_nav.sim.robot import noise_options

    noise_options(cfg.motion_noise, cfg.laser_noise)


def sim_robot(cfg: BenchConfig, world):
    """The benchmark's simulated robot in `world`, with the run's noise."""
    from o4a_nav.sim import SimRobot
    from o4a_nav.sim.robot import noise_options

    motion, laser = noise_options(cfg.motion_noise, cfg.laser_noise)
    return SimRobot(world, seed=cfg.seed, laser=laser, motion_noise=motion)


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
    if cfg.nav_params:
        from o4a_nav.nav.navigator import NavigatorParams

        NavigatorParams.from_dict(dict(cfg.nav_params))  # UserError naming an unknown or invalid parameter
    needs_model = any(p in O4A_VARIANTS or p == "graph" for p in cfg.policies)
    if needs_model and not cfg.model:
        raise UserError("policies o4a*/graph need a model: give --model DIR")


def make_policies(cfg: BenchConfig, model, world_name: str, notes: list[str]) -> list:
    from o4a_nav.errors import ModelLoadError

    from .graph_baseline import GraphPolicy, load_training_graph

    policies = []
    for name in cfg.policies:
        if name in O4A_VARIANTS:
            if world_name not in model.worlds:
                raise UserError(f"model {cfg.model} has no p+ head for world '{world_name}' "
                                f"(it knows: {', '.join(model.worlds)}); train on it or drop it from --worlds")
            from .policies import O4APolicy

            try:
                policies.append(O4APolicy(name, model, world_name, **{"max_steps": cfg.max_steps, **cfg.nav_params}))
            except TypeError as exc:  # e.g. anti_oscillation not supported by this navigator
                notes.append(f"policy {name} skipped: {exc}")
        elif name == "graph":
            from o4a_nav.nav.navigator import NavigatorParams

            try:
                graph = load_training_graph(cfg.model, world_name)
            except ModelLoadError as exc:
                notes.append(f"policy graph skipped in world '{world_name}': {exc}")
                continue
            policies.append(GraphPolicy(model, graph, stop_threshold=NavigatorParams().stop_threshold,
                                        lookahead=cfg.graph_lookahead))
        elif name == "random":
            policies.append(RandomPolicy())
        elif name == "oracle":
            policies.append(OraclePolicy())
    return policies


class _Worker:
    """Runs every policy on one episode at a time. Holds the model (behind the exact
    embed cache) and, per world, the simulator robot, collision checker and policies.
    One per process: in-process for --jobs 1, one per pool worker otherwise."""

    def __init__(self, cfg: BenchConfig, world_paths: dict | None = None):
        import torch

        self.world_paths = dict(world_paths or {})
        torch.set_num_threads(max(1, cfg.threads))
        self.cfg = cfg
        self.model = None
        if cfg.model and any(p in O4A_VARIANTS or p == "graph" for p in cfg.policies):
            from o4a_nav.learning.model_io import load_model

            from .cache import EmbedCache

            self.model = EmbedCache(load_model(cfg.model))
        self.worlds: dict[str, tuple] = {}
        self.notes: list[str] = []

    def _world(self, name: str):
        if name not in self.worlds:
            from o4a_nav.nav.collision import CollisionChecker
            from o4a_nav.sim import load_world

            from .cache import ViewCache

            world = load_world(self.world_paths.get(name, name))
            robot = sim_robot(self.cfg, world)
            self.worlds[name] = (world, robot, ViewCache(robot), CollisionChecker(),
                                 make_policies(self.cfg, self.model, name, self.notes))
        return self.worlds[name]

    def run(self, ep):
        world, robot, views, checker, policies = self._world(ep.world)
        goal = render_goal(robot, ep)
        draw = ep.index < self.cfg.trajectories
        out = []
        for pol in policies:
            t0 = time.perf_counter()
            r = run_episode(world, robot, checker, pol, ep, goal, self.cfg.seed, self.cfg.max_steps,
                            record_trajectory=draw, views=views)
            out.append((r, time.perf_counter() - t0))
        return ep, out, list(self.notes)

    def close(self):
        for _, robot, *_ in self.worlds.values():
            robot.close()
        self.worlds.clear()


_WORKER: _Worker | None = None


def _pool_init(cfg: BenchConfig, world_paths: dict) -> None:
    global _WORKER
    _WORKER = _Worker(cfg, world_paths)


def _pool_run(ep):
    return _WORKER.run(ep)


def run_benchmark(cfg: BenchConfig, progress: bool = True, jobs: int = 1, checkpoint_s: float = 120.0) -> dict:
    """Run the benchmark and write results.json, results.md, the SR/SPL plot and the
    trajectory pictures into cfg.out. Returns the results payload. ``jobs`` > 1 runs
    episodes in that many worker processes (same results: every episode and policy is
    deterministic on its own). Every ``checkpoint_s`` seconds the outputs so far are
    written (``"partial": true``), so a long run stopped early still leaves results."""
    check_config(cfg)
    from tqdm import tqdm

    from o4a_nav.sim import load_world

    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    t_start = time.perf_counter()
    model_meta = None
    if cfg.model and any(p in O4A_VARIANTS or p == "graph" for p in cfg.policies):
        from o4a_nav.learning.model_io import load_model

        m = load_model(cfg.model)  # fail early, in the parent, on a bad model directory
        model_meta = {k: (m.meta or {}).get(k) for k in ("saved_at", "worlds", "embed_dim")}
        missing = [w for w in cfg.worlds if load_world(w).name not in m.worlds and any(p in O4A_VARIANTS for p in cfg.policies)]
        if missing:
            raise UserError(f"model {cfg.model} has no p+ head for world(s) {', '.join(missing)} "
                            f"(it knows: {', '.join(m.worlds)}); train on them or drop them from --worlds")
        del m

    notes: list[str] = []
    worlds, episode_sets, world_paths = {}, {}, {}
    for name in cfg.worlds:
        world = load_world(name)
        wname = getattr(world, "name", None) or Path(name).stem
        worlds[wname] = world
        world_paths[wname] = str(name)
        es = sample_episodes(world, wname, cfg.episodes, cfg.seed, tuple(cfg.difficulties))
        episode_sets[wname] = es
        notes.extend(es.notes)
    # Index-major order (episode 0 of every world and difficulty, then episode 1, ...):
    # a run stopped early (or a checkpoint) covers every bin evenly.
    episodes = sorted((ep for w in worlds for ep in episode_sets[w].episodes),
                      key=lambda e: (e.index, list(worlds).index(e.world), cfg.difficulties.index(e.difficulty)))
    n_pol = len(cfg.policies)

    results, per_policy_time = [], {}
    worker_notes: list[str] = []
    bar = tqdm(total=len(episodes) * n_pol, desc="o4a bench", unit="ep", disable=not progress, dynamic_ncols=True)
    last_checkpoint = [time.perf_counter()]

    def write(partial: bool) -> dict:
        return _write_outputs(cfg, out, worlds, episodes, results, per_policy_time, notes + worker_notes,
                              model_meta, jobs, time.perf_counter() - t_start, partial)

    def consume(item):
        ep, out_list, wnotes = item
        worker_notes.extend(n for n in wnotes if n not in worker_notes)
        for r, dt in out_list:
            per_policy_time[r.policy] = per_policy_time.get(r.policy, 0.0) + dt
            results.append((ep, r))
        bar.update(n_pol)
        ok = sum(r.success for r, _ in out_list)
        bar.set_postfix_str(f"{ep.world} {ep.difficulty} #{ep.index}: {ok}/{len(out_list)} policies succeeded")
        if checkpoint_s and time.perf_counter() - last_checkpoint[0] > checkpoint_s:
            write(partial=True)
            last_checkpoint[0] = time.perf_counter()

    if jobs <= 1 or len(episodes) <= 1:
        worker = _Worker(cfg, world_paths)
        try:
            for ep in episodes:
                consume(worker.run(ep))
        finally:
            worker.close()
    else:
        import multiprocessing as mp

        ctx = mp.get_context("spawn")  # no fork after OpenGL/torch initialisation
        for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
            os.environ.setdefault(var, str(max(1, cfg.threads)))  # workers: no BLAS oversubscription
        with ctx.Pool(jobs, initializer=_pool_init, initargs=(cfg, world_paths)) as pool:
            for item in pool.imap_unordered(_pool_run, episodes):
                consume(item)
    bar.close()
    return write(partial=False)


def _write_outputs(cfg, out, worlds, episodes, results, per_policy_time, notes, model_meta, jobs, wall_s,
                   partial, extra: dict | None = None) -> dict:
    from . import report

    # Deterministic order whatever the completion order: world, difficulty, index, policy.
    w_order = {w: i for i, w in enumerate(worlds)}
    d_order = {d: i for i, d in enumerate(cfg.difficulties)}
    p_order = {p: i for i, p in enumerate(cfg.policies)}
    done = sorted(results, key=lambda t: (w_order[t[0].world], d_order[t[0].difficulty], t[0].index,
                                          p_order[t[1].policy]))
    pictures = []
    by_episode: dict[str, dict] = {}
    for ep, r in done:
        if r.trajectory:
            by_episode.setdefault(ep.key, {"ep": ep, "res": {}})["res"][r.policy] = r
    for item in by_episode.values():
        ep = item["ep"]
        path = out / f"traj_{ep.world}_{ep.difficulty}_{ep.index:02d}.png"
        if not path.is_file() or not partial:  # an episode's policies all finish together
            report.plot_trajectories(world_map(worlds[ep.world]), ep, item["res"], path)
        pictures.append(path.name)
    rs = [r for _, r in done]
    records = group_records(rs, cfg.difficulties)
    n_eps = {p: sum(1 for r in rs if r.policy == p) for p in per_policy_time}
    cached = sum(r.cached_steps for r in rs)
    notes = list(notes)
    if partial:
        n_done = len({ep.key for ep, _ in done})
        notes.insert(0, f"PARTIAL checkpoint: {n_done}/{len(episodes)} episodes finished so far")
    payload = {
        "config": {**asdict(cfg), "worlds": list(worlds), "git_commit": _git_commit(), "jobs": jobs,
                   "host": platform.node(), "cpu_count": os.cpu_count(), "model_meta": model_meta},
        "partial": partial,
        "wall_time_s": wall_s,
        "seconds_per_episode": {p: per_policy_time[p] / max(1, n_eps[p]) for p in per_policy_time},
        "embed_cache": {"decisions_with_cached_embedding": cached, "decisions": sum(r.steps for r in rs)},
        "notes": notes,
        "records": records,
        "episodes": [r.summary() for r in rs],
        "episode_list": [ep.to_dict() for ep in episodes],
        "trajectory_pictures": pictures,
        **(extra or {}),
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
