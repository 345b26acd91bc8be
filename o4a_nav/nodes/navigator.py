"""`navigator` node: the O4A navigator on ROS 2.

Subscribes front_camera/image_raw and rear_camera/image_raw (sensor data QoS; any size;
rgb8, bgr8, mono8, rgba8, bgra8, yuv422/uyvy, yuv422_yuy2/yuyv, bayer_*8), or with the
parameter image_transport:=compressed their image_transport `<topic>/compressed`
sensor_msgs/CompressedImage (JPEG / PNG), scan (sensor data; safety gate), o4a/free_actions and
o4a/motion_state. Serves o4a/set_goal (o4a_msgs/srv/SetGoal) and the o4a/navigate action
(o4a_msgs/action/NavigateToImage: feedback each step, cancel = STOP, result on success,
failure, cancel or pre-emption). Publishes o4a/action (o4a_msgs/DiscreteAction) and
o4a/status (o4a_msgs/NavigatorStatus) on each decision, state change and periodically.

Goals (service and action alike) are decoded and converted to the model input in a worker
thread (a 4000x3000 pair takes 0.1-0.2 s), which then waits up to base_ready_timeout for
the base controller to report ready; the executor meanwhile goes on deciding and publishing
the status. The runtime gets the converted goal, and refuses it while the base reports
that it cannot move (no odometry), with its reason.

All decisions are taken by o4a_nav/nav/runtime.py (stop-and-go, stale inputs, safety
gate) around o4a_nav/nav/navigator.py (the O4A rule). A missing or corrupt model leaves
the node running in state NO_MODEL: it refuses goals with the load error and never
publishes motion.
"""
from __future__ import annotations

import math
import threading
import time
from concurrent.futures import ThreadPoolExecutor

from rclpy.action import ActionServer, CancelResponse, GoalResponse
from rclpy.callback_groups import MutuallyExclusiveCallbackGroup, ReentrantCallbackGroup

from o4a_nav import ros_conv, topics
from o4a_nav.errors import UserError
from o4a_nav.nav import diagnostics as diag
from o4a_nav.nav import runtime as rt
from o4a_nav.nav.collision import CollisionChecker, FootprintParams
from o4a_nav.nav.navigator import NavigatorParams, O4ANavigator
from o4a_nav.nav.node_params import NavigatorNodeParams
from o4a_nav.package_data import resolve_model_path
from o4a_nav.nodes._common import (SENSOR_QOS, ManagedNode, declare_params, now_sec, on_parameter_changes,
                                   read_params, reliable, scan_at, stamp_or)
from o4a_nav.types import Action


class NavigatorNode(ManagedNode):
    """Managed node: configure reads the parameters and loads the model (a missing or
    corrupt one, or no world chosen among several, leaves it configured in NO_MODEL: it
    publishes o4a/status NO_MODEL with the reason and refuses to activate, so no manager
    reports it active), activate starts deciding, publishing and accepting goals,
    deactivate ends the goal with STOP."""

    def __init__(self, node_name: str = "navigator", **kwargs):
        super().__init__(node_name, **kwargs)
        for group in (NavigatorNodeParams, NavigatorParams, rt.RuntimeParams, FootprintParams):
            declare_params(self, group)
        self.lock = threading.RLock()
        self.runtime = None
        self.action_server = None
        self._goals: dict = {}   # goal id -> [future, goal_handle, canceled]
        # goal images are decoded and converted here, one goal at a time in arrival order
        self._goal_worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="navigator-goal")
        self._goal_group = ReentrantCallbackGroup()   # set_goal and navigate: never hold the inputs' group
        self.latencies_ms: list[float] = []
        self._declare_live_parameters()
        self.start()

    def configure(self):
        from o4a_msgs.action import NavigateToImage
        from o4a_msgs.msg import DiscreteAction, FreeActions, MotionState, NavigatorStatus
        from sensor_msgs.msg import CameraInfo, CompressedImage, Image, LaserScan

        setup = read_params(self, NavigatorNodeParams)
        self.model_path = resolve_model_path(setup.model_path)
        self.world = setup.world
        nav_params = read_params(self, NavigatorParams)
        rt_params = read_params(self, rt.RuntimeParams)
        checker = CollisionChecker(read_params(self, FootprintParams))
        self._DiscreteAction, self._NavigatorStatus, self._NavigateToImage = DiscreteAction, NavigatorStatus, NavigateToImage
        navigator, error = self._load(setup.torch_threads, nav_params, setup.allow_unverified_model)
        with self.lock:
            self.runtime = rt.NavigatorRuntime(
                navigator, checker, rt_params, model_error=error,
                publish_action=self._publish_action, publish_status=self._publish_status,
                on_feedback=self._on_feedback, on_goal_done=self._on_goal_done, log=self._log)
            if navigator is None:
                self.runtime.status.stop_threshold = nav_params.stop_threshold
            else:   # framing: the cameras' field of view until (unless) their camera_info arrives
                navigator.cameras = (setup.front_camera_hfov or None, setup.rear_camera_hfov or None)

        inputs = MutuallyExclusiveCallbackGroup()
        self.pub_action = self.pub(DiscreteAction, topics.ACTION, reliable(10))
        self.pub_status = self.pub(NavigatorStatus, topics.STATUS, reliable(10))
        img_type, suffix = (CompressedImage, "/compressed") if setup.image_transport == "compressed" else (Image, "")
        self.sub(img_type, topics.FRONT_IMAGE + suffix, lambda m: self._on_image("front", m), SENSOR_QOS,
                 callback_group=inputs)
        self.sub(img_type, topics.REAR_IMAGE + suffix, lambda m: self._on_image("rear", m), SENSOR_QOS,
                 callback_group=inputs)
        self.sub(CameraInfo, topics.FRONT_CAMERA_INFO, lambda m: self._on_camera_info(0, m), SENSOR_QOS,
                 callback_group=inputs)
        self.sub(CameraInfo, topics.REAR_CAMERA_INFO, lambda m: self._on_camera_info(1, m), SENSOR_QOS,
                 callback_group=inputs)
        self.sub(LaserScan, topics.SCAN, self._on_scan, SENSOR_QOS, callback_group=inputs)
        self.sub(FreeActions, topics.FREE_ACTIONS, self._on_free, reliable(1), callback_group=inputs)
        self.sub(MotionState, topics.MOTION_STATE, self._on_motion, reliable(10), callback_group=inputs)
        self.timer(0.1, self._tick, callback_group=inputs)
        # NO_MODEL is said while inactive too: a client sees why nothing will navigate
        self.timer(1.0 / setup.status_rate,
                   lambda: (self.active or self.runtime.nav is None) and self._publish_status(self.runtime.status),
                   callback_group=inputs)
        self.diagnostics(self._diagnostics)

    def activate(self):
        """Goals are served from the first activation on (o4a/set_goal and o4a/navigate
        appear then, so a client waiting for them finds an active navigator); while
        inactive they are refused."""
        from o4a_msgs.srv import SetGoal

        if self.runtime.nav is None:
            self._publish_status(self.runtime.status)
            raise UserError(f"navigator: cannot navigate without a usable model (NO_MODEL): "
                            f"{self.runtime.model_error}")
        if self.action_server is None:
            self.service(SetGoal, topics.SET_GOAL, self._on_set_goal, callback_group=self._goal_group)
            self.action_server = ActionServer(
                self, self._NavigateToImage, topics.NAVIGATE, execute_callback=self._execute,
                goal_callback=lambda req: GoalResponse.ACCEPT if self.active else GoalResponse.REJECT,
                cancel_callback=self._on_cancel, callback_group=self._goal_group)

            def destroy(server):
                server.destroy()
                self.action_server = None

            self._keep(self.action_server, destroy)
        self._publish_status(self.runtime.status)

    def _diagnostics(self):
        with self.lock:
            r = self.runtime
            stamps = {name: inp.stamp for name, inp in r.inputs.items()}
            return [diag.lifecycle(self.active),
                    diag.model(self.model_path, r.nav.world if r.nav else self.world, r.model_error),
                    diag.input_freshness(stamps, now_sec(self), r.params.stale_timeout, required=r.active),
                    diag.latency(self.latencies_ms),
                    diag.Diagnostic("navigation", diag.ERROR if r.nav is None else diag.OK, r.status.state_text, {
                        "state": r.status.state_text, "step": str(r.status.step),
                        "goal distance d_h": f"{r.status.goal_distance:.3f}", "message": r.status.message})]

    def deactivate(self):
        """End the goal (its result says why) and publish STOP if the robot was driven."""
        self._end_goals("navigator deactivated")

    def _declare_live_parameters(self):
        def current(cls, of_runtime):
            return lambda: of_runtime() if self.runtime is not None else read_params(self, cls)

        def set_nav(params, changes):
            with self.lock:
                if self.runtime is None:
                    return
                if self.runtime.nav is not None:
                    self.runtime.nav.params = params
                    if "max_steps" in changes:
                        self.runtime.default_max_steps = params.max_steps
                self.runtime.status.stop_threshold = params.stop_threshold

        def set_rt(params, _changes):
            with self.lock:
                if self.runtime is not None:
                    self.runtime.params = params

        def set_footprint(params, _changes):
            with self.lock:
                if self.runtime is not None:
                    self.runtime.checker = CollisionChecker(params)

        on_parameter_changes(self, [
            (current(NavigatorParams, lambda: self.runtime.nav.params if self.runtime.nav
                     else read_params(self, NavigatorParams)), set_nav),
            (current(rt.RuntimeParams, lambda: self.runtime.params), set_rt),
            (current(FootprintParams, lambda: self.runtime.checker.params), set_footprint)])

    # ------------------------------------------------------------------ model
    def _load(self, threads: int, params: NavigatorParams, allow_unverified: bool = False):
        try:
            import numpy as np
            import torch

            from o4a_nav.learning.model_io import load_model

            torch.set_num_threads(int(threads))
            model = load_model(self.model_path)
            if model.integrity_warning and not allow_unverified:
                raise UserError(f"model refused: {model.integrity_warning}; to drive with it anyway set "
                                f"allow_unverified_model true")
            if model.integrity_warning:
                self.get_logger().warning(f"{model.integrity_warning} (loaded: allow_unverified_model is true)")
            nav = O4ANavigator(model, self.world or None, params)
            z = np.zeros((96, 96, 3), np.uint8)
            model.embed(z, z)  # warm-up: the first call allocates
            self.get_logger().info(f"model {self.model_path} loaded (world {nav.world}); "
                                   f"stop_threshold {params.stop_threshold}, memory {params.memory_size}, "
                                   f"m_r {params.repulsion_margin}")
            return nav, ""
        except UserError as exc:
            msg = str(exc)
        except Exception as exc:  # a corrupt model must not crash-loop the node
            msg = f"cannot load model {self.model_path}: {type(exc).__name__}: {exc}"
        self.get_logger().error(f"{msg}. The navigator stays configured in NO_MODEL, refuses goals and does not "
                                f"activate; fix model_path / world (launch arguments model_path:=DIR world:=NAME) "
                                f"and restart it.")
        return None, msg

    # ------------------------------------------------------------------ outputs
    def _log(self, level: str, text: str):
        # rclpy loggers refuse one call site with changing severities: one call per level
        if level == "error":
            self.get_logger().error(text)
        elif level == "warn":
            self.get_logger().warning(text)
        else:
            self.get_logger().info(text)

    def _publish_action(self, action: Action, seq: int):
        msg = self._DiscreteAction()
        ros_conv.fill_header(msg.header, now_sec(self), topics.BASE_FRAME)
        msg.action, msg.sequence = int(action), int(seq)
        self.pub_action.publish(msg)

    def _publish_status(self, st: rt.Status):
        msg = self._NavigatorStatus()
        ros_conv.fill_header(msg.header, now_sec(self), topics.BASE_FRAME)
        msg.state, msg.state_text = int(st.state), st.state_text
        msg.stale_inputs = list(st.stale_inputs)
        msg.goal_distance = float(st.goal_distance)
        msg.stop_threshold = float(st.stop_threshold)
        msg.candidate_actions = [int(c.action) for c in st.candidates]
        msg.candidate_potentials = [float(c.potential) for c in st.candidates]
        msg.candidate_attraction = [float(c.attraction) for c in st.candidates]
        msg.candidate_repulsion = [float(c.repulsion) for c in st.candidates]
        msg.chosen_action = int(st.chosen_action)
        msg.step, msg.forwards, msg.rotations = int(st.step), int(st.forwards), int(st.rotations)
        msg.decision_latency_ms = float(st.decision_latency_ms)
        msg.message = st.message
        self.pub_status.publish(msg)

    def _on_feedback(self, gid, st: rt.Status):
        if math.isfinite(st.decision_latency_ms):
            self.latencies_ms.append(st.decision_latency_ms)
        entry = self._goals.get(gid)
        if entry is None:
            return
        fb = self._NavigateToImage.Feedback()
        fb.step, fb.goal_distance = int(st.step), float(st.goal_distance)
        fb.last_action, fb.state = int(st.chosen_action), int(st.state)
        entry[1].publish_feedback(fb)

    def _on_goal_done(self, gid, result: rt.GoalResult):
        entry = self._goals.get(gid)
        if entry is not None and not entry[0].done():
            entry[0].set_result(result)

    # ------------------------------------------------------------------ inputs
    def _on_image(self, which: str, msg):
        if not self.active:
            return
        arrival = time.perf_counter()
        now = now_sec(self)
        try:
            img = ros_conv.image_msg_to_rgb(msg)   # the core converts it to the model input
        except UserError as exc:
            self.get_logger().error(f"{which} image ignored: {exc}", throttle_duration_sec=5.0)
            with self.lock:
                self.runtime.on_image_error(which, str(exc), now)
            return
        with self.lock:
            self.runtime.on_image(which, img, stamp_or(ros_conv.stamp_to_sec(msg.header.stamp), now), now, arrival)

    def _on_camera_info(self, k: int, msg):
        """A camera's intrinsics frame its images from now on (image_conv.to_model_input in
        the core, as in training); they take the place of the *_camera_hfov parameter."""
        which = ("front", "rear")[k]
        try:
            view = ros_conv.camera_info_to_view(msg)
        except UserError as exc:
            self.get_logger().warning(f"{which} camera_info ignored (framing: the *_camera_hfov parameter, else "
                                      f"the centred square): {exc}", throttle_duration_sec=30.0)
            return
        with self.lock:
            nav = self.runtime.nav if self.runtime is not None else None
            if nav is None or nav.cameras[k] == view:
                return
            cams = list(nav.cameras)
            cams[k] = view
            nav.cameras = tuple(cams)
        self.get_logger().info(f"{which} camera framed with its camera_info: {view.width}x{view.height}, "
                               f"{view.hfov_deg:.1f} deg wide, cropped to the model's 90 deg square")

    def _on_scan(self, msg):
        if not self.active:
            return
        now = now_sec(self)
        scan = scan_at(msg, now)
        with self.lock:
            self.runtime.on_scan(scan, now)

    def _on_free(self, msg):
        if not self.active:
            return
        now = now_sec(self)
        free = {a for a, ok in ((Action.FORWARD, msg.forward), (Action.ROTATE_LEFT, msg.rotate_left),
                                (Action.ROTATE_RIGHT, msg.rotate_right)) if ok}
        with self.lock:
            self.runtime.on_free_actions(free, stamp_or(ros_conv.stamp_to_sec(msg.header.stamp), now), now)

    def _on_motion(self, msg):
        if not self.active:
            return
        now = now_sec(self)
        with self.lock:
            self.runtime.on_motion_state(int(msg.sequence), int(msg.state),
                                         stamp_or(ros_conv.stamp_to_sec(msg.header.stamp), now), msg.message, now)

    def _tick(self):
        if not self.active:
            return
        with self.lock:
            self.runtime.tick(now_sec(self))

    # ------------------------------------------------------------------ goals
    def _prepare_goal(self, front_msg, rear_msg):
        """Worker thread: (front, rear) converted to the model input, or the UserError's
        text; then wait up to base_ready_timeout (wall clock) for the base to be ready."""
        try:
            nav = self.runtime.nav
            goal = O4ANavigator.prepare_goal(ros_conv.image_msg_to_rgb(front_msg), ros_conv.image_msg_to_rgb(rear_msg),
                                             cameras=nav.cameras if nav is not None else (None, None))
        except UserError as exc:
            return None, f"goal rejected: {exc}"
        deadline = time.monotonic() + self.runtime.params.base_ready_timeout
        while self.active and time.monotonic() < deadline:
            with self.lock:
                if not self.runtime.base_problem(now_sec(self)):
                    break
            time.sleep(0.02)
        return goal, ""

    async def _set_goal(self, front_msg, rear_msg, gid=None, max_steps: int = 0) -> tuple[bool, str]:
        """A coroutine: the conversion runs in the worker thread while the executor goes on."""
        from rclpy.task import Future

        if not self.active:
            return False, "navigator inactive (lifecycle): activate it first"
        done, executor = Future(), self.executor

        def work():
            try:
                result = self._prepare_goal(front_msg, rear_msg)
            except Exception as exc:   # a failing conversion refuses the goal, never kills the node
                result = None, f"goal rejected: {type(exc).__name__}: {exc}"
            done.set_result(result)
            if executor is not None:
                executor.wake()   # resume the waiting coroutine now, not at the next event

        self._goal_worker.submit(work)
        goal, error = await done
        if error:
            return False, error
        if not self.active:
            return False, "navigator inactive (lifecycle): activate it first"
        with self.lock:
            if self.runtime.nav is None:
                return False, f"navigator has no usable model: {self.runtime.model_error}"
            return self.runtime.set_goal(*goal, now_sec(self), goal_id=gid, max_steps=max_steps)

    async def _on_set_goal(self, request, response):
        response.accepted, response.message = await self._set_goal(request.front, request.rear)
        self._log("info" if response.accepted else "warn", f"{topics.SET_GOAL}: {response.message}")
        return response

    def _on_cancel(self, goal_handle):
        """Cancel = STOP: the runtime ends the goal, which completes the execute coroutine."""
        gid = bytes(goal_handle.goal_id.uuid)
        entry = self._goals.get(gid)
        if entry is not None:
            entry[2] = True
            with self.lock:
                self.runtime.cancel(gid, "canceled")
        return CancelResponse.ACCEPT

    async def _execute(self, goal_handle):
        """A coroutine (no thread blocked while the robot drives): works with single- and
        multi-threaded executors alike."""
        from rclpy.task import Future

        Result = self._NavigateToImage.Result
        gid = bytes(goal_handle.goal_id.uuid)
        entry = [Future(), goal_handle, False]
        self._goals[gid] = entry
        req = goal_handle.request
        ok, msg = await self._set_goal(req.front, req.rear, gid, int(req.max_steps))
        if ok and entry[2]:   # canceled while its images were converted
            with self.lock:
                self.runtime.cancel(gid, "canceled")
        if not ok:
            self._goals.pop(gid, None)
            self.get_logger().warning(f"{topics.NAVIGATE}: {msg}")
            goal_handle.abort()
            return Result(success=False, reason=msg)
        res: rt.GoalResult = await entry[0]
        self._goals.pop(gid, None)
        out = Result(success=bool(res.success), reason=res.reason, steps=int(res.steps), forwards=int(res.forwards),
                     rotations=int(res.rotations), final_goal_distance=float(res.final_goal_distance))
        if entry[2] and goal_handle.is_cancel_requested:
            goal_handle.canceled()
        elif res.success:
            goal_handle.succeed()
        else:
            goal_handle.abort()
        return out

    def _end_goals(self, reason: str):
        """End the running goal (STOP published, result with the reason) and any other open one."""
        with self.lock:
            try:
                if self.runtime is not None:
                    self.runtime.cancel(None, reason)
            except Exception:  # context already shut down: nothing can be published any more
                pass
            for entry in list(self._goals.values()):
                if not entry[0].done():
                    entry[0].set_result(rt.GoalResult(False, reason))

    def shutdown(self):
        self._end_goals("navigator shutting down")
        self._goal_worker.shutdown(wait=False, cancel_futures=True)
        self._destroy_entities()


def main(args=None):
    from o4a_nav.nodes._common import spin_node

    return spin_node(NavigatorNode, args)


if __name__ == "__main__":
    main()
