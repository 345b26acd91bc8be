"""Parameter dataclasses built from dicts (YAML sections, ROS parameters, bench flags)."""
from __future__ import annotations

from dataclasses import fields
from typing import ClassVar

from o4a_nav.errors import UserError


class FromDict:
    """Mixin for a dataclass: ``from_dict`` refuses unknown keys with a message naming
    ``OWNER`` (the component the parameters belong to)."""

    OWNER: ClassVar[str] = "parameters"

    @classmethod
    def from_dict(cls, d: dict):
        unknown = set(d) - {f.name for f in fields(cls)}
        if unknown:
            raise UserError(f"{cls.OWNER}: unknown parameter(s) {sorted(unknown)}")
        return cls(**d)
