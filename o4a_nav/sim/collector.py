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

from o4a_nav import topics as _T
from o4a_nav.sim.explore import ExplorationPolicy, ExplorerParams
from o4a_nav.sim.robot import SimRobot
from o4a_nav.types import Action, Pose2D, ScanData

# Topic names in an exploration bag (fully qualified, as `ros2 bag record` writes them).
FRONT, REAR, SCAN, POSE, ACTION, WORLD = (_T.absolute(t) for t in (
    _T.FRONT_IMAGE, _T.REAR_IMAGE, _T.SCAN, _T.GROUND_TRUTH_POSE, _T.ACTION, _T.WORLD_NAME))
WORLD_DEFINITION = _T.absolute(_T.WORLD_DEFINITION)   # the world file's text: the report's ground truth


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


def write_exploration_bag(out, world, steps: int, seed: int = 0, params: ExplorerParams = ExplorerParams(),
                          dt: float = 0.1, storage: str = "mcap", compressed: bool = False, laser=None,
                          motion_noise=None, progress=None) -> dict:
    """`o4a collect`'s bag: `steps` frames of the exploration policy in `world` (a built-in
    name, a world file or a loaded World) written to the new bag folder `out` (images,
    scan, ground-truth pose, action, the world's name and text, the sensor mounts on
    /tf_static). ``laser``/``motion_noise``: SimRobot's noise options; ``progress``: a bar
    with update(n). Returns {world, trajectories, collisions, coverage, free_area, seconds,
    poses (N, 3) true x, y, yaw, trajectory (N,) ids}."""
    import time

    from o4a_nav import bagio
    from o4a_nav import topics as T
    from o4a_nav.frames import sim_sensor_mounts

    kw = {k: v for k, v in (("laser", laser), ("motion_noise", motion_noise)) if v is not None}
    robot = SimRobot(str(world) if hasattr(world, "__fspath__") else world, seed=seed, **kw)
    world = robot.world
    poses = np.zeros((steps, 3))
    traj_ids = np.zeros(steps, np.int64)
    n_traj = 0
    t0 = time.perf_counter()
    try:
        with bagio.BagWriter(out, storage=storage, latched_topics=[WORLD, WORLD_DEFINITION]) as w:
            w.write(WORLD, "std_msgs/msg/String", 0.0, bagio.string_msg(world.name))
            w.write(WORLD_DEFINITION, "std_msgs/msg/String", 0.0, bagio.string_msg(world.text))
            bagio.write_tf_static(w, sim_sensor_mounts(robot.camera.mount_height))
            for f in explore(robot, steps, seed=seed, params=params, dt=dt):
                for topic, img, frame in ((FRONT, f.front, T.FRONT_CAMERA_FRAME), (REAR, f.rear, T.REAR_CAMERA_FRAME)):
                    if compressed:
                        w.write(topic + "/compressed", "sensor_msgs/msg/CompressedImage", f.t,
                                bagio.compressed_image_msg(img, f.t, frame))
                    else:
                        w.write(topic, "sensor_msgs/msg/Image", f.t, bagio.image_msg(img, f.t, frame))
                w.write(SCAN, "sensor_msgs/msg/LaserScan", f.t, bagio.scan_msg(f.scan, T.LASER_FRAME))
                w.write(POSE, "geometry_msgs/msg/PoseStamped", f.t, bagio.pose_msg(f.pose, f.t, T.MAP_FRAME))
                w.write(ACTION, "o4a_msgs/msg/DiscreteAction", f.t, bagio.action_msg(int(f.action), f.t, f.index))
                poses[f.index] = (f.pose.x, f.pose.y, f.pose.yaw)
                traj_ids[f.index] = f.trajectory
                n_traj = f.trajectory + 1
                if progress is not None:
                    progress.update(1)
    finally:
        robot.close()
    return {"world": world.name, "trajectories": n_traj, "collisions": robot.collisions,
            "coverage": coverage(world, poses[:, :2]), "free_area": world.free_area,
            "seconds": time.perf_counter() - t0, "poses": poses, "trajectory": traj_ids}


def write_exploration_bag_once(bag, world, steps: int, seed: int, progress) -> dict | None:
    """write_exploration_bag into the folder `bag` unless it is there: written as
    BAG.partial and renamed when complete, so a killed run leaves no half bag under the
    name (a partial one is written again). ``progress``: a tqdm-like factory (total, unit,
    desc, leave). Returns write_exploration_bag's result, or None when the bag was there."""
    import shutil
    from pathlib import Path

    bag = Path(bag)
    if bag.is_dir():
        return None
    part = bag.with_name(bag.name + ".partial")
    shutil.rmtree(part, ignore_errors=True)
    part.parent.mkdir(parents=True, exist_ok=True)
    with progress(total=steps, unit="step", desc=f"collect {bag.name}", leave=False) as bar:
        res = write_exploration_bag(part, world, steps, seed=seed, progress=bar)
    part.rename(bag)
    return res


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
