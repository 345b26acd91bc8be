"""Playback timing (ROS-free): when is a bag message due, and what does /clock say."""
from __future__ import annotations

import math

from o4a_nav.errors import UserError


class Schedule:
    """Maps bag time to wall time for playback at `rate` x real time.

    rate = 1 keeps the original timing, 2 plays twice as fast; rate = inf (or 0 given on
    the command line, see `parse_rate`) publishes as fast as possible.
    """

    def __init__(self, t0_bag: float, t0_wall: float, rate: float = 1.0):
        if not (rate > 0):
            raise UserError(f"--rate must be > 0 (got {rate})")
        self.t0_bag = float(t0_bag)
        self.t0_wall = float(t0_wall)
        self.rate = float(rate)

    def due(self, t_bag: float) -> float:
        """Wall time at which the message stamped t_bag (bag time) is published."""
        if math.isinf(self.rate):
            return self.t0_wall
        return self.t0_wall + (t_bag - self.t0_bag) / self.rate

    def bag_time(self, t_wall: float) -> float:
        """Bag time that corresponds to wall time t_wall (the /clock value)."""
        if math.isinf(self.rate):
            return self.t0_bag
        return self.t0_bag + (t_wall - self.t0_wall) * self.rate


def parse_rate(text: str) -> float:
    """--rate value: a positive number, or 0 / 'max' for as fast as possible."""
    if str(text).lower() in ("0", "max", "inf"):
        return math.inf
    try:
        rate = float(text)
    except ValueError:
        raise UserError(f"--rate must be a positive number or 'max' (got {text!r})") from None
    if not (rate > 0) or math.isnan(rate):
        raise UserError(f"--rate must be a positive number or 'max' (got {text!r})")
    return rate
