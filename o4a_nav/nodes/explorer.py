"""`explorer` node: the exploration policy of `o4a collect` on a live robot (real or sim).

Subscribes scan (sensor_msgs/LaserScan, sensor-data QoS) and o4a/motion_state
(o4a_msgs/MotionState); publishes o4a/action (o4a_msgs/DiscreteAction). Each decision
takes A_free from the latest scan (CollisionChecker, the navigator's), asks the
ExplorationPolicy (o4a_nav/sim/explore.py, the same code as `o4a collect`) for an
action, publishes it and waits until the base_controller reports it SUCCEEDED or ABORTED
(an aborted FORWARD makes the policy turn away) and a scan newer than that report has
arrived. Every trajectory_length-th action is STOP. Record the data with
`o4a record -a -o BAG` (or ros2 bag record) while it runs; `o4a train` reads that bag.

Nothing moves on stale data: no decision without a scan younger than max_scan_age, and a
motion that is not reported within motion_timeout is given up (the base controller
stops on its own timeouts).
"""
from __future__ import annotations

from rclpy.node import Node

from o4a_nav import ros_conv, topics
from o4a_nav.nav.collision import CollisionChecker, FootprintParams
from o4a_nav.nav.node_params import ExplorerNodeParams
from o4a_nav.nodes._common import (SENSOR_QOS, LaserMountCheck, declare_params, now_sec, reliable,
                                   warn_unknown_parameters)
from o4a_nav.sim.explore import ExplorationPolicy, ExplorerParams
from o4a_nav.types import Action


class ExplorerNode(Node):
    def __init__(self, node_name: str = "explorer", **kwargs):
        super().__init__(node_name, **kwargs)
        from o4a_msgs.msg import DiscreteAction, MotionState
        from sensor_msgs.msg import LaserScan

        setup = declare_params(self, ExplorerNodeParams)
        seed, rate = setup.seed, setup.decision_rate
        self.max_scan_age, self.motion_timeout, self.max_trajectories = (setup.max_scan_age, setup.motion_timeout,
                                                                         setup.trajectories)
        self.policy = ExplorationPolicy(seed, declare_params(self, ExplorerParams))
        self.checker = CollisionChecker(declare_params(self, FootprintParams))  # same names as collision_checker
        warn_unknown_parameters(self)
        # a laser mount on /tf_static that disagrees with laser_x/y/yaw: the explorer stands
        self.mount = LaserMountCheck(self, lambda: self.checker.params, topics.BASE_FRAME,
                                     lambda err: err and self.get_logger().error(f"explorer stopped: {err}"))
        self._DiscreteAction, self._MotionState = DiscreteAction, MotionState
        self.pub = self.create_publisher(DiscreteAction, topics.ACTION, reliable(10))
        self.create_subscription(LaserScan, topics.SCAN, self._on_scan, SENSOR_QOS)
        self.create_subscription(MotionState, topics.MOTION_STATE, self._on_state, reliable(10))
        self.scan = None
        self.scan_arrival = -1.0
        self.ready_after = -1.0
        self.sequence = 0
        self.pending: tuple[int, Action, float] | None = None   # (sequence, action, sent at)
        self.trajectories = 0
        self.actions_sent = 0
        self.create_timer(1.0 / rate, self._tick)
        self.get_logger().info(f"explorer: trajectories of {self.policy.params.trajectory_length} steps, "
                               f"forward_prob {self.policy.params.forward_prob}, seed {seed}")

    @property
    def finished(self) -> bool:
        return self.max_trajectories > 0 and self.trajectories >= self.max_trajectories

    def _on_scan(self, msg):
        self.scan = ros_conv.scan_msg_to_data(msg)
        self.scan_arrival = now_sec(self)

    def _on_state(self, msg):
        if self.pending is None or msg.sequence != self.pending[0]:
            return
        if msg.state == self._MotionState.SUCCEEDED:
            self.pending = None
        elif msg.state == self._MotionState.ABORTED:
            self.get_logger().info(f"explorer: action {self.pending[1].name} aborted ({msg.message}); turning away")
            if self.pending[1] == Action.FORWARD:
                self.policy.blocked()
            self.pending = None
        else:
            return
        self.ready_after = now_sec(self)

    def _tick(self):
        now = now_sec(self)
        if self.pending is not None:
            if now - self.pending[2] > self.motion_timeout:
                self.get_logger().warn(f"explorer: no result for action {self.pending[0]} after "
                                       f"{self.motion_timeout:.1f} s; deciding again")
                if self.pending[1] == Action.FORWARD:
                    self.policy.blocked()
                self.pending = None
                self.ready_after = now
            return
        if self.finished or self.mount.error:
            return
        if self.scan is None or self.scan_arrival <= self.ready_after or now - self.scan_arrival > self.max_scan_age:
            return
        free = set(self.checker.free_actions(self.scan).free)
        action = self.policy.act(free)
        self.sequence += 1
        msg = self._DiscreteAction()
        ros_conv.fill_header(msg.header, self.scan.stamp if self.scan.stamp > 0 else now, topics.BASE_FRAME)
        msg.action = int(action)
        msg.sequence = self.sequence
        self.pub.publish(msg)
        self.actions_sent += 1
        if action == Action.STOP:
            self.trajectories += 1
            self.policy.reset()
            self.ready_after = now
            self.get_logger().info(f"explorer: trajectory {self.trajectories} done")
        else:
            self.pending = (self.sequence, action, now)


def main(args=None):
    from o4a_nav.nodes._common import spin_node

    return spin_node(ExplorerNode, args)


if __name__ == "__main__":
    main()
