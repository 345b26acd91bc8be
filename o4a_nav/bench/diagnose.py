"""The graph/potential decomposition (`o4a diagnose`; a diagnostic, not a policy): the
paper's navigation rule with the attractor p+ replaced, to find out which part of the
potential keeps the robot from the goal. ROS-free.

  --mode pplus   the model's p+ (control: the benchmark's `o4a` outcomes)
  --mode graph   the training graph's own distance d_G(node(w), node(x_g)): each waypoint
                 w = f(x_t, a) is localised at its nearest graph node (L2 on codes), the
                 goal code too, and the distance is one Dijkstra per goal on the graph that
                 p+ was fitted to. If this navigates far better than p+, fitting p+ is the
                 limit; if not, the graph (h's codes, f-dagger's loop closures) is.
  --mode graph-knn  the same, smoothed: min over the k nearest nodes c of ||w - c|| + d_G(c)
  --mode graph-pose  d_G with perfect localisation: the node nearest (by the bags' TRUE
                 poses, 0.25 m per 15 deg of heading) to the true pose where the action
                 leads; the goal node nearest to the true goal pose
  --graph-variant  which graph (graph modes): `shipped` (the model's graph_<world>.npz),
                 or one built here from --bags with the model's h and f-dagger:
                 `built` (the pipeline's rule), `gt` (loop closures that join places
                 more than 0.5 m or 30 deg apart by the bag's true poses removed: a graph
                 with perfect loop-closure precision), `exact` (only loop closures whose true
                 displacement is the action they claim, within 0.1 m and 7.5 deg), `ideal` (every
                 pair of frames one action apart by the true poses, found by f-dagger or
                 not, with d_h weights: the graph a perfect f-dagger would build), `chain` (no loop closures),
                 `laser` or `laser=K` (the pipeline's laser closures, K nearest codes),
                 `offset=X` (NOT_CONNECTED logit raised by X before the argmax; the
                 pipeline's default is log(63) = 4.14), `classw` (edge weight 1 per
                 motion, 0.05 per "same place" edge instead of d_h), `cap=C` (loop closures with
                 d_h >= C dropped), `loopw=K` (loop-closure weights x K); comma-separated, e.g. `gt,offset=0`
  --mode truth-pos  4 x the true geodesic from where the action leads (rotations tie)
  --mode truth-lattice  a heading-aware cost-to-go in action units, as d_G counts: min over
                 the 24 headings of rot_cost x turns + 1 + 4 x geodesic one FORWARD ahead
  --mode truth-snap  truth-lattice evaluated at the pose of the graph node nearest to where
                 the action leads (as graph-pose localises): the true cost with the
                 graph's resolution, without its path errors
  --mode truth   ground truth: 4 x the true geodesic distance in metres (one FORWARD of
                 0.25 m is about one unit of code distance, m+ = 1) from the point one
                 FORWARD ahead of where the action leads (a heading that faces a wall gets
                 the distance from where it stands, plus one step). This is the ceiling of
                 the rule itself: repulsor, STOP on d_h, A_free, f's waypoints for the
                 repulsion.

The episodes, simulator, collision checker and episode loop are those of `o4a bench --seed S
--episodes N --policy o4a` (o4a_nav.bench.runner.run_episode), so `--mode pplus` gives the
benchmark's `o4a` outcomes exactly.

    result = diagnose(DiagnoseConfig(mode="truth", worlds=["two_rooms"], episodes=3), log=print)
    result["episodes"]   # [{world, difficulty, index, success, stopped, final_m, forwards, rotations, spl}]
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from o4a_nav.errors import UserError

MODES = ("pplus", "graph", "graph-knn", "graph-pose", "truth", "truth-pos", "truth-lattice", "truth-snap")

CODE_UNITS_PER_M = 4.0


class _Wrapper:
    def __init__(self, model):
        self.m = model
        self._acts = None

    def __getattr__(self, k):
        return getattr(self.m, k)

    def forward_kinematics(self, x, a):
        import torch

        self._acts = torch.as_tensor(a).reshape(-1).tolist()
        return self.m.forward_kinematics(x, a)


class GraphAttractor(_Wrapper):
    def __init__(self, model, graph, knn: int = 0):
        import torch

        from o4a_nav.bench.graph_baseline import GraphPlanner

        super().__init__(model)
        self.planner = GraphPlanner(graph)
        self.codes = torch.from_numpy(self.planner.codes)
        self.knn = knn
        self._goal_key = None

    def geodesic(self, w, xg, world):
        import torch

        key = xg[0].numpy().tobytes()
        if key != self._goal_key:
            self.planner.plan(self.planner.localise(xg[0].numpy()))
            self._goal_key = key
            d = self.planner.dist_to_goal
            self._dist = torch.from_numpy(np.where(np.isfinite(d), d, 1e4).astype(np.float32))
        dd = torch.cdist(w.float(), self.codes)                   # (len(w), N)
        if self.knn <= 1:
            return self._dist[torch.argmin(dd, dim=1)]
        v, i = torch.topk(dd, self.knn, dim=1, largest=False)
        return torch.min(v + self._dist[i], dim=1).values


class GraphPoseAttractor(GraphAttractor):
    """d_G of the graph node nearest (by the bag's TRUE poses: position, plus 0.25 m per
    15 deg of heading difference) to the true pose where each action leads: the graph's
    distances with perfect localisation."""

    def __init__(self, model, graph, robot):
        super().__init__(model, graph)
        self.robot, self.poses = robot, graph.poses

    def geodesic(self, w, xg, world):
        import torch

        from o4a_nav.types import Action

        key = xg[0].numpy().tobytes()
        if key != self._goal_key:                 # the goal node: nearest to the TRUE goal pose
            self.planner.plan(self._node(self.goal))
            self._goal_key = key
            d = self.planner.dist_to_goal
            self._dist = torch.from_numpy(np.where(np.isfinite(d), d, 1e4).astype(np.float32))
        out = []
        for act in self._acts:
            pose, _ = self.robot.motion_result(Action(int(act)))
            out.append(float(self._dist[self._node(pose)]))
        return torch.tensor(out, dtype=torch.float32)

    def _node(self, pose) -> int:
        return nearest_node(self.poses, pose)


def nearest_node(poses: np.ndarray, pose) -> int:
    """Index of the node pose (x, y, yaw rows) nearest to `pose`: 4 units per metre plus
    one per 15 deg of heading (one FORWARD or one turn each)."""
    from o4a_nav.types import wrap_angle

    dyaw = np.abs(wrap_angle(poses[:, 2] - pose.yaw))
    cost = CODE_UNITS_PER_M * np.hypot(poses[:, 0] - pose.x, poses[:, 1] - pose.y) + dyaw / np.radians(15)
    return int(np.argmin(cost))


class TruthAttractor(_Wrapper):
    def __init__(self, model, robot, world, kind: str = "truth", rot_cost: float = 1.0):
        super().__init__(model)
        self.robot, self.world = robot, world
        self.goal = None
        self.kind, self.rot_cost = kind, rot_cost
        self.snap_poses = None

    def _ahead(self, pose) -> float:
        from o4a_nav.types import Action

        ahead, moved = self.robot.motion_result(Action.FORWARD, pose)
        d = self.world.geodesic((ahead.x, ahead.y), self.goal)
        if not moved or not math.isfinite(d):
            return math.inf
        return CODE_UNITS_PER_M * d + 1.0

    def _lattice(self, pose) -> float:
        """min over the 24 headings k of rot_cost x |turns to k| + 1 + 4 x geodesic from one
        FORWARD along k: a heading-aware cost-to-go in action units (what d_G measures)."""
        from o4a_nav.types import ROTATE_STEP_RAD, Pose2D

        best = math.inf
        for k in range(-11, 13):
            c = self._ahead(Pose2D(pose.x, pose.y, pose.yaw + k * ROTATE_STEP_RAD))
            best = min(best, self.rot_cost * abs(k) + c)
        if not math.isfinite(best):
            best = CODE_UNITS_PER_M * self.world.geodesic((pose.x, pose.y), self.goal) + 12 * self.rot_cost
        return best

    def geodesic(self, w, xg, world):
        import torch

        from o4a_nav.types import FORWARD_STEP_M, Action, Pose2D

        out = []
        for act in self._acts:
            pose, _ = self.robot.motion_result(Action(int(act)))
            if self.snap_poses is not None:     # truth-snap: the lattice cost at the nearest graph node's pose
                n = nearest_node(self.snap_poses, pose)
                x, y, yaw = (float(v) for v in self.snap_poses[n])
                out.append(self._lattice(Pose2D(x, y, yaw)))
                continue
            if self.kind == "truth-pos":
                out.append(CODE_UNITS_PER_M * self.world.geodesic((pose.x, pose.y), self.goal))
                continue
            if self.kind == "truth-lattice":
                out.append(self._lattice(pose))
                continue
            ahead, moved = self.robot.motion_result(Action.FORWARD, pose)
            d = self.world.geodesic((ahead.x, ahead.y), self.goal)
            if not moved or not math.isfinite(d):
                d = self.world.geodesic((pose.x, pose.y), self.goal) + FORWARD_STEP_M
            out.append(CODE_UNITS_PER_M * d)
        return torch.tensor(out, dtype=torch.float32)


def build_graph_variant(model, bags: list[str], variant: str, cache_dir: Path, log=print):
    """A TrainingGraph for one world built from `bags` with the model's h and f-dagger
    (cached in `cache_dir`; `variant` as for --graph-variant), with the bags' true poses
    in its `poses`."""
    from o4a_nav.bench.graph_baseline import TrainingGraph
    from o4a_nav.learning import graph as G
    from o4a_nav.learning import report as R
    from o4a_nav.learning.dataset import load_worlds
    from o4a_nav.learning.training import embed_frames

    key = variant.replace("=", "").replace(",", "_")
    path = cache_dir / f"graph_{'+'.join(Path(b).name for b in bags)}_{key}.npz"
    if not path.is_file():
        (w,) = load_worlds(bags)
        codes = embed_frames(model, w)
        opts = dict(t.partition("=")[::2] for t in variant.split(","))
        offset = float(opts["offset"]) if "offset" in opts else float(np.log(63))
        g = G.build_graph(model.inverse, codes, w.actions, w.next_ok, 256, nc_offset=offset)
        keep = _kept_edges(g, w, opts)
        _reweight(g, opts)
        if "laser" in opts:      # the pipeline's laser rule (train.graph_closures=laser) on h's codes
            g = _laser_graph(model, codes, w, int(opts["laser"] or 20))
            keep = np.ones(len(g["src"]), bool)
        if "ideal" in opts:      # every pair one action apart by the true poses, found or not
            g = _ideal_graph(g, codes, w.poses)
            keep = np.ones(len(g["src"]), bool)
        lc = R.loop_closure_metrics(g, w.poses, w.traj)
        log(f"graph {path.name}: {int(g['chain'].sum())} chain + {int((~g['chain'] & keep).sum())} loop edges "
            f"(built: {int((~g['chain']).sum())}, precision {lc['precision']:.3f})")
        path.parent.mkdir(parents=True, exist_ok=True)
        np.savez(path, codes=codes.numpy().astype(np.float32), src=g["src"][keep], dst=g["dst"][keep],
                 weight=g["weight"][keep], poses=w.poses)
    graph = TrainingGraph.load(path)
    with np.load(path) as z:
        graph.poses = z["poses"]
    return graph


def _kept_edges(g: dict, w, opts: dict) -> np.ndarray:
    """The edges a variant keeps: chain (none of the loop closures), gt (the loop closures
    the true poses confirm), exact (those whose true displacement is their action), cap."""
    from o4a_nav.learning import report as R
    from o4a_nav.types import wrap_angle

    keep = np.ones(len(g["src"]), bool)
    if "chain" in opts:
        keep = g["chain"].copy()
    elif "gt" in opts:
        s, d = g["src"], g["dst"]
        ok = (np.hypot(*(w.poses[s, :2] - w.poses[d, :2]).T) <= R.LC_MAX_DIST_M) & \
             (R._yaw_diff(w.poses[s, 2], w.poses[d, 2]) <= R.LC_MAX_YAW_RAD)
        keep = g["chain"] | ok
    elif "exact" in opts:    # only loop closures whose true displacement is the one action they claim
        s, d, a = g["src"], g["dst"], g["action"]
        dist = np.hypot(*(w.poses[d, :2] - w.poses[s, :2]).T)
        dyaw = np.degrees(wrap_angle(w.poses[d, 2] - w.poses[s, 2]))
        want = np.select([a == 1, a == 2, a == 3], [0.25, 0.0, 0.0], 0.0)
        turn = np.select([a == 2, a == 3], [15.0, -15.0], 0.0)
        ok = (np.abs(dist - want) < 0.1) & (np.abs(dyaw - turn) < 7.5)
        keep = g["chain"] | ok
    if "cap" in opts:        # loop closures whose d_h is at least the cap are dropped
        keep &= g["chain"] | (g["weight"] < float(opts["cap"]))
    return keep


def _reweight(g: dict, opts: dict) -> None:
    if "classw" in opts:     # one unit per motion edge, 0.05 per "same place" edge
        g["weight"] = np.where(g["action"] == 0, 0.05, 1.0).astype(np.float32)
    if "loopw" in opts:      # loop closures cost this factor more than a recorded transition
        g["weight"] = np.where(g["chain"], g["weight"], g["weight"] * float(opts["loopw"])).astype(np.float32)


def _laser_graph(model, codes, w, knn: int) -> dict:
    from o4a_nav.learning import closures as C
    from o4a_nav.learning import graph as G
    from o4a_nav.learning.config import make_configs
    from o4a_nav.learning.pipeline import closure_rule

    _, tcfg = make_configs("compact", ["train.graph_closures=laser"])
    _, mount, _ = closure_rule(w, tcfg)
    lc = C.laser_closures(codes, w.laser.ranges, w.laser.geometry, mount, C.ClosureParams(knn=knn), traj=w.traj)
    return G.build_graph(model.inverse, codes, w.actions, w.next_ok, 256, loops=(lc["src"], lc["dst"], lc["action"]))


def _ideal_graph(g: dict, codes, P: np.ndarray) -> dict:
    """The chain edges plus every pair of frames one action apart by the true poses P."""
    from scipy.spatial import cKDTree

    from o4a_nav.learning import graph as G
    from o4a_nav.types import wrap_angle

    pr = cKDTree(P[:, :2]).query_pairs(0.36, output_type="ndarray")
    pr = np.concatenate([pr, pr[:, ::-1]])
    s, d = pr[:, 0], pr[:, 1]
    dx, dy = P[d, 0] - P[s, 0], P[d, 1] - P[s, 1]
    ahead = dx * np.cos(P[s, 2]) + dy * np.sin(P[s, 2])
    side = -dx * np.sin(P[s, 2]) + dy * np.cos(P[s, 2])
    dyaw = np.degrees(wrap_angle(P[d, 2] - P[s, 2]))
    here = np.hypot(dx, dy) < 0.1
    act = np.full(len(s), -1)
    act[here & (np.abs(dyaw) < 7.5)] = 0
    act[here & (np.abs(dyaw - 15) < 7.5)] = 2
    act[here & (np.abs(dyaw + 15) < 7.5)] = 3
    act[(np.hypot(ahead - 0.25, side) < 0.1) & (np.abs(dyaw) < 7.5)] = 1
    m = act >= 0
    s, d = s[m].astype(np.int32), d[m].astype(np.int32)
    cw = G.edge_weights(codes, s, d)
    return {"src": np.concatenate([g["src"][g["chain"]], s]), "dst": np.concatenate([g["dst"][g["chain"]], d]),
            "weight": np.concatenate([g["weight"][g["chain"]], cw]),
            "chain": np.concatenate([g["chain"][g["chain"]], np.zeros(len(s), bool)]),
            "action": np.concatenate([g["action"][g["chain"]], act[m].astype(np.int8)])}


@dataclass
class DiagnoseConfig:
    """What `o4a diagnose` runs (its flags, one field each)."""

    model: str = "models/o4a_default"
    worlds: list = field(default_factory=lambda: ["two_rooms", "four_rooms", "apartment"])
    difficulties: list = field(default_factory=lambda: ["easy", "medium", "hard", "very_hard"])
    episodes: int = 4                  # per world and difficulty
    seed: int = 1
    mode: str = "graph"
    rot_cost: float = 1.0              # truth-lattice: cost of one rotation (one FORWARD = 1)
    knn: int = 8                       # graph-knn: neighbours
    graph_variant: str = "shipped"
    bags: str = "data/bags"            # folder of <world>_s0 bags (built graph variants)
    cache_dir: str = "runs/diag"       # where built graph variants are cached
    graph_bags: list | None = None     # bags to build the graph from (one world)
    nav_params: dict = field(default_factory=dict)
    max_steps: int = 500


def _training_poses(model_dir, wname: str) -> np.ndarray:
    """The true poses of the frames of the model's graph of `wname`: its training bags (the
    report's), read in the order stage 2 read them."""
    import json

    from o4a_nav.learning.dataset import load_worlds

    try:
        bags = json.loads((Path(model_dir) / "report.json").read_text())["worlds"][wname]["bags"]
    except (OSError, ValueError, KeyError) as exc:
        raise UserError(f"graph-pose on the model's graph needs its training bags of {wname!r} (report.json): "
                        f"{exc}") from exc
    missing = [b for b in bags if not Path(b).exists()]
    if missing:
        raise UserError(f"graph-pose needs the training bags of {wname!r}, missing: {', '.join(missing)}")
    (w,) = load_worlds(bags)
    if w.poses is None:
        raise UserError(f"graph-pose needs true poses; the bags of {wname!r} have none")
    return w.poses


def _attractor(cfg: DiagnoseConfig, raw, robot, world, wname: str, log, graph_poses: dict | None = None):
    """The model the policy navigates with: p+ itself, or a wrapper whose geodesic is the mode's."""
    if cfg.mode == "pplus":
        return raw
    bags = cfg.graph_bags or [f"{cfg.bags}/{wname}_s0"]
    if cfg.mode.startswith("truth"):
        model = TruthAttractor(raw, robot, world, cfg.mode, cfg.rot_cost)
        if cfg.mode == "truth-snap":
            model.snap_poses = build_graph_variant(raw._model, bags, "built", Path(cfg.cache_dir), log).poses
        return model
    if cfg.graph_variant == "shipped":
        from o4a_nav.bench.graph_baseline import load_training_graph

        graph = load_training_graph(cfg.model, wname, log=log)
        if cfg.mode == "graph-pose":
            graph.poses = (graph_poses or {}).get(wname)
            if graph.poses is None:
                graph.poses = _training_poses(cfg.model, wname)
            if len(graph.poses) != graph.n_nodes:
                raise UserError(f"{wname}: the graph has {graph.n_nodes} nodes, its bags {len(graph.poses)} frames")
    else:
        graph = build_graph_variant(raw._model, bags, cfg.graph_variant, Path(cfg.cache_dir), log)
    if cfg.mode == "graph-pose":
        return GraphPoseAttractor(raw, graph, robot)
    return GraphAttractor(raw, graph, knn=cfg.knn if cfg.mode == "graph-knn" else 0)


def diagnose(cfg: DiagnoseConfig, log=print, sim_worlds: dict | None = None, graph_poses: dict | None = None) -> dict:
    """Run the benchmark's episodes with the mode's attractor: {"episodes": [...], "summary": {...}}.
    sim_worlds: {name: World} for worlds that are not built in (a world file's text in the
    bags); graph_poses: {name: (N, 3) true poses of the model graph's frames} (graph-pose on
    the model's graph; else read from its training bags)."""
    import torch

    from o4a_nav.bench.cache import EmbedCache, ViewCache
    from o4a_nav.bench.episodes import sample_episodes
    from o4a_nav.bench.policies import O4APolicy
    from o4a_nav.bench.runner import render_goal, run_episode
    from o4a_nav.learning.model_io import load_model
    from o4a_nav.nav.collision import CollisionChecker
    from o4a_nav.sim import SimRobot, load_world

    if cfg.mode not in MODES:
        raise UserError(f"unknown mode {cfg.mode!r}; choose one of {', '.join(MODES)}")
    torch.set_num_threads(1)
    raw = EmbedCache(load_model(cfg.model))
    records, t0 = [], time.time()
    for wname in cfg.worlds:
        world = (sim_worlds or {}).get(wname) or load_world(wname)
        robot = SimRobot(world, seed=cfg.seed)
        views, checker = ViewCache(robot), CollisionChecker()
        model = _attractor(cfg, raw, robot, world, wname, log, graph_poses)
        policy = O4APolicy("o4a", model, wname, max_steps=cfg.max_steps, **cfg.nav_params)
        for ep in sample_episodes(world, wname, cfg.episodes, cfg.seed, tuple(cfg.difficulties)).episodes:
            goal = render_goal(robot, ep)
            if cfg.mode.startswith("truth"):
                model.goal = (ep.goal.x, ep.goal.y)
            if cfg.mode == "graph-pose":
                model.goal = ep.goal
            res = run_episode(world, robot, checker, policy, ep, goal, cfg.seed, cfg.max_steps,
                              record_trajectory=False, views=views)
            records.append({"world": wname, "difficulty": ep.difficulty, "index": ep.index, "success": res.success,
                            "stopped": res.stopped, "final_m": res.final_distance_m, "forwards": res.forwards,
                            "rotations": res.rotations, "spl": getattr(res, "spl", None)})
            log(f"{wname} {ep.difficulty} {ep.index}: {'OK' if res.success else 'FAIL'} {res.steps} steps "
                f"({res.forwards} F, {res.rotations} R), {res.final_distance_m:.2f} m, {time.time() - t0:.0f} s")
    forwards = sum(r["forwards"] for r in records)
    summary = {"mode": cfg.mode, "episodes": len(records), "succeeded": sum(r["success"] for r in records),
               "rotations_per_forward": sum(r["rotations"] for r in records) / max(forwards, 1)}
    return {"episodes": records, "summary": summary}


def graph_pose_outcome(model_dir, world_name: str, world, poses, episodes: int, seed: int = 1, log=None) -> dict:
    """The training report's graph check: the benchmark's episodes of one world (`episodes`
    per difficulty, `seed`) navigated by the rule with d_G of the model's own graph at
    perfect localisation (`o4a diagnose --mode graph-pose`): what the graph alone is worth,
    before p+ and localisation from images. {"episodes", "succeeded", "rotations_per_forward",
    "seed", "per_difficulty": {difficulty: [succeeded, episodes]}}."""
    cfg = DiagnoseConfig(model=str(model_dir), worlds=[world_name], episodes=episodes, seed=seed, mode="graph-pose")
    result = diagnose(cfg, log=log or (lambda *a, **k: None), sim_worlds={world_name: world},
                      graph_poses={world_name: poses})
    per: dict = {}
    for e in result["episodes"]:
        n = per.setdefault(e["difficulty"], [0, 0])
        n[0] += int(e["success"])
        n[1] += 1
    s = result["summary"]
    return {"episodes": s["episodes"], "succeeded": s["succeeded"], "seed": seed,
            "rotations_per_forward": s["rotations_per_forward"], "per_difficulty": per}
