"""The `o4a` command: one CLI with subcommands.

Each subcommand is a module in ``o4a_nav.commands`` that defines ``HELP`` (one line),
``add_arguments(parser)`` and ``run(args) -> int``. Modules are discovered, so adding a
command is adding a file. Heavy imports (torch, rclpy, miniworld) happen inside ``run``
so that ``o4a --help`` stays fast.
"""
from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys

from o4a_nav import __version__, commands
from o4a_nav.errors import UserError


def _command_modules():
    for info in sorted(pkgutil.iter_modules(commands.__path__), key=lambda m: m.name):
        if info.name.startswith("_"):
            continue
        yield info.name.replace("_", "-"), importlib.import_module(f"{commands.__name__}.{info.name}")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="o4a",
        description="One-4-All image-goal navigation for ROS 2: simulate, collect, train, navigate, benchmark.",
    )
    parser.add_argument("--version", action="version", version=f"o4a_nav {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for name, module in _command_modules():
        p = sub.add_parser(name, help=module.HELP, description=module.HELP)
        module.add_arguments(p)
        p.set_defaults(_run=module.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args._run(args) or 0)
    except UserError as exc:
        print(f"o4a {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"o4a {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
