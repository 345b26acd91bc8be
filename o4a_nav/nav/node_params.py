"""The parameters of each ROS node: which spec'd groups it declares (ROS-free).

Each node declares the fields of its groups, in this order, with the descriptions,
ranges and read-only flags of their specs (o4a_nav/params.py). The groups shared by
several nodes (the footprint) are defined once, in their core module; a node never
imports another node's parameters. docs/PARAMETERS.md is generated from NODE_PARAMS:

    .venv/bin/python -m o4a_nav.nav.node_params > docs/PARAMETERS.md
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

from o4a_nav import topics
from o4a_nav.errors import UserError
from o4a_nav.nav.base_controller import BaseControllerParams
from o4a_nav.nav.collision import FootprintParams
from o4a_nav.nav.navigator import NavigatorParams
from o4a_nav.nav.runtime import RuntimeParams
from o4a_nav.params import Params, markdown, param
from o4a_nav.sim.explore import ExplorerParams


@dataclass
class LifecycleNodeParams(Params):
    OWNER: ClassVar[str] = "managed node"
    autostart: bool = param(True, "configure and activate at start-up; false: wait for the lifecycle_manager "
                                  "(the launch files)", read_only=True)


@dataclass
class LifecycleManagerParams(Params):
    OWNER: ClassVar[str] = "lifecycle_manager"
    node_names: list[str] = param(["collision_checker", "navigator", "base_controller"],
                                  "managed nodes (names relative to the manager's namespace), brought up in this "
                                  "order and down in the reverse", read_only=True)
    autostart: bool = param(True, "configure and activate the nodes at start-up (else: ~/startup service)",
                            read_only=True)
    transition_timeout: float = param(60.0, "wait this long for a node's lifecycle services and each "
                                            "transition [s] (the navigator loads its model in configure)",
                                      (1.0, 600.0), read_only=True)
    heartbeat_period: float = param(1.0, "ask each node brought up for its state this often (wall clock) [s]",
                                    (0.05, 60.0), read_only=True)
    heartbeat_timeout: float = param(5.0, "a node that does not answer for this long is lost: reported, the "
                                          "others deactivated [s]", (0.1, 600.0), read_only=True)


@dataclass
class CollisionCheckerNodeParams(Params):
    OWNER: ClassVar[str] = "collision_checker"
    base_frame: str = param(topics.BASE_FRAME, "frame of the swept box polygon and of the laser mount",
                            read_only=True)
    publish_laser_tf: bool = param(False, "publish the laser mount (laser_x/y/yaw) as the static transform "
                                          "base_frame -> laser_frame on /tf_static (a robot whose description "
                                          "does not publish it; the sim publishes its own)", read_only=True)


@dataclass
class NavigatorNodeParams(Params):
    OWNER: ClassVar[str] = "navigator"
    model_path: str = param("", "model directory written by `o4a train`; empty = the shipped model "
                                "(models/o4a_default in the package share)", read_only=True)
    world: str = param("", "world whose p+ head to use; empty = the model's only one", read_only=True)
    allow_unverified_model: bool = param(False, "load a model whose meta.json has no weights_sha256 (its "
                                                "weights cannot be verified); false: refused, NO_MODEL",
                                         read_only=True)
    torch_threads: int = param(1, "torch CPU threads for inference (1 is fastest per decision on a small CPU "
                                  "shared with other nodes)", (1, 64), read_only=True)
    status_rate: float = param(2.0, "periodic o4a/status rate [Hz]", (0.1, 100.0), read_only=True)
    image_transport: str = param("raw", "camera input: raw (sensor_msgs/Image on the image topics) or compressed "
                                        "(sensor_msgs/CompressedImage, JPEG/PNG, on <image topic>/compressed)",
                                 read_only=True)
    front_camera_hfov: float = param(0.0, "horizontal field of view of the front camera [deg]: its images are "
                                          "cropped to the model's square 90 deg view with it (principal point at "
                                          "the centre); 0 = none; the camera's camera_info "
                                          "(front_camera/camera_info) replaces it when published", (0.0, 179.0),
                                     read_only=True)
    rear_camera_hfov: float = param(0.0, "horizontal field of view of the rear camera [deg] (as "
                                         "front_camera_hfov; rear_camera/camera_info replaces it)", (0.0, 179.0),
                                    read_only=True)

    def _check(self):
        if self.image_transport not in ("raw", "compressed"):
            raise UserError(f"navigator: parameter image_transport must be raw or compressed "
                            f"(got {self.image_transport!r})")


@dataclass
class BaseControllerNodeParams(Params):
    OWNER: ClassVar[str] = "base_controller"
    control_rate: float = param(50.0, "control loop rate [Hz]", (1.0, 1000.0), read_only=True)
    use_stamped: bool = param(False, "publish geometry_msgs/TwistStamped on cmd_vel", read_only=True)
    base_frame: str = param(topics.BASE_FRAME, "frame_id of TwistStamped", read_only=True)
    publish_odom_tf: bool = param(False, "publish odom -> base_link on /tf from each odometry message (when the "
                                         "odometry source does not publish it)", read_only=True)


@dataclass
class ExplorerNodeParams(Params):
    OWNER: ClassVar[str] = "explorer"
    seed: int = param(0, "seed of the policy's random choices", (0, 2**31 - 1), read_only=True)
    decision_rate: float = param(20.0, "how often the node checks whether to decide [Hz]", (0.1, 1000.0),
                                 read_only=True)
    max_scan_age: float = param(0.5, "ignore scans older than this [s]", (0.01, 10.0), read_only=True)
    motion_timeout: float = param(10.0, "give up waiting for a MotionState after this [s]", (0.1, 600.0),
                                  read_only=True)
    trajectories: int = param(0, "stop after this many trajectories; 0 = never", (0, 1_000_000), read_only=True)


@dataclass
class SimNodeParams(Params):
    OWNER: ClassVar[str] = "sim"
    world: str = param("two_rooms", "built-in world name (`o4a worlds`) or path to a world .yaml", read_only=True)
    seed: int = param(0, "seed of the spawn pose and of the laser noise", (0, 2**31 - 1), read_only=True)
    initial_pose: list[float] = param([], "spawn pose [x, y, yaw] in the map frame (m, m, rad); empty = random "
                                          "free pose", read_only=True)
    physics_rate: float = param(50.0, "motion integration rate [Hz] (also the odom and clock rate)",
                                (1.0, 1000.0), read_only=True)
    camera_rate: float = param(10.0, "front and rear image rate [Hz]", (0.1, 100.0), read_only=True)
    scan_rate: float = param(10.0, "laser scan rate [Hz]", (0.1, 100.0), read_only=True)
    publish_clock: bool = param(False, "publish /clock and stamp everything with simulated time", read_only=True)
    publish_tf: bool = param(True, "publish odom -> base_link on /tf with each odometry message and the sensor "
                                   "mounts (laser, cameras) on /tf_static", read_only=True)
    real_time_factor: float = param(1.0, "simulated seconds per wall second (with publish_clock)", (0.01, 100.0),
                                    read_only=True)
    max_linear_speed: float = param(1.0, "cmd_vel linear.x is clamped to +- this [m/s]", (0.0, 5.0))
    max_angular_speed: float = param(2.0, "cmd_vel angular.z is clamped to +- this [rad/s]", (0.0, 10.0))
    cmd_vel_timeout: float = param(0.5, "stop when the last cmd_vel is older than this [s]", (0.01, 10.0))
    laser_noise_std: float = param(0.0, "Gaussian noise on the laser ranges [m]", (0.0, 1.0), read_only=True)
    lockstep: bool = param(False, "advance simulated time only when the stack has acted and execute each "
                                  "DiscreteAction exactly (implies publish_clock; run the other nodes with use_sim_time)",
                           read_only=True)
    lockstep_wait: float = param(1.0, "lockstep: wall seconds to wait for the stack before advancing one period "
                                      "anyway", (0.01, 60.0), read_only=True)
    cmd_vel_stamped: bool = param(False, "cmd_vel is geometry_msgs/TwistStamped (base_controller use_stamped); in "
                                         "lockstep a period then advances only on the command stamped in it",
                                  read_only=True)

    def _check(self):
        if self.initial_pose and (len(self.initial_pose) != 3
                                  or not all(math.isfinite(float(v)) for v in self.initial_pose)):
            raise UserError(f"sim: parameter initial_pose must be [x, y, yaw], got {list(self.initial_pose)}")


# node name -> the parameter groups it declares (node-only group first)
NODE_PARAMS: dict[str, tuple] = {
    "collision_checker": (CollisionCheckerNodeParams, FootprintParams, LifecycleNodeParams),
    "navigator": (NavigatorNodeParams, NavigatorParams, RuntimeParams, FootprintParams, LifecycleNodeParams),
    "base_controller": (BaseControllerNodeParams, BaseControllerParams, FootprintParams, LifecycleNodeParams),
    "lifecycle_manager": (LifecycleManagerParams,),
    "explorer": (ExplorerNodeParams, ExplorerParams, FootprintParams),
    "sim": (SimNodeParams,),
}


if __name__ == "__main__":
    print(markdown(NODE_PARAMS), end="")
