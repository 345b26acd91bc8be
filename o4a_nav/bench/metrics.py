"""Per-episode outcome and aggregation into the paper's metrics.

Definitions (paper, Habitat conventions):
- success: the policy called STOP with the geodesic distance to the goal < 1 m;
- soft success: the robot was within 1 m (geodesic) of the goal at some step;
- SPL: success * shortest / max(shortest, path length travelled);
- dtg: geodesic distance to the goal when the episode ended (STOP or step limit);
- cft: share of episodes without a collision (a motion the simulator rejected);
- forwards / rotations: executed motions per episode; rotations per forward = their ratio
  of the sums over episodes;
- decision latency: wall time of one policy decision (median and p95 over all steps).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

SUCCESS_RADIUS_M = 1.0


@dataclass
class EpisodeResult:
    policy: str
    world: str
    difficulty: str
    index: int
    geodesic_m: float  # shortest path start -> goal
    stopped: bool = False  # the policy called STOP
    success: bool = False
    soft_success: bool = False
    final_distance_m: float = math.nan  # geodesic, at the end
    path_length_m: float = 0.0
    steps: int = 0  # decisions taken (STOP included)
    forwards: int = 0  # executed FORWARD motions
    rotations: int = 0  # executed rotations
    collisions: int = 0  # motions the simulator rejected
    cached_steps: int = 0  # decisions whose embedding was an exact cache hit (no latency)
    latencies_s: list[float] = field(default_factory=list)  # decisions that embedded
    actions: list[int] = field(default_factory=list)  # every decision in order (Action values, STOP included)
    trajectory: list[tuple[float, float, float]] = field(default_factory=list)  # x, y, yaw

    @property
    def spl(self) -> float:
        if not self.success:
            return 0.0
        return self.geodesic_m / max(self.geodesic_m, self.path_length_m)

    @property
    def collision_free(self) -> bool:
        return self.collisions == 0

    def summary(self) -> dict:
        """JSON-friendly per-episode record (no trajectory, no per-step latencies)."""
        lat = np.asarray(self.latencies_s, dtype=float)
        return {
            "policy": self.policy,
            "world": self.world,
            "difficulty": self.difficulty,
            "index": self.index,
            "geodesic_m": round(self.geodesic_m, 4),
            "stopped": self.stopped,
            "success": self.success,
            "soft_success": self.soft_success,
            "spl": round(self.spl, 4),
            "dtg": round(self.final_distance_m, 4) if math.isfinite(self.final_distance_m) else None,
            "path_length_m": round(self.path_length_m, 4),
            "steps": self.steps,
            "forwards": self.forwards,
            "rotations": self.rotations,
            "collisions": self.collisions,
            "cached_steps": self.cached_steps,
            "latency_median_ms": round(float(np.median(lat)) * 1e3, 3) if lat.size else None,
        }


def _finite_mean(values) -> float | None:
    arr = np.asarray([v for v in values if v is not None and math.isfinite(v)], dtype=float)
    return float(arr.mean()) if arr.size else None


def aggregate(results: list[EpisodeResult]) -> dict:
    """Metrics over a group of episodes (normally one policy, world and difficulty)."""
    n = len(results)
    if n == 0:
        return {"episodes": 0}
    lat = np.concatenate([np.asarray(r.latencies_s, dtype=float) for r in results]) if n else np.zeros(0)
    forwards = sum(r.forwards for r in results)
    rotations = sum(r.rotations for r in results)
    return {
        "episodes": n,
        "sr": sum(r.success for r in results) / n,
        "soft_sr": sum(r.soft_success for r in results) / n,
        "spl": float(np.mean([r.spl for r in results])),
        "dtg": _finite_mean(r.final_distance_m for r in results),
        "cft": sum(r.collision_free for r in results) / n,
        "stop_rate": sum(r.stopped for r in results) / n,
        "forwards_per_episode": forwards / n,
        "rotations_per_episode": rotations / n,
        "rotations_per_forward": (rotations / forwards) if forwards else None,
        "steps_per_episode": sum(r.steps for r in results) / n,
        "path_length_m": float(np.mean([r.path_length_m for r in results])),
        "geodesic_m": float(np.mean([r.geodesic_m for r in results])),
        "latency_median_ms": float(np.median(lat)) * 1e3 if lat.size else None,
        "latency_p95_ms": float(np.percentile(lat, 95)) * 1e3 if lat.size else None,
    }


def group_records(results: list[EpisodeResult], order_difficulties=None) -> list[dict]:
    """One record per (policy, world, difficulty), plus per (policy, 'all', difficulty)
    pooled over worlds. Keys: policy, world, difficulty + the aggregate metrics."""
    groups: dict[tuple[str, str, str], list[EpisodeResult]] = {}
    for r in results:
        groups.setdefault((r.policy, r.world, r.difficulty), []).append(r)
        groups.setdefault((r.policy, "all", r.difficulty), []).append(r)
    policies = list(dict.fromkeys(r.policy for r in results))
    worlds = list(dict.fromkeys(r.world for r in results)) + ["all"]
    diffs = list(order_difficulties or dict.fromkeys(r.difficulty for r in results))
    records = []
    for p in policies:
        for w in worlds:
            for d in diffs:
                group = groups.get((p, w, d))
                if group:
                    records.append({"policy": p, "world": w, "difficulty": d, **aggregate(group)})
    return records
