"""`sim` node: the simulated robot as a ROS 2 driver would present it.

Publishes front_camera/image_raw and rear_camera/image_raw (sensor_msgs/Image rgb8, 96x96,
frames front_camera_optical / rear_camera_optical) with their camera_info (ideal pinhole,
fx = fy = 48 px), scan (sensor_msgs/LaserScan, frame
laser = base_link origin, 270 deg, REP 117), odom (nav_msgs/Odometry odom -> base_link),
/tf (odom -> base_link with each odometry message) and /tf_static (the sensor mounts in
base_link: laser at the origin, the optical frames of the cameras 0.4 m up; parameter
publish_tf), ground_truth/pose (geometry_msgs/PoseStamped in map; evaluation only), o4a/world_name
(std_msgs/String, transient local) and, with publish_clock, /clock (sim time: stamps then
follow the simulated clock, run other nodes with use_sim_time). Sensors use the sensor-data
QoS (best effort); the rest is reliable.

Subscribes cmd_vel (geometry_msgs/Twist, reliable) and integrates differential-drive
motion (exact arcs, clamped speeds) at physics_rate; a translation into a wall is refused
(the robot only turns) and counted. Commands older than cmd_vel_timeout stop the robot.
Service ~/respawn (std_srvs/Trigger): teleport to a random free pose; odom restarts there.
Logic in o4a_nav/sim (SimRobot); this node only converts messages and keeps the clock.

Lockstep (parameter lockstep, implies publish_clock): simulated time advances only when
the stack has acted, as fast as it answers (no wall-clock timer paces it). The node also
subscribes o4a/action and o4a/motion_state. Between motions the robot stands still and
time stands still: after each observation the sim waits for the navigator's
DiscreteAction. During a motion it advances one physics period each time the base
controller has answered the current one with a moving cmd_vel (with cmd_vel_stamped: a
TwistStamped stamped in that period), integrating it as usual (sensors at their rates);
a zero command never advances it. When the base controller reports the motion finished, the
robot is put exactly where `o4a bench`'s simulator puts it (SimRobot.motion_result:
FORWARD 0.25 m, ROTATE 15 deg from the pose where the motion started; a FORWARD whose
exact step is blocked is refused for its whole duration and leaves the robot where it
was), and one period later a full observation (odom, scan, both images, ground truth)
goes out. A motion the base aborts, or that a new action pre-empts, ends where it is.
If the stack stays silent for lockstep_wait wall seconds the sim advances one period
anyway (between motions: with a fresh observation of the unchanged pose; during a motion:
clock and odometry only), so a lost message never stalls it. The executed motions are kept in `motions` (ground truth, for
the benchmark through ROS).
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass

from rclpy.node import Node

from o4a_nav import ros_conv, topics
from o4a_nav.errors import UserError
from o4a_nav.nav.node_params import SimNodeParams
from o4a_nav.nodes._common import (SENSOR_QOS, declare_params, now_sec, on_parameter_changes, reliable,
                                   warn_unknown_parameters)
from o4a_nav.types import FINAL_MOTION_STATES, Action, MotionStatus, Pose2D, wrap_angle


@dataclass
class ExecutedMotion:
    """One DiscreteAction as the lockstep sim executed it (map frame, ground truth)."""

    sequence: int
    action: Action
    start: Pose2D
    end: Pose2D
    outcome: str            # "succeeded", "aborted", "blocked" (exact step refused), "pre-empted"

    @property
    def moved(self) -> bool:
        return self.end != self.start


@dataclass
class _Motion:
    sequence: int
    action: Action
    start: Pose2D
    target: Pose2D
    blocked: bool


def camera_info_topic(image_topic: str) -> str:
    """front_camera/image_raw -> front_camera/camera_info (image_transport convention)."""
    return image_topic.rsplit("/", 1)[0] + "/camera_info"


class SimNode(Node):
    def __init__(self, node_name: str = "sim", **kwargs):
        super().__init__(node_name, **kwargs)
        from geometry_msgs.msg import PoseStamped, Twist, TwistStamped
        from nav_msgs.msg import Odometry
        from rosgraph_msgs.msg import Clock
        from sensor_msgs.msg import CameraInfo, Image, LaserScan
        from std_msgs.msg import String

        from o4a_nav.sim import CameraParams, LaserParams, SimRobot, load_world

        params = declare_params(self, SimNodeParams)
        warn_unknown_parameters(self)
        world_name, seed, init = params.world, params.seed, params.initial_pose
        self.physics_rate, camera_rate, scan_rate = params.physics_rate, params.camera_rate, params.scan_rate
        self.publish_clock, rtf = params.publish_clock, params.real_time_factor
        self.max_v, self.max_w, self.cmd_timeout = params.max_linear_speed, params.max_angular_speed, params.cmd_vel_timeout
        noise = params.laser_noise_std
        self.lockstep, self.lockstep_wait, self.cmd_stamped = params.lockstep, params.lockstep_wait, params.cmd_vel_stamped
        self.publish_clock = self.publish_clock or self.lockstep
        self.params = params
        on_parameter_changes(self, [(lambda: self.params, self._set_params)])

        world = load_world(world_name)
        pose = None
        if init:
            pose = Pose2D(*map(float, init))
            if world.collides(pose.x, pose.y):
                raise UserError(f"node {self.get_name()}: parameter initial_pose {init} is inside a wall or box "
                                f"of world '{world.name}'")
        self.robot = SimRobot(world, seed=seed, laser=LaserParams(noise_std=noise), camera=CameraParams(), pose=pose)
        self.origin = self.robot.pose   # the odom frame is the spawn pose
        self.sim_time = 0.0
        self.dt = 1.0 / self.physics_rate
        self.cmd = (0.0, 0.0)
        self.cmd_time: float | None = None
        self.v_applied = (0.0, 0.0)
        self.blocked_moves = 0
        self._last_tick: float | None = None

        self._msgs = dict(Image=Image, LaserScan=LaserScan, Odometry=Odometry, PoseStamped=PoseStamped, Clock=Clock)
        self.pub_front = self.create_publisher(Image, topics.FRONT_IMAGE, SENSOR_QOS)
        self.pub_rear = self.create_publisher(Image, topics.REAR_IMAGE, SENSOR_QOS)
        self.pub_front_info = self.create_publisher(CameraInfo, camera_info_topic(topics.FRONT_IMAGE), SENSOR_QOS)
        self.pub_rear_info = self.create_publisher(CameraInfo, camera_info_topic(topics.REAR_IMAGE), SENSOR_QOS)
        self._info = {frame: self._camera_info(CameraInfo, frame) for frame in
                      (topics.FRONT_CAMERA_FRAME, topics.REAR_CAMERA_FRAME)}
        self.pub_scan = self.create_publisher(LaserScan, topics.SCAN, SENSOR_QOS)
        self.pub_odom = self.create_publisher(Odometry, topics.ODOM, SENSOR_QOS)
        self.pub_gt = self.create_publisher(PoseStamped, topics.GROUND_TRUTH_POSE, reliable(10))
        self.pub_world = self.create_publisher(String, topics.WORLD_NAME, reliable(1, latched=True))
        self.pub_world_def = self.create_publisher(String, topics.WORLD_DEFINITION, reliable(1, latched=True))
        self.pub_clock = self.create_publisher(Clock, topics.CLOCK, reliable(10)) if self.publish_clock else None
        self.pub_tf = None
        if params.publish_tf:
            from o4a_nav.frames import sim_sensor_mounts
            from o4a_nav.nodes._common import publish_tf, tf_publisher

            self.pub_tf = tf_publisher(self, static=False)
            self.pub_tf_static = tf_publisher(self, static=True)
            publish_tf(self.pub_tf_static, sim_sensor_mounts(self.robot.camera.mount_height), self.now())
        self.create_subscription(TwistStamped if self.cmd_stamped else Twist, topics.CMD_VEL, self._on_cmd,
                                 reliable(10))
        from std_srvs.srv import Trigger

        self.create_service(Trigger, "~/respawn", self._on_respawn)
        self.pub_world.publish(String(data=world.name))
        self.pub_world_def.publish(String(data=world.text))   # a recorded bag carries its ground truth

        self.motions: list[ExecutedMotion] = []
        self._motion: _Motion | None = None
        self._cmd_since_tick = False
        self._last_advance = -math.inf   # time.monotonic() of the last lockstep period
        if self.lockstep:
            from o4a_msgs.msg import DiscreteAction, MotionState

            self.create_subscription(DiscreteAction, topics.ACTION, self._on_action, reliable(10))
            self.create_subscription(MotionState, topics.MOTION_STATE, self._on_motion_state, reliable(10))
            self._physics_timer = self.create_timer(min(0.05, self.lockstep_wait / 2), self._lockstep_watchdog)
        else:
            speed = rtf if self.publish_clock else 1.0
            self._physics_timer = self.create_timer(self.dt / speed, self._tick)
        # sensors are published on the physics tick they fall due, so that their stamps
        # are exact multiples of the physics period in simulated time
        self._cam_every = max(1, int(round(self.physics_rate / camera_rate)))
        self._scan_every = max(1, int(round(self.physics_rate / scan_rate)))
        self._ticks = 0
        self.get_logger().info(
            f"sim: world '{world.name}' ({world.free_area:.0f} m^2 free), spawn ({self.origin.x:.2f}, "
            f"{self.origin.y:.2f}, {math.degrees(self.origin.yaw):.0f} deg), physics {self.physics_rate:g} Hz, "
            f"cameras {self.physics_rate / self._cam_every:g} Hz, scan {self.physics_rate / self._scan_every:g} Hz"
            + (", lockstep (simulated time advances when the stack acts; exact motions)" if self.lockstep else
               f", publishing /clock x{rtf:g}" if self.publish_clock else ""))

    def _set_params(self, params, _changes):
        self.params = params
        self.max_v, self.max_w, self.cmd_timeout = params.max_linear_speed, params.max_angular_speed, params.cmd_vel_timeout

    def _on_respawn(self, request, response):
        """~/respawn (std_srvs/Trigger): teleport to a random free pose (seeded), stop, and
        restart odometry there."""
        pose = self.robot.respawn()
        self.origin = pose
        self.cmd, self.cmd_time = (0.0, 0.0), None
        if self.lockstep:
            self._end_motion("pre-empted")
            self._advance(observe=True)
        response.success = True
        response.message = f"respawned at ({pose.x:.2f}, {pose.y:.2f}, {math.degrees(pose.yaw):.0f} deg)"
        self.get_logger().info(f"sim: {response.message}")
        return response

    # ---- time ---------------------------------------------------------------------------
    def now(self) -> float:
        if self.publish_clock:
            return self.sim_time
        return now_sec(self)

    # ---- callbacks ----------------------------------------------------------------------
    def _on_cmd(self, msg):
        stamp = None
        if self.cmd_stamped:
            stamp, msg = ros_conv.stamp_to_sec(msg.header.stamp), msg.twist
        v, w = float(msg.linear.x), float(msg.angular.z)
        if not (math.isfinite(v) and math.isfinite(w)):
            self.get_logger().warn("cmd_vel with NaN/inf ignored; stopping", throttle_duration_sec=2.0)
            v = w = 0.0
        self.cmd = (max(-self.max_v, min(self.max_v, v)), max(-self.max_w, min(self.max_w, w)))
        self.cmd_time = self.now()
        if self.lockstep:
            # the base controller answered this period: a moving command computed at it
            # (a zero command ends the motion: the final MotionState decides what follows)
            moving = self.cmd != (0.0, 0.0)
            current = stamp is None or stamp >= self.sim_time - 0.25 * self.dt
            self._cmd_since_tick = self._cmd_since_tick or (moving and current)
            self._lockstep_step()

    # ---- lockstep -----------------------------------------------------------------------
    def _on_action(self, msg):
        """A DiscreteAction from the navigator: the stack has acted on the last observation."""
        try:
            action = Action(int(msg.action))
        except ValueError:
            action = Action.STOP
        self._end_motion("pre-empted")
        if action == Action.STOP:
            self._advance(observe=True)   # the robot stands; the stack may decide again
            return
        target, moved = self.robot.motion_result(action)
        self._motion = _Motion(int(msg.sequence), action, self.robot.pose, target, blocked=not moved)
        if not moved:
            self.blocked_moves += 1
            self.get_logger().warn(f"sim: {action.name} blocked by an obstacle (refused)", throttle_duration_sec=2.0)
        self._lockstep_step()

    def _on_motion_state(self, msg):
        m = self._motion
        if m is None or int(msg.sequence) != m.sequence or int(msg.state) not in FINAL_MOTION_STATES:
            return
        if int(msg.state) == MotionStatus.SUCCEEDED or m.blocked:
            self.robot.snap(m.target)   # exactly where the discrete simulator puts it
            self._end_motion("blocked" if m.blocked else "succeeded")
        else:
            self._end_motion("aborted")
        self._advance(observe=True)

    def _end_motion(self, outcome: str) -> None:
        m, self._motion = self._motion, None
        if m is not None:
            self.motions.append(ExecutedMotion(m.sequence, m.action, m.start, self.robot.pose, outcome))

    def _lockstep_step(self) -> None:
        """During a motion: one period once the base controller has answered the last one."""
        if self._motion is not None and self._cmd_since_tick:
            self._advance()

    def _lockstep_watchdog(self) -> None:
        """Wall-clock safety net: the first observation, and one period whenever the stack
        has been silent for lockstep_wait (a lost message must not stall the sim). During
        a motion such a period publishes clock and odometry only: the base controller has
        not seen the last period, and a camera frame or scan stamped after the moment it
        reports the motion finished must show the robot where the motion put it."""
        if time.monotonic() - self._last_advance >= self.lockstep_wait:
            idle = self._motion is None
            self._advance(observe=idle, sensors=idle)

    def _advance(self, observe: bool = False, sensors: bool = True) -> None:
        """One lockstep physics period; observe: publish every sensor at its end;
        sensors=False: none."""
        self._last_advance = time.monotonic()
        self._cmd_since_tick = False
        v, w = self.cmd
        if self._motion is None or self.cmd_time is None or self.sim_time - self.cmd_time > self.cmd_timeout:
            v = w = 0.0   # between motions the robot stands still
        elif self._motion.blocked:
            v = 0.0
        self._step_physics(v, w, self.dt)
        self._publish_tick(force_sensors=observe, sensors=sensors)

    def _tick(self):
        now = self.now()
        # wall-clock mode: integrate the time that really passed (a late timer must not
        # slow the robot down); simulated-clock mode: exactly one physics period
        if self.publish_clock or self._last_tick is None:
            step = self.dt
        else:
            step = min(max(now - self._last_tick, 0.0), 5 * self.dt)
        self._last_tick = now
        v, w = self.cmd
        if self.cmd_time is None or now - self.cmd_time > self.cmd_timeout:
            v = w = 0.0
        self._step_physics(v, w, step)
        self._publish_tick()

    def _step_physics(self, v: float, w: float, step: float) -> None:
        if v != 0.0 or w != 0.0:
            moved = self.robot.move(v, w, step)
            if not moved:
                self.blocked_moves += 1
                self.get_logger().warn("sim: motion blocked by an obstacle (turning only)", throttle_duration_sec=2.0)
                v = 0.0
        self.v_applied = (v, w)

    def _publish_tick(self, force_sensors: bool = False, sensors: bool = True) -> None:
        """Count one physics period and publish what falls due (all sensors with
        force_sensors, none but odometry with sensors=False)."""
        self._ticks += 1
        if self.publish_clock:
            self.sim_time = self._ticks * self.dt
            clk = self._msgs["Clock"]()
            clk.clock.sec, clk.clock.nanosec = ros_conv.sec_to_stamp_fields(self.sim_time)
            self.pub_clock.publish(clk)
        t = self.now()
        self._publish_odom(t)
        if not sensors:
            return
        if force_sensors or self._ticks % self._scan_every == 0:
            scan = self.robot.scan(t)
            self.pub_scan.publish(ros_conv.scan_data_to_msg(scan, topics.LASER_FRAME, 1.0 / self.physics_rate * self._scan_every))
        if force_sensors or self._ticks % self._cam_every == 0:
            front, rear = self.robot.render()
            self.pub_front.publish(ros_conv.rgb_to_image_msg(front, t, topics.FRONT_CAMERA_FRAME))
            self.pub_rear.publish(ros_conv.rgb_to_image_msg(rear, t, topics.REAR_CAMERA_FRAME))
            for pub, frame in ((self.pub_front_info, topics.FRONT_CAMERA_FRAME),
                               (self.pub_rear_info, topics.REAR_CAMERA_FRAME)):
                info = self._info[frame]
                ros_conv.fill_header(info.header, t, frame)
                pub.publish(info)
            gt = self._msgs["PoseStamped"]()
            ros_conv.fill_header(gt.header, t, topics.MAP_FRAME)
            ros_conv.set_pose_msg(gt.pose, self.robot.pose)
            self.pub_gt.publish(gt)

    def _camera_info(self, CameraInfo, frame: str):
        """Ideal pinhole intrinsics of the rendered 96x96, 90 deg camera (no distortion)."""
        cam = self.robot.camera
        fx = (cam.width / 2.0) / math.tan(math.radians(cam.hfov_deg) / 2.0)
        fy = fx
        cx, cy = (cam.width - 1) / 2.0, (cam.height - 1) / 2.0
        info = CameraInfo()
        info.header.frame_id = frame
        info.width, info.height = cam.width, cam.height
        info.distortion_model = "plumb_bob"
        info.d = [0.0] * 5
        info.k = [fx, 0.0, cx, 0.0, fy, cy, 0.0, 0.0, 1.0]
        info.r = [1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0]
        info.p = [fx, 0.0, cx, 0.0, 0.0, fy, cy, 0.0, 0.0, 0.0, 1.0, 0.0]
        return info

    def odom_pose(self) -> Pose2D:
        """Pose in the odom frame (= map pose relative to the spawn pose)."""
        p, o = self.robot.pose, self.origin
        dx, dy = p.x - o.x, p.y - o.y
        c, s = math.cos(o.yaw), math.sin(o.yaw)
        yaw = wrap_angle(p.yaw - o.yaw)
        return Pose2D(c * dx + s * dy, -s * dx + c * dy, yaw)

    def _publish_odom(self, t: float):
        msg = self._msgs["Odometry"]()
        ros_conv.fill_header(msg.header, t, topics.ODOM_FRAME)
        msg.child_frame_id = topics.BASE_FRAME
        ros_conv.set_pose_msg(msg.pose.pose, self.odom_pose())
        msg.twist.twist.linear.x, msg.twist.twist.angular.z = float(self.v_applied[0]), float(self.v_applied[1])
        cov = [0.0] * 36
        for i in (0, 7, 35):
            cov[i] = 1e-6   # perfect odometry in simulation
        for i in (14, 21, 28):
            cov[i] = 1e6    # z, roll, pitch: not estimated (planar robot)
        msg.pose.covariance = cov
        msg.twist.covariance = cov
        self.pub_odom.publish(msg)
        if self.pub_tf is not None:
            from o4a_nav.frames import Transform
            from o4a_nav.nodes._common import publish_tf

            publish_tf(self.pub_tf, [Transform.planar(topics.ODOM_FRAME, topics.BASE_FRAME, self.odom_pose())], t)

    def shutdown(self):
        self.robot.close()


def main(args=None):
    from o4a_nav.nodes._common import spin_node

    return spin_node(SimNode, args)


if __name__ == "__main__":
    main()
