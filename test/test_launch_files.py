"""What can be checked of the launch files without launch_ros: they parse, every
executable they start is a console script in setup.py, every node name has a section in
the parameter files (and vice versa), every YAML parameter is declared by its node, and
`o4a bringup` plans the same nodes with the same parameters."""
import ast
import re
from pathlib import Path

import pytest

from o4a_nav.params import load_param_file

ROOT = Path(__file__).resolve().parents[1]
LAUNCH = ROOT / "launch"
CONFIG = ROOT / "config"


def setup_console_scripts():
    tree = ast.parse((ROOT / "setup.py").read_text())
    nodes = None
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == "NODES" for t in node.targets):
            nodes = ast.literal_eval(node.value)
    assert nodes, "setup.py defines NODES"
    return set(nodes)


def launch_nodes(path):
    """(executable, name) of every launch_ros Node(...) call; loop variables resolved from
    module-level tuples such as NODES = (...)."""
    tree = ast.parse(path.read_text())
    consts = {}
    for node in tree.body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            try:
                consts[node.targets[0].id] = ast.literal_eval(node.value)
            except ValueError:
                pass
    loops = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.For) and isinstance(node.target, ast.Name) and isinstance(node.iter, ast.Name):
            loops[node.target.id] = consts[node.iter.id]
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "Node":
            kw = {k.arg: k.value for k in node.keywords}
            vals = {}
            for key in ("executable", "name", "package"):
                v = kw[key]
                if isinstance(v, ast.Constant):
                    vals[key] = [v.value]
                elif isinstance(v, ast.Name) and v.id in loops:
                    vals[key] = list(loops[v.id])
                elif isinstance(v, ast.Name) and v.id in consts:
                    vals[key] = [consts[v.id]]
                else:
                    raise AssertionError(f"{path.name}: cannot resolve {key}")
            for exe, name in zip(vals["executable"], vals["name"]):
                found.append((vals["package"][0], exe, name))
    return found


LAUNCH_FILES = sorted(LAUNCH.glob("*.launch.py"))


def test_launch_files_exist():
    names = {p.name for p in LAUNCH_FILES}
    assert {"navigation.launch.py", "sim_navigation.launch.py"} <= names


@pytest.mark.parametrize("path", LAUNCH_FILES, ids=lambda p: p.name)
def test_launch_file_structure(path):
    tree = ast.parse(path.read_text())
    funcs = [n.name for n in tree.body if isinstance(n, ast.FunctionDef)]
    assert "generate_launch_description" in funcs
    imports = {a.name if isinstance(n, ast.Import) else n.module
               for n in tree.body if isinstance(n, (ast.Import, ast.ImportFrom)) for a in n.names}
    assert "launch_ros.actions" in imports and "launch" in imports
    scripts = setup_console_scripts()
    for package, exe, name in launch_nodes(path):
        assert package == "o4a_nav"
        assert exe in scripts, f"{path.name} starts {exe}, not a console script in setup.py"
        assert name == exe
    # every LaunchConfiguration used is declared
    text = path.read_text()
    used = set(re.findall(r'LaunchConfiguration\("([a-z_]+)"\)', text))
    declared = set(re.findall(r'DeclareLaunchArgument\(\s*"([a-z_]+)"', text))
    assert used <= declared, f"undeclared launch arguments {used - declared}"
    # the config files the launch file points at exist
    for cfg in re.findall(r'"config", "([a-z_]+\.yaml)"', text):
        assert (CONFIG / cfg).is_file()
    for inc in re.findall(r'"launch", "([a-z_]+\.launch\.py)"', text):
        assert (LAUNCH / inc).is_file()


def test_launch_nodes_match_yaml_sections():
    nav = load_param_file(CONFIG / "navigation.yaml")
    sim = load_param_file(CONFIG / "sim.yaml")
    nav_nodes = {n for _, _, n in launch_nodes(LAUNCH / "navigation.launch.py")}
    assert nav_nodes == {"collision_checker", "navigator", "base_controller"}
    assert set(nav) - {"**"} == nav_nodes
    sim_nodes = {n for _, _, n in launch_nodes(LAUNCH / "sim_navigation.launch.py")}
    assert sim_nodes == {"sim"} and "sim" in sim
    assert set(sim) <= setup_console_scripts()


def test_every_yaml_parameter_is_declared_by_its_node():
    """Build each node with the YAML overrides and check that it declared every key (a typo
    in the YAML would otherwise be silently ignored by ROS)."""
    import rclpy

    from o4a_nav.commands import bringup

    class A:
        sim, params, model, world, seed, set = True, None, None, None, None, []

    ctx = rclpy.Context()
    rclpy.init(context=ctx)
    try:
        import importlib

        for name, module, cls, overrides in bringup.plan(A()):
            node = getattr(importlib.import_module(module), cls)(node_name=name, parameter_overrides=overrides,
                                                                 context=ctx)
            try:
                missing = [p.name for p in overrides if not node.has_parameter(p.name)]
                if name not in ("collision_checker", "navigator"):
                    # the /** footprint section concerns only the nodes that check collisions
                    missing = [m for m in missing if m not in load_param_file(CONFIG / "navigation.yaml")["**"]]
                assert not missing, f"{name}: YAML parameters not declared by the node: {missing}"
                for p in overrides:
                    if node.has_parameter(p.name):
                        assert node.get_parameter(p.name).value == pytest.approx(p.value) \
                            if isinstance(p.value, float) else node.get_parameter(p.name).value == p.value
            finally:
                if hasattr(node, "shutdown"):
                    node.shutdown()
                node.destroy_node()
    finally:
        rclpy.shutdown(context=ctx)


def test_bringup_plan_overrides_and_errors(tmp_path):
    from o4a_nav.commands import bringup
    from o4a_nav.errors import UserError

    class A:
        sim, params, model, world, seed = False, None, "/m", None, None
        set = ["navigator.stop_threshold=3.0", "base_controller.use_stamped=true"]

    plan = {name: {p.name: p.value for p in ov} for name, _, _, ov in bringup.plan(A())}
    assert set(plan) == {"collision_checker", "navigator", "base_controller"}
    assert plan["navigator"]["model_path"] == "/m" and plan["navigator"]["stop_threshold"] == 3.0
    assert plan["base_controller"]["use_stamped"] is True
    assert plan["collision_checker"]["box_half_width"] == 0.22  # from the /** section
    A.sim, A.set = True, ["sim.publish_clock=true"]
    plan = {name: {p.name: p.value for p in ov} for name, _, _, ov in bringup.plan(A())}
    assert plan["navigator"]["world"] == plan["sim"]["world"] == "two_rooms"  # p+ head follows the sim
    A.world = "four_rooms"
    plan = {name: {p.name: p.value for p in ov} for name, _, _, ov in bringup.plan(A())}
    assert plan["navigator"]["world"] == plan["sim"]["world"] == "four_rooms"
    A.set = ["sim.publish_clock=true", "navigator.world=two_rooms"]
    plan = {name: {p.name: p.value for p in ov} for name, _, _, ov in bringup.plan(A())}
    assert plan["navigator"]["world"] == "two_rooms" and plan["sim"]["world"] == "four_rooms"
    A.world, A.set = None, ["sim.publish_clock=true"]
    plan = {name: {p.name: p.value for p in ov} for name, _, _, ov in bringup.plan(A())}
    assert all(plan[n].get("use_sim_time") is True for n in ("collision_checker", "navigator", "base_controller"))
    assert "use_sim_time" not in plan["sim"]
    A.sim = False
    A.set = ["nosuchnode.x=1"]
    with pytest.raises(UserError, match="nosuchnode"):
        bringup.plan(A())
    A.set = []
    bad = tmp_path / "bad.yaml"
    bad.write_text("navigator: [1, 2]\n")
    A.params = [str(bad)]
    with pytest.raises(UserError, match="bad.yaml"):
        bringup.plan(A())
