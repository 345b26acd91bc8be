"""The simulated robot: a differential-drive disc (radius 0.2 m) with a front and a rear
RGB camera (96x96, 90 deg horizontal FOV, 0.4 m above the floor) and a 2D laser scanner,
in a World. Motion and collisions are exact against the World's wall segments; the
cameras are rendered by MiniWorld; the laser is ray-cast against the same segments.

Ground truth (`pose`) is for evaluation and recording only.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from o4a_nav.sim.world import World, load_world
from o4a_nav.types import FORWARD_STEP_M, ROTATE_STEP_RAD, Action, Pose2D, ScanData, wrap_angle


@dataclass(frozen=True)
class LaserParams:
    """A planar laser at the robot centre (frame `laser` == base_link), REP 117 values."""

    angle_min: float = math.radians(-135.0)
    angle_max: float = math.radians(135.0)
    angle_increment: float = math.radians(0.5)
    range_min: float = 0.05
    range_max: float = 10.0
    noise_std: float = 0.0   # Gaussian range noise [m], drawn from the robot's seeded rng

    @property
    def n_rays(self) -> int:
        return int(round((self.angle_max - self.angle_min) / self.angle_increment)) + 1


@dataclass(frozen=True)
class MotionNoise:
    """Executed-motion error of the discrete actions (a real base is not on a lattice):
    a FORWARD travels FORWARD_STEP_M * (1 + N(0, forward_frac)), a rotation turns
    ROTATE_STEP_RAD * (1 + N(0, forward_frac)), and every motion adds N(0, heading_deg)
    to the heading. Drawn from the robot's own generator (seeded with the robot's seed),
    so a run is reproducible. Zero = exact motions (the default)."""

    forward_frac: float = 0.0
    heading_deg: float = 0.0

    @property
    def active(self) -> bool:
        return self.forward_frac > 0 or self.heading_deg > 0

    @staticmethod
    def parse(text: str) -> "MotionNoise":
        """'FRAC,DEG' (e.g. '0.05,2') -> MotionNoise; ValueError on anything else."""
        try:
            frac, deg = (float(v) for v in text.split(","))
        except ValueError:
            raise ValueError(f"motion noise must be 'FRACTION,DEGREES' (e.g. 0.05,2), not {text!r}") from None
        if not (0 <= frac < 0.5 and 0 <= deg < 45):
            raise ValueError(f"motion noise {text!r}: fraction in [0, 0.5), degrees in [0, 45)")
        return MotionNoise(frac, deg)


def noise_options(motion_noise: str, laser_noise: float) -> tuple[MotionNoise, LaserParams]:
    """The --motion-noise ('FRAC,DEG' or '') and --laser-noise (sigma [m]) options of `o4a
    collect` and `o4a bench` as the robot's settings; UserError naming the bad option."""
    from o4a_nav.errors import UserError

    try:
        motion = MotionNoise.parse(motion_noise) if motion_noise else MotionNoise()
    except ValueError as exc:
        raise UserError(f"--motion-noise: {exc}") from None
    if not 0.0 <= laser_noise < 1.0:
        raise UserError(f"--laser-noise must be in [0, 1) m, not {laser_noise}")
    return motion, LaserParams(noise_std=laser_noise)


@dataclass(frozen=True)
class CameraParams:
    width: int = 96
    height: int = 96
    hfov_deg: float = 90.0
    mount_height: float = 0.4


def cast_rays(segments: np.ndarray, x: float, y: float, angles: np.ndarray) -> np.ndarray:
    """Distance from (x, y) along each absolute direction in `angles` to the first
    segment hit, +inf where nothing is hit. Vectorised over rays x segments."""
    if len(segments) == 0:
        return np.full(len(angles), np.inf)
    d = np.stack([np.cos(angles), np.sin(angles)], axis=1)          # (R, 2)
    a = segments[:, 0, :] - np.array([x, y])                         # (S, 2)
    e = segments[:, 1, :] - segments[:, 0, :]                        # (S, 2)
    den = d[:, None, 0] * e[None, :, 1] - d[:, None, 1] * e[None, :, 0]        # cross(d, e)
    num_t = a[None, :, 0] * e[None, :, 1] - a[None, :, 1] * e[None, :, 0]      # cross(a, e)
    num_u = a[None, :, 0] * d[:, None, 1] - a[None, :, 1] * d[:, None, 0]      # cross(a, d)
    with np.errstate(divide="ignore", invalid="ignore"):
        t = num_t / den
        u = num_u / den
    ok = (np.abs(den) > 1e-12) & (t > 1e-9) & (u >= 0.0) & (u <= 1.0)
    return np.min(np.where(ok, t, np.inf), axis=1)


class SimRobot:
    """The simulated robot in a world.

    robot = SimRobot(load_world("two_rooms"), seed=0)
    front, rear, scan = robot.observe()
    moved = robot.step(Action.FORWARD)     # False (and a counted collision) if blocked
    moved = robot.move(v, w, dt)           # continuous differential drive (sim node)
    """

    def __init__(self, world: World | str, seed: int = 0, *, render: bool = True,
                 laser: LaserParams = LaserParams(), camera: CameraParams = CameraParams(),
                 pose: Pose2D | None = None, motion_noise: MotionNoise = MotionNoise()):
        self.world = load_world(world) if isinstance(world, str) else world
        self.seed = int(seed)
        self.rng = np.random.default_rng(self.seed)
        self.laser = laser
        self.camera = camera
        self.motion_noise = motion_noise
        self._motion_rng = np.random.default_rng([self.seed, 25])   # its own draws: the spawns stay the same
        self._laser_angles = laser.angle_min + laser.angle_increment * np.arange(laser.n_rays)
        self._renderer = None
        if render:
            from o4a_nav.sim.render import Renderer

            self._renderer = Renderer(self.world, camera.width, camera.height, camera.mount_height, camera.hfov_deg)
        self.collisions = 0
        self.time = 0.0
        self._pose = pose if pose is not None else self.world.sample_free_pose(self.rng)
        if pose is not None:
            self.set_pose(pose)

    # ---- state ------------------------------------------------------------------------
    @property
    def pose(self) -> Pose2D:
        """Ground-truth pose in the map frame (evaluation and recording only)."""
        return Pose2D(self._pose.x, self._pose.y, self._pose.yaw)

    def set_pose(self, pose: Pose2D) -> None:
        """Teleport. Raises ValueError if the robot would overlap a wall or box."""
        if self.world.collides(pose.x, pose.y):
            raise ValueError(f"pose ({pose.x:.2f}, {pose.y:.2f}) is in collision in world '{self.world.name}'")
        self._pose = Pose2D(float(pose.x), float(pose.y), wrap_angle(float(pose.yaw)))

    def reseed(self, seed) -> None:
        """Restart the generators of the laser noise and the motion noise from `seed` (an int
        or a numpy SeedSequence, which is not consumed; the
        benchmark does this per episode, so that an episode's noise does not depend on
        which episodes ran before it in the same process)."""
        ss = seed if isinstance(seed, np.random.SeedSequence) else np.random.SeedSequence(seed)
        self.rng = np.random.default_rng(np.random.SeedSequence(ss.entropy, spawn_key=(*ss.spawn_key, 1)))
        self._motion_rng = np.random.default_rng(np.random.SeedSequence(ss.entropy, spawn_key=(*ss.spawn_key, 25)))

    def respawn(self) -> Pose2D:
        """Teleport to a random free pose drawn from the robot's seeded rng."""
        self._pose = self.world.sample_free_pose(self.rng)
        return self.pose

    # ---- sensors ----------------------------------------------------------------------
    def render(self) -> tuple[np.ndarray, np.ndarray]:
        if self._renderer is None:
            raise RuntimeError("this SimRobot was created with render=False")
        return self._renderer.front_rear(self._pose)

    def scan(self, stamp: float | None = None) -> ScanData:
        p = self._pose
        lp = self.laser
        r = cast_rays(self.world.segments, p.x, p.y, p.yaw + self._laser_angles)
        if lp.noise_std > 0:
            r = r + self.rng.normal(0.0, lp.noise_std, size=r.shape)
        r = r.astype(np.float32)
        r[r > lp.range_max] = np.inf
        r[r < lp.range_min] = -np.inf
        return ScanData(ranges=r, angle_min=lp.angle_min, angle_increment=lp.angle_increment,
                        range_min=lp.range_min, range_max=lp.range_max,
                        stamp=self.time if stamp is None else float(stamp))

    def observe(self, stamp: float | None = None) -> tuple[np.ndarray, np.ndarray, ScanData]:
        """(front, rear, scan): two (96, 96, 3) uint8 RGB images and a ScanData."""
        front, rear = self.render()
        return front, rear, self.scan(stamp)

    # ---- motion ------------------------------------------------------------------------
    def step(self, action: Action, dt: float = 0.0) -> bool:
        """Execute one discrete action (FORWARD 0.25 m, ROTATE 15 deg; exactly, unless the
        robot has motion_noise). Returns
        True if the robot moved; a blocked FORWARD leaves the pose unchanged, counts a
        collision and returns False. STOP returns False and counts nothing."""
        action = Action(action)
        self.time += dt
        if action == Action.STOP:
            return False
        pose, moved = self.motion_result(action)
        if moved and self.motion_noise.active:
            pose, moved = self._noisy(action)
        if not moved:
            self.collisions += 1
            return False
        self._pose = pose
        return True

    def _noisy(self, action: Action) -> tuple[Pose2D, bool]:
        """Where `action` really takes the robot under motion_noise (blocked if that
        FORWARD's path touches a wall)."""
        n, p, rng = self.motion_noise, self._pose, self._motion_rng
        scale = 1.0 + rng.normal(0.0, n.forward_frac) if n.forward_frac > 0 else 1.0
        dyaw = rng.normal(0.0, math.radians(n.heading_deg)) if n.heading_deg > 0 else 0.0
        if action == Action.FORWARD:
            d = FORWARD_STEP_M * scale
            nx, ny = p.x + d * math.cos(p.yaw + dyaw / 2), p.y + d * math.sin(p.yaw + dyaw / 2)
            if self.world.collides(p.x, p.y, nx, ny):
                return p, False
            return Pose2D(nx, ny, wrap_angle(p.yaw + dyaw)), True
        sign = 1.0 if action == Action.ROTATE_LEFT else -1.0
        return Pose2D(p.x, p.y, wrap_angle(p.yaw + sign * ROTATE_STEP_RAD * scale + dyaw)), True

    def motion_result(self, action: Action, pose: Pose2D | None = None) -> tuple[Pose2D, bool]:
        """Where one discrete action leads from ``pose`` (default: the current pose),
        computed exactly as :meth:`step` executes it, without moving: (pose after, moved).
        A blocked FORWARD and STOP give (the same pose, False)."""
        action = Action(action)
        p = self._pose if pose is None else pose
        if action == Action.STOP:
            return p, False
        if action == Action.FORWARD:
            nx = p.x + FORWARD_STEP_M * math.cos(p.yaw)
            ny = p.y + FORWARD_STEP_M * math.sin(p.yaw)
            if self.world.collides(p.x, p.y, nx, ny):
                return p, False
            return Pose2D(nx, ny, p.yaw), True
        sign = 1.0 if action == Action.ROTATE_LEFT else -1.0
        return Pose2D(p.x, p.y, wrap_angle(p.yaw + sign * ROTATE_STEP_RAD)), True

    def snap(self, pose: Pose2D) -> None:
        """Put the robot exactly at ``pose`` (no wrapping, no collision check): a pose
        from :meth:`motion_result` or one this robot had, bit for bit."""
        self._pose = Pose2D(pose.x, pose.y, pose.yaw)

    def move(self, v: float, w: float, dt: float) -> bool:
        """Integrate differential-drive velocities (v m/s forward, w rad/s CCW) for dt
        seconds along the exact arc. If the translation would hit something the robot
        only turns (a disc can always turn in place), a collision is counted and False is
        returned."""
        self.time += dt
        p = self._pose
        yaw1 = p.yaw + w * dt
        if abs(v * dt) < 1e-12:
            self._pose = Pose2D(p.x, p.y, wrap_angle(yaw1))
            return True
        if abs(w) > 1e-9:
            nx = p.x + v / w * (math.sin(yaw1) - math.sin(p.yaw))
            ny = p.y - v / w * (math.cos(yaw1) - math.cos(p.yaw))
        else:
            nx, ny = p.x + v * dt * math.cos(p.yaw), p.y + v * dt * math.sin(p.yaw)
        # the arc lies within the chord's neighbourhood: check the chord in pieces
        n = max(1, int(math.ceil(abs(v * dt) / 0.05)))
        px, py = p.x, p.y
        for k in range(1, n + 1):
            yk = p.yaw + w * dt * k / n
            if abs(w) > 1e-9:
                qx = p.x + v / w * (math.sin(yk) - math.sin(p.yaw))
                qy = p.y - v / w * (math.cos(yk) - math.cos(p.yaw))
            else:
                qx, qy = p.x + v * dt * k / n * math.cos(p.yaw), p.y + v * dt * k / n * math.sin(p.yaw)
            if self.world.collides(px, py, qx, qy):
                self.collisions += 1
                self._pose = Pose2D(p.x, p.y, wrap_angle(yaw1))
                return False
            px, py = qx, qy
        self._pose = Pose2D(nx, ny, wrap_angle(yaw1))
        return True

    def close(self):
        if self._renderer is not None:
            self._renderer.close()
            self._renderer = None
