"""A synthetic ring world for tests and benchmarks (no simulator needed). ROS-free.

States: K cells on a circular corridor x 4 headings (0 = along the ring counter-clockwise,
1 = facing outwards, 2 = clockwise, 3 = inwards). FORWARD moves one cell along the ring
when facing along it (blocked when facing a wall), ROTATE_LEFT/RIGHT turn by 90 deg.
Each state has its own random low-frequency texture; the rear camera sees the state with
the opposite heading. Exploration is a random walk; trajectories end with STOP.
"""
from __future__ import annotations

import numpy as np

from o4a_nav.types import Action


class RingWorld:
    def __init__(self, cells: int = 16, seed: int = 0, radius: float | None = None):
        self.cells = cells
        self.radius = radius if radius is not None else cells * 0.25 / (2 * np.pi)
        rng = np.random.default_rng(seed)
        low = rng.integers(0, 256, (cells, 4, 6, 6, 3)).astype(np.uint8)
        self.textures = low.repeat(16, axis=2).repeat(16, axis=3)   # (K, 4, 96, 96, 3)

    def step(self, c: int, h: int, a: int) -> tuple[int, int, bool]:
        if a == Action.FORWARD:
            if h == 0:
                return (c + 1) % self.cells, h, True
            if h == 2:
                return (c - 1) % self.cells, h, True
            return c, h, False
        if a == Action.ROTATE_LEFT:
            return c, (h + 1) % 4, True
        if a == Action.ROTATE_RIGHT:
            return c, (h - 1) % 4, True
        return c, h, True

    def observe(self, c: int, h: int, rng=None, noise: int = 8):
        front = self.textures[c, h].astype(np.int16)
        rear = self.textures[c, (h + 2) % 4].astype(np.int16)
        if rng is not None and noise:
            front = front + rng.integers(-noise, noise + 1, front.shape)
            rear = rear + rng.integers(-noise, noise + 1, rear.shape)
        return np.clip(front, 0, 255).astype(np.uint8), np.clip(rear, 0, 255).astype(np.uint8)

    def pose(self, c: int, h: int) -> tuple[float, float, float]:
        ang = 2 * np.pi * c / self.cells
        yaw = ang + np.pi / 2 + h * np.pi / 2
        return float(self.radius * np.cos(ang)), float(self.radius * np.sin(ang)), float(np.arctan2(np.sin(yaw), np.cos(yaw)))

    def explore(self, steps: int, traj_len: int = 50, seed: int = 0, p_forward: float = 0.6):
        """Random walk -> dict(front, rear, actions, traj, poses, states)."""
        rng = np.random.default_rng(seed)
        out = {k: [] for k in ("front", "rear", "actions", "traj", "poses", "states")}
        c, h, traj, k = int(rng.integers(self.cells)), int(rng.integers(4)), 0, 0
        for t in range(steps):
            f, r = self.observe(c, h, rng)
            last = k == traj_len - 1 or t == steps - 1
            if last:
                a = Action.STOP
            else:
                while True:
                    a = Action.FORWARD if rng.random() < p_forward else (
                        Action.ROTATE_LEFT if rng.random() < 0.5 else Action.ROTATE_RIGHT)
                    nc, nh, ok = self.step(c, h, a)
                    if ok:
                        break
            for key, v in (("front", f), ("rear", r), ("actions", int(a)), ("traj", traj),
                           ("poses", self.pose(c, h)), ("states", (c, h))):
                out[key].append(v)
            if last:
                traj, k = traj + 1, 0
                c, h = int(rng.integers(self.cells)), int(rng.integers(4))
            else:
                c, h, k = nc, nh, k + 1
        return {k: np.asarray(v) for k, v in out.items()}


def write_bag(path, data: dict, world_name: str | None = "ring", dt: float = 0.1, storage: str = "mcap",
              with_pose: bool = True, drop_topics: tuple = ()):
    """Write exploration data as an `o4a collect`-style rosbag2 folder."""
    from o4a_nav import bagio, topics as T
    from o4a_nav.types import Pose2D

    with bagio.BagWriter(path, storage=storage, latched_topics=[T.WORLD_NAME]) as w:
        if world_name is not None and T.WORLD_NAME not in drop_topics:
            w.write(T.WORLD_NAME, "std_msgs/msg/String", 0.0, bagio.string_msg(world_name))
        for t in range(len(data["actions"])):
            stamp = (t + 1) * dt
            if T.FRONT_IMAGE not in drop_topics:
                w.write(T.FRONT_IMAGE, "sensor_msgs/msg/Image", stamp, bagio.image_msg(data["front"][t], stamp, T.FRONT_CAMERA_FRAME))
            if T.REAR_IMAGE not in drop_topics:
                w.write(T.REAR_IMAGE, "sensor_msgs/msg/Image", stamp, bagio.image_msg(data["rear"][t], stamp, T.REAR_CAMERA_FRAME))
            if with_pose:
                x, y, yaw = data["poses"][t]
                w.write(T.GROUND_TRUTH_POSE, "geometry_msgs/msg/PoseStamped", stamp, bagio.pose_msg(Pose2D(x, y, yaw), stamp))
            if T.ACTION not in drop_topics:
                w.write(T.ACTION, "o4a_msgs/msg/DiscreteAction", stamp, bagio.action_msg(int(data["actions"][t]), stamp, t))
    return path
