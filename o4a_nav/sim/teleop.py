"""Continuous (teleop-like) driving in the simulator, recorded like a real robot's bag.
ROS-free.

A person with a joystick drives straight, turns in place, curves, and pauses; the camera
runs at its own rate and the odometry at the control rate, with no DiscreteActions. This
module drives the SimRobot that way (`SimRobot.move`, exact differential drive) and writes
the bag a robot would record: front / rear images (raw or JPEG CompressedImage), scan,
nav_msgs/Odometry on `odom` (odom frame = spawn pose; optional scale noise, like wheel
odometry), geometry_msgs/Twist on `cmd_vel`, plus the ground-truth pose and world name for
evaluation. `label_truth` says, for two camera frames, which primitive the commanded
motion between them was, so the odometry labels of `o4a train` can be scored.

    drive = TeleopDriver(robot, TeleopParams(), seed=0)
    for tick in drive.run(seconds=60): ...       # Tick per control step (camera frames marked)
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Iterator

import numpy as np

from o4a_nav.sim.robot import SimRobot
from o4a_nav.types import Action, Pose2D, wrap_angle

STRAIGHT, ROTATE, ARC, PAUSE = "straight", "rotate", "arc", "pause"


@dataclass
class TeleopParams:
    speed: float = 0.3            # m/s when driving straight
    turn_rate: float = 0.6        # rad/s when turning in place
    arc_speed: float = 0.2        # m/s on arcs
    arc_turn_rate: float = 0.4    # rad/s on arcs
    control_hz: float = 30.0      # physics, odometry and cmd_vel rate
    camera_hz: float = 15.0       # image rate
    weights: tuple = (0.45, 0.3, 0.15, 0.1)   # straight, rotate, arc, pause
    straight_s: tuple = (1.0, 5.0)
    rotate_s: tuple = (0.5, 2.5)
    arc_s: tuple = (1.0, 3.0)
    pause_s: tuple = (0.3, 1.5)
    odom_noise: float = 0.0       # relative std of the odometry's per-step motion (wheel slip)

    def validate(self) -> "TeleopParams":
        if not (self.control_hz > 0 and 0 < self.camera_hz <= self.control_hz):
            raise ValueError("need control_hz > 0 and 0 < camera_hz <= control_hz")
        return self


@dataclass
class Tick:
    t: float
    pose: Pose2D          # ground truth (map)
    odom: Pose2D          # odometry (odom frame)
    v: float              # commanded
    w: float
    kind: str             # STRAIGHT / ROTATE / ARC / PAUSE of the command being executed
    camera: bool          # a camera frame is taken at this tick
    moved: bool           # the motion since the previous tick was executed (not blocked)


class TeleopDriver:
    """Random joystick-like commands with obstacle avoidance on the laser scan (the
    navigator's CollisionChecker: FORWARD blocked -> the segment ends, turn instead)."""

    def __init__(self, robot: SimRobot, params: TeleopParams = TeleopParams(), seed: int = 0, checker=None):
        from o4a_nav.sim.collector import default_checker

        self.robot = robot
        self.p = params.validate()
        self.rng = np.random.default_rng(seed)
        self.checker = checker or default_checker()
        self.origin = robot.pose
        self._odom = Pose2D(0.0, 0.0, 0.0)

    def _command(self, blocked: bool) -> tuple[str, float, float, float]:
        p, rng = self.p, self.rng
        if blocked:
            kinds = [ROTATE]
            probs = [1.0]
        else:
            kinds = [STRAIGHT, ROTATE, ARC, PAUSE]
            probs = np.asarray(p.weights, float) / np.sum(p.weights)
        kind = kinds[int(rng.choice(len(kinds), p=probs))]
        sign = 1.0 if rng.random() < 0.5 else -1.0
        if kind == STRAIGHT:
            return kind, p.speed, 0.0, rng.uniform(*p.straight_s)
        if kind == ROTATE:
            return kind, 0.0, sign * p.turn_rate, rng.uniform(*p.rotate_s)
        if kind == ARC:
            return kind, p.arc_speed, sign * p.arc_turn_rate, rng.uniform(*p.arc_s)
        return kind, 0.0, 0.0, rng.uniform(*p.pause_s)

    def _integrate_odom(self, before: Pose2D, after: Pose2D) -> None:
        """Odometry integrates the robot-frame motion, optionally with scale noise."""
        dx, dy = after.x - before.x, after.y - before.y
        c, s = math.cos(before.yaw), math.sin(before.yaw)
        ahead, left = c * dx + s * dy, -s * dx + c * dy
        turn = wrap_angle(after.yaw - before.yaw)
        if self.p.odom_noise > 0:
            ahead *= 1.0 + self.rng.normal(0.0, self.p.odom_noise)
            turn *= 1.0 + self.rng.normal(0.0, self.p.odom_noise)
        o = self._odom
        co, so = math.cos(o.yaw), math.sin(o.yaw)
        self._odom = Pose2D(o.x + co * ahead - so * left, o.y + so * ahead + co * left, o.yaw + turn)

    def run(self, seconds: float) -> Iterator[Tick]:
        p = self.p
        dt = 1.0 / p.control_hz
        cam_every = max(1, int(round(p.control_hz / p.camera_hz)))
        n = int(round(seconds * p.control_hz))
        kind, v, w, left = PAUSE, 0.0, 0.0, 0.0
        blocked = False
        for k in range(n):
            t = (k + 1) * dt
            if left <= 0:
                kind, v, w, left = self._command(blocked)
                blocked = False
            if v > 0:
                free = self.checker.free_actions(self.robot.scan(t)).free
                if Action.FORWARD not in free:   # obstacle ahead: stop this command, turn next
                    kind, v, w, left, blocked = PAUSE, 0.0, 0.0, 0.0, True
            before = self.robot.pose
            moved = self.robot.move(v, w, dt)
            self.robot.time = t
            self._integrate_odom(before, self.robot.pose)
            left -= dt
            yield Tick(t, self.robot.pose, Pose2D(self._odom.x, self._odom.y, self._odom.yaw), v, w, kind,
                       k % cam_every == 0, moved)


def label_truth(ticks: list[Tick], i: int, j: int) -> Action | str:
    """The primitive commanded between ticks i and j (indices into the tick list): FORWARD
    when every tick that moved drove straight, ROTATE_LEFT / RIGHT when every one turned in
    place one way, else 'mixed' (an arc, or a straight part and a turn)."""
    kinds = set()
    for tk in ticks[i + 1:j + 1]:
        if tk.kind == PAUSE or (tk.v == 0 and tk.w == 0):
            continue
        if tk.kind == STRAIGHT:
            kinds.add(Action.FORWARD)
        elif tk.kind == ROTATE:
            kinds.add(Action.ROTATE_LEFT if tk.w > 0 else Action.ROTATE_RIGHT)
        else:
            kinds.add("mixed")
    return kinds.pop() if len(kinds) == 1 else "mixed"


def write_teleop_bag(out, world, seconds: float, seed: int = 0, params: TeleopParams = TeleopParams(),
                     compressed: bool = False, storage: str = "mcap", progress=None) -> dict:
    """Drive `seconds` in `world` and write a robot-style bag. Returns a summary with the
    ticks (for label_truth) and the camera tick indices."""
    from o4a_nav import bagio
    from o4a_nav import topics as T
    from o4a_nav.sim.world import load_world

    world = load_world(world) if isinstance(world, str) else world
    robot = SimRobot(world, seed=seed)
    drive = TeleopDriver(robot, params, seed=seed)
    img_type = "sensor_msgs/msg/CompressedImage" if compressed else "sensor_msgs/msg/Image"
    suffix = "/compressed" if compressed else ""
    front_topic, rear_topic = "/" + T.FRONT_IMAGE + suffix, "/" + T.REAR_IMAGE + suffix
    build = bagio.compressed_image_msg if compressed else bagio.image_msg
    ticks: list[Tick] = []
    cameras: list[int] = []
    try:
        with bagio.BagWriter(out, storage=storage, latched_topics=["/" + T.WORLD_NAME, "/" + T.WORLD_DEFINITION]) as wr:
            wr.write("/" + T.WORLD_NAME, "std_msgs/msg/String", 0.0, bagio.string_msg(world.name))
            wr.write("/" + T.WORLD_DEFINITION, "std_msgs/msg/String", 0.0, bagio.string_msg(world.text))
            for tick in drive.run(seconds):
                ticks.append(tick)
                t = tick.t
                wr.write("/" + T.ODOM, "nav_msgs/msg/Odometry", t, bagio.odom_msg(tick.odom, t))
                wr.write("/" + T.CMD_VEL, "geometry_msgs/msg/Twist", t, bagio.twist_msg(tick.v, tick.w))
                if tick.camera:
                    cameras.append(len(ticks) - 1)
                    front, rear = robot.render()
                    wr.write(front_topic, img_type, t, build(front, t, T.FRONT_CAMERA_FRAME))
                    wr.write(rear_topic, img_type, t, build(rear, t, T.REAR_CAMERA_FRAME))
                    wr.write("/" + T.SCAN, "sensor_msgs/msg/LaserScan", t,
                             bagio.scan_msg(robot.scan(t), T.LASER_FRAME))
                    wr.write("/" + T.GROUND_TRUTH_POSE, "geometry_msgs/msg/PoseStamped", t,
                             bagio.pose_msg(tick.pose, t, T.MAP_FRAME))
                    if progress is not None:
                        progress.update(1)
    finally:
        robot.close()
    return {"ticks": ticks, "cameras": cameras, "collisions": robot.collisions, "world": world.name}


def true_motion_is(action: Action, ahead: float, left: float, turn: float) -> bool:
    """Is the true displacement between two frames the primitive `action`, within the
    tolerances a discrete robot's own motions show: FORWARD 0.25 +- 0.05 m ahead, under
    0.05 m sideways and 5 deg of turn; ROTATE 15 +- 3 deg the right way, under 0.05 m moved."""
    if action == Action.FORWARD:
        return abs(ahead - 0.25) <= 0.05 and abs(left) < 0.05 and abs(math.degrees(turn)) < 5.0
    sign = 1.0 if action == Action.ROTATE_LEFT else -1.0
    return abs(sign * math.degrees(turn) - 15.0) <= 3.0 and math.hypot(ahead, left) < 0.05


def score_labels(ticks: list[Tick], times, actions, traj) -> dict:
    """Score odometry labels against the true displacement between the two frames
    (`true_motion_is`) and, stricter, against the commanded motion (every tick between the
    frames drove that primitive: a FORWARD that began with a 3 deg correction is 'mixed').

    times: the stamps of the frames `o4a train` kept (read_bag's BagFrames.times); actions / traj:
    their labels and chain ids (a transition is k -> k+1 in the same chain, action != STOP)."""
    from o4a_nav.learning.odometry import relative

    tick_t = np.asarray([tk.t for tk in ticks])
    idx = [int(np.argmin(np.abs(tick_t - t))) for t in times]
    per = {a.name: {"n": 0, "commanded": 0, "true_motion": 0} for a in Action.motions()}
    err_fwd, err_rot, err_yaw_fwd = [], [], []
    for k in range(len(idx) - 1):
        a = int(actions[k])
        if a == Action.STOP or traj[k] != traj[k + 1]:
            continue
        i, j = idx[k], idx[k + 1]
        truth = label_truth(ticks, i, j)
        name = Action(a).name
        per[name]["n"] += 1
        per[name]["commanded"] += int(truth == Action(a))
        p0, p1 = ticks[i].pose, ticks[j].pose
        ahead, left, turn = relative((p0.x, p0.y, p0.yaw), (p1.x, p1.y, p1.yaw))
        per[name]["true_motion"] += int(true_motion_is(Action(a), ahead, left, turn))
        if a == Action.FORWARD:
            err_fwd.append(math.hypot(ahead - 0.25, left))
            err_yaw_fwd.append(abs(math.degrees(turn)))
        else:
            err_rot.append(abs(abs(math.degrees(turn)) - 15.0))
    n = sum(v["n"] for v in per.values())
    commanded = sum(v["commanded"] for v in per.values())
    true_motion = sum(v["true_motion"] for v in per.values())
    straight = sum(abs(tk.v) / 30.0 for tk in ticks if tk.kind == STRAIGHT and tk.moved)
    return {"transitions": n, "accuracy_true_motion": true_motion / n if n else float("nan"),
            "accuracy_commanded": commanded / n if n else float("nan"), "per_action": per,
            "forward_position_error_m": _stats(err_fwd), "forward_yaw_deg": _stats(err_yaw_fwd),
            "rotate_angle_error_deg": _stats(err_rot),
            "straight_driving_m": straight, "forward_labelled_m": 0.25 * per["FORWARD"]["n"]}


def _stats(x) -> dict:
    if not x:
        return {"mean": None, "max": None}
    return {"mean": float(np.mean(x)), "p95": float(np.percentile(x, 95)), "max": float(np.max(x))}
