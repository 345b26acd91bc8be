"""Helpers shared by the navigation nodes: QoS profiles, parameters declared with
descriptions and ranges (from the core dataclasses), clock, YAML parameter files."""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from pathlib import Path

from rcl_interfaces.msg import FloatingPointRange, IntegerRange, ParameterDescriptor
from rclpy.exceptions import InvalidParameterTypeException, InvalidParameterValueException
from rclpy.parameter import Parameter
from rclpy.qos import (DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy,
                       qos_profile_sensor_data)

from o4a_nav.errors import UserError

SENSOR_QOS = qos_profile_sensor_data  # best effort, keep last 5


def reliable(depth: int = 10, latched: bool = False) -> QoSProfile:
    return QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=depth, reliability=ReliabilityPolicy.RELIABLE,
                      durability=DurabilityPolicy.TRANSIENT_LOCAL if latched else DurabilityPolicy.VOLATILE)


@dataclass
class P:
    """One parameter: description and optional (min, max) range."""

    description: str
    range: tuple | None = None
    read_only: bool = False


def declare(node, name: str, default, spec: P):
    """Declare one parameter with a descriptor and return its value. Bad values (wrong
    type, out of range) raise UserError naming the node and parameter."""
    desc = ParameterDescriptor(description=spec.description, read_only=spec.read_only)
    if spec.range is not None:
        lo, hi = spec.range
        if isinstance(default, bool):
            pass
        elif isinstance(default, int):
            desc.integer_range = [IntegerRange(from_value=int(lo), to_value=int(hi), step=0)]
        elif isinstance(default, float):
            desc.floating_point_range = [FloatingPointRange(from_value=float(lo), to_value=float(hi), step=0.0)]
    try:
        if isinstance(default, list) and not default:
            node.declare_parameter(name, Parameter.Type.DOUBLE_ARRAY, desc)
            p = node.get_parameter_or(name, Parameter(name, Parameter.Type.DOUBLE_ARRAY, []))
            value = p.value if p.type_ != Parameter.Type.NOT_SET else []
            return list(value or [])
        node.declare_parameter(name, default, desc)
    except InvalidParameterTypeException as exc:
        hint = " (write floats with a decimal point, e.g. 2.0)" if isinstance(default, float) else ""
        raise UserError(f"node {node.get_name()}: parameter {name} has the wrong type: {exc}{hint}") from None
    except InvalidParameterValueException as exc:
        raise UserError(f"node {node.get_name()}: parameter {name}: {exc}") from None
    value = node.get_parameter(name).value
    if isinstance(default, list):
        return list(value)
    return value


def declare_dataclass(node, obj, specs: dict[str, P], prefix: str = "") -> dict:
    """Declare every field of a parameter dataclass instance (its values are the defaults)
    with the given specs; returns {field: value} for Params.from_dict."""
    out = {}
    for f in dataclasses.fields(obj):
        if f.name not in specs:
            continue
        out[f.name] = declare(node, prefix + f.name, getattr(obj, f.name), specs[f.name])
    return out


def now_sec(node) -> float:
    return node.get_clock().now().nanoseconds * 1e-9


def stamp_or(stamp_sec: float, fallback: float) -> float:
    """Header stamp, or the arrival time when the publisher left the stamp at zero."""
    return stamp_sec if stamp_sec > 0.0 else fallback


# ---------------------------------------------------------------- YAML parameter files
def load_param_file(path) -> dict[str, dict]:
    """ROS 2 parameter YAML -> {node_name: {param: value}} (the `/**` section merged into
    each node, node sections win). Raises UserError for unreadable or malformed files."""
    import yaml

    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text())
    except OSError as exc:
        raise UserError(f"parameter file {path}: cannot read ({exc.strerror})") from None
    except yaml.YAMLError as exc:
        raise UserError(f"parameter file {path}: invalid YAML ({exc})") from None
    if not isinstance(data, dict):
        raise UserError(f"parameter file {path}: expected a mapping of node names")
    out: dict[str, dict] = {}
    for key, section in data.items():
        if not isinstance(section, dict) or "ros__parameters" not in section:
            raise UserError(f"parameter file {path}: section {key!r} has no ros__parameters")
        params = section["ros__parameters"] or {}
        if not isinstance(params, dict):
            raise UserError(f"parameter file {path}: {key}.ros__parameters must be a mapping")
        out[str(key).lstrip("/")] = dict(params)
    return out


def node_overrides(files: list, node_name: str, extra: dict | None = None) -> list[Parameter]:
    """rclpy Parameter overrides for one node from YAML files (later files win)."""
    merged: dict = {}
    for f in files:
        sections = load_param_file(f)
        merged.update(sections.get("**", {}))
        merged.update(sections.get(node_name, {}))
    merged.update(extra or {})
    # an empty list has no ROS parameter type; leaving it out keeps the declared default
    return [Parameter(k, value=v) for k, v in merged.items() if not (isinstance(v, list) and not v)]


def finite_or_nan(x) -> float:
    try:
        x = float(x)
    except (TypeError, ValueError):
        return math.nan
    return x


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
        finally:
            executor.shutdown()
        return 0
    finally:
        if node is not None:
            shutdown = getattr(node, "shutdown", None)
            if shutdown is not None:
                shutdown()
            node.destroy_node()
        if rclpy.ok():
            rclpy.shutdown()


def on_parameter_changes(node, groups: dict, restart_only: set | frozenset = frozenset()):
    """Apply `ros2 param set` at run time. groups: {frozenset(names): build(changes) ->
    commit()}; `build` validates (raising UserError) and returns a function that applies
    the change, so that a rejected set changes nothing. Names in `restart_only` are
    refused with a message saying that they need a restart."""
    from rcl_interfaces.msg import SetParametersResult

    def callback(params):
        changes = {p.name: p.value for p in params}
        late = sorted(set(changes) & set(restart_only))
        if late:
            return SetParametersResult(successful=False,
                                       reason=f"{', '.join(late)}: read at start-up only; restart the node to change")
        commits = []
        try:
            for names, build in groups.items():
                mine = {k: v for k, v in changes.items() if k in names}
                if mine:
                    commits.append(build(mine))
        except UserError as exc:
            return SetParametersResult(successful=False, reason=str(exc))
        except (TypeError, ValueError) as exc:
            return SetParametersResult(successful=False, reason=f"invalid value: {exc}")
        for commit in commits:
            commit()
        if commits:
            node.get_logger().info(f"parameters changed: {changes}")
        return SetParametersResult(successful=True)

    node.add_on_set_parameters_callback(callback)
