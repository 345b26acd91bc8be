"""How many exploration frames per m^2 of free space a building needs before its best
one-action graph (recorded chains + every `ideal` pair, report.ideal_connectivity) holds
95 % of the frames in one strongly connected part: the exploration policy of `o4a collect`
(seed 0, no rendering) in each world, the graph measured on the first N frames.
Usage: .venv/bin/python research/backbone/data_per_area.py STEPS WORLD..."""
import sys

import numpy as np

from o4a_nav.learning.report import ideal_connectivity
from o4a_nav.sim.collector import explore
from o4a_nav.sim.robot import SimRobot

steps = int(sys.argv[1])
prefixes = [n for n in (2000, 4000, 6000, 8000, 10000, 15000, 20000, 30000) if n <= steps]
print("world | free m^2 | " + " | ".join(f"{n}" for n in prefixes))
for w in sys.argv[2:]:
    robot = SimRobot(w, seed=0)
    poses = np.zeros((steps, 3))
    traj = np.zeros(steps, np.int64)
    for f in explore(robot, steps, seed=0, render=False):
        poses[f.index] = (f.pose.x, f.pose.y, f.pose.yaw)
        traj[f.index] = f.trajectory
    area = robot.world.free_area
    robot.close()
    cells = []
    for n in prefixes:
        c = ideal_connectivity(poses[:n], traj[:n])
        cells.append(f"{n / area:.0f}/m2: {c['largest_share']:.3f}")
    print(f"{robot.world.name} | {area:.0f} | " + " | ".join(cells), flush=True)
