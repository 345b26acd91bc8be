"""Rewrite the build-machine paths that the ros-jazzy-* wheels' exported CMake files name.

The message wheels were built under /opt/python/cp311-cp311 and their *Targets*.cmake /
*Config*.cmake files list that interpreter's include directory and numpy's include
directory. CMake refuses targets whose include directories do not exist, so building
o4a_msgs fails until those paths point at this interpreter and this venv. Idempotent.

usage: python fix_ros_cmake_paths.py VENV
"""
import sys
import sysconfig
from pathlib import Path

OLD_PREFIX = "/opt/python/cp311-cp311"


def main(venv: str) -> int:
    venv_path = Path(venv)
    site = Path(sysconfig.get_paths()["purelib"])
    include = sysconfig.get_paths()["include"]
    try:
        import numpy
        numpy_include = numpy.get_include()
    except ImportError:  # numpy comes with the message wheels; be tolerant anyway
        numpy_include = str(site / "numpy" / "_core" / "include")
    replacements = [
        (f"{OLD_PREFIX}/lib/python3.11/site-packages/numpy/_core/include", numpy_include),
        (f"{OLD_PREFIX}/lib/python3.11/site-packages", str(site)),
        (f"{OLD_PREFIX}/include/python3.11", include),
    ]
    changed = 0
    for path in venv_path.rglob("*.cmake"):
        try:
            text = path.read_text()
        except (UnicodeDecodeError, OSError):
            continue
        if OLD_PREFIX not in text:
            continue
        new = text
        for old, repl in replacements:
            new = new.replace(old, repl)
        if new != text:
            path.write_text(new)
            changed += 1
    if changed:
        print(f"[setup] rewrote build-machine paths in {changed} CMake files")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
