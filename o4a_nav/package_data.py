"""Where the package's data lives: the source tree (a clone, `make setup`) or the package
share of an installed package (colcon, `ros2 launch`). ROS-free."""
from __future__ import annotations

from pathlib import Path

PACKAGE = "o4a_nav"
SOURCE_ROOT = Path(__file__).resolve().parents[1]
SHIPPED_MODEL = "models/o4a_default"


def _share_dir() -> Path | None:
    try:
        from ament_index_python.packages import PackageNotFoundError, get_package_share_directory
    except ImportError:
        return None
    try:
        return Path(get_package_share_directory(PACKAGE))
    except PackageNotFoundError:
        return None


def data_path(relative: str) -> Path:
    """`relative` (e.g. config, models/o4a_default) in the source tree when this module runs
    from one, else in the installed package share; the source path when neither has it."""
    src = SOURCE_ROOT / relative
    if src.exists():
        return src
    share = _share_dir()
    if share is not None and (share / relative).exists():
        return share / relative
    return src


def resolve_model_path(model_path: str) -> str:
    """The navigator's model_path parameter: empty means the shipped model."""
    return model_path if model_path else str(data_path(SHIPPED_MODEL))
