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
