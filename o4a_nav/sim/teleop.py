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

Two driving styles: "joystick" (the default: straight runs, turns in place, arcs, pauses of
random length) and "steps" (stop-and-go: each command is one primitive, 0.25 m straight or
15 deg in place, driven with velocities and followed by a pause, as a base controller that
executes discrete steps would drive). Faults of real recordings: odometry at its own rate
(`odom_hz`, e.g. 10 Hz) and camera stamps that are earlier than the moment the image shows
(`image_delay` + uniform `image_jitter`: a camera driver that stamps at trigger or
exposure start while the odometry stamps at the end of its cycle).

    drive = TeleopDriver(robot, TeleopParams(), seed=0)
    for tick in drive.run(seconds=60): ...       # Tick per control step (camera frames marked)
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Iterator

import numpy as np

from o4a_nav.frames import sim_sensor_mounts
from o4a_nav.sim.robot import SimRobot
from o4a_nav.types import FORWARD_STEP_M, ROTATE_STEP_RAD, Action, Pose2D, wrap_angle

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
    odom_hz: float = 0.0          # odometry rate (0: control_hz); control_hz must be a multiple of it
    odom_scale: float = 1.0       # fault: odometry reports this times the true motion (wrong wheel size)
    image_delay: float = 0.0      # fault: image header stamps are this many seconds early ...
    image_jitter: float = 0.0     # ... plus uniform(0, image_jitter) per frame
    style: str = "joystick"       # "joystick" or "steps" (stop-and-go primitives, see the module doc)
    step_pause_s: tuple = (0.3, 0.8)   # steps: the pause after each primitive
    step_weights: tuple = (0.5, 0.5)   # steps: FORWARD, ROTATE (left or right alike)

    def validate(self) -> "TeleopParams":
        if not (self.control_hz > 0 and 0 < self.camera_hz <= self.control_hz):
            raise ValueError("need control_hz > 0 and 0 < camera_hz <= control_hz")
        if self.odom_hz < 0 or self.odom_hz > self.control_hz or (
                self.odom_hz and abs(self.control_hz / self.odom_hz - round(self.control_hz / self.odom_hz)) > 1e-9):
            raise ValueError(f"odom_hz ({self.odom_hz}) must divide control_hz ({self.control_hz})")
        if self.style not in ("joystick", "steps"):
            raise ValueError(f"style must be 'joystick' or 'steps', not {self.style!r}")
        if self.image_delay < 0 or self.image_jitter < 0:
            raise ValueError("image_delay and image_jitter must be >= 0")
        return self

    @property
    def odom_every(self) -> int:
        """Odometry is published every this many control ticks."""
        return 1 if not self.odom_hz else int(round(self.control_hz / self.odom_hz))


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
    odom_out: bool = True  # an odometry message is published at this tick


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

    def _step_command(self, blocked: bool) -> tuple[str, float, float, float]:
        """steps: one primitive; `left` is the distance (m) or angle (rad) still to go."""
        p, rng = self.p, self.rng
        probs = np.asarray(p.step_weights, float) / np.sum(p.step_weights)
        forward = not blocked and rng.random() < probs[0]
        if forward:
            return STRAIGHT, p.speed, 0.0, FORWARD_STEP_M
        sign = 1.0 if rng.random() < 0.5 else -1.0
        return ROTATE, 0.0, sign * p.turn_rate, ROTATE_STEP_RAD

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
        ahead, left, turn = ahead * self.p.odom_scale, left * self.p.odom_scale, turn * self.p.odom_scale
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
        steps = p.style == "steps"
        for k in range(n):
            t = (k + 1) * dt
            if left <= 1e-12:
                if steps and kind != PAUSE:        # stop-and-go: a pause after every primitive
                    kind, v, w, left = PAUSE, 0.0, 0.0, self.rng.uniform(*p.step_pause_s)
                else:
                    kind, v, w, left = (self._step_command if steps else self._command)(blocked)
                    blocked = False
            if v > 0:
                free = self.checker.free_actions(self.robot.scan(t)).free
                if Action.FORWARD not in free:   # obstacle ahead: stop this command, turn next
                    kind, v, w, left, blocked = PAUSE, 0.0, 0.0, 0.0, True
            vt, wt = v, w
            if steps and kind != PAUSE:            # the last tick of a primitive ends it exactly
                rate = abs(v) if kind == STRAIGHT else abs(w)
                scale = min(1.0, left / (rate * dt))
                vt, wt = v * scale, w * scale
                left -= rate * dt * scale
            else:
                left -= dt
            before = self.robot.pose
            moved = self.robot.move(vt, wt, dt)
            self.robot.time = t
            self._integrate_odom(before, self.robot.pose)
            yield Tick(t, self.robot.pose, Pose2D(self._odom.x, self._odom.y, self._odom.yaw), vt, wt, kind,
                       k % cam_every == 0, moved, k % p.odom_every == 0)


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
    stamp_rng = np.random.default_rng([seed, 29])      # the stamp fault's own draws: same driving
    try:
        with bagio.BagWriter(out, storage=storage, latched_topics=["/" + T.WORLD_NAME, "/" + T.WORLD_DEFINITION]) as wr:
            wr.write("/" + T.WORLD_NAME, "std_msgs/msg/String", 0.0, bagio.string_msg(world.name))
            wr.write("/" + T.WORLD_DEFINITION, "std_msgs/msg/String", 0.0, bagio.string_msg(world.text))
            bagio.write_tf_static(wr, sim_sensor_mounts(robot.camera.mount_height))
            for tick in drive.run(seconds):
                ticks.append(tick)
                t = tick.t
                if tick.odom_out:
                    wr.write("/" + T.ODOM, "nav_msgs/msg/Odometry", t, bagio.odom_msg(tick.odom, t))
                wr.write("/" + T.CMD_VEL, "geometry_msgs/msg/Twist", t, bagio.twist_msg(tick.v, tick.w))
                if tick.camera:
                    cameras.append(len(ticks) - 1)
                    front, rear = robot.render()
                    t_img = t - params.image_delay - (stamp_rng.uniform(0.0, params.image_jitter)
                                                      if params.image_jitter > 0 else 0.0)
                    wr.write(front_topic, img_type, t, build(front, t_img, T.FRONT_CAMERA_FRAME))
                    wr.write(rear_topic, img_type, t, build(rear, t_img, T.REAR_CAMERA_FRAME))
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
    """Is the true displacement between two frames the primitive `action`
    (odometry.is_true_primitive: FORWARD 0.25 +- 0.05 m ahead, under 0.05 m sideways and 5
    deg of turn; ROTATE 15 +- 3 deg the right way, under 0.05 m moved)."""
    from o4a_nav.learning.odometry import is_true_primitive

    return is_true_primitive(action, ahead, left, turn)


def true_primitives(ticks: list[Tick], cameras: list[int]) -> list[tuple]:
    """steps style: the primitives that a perfect labeller could label, i.e. each complete
    primitive (a run of moving ticks of one kind that moved 0.25 m or 15 deg) with a camera
    frame taken at rest right before it and right after it. Returns (action, starts, ends)
    per primitive: the camera ticks that show its start pose and its end pose."""
    cam = np.zeros(len(ticks), bool)
    cam[list(cameras)] = True
    still = np.asarray([tk.v == 0 and tk.w == 0 for tk in ticks])
    dt = ticks[1].t - ticks[0].t if len(ticks) > 1 else 0.0
    k = 0
    while k < len(ticks):                   # a move under 2 cm and 2 deg (a FORWARD blocked at once) is rest
        if still[k]:
            k += 1
            continue
        start = k
        while k < len(ticks) and not still[k]:
            k += 1
        if sum(abs(tk.v) * dt for tk in ticks[start:k]) < 0.02 and sum(abs(tk.w) * dt for tk in ticks[start:k]) < \
                math.radians(2.0):
            still[start:k] = True
    out, k = [], 0
    while k < len(ticks):
        if still[k]:
            k += 1
            continue
        start, kind, amount, turn = k, ticks[k].kind, 0.0, 0.0
        while k < len(ticks) and not still[k] and ticks[k].kind == kind:
            amount += (abs(ticks[k].v) if kind == STRAIGHT else abs(ticks[k].w)) * dt
            turn += ticks[k].w * dt
            k += 1
        full = FORWARD_STEP_M if kind == STRAIGHT else ROTATE_STEP_RAD
        if kind not in (STRAIGHT, ROTATE) or abs(amount - full) > 1e-6 or start == 0:
            continue
        # a tick's pose is the one after its move: tick start-1 shows the pose before the
        # primitive (and so does the stretch at rest that ends there), tick k-1 the pose after it
        lo = start - 1
        while lo > 0 and still[lo] and still[lo - 1]:
            lo -= 1
        hi = k - 1
        while hi + 1 < len(ticks) and still[hi + 1]:
            hi += 1
        starts = [c for c in range(lo, start) if cam[c]]
        ends = [c for c in range(k - 1, hi + 1) if cam[c]]
        if starts and ends:
            action = Action.FORWARD if kind == STRAIGHT else (Action.ROTATE_LEFT if turn > 0 else Action.ROTATE_RIGHT)
            out.append((action, starts, ends))
    return out


def oracle_transitions(ticks: list[Tick], cameras: list[int], params=None) -> int:
    """The transitions the odometry labeller (learning/odometry.py) finds on the true poses
    at the true capture times: what it could label with perfect odometry and stamps."""
    from o4a_nav.learning.odometry import SegmentParams, segment

    poses = np.asarray([(ticks[i].pose.x, ticks[i].pose.y, ticks[i].pose.yaw) for i in cameras], float)
    if len(poses):
        poses[:, 2] = np.unwrap(poses[:, 2])
    _, actions, _, _ = segment(poses, np.ones(len(poses), bool), params or SegmentParams())
    return int((actions != Action.STOP).sum())


def score_labels(ticks: list[Tick], frame_ticks, actions, traj) -> dict:
    """Score odometry labels against the true displacement between the two frames
    (`true_motion_is`: a label is right when it is) and, stricter, against the commanded
    motion (every tick between the frames drove that primitive: a FORWARD that began with a
    3 deg correction is 'mixed', two FORWARD steps in a row are 'commanded' but not a true
    FORWARD).

    frame_ticks: the tick index of each kept frame's image (its capture time: not its
    stamp, which a stamp fault moves); actions / traj: their labels and chain ids (a
    transition is k -> k+1 in the same chain, action != STOP)."""
    from o4a_nav.learning.odometry import relative

    idx = [int(i) for i in frame_ticks]
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
    dt = ticks[1].t - ticks[0].t if len(ticks) > 1 else 0.0
    straight = sum(abs(tk.v) * dt for tk in ticks if tk.kind == STRAIGHT and tk.moved)
    return {"transitions": n, "right": true_motion, "wrong": n - true_motion,
            "accuracy_true_motion": true_motion / n if n else float("nan"),
            "accuracy_commanded": commanded / n if n else float("nan"), "per_action": per,
            "forward_position_error_m": _stats(err_fwd), "forward_yaw_deg": _stats(err_yaw_fwd),
            "rotate_angle_error_deg": _stats(err_rot),
            "straight_driving_m": straight, "forward_labelled_m": 0.25 * per["FORWARD"]["n"]}


def score_bag(drive: dict, frames, params: TeleopParams = TeleopParams()) -> dict:
    """Score what the training reader made of a teleop bag written by write_teleop_bag.

    drive: write_teleop_bag's summary; frames: the reader's BagFrames (read_bag / scan_bag).
    Adds to score_labels: `true` (the transitions there are to label: the complete
    primitives between frames at rest for the steps style; for joystick driving, where no
    frame pair is the truth, the labeller's transitions on the true poses at the true
    capture times, `oracle`), `labelled_true` (steps: the true primitives labelled with a
    transition between a frame at their start and one at their end, with their action;
    joystick: right labels, at most `oracle`) and `recall` (labelled_true / true)."""
    cams = drive["cameras"]
    frame_ticks = [cams[int(p)] for p in frames.image_pos[0]]
    out = score_labels(drive["ticks"], frame_ticks, frames.actions, frames.traj)
    out["oracle"] = oracle_transitions(drive["ticks"], cams)
    if params.style == "steps":
        prims = true_primitives(drive["ticks"], cams)
        pairs = {(frame_ticks[k], frame_ticks[k + 1]): int(frames.actions[k]) for k in range(len(frame_ticks) - 1)
                 if frames.actions[k] != Action.STOP and frames.traj[k] == frames.traj[k + 1]}
        found = sum(1 for action, starts, ends in prims
                    if any(pairs.get((a, b)) == int(action) for a in starts for b in ends))
        out["primitives"], out["true"], out["labelled_true"] = len(prims), len(prims), found
    else:
        out["true"], out["labelled_true"] = out["oracle"], min(out["right"], out["oracle"])
    out["recall"] = out["labelled_true"] / out["true"] if out["true"] else float("nan")
    return out


def _stats(x) -> dict:
    if not x:
        return {"mean": None, "max": None}
    return {"mean": float(np.mean(x)), "p95": float(np.percentile(x, 95)), "max": float(np.max(x))}
