"""Exploration episodes in the simulator (ROS-free): the loop behind `o4a collect`, the
coverage measurement and the benchmark script. Yields one Frame per recorded step.

Per frame i (stamp (i + 1) * dt, so that no stamp is zero): the observation (front, rear, scan, ground-truth pose) and
the action executed from it. A FORWARD the simulator rejects is not recorded: the
policy is told (`blocked()`) and chooses again from the same observation. The last frame
of each trajectory has action STOP; the robot then respawns at a random free pose.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator

import numpy as np

from o4a_nav.sim.explore import ExplorationPolicy, ExplorerParams
from o4a_nav.sim.robot import SimRobot
from o4a_nav.types import Action, Pose2D, ScanData


@dataclass
class Frame:
    index: int
    trajectory: int
    t: float
    front: np.ndarray | None
    rear: np.ndarray | None
    scan: ScanData
    pose: Pose2D
    action: Action


def default_checker():
    """The CollisionChecker the navigator uses, with the simulated robot's geometry
    (laser at the base origin, disc of radius 0.2 m)."""
    from o4a_nav.nav.collision import CollisionChecker

    return CollisionChecker()


def explore(robot: SimRobot, steps: int, seed: int = 0, params: ExplorerParams = ExplorerParams(),
            dt: float = 0.1, checker=None, render: bool = True) -> Iterator[Frame]:
    """Run the exploration policy for `steps` frames. With render=False the images are
    None (for coverage statistics, ~20x faster)."""
    checker = checker or default_checker()
    policy = ExplorationPolicy(seed, params)
    traj = 0
    for i in range(int(steps)):
        t = (i + 1) * dt
        robot.time = t
        if render:
            front, rear = robot.render()
        else:
            front = rear = None
        scan = robot.scan(t)
        pose = robot.pose
        if i == steps - 1 or policy.step_in_trajectory >= params.trajectory_length - 1:
            action = Action.STOP
            policy.step_in_trajectory += 1
        else:
            free = set(checker.free_actions(scan).free)
            action = policy.act(free)
            for _ in range(8):
                if action == Action.STOP or robot.step(action):
                    break
                policy.blocked()
                free.discard(Action.FORWARD)
                action = policy.act(free)
            else:  # pragma: no cover - rotations of a disc always succeed
                action = Action.STOP
        yield Frame(i, traj, t, front, rear, scan, pose, action)
        if action == Action.STOP:
            robot.respawn()
            policy.reset()
            traj += 1


def coverage(world, poses_xy: np.ndarray) -> float:
    """Share of the world's reachable free cells within the robot's footprint (radius
    0.2 m) of some visited position."""
    from scipy import ndimage

    visited = np.zeros(world.shape, bool)
    r, c = world.cell_of(poses_xy[:, 0], poses_xy[:, 1])
    visited[r, c] = True
    k = int(np.ceil(world.robot_radius / world.resolution))
    yy, xx = np.mgrid[-k:k + 1, -k:k + 1]
    disk = (xx ** 2 + yy ** 2) * world.resolution ** 2 <= world.robot_radius ** 2
    covered = ndimage.binary_dilation(visited, structure=disk) & world.main_component
    return float(covered.sum()) / float(world.main_component.sum())
