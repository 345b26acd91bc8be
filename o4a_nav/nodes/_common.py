"""Helpers shared by the navigation nodes: QoS profiles, parameters declared from their
specs (o4a_nav/params.py), clock, parameter overrides from YAML files."""
from __future__ import annotations

import contextlib

from rcl_interfaces.msg import FloatingPointRange, IntegerRange, ParameterDescriptor
from rclpy.exceptions import InvalidParameterTypeException, InvalidParameterValueException
from rclpy.lifecycle import LifecycleNode, TransitionCallbackReturn
from rclpy.parameter import Parameter
from rclpy.qos import (DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy,
                       qos_profile_sensor_data)

from o4a_nav import ros_conv
from o4a_nav.errors import UserError
from o4a_nav.params import Spec, node_parameters, specs

SENSOR_QOS = qos_profile_sensor_data  # best effort, keep last 5


def reliable(depth: int = 10, latched: bool = False) -> QoSProfile:
    return QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=depth, reliability=ReliabilityPolicy.RELIABLE,
                      durability=DurabilityPolicy.TRANSIENT_LOCAL if latched else DurabilityPolicy.VOLATILE)


def _descriptor(default, spec: Spec, read_only: bool) -> ParameterDescriptor:
    desc = ParameterDescriptor(description=spec.description, read_only=read_only)
    if spec.read_only:
        desc.additional_constraints = "read at start-up only: restart the node to change it"
    if spec.range is not None and not isinstance(default, bool):
        lo, hi = spec.range
        if isinstance(default, int):
            desc.integer_range = [IntegerRange(from_value=int(lo), to_value=int(hi), step=0)]
        elif isinstance(default, float):
            desc.floating_point_range = [FloatingPointRange(from_value=float(lo), to_value=float(hi), step=0.0)]
    return desc


def _declare_one(node, name: str, default, spec: Spec):
    """Declare one parameter with its descriptor; returns its value. An empty-list default
    (no ROS type of its own) is declared as a double array holding [] so that it is
    listed, read and dumped like every other parameter."""
    try:
        if isinstance(default, list) and not default:
            node.declare_parameter(name, Parameter.Type.DOUBLE_ARRAY, _descriptor(default, spec, False))
            if node.get_parameter_or(name).type_ == Parameter.Type.NOT_SET:
                node.set_parameters([Parameter(name, Parameter.Type.DOUBLE_ARRAY, [])])
            if spec.read_only:
                desc = _descriptor(default, spec, True)
                desc.type = Parameter.Type.DOUBLE_ARRAY.value
                node.set_descriptor(name, desc)
        else:
            node.declare_parameter(name, default, _descriptor(default, spec, spec.read_only))
    except InvalidParameterTypeException as exc:
        hint = " (write floats with a decimal point, e.g. 2.0)" if isinstance(default, (float, list)) else ""
        raise UserError(f"node {node.get_name()}: parameter {name} has the wrong type: {exc}{hint}") from None
    except InvalidParameterValueException as exc:
        raise UserError(f"node {node.get_name()}: parameter {name}: {exc}") from None
    value = node.get_parameter(name).value
    return list(value) if isinstance(default, list) else value


def declare_params(node, cls):
    """Declare every field of a Params class (o4a_nav/params.py) with its description,
    range and read-only flag, and return the instance built from the node's values (its
    validation errors are UserErrors naming the node)."""
    for name, (default, spec) in specs(cls).items():
        _declare_one(node, name, default, spec)
    return read_params(node, cls)


def read_params(node, cls):
    """The Params instance from the node's current (declared) parameter values."""
    values = {}
    for name, (default, _) in specs(cls).items():
        v = node.get_parameter(name).value
        values[name] = list(v) if isinstance(default, list) else v
    try:
        return cls(**values)
    except UserError as exc:
        raise UserError(f"node {node.get_name()}: {exc}") from None


def tf_publisher(node, static: bool, create=None):
    """A tf2_msgs/TFMessage publisher on /tf, or with ``static`` on /tf_static (reliable,
    transient local, depth 1: one message holding all of the node's static transforms, as
    tf2_ros' StaticTransformBroadcaster keeps it); ``create`` = ManagedNode.pub in configure."""
    from tf2_msgs.msg import TFMessage

    from o4a_nav import topics

    qos = reliable(1, latched=True) if static else reliable(100)
    return (create or node.create_publisher)(TFMessage, topics.TF_STATIC if static else topics.TF, qos)


def publish_tf(pub, transforms, stamp: float) -> None:
    """o4a_nav.frames.Transforms, stamped ``stamp`` [s], as one TFMessage."""
    from tf2_msgs.msg import TFMessage

    pub.publish(TFMessage(transforms=[ros_conv.transform_msg(t, stamp) for t in transforms]))


class LaserMountCheck:
    """The laser mount from /tf_static against the footprint parameters laser_x/y/yaw.

    Subscribes /tf_static (transient local: mounts latched before the node started) and
    keeps every distinct pose of ``laser_frame`` in ``base_frame`` that the transforms
    heard so far give (a robot description and our parameters may both publish it).
    ``error`` is '' while none is known or all agree with the parameters, else the
    disagreement (o4a_nav.frames.laser_mount_disagreement); ``on_change(error)`` is called
    when it changes. ``forget(t)`` drops a pose this node published itself and replaces."""

    def __init__(self, node, params_getter, base_frame: str, on_change, create=None):
        from tf2_msgs.msg import TFMessage

        from o4a_nav import topics
        from o4a_nav.frames import TransformTree

        self._params, self._base, self._on_change = params_getter, base_frame, on_change
        self.tree = TransformTree()
        self.seen: list = []       # distinct laser poses in the base frame
        self.error = ""
        (create or node.create_subscription)(TFMessage, topics.TF_STATIC, self._on_tf, reliable(100, latched=True))

    @property
    def from_tf(self):
        """The newest laser pose TF gave (None: none yet)."""
        return self.seen[-1] if self.seen else None

    def _on_tf(self, msg):
        for t in msg.transforms:
            self.tree.add(ros_conv.transform_from_msg(t))
        p = self._params()
        t = self.tree.lookup(self._base, p.laser_frame)
        if t is not None and t not in self.seen:
            self.seen.append(t)
        self.recheck()

    def forget(self, t) -> None:
        if t in self.seen:
            self.seen.remove(t)

    def recheck(self) -> str:
        from o4a_nav.frames import laser_mount_disagreement

        p = self._params()
        errors = [e for e in (laser_mount_disagreement(t, p.laser_x, p.laser_y, p.laser_yaw) for t in self.seen
                              if t.child == p.laser_frame) if e]
        error = errors[0] if errors else ""
        if error != self.error:
            self.error = error
            self._on_change(error)
        return error


def warn_unknown_parameters(node) -> list[str]:
    """Log a WARN for each parameter given to the node (parameter file, launch, -p) that no
    o4a_nav node declares, naming the closest real parameter (ROS ignores such keys
    silently: a misspelt `stop_treshold` would leave the default in force). Keys of other
    o4a_nav nodes are not reported (a `/**` section reaches every node). Returns the
    warnings."""
    from o4a_nav.nav.node_params import NODE_PARAMS
    from o4a_nav.params import misspelt

    own = set(node._parameters)    # declared by this node, rclpy's own (use_sim_time, ...) included
    known = own | {n for groups in NODE_PARAMS.values() for cls in groups for n in specs(cls)}
    given = set(getattr(node, "_parameter_overrides", {}))   # rclpy: every override the node was given
    lines = []
    for key, close in misspelt(sorted(given - own), known):
        hint = f": did you mean {close}?" if close else ""
        lines.append(f"parameter {key!r} is not a parameter of {node.get_name()} or any o4a_nav node and is "
                     f"ignored{hint}")
        node.get_logger().warning(lines[-1])
    return lines


class ManagedNode(LifecycleNode):
    """A managed (lifecycle) node of the navigation stack, as Nav2's are:

    - configure: ``configure()`` reads the parameters, builds the core objects (loads the
      model) and creates publishers, subscriptions, timers and services (through ``pub``,
      ``sub``, ``timer``, ``service`` so that cleanup can destroy them);
    - activate: ``active`` becomes true (callbacks act and publish only while active),
      then ``activate()``, which may refuse (UserError: the node stays inactive);
    - deactivate: ``deactivate()`` leaves the robot standing, then ``active`` is false;
    - cleanup / shutdown: the entities are destroyed.

    With the read-only parameter ``autostart`` (default true: `ros2 run`, `o4a bringup`
    without a manager, tests) the node configures and activates itself at construction;
    a launch file sets it false and starts the lifecycle_manager node instead. A failed
    configure or a refused activate raises UserError when autostarting (one clear line,
    exit status 2)."""

    def __init__(self, node_name: str, **kwargs):
        super().__init__(node_name, **kwargs)
        self.active = False
        self.configure_error = ""
        self.activate_error = ""
        self._entities: list = []

    def start(self) -> None:
        """Configure and activate unless the autostart parameter is false."""
        from o4a_nav.nav.node_params import LifecycleNodeParams

        autostart = declare_params(self, LifecycleNodeParams).autostart
        warn_unknown_parameters(self)
        if not autostart:
            self.get_logger().info("unconfigured: waiting for the lifecycle_manager to configure and activate "
                                   "this node (launch files; `o4a bringup`)")
            return
        if self.trigger_configure() != TransitionCallbackReturn.SUCCESS:
            raise UserError(self.configure_error or f"node {self.get_name()}: configure failed")
        if self.trigger_activate() != TransitionCallbackReturn.SUCCESS:
            raise UserError(self.activate_error or f"node {self.get_name()}: activate failed")

    # entities created in configure, destroyed in cleanup
    def pub(self, *args, **kwargs):
        return self._keep(self.create_publisher(*args, **kwargs), self.destroy_publisher)

    def sub(self, *args, **kwargs):
        return self._keep(self.create_subscription(*args, **kwargs), self.destroy_subscription)

    def timer(self, *args, **kwargs):
        return self._keep(self.create_timer(*args, **kwargs), self.destroy_timer)

    def service(self, *args, **kwargs):
        return self._keep(self.create_service(*args, **kwargs), self.destroy_service)

    def diagnostics(self, build, period: float = 1.0):
        """Publish build() -> [o4a_nav.nav.diagnostics.Diagnostic] on /diagnostics
        (diagnostic_msgs/DiagnosticArray) every ``period`` seconds, names prefixed with this
        node's full name; call in configure."""
        from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue

        pub = self.pub(DiagnosticArray, "/diagnostics", reliable(10))
        prefix = self.get_fully_qualified_name().lstrip("/")

        def tick():
            arr = DiagnosticArray()
            arr.header.stamp = self.get_clock().now().to_msg()
            for d in build():
                st = DiagnosticStatus(level=bytes([d.level]), name=f"{prefix}: {d.name}", message=d.message,
                                      hardware_id=prefix)
                st.values = [KeyValue(key=str(k), value=str(v)) for k, v in d.values.items()]
                arr.status.append(st)
            pub.publish(arr)

        self.timer(period, tick)

    def _keep(self, entity, destroy):
        self._entities.append((entity, destroy))
        return entity

    def _destroy_entities(self):
        while self._entities:
            entity, destroy = self._entities.pop()
            destroy(entity)

    def configure(self) -> None:
        raise NotImplementedError

    def activate(self) -> None:
        pass

    def deactivate(self) -> None:
        pass

    def on_configure(self, state) -> TransitionCallbackReturn:
        try:
            self.configure()
        except UserError as exc:
            self.configure_error = str(exc)
            self.get_logger().error(f"configure failed: {exc}")
            self._destroy_entities()
            return TransitionCallbackReturn.FAILURE
        return TransitionCallbackReturn.SUCCESS

    def on_activate(self, state) -> TransitionCallbackReturn:
        """activate() may refuse with a UserError (a node that cannot do its job must not
        report active): the node stays inactive and the error is logged."""
        self.active = True
        try:
            self.activate()
        except UserError as exc:
            self.active = False
            self.activate_error = str(exc)
            self.get_logger().error(f"activate refused: {exc}")
            return TransitionCallbackReturn.FAILURE
        self.activate_error = ""
        return TransitionCallbackReturn.SUCCESS

    def on_deactivate(self, state) -> TransitionCallbackReturn:
        self.deactivate()
        self.active = False
        return TransitionCallbackReturn.SUCCESS

    def on_cleanup(self, state) -> TransitionCallbackReturn:
        self._destroy_entities()
        return TransitionCallbackReturn.SUCCESS

    def on_shutdown(self, state) -> TransitionCallbackReturn:
        if self.active:
            self.on_deactivate(state)
        self._destroy_entities()
        return TransitionCallbackReturn.SUCCESS

    def on_error(self, state) -> TransitionCallbackReturn:
        self.active = False
        return TransitionCallbackReturn.SUCCESS


def now_sec(node) -> float:
    return node.get_clock().now().nanoseconds * 1e-9


def stamp_or(stamp_sec: float, fallback: float) -> float:
    """Header stamp, or the arrival time when the publisher left the stamp at zero."""
    return stamp_sec if stamp_sec > 0.0 else fallback


def scan_at(msg, now: float):
    """LaserScan -> ScanData, stamped with the arrival time `now` when the driver left the
    header stamp at zero."""
    scan = ros_conv.scan_msg_to_data(msg)
    scan.stamp = stamp_or(scan.stamp, now)
    return scan


def node_overrides(files: list, node_name: str, extra: dict | None = None, namespace: str = "") -> list[Parameter]:
    """rclpy Parameter overrides for one node from YAML files (o4a_nav.params.node_parameters)."""
    return [Parameter(k, value=v) for k, v in node_parameters(files, node_name, extra, namespace).items()]



def spin_node(node_cls, args=None, **kwargs) -> int:
    """Console-script main: init, build the node (bad parameters: one clear error line,
    exit status 2), spin it until Ctrl-C, shut down cleanly.

    A SingleThreadedExecutor in the main thread: every callback runs in the thread that
    built the node, which thread-bound resources need (the simulator's OpenGL context
    renders only in the thread that created it), and the nodes need no more (the
    navigator's action runs as a coroutine)."""
    import sys

    import rclpy
    from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor

    rclpy.init(args=args)
    node = None
    try:
        try:
            node = node_cls(**kwargs)
        except UserError as exc:
            print(f"[{node_cls.__name__}] error: {exc}", file=sys.stderr)
            return 2
        executor = SingleThreadedExecutor()
        executor.add_node(node)
        try:
            executor.spin()
        except (KeyboardInterrupt, ExternalShutdownException):
            pass
        except Exception:
            if node.context.ok():
                raise
            # a timer callback raced Ctrl-C's shutdown of the context (it published on the
            # invalidated context): that is the clean stop asked for, not a crash (exit 0
            # and no traceback; launch respawns a node on any exit until launch itself has
            # seen the Ctrl-C, so this does not decide respawning: see docs/RUNTIME.md)
        finally:
            executor.shutdown()
        return 0
    finally:
        if node is not None:
            shutdown = getattr(node, "shutdown", None)
            if shutdown is not None:
                try:
                    shutdown()
                except Exception:
                    if node.context.ok():
                        raise
                    # the context is gone: nothing can be published any more
            node.destroy_node()
        if rclpy.ok():
            rclpy.shutdown()


def on_parameter_changes(node, groups: list[tuple]):
    """Apply `ros2 param set` at run time. groups: [(current() -> Params instance,
    apply(new instance, {changed name: value}))]: the changed fields of each group are validated by building a new
    instance (dataclasses.replace); only when every group accepts are they applied, so a
    rejected set changes nothing. Read-only (start-up) parameters are refused by rclpy
    from their descriptors before this runs."""
    import dataclasses

    from rcl_interfaces.msg import SetParametersResult

    def callback(params):
        changes = {p.name: p.value for p in params}
        commits = []
        try:
            for current, apply in groups:
                cur = current()
                mine = {k: v for k, v in changes.items() if k in specs(type(cur))}
                if mine:
                    commits.append((apply, dataclasses.replace(cur, **mine), mine))
        except UserError as exc:
            return SetParametersResult(successful=False, reason=str(exc))
        except (TypeError, ValueError) as exc:
            return SetParametersResult(successful=False, reason=f"invalid value: {exc}")
        for apply, new, mine in commits:
            apply(new, mine)
        if commits:
            node.get_logger().info(f"parameters changed: {changes}")
        return SetParametersResult(successful=True)

    node.add_on_set_parameters_callback(callback)


@contextlib.contextmanager
def stop_on_signals():
    """SIGINT and SIGTERM set the yielded threading.Event instead of interrupting (the
    commands' way to end a loop cleanly; pair with rclpy.init(signal_handler_options=
    SignalHandlerOptions.NO)); the previous handlers are restored on exit."""
    import signal
    import threading

    stop = threading.Event()
    old = {s: signal.signal(s, lambda signum, frame: stop.set()) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield stop
    finally:
        for s, h in old.items():
            signal.signal(s, h)
