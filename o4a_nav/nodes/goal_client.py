"""The one client of the o4a/navigate action (o4a_msgs/action/NavigateToImage), shaped like
nav2_simple_commander's BasicNavigator: send a goal, read the latest feedback, ask whether
it is complete, take the result, cancel. Used by `o4a goal`, `o4a demo` / `o4a bench
--through-ros` (nodes/lockstep.py) and the tests.

Who spins the client's node is the caller's choice: pass ``spin`` (a callable taking a
timeout in seconds that processes callbacks once, e.g. ``executor.spin_once``) when the
client waits in the thread that spins; leave it None when another thread spins the node
(the client then only waits on its futures).
"""
from __future__ import annotations

import time

from o4a_nav import topics
from o4a_nav.nodes._common import now_sec


def make_goal(front, rear, stamp: float, max_steps: int = 0):
    """NavigateToImage goal from two RGB images (any size)."""
    from o4a_msgs.action import NavigateToImage
    from o4a_nav import ros_conv

    return NavigateToImage.Goal(front=ros_conv.rgb_to_image_msg(front, stamp, topics.FRONT_CAMERA_FRAME),
                                rear=ros_conv.rgb_to_image_msg(rear, stamp, topics.REAR_CAMERA_FRAME),
                                max_steps=int(max_steps))


def feedback_line(fb) -> str:
    """One line for a NavigateToImage.Feedback: step, d_h, the last action and the state."""
    from o4a_nav.types import Action, NavState

    action = Action(fb.last_action).name if fb.last_action in set(Action) else str(fb.last_action)
    state = NavState(fb.state).name if fb.state in set(NavState) else str(fb.state)
    return f"step {fb.step:4d}  d_h {fb.goal_distance:8.3f}  {action:12s} {state}"


def result_line(res) -> str:
    """One line for a NavigateToImage.Result."""
    return (f"{'SUCCESS' if res.success else 'FAILED'}: {res.reason}; steps {res.steps} "
            f"(forwards {res.forwards}, rotations {res.rotations}), final d_h {res.final_goal_distance:.3f}")


class ImageGoalClient:
    """One goal at a time on the navigator's o4a/navigate action server."""

    def __init__(self, node, spin=None, action_name: str = topics.NAVIGATE):
        from rclpy.action import ActionClient

        from o4a_msgs.action import NavigateToImage

        self.node = node
        self._spin = spin
        self._client = ActionClient(node, NavigateToImage, action_name)
        self.action_name = action_name
        self._handle = None
        self._result_future = None
        self._feedback = None
        self._on_feedback = None

    # -- waiting -----------------------------------------------------------------------
    def _pump(self, timeout_sec: float) -> None:
        if self._spin is not None:
            self._spin(timeout_sec)
        else:
            time.sleep(min(timeout_sec, 0.005))

    def _wait(self, pred, timeout: float) -> bool:
        t_end = time.monotonic() + timeout
        while not pred():
            left = t_end - time.monotonic()
            if left <= 0:
                return bool(pred())
            self._pump(min(0.05, left))
        return True

    def wait_for_server(self, timeout: float = 10.0) -> bool:
        """True once the navigator's action server answers (within ``timeout`` seconds)."""
        if self._spin is None:
            return self._client.wait_for_server(timeout_sec=timeout)
        return self._wait(self._client.server_is_ready, timeout)

    # -- the goal ----------------------------------------------------------------------
    def send(self, front, rear, max_steps: int = 0, stamp: float | None = None, feedback_callback=None,
             timeout: float = 10.0) -> bool:
        """Send the goal images (RGB arrays, any size); True when the navigator accepted it.
        ``stamp``: the images' header stamp (default: the node's clock now);
        ``feedback_callback``: called with each NavigateToImage.Feedback."""
        if stamp is None:
            stamp = now_sec(self.node)
        self._handle, self._result_future, self._feedback = None, None, None
        self._on_feedback = feedback_callback
        send = self._client.send_goal_async(make_goal(front, rear, stamp, max_steps),
                                            feedback_callback=self._feedback_cb)
        if not self._wait(send.done, timeout):
            return False
        handle = send.result()
        if handle is None or not handle.accepted:
            return False
        self._handle = handle
        self._result_future = handle.get_result_async()
        return True

    def _feedback_cb(self, msg) -> None:
        self._feedback = msg.feedback
        if self._on_feedback is not None:
            self._on_feedback(msg.feedback)

    @property
    def feedback(self):
        """The latest NavigateToImage.Feedback of the current goal (None before the first)."""
        return self._feedback

    def is_complete(self) -> bool:
        """Has the current goal ended (a result arrived)? Processes callbacks once when the
        client spins its node; True when no goal was accepted."""
        if self._result_future is None:
            return True
        if not self._result_future.done():
            self._pump(0.05)
        return self._result_future.done()

    def wait(self, timeout: float = float("inf")) -> bool:
        """Wait up to ``timeout`` seconds for the result; True when it arrived."""
        if self._result_future is None:
            return False
        return self._wait(self._result_future.done, timeout)

    def result(self):
        """NavigateToImage.Result of the current goal, or None while it runs / if none was accepted."""
        if self._result_future is None or not self._result_future.done():
            return None
        wrapped = self._result_future.result()
        return None if wrapped is None else wrapped.result

    @property
    def status(self) -> int | None:
        """action_msgs/GoalStatus code of the ended goal (4 succeeded, 5 canceled, 6 aborted;
        the navigator reports a failed navigation as succeeded with success false), None
        while it runs."""
        if self._result_future is None or not self._result_future.done() or self._result_future.result() is None:
            return None
        return int(self._result_future.result().status)

    def cancel(self, timeout: float = 5.0) -> bool:
        """Cancel the current goal and wait up to ``timeout`` seconds for its result; True
        when it has ended."""
        if self._handle is None:
            return True
        cancel = self._handle.cancel_goal_async()
        self._wait(cancel.done, timeout)
        return self.wait(timeout)

    def destroy(self) -> None:
        self._client.destroy()
