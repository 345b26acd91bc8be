"""`lifecycle_manager` node: brings the managed nodes (collision_checker, navigator,
base_controller) up and down through their lifecycle services.

With autostart (default) it waits for each node's ~/change_state and ~/get_state, then
configures every node in the order of node_names and activates them in that order; a
failed transition stops the sequence with the node and reason in the log and in
~/startup's answer. Services (std_srvs/Trigger): ~/startup (configure + activate),
~/pause (deactivate in reverse order: the robot stops), ~/resume (activate again),
~/reset (deactivate + cleanup). State changes go through lifecycle_msgs/srv/ChangeState, so
the nodes may live in other processes (ros2 launch) or in this one (o4a bringup).
"""
from __future__ import annotations

from rclpy.callback_groups import ReentrantCallbackGroup
from rclpy.node import Node

from o4a_nav.nav.node_params import LifecycleManagerParams
from o4a_nav.nodes._common import declare_params

# lifecycle_msgs primary state ids
_UNCONFIGURED, _INACTIVE, _ACTIVE = 1, 2, 3


class LifecycleManagerNode(Node):
    def __init__(self, node_name: str = "lifecycle_manager", **kwargs):
        super().__init__(node_name, **kwargs)
        from lifecycle_msgs.srv import ChangeState, GetState
        from std_srvs.srv import Trigger

        self.params = declare_params(self, LifecycleManagerParams)
        self._ChangeState, self._GetState = ChangeState, GetState
        group = ReentrantCallbackGroup()
        self._change = {n: self.create_client(ChangeState, f"{n}/change_state", callback_group=group)
                        for n in self.params.node_names}
        self._get = {n: self.create_client(GetState, f"{n}/get_state", callback_group=group)
                     for n in self.params.node_names}
        self.state = "unconfigured"     # of the whole set: unconfigured, active, paused, failed
        self.message = ""
        for name, handler in (("startup", self.startup), ("pause", self.pause), ("resume", self.resume),
                              ("reset", self.reset)):
            self.create_service(Trigger, f"~/{name}", self._trigger(handler), callback_group=group)
        if self.params.autostart:
            # a one-shot timer: the sequence runs as a coroutine in the executor
            self._boot = self.create_timer(0.1, self._autostart, callback_group=group)

    def _trigger(self, handler):
        async def callback(request, response):
            response.success, response.message = await handler()
            return response
        return callback

    async def _autostart(self):
        self.destroy_timer(self._boot)
        ok, msg = await self.startup()
        (self.get_logger().info if ok else self.get_logger().error)(f"autostart: {msg}")

    # ---------------------------------------------------------------- transitions
    async def _wait_service(self, client) -> bool:
        import time

        end = time.monotonic() + self.params.transition_timeout
        while not client.service_is_ready():
            if time.monotonic() > end:
                return False
            await self._sleep(0.1)
        return True

    async def _sleep(self, seconds: float):
        from rclpy.task import Future

        fut = Future()
        timer = self.create_timer(seconds, lambda: fut.done() or fut.set_result(None))
        try:
            await fut
        finally:
            self.destroy_timer(timer)

    async def _call(self, client, request):
        fut = client.call_async(request)
        import time

        end = time.monotonic() + self.params.transition_timeout
        while not fut.done():
            if time.monotonic() > end:
                fut.cancel()
                return None
            await self._sleep(0.05)
        return fut.result()

    async def _state(self, name: str) -> int | None:
        if not await self._wait_service(self._get[name]):
            return None
        res = await self._call(self._get[name], self._GetState.Request())
        return None if res is None else res.current_state.id

    async def _transition(self, name: str, transition_id: int, label: str) -> tuple[bool, str]:
        if not await self._wait_service(self._change[name]):
            return False, f"{name}: no lifecycle service {self._change[name].srv_name} after " \
                          f"{self.params.transition_timeout:g} s"
        req = self._ChangeState.Request()
        req.transition.id = transition_id
        res = await self._call(self._change[name], req)
        if res is None:
            return False, f"{name}: {label} did not answer within {self.params.transition_timeout:g} s"
        if not res.success:
            return False, f"{name}: {label} failed (see the node's log)"
        return True, ""

    async def _bring(self, names, want: int) -> tuple[bool, str]:
        """Move each node (in order) to the primary state `want` (unconfigured, inactive, active)."""
        from lifecycle_msgs.msg import Transition

        steps = {  # (current, want) -> transitions
            (_UNCONFIGURED, _INACTIVE): [(Transition.TRANSITION_CONFIGURE, "configure")],
            (_UNCONFIGURED, _ACTIVE): [(Transition.TRANSITION_CONFIGURE, "configure")],
            (_INACTIVE, _ACTIVE): [(Transition.TRANSITION_ACTIVATE, "activate")],
            (_ACTIVE, _INACTIVE): [(Transition.TRANSITION_DEACTIVATE, "deactivate")],
            (_ACTIVE, _UNCONFIGURED): [(Transition.TRANSITION_DEACTIVATE, "deactivate")],
            (_INACTIVE, _UNCONFIGURED): [(Transition.TRANSITION_CLEANUP, "cleanup")],
        }
        for name in names:
            while True:
                state = await self._state(name)
                if state is None:
                    return False, f"{name}: no lifecycle state (is the node running?)"
                if state == want:
                    break
                todo = steps.get((state, want))
                if todo is None:
                    return False, f"{name}: cannot go from state {state} to {want}"
                for tid, label in todo:
                    ok, msg = await self._transition(name, tid, label)
                    if not ok:
                        return False, msg
        return True, ""

    async def startup(self) -> tuple[bool, str]:
        names = self.params.node_names
        ok, msg = await self._bring(names, _INACTIVE)      # configure all, then activate all
        if ok:
            ok, msg = await self._bring(names, _ACTIVE)
        self.state, self.message = ("active", "") if ok else ("failed", msg)
        return ok, f"active: {', '.join(names)}" if ok else msg

    async def pause(self) -> tuple[bool, str]:
        ok, msg = await self._bring(list(reversed(self.params.node_names)), _INACTIVE)
        self.state = "paused" if ok else "failed"
        return ok, "inactive (robot stopped)" if ok else msg

    async def resume(self) -> tuple[bool, str]:
        ok, msg = await self._bring(self.params.node_names, _ACTIVE)
        self.state = "active" if ok else "failed"
        return ok, "active" if ok else msg

    async def reset(self) -> tuple[bool, str]:
        ok, msg = await self._bring(list(reversed(self.params.node_names)), _UNCONFIGURED)
        self.state = "unconfigured" if ok else "failed"
        return ok, "unconfigured" if ok else msg


def main(args=None):
    from o4a_nav.nodes._common import spin_node

    return spin_node(LifecycleManagerNode, args)


if __name__ == "__main__":
    main()
