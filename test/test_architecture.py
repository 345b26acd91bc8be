"""Design rule: the core modules never import rclpy; only nodes and commands do."""
import pkgutil
import subprocess
import sys

import o4a_nav
import o4a_nav.commands

ROS_FACING = ("o4a_nav.nodes", "o4a_nav.commands")


def _core_modules():
    for info in pkgutil.walk_packages(o4a_nav.__path__, prefix="o4a_nav."):
        if not info.name.startswith(ROS_FACING):
            yield info.name


def test_core_modules_do_not_import_rclpy():
    modules = sorted(_core_modules())
    assert "o4a_nav.image_conv" in modules and "o4a_nav.bagio" in modules
    code = (
        "import importlib, sys\n"
        f"mods = {modules!r}\n"
        "bad = []\n"
        "for m in mods:\n"
        "    importlib.import_module(m)\n"
        "    if 'rclpy' in sys.modules:\n"
        "        bad.append(m); break\n"
        "print(','.join(bad))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() == "", f"core module imports rclpy: {out.stdout.strip()}"


def test_cli_lists_every_command_module():
    from o4a_nav.cli import build_parser

    parser = build_parser()
    text = parser.format_help()
    for info in pkgutil.iter_modules(o4a_nav.commands.__path__):
        if not info.name.startswith("_"):
            assert info.name.replace("_", "-") in text


def test_every_command_help_ends_with_examples_of_itself():
    """`o4a COMMAND --help` ends with example command lines of that command (EXAMPLES),
    and the top-level help shows the robot workflow; `o4a train` keeps its topic and
    odometry-label flags in their own groups."""
    import argparse

    from o4a_nav import cli

    parser = cli.build_parser()
    assert "the robot workflow" in parser.format_help()
    [sub] = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    assert set(sub.choices) >= {"bench", "demo", "diagnose", "train", "sim", "bringup"}
    for name, p in sub.choices.items():
        text = p.format_help()
        examples = text.split("examples:\n", 1)
        assert len(examples) == 2, f"o4a {name} --help has no examples"
        block = examples[1].split("\n\n", 1)[0]
        lines = [line.strip() for line in block.splitlines()]
        assert lines and all(line.startswith(f"o4a {name}") for line in lines), (name, lines)
    groups = {g.title: [a.dest for a in g._group_actions] for g in sub.choices["train"]._action_groups}
    assert "scan_topic" in groups["topics"] and "odom_forward" in groups["odometry labels"]
    assert "bags" not in groups["topics"] and "odom_topic" not in groups["odometry labels"]
    bench = sub.choices["bench"].format_help()
    assert "How long" in bench and "default 500" in bench
    for name in ("demo", "bringup", "sim"):
        assert "which of the three runs the simulator" in sub.choices[name].format_help()


def test_commands_do_not_use_each_other_as_a_library():
    """What two commands share lives in a core module or in o4a_nav/nodes (the stack plan,
    the goal client, the lockstep episode)."""
    import ast
    from pathlib import Path

    bad = []
    for path in sorted(Path(o4a_nav.commands.__file__).parent.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            names = []
            if isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
            elif isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            for name in names:
                if name.startswith("o4a_nav.commands."):
                    bad.append(f"{path.name}: {name}")
    assert not bad, bad
