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


def sample_episodes(
    world,
    world_name: str,
    per_difficulty: int,
    seed: int,
    difficulties: tuple[str, ...] = DIFFICULTY_NAMES,
    max_tries: int | None = None,
    geodesic=None,
    sample_pose=None,
) -> EpisodeSet:
    """Sample ``per_difficulty`` start/goal pairs for each difficulty in ``world``.

    Rejection sampling: draw a start and a goal with ``world.sample_free_pose(rng)``,
    measure ``world.geodesic(start, goal)``, keep the pair if its bin still needs
    episodes. Stops after ``max_tries`` draws (default 400 per wanted episode) and notes
    every bin that stayed short. Deterministic for (seed, world_name).
    ``geodesic``/``sample_pose`` override the world's methods (tests, caching).
    """
    unknown = [d for d in difficulties if d not in DIFFICULTY_NAMES]
    if unknown:
        raise ValueError(f"unknown difficulty {unknown}; known: {list(DIFFICULTY_NAMES)}")
    geodesic = geodesic or world.geodesic
    sample_pose = sample_pose or world.sample_free_pose
    rng = np.random.default_rng(world_seed(seed, world_name))
    wanted = {d: per_difficulty for d in difficulties}
    found: dict[str, list[Episode]] = {d: [] for d in difficulties}
    if max_tries is None:
        max_tries = 400 * max(1, per_difficulty * len(difficulties))
    tries = 0
    longest = 0.0
    while tries < max_tries and any(len(found[d]) < wanted[d] for d in difficulties):
        tries += 1
        start = sample_pose(rng)
        goal = sample_pose(rng)
        dist = float(geodesic((start.x, start.y), (goal.x, goal.y)))
        if math.isfinite(dist):
            longest = max(longest, dist)
        name = difficulty_of(dist)
        if name is None or name not in found or len(found[name]) >= wanted[name]:
            continue
        found[name].append(Episode(world_name, len(found[name]), name, start, goal, dist))
    out = EpisodeSet(world_name, tries=tries)
    for name in difficulties:  # stable order: by difficulty, then index
        out.episodes.extend(found[name])
        if len(found[name]) < wanted[name]:
            lo, hi = next((lo, hi) for n, lo, hi in DIFFICULTIES if n == name)
            span = f"{lo:g}-{hi:g} m" if math.isfinite(hi) else f"> {lo:g} m"
            out.notes.append(
                f"world '{world_name}': {len(found[name])}/{wanted[name]} {name} episodes "
                f"(geodesic {span}) after {tries} draws; longest geodesic seen {longest:.1f} m"
                + (" (world too small for this difficulty)" if longest < lo else "")
            )
    return out
