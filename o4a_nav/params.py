"""Parameters: one declarative spec per parameter, ROS 2 parameter YAML files. ROS-free.

A parameter is a dataclass field made with :func:`param` (default, description, optional
(min, max) range, read_only for start-up-only parameters). From these fields derive:
- the ROS declaration and descriptor (o4a_nav/nodes/_common.py: declare_params),
- validation: :class:`Params` checks types and ranges in ``__post_init__`` (subclasses
  add cross-field rules in ``_check``), so a value is refused the same way whether it
  comes from YAML, ``ros2 param set``, a bench flag or Python,
- the documentation: :func:`markdown` (docs/PARAMETERS.md).

Which parameter groups each node declares is in o4a_nav/nav/node_params.py.
"""
from __future__ import annotations

import array
import math
import numbers
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import ClassVar

from o4a_nav.errors import UserError

_META = "o4a_param"


@dataclass(frozen=True)
class Spec:
    description: str
    range: tuple | None = None   # (min, max), inclusive; numbers only
    read_only: bool = False      # read at start-up only (ROS: read_only descriptor)


def param(default, description: str, range: tuple | None = None, read_only: bool = False):
    """A dataclass field with its parameter spec. Lists are copied per instance."""
    meta = {_META: Spec(description, range, read_only)}
    if isinstance(default, list):
        return field(default_factory=lambda: list(default), metadata=meta)
    return field(default=default, metadata=meta)


def specs(cls) -> dict[str, tuple[object, Spec]]:
    """{name: (default, Spec)} of every spec'd field of a Params class, in field order."""
    out = {}
    for f in fields(cls):
        spec = f.metadata.get(_META)
        if spec is None:
            continue
        default = f.default_factory() if callable(f.default_factory) else f.default
        out[f.name] = (default, spec)
    return out


_KINDS = {bool: "true or false", int: "an integer", float: "a number", str: "a string", list: "a list of numbers"}


def _type_ok(default, value) -> bool:
    if isinstance(default, bool):
        return isinstance(value, bool)
    if isinstance(default, int):
        return isinstance(value, numbers.Integral) and not isinstance(value, bool)
    if isinstance(default, float):
        return isinstance(value, numbers.Real) and not isinstance(value, bool)
    if isinstance(default, str):
        return isinstance(value, str)
    if isinstance(default, list):
        return isinstance(value, (list, tuple, array.array))
    return True


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


class Params(FromDict):
    """Base of the parameter dataclasses: type and range checks from the field specs, then
    the class's own cross-field rules (``_check``). Errors are one-line UserErrors."""

    def __post_init__(self):
        for name, (default, spec) in specs(type(self)).items():
            v = getattr(self, name)
            if not _type_ok(default, v):
                raise UserError(f"{self.OWNER}: parameter {name} must be {_KINDS[type(default)]}, got {v!r}")
            if isinstance(default, (int, float, list)) and not isinstance(default, bool):
                v = type(default)(v)   # numpy scalars, ints for floats, ROS arrays -> plain values
                object.__setattr__(self, name, v)
            if isinstance(default, float) and not math.isfinite(v):
                raise UserError(f"{self.OWNER}: parameter {name} must be a finite number, got {v!r}")
            if spec.range is not None and not isinstance(v, (bool, str, list, tuple)):
                lo, hi = spec.range
                if not lo <= v <= hi:
                    raise UserError(f"{self.OWNER}: parameter {name} must be in [{lo}, {hi}], got {v!r}")
        self._check()

    def _check(self) -> None:
        """Cross-field rules of a subclass (raise UserError)."""


def misspelt(keys, known) -> list[tuple[str, str | None]]:
    """[(key, the closest known name or None)] for each key that is not a known parameter
    name: a misspelt key in a parameter file, which ROS would silently ignore."""
    import difflib

    known = sorted(set(known))
    out = []
    for key in keys:
        if key in known or key.startswith("qos_overrides."):
            continue
        close = difflib.get_close_matches(key, known, n=1, cutoff=0.6)
        out.append((key, close[0] if close else None))
    return out


def markdown(node_groups: dict[str, tuple]) -> str:
    """A parameter reference: one table per node, from the specs."""
    lines = ["# Parameters", "",
             "Generated from the parameter specs (`o4a_nav/nav/node_params.py`; regenerate with",
             "`.venv/bin/python -m o4a_nav.nav.node_params > docs/PARAMETERS.md`). Every parameter is",
             "declared with this description and range (`ros2 param describe`); read-only ones are",
             "read at start-up (change them in the YAML and restart the node).", ""]
    for node, groups in node_groups.items():
        lines += [f"## {node}", "", "| parameter | default | range | description |", "|---|---|---|---|"]
        for cls in groups:
            for name, (default, spec) in specs(cls).items():
                rng = f"{spec.range[0]} .. {spec.range[1]}" if spec.range else ""
                ro = " (read-only)" if spec.read_only else ""
                shown = "`\"\"`" if default == "" else f"`{default}`"
                lines.append(f"| `{name}` | {shown} | {rng} | {spec.description}{ro} |")
        lines.append("")
    return "\n".join(lines)


# ---------------------------------------------------------------- YAML parameter files
def load_param_file(path) -> dict[str, dict]:
    """ROS 2 parameter YAML -> {section key without leading '/': {param: value}}. Raises
    UserError for unreadable or malformed files."""
    import yaml

    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text())
    except OSError as exc:
        raise UserError(f"parameter file {path}: cannot read ({exc.strerror})") from None
    except yaml.YAMLError as exc:
        raise UserError(f"parameter file {path}: invalid YAML ({exc})") from None
    if not isinstance(data, dict):
        raise UserError(f"parameter file {path}: expected a mapping of node names")
    out: dict[str, dict] = {}
    for key, section in data.items():
        if not isinstance(section, dict) or "ros__parameters" not in section:
            raise UserError(f"parameter file {path}: section {key!r} has no ros__parameters")
        params = section["ros__parameters"] or {}
        if not isinstance(params, dict):
            raise UserError(f"parameter file {path}: {key}.ros__parameters must be a mapping")
        out[str(key).strip("/")] = dict(params)
    return out


def section_applies(key: str, node_name: str, namespace: str = "") -> bool:
    """Whether a YAML section key (leading '/' stripped) names this node: `**` (every
    node), `NODE`, `**/NODE` or `NS/NODE` for the node's namespace."""
    if key == "**":
        return True
    prefix, _, name = key.rpartition("/")
    return name == node_name and prefix in ("", "**", namespace.strip("/"))


def node_parameters(files: list, node_name: str, extra: dict | None = None, namespace: str = "") -> dict:
    """{param: value} for one node from YAML files: in each file the `/**` section, then the
    sections naming the node; later files win, ``extra`` wins over all. Empty lists are left
    out (they have no ROS parameter type; the node's declared default is the empty list)."""
    merged: dict = {}
    for f in files:
        sections = load_param_file(f)
        merged.update(sections.get("**", {}))
        for key, values in sections.items():
            if key != "**" and section_applies(key, node_name, namespace):
                merged.update(values)
    merged.update(extra or {})
    return {k: v for k, v in merged.items() if not (isinstance(v, list) and not v)}
