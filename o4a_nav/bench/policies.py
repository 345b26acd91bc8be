"""Policies compared by the benchmark, all behind one small interface.

``reset(ctx)`` is called once per episode with the goal images (and, only for the
policies that are allowed ground truth, a :class:`GroundTruth`); ``act(front, rear, free)``
returns one :class:`Action` from the current front/rear images and the collision-free
action set (the same inputs the ROS navigator gets). Policies that learn never see the
pose: only ``random`` (oracle STOP, as in the paper) and ``oracle`` (the upper bound) get
a GroundTruth.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from o4a_nav.types import FORWARD_STEP_M, ROTATE_STEP_RAD, Action, wrap_angle

from .metrics import SUCCESS_RADIUS_M

MOTIONS = (Action.FORWARD, Action.ROTATE_LEFT, Action.ROTATE_RIGHT)


class GroundTruth:
    """Privileged view of the episode for the oracle policies and the metrics:
    the robot's true pose and geodesic distances on the world's ground-truth grid."""

    def __init__(self, world, robot, goal):
        self.world = world
        self.robot = robot
        self.goal = goal
        self._cache: dict[tuple[int, int], float] = {}

    def distance(self, x: float, y: float) -> float:
        """Geodesic distance from (x, y) to the goal position (cached at 1 mm)."""
        key = (round(x * 1000), round(y * 1000))
        d = self._cache.get(key)
        if d is None:
            d = float(self.world.geodesic((x, y), (self.goal.x, self.goal.y)))
            if math.isnan(d):
                d = math.inf
            self._cache[key] = d
        return d

    def distance_to_goal(self) -> float:
        p = self.robot.pose
        return self.distance(p.x, p.y)


@dataclass
class EpisodeContext:
    goal_front: np.ndarray
    goal_rear: np.ndarray
    seed: np.random.SeedSequence
    truth: GroundTruth | None = None  # only for policies with uses_ground_truth


class Policy:
    name = "policy"
    uses_ground_truth = False
    uses_images = True
    embed_cache = None  # an EmbedCache when the policy's model is wrapped in one

    def reset(self, ctx: EpisodeContext) -> None:  # pragma: no cover - interface
        raise NotImplementedError

    def act(self, front, rear, free: set) -> Action:  # pragma: no cover - interface
        raise NotImplementedError

    def close(self) -> None:
        pass


# --------------------------------------------------------------------------- O4A
O4A_VARIANTS = {
    "o4a": {},
    "o4a-no-repulsor": {"use_repulsor": False},
    "o4a-no-attractor": {"use_attractor": False},
    "o4a-anti-oscillation": {"anti_oscillation": True},
    "o4a-lookahead": {"lookahead_rotations": 6},
    "o4a-heading": {"lookahead_rotations": 12, "rotation_cost": 1.0},
    "o4a-scan": {"stuck_scan": 12},
}


class O4APolicy(Policy):
    """The navigator core (o4a_nav.nav.navigator.O4ANavigator), unchanged; the variants
    only switch NavigatorParams flags."""

    def __init__(self, name: str, model, world_name: str, **param_overrides):
        from o4a_nav.nav.navigator import NavigatorParams, O4ANavigator

        self.name = name
        self.embed_cache = model if hasattr(model, "last_hit") else None
        self.params = NavigatorParams(**{**O4A_VARIANTS.get(name, {}), **param_overrides})
        self.nav = O4ANavigator(model, world_name, self.params)
        self.last_decision = None

    def reset(self, ctx: EpisodeContext) -> None:
        if self.embed_cache is not None:
            self.embed_cache.clear()  # per episode and policy: latencies stay those of real embeddings
        self.nav.set_goal(ctx.goal_front, ctx.goal_rear)

    def act(self, front, rear, free) -> Action:
        self.last_decision = self.nav.step(front, rear, free)
        return Action(self.last_decision.action)


# ------------------------------------------------------------------------ random
class RandomPolicy(Policy):
    """Uniformly random collision-free motions; STOP when the true geodesic distance to
    the goal is below the success radius (the paper's 'Random (oracle STOP)')."""

    name = "random"
    uses_ground_truth = True
    uses_images = False

    def __init__(self, stop_radius_m: float = SUCCESS_RADIUS_M):
        self.stop_radius_m = stop_radius_m
        self.rng = np.random.default_rng(0)
        self.truth: GroundTruth | None = None

    def reset(self, ctx: EpisodeContext) -> None:
        self.rng = np.random.default_rng(ctx.seed)
        self.truth = ctx.truth

    def act(self, front, rear, free) -> Action:
        if self.truth.distance_to_goal() < self.stop_radius_m:
            return Action.STOP
        options = [a for a in MOTIONS if a in free] or [Action.ROTATE_LEFT]
        return options[int(self.rng.integers(len(options)))]


# ------------------------------------------------------------------------ oracle
class OraclePolicy(Policy):
    """Ground-truth shortest path, the upper bound.

    Headings reachable by rotations are yaw + k * 15 deg. For each, the geodesic distance
    (world grid) from the point one FORWARD step ahead to the goal is evaluated; the robot
    turns towards the best heading (shortest turn) and drives when it faces it and FORWARD
    is collision-free. A heading whose FORWARD is refused (collision checker or simulator)
    is skipped until the robot has moved. STOP once the true geodesic distance is below
    ``stop_radius_m``.
    """

    name = "oracle"
    uses_ground_truth = True
    uses_images = False

    def __init__(self, stop_radius_m: float = 0.9 * SUCCESS_RADIUS_M, tie_m: float = 0.02):
        self.stop_radius_m = stop_radius_m
        self.tie_m = tie_m
        self.truth: GroundTruth | None = None
        self._blocked: list[float] = []  # absolute yaws whose FORWARD is blocked here
        self._blocked_at: tuple[int, int] | None = None
        self.n_headings = int(round(2 * math.pi / ROTATE_STEP_RAD))

    def reset(self, ctx: EpisodeContext) -> None:
        self.truth = ctx.truth
        self._blocked, self._blocked_at = [], None

    def _is_blocked(self, yaw: float) -> bool:
        return any(abs(wrap_angle(yaw - b)) < ROTATE_STEP_RAD / 2 for b in self._blocked)

    def _update_position(self, pose) -> None:
        where = (round(pose.x * 1000), round(pose.y * 1000))
        if where != self._blocked_at:
            self._blocked, self._blocked_at = [], where

    def act(self, front, rear, free) -> Action:
        pose = self.truth.robot.pose
        if self.truth.distance(pose.x, pose.y) < self.stop_radius_m:
            return Action.STOP
        self._update_position(pose)
        if Action.FORWARD not in free and not self._is_blocked(pose.yaw):
            self._blocked.append(pose.yaw)
        half = self.n_headings // 2
        costs = []
        for k in range(-half + 1, half + 1):
            yaw = pose.yaw + k * ROTATE_STEP_RAD
            if self._is_blocked(yaw):
                continue
            c = self.truth.distance(pose.x + FORWARD_STEP_M * math.cos(yaw), pose.y + FORWARD_STEP_M * math.sin(yaw))
            if math.isfinite(c):
                costs.append((c, k))
        if not costs:
            return Action.ROTATE_LEFT
        best = min(c for c, _ in costs)
        # Among near-ties prefer the smallest turn (no dithering on grid noise), then left.
        k = min((abs(k), -k) for c, k in costs if c <= best + self.tie_m)
        k = -k[1]
        if k == 0:
            return Action.FORWARD
        return Action.ROTATE_LEFT if k > 0 else Action.ROTATE_RIGHT

    def observe_result(self, action: Action, moved: bool) -> None:
        """The runner reports each executed action; a refused FORWARD blocks that heading."""
        if action == Action.FORWARD and not moved:
            pose = self.truth.robot.pose
            self._update_position(pose)
            self._blocked.append(pose.yaw)
