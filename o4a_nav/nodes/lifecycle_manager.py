"""`lifecycle_manager` node: brings the managed nodes (collision_checker, navigator,
base_controller) up and down through their lifecycle services, and watches them.

With autostart (default) it waits for each node's ~/change_state and ~/get_state, then
configures every node in the order of node_names and activates them in that order; a
failed transition stops the sequence with the node and reason in the log and in
~/startup's answer. Services (std_srvs/Trigger): ~/startup (configure + activate),
~/pause (deactivate in reverse order: the robot stops), ~/resume (activate again),
~/reset (deactivate + cleanup). State changes go through lifecycle_msgs/srv/ChangeState, so
the nodes may live in other processes (ros2 launch) or in this one (o4a bringup).

Bring-up runs on wall-clock (steady) timers: with use_sim_time and no /clock yet it still
configures and activates the nodes, and it logs at INFO what it waits for (a node's
lifecycle services, /clock).

Heartbeat (the role of Nav2's bond): every heartbeat_period it asks each node it has
brought up for its state (~/get_state, wall clock). A node that does not answer within
heartbeat_timeout (it died or hangs), or answers unconfigured after it was brought up
(it was restarted: launch's respawn), or finalized, is reported at ERROR, the others are brought to a safe state
(deactivated in reverse order: the base controller stops the robot, the navigator ends
its goal with STOP) and the manager's state is "failed". When the node answers again
(launch's respawn) it is reported back; with autostart the whole set is brought up again,
else ~/startup does it. A required node's death ending the launch is the launch files'
part (on_exit shutdown unless use_respawn).

Service calls are resent while unanswered (get_state every 2 s, transitions every 15 s) (a request can go to a dead process' endpoint
that discovery still lists, or be sent before a new server is matched), so a respawned
node is reached as soon as its services are. Transitions are requested by label, so a
resent one that no longer applies is refused by the node rather than crashing it.
"""
from __future__ import annotations

import time

from rclpy.callback_groups import ReentrantCallbackGroup
from rclpy.clock import Clock, ClockType
from rclpy.node import Node

from o4a_nav.nav.node_params import LifecycleManagerParams
from o4a_nav.nodes._common import declare_params

# lifecycle_msgs primary state ids
_UNCONFIGURED, _INACTIVE, _ACTIVE = 1, 2, 3
_STATE_NAMES = {_UNCONFIGURED: "unconfigured", _INACTIVE: "inactive", _ACTIVE: "active", 4: "finalized"}
_RESEND_S = 2.0          # an unanswered request is sent again after this [s]
_RESEND_TRANSITION_S = 15.0   # ... a transition request
_WAIT_LOG_S = 2.0        # log what is awaited after this long, then every _WAIT_LOG_EVERY_S
_WAIT_LOG_EVERY_S = 10.0


class LifecycleManagerNode(Node):
    def __init__(self, node_name: str = "lifecycle_manager", **kwargs):
        super().__init__(node_name, **kwargs)
        from lifecycle_msgs.srv import ChangeState, GetState
        from std_srvs.srv import Trigger

        from o4a_nav.nodes._common import warn_unknown_parameters

        self.params = declare_params(self, LifecycleManagerParams)
        warn_unknown_parameters(self)
        self._ChangeState, self._GetState = ChangeState, GetState
        # wall clock for every timer of the manager: bring-up must not wait for simulated time
        self._wall = Clock(clock_type=ClockType.STEADY_TIME)
        group = ReentrantCallbackGroup()
        self._group = group
        self._change = {n: self.create_client(ChangeState, f"{n}/change_state", callback_group=group)
                        for n in self.params.node_names}
        self._get = {n: self.create_client(GetState, f"{n}/get_state", callback_group=group)
                     for n in self.params.node_names}
        self.state = "unconfigured"     # of the whole set: unconfigured, active, paused, failed
        self.message = ""
        self._expected: dict[str, int] = {}   # node -> the primary state the manager left it in
        self._lost: dict[str, str] = {}       # node -> why it was declared lost
        self._busy = 0                        # sequences running (the heartbeat waits for them)
        self._beating = False
        for name, handler in (("startup", self.startup), ("pause", self.pause), ("resume", self.resume),
                              ("reset", self.reset)):
            self.create_service(Trigger, f"~/{name}", self._trigger(handler), callback_group=group)
        if self.params.autostart:
            # a one-shot timer: the sequence runs as a coroutine in the executor
            self._boot = self.create_timer(0.1, self._autostart, callback_group=group, clock=self._wall)
        else:
            self.get_logger().info(f"autostart false: {', '.join(self.params.node_names)} wait for "
                                   f"~/startup ({self.get_fully_qualified_name()}/startup)")
        self.create_timer(self.params.heartbeat_period, self._heartbeat, callback_group=group, clock=self._wall)
        if self.get_parameter("use_sim_time").value:
            self._clock_since = time.monotonic()
            self._clock_timer = self.create_timer(1.0, self._watch_clock, callback_group=group, clock=self._wall)

    def _trigger(self, handler):
        async def callback(request, response):
            response.success, response.message = await handler()
            return response
        return callback

    async def _autostart(self):
        self.destroy_timer(self._boot)
        ok, msg = await self.startup()
        (self.get_logger().info if ok else self.get_logger().error)(f"autostart: {msg}")

    def _watch_clock(self):
        """use_sim_time: say at INFO that (and why) time stands still until /clock comes."""
        if self.get_clock().now().nanoseconds > 0:
            self.get_logger().info("use_sim_time: /clock received; simulated time runs")
            self.destroy_timer(self._clock_timer)
            return
        waited = time.monotonic() - self._clock_since
        if waited >= _WAIT_LOG_S and (waited - _WAIT_LOG_S) % _WAIT_LOG_EVERY_S < 1.0:
            pubs = self.count_publishers("/clock")
            self.get_logger().info(
                f"use_sim_time: waiting for /clock ({waited:.0f} s; {pubs} publisher(s)): bring-up goes on on the "
                f"wall clock, but the nodes' timers (control loop, status, diagnostics) start with the first "
                f"/clock message (start the simulator or `o4a replay --clock`, or set use_sim_time:=false)")

    # ---------------------------------------------------------------- transitions
    async def _wait_service(self, client, name: str) -> bool:
        start = time.monotonic()
        end = start + self.params.transition_timeout
        next_log = start + _WAIT_LOG_S
        while not client.service_is_ready():
            now = time.monotonic()
            if now > end:
                return False
            if now >= next_log:
                self.get_logger().info(f"waiting for {client.srv_name} ({now - start:.0f} s): is {name} running?")
                next_log = now + _WAIT_LOG_EVERY_S
            await self._sleep(0.1)
        return True

    async def _sleep(self, seconds: float):
        from rclpy.task import Future

        fut = Future()
        await self._wait_any([fut], seconds)

    async def _wait_any(self, futures: list, seconds: float) -> None:
        """Until one of the futures is done or ``seconds`` (wall clock) have passed."""
        from rclpy.task import Future

        wake = Future()

        def wake_up(_=None):
            if not wake.done():
                wake.set_result(None)

        for f in futures:
            f.add_done_callback(wake_up)
        timer = self.create_timer(max(seconds, 0.001), wake_up, callback_group=self._group, clock=self._wall)
        try:
            await wake
        finally:
            self.destroy_timer(timer)

    async def _call(self, client, request, timeout: float, resend: float = _RESEND_S):
        """The first answer to the request, sent again every ``resend`` s while none came;
        None after ``timeout`` s."""
        end = time.monotonic() + timeout
        futures = []
        try:
            while True:
                futures.append(client.call_async(request))
                left = end - time.monotonic()
                await self._wait_any(futures, min(resend, max(left, 0.0)))
                done = next((f for f in futures if f.done()), None)
                if done is not None:
                    return done.result()
                if time.monotonic() >= end:
                    return None
        finally:
            for f in futures:
                if not f.done():
                    f.cancel()

    async def _state(self, name: str, timeout: float | None = None) -> int | None:
        timeout = self.params.transition_timeout if timeout is None else timeout
        if not await self._wait_service(self._get[name], name):
            return None
        res = await self._call(self._get[name], self._GetState.Request(), timeout)
        return None if res is None else res.current_state.id

    async def _transition(self, name: str, transition_id: int, label: str, result: int) -> tuple[bool, str]:
        if not await self._wait_service(self._change[name], name):
            return False, f"{name}: no lifecycle service {self._change[name].srv_name} after " \
                          f"{self.params.transition_timeout:g} s"
        req = self._ChangeState.Request()
        # by label too: rclpy looks a label up in the current state and answers success=false
        # when it does not apply there, while an id that does not apply raises in the node
        # (RCLError "Transition is not registered": the node dies). So a resent request that
        # arrives after the first one made the transition is refused, not fatal.
        req.transition.id, req.transition.label = transition_id, label
        # resent rarely: a transition may take seconds (the navigator loads its model)
        res = await self._call(self._change[name], req, self.params.transition_timeout, resend=_RESEND_TRANSITION_S)
        if res is None:
            return False, f"{name}: {label} did not answer within {self.params.transition_timeout:g} s"
        if not res.success:
            # a resent request refused because the first one already made the transition
            if await self._state(name) == result:
                return True, ""
            return False, f"{name}: {label} failed (see the node's log)"
        return True, ""

    async def _bring(self, names, want: int) -> tuple[bool, str]:
        """Move each node (in order) to the primary state `want` (unconfigured, inactive, active)."""
        from lifecycle_msgs.msg import Transition

        steps = {  # (current, want) -> (transition, label, resulting state)
            (_UNCONFIGURED, _INACTIVE): (Transition.TRANSITION_CONFIGURE, "configure", _INACTIVE),
            (_UNCONFIGURED, _ACTIVE): (Transition.TRANSITION_CONFIGURE, "configure", _INACTIVE),
            (_INACTIVE, _ACTIVE): (Transition.TRANSITION_ACTIVATE, "activate", _ACTIVE),
            (_ACTIVE, _INACTIVE): (Transition.TRANSITION_DEACTIVATE, "deactivate", _INACTIVE),
            (_ACTIVE, _UNCONFIGURED): (Transition.TRANSITION_DEACTIVATE, "deactivate", _INACTIVE),
            (_INACTIVE, _UNCONFIGURED): (Transition.TRANSITION_CLEANUP, "cleanup", _UNCONFIGURED),
        }
        for name in names:
            while True:
                state = await self._state(name)
                if state is None:
                    return False, f"{name}: no lifecycle state (is the node running?)"
                self._expected[name] = state
                if state == want:
                    break
                step = steps.get((state, want))
                if step is None:
                    return False, f"{name}: cannot go from state {_STATE_NAMES.get(state, state)} to " \
                                  f"{_STATE_NAMES.get(want, want)}"
                tid, label, result = step
                ok, msg = await self._transition(name, tid, label, result)
                if not ok:
                    return False, msg
                self._expected[name] = result
        return True, ""

    async def _sequence(self, names, want: int):
        self._busy += 1
        try:
            return await self._bring(names, want)
        finally:
            self._busy -= 1

    async def startup(self) -> tuple[bool, str]:
        names = self.params.node_names
        ok, msg = await self._sequence(names, _INACTIVE)      # configure all, then activate all
        if ok:
            ok, msg = await self._sequence(names, _ACTIVE)
        if ok:
            self._lost.clear()
        self.state, self.message = ("active", "") if ok else ("failed", msg)
        return ok, f"active: {', '.join(names)}" if ok else msg

    async def pause(self) -> tuple[bool, str]:
        ok, msg = await self._sequence(list(reversed(self.params.node_names)), _INACTIVE)
        self.state = "paused" if ok else "failed"
        return ok, "inactive (robot stopped)" if ok else msg

    async def resume(self) -> tuple[bool, str]:
        ok, msg = await self._sequence(self.params.node_names, _ACTIVE)
        self.state = "active" if ok else "failed"
        return ok, "active" if ok else msg

    async def reset(self) -> tuple[bool, str]:
        ok, msg = await self._sequence(list(reversed(self.params.node_names)), _UNCONFIGURED)
        self.state = "unconfigured" if ok else "failed"
        return ok, "unconfigured" if ok else msg

    # ---------------------------------------------------------------- heartbeat
    async def _heartbeat(self):
        """Ask every watched node for its state; report a lost one and make the others safe."""
        if self._beating or self._busy:
            return
        self._beating = True
        try:
            for name in self.params.node_names:
                if self._busy:
                    return
                if name in self._lost:
                    await self._check_back(name)
                    continue
                expected = self._expected.get(name)
                if expected is None:
                    continue
                res = await self._call(self._get[name], self._GetState.Request(), self.params.heartbeat_timeout)
                if self._busy or name not in self._expected:
                    return   # a sequence started meanwhile: it owns the states now
                if res is None:
                    await self._lose(name, f"no heartbeat (no answer to {self._get[name].srv_name} for "
                                           f"{self.params.heartbeat_timeout:g} s): the node died or hangs")
                elif res.current_state.id == _UNCONFIGURED and expected != _UNCONFIGURED:
                    await self._lose(name, f"is unconfigured, was left {_STATE_NAMES.get(expected, expected)}: "
                                           f"it was restarted")
                elif res.current_state.id not in _STATE_NAMES or res.current_state.id == 4:
                    await self._lose(name, f"is {res.current_state.label}")
                else:
                    self._expected[name] = res.current_state.id   # changed through its own services
        finally:
            self._beating = False

    async def _lose(self, name: str, why: str):
        self._lost[name] = why
        self._expected.pop(name, None)
        self.state, self.message = "failed", f"{name}: {why}"
        others = [n for n in reversed(self.params.node_names) if self._expected.get(n) == _ACTIVE]
        self.get_logger().error(f"{name} lost: {why}; "
                                + (f"deactivating {', '.join(others)} (robot stopped)" if others
                                   else "no other node is active"))
        if others:
            ok, msg = await self._sequence(others, _INACTIVE)
            if not ok:
                self.get_logger().error(f"could not bring the others to a safe state: {msg}")

    async def _check_back(self, name: str):
        res = await self._call(self._get[name], self._GetState.Request(), min(self.params.heartbeat_timeout, 1.0))
        if res is None:
            return
        state = _STATE_NAMES.get(res.current_state.id, res.current_state.label)
        if self.params.autostart:
            self.get_logger().info(f"{name} is back ({state}): bringing the nodes up again")
            ok, msg = await self.startup()
            (self.get_logger().info if ok else self.get_logger().error)(f"restart: {msg}")
        else:
            self._lost.pop(name)
            self._expected[name] = res.current_state.id
            self.get_logger().info(f"{name} is back ({state}): call ~/startup to bring the nodes up again")


def main(args=None):
    from o4a_nav.nodes._common import spin_node

    return spin_node(LifecycleManagerNode, args)


if __name__ == "__main__":
    main()
