"""Episode sampling with the paper's protocol.

Start and goal poses are sampled per world with a seeded RNG and binned by the geodesic
start-goal distance: easy 1.5-3 m, medium 3-5 m, hard 5-10 m, very hard > 10 m. The goal
heading is random. A world too small for a bin gets no episodes in that bin and a note
saying so (never an exception).
"""
from __future__ import annotations

import math
import zlib
from dataclasses import asdict, dataclass, field

import numpy as np

from o4a_nav.types import Pose2D

# (name, lower bound inclusive, upper bound exclusive) of the geodesic start-goal distance.
DIFFICULTIES: tuple[tuple[str, float, float], ...] = (
    ("easy", 1.5, 3.0),
    ("medium", 3.0, 5.0),
    ("hard", 5.0, 10.0),
    ("very_hard", 10.0, math.inf),
)
DIFFICULTY_NAMES = tuple(d[0] for d in DIFFICULTIES)


def difficulty_of(distance_m: float) -> str | None:
    """The difficulty bin of a geodesic distance, or None (closer than 1.5 m, unreachable)."""
    if not math.isfinite(distance_m):
        return None
    for name, lo, hi in DIFFICULTIES:
        if lo <= distance_m < hi:
            return name
    return None


def world_seed(seed: int, world_name: str, *extra: int) -> np.random.SeedSequence:
    """A seed sequence that depends on the run seed, the world's name (stable across
    processes: crc32, not hash()) and optional integers (e.g. episode index)."""
    return np.random.SeedSequence([int(seed), zlib.crc32(world_name.encode()), *map(int, extra)])


@dataclass
class Episode:
    world: str
    index: int  # index within (world, difficulty)
    difficulty: str
    start: Pose2D
    goal: Pose2D
    geodesic_m: float  # ground-truth shortest path length start -> goal

    @property
    def key(self) -> str:
        return f"{self.world}/{self.difficulty}/{self.index:03d}"

    def to_dict(self) -> dict:
        d = asdict(self)
        d["start"] = [self.start.x, self.start.y, self.start.yaw]
        d["goal"] = [self.goal.x, self.goal.y, self.goal.yaw]
        return d


@dataclass
class EpisodeSet:
    world: str
    episodes: list[Episode] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # e.g. "world too small for very_hard"
    tries: int = 0

    def by_difficulty(self, name: str) -> list[Episode]:
        return [e for e in self.episodes if e.difficulty == name]


def geodesic_diameter(world, rng: np.random.Generator, sweeps: int = 3) -> float | None:
    """Estimate of the world's longest shortest path [m] by repeated double sweeps on
    the simulator's geodesic field (farthest point from a random start, then farthest
    from that, ...). A lower bound that is exact or close for room-and-door worlds;
    None when the world has no ``geodesic_field``."""
    field_fn = getattr(world, "geodesic_field", None)
    if field_fn is None or not hasattr(world, "cell_center"):
        return None
    p = world.sample_free_pose(rng)
    x, y = p.x, p.y
    best = 0.0
    for _ in range(sweeps):
        f = np.asarray(field_fn(x, y))
        f = np.where(np.isfinite(f), f, -1.0)
        i = int(np.argmax(f))
        if f.flat[i] <= best + 1e-6:
            break
        best = float(f.flat[i])
        row, col = np.unravel_index(i, f.shape)
        cx, cy = world.cell_center(row, col)
        x, y = float(cx), float(cy)
    return best


def _wanted(world, world_name: str, per_difficulty: int, seed: int, difficulties: tuple[str, ...]):
    """(episodes wanted per difficulty, the world's estimated geodesic diameter or None): no
    episodes for a bin that begins beyond the diameter."""
    wanted = {d: per_difficulty for d in difficulties}
    diameter = geodesic_diameter(world, np.random.default_rng(world_seed(seed, world_name, 1)))
    if diameter is not None:
        for name, lo, _ in DIFFICULTIES:
            if name in wanted and lo > diameter:
                wanted[name] = 0
    return wanted, diameter


def _needs(found: dict, wanted: dict, name: str) -> bool:
    """Does the bin still need episodes?"""
    return name in found and len(found[name]) < wanted[name]


class _GoalPool:
    """A pool of goal poses drawn once; per start, one Dijkstra field gives the distance to
    every pooled goal (vectorised), and a goal is drawn uniformly among those in a bin that
    still needs episodes."""

    def __init__(self, world, rng: np.random.Generator, size: int):
        self.world = world
        self.poses = [world.sample_free_pose(rng) for _ in range(size)]
        self.rows, self.cols = world.cell_of(np.array([g.x for g in self.poses]), np.array([g.y for g in self.poses]))

    def goals(self, start: Pose2D, rng: np.random.Generator, found: dict, wanted: dict):
        """([a pooled goal in a bin that needs episodes] or [], the longest finite geodesic
        from start to the pool, 0 when none)."""
        dists = np.asarray(self.world.geodesic_field(start.x, start.y))[self.rows, self.cols]
        finite = np.isfinite(dists)
        longest = float(dists[finite].max()) if finite.any() else 0.0
        ok = np.zeros(len(self.poses), dtype=bool)
        for name, lo, hi in DIFFICULTIES:
            if _needs(found, wanted, name):
                ok |= (dists >= lo) & (dists < hi)
        idx = np.flatnonzero(ok)
        return ([self.poses[int(idx[rng.integers(len(idx))])]] if len(idx) else []), longest


def _take_first(world, world_name: str, start: Pose2D, candidates, found: dict, wanted: dict) -> float:
    """The first candidate goal in a bin that needs episodes becomes one (the others are not
    drawn) -> the longest finite geodesic tried, 0 when none."""
    longest = 0.0
    for goal in candidates:
        dist = float(world.geodesic((goal.x, goal.y), (start.x, start.y)))
        if math.isfinite(dist):
            longest = max(longest, dist)
        name = difficulty_of(dist)
        if name is not None and _needs(found, wanted, name):
            found[name].append(Episode(world_name, len(found[name]), name, start, goal, dist))
            break
    return longest


def _short_bin_notes(world_name: str, difficulties, per_difficulty: int, found: dict, wanted: dict, diameter,
                     tries: int, longest: float) -> list[str]:
    """A note per bin that got fewer episodes than asked (the world too small, or not found
    within the tries)."""
    notes = []
    for name in difficulties:
        lo, hi = next((lo, hi) for n, lo, hi in DIFFICULTIES if n == name)
        span = f"{lo:g}-{hi:g} m" if math.isfinite(hi) else f"> {lo:g} m"
        if wanted[name] == 0 and per_difficulty > 0:
            notes.append(
                f"world '{world_name}': no {name} episodes (geodesic {span}): the world is too small "
                f"(its longest shortest path is about {diameter:.1f} m)")
        elif len(found[name]) < wanted[name]:
            notes.append(
                f"world '{world_name}': only {len(found[name])}/{wanted[name]} {name} episodes "
                f"(geodesic {span}) after {tries} start draws; longest geodesic seen {longest:.1f} m"
                + (" (world too small for this difficulty)" if longest < lo else "")
            )
    return notes


def sample_episodes(
    world,
    world_name: str,
    per_difficulty: int,
    seed: int,
    difficulties: tuple[str, ...] = DIFFICULTY_NAMES,
    max_tries: int | None = None,
    goals_per_start: int = 16,
    pool_size: int = 1000,
) -> EpisodeSet:
    """Sample ``per_difficulty`` start/goal pairs for each difficulty in ``world``.

    Rejection sampling, at most one episode per start: draw a start with
    ``world.sample_free_pose(rng)``; with the simulator's ``geodesic_field`` (one
    Dijkstra per start), draw the goal uniformly among a seeded pool of ``pool_size``
    free poses whose geodesic distance falls in a bin that still needs episodes; without
    it (test doubles), try ``goals_per_start`` fresh goals with ``world.geodesic``. Stops after
    ``max_tries`` starts (default 50 per wanted episode) and notes every bin that
    stayed short. Bins longer than the world's estimated geodesic diameter (see
    :func:`geodesic_diameter`) are skipped at once. Deterministic for (seed, world_name).
    """
    unknown = [d for d in difficulties if d not in DIFFICULTY_NAMES]
    if unknown:
        raise ValueError(f"unknown difficulty {unknown}; known: {list(DIFFICULTY_NAMES)}")
    rng = np.random.default_rng(world_seed(seed, world_name))
    wanted, diameter = _wanted(world, world_name, per_difficulty, seed, difficulties)
    found: dict[str, list[Episode]] = {d: [] for d in difficulties}
    if max_tries is None:
        max_tries = 50 * max(1, sum(wanted.values()))
    tries = 0
    longest = 0.0
    pool = None
    if hasattr(world, "geodesic_field") and hasattr(world, "cell_of"):
        pool = _GoalPool(world, rng, max(pool_size, 20 * sum(wanted.values())))
    while tries < max_tries and any(len(found[d]) < wanted[d] for d in difficulties):
        tries += 1
        start = world.sample_free_pose(rng)
        if pool is not None:
            candidates, far = pool.goals(start, rng, found, wanted)
            longest = max(longest, far)
        else:
            candidates = (world.sample_free_pose(rng) for _ in range(goals_per_start))
        longest = max(longest, _take_first(world, world_name, start, candidates, found, wanted))
    out = EpisodeSet(world_name, tries=tries)
    for name in difficulties:  # stable order: by difficulty, then index
        out.episodes.extend(found[name])
    out.notes = _short_bin_notes(world_name, difficulties, per_difficulty, found, wanted, diameter, tries, longest)
    return out
