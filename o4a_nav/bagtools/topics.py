"""Bag topic selection and message type names (ROS-free); topic names are normalised by
`o4a_nav.topics.absolute`."""
from __future__ import annotations

from typing import Iterable

from o4a_nav.errors import BagError, UserError
from o4a_nav.topics import absolute


def select(available: Iterable[str], requested: Iterable[str] | None, bag: str = "bag") -> list[str]:
    """The bag topics named by `requested` (all of `available` when None), in bag order.

    Names match regardless of a leading '/'. A requested topic that the bag lacks raises
    BagError naming it and listing what the bag holds.
    """
    available = list(available)
    if requested is None:
        return available
    by_norm = {absolute(t): t for t in available}
    out: list[str] = []
    for name in requested:
        key = absolute(name)
        if key not in by_norm:
            have = ", ".join(sorted(by_norm)) or "none"
            raise BagError(f"topic {key} is not in {bag} (topics in the bag: {have})")
        if by_norm[key] not in out:
            out.append(by_norm[key])
    return out


def split_type(msgtype: str) -> tuple[str, str, str]:
    """'sensor_msgs/msg/Image' (or 'sensor_msgs/Image') -> ('sensor_msgs', 'msg', 'Image')."""
    parts = msgtype.strip("/").split("/")
    if len(parts) == 2:
        parts = [parts[0], "msg", parts[1]]
    if len(parts) != 3 or not all(parts):
        raise UserError(f"invalid message type name {msgtype!r} (expected pkg/msg/Name)")
    return parts[0], parts[1], parts[2]
