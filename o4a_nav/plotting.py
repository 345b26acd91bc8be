"""Figures without a display: the one place that selects matplotlib's headless backend and
writes a figure. ROS-free; matplotlib is imported only when a figure is drawn."""
from __future__ import annotations

from pathlib import Path


def pyplot():
    """matplotlib.pyplot on the Agg backend (no display needed)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_figure(fig, path, dpi: int = 90, **savefig_kwargs) -> Path:
    """Write `fig` to `path` (parent folders created), close it, return the path."""
    import matplotlib.pyplot as plt

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=dpi, **savefig_kwargs)
    plt.close(fig)
    return path
