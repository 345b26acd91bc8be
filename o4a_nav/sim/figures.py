"""Figures of the simulator for the docs (ROS-free):

    .venv/bin/python -m o4a_nav.sim.figures docs/figures

writes sim_worlds.png (every built-in world from above, walls and boxes outlined, 1 m
grid) and sim_frames.png (front and rear camera frames along an exploration run, with
the laser scan of each frame drawn from above).
"""
from __future__ import annotations

import math
import sys
from pathlib import Path

import numpy as np

from o4a_nav.plotting import pyplot, save_figure


def _top_extent(world, size_px: int):
    """Map-frame extent (x0, x1, y0, y1) of MiniWorld's square top view of `world`."""
    x0, y0, x1, y1 = world.bounds
    min_x, max_x, min_z, max_z = x0 - 1, x1 + 1, -y1 - 1, -y0 + 1
    w, h = max_x - min_x, max_z - min_z
    if w > h:
        d = (w - h) / 2
        min_z, max_z = min_z - d, max_z + d
    elif h > w:
        d = (h - w) / 2
        min_x, max_x = min_x - d, max_x + d
    return min_x, max_x, -max_z, -min_z


def worlds_figure(out: Path, names=None, size_px: int = 480) -> Path:
    plt = pyplot()

    from o4a_nav.sim.render import Renderer
    from o4a_nav.sim.world import load_world, world_names

    names = names or world_names()
    cols = 3
    rows = int(math.ceil(len(names) / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(4.2 * cols, 4.4 * rows))
    for ax, name in zip(np.ravel(axes), names):
        w = load_world(name)
        r = Renderer(w)
        img = r.top_view(size_px)
        r.close()
        ext = _top_extent(w, size_px)
        ax.imshow(img, extent=ext, origin="upper")
        for (xa, ya), (xb, yb) in w.segments:
            ax.plot([xa, xb], [ya, yb], color="black", lw=1.6)
        ax.set_xlim(w.bounds[0] - 0.3, w.bounds[2] + 0.3)
        ax.set_ylim(w.bounds[1] - 0.3, w.bounds[3] + 0.3)
        ax.set_title(f"{name} ({w.free_area:.0f} m$^2$ free)", fontsize=10)
        ax.set_aspect("equal")
        ax.tick_params(labelsize=7)
    for ax in np.ravel(axes)[len(names):]:
        ax.axis("off")
    fig.suptitle("o4a_nav simulator worlds from above (map frame, metres; north up)", fontsize=12)
    fig.tight_layout()
    return save_figure(fig, out, dpi=90)


def frames_figure(out: Path, world_name: str = "apartment", seed: int = 4, steps: int = 120, n: int = 8) -> Path:
    plt = pyplot()

    from o4a_nav.sim import SimRobot, load_world
    from o4a_nav.sim.collector import explore

    w = load_world(world_name)
    robot = SimRobot(w, seed=seed)
    frames = list(explore(robot, steps, seed=seed))
    robot.close()
    pick = np.linspace(0, steps - 2, n).astype(int)
    fig, axes = plt.subplots(3, n, figsize=(1.9 * n, 6.2))
    for j, i in enumerate(pick):
        f = frames[i]
        axes[0, j].imshow(f.front)
        axes[1, j].imshow(f.rear)
        axes[0, j].set_title(f"step {i}: {f.action.name}", fontsize=8)
        ax = axes[2, j]
        for (xa, ya), (xb, yb) in w.segments:
            ax.plot([xa, xb], [ya, yb], color="black", lw=0.8)
        ang = f.pose.yaw + f.scan.angles
        rng = np.where(np.isfinite(f.scan.ranges), f.scan.ranges, np.nan)
        ax.scatter(f.pose.x + rng * np.cos(ang), f.pose.y + rng * np.sin(ang), s=0.5, color="tab:red")
        ax.arrow(f.pose.x, f.pose.y, 0.5 * math.cos(f.pose.yaw), 0.5 * math.sin(f.pose.yaw), width=0.08,
                 color="tab:blue")
        ax.set_aspect("equal")
        ax.set_xlim(w.bounds[0] - 0.2, w.bounds[2] + 0.2)
        ax.set_ylim(w.bounds[1] - 0.2, w.bounds[3] + 0.2)
        for a in axes[:, j]:
            a.set_xticks([])
            a.set_yticks([])
    axes[0, 0].set_ylabel("front camera", fontsize=9)
    axes[1, 0].set_ylabel("rear camera", fontsize=9)
    axes[2, 0].set_ylabel("laser (red), pose", fontsize=9)
    fig.suptitle(f"Exploration in '{world_name}': 96x96 front/rear frames and the 270 deg scan", fontsize=11)
    fig.tight_layout()
    return save_figure(fig, out, dpi=90)


def main(argv=None) -> int:
    import argparse

    p = argparse.ArgumentParser(prog="python -m o4a_nav.sim.figures",
                                description="draw the simulator figures (worlds from above, exploration frames)")
    p.add_argument("out", nargs="?", default="docs/figures", help="output folder (default docs/figures)")
    out = Path(p.parse_args(argv).out)
    print(worlds_figure(out / "sim_worlds.png"))
    print(frames_figure(out / "sim_frames.png"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
