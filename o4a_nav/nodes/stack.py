"""The o4a_nav stack in one process: which nodes make it up (the launch files' nodes and
order), their parameter overrides from the parameter files and NODE.PARAM=VALUE
overrides, creating and stopping them. Used by `o4a bringup`, `o4a demo` /
`o4a bench --through-ros` (nodes/lockstep.py) and the tests."""
from __future__ import annotations

# node name -> (module, class); the order of the launch files
NAV_NODES = {
    "collision_checker": ("o4a_nav.nodes.collision_checker", "CollisionCheckerNode"),
    "navigator": ("o4a_nav.nodes.navigator", "NavigatorNode"),
    "base_controller": ("o4a_nav.nodes.base_controller", "BaseControllerNode"),
}
SIM_NODES = {"sim": ("o4a_nav.nodes.sim", "SimNode")}
MANAGER = ("lifecycle_manager", "o4a_nav.nodes.lifecycle_manager", "LifecycleManagerNode")



def init_ros(ros_args: list[str], **kwargs) -> None:
    """rclpy.init with `--ros-args ...` for every node of the process (remaps, -p, log
    level); bad arguments are one UserError line."""
    import rclpy

    from o4a_nav.errors import UserError

    try:
        rclpy.init(args=["o4a", "--ros-args", *ros_args] if ros_args else None, **kwargs)
    except Exception as exc:  # rcl reports malformed arguments as RCLError / ValueError
        reason = str(exc).split(", at /")[0]   # rcl appends source locations
        raise UserError(f"--ros-args {' '.join(ros_args)}: {reason}") from None


def make_node(name: str, module: str, cls: str, overrides: list, namespace: str | None = None, context=None):
    """One node of a plan() entry (rclpy must be initialised)."""
    import importlib

    kw = {"namespace": namespace} if namespace else {}
    if context is not None:
        kw["context"] = context
    return getattr(importlib.import_module(module), cls)(node_name=name, parameter_overrides=overrides, **kw)


def stop_nodes(nodes: list) -> None:
    """Leave the robot standing (each node's shutdown(): STOP, zero cmd_vel), newest first,
    then destroy the nodes. Call after the executors have stopped."""
    for n in reversed(nodes):
        sd = getattr(n, "shutdown", None)
        if sd is not None:
            try:
                sd()
            except Exception:
                pass
    for n in nodes:
        n.destroy_node()


def _overrides_from_args(nodes: dict, sim: bool, model, world: str | None, seed: int | None) -> dict[str, dict]:
    """node name -> the parameters plan's own arguments set."""
    extra: dict[str, dict] = {name: {} for name in nodes}
    if model:
        extra["navigator"]["model_path"] = str(model)
    if sim and world:
        extra["sim"]["world"] = world
    if sim and seed is not None:
        extra["sim"]["seed"] = int(seed)
    if sim:
        extra["collision_checker"]["publish_laser_tf"] = False   # the sim publishes its sensor mounts
    return extra


def _apply_sets(extra: dict[str, dict], nodes: dict, sets) -> None:
    """NODE.PARAM=VALUE overrides (YAML values) into extra; UserError for a bad one."""
    import yaml

    from o4a_nav.errors import UserError

    for item in sets:
        key, sep, value = item.partition("=")
        node, dot, param = key.partition(".")
        if not sep or not dot or not param:
            raise UserError(f"--set {item!r}: expected NODE.PARAM=VALUE")
        if node not in nodes:
            raise UserError(f"--set {item!r}: no node {node!r} here (nodes: {', '.join(nodes)})")
        try:
            extra[node][param] = yaml.safe_load(value)
        except yaml.YAMLError as exc:
            raise UserError(f"--set {item!r}: bad value ({exc})") from None


def _navigator_follows_sim_world(out: list, extra: dict[str, dict]) -> None:
    """The navigator's p+ head follows the simulated world unless it was set explicitly."""
    sim_world = next((p.value for n, _, _, ov in out if n == "sim" for p in ov if p.name == "world"), None)
    nav_ov = next(ov for n, _, _, ov in out if n == "navigator")
    if sim_world and not any(p.name == "world" and p.value for p in nav_ov) and "world" not in extra["navigator"]:
        from rclpy.parameter import Parameter

        nav_ov[:] = [p for p in nav_ov if p.name != "world"] + [Parameter("world", value=str(sim_world))]


def _sim_time_with_sim_clock(out: list) -> None:
    """A simulator that publishes /clock (lockstep implies it): every other node runs on
    simulated time."""
    sim_clock = any(p.name in ("publish_clock", "lockstep") and p.value is True
                    for n, _, _, ov in out if n == "sim" for p in ov)
    if sim_clock:
        from rclpy.parameter import Parameter

        for n, _, _, ov in out:
            if n != "sim" and not any(p.name == "use_sim_time" for p in ov):
                ov.append(Parameter("use_sim_time", value=True))


def plan(sim: bool = False, params=None, model=None, world: str | None = None, seed: int | None = None,
         sets=(), namespace: str = "") -> list[tuple[str, str, str, list]]:
    """[(node name, module, class, rclpy Parameter overrides)] of the navigation nodes (and
    with ``sim`` the simulator): ``params`` parameter files, later ones win (default
    config/navigation.yaml, plus config/sim.yaml with ``sim``); ``model`` the navigator's
    model_path; ``world`` / ``seed`` the simulator's; ``sets`` NODE.PARAM=VALUE overrides
    (YAML value syntax, as `--set`). No rclpy context needed; raises UserError for bad
    files or override syntax."""
    from o4a_nav.nodes._common import node_overrides
    from o4a_nav.params import load_param_file

    from o4a_nav.package_data import data_path

    cfg = data_path("config")
    files = list(params) if params else [cfg / "navigation.yaml"] + ([cfg / "sim.yaml"] if sim else [])
    for f in files:
        load_param_file(f)  # validates early, names the file
    nodes = dict(NAV_NODES)
    if sim:
        nodes.update(SIM_NODES)
    extra = _overrides_from_args(nodes, sim, model, world, seed)
    _apply_sets(extra, nodes, sets)
    out = []
    for name, (module, cls) in nodes.items():
        out.append((name, module, cls, node_overrides(files, name, extra[name], namespace)))
    if sim:
        _navigator_follows_sim_world(out, extra)
    _sim_time_with_sim_clock(out)
    return out


def with_lifecycle_manager(todo: list) -> list:
    """The plan with the managed nodes waiting (autostart false, unless --set) for a
    lifecycle_manager that brings them up, as the launch files do."""
    from rclpy.parameter import Parameter

    managed = [name for name, *_ in todo if name in NAV_NODES]
    for name, _, _, overrides in todo:
        if name in managed and not any(p.name == "autostart" for p in overrides):
            overrides.append(Parameter("autostart", value=False))
    return todo + [(*MANAGER, [Parameter("node_names", value=managed), Parameter("autostart", value=True)])]
