"""The robot's turn as the laser sees it, for the base controller's heading check (ROS-free).

A motion's reference is the scan it started from (the collision monitor's latest scan at the
command), or, when that scan has too few points to register (an open space, a laser that had
not seen anything yet), the first scan of the motion that has enough; every scan that
arrives while the motion runs is registered against it with `o4a_nav.learning.scanreg` (the project's one scan registration, small_gicp GICP, about
2-4 ms per scan here), which gives the turn of the base between the two scans independent of
odometry. The base controller compares it with odometry's turn over the same interval
(``scan_heading_mismatch``). A registration that scanreg does not accept (rms, overlap, too
few points: an open space, a scan full of people) is not used: the check then says nothing,
it never stops the robot on a fit it cannot trust.
"""
from __future__ import annotations

import importlib.util

from o4a_nav.errors import UserError
from o4a_nav.learning import scanreg
from o4a_nav.learning.odometry import relative
from o4a_nav.types import Pose2D


def require_registration() -> None:
    """UserError when small_gicp (requirements-robot.txt) is not installed."""
    if importlib.util.find_spec("small_gicp") is None:
        raise UserError("base_controller: scan_heading_mismatch > 0 needs small_gicp (pip install -r "
                        "requirements-robot.txt); set scan_heading_mismatch 0 to run without the scan heading check")


class ScanTurn:
    """Registration of each scan of a motion against the motion's first scan.

    ``mount``: the laser's pose in the base frame (so that a registered pose is base to
    base)."""

    def __init__(self, mount: Pose2D = Pose2D(0.0, 0.0, 0.0), params: scanreg.RegParams = scanreg.RegParams()):
        self.mount, self.params = mount, params
        self.ref_arrival: float | None = None   # arrival time of the reference scan (node clock)
        self._ref_scan = None
        self._ref_pose: Pose2D | None = None    # odometry's pose of the base at the reference's arrival
        self._ref_cloud = None                  # prepared lazily (off the command's path); False: unusable

    def start(self, scan, arrival: float, pose: Pose2D | None) -> None:
        """``scan`` (None: no reference, nothing is measured), which arrived at ``arrival``
        with odometry at ``pose``, is the reference of the running motion from now on."""
        self._ref_scan, self._ref_cloud, self._ref_pose = scan, None, pose
        self.ref_arrival = float(arrival) if scan is not None else None

    def _cloud(self, scan):
        pts = scanreg.scan_points(scan.ranges, scan.angle_min, scan.angle_increment, scan.range_min,
                                  scan.range_max, self.mount)
        return scanreg.prepare(pts, self.params)

    def usable(self) -> bool:
        """Whether there is a reference scan with enough points to register against
        (prepared here, once per reference)."""
        if self._ref_scan is None:
            return False
        if self._ref_cloud is None:
            self._ref_cloud = self._cloud(self._ref_scan) or False
        return bool(self._ref_cloud)

    def turn(self, scan, pose: Pose2D) -> float | None:
        """Yaw [rad] of the base when ``scan`` was taken relative to the reference scan, or
        None when there is no reference or the fit cannot be trusted. ``pose``: odometry's
        pose of the base at ``scan``; its motion from the reference's is the registration's
        starting point."""
        cloud = self._cloud(scan) if self.usable() else None
        if cloud is None:
            return None
        r0 = self._ref_pose
        init = relative((r0.x, r0.y, r0.yaw), (pose.x, pose.y, pose.yaw))
        r = scanreg.register(self._ref_cloud, cloud, init, self.params)
        return r.yaw if r.ok else None
