"""The `o4a` command: one CLI with subcommands.

Each subcommand is a module in ``o4a_nav.commands`` that defines ``HELP`` (one line),
``EXAMPLES`` (the end of its --help: example command lines and when to use it),
``add_arguments(parser)`` and ``run(args) -> int``; ``RUNS_SIMULATOR = True`` adds
``WHICH_SIM`` (when to use demo, bringup --sim or sim) to its help. Modules are discovered, so adding a
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


EXAMPLES = """the robot workflow (README.md):
  o4a record -a -o data/bags/run1                       # drive the robot around, recording
  o4a train --bags data/bags/run1 --out models/mine     # learn the place
  o4a bringup --model models/mine                       # navigate ...
  o4a goal front.png rear.png                           # ... to the place in these pictures
in the simulator: o4a demo (one episode), o4a bench (the benchmark); `o4a COMMAND --help`
ends with examples."""

WHICH_SIM = """
which of the three runs the simulator:
  o4a demo            one episode to a goal, everything in one process with the sim in lockstep
                      (the same run on any machine); the quickest check that the stack works
  o4a bringup --sim   the navigation stack and the sim in one process, running until stopped,
                      for your own goals (o4a goal) or tools (rviz2, ros2 topic) on the same
                      machine; without --sim the same stack drives a real robot
  o4a sim             the simulated robot alone (cameras, scan, odom, cmd_vel), e.g. for
                      `ros2 launch o4a_nav navigation.launch.py` or a teleop/recording session
"""


def _command_modules():
    for info in sorted(pkgutil.iter_modules(commands.__path__), key=lambda m: m.name):
        if info.name.startswith("_"):
            continue
        yield info.name.replace("_", "-"), importlib.import_module(f"{commands.__name__}.{info.name}")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="o4a",
        description="One-4-All image-goal navigation for ROS 2: simulate, collect, train, navigate, benchmark.",
        epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"o4a_nav {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for name, module in _command_modules():
        p = sub.add_parser(name, help=module.HELP, description=module.HELP, epilog=module.EXAMPLES + (WHICH_SIM if getattr(module, "RUNS_SIMULATOR", False) else ""),
                           formatter_class=argparse.RawDescriptionHelpFormatter)
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
