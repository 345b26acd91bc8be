"""A stand-alone process serving o4a/set_goal and o4a/navigate, for the interface tests.

It checks the generated interfaces across processes (not navigation): SetGoal accepts a
pair of equal-sized non-empty images and says why otherwise; NavigateToImage sends one
feedback per step for `max_steps` steps, honours cancel, and succeeds.
"""
import sys
import time

import rclpy
from rclpy.action import ActionServer, CancelResponse, GoalResponse
from rclpy.callback_groups import ReentrantCallbackGroup
from rclpy.executors import MultiThreadedExecutor
from rclpy.node import Node

from o4a_msgs.action import NavigateToImage
from o4a_msgs.msg import DiscreteAction, NavigatorStatus
from o4a_msgs.srv import SetGoal


class InterfaceServer(Node):
    def __init__(self):
        super().__init__("interface_server")
        group = ReentrantCallbackGroup()
        self.create_service(SetGoal, "o4a/set_goal", self.on_set_goal, callback_group=group)
        ActionServer(self, NavigateToImage, "o4a/navigate", self.execute, callback_group=group,
                     goal_callback=lambda _: GoalResponse.ACCEPT,
                     cancel_callback=lambda _: CancelResponse.ACCEPT)

    def on_set_goal(self, req, res):
        if req.front.width == 0 or req.rear.width == 0:
            res.accepted, res.message = False, "empty image"
        elif (req.front.width, req.front.height) != (req.rear.width, req.rear.height):
            res.accepted, res.message = False, "front and rear sizes differ"
        else:
            res.accepted, res.message = True, f"goal {req.front.width}x{req.front.height} {req.front.encoding}"
        return res

    def execute(self, handle):
        result = NavigateToImage.Result()
        steps = handle.request.max_steps or 3
        for step in range(1, steps + 1):
            if handle.is_cancel_requested:
                handle.canceled()
                result.success, result.reason, result.steps = False, "canceled", step - 1
                return result
            fb = NavigateToImage.Feedback(step=step, goal_distance=float(steps - step),
                                          last_action=DiscreteAction.FORWARD,
                                          state=NavigatorStatus.NAVIGATING)
            handle.publish_feedback(fb)
            time.sleep(0.05)
        handle.succeed()
        result.success, result.reason, result.steps, result.forwards = True, "reached", steps, steps
        return result


def main():
    rclpy.init()
    node = InterfaceServer()
    executor = MultiThreadedExecutor(num_threads=2)
    executor.add_node(node)
    print("ready", flush=True)
    try:
        executor.spin()
    except KeyboardInterrupt:
        pass
    finally:
        node.destroy_node()
        rclpy.try_shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
