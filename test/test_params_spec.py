"""One declarative parameter spec per node (o4a_nav/params.py, o4a_nav/nav/node_params.py):
validation, the ROS declaration (descriptors, read-only, values of every parameter) and
the docs all derive from it; nodes never import each other's parameters."""
import ast
import dataclasses
from pathlib import Path

import pytest

from o4a_nav.errors import UserError
from o4a_nav.nav.base_controller import BaseControllerParams
from o4a_nav.nav.collision import FootprintParams
from o4a_nav.nav.navigator import NavigatorParams
from o4a_nav.nav.node_params import NODE_PARAMS, SimNodeParams
from o4a_nav.nav.runtime import RuntimeParams
from o4a_nav.params import markdown, specs
from o4a_nav.sim.explore import ExplorerParams

ROOT = Path(__file__).resolve().parents[1]


def test_parameters_doc_is_generated_from_the_specs():
    assert (ROOT / "docs" / "PARAMETERS.md").read_text() == markdown(NODE_PARAMS), \
        "regenerate: .venv/bin/python -m o4a_nav.nav.node_params > docs/PARAMETERS.md"


def test_every_field_has_a_spec_and_names_are_unique_per_node():
    for node, groups in NODE_PARAMS.items():
        names = []
        for cls in groups:
            fields = [f.name for f in dataclasses.fields(cls)]
            assert fields == list(specs(cls)), f"{cls.__name__}: a field without param(...)"
            names += fields
            for name, (default, spec) in specs(cls).items():
                assert spec.description, (cls.__name__, name)
                if spec.range is not None:
                    assert isinstance(default, (int, float)) and spec.range[0] <= default <= spec.range[1], name
        dup = {n for n in names if names.count(n) > 1}
        assert not dup, f"{node}: {dup} declared by two groups"


@pytest.mark.parametrize("cls,bad,match", [
    (NavigatorParams, {"stop_threshold": -1.0}, r"stop_threshold must be in \[0.0, 1000.0\]"),
    (NavigatorParams, {"memory_size": 2.5}, "memory_size must be an integer"),
    (NavigatorParams, {"lookahead_rotations": 25}, "lookahead_rotations"),
    (RuntimeParams, {"stale_timeout": float("nan")}, "stale_timeout must be a finite number"),
    (RuntimeParams, {"use_free_actions": False, "use_scan_gate": False}, "no collision check"),
    (BaseControllerParams, {"min_linear_speed": 0.5}, "min speeds"),
    (BaseControllerParams, {"forward_distance": 0.0}, "forward_distance"),
    (FootprintParams, {"box_half_width": 0.1}, "narrower than the robot"),
    (FootprintParams, {"footprint": [0.1, 0.2, 0.3]}, "at least 3 points"),
    (ExplorerParams, {"forward_prob": 1.0}, "forward_prob"),
    (SimNodeParams, {"initial_pose": [1.0, 2.0]}, "initial_pose"),
])
def test_validation_comes_from_the_spec(cls, bad, match):
    with pytest.raises(UserError, match=match):
        cls(**bad)


def test_values_are_normalised():
    import numpy as np

    p = NavigatorParams(stop_threshold=3, max_steps=np.int64(7))
    assert p.stop_threshold == 3.0 and type(p.stop_threshold) is float and type(p.max_steps) is int
    import array

    assert FootprintParams(footprint=array.array("d", [0.2, 0.2, -0.2, 0.2, -0.2, -0.2, 0.2, -0.2]),
                           box_x_max=0.5).footprint == [0.2, 0.2, -0.2, 0.2, -0.2, -0.2, 0.2, -0.2]


def test_nodes_do_not_import_each_other():
    """The nodes with parameters take shared specs from core modules, never from a node."""
    nodes_dir = ROOT / "o4a_nav" / "nodes"
    node_modules = set(NODE_PARAMS)
    for path in (nodes_dir / f"{n}.py" for n in NODE_PARAMS):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("o4a_nav.nodes."):
                assert node.module.split(".")[-1] not in node_modules, f"{path.name} imports {node.module}"


@pytest.mark.ros
def test_nodes_declare_exactly_their_specs(ros):
    """Each navigation node declares the fields of its groups, every one with a value (so
    `ros2 param dump` prints all of them), the spec's description, range and read-only
    flag; a read-only parameter is refused at run time."""
    import importlib

    from rclpy.parameter import Parameter

    ctx, add = ros
    modules = {"collision_checker": "CollisionCheckerNode", "navigator": "NavigatorNode",
               "base_controller": "BaseControllerNode", "explorer": "ExplorerNode",
               "lifecycle_manager": "LifecycleManagerNode"}
    assert set(modules) | {"sim"} == set(NODE_PARAMS)   # sim: test_every_yaml_parameter_is_declared_by_its_node
    for name, cls_name in modules.items():
        cls = getattr(importlib.import_module(f"o4a_nav.nodes.{name}"), cls_name)
        overrides = [Parameter("model_path", value="/nonexistent")] if name == "navigator" else []
        if name == "navigator":   # NO_MODEL refuses to activate: autostart would raise
            overrides.append(Parameter("autostart", value=False))
        if name == "lifecycle_manager":
            overrides = [Parameter("autostart", value=False)]
        node = add(cls(node_name=f"spec_{name}", context=ctx, parameter_overrides=overrides))
        want = {n: s for g in NODE_PARAMS[name] for n, (_, s) in specs(g).items()}
        declared = set(node._parameters) - {"use_sim_time", "start_type_description_service"}
        assert declared == set(want), (name, declared ^ set(want))
        for pname, spec in want.items():
            p = node.get_parameter(pname)
            assert p.type_ != Parameter.Type.NOT_SET, (name, pname)
            d = node.describe_parameter(pname)
            assert d.description == spec.description and d.read_only == spec.read_only, (name, pname)
            if spec.range is not None:
                rng = d.floating_point_range or d.integer_range
                assert rng and (rng[0].from_value, rng[0].to_value) == pytest.approx(spec.range), (name, pname)
        ro = next(n for n, s in want.items() if s.read_only)
        res = node.set_parameters([Parameter(ro, value=node.get_parameter(ro).value)])[0]
        assert not res.successful and "read-only" in res.reason
