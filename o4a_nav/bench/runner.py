"""The episode loop: a policy drives the simulated robot from the start pose until it
calls STOP or the step limit is reached. Everything runs in-process (no ROS transport):
the same simulator, collision checker and navigator core as the ROS stack, called
directly."""
from __future__ import annotations

import math
import time
from dataclasses import dataclass

from o4a_nav.types import Action

from .episodes import Episode, world_seed
from .metrics import SUCCESS_RADIUS_M, EpisodeResult
from .policies import EpisodeContext, GroundTruth, Policy

MAX_STEPS = 500


@dataclass
class GoalView:
    front: object
    rear: object


def render_goal(robot, episode: Episode) -> GoalView:
    """The goal observation: front and rear images at the goal pose (random heading,
    sampled with the episode)."""
    robot.set_pose(episode.goal)
    front, rear, _ = robot.observe()
    return GoalView(front, rear)


def run_episode(
    world,
    robot,
    checker,
    policy: Policy,
    episode: Episode,
    goal: GoalView,
    seed: int,
    max_steps: int = MAX_STEPS,
    record_trajectory: bool = True,
    views=None,
) -> EpisodeResult:
    """Run one episode; returns its outcome. ``seed`` makes stochastic policies
    deterministic (derived per world, difficulty and episode). ``views``: an optional
    :class:`~o4a_nav.bench.cache.ViewCache` of this robot (exact re-use of renders)."""
    robot.set_pose(episode.start)
    truth = GroundTruth(world, robot, episode.goal)
    diff_index = ("easy", "medium", "hard", "very_hard").index(episode.difficulty) if episode.difficulty in (
        "easy", "medium", "hard", "very_hard") else 9
    ctx = EpisodeContext(
        goal_front=goal.front,
        goal_rear=goal.rear,
        seed=world_seed(seed, episode.world, diff_index, episode.index),
        truth=truth if policy.uses_ground_truth else None,
    )
    policy.reset(ctx)
    robot.reseed(ctx.seed)   # the episode's own sensor and motion noise, whichever worker runs it
    res = EpisodeResult(policy.name, episode.world, episode.difficulty, episode.index, episode.geodesic_m)
    gx, gy = episode.goal.x, episode.goal.y
    pose = robot.pose
    if record_trajectory:
        res.trajectory.append((pose.x, pose.y, pose.yaw))
    observe_result = getattr(policy, "observe_result", None)
    embed_cache = getattr(policy, "embed_cache", None)
    for _ in range(max_steps):
        if policy.uses_images:
            front, rear = views.render() if views is not None else robot.render()
        else:
            front = rear = None  # random / oracle decide from ground truth and A_free only
        free = set(checker.free_actions(robot.scan()).free)
        t0 = time.perf_counter()
        action = Action(policy.act(front, rear, free))
        dt = time.perf_counter() - t0
        if embed_cache is not None and embed_cache.last_hit:
            res.cached_steps += 1  # an exact re-use of a code: not a real decision's latency
        else:
            res.latencies_s.append(dt)
        res.steps += 1
        res.actions.append(int(action))
        if action == Action.STOP:
            res.stopped = True
            break
        before = robot.pose
        moved = bool(robot.step(action))
        if observe_result is not None:
            observe_result(action, moved)
        if not moved:
            res.collisions += 1
            continue
        after = robot.pose
        if action == Action.FORWARD:
            res.forwards += 1
            res.path_length_m += math.hypot(after.x - before.x, after.y - before.y)
            # geodesic >= euclidean: only ask the grid when the robot may be within 1 m.
            if not res.soft_success and math.hypot(after.x - gx, after.y - gy) < SUCCESS_RADIUS_M:
                res.soft_success = truth.distance(after.x, after.y) < SUCCESS_RADIUS_M
        else:
            res.rotations += 1
        if record_trajectory:
            res.trajectory.append((after.x, after.y, after.yaw))
    pose = robot.pose
    res.final_distance_m = truth.distance(pose.x, pose.y)
    res.success = res.stopped and res.final_distance_m < SUCCESS_RADIUS_M
    if not res.soft_success:
        # the start itself may already be within 1 m (never for the paper's bins).
        res.soft_success = res.success or res.final_distance_m < SUCCESS_RADIUS_M
    return res
